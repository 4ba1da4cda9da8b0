//! The wire format: one JSON object per line, each line at most
//! [`MAX_RECORD`] bytes, so one `write(2)` is atomic on a pipe.
//!
//! ```text
//! {"t":"hello","v":1,"pid":4242}
//! {"t":"span","pid":4242,"id":1,"parent":null,"name":"job","target":"worker","level":"INFO","fields":{"job_id":"j-1"},"empty":["rows"]}
//! {"t":"rec","pid":4242,"id":1,"fields":{"rows":10}}
//! {"t":"ev","pid":4242,"ts":[1763758369,633647000],"span":1,"level":"DEBUG","target":"worker::db","file":"src/db.rs","line":42,"fields":{"message":"query done","rows":10}}
//! {"t":"ev","pid":4242,"ts":[1763758369,633650000],"span":1,"level":"ERROR","target":"worker::db","fields":{"message":"failed","error":"query failed","error_sources":["timed out"]},"errors":{"error":["QueryFailed","TimedOut"]},"ctx":{"user_id":42}}
//! {"t":"close","pid":4242,"id":1}
//! {"t":"drop","pid":4242,"n":17}
//! ```

pub(crate) mod decode;
pub(crate) mod encode;
mod handshake;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub(crate) use handshake::Spec;
pub use handshake::{ENV_VAR, FD};

/// The largest record: Linux's `PIPE_BUF`, the most one `write(2)` to a pipe
/// writes atomically (POSIX guarantees at least 512).
///
/// ```
/// assert_eq!(spanline_pipe::wire::MAX_RECORD, 4096);
/// ```
pub const MAX_RECORD: usize = 4096;

/// The wire format's version.
///
/// ```
/// assert_eq!(spanline_pipe::wire::VERSION, 1);
/// ```
pub const VERSION: u32 = 1;

/// The longest line a reader takes (sixteen times the largest record): a
/// longer one is not a record, and is skipped up to its newline.
pub(crate) const MAX_LINE: usize = 16 * MAX_RECORD;

/// One record on the wire.
///
/// ```
/// use spanline_pipe::wire::{Record, MAX_RECORD};
/// let (line, truncated) = Record::Close { pid: 7, id: 1 }.encode(MAX_RECORD);
/// assert_eq!(line, b"{\"t\":\"close\",\"pid\":7,\"id\":1}\n");
/// assert!(!truncated);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "lowercase")]
pub enum Record {
    /// The first record of a process.
    Hello {
        /// The format version.
        v: u32,
        /// The writing process.
        pid: u32,
    },
    /// A span was created.
    Span {
        /// The writing process.
        pid: u32,
        /// The span's id in that process.
        id: u64,
        /// Its parent's id, if any.
        parent: Option<u64>,
        /// The span's name.
        name: String,
        /// Its target.
        target: String,
        /// Its level: `TRACE` … `ERROR`.
        level: String,
        /// Its fields, with their JSON types.
        fields: Map<String, Value>,
        /// The fields it declared without a value (`tracing::field::Empty`),
        /// which a later `rec` may fill: the parent's copy of the span
        /// declares them too. Left out when there are none (a parent that
        /// does not know it ignores it).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        empty: Vec<String>,
    },
    /// Fields recorded on a span after its creation.
    Rec {
        /// The writing process.
        pid: u32,
        /// The span's id.
        id: u64,
        /// The fields recorded.
        fields: Map<String, Value>,
    },
    /// A span was closed.
    Close {
        /// The writing process.
        pid: u32,
        /// The span's id.
        id: u64,
    },
    /// An event.
    Ev {
        /// The writing process.
        pid: u32,
        /// The event's time: seconds and nanoseconds since the Unix epoch.
        ts: (i64, u32),
        /// The span the event belongs to.
        span: Option<u64>,
        /// Its level.
        level: String,
        /// Its target.
        target: String,
        /// Its source file.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file: Option<String>,
        /// Its source line.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        line: Option<u32>,
        /// Its fields, `message` included.
        fields: Map<String, Value>,
        /// The error fields (written as `<field>` and `<field>_sources`):
        /// the type name of the error and of each cause, `null` where not
        /// known. The parent writes each as one error again, in its style.
        #[serde(default, skip_serializing_if = "Map::is_empty")]
        errors: Map<String, Value>,
        /// The event's context as the child's `ContextLayer` resolved it
        /// (`ctx` on the wire): every key its span chain has a value for,
        /// and the keys bound with `spanline::set` or restored from a
        /// `ContextSnapshot`, values as JSON. The parent writes it above
        /// the spans it recreated, so a line carries what the child's
        /// store said, including what no span record shows (a `set` that
        /// filled an `Empty` field, what `detached()` copied). Left out when
        /// empty (a parent that does not know it ignores it).
        #[serde(default, rename = "ctx", skip_serializing_if = "Map::is_empty")]
        context: Map<String, Value>,
    },
    /// Records the child dropped (drop mode) since the last report.
    Drop {
        /// The writing process.
        pid: u32,
        /// How many.
        n: u64,
    },
}

const MARK: &str = "…[truncated]";

