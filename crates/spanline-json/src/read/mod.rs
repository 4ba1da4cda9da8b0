//! Reading lines back: one record model for every line shape.
//!
//! [`Record::read`] turns a JSON line of any spanline preset, or of the
//! producers teams run beside it (pino, bunyan, structlog, ECS, GCP,
//! tracing-subscriber's JSON), into one [`Record`]: its time, [`Level`],
//! message, target, error chains and every other field in the line's key
//! order. The keys it looks for are asked of the presets the writer uses
//! (spanline-core's preset table), so a new preset is read as soon as it
//! is written. `spanline pretty`, `spanline tail`, the web console
//! and the OTLP layer read through it. A query over many lines reads each
//! through a `LineView` first: the same answers, with only the values
//! asked for parsed.
//!
//! ```
//! use spanline_json::read::{Level, Record};
//! let line = r#"{"@timestamp":"2026-12-06T10:00:00.250Z","log.level":"warn","message":"slow","log.logger":"app","user.id":"u-7"}"#;
//! let record = Record::read(line).unwrap();
//! assert_eq!((record.level, record.message.as_str(), record.target.as_str()), (Some(Level::Warn), "slow", "app"));
//! assert_eq!(record.time.unwrap().subsec_nanos(), 250_000_000);
//! // ECS writes `user_id` as `user.id`: the record finds it by either name.
//! assert_eq!(record.get("user_id").unwrap(), "u-7");
//! ```

mod chain;
mod level;
mod time;
#[cfg(feature = "query")]
mod view;

use std::sync::OnceLock;

use serde_json::{Map, Value};

pub use level::Level;
#[cfg(feature = "query")]
pub(crate) use view::LineView;

use spanline_core::{Preset, ReservedKey, Schema, Timestamp};

/// A time as the readers take it: RFC 3339 with `Z` or an offset and any
/// fraction, or epoch seconds or milliseconds; `None` for anything else.
///
/// ```
/// use spanline_json::read::parse_time;
/// let t = parse_time("2026-12-06T11:00:00.5+01:00").unwrap();
/// assert_eq!((t.unix_secs(), t.subsec_nanos()), (1_796_551_200, 500_000_000));
/// assert_eq!(parse_time("1796551200500"), Some(t), "epoch milliseconds");
/// assert!(parse_time("yesterday").is_none());
/// ```
pub fn parse_time(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    time::parse_rfc3339(text).or_else(|| {
        let number: serde_json::Number = text.parse().ok()?;
        time::read_time(&Value::Number(number))
    })
}

/// One line, read: what every reader (the console renderer, `tail`, the
/// console, a query) needs from it, whatever its shape.
///
/// ```
/// use spanline_json::read::Record;
/// let record = Record::read(r#"{"time":1765015200250,"level":50,"msg":"boom","name":"svc","pid":7}"#).unwrap();
/// assert_eq!(record.level.unwrap().name(), "error");
/// assert_eq!(record.target, "svc", "pino's and bunyan's logger name");
/// assert_eq!(record.fields, [("pid".to_string(), serde_json::json!(7))]);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Record {
    /// The time, when the line has one that reads as a time (RFC 3339
    /// with any offset and fraction, or epoch seconds or milliseconds).
    pub time: Option<Timestamp>,
    /// The line's time as it was written, as text (empty when it has none).
    pub time_text: String,
    /// The level, when the line has one that reads as a level.
    pub level: Option<Level>,
    /// The message (empty when the line has none).
    pub message: String,
    /// The target or logger name (empty when the line has none).
    pub target: String,
    /// Every other key, in the line's order: context and event fields,
    /// static fields. tracing-subscriber's nested shape is flattened (the
    /// event's `fields` and its spans' fields, the nearest span's winning).
    pub fields: Vec<(String, Value)>,
    /// Error chains: the field's key, then its message and each cause,
    /// outermost first (from `<key>_sources`, structlog's `exception`,
    /// ECS's `error.stack_trace`; an `error` or `error.message` string
    /// without causes is a chain of one). The field holding an error's
    /// message stays in `fields` too.
    pub errors: Vec<(String, Vec<String>)>,
}

/// The keys a line's time, level, message and target may be under: every
/// preset's, then those of other producers.
struct Keys {
    time: Vec<&'static str>,
    level: Vec<&'static str>,
    message: Vec<&'static str>,
    target: Vec<&'static str>,
}

/// One schema per preset, as the writer builds them: the reader asks each
/// where it writes the reserved keys, so a new preset is read as soon as
/// it is written.
fn presets() -> &'static [Schema] {
    static SCHEMAS: OnceLock<Vec<Schema>> = OnceLock::new();
    SCHEMAS.get_or_init(|| Preset::ALL.into_iter().map(Schema::from).collect())
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let column = |key: ReservedKey, others: &[&'static str]| {
            let mut keys: Vec<&'static str> = Vec::new();
            for key in presets()
                .iter()
                .map(|schema| schema.key_name(key))
                .chain(others.iter().copied())
            {
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
            keys
        };
        Keys {
            // pino and others: `ts`.
            time: column(ReservedKey::Timestamp, &["ts"]),
            level: column(ReservedKey::Level, &["lvl"]),
            message: column(ReservedKey::Message, &[]),
            // pino's and bunyan's logger name.
            target: column(ReservedKey::Target, &["name"]),
        }
    })
}

/// The name a preset writes `key` under when it is not `key` itself
/// (ECS's `user.id` for `user_id`): every preset's aliases, in one table
/// scanned on a miss (a query asks for absent keys on most lines).
fn alias(key: &str) -> Option<&'static str> {
    static ALIASES: OnceLock<Vec<(&'static str, &'static str)>> = OnceLock::new();
    ALIASES
        .get_or_init(|| {
            Preset::ALL
                .into_iter()
                .flat_map(Preset::aliases)
                .copied()
                .collect()
        })
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, written)| *written)
}

