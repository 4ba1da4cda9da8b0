//! [`Receiver`]: turns a child's records back into spans and events of this
//! process, under this process's filters.

use std::collections::HashMap;

use serde_json::{Map, Value as Json};
use tracing::field::DisplayValue;
use tracing::Span;
use tracing_core::field::Value;
use tracing_core::{Event, Level, LevelFilter, Metadata};

use crate::callsite::{DynCallsite, Interner, Key, Overflow, GENERIC_FIELDS};
use crate::wire::Record;

/// The target of the forwarder's own events (bad records, exit status).
pub const TARGET: &str = "spanline_pipe";

/// The longest excerpt of a bad record shown in the warning.
const EXCERPT: usize = 200;

/// Re-emits records read from a child, line by line.
///
/// Each record's callsite is interned once and registered with tracing, so
/// the parent's `RUST_LOG` applies to the child's own targets and levels.
/// The child's spans are recreated under the receiver's root span (the
/// `child` span of the [`Forwarder`](crate::Forwarder)); a span the parent
/// filters out maps to its nearest enabled ancestor. Around each event the
/// recreated chain is entered, root to leaf, so span-scoped directives
/// (`RUST_LOG=warn,[job]=debug`) work as for the parent's own spans.
///
/// The sync reader of `Forwarder` feeds it; use it directly to forward over
/// another transport.
#[derive(Debug)]
pub struct Receiver {
    root: Span,
    spans: HashMap<(u32, u64), Node>,
    records: u64,
    bad: u64,
}

#[derive(Debug, Clone)]
struct Node {
    /// Enabled spans from the root to this one (or to its nearest enabled
    /// ancestor when this one is filtered out).
    chain: Vec<Span>,
    /// Whether the last span of `chain` is this record's own span.
    own: bool,
}

/// A field value owned by the receiver, with its JSON type.
enum Owned {
    Str(String),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
    Raw(DisplayValue<String>),
}

impl Owned {
    fn from_json(v: &Json) -> Self {
        match v {
            Json::String(s) => Owned::Str(s.clone()),
            Json::Bool(b) => Owned::Bool(*b),
            Json::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => Owned::U64(u),
                (_, Some(i), _) => Owned::I64(i),
                (_, _, Some(f)) => Owned::F64(f),
                _ => Owned::Raw(tracing::field::display(n.to_string())),
            },
            other => Owned::Raw(tracing::field::display(other.to_string())),
        }
    }

    fn as_value(&self) -> &dyn Value {
        match self {
            Owned::Str(s) => s,
            Owned::I64(n) => n,
            Owned::U64(n) => n,
            Owned::F64(n) => n,
            Owned::Bool(b) => b,
            Owned::Raw(d) => d,
        }
    }
}

/// The record's values in the order of `meta`'s fields; absent ones `None`.
fn values_for(meta: &Metadata<'_>, fields: &Map<String, Json>) -> Vec<Option<Owned>> {
    meta.fields()
        .iter()
        .map(|f| fields.get(f.name()).map(Owned::from_json))
        .collect()
}

fn generic_values(target: &str, fields: &Map<String, Json>) -> Vec<Option<Owned>> {
    let message = fields
        .get("message")
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_string();
    let rest: Map<String, Json> = fields
        .iter()
        .filter(|(k, _)| *k != "message")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    vec![
        Some(Owned::Str(message)),
        Some(Owned::Str(target.to_string())),
        Some(Owned::Raw(tracing::field::display(
            Json::Object(rest).to_string(),
        ))),
    ]
}

fn excerpt(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(&line[..line.len().min(EXCERPT)]).into_owned();
    text.chars().filter(|c| !c.is_control()).collect()
}

impl Receiver {
    /// A receiver whose recreated spans go under `root`.
    pub fn new(root: Span) -> Self {
        Self {
            root,
            spans: HashMap::new(),
            records: 0,
            bad: 0,
        }
    }

    /// Records handled so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Lines that could not be parsed.
    pub fn bad_records(&self) -> u64 {
        self.bad
    }

    /// Handles one line (without its `\n`).
    pub fn feed_line(&mut self, line: &[u8]) {
        if line.is_empty() {
            return;
        }
        match serde_json::from_slice::<Record>(line) {
            Ok(record) => {
                self.records += 1;
                self.handle(record);
            }
            Err(_) => {
                self.bad += 1;
                let record = excerpt(line);
                tracing::warn!(target: TARGET, parent: &self.root, record, "unparseable record from the child");
            }
        }
    }

    /// Ends the stream: reports a truncated last record (`tail` is what
    /// followed the last newline), and closes every span still open.
    pub fn finish(&mut self, tail: &[u8]) {
        if !tail.is_empty() {
            let record = excerpt(tail);
            tracing::warn!(target: TARGET, parent: &self.root, record, bytes = tail.len(), "truncated record at the end of the child's stream");
        }
        self.spans.clear();
    }

    fn chain_of(&self, pid: u32, id: Option<u64>) -> Vec<Span> {
        id.and_then(|id| self.spans.get(&(pid, id)))
            .map_or_else(|| vec![self.root.clone()], |n| n.chain.clone())
    }