impl Record {
    /// The maps of values that may be cut to fit: the fields first.
    fn values_mut(&mut self) -> Vec<&mut Map<String, Value>> {
        match self {
            Record::Span { fields, .. } | Record::Rec { fields, .. } => vec![fields],
            Record::Ev {
                fields, context, ..
            } => vec![fields, context],
            _ => Vec::new(),
        }
    }

    /// Encodes the record as one line (with `\n`) of at most `max` bytes:
    /// the longest string values are cut, with a `…[truncated]` marker,
    /// until it fits. Returns the line and whether anything was cut.
    ///
    /// ```
    /// use spanline_pipe::wire::{Record, MAX_RECORD};
    /// let (line, truncated) = Record::Drop { pid: 1, n: 3 }.encode(MAX_RECORD);
    /// assert!(line.ends_with(b"\n") && !truncated);
    /// ```
    pub fn encode(mut self, max: usize) -> (Vec<u8>, bool) {
        let mut truncated = false;
        for _ in 0..16 {
            let mut line = serde_json::to_vec(&self).unwrap_or_default();
            line.push(b'\n');
            if line.len() <= max {
                return (line, truncated);
            }
            let excess = line.len() - max;
            let mut maps = self.values_mut();
            if maps.is_empty() {
                break;
            }
            let longest = maps
                .iter_mut()
                .flat_map(|m| m.values_mut())
                .filter_map(|v| match v {
                    Value::String(s) => Some(s),
                    _ => None,
                })
                .max_by_key(|s| s.len());
            let Some(longest) = longest else {
                maps.iter_mut().for_each(|m| m.clear());
                if let Some(fields) = maps.first_mut() {
                    fields.insert(
                        "message".into(),
                        Value::String("record too large for the pipe".into()),
                    );
                }
                truncated = true;
                continue;
            };
            // Cut by encoded size, at a character boundary: a value of
            // escapes (`\n`, `\u0001`) keeps as much as fits, never nothing.
            let encoded: usize = longest.chars().map(json_len).sum();
            let target = encoded.saturating_sub(excess + MARK.len());
            let mut size = 0;
            let mut cut = 0;
            for (at, c) in longest.char_indices() {
                size += json_len(c);
                if size > target {
                    break;
                }
                cut = at + c.len_utf8();
            }
            longest.truncate(cut);
            longest.push_str(MARK);
            truncated = true;
        }
        let fallback = Record::Drop {
            pid: std::process::id(),
            n: 1,
        };
        let mut line = serde_json::to_vec(&fallback).unwrap_or_default();
        line.push(b'\n');
        (line, true)
    }
}

/// The bytes serde_json writes for `c` inside a string.
fn json_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if u32::from(c) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(fields: Map<String, Value>) -> Record {
        Record::Ev {
            pid: 1,
            ts: (0, 0),
            span: None,
            level: "INFO".into(),
            target: "t".into(),
            file: None,
            line: None,
            fields,
            errors: Map::new(),
            context: Map::new(),
        }
    }

    #[test]
    fn escape_heavy_values_keep_what_fits() {
        for (unit, name) in [
            ("\u{1}", "controls"),
            ("é\"\n", "mixed"),
            ("\\", "backslashes"),
        ] {
            let mut fields = Map::new();
            fields.insert("big".into(), Value::String(unit.repeat(100_000)));
            let (line, truncated) = event(fields).encode(MAX_RECORD);
            assert!(truncated && line.len() <= MAX_RECORD, "{name}");
            let back: Record = serde_json::from_slice(&line).unwrap();
            let Record::Ev { fields, .. } = back else {
                panic!("not an event")
            };
            let big = fields["big"].as_str().unwrap();
            let kept = big.strip_suffix(MARK).unwrap();
            assert!(
                line.len() > MAX_RECORD - 64,
                "{name}: the record uses the room it has ({} bytes)",
                line.len()
            );
            assert!(kept.starts_with(unit) && !kept.is_empty(), "{name}");
        }
    }

    #[test]
    fn oversized_bound_values_are_cut_to_fit() {
        let mut fields = Map::new();
        fields.insert("message".into(), Value::String("m".into()));
        let mut record = event(fields);
        if let Record::Ev { context, .. } = &mut record {
            context.insert("note".into(), Value::String("n".repeat(10_000)));
            context.insert("user_id".into(), Value::from(42));
        }
        let (line, truncated) = record.encode(MAX_RECORD);
        assert!(truncated && line.len() <= MAX_RECORD);
        let Record::Ev {
            fields, context, ..
        } = serde_json::from_slice(&line).unwrap()
        else {
            panic!("not an event")
        };
        assert_eq!(fields["message"], "m");
        assert!(context["note"].as_str().unwrap().ends_with(MARK));
        assert_eq!(context["user_id"], 42);
    }

    #[test]
    fn oversized_values_are_cut_to_fit() {
        let mut fields = Map::new();
        fields.insert("message".into(), Value::String("m".into()));
        fields.insert("big".into(), Value::String("é\"\n".repeat(3000)));
        let (line, truncated) = event(fields).encode(MAX_RECORD);
        assert!(truncated);
        assert!(line.len() <= MAX_RECORD);
        let back: Record = serde_json::from_slice(&line).unwrap();
        let Record::Ev { fields, .. } = back else {
            panic!("not an event")
        };
        assert!(fields["big"].as_str().unwrap().ends_with(MARK));
        assert_eq!(fields["message"], "m");
    }
}