/// tracing-subscriber's nested shape keeps the event's fields, the current
/// span and the span list under these keys (the `nested` preset writes it).
const NESTED_KEYS: [&str; 3] = ["fields", "span", "spans"];

impl Record {
    /// Reads one line; `None` when it is not a JSON object.
    ///
    /// See the [module](self) docs for an example.
    pub fn read(line: &str) -> Option<Record> {
        let Ok(Value::Object(map)) = serde_json::from_str::<Value>(line.trim()) else {
            return None;
        };
        Some(Record::from_map(map))
    }

    /// Reads a line already parsed as a JSON object.
    pub(crate) fn from_map(mut map: Map<String, Value>) -> Record {
        flatten_nested(&mut map);
        let keys = keys();
        // A user field may be named like another preset's level key (GCP's
        // `severity` beside a user's `level`): the first that holds a level.
        let level_key = keys
            .level
            .iter()
            .find(|k| map.get(**k).and_then(Level::of_value).is_some())
            .copied();
        let mut take = |keys: &[&str]| keys.iter().find_map(|k| map.shift_remove(*k));
        let time_value = take(&keys.time);
        let level = level_key
            .and_then(|k| take(&[k]))
            .and_then(|v| Level::of_value(&v));
        let message = take(&keys.message).map(|v| text_of(&v)).unwrap_or_default();
        let target = take(&keys.target).map(|v| text_of(&v)).unwrap_or_default();
        let mut record = Record {
            time: time_value.as_ref().and_then(time::read_time),
            time_text: time_value.as_ref().map(text_of).unwrap_or_default(),
            level,
            message,
            target,
            ..Record::default()
        };
        // Error chains come out of the fields: `<key>_sources` (`.sources`
        // from spanline before 0.1's release) beside `<key>`, and the chains
        // other error styles write whole.
        let mut chains = Vec::new();
        for (key, value) in &map {
            let base = key
                .strip_suffix("_sources")
                .or_else(|| key.strip_suffix(".sources"));
            if let (Some(base), Value::Array(causes)) = (base, value) {
                let mut chain = vec![map.get(base).map(text_of).unwrap_or_default()];
                chain.extend(causes.iter().map(text_of));
                record.errors.push((base.to_string(), chain));
                chains.push(key.clone());
            } else if let Some(chain) = chain::written_chain(key, value) {
                record.errors.push((key.clone(), chain));
                chains.push(key.clone());
            }
        }
        // An error without causes is written as its message alone, under
        // `error` (ECS: `error.message`): a chain of one.
        if record.errors.is_empty() {
            if let Some((key, Value::String(text))) = ["error", "error.message"]
                .iter()
                .find_map(|k| map.get_key_value(*k))
            {
                record.errors.push((key.clone(), vec![text.clone()]));
            }
        }
        record.fields = map
            .into_iter()
            .filter(|(key, _)| !chains.contains(key))
            .collect();
        record
    }

    /// A field by key: as written, under the name a preset writes it
    /// (`user_id` finds ECS's `user.id`), or as a dotted path into an
    /// object (`http.status` in `{"http":{"status":200}}`).
    ///
    /// ```
    /// use spanline_json::read::Record;
    /// let record = Record::read(r#"{"message":"hi","http":{"status":200},"trace.id":"ab"}"#).unwrap();
    /// assert_eq!(record.get("http.status").unwrap(), 200);
    /// assert_eq!(record.get("trace_id").unwrap(), "ab");
    /// assert!(record.get("missing").is_none());
    /// ```
    pub fn get(&self, key: &str) -> Option<&Value> {
        let field = |key: &str| self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v);
        if let Some(value) = field(key) {
            return Some(value);
        }
        if let Some(written) = alias(key) {
            if let Some(value) = field(written) {
                return Some(value);
            }
        }
        // A dotted path: the longest written key that starts it, then down.
        let mut at = key.len();
        while let Some(dot) = key[..at].rfind('.') {
            if let Some(mut value) = field(&key[..dot]) {
                for part in key[dot + 1..].split('.') {
                    value = value.as_object()?.get(part)?;
                }
                return Some(value);
            }
            at = dot;
        }
        None
    }

    /// The field's value as text: strings without quotes, the rest as JSON.
    ///
    /// ```
    /// use spanline_json::read::Record;
    /// let record = Record::read(r#"{"message":"hi","job_id":"export_1","n":3}"#).unwrap();
    /// assert_eq!(record.text("job_id").as_deref(), Some("export_1"));
    /// assert_eq!(record.text("n").as_deref(), Some("3"));
    /// ```
    pub fn text(&self, key: &str) -> Option<String> {
        self.get(key).map(text_of)
    }
}

/// tracing-subscriber's nested shape: the event's fields and its spans'
/// fields come up to the top level (the line's own keys win, then the
/// event's, then the nearest span's).
fn flatten_nested(map: &mut Map<String, Value>) {
    let [fields, span, spans] = NESTED_KEYS;
    if let Some(Value::Object(fields)) = map.shift_remove(fields) {
        for (k, v) in fields {
            map.entry(k).or_insert(v);
        }
    }
    map.shift_remove(span);
    if let Some(Value::Array(spans)) = map.shift_remove(spans) {
        for span in spans.iter().rev() {
            let Some(span) = span.as_object() else {
                continue;
            };
            for (k, v) in span.iter().filter(|(k, _)| *k != "name") {
                map.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }
}

/// Strings without quotes, everything else as JSON.
fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