    fn handle(&mut self, record: Record) {
        match record {
            Record::Hello { .. } => {}
            Record::Span {
                pid,
                id,
                parent,
                name,
                target,
                level,
                fields,
            } => {
                let chain = self.chain_of(pid, parent);
                let node = match level.parse::<Level>() {
                    Ok(level) => self.new_span(chain, &name, &target, level, &fields),
                    Err(_) => Node { chain, own: false },
                };
                self.spans.insert((pid, id), node);
            }
            Record::Rec { pid, id, fields } => {
                if let Some(Node { chain, own: true }) = self.spans.get(&(pid, id)) {
                    if let (Some(span), Some(meta)) =
                        (chain.last(), chain.last().and_then(Span::metadata))
                    {
                        let owned = values_for(meta, &fields);
                        let refs: Vec<Option<&dyn Value>> = owned
                            .iter()
                            .map(|o| o.as_ref().map(Owned::as_value))
                            .collect();
                        span.record_all(&meta.fields().value_set_all(&refs));
                    }
                }
            }
            Record::Close { pid, id } => {
                self.spans.remove(&(pid, id));
            }
            Record::Ev {
                pid,
                ts,
                span,
                level,
                target,
                file,
                line,
                fields,
            } => {
                let Ok(level) = level.parse::<Level>() else {
                    return;
                };
                let chain = self.chain_of(pid, span);
                let at = spanline_core::Timestamp::from_unix(ts.0, ts.1);
                self.event(&chain, level, &target, file, line, &fields, at);
            }
            Record::Drop { n, .. } => {
                tracing::warn!(target: TARGET, parent: &self.root, dropped = n, "the child dropped log records");
            }
        }
    }

    fn callsite(&self, key: &Key) -> &'static DynCallsite {
        let (cs, overflow) = Interner::global().get(key);
        if overflow == Overflow::First {
            tracing::warn!(
                target: TARGET,
                parent: &self.root,
                limit = crate::callsite::MAX_CALLSITES,
                "too many distinct callsites from child processes; further ones are forwarded through a generic one"
            );
        }
        cs
    }

    fn new_span(
        &self,
        chain: Vec<Span>,
        name: &str,
        target: &str,
        level: Level,
        fields: &Map<String, Json>,
    ) -> Node {
        let key = Key {
            span: true,
            name: name.to_string(),
            target: target.to_string(),
            level,
            file: None,
            line: None,
            fields: fields.keys().cloned().collect(),
        };
        let cs = self.callsite(&key);
        let meta = cs.meta();
        if level > LevelFilter::current() || !cs.maybe_enabled() {
            return Node { chain, own: false };
        }
        let generic = meta
            .fields()
            .iter()
            .map(|f| f.name())
            .eq(GENERIC_FIELDS.iter().copied())
            && meta.target() == "spanline_pipe::overflow";
        let owned = if generic {
            generic_values(target, fields)
        } else {
            values_for(meta, fields)
        };
        let refs: Vec<Option<&dyn Value>> = owned
            .iter()
            .map(|o| o.as_ref().map(Owned::as_value))
            .collect();
        let values = meta.fields().value_set_all(&refs);
        let parent = chain.last().and_then(Span::id);
        let span = {
            let _entered = Entered::chain(&chain);
            tracing::dispatcher::get_default(|d| d.enabled(meta))
                .then(|| Span::child_of(parent, meta, &values))
        };
        match span {
            Some(span) if !span.is_disabled() => {
                let mut chain = chain;
                chain.push(span);
                Node { chain, own: true }
            }
            _ => Node { chain, own: false },
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn event(
        &self,
        chain: &[Span],
        level: Level,
        target: &str,
        file: Option<String>,
        line: Option<u32>,
        fields: &Map<String, Json>,
        at: spanline_core::Timestamp,
    ) {
        if level > LevelFilter::current() {
            return;
        }
        let key = Key {
            span: false,
            name: match (&file, line) {
                (Some(f), Some(l)) => format!("event {f}:{l}"),
                _ => "event".to_string(),
            },
            target: target.to_string(),
            level,
            file,
            line,
            fields: fields.keys().cloned().collect(),
        };
        let cs = self.callsite(&key);
        if !cs.maybe_enabled() {
            return;
        }
        let meta = cs.meta();
        let generic = meta.target() == "spanline_pipe::overflow";
        let owned = if generic {
            generic_values(target, fields)
        } else {
            values_for(meta, fields)
        };
        let refs: Vec<Option<&dyn Value>> = owned
            .iter()
            .map(|o| o.as_ref().map(Owned::as_value))
            .collect();
        let values = meta.fields().value_set_all(&refs);
        let parent = chain.last().and_then(Span::id);
        // Entered root to leaf, so span-scoped filter directives apply.
        let _entered = Entered::chain(chain);
        spanline_core::with_event_time(at, || {
            tracing::dispatcher::get_default(|d| {
                if d.enabled(meta) {
                    d.event(&Event::new_child_of(parent.clone(), meta, &values));
                }
            });
        });
    }
}

/// Spans entered root to leaf, exited leaf to root on drop.
struct Entered<'a>(Vec<tracing::span::Entered<'a>>);

impl<'a> Entered<'a> {
    fn chain(chain: &'a [Span]) -> Self {
        Self(chain.iter().map(Span::enter).collect())
    }
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        while self.0.pop().is_some() {}
    }
}
