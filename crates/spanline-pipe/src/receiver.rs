//! [`Receiver`]: turns a child's records back into spans and events of this
//! process, under this process's filters.
//!
//! Why one file: every part reads the one `Receiver` state, the child's
//! recreated span chains by `(pid, id)`, its callsite budget and cache, and
//! its `Redact`. The fast path (an event read borrowed, handing off to the
//! slow one when a value must be masked) and the slow path (a parsed
//! `Record`) must make the same event under the same chain, through the
//! same callsite lookup, error rebuilding (`set_error`) and
//! `dispatch_event`; split, each would be read with the other open.

use std::cell::Cell;
use std::collections::HashMap;

use serde_json::{Map, Value as Json};
use tracing::field::{DebugValue, DisplayValue};
use tracing::Span;
use tracing_core::field::Value;
use tracing_core::{Event, Level, LevelFilter, Metadata};

use crate::callsite::{Budget, DynCallsite, Full, Interner, Key};
use crate::hash::Seeded;
use crate::wire::decode::{FastEvent, FastValue};
use crate::wire::{Record, MAX_LINE, VERSION};

/// The target of the forwarder's own events (bad records, exit status).
///
/// ```
/// // RUST_LOG=info,spanline_pipe=warn keeps only the forwarder's own warnings and errors.
/// assert_eq!(spanline_pipe::TARGET, "spanline_pipe");
/// ```
pub const TARGET: &str = "spanline_pipe";

/// The longest excerpt of a bad record shown in the warning.
const EXCERPT: usize = 200;

/// Re-emits records read from a child, line by line.
///
/// Each record's callsite is interned once and registered with tracing, so
/// the parent's `RUST_LOG` applies to the child's own targets and levels.
/// One receiver (one child) interns at most 1,024 new callsites, and holds
/// them against the running children's limit (16,384) until it is dropped
/// (docs/pipe.md, "In the parent"); past a limit its records go through a
/// generic callsite, with a WARN.
/// The child's spans are recreated under the receiver's root span (the
/// `child` span of the [`Forwarder`](crate::Forwarder)), every one the child
/// sends, whatever the parent's filter says: the child's own filter decided
/// which of its spans exist, and their fields (declared `Empty` and
/// recorded later too) are the context of its lines, as if its spans had
/// been opened under the launching span in one process. The parent's
/// filter still decides which lines are written: the child's events, and a
/// recreated span's own lines (close lines), follow it. Each event also
/// brings its context as the child resolved it (`ctx` in the
/// [`wire`](crate::wire) format), written above the recreated spans: what
/// the child's store holds beyond its span records (keys bound with `set`,
/// a `set` that filled an `Empty` field, what `detached()` copied) reaches
/// the line too. A span that is not
/// recreated (deeper than 128 spans, past 4,096 open ones) maps to its
/// nearest recreated ancestor. Around each event the recreated chain is
/// entered, root to leaf, so span-scoped directives
/// (`RUST_LOG=warn,[job]=debug`) work as for the parent's own spans.
///
/// The sync reader of `Forwarder` feeds it; use it directly to forward over
/// another transport.
///
/// ```
/// let mut receiver = spanline_pipe::Receiver::new(tracing::Span::none());
/// receiver.feed_line(br#"{"t":"ev","pid":1,"ts":[0,0],"span":null,"level":"INFO","target":"t","fields":{"message":"hi"}}"#);
/// receiver.feed_line(b"not a record");
/// receiver.finish(&[]);
/// assert_eq!((receiver.records(), receiver.bad_records()), (1, 1));
/// ```
#[derive(Debug)]
pub struct Receiver {
    root: Span,
    spans: HashMap<(u32, u64), Node, Seeded>,
    records: u64,
    bad: u64,
    /// Event callsites seen by this receiver, by a hash of their identity,
    /// so the usual event costs one lookup and no allocation.
    events: HashMap<u64, Vec<&'static DynCallsite>, Seeded>,
    /// This child's account with the interner: the new callsites it may
    /// still intern, and those it holds until it is dropped.
    budget: Cell<Budget>,
    /// Limits already reported (each once per child).
    said_callsites: Cell<bool>,
    /// Keys whose values are masked before anything is re-emitted.
    redact: spanline_core::Redact,
    said_depth: bool,
    said_open: bool,
}

/// Deepest chain of a child's spans recreated here: deeper spans are
/// folded into their ancestor at this depth (their events keep its context).
pub(crate) const MAX_DEPTH: usize = 128;

/// Most spans of one child kept open here: past it, new spans are not
/// recreated (their events go under the child span). With `MAX_DEPTH` this
/// bounds what a child's spans cost the parent (21 MiB at worst, measured
/// by the `pipe_memory` bench).
pub(crate) const MAX_OPEN_SPANS: usize = 4_096;

#[derive(Debug, Clone)]
struct Node {
    /// Recreated spans from the root to this one (or to its nearest
    /// recreated ancestor when this one could not be).
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
    /// An object or array, written as JSON again by spanline's layers.
    Json(DebugValue<OwnedJson>),
    /// A child's error, rebuilt (see `forwarded`).
    Error(Box<dyn std::error::Error + Send + Sync>),
    Raw(DisplayValue<String>),
}

/// JSON text (serde's, so valid) that spanline's layers embed unquoted.
struct OwnedJson(String);

impl std::fmt::Debug for OwnedJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match spanline_core::JsonText::new(&self.0) {
            Some(json) => json.fmt(f),
            None => f.write_str(&self.0),
        }
    }
}

impl Owned {
    fn from_json(v: &Json) -> Self {
        match v {
            Json::String(s) => Owned::Str(s.clone()),
            Json::Bool(b) => Owned::Bool(*b),
            // Writers put NaN and the infinities as `null`.
            Json::Null => Owned::F64(f64::NAN),
            Json::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => Owned::U64(u),
                (_, Some(i), _) => Owned::I64(i),
                (_, _, Some(f)) => Owned::F64(f),
                _ => Owned::Raw(tracing::field::display(n.to_string())),
            },
            other @ (Json::Object(_) | Json::Array(_)) => {
                Owned::Json(tracing::field::debug(OwnedJson(other.to_string())))
            }
        }
    }

    fn as_value(&self) -> &dyn Value {
        match self {
            Owned::Str(s) => s,
            Owned::I64(n) => n,
            Owned::U64(n) => n,
            Owned::F64(n) => n,
            Owned::Bool(b) => b,
            Owned::Json(j) => j,
            Owned::Error(e) => e,
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

/// A child's error fields (the message and its `_sources`, named in the
/// record's `errors`) become one error value again; `_sources` is not
/// re-emitted.
fn rebuild_errors(
    meta: &Metadata<'_>,
    fields: &Map<String, Json>,
    errors: &Map<String, Json>,
    owned: &mut [Option<Owned>],
) {
    if errors.is_empty() {
        return;
    }
    let names: Vec<&str> = meta.fields().iter().map(|f| f.name()).collect();
    for (message_at, sources_at, types) in crate::forwarded::error_fields(&names, errors) {
        let part = |at: usize| names.get(at).and_then(|n| fields.get(*n));
        let Some(message) = part(message_at).and_then(Json::as_str) else {
            continue;
        };
        let sources = sources_at.and_then(part);
        if let Some(err) = crate::forwarded::Forwarded::from_parts(message, sources, types) {
            set_error(owned, message_at, sources_at, Owned::Error(err.boxed()));
        }
    }
}

/// [`rebuild_errors`] on the fast path's borrowed fields.
fn rebuild_fast_errors(
    fields: &[(std::borrow::Cow<'_, str>, &serde_json::value::RawValue)],
    errors: &Map<String, Json>,
    owned: &mut [Option<FastValue<'_>>],
) {
    if errors.is_empty() {
        return;
    }
    let names: Vec<&str> = fields.iter().map(|(k, _)| k.as_ref()).collect();
    for (message_at, sources_at, types) in crate::forwarded::error_fields(&names, errors) {
        let message = match owned.get(message_at) {
            Some(Some(FastValue::Str(s))) => s.to_string(),
            Some(Some(FastValue::String(s))) => s.clone(),
            _ => continue,
        };
        let sources = sources_at
            .and_then(|at| fields.get(at))
            .and_then(|(_, raw)| serde_json::from_str::<Json>(raw.get()).ok());
        if let Some(err) =
            crate::forwarded::Forwarded::from_parts(&message, sources.as_ref(), types)
        {
            set_error(owned, message_at, sources_at, FastValue::Error(err.boxed()));
        }
    }
}

/// The error in the message's place; its sources left out.
fn set_error<V>(owned: &mut [Option<V>], message_at: usize, sources_at: Option<usize>, error: V) {
    if let Some(slot) = sources_at.and_then(|at| owned.get_mut(at)) {
        *slot = None;
    }
    if let Some(slot) = owned.get_mut(message_at) {
        *slot = Some(error);
    }
}

/// The record's values for callsite `cs`: by field name, or in the generic
/// callsite's shape past the interner's cap.
fn owned_values(cs: &DynCallsite, target: &str, fields: &Map<String, Json>) -> Vec<Option<Owned>> {
    if cs.is_generic() {
        generic_values(target, fields)
    } else {
        values_for(cs.meta_ref(), fields)
    }
}

/// Dispatches an event under `chain`, entered root to leaf so span-scoped
/// filter directives apply, at the child's time `at`, with the event's
/// context as the child resolved it (`context`: keys and JSON values) above
/// every span.
fn dispatch_event(
    chain: &[Span],
    meta: &'static Metadata<'static>,
    values: &tracing_core::field::ValueSet<'_>,
    at: spanline_core::Timestamp,
    context: &[(&str, &str)],
) {
    let parent = chain.last().and_then(Span::id);
    let _entered = Entered::chain(chain);
    let dispatch = || {
        spanline_core::with_event_time(at, || {
            tracing::dispatcher::get_default(|d| {
                if d.enabled(meta) {
                    d.event(&Event::new_child_of(parent.clone(), meta, values));
                }
            });
        })
    };
    // Most events have none: no overlay to set up.
    if context.is_empty() {
        dispatch();
    } else {
        spanline_core::with_event_context(context, dispatch);
    }
}

/// At most [`EXCERPT`] bytes of a bad record, lossy, without control
/// characters, the values of hidden keys masked (a value the cut ends is
/// masked to the end: nothing past the cut is shown anyway).
fn excerpt(line: &[u8], redact: &spanline_core::Redact) -> String {
    let text = String::from_utf8_lossy(line.get(..EXCERPT).unwrap_or(line));
    redact
        .scrub_json(&text)
        .chars()
        .filter(|c| !c.is_control())
        .collect()
}

impl Receiver {
    /// A receiver whose recreated spans go under `root`.
    ///
    /// See [`Receiver`]'s example.
    pub fn new(root: Span) -> Self {
        Self {
            root,
            spans: HashMap::default(),
            records: 0,
            bad: 0,
            events: HashMap::default(),
            budget: Cell::new(Budget::default()),
            said_callsites: Cell::new(false),
            redact: spanline_core::Redact::default(),
            said_depth: false,
            said_open: false,
        }
    }

    /// Writes the values of these keys as `"[redacted]"`, whatever the
    /// child did: event and span fields, fields recorded later, the
    /// event's context, keys nested at any depth in a JSON value (a
    /// `spanline::json` field) or in JSON text a string value holds (a
    /// line a command printed, forwarded by a nested `spanline run`), and
    /// the excerpt of a bad record. A hidden error field loses its cause
    /// chain too. Keys match as [`Redact`](spanline_core::Redact) matches
    /// them (whole, ignoring ASCII case, or a `*` pattern).
    ///
    /// ```
    /// let lines = spanline_testkit::capture_json(|| {
    ///     let mut receiver = spanline_pipe::Receiver::new(tracing::Span::none()).redact(["password", "token"]);
    ///     receiver.feed_line(br#"{"t":"ev","pid":1,"ts":[0,0],"span":null,"level":"INFO","target":"t","fields":{"message":"hi","password":"p1","cfg":{"token":"t1","n":1}}}"#);
    /// });
    /// assert_eq!(lines[0]["password"], "[redacted]");
    /// assert_eq!(lines[0]["cfg"], serde_json::json!({"token": "[redacted]", "n": 1}));
    /// ```
    #[must_use]
    pub fn redact<I, T>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        self.redact = spanline_core::Redact::new(keys);
        self
    }

    /// Sets the [`Redact`](spanline_core::Redact) itself (see
    /// [`redact`](Self::redact)).
    pub(crate) fn redacting(mut self, redact: spanline_core::Redact) -> Self {
        self.redact = redact;
        self
    }

    /// Records handled so far.
    ///
    /// ```
    /// let mut receiver = spanline_pipe::Receiver::new(tracing::Span::none());
    /// receiver.feed_line(br#"{"t":"hello","v":1,"pid":1}"#);
    /// assert_eq!(receiver.records(), 1);
    /// ```
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Lines that could not be parsed.
    ///
    /// ```
    /// let mut receiver = spanline_pipe::Receiver::new(tracing::Span::none());
    /// receiver.feed_line(b"garbage");
    /// assert_eq!(receiver.bad_records(), 1);
    /// ```
    pub fn bad_records(&self) -> u64 {
        self.bad
    }

    /// Handles one line (without its `\n`).
    ///
    /// ```
    /// let mut receiver = spanline_pipe::Receiver::new(tracing::Span::none());
    /// receiver.feed_line(br#"{"t":"close","pid":1,"id":9}"#); // an unknown span: ignored
    /// assert_eq!(receiver.records(), 1);
    /// ```
    pub fn feed_line(&mut self, line: &[u8]) {
        if line.is_empty() {
            return;
        }
        // Events are most of the stream: read them borrowed, in one pass.
        // The line is checked as UTF-8 once, whole (serde_json would check
        // each string again, at twice the cost); one that is not goes to
        // the slow path, which counts it.
        let text = std::str::from_utf8(line).ok();
        if let Some(Ok(event)) = text.map(serde_json::from_str::<FastEvent<'_>>) {
            if event.t == "ev" && self.fast_event(&event) {
                self.records += 1;
                return;
            }
        }
        let record = match text {
            Some(text) => serde_json::from_str::<Record>(text),
            None => serde_json::from_slice::<Record>(line),
        };
        match record {
            Ok(record) => {
                self.records += 1;
                self.handle(record);
            }
            Err(_) => {
                self.bad += 1;
                let record = self.excerpt(line);
                tracing::warn!(target: TARGET, parent: &self.root, record, "unparseable record from the child");
            }
        }
    }

    /// The interned callsite of `event`, from this receiver's cache.
    fn event_callsite(
        &mut self,
        event: &FastEvent<'_>,
        level: Level,
    ) -> Option<&'static DynCallsite> {
        use std::hash::{BuildHasher, Hash, Hasher};
        // The table's own seed hashes the identity its keys are.
        let mut h = self.events.hasher().build_hasher();
        (event.target, event.level, event.file, event.line).hash(&mut h);
        event.fields.0.iter().for_each(|(k, _)| k.hash(&mut h));
        let hash = h.finish();
        let same = |cs: &&'static DynCallsite| {
            let meta = cs.meta();
            meta.target() == event.target
                && *meta.level() == level
                && meta.file() == event.file
                && meta.line() == event.line
                && meta.fields().len() == event.fields.0.len()
                && meta
                    .fields()
                    .iter()
                    .zip(&event.fields.0)
                    .all(|(f, (k, _))| f.name() == k.as_ref())
        };
        if let Some(cs) = self
            .events
            .get(&hash)
            .and_then(|v| v.iter().copied().find(same))
        {
            return Some(cs);
        }
        let key = Key {
            span: false,
            name: match (event.file, event.line) {
                (Some(f), Some(l)) => format!("event {f}:{l}"),
                _ => "event".to_string(),
            },
            target: event.target.to_string(),
            level,
            file: event.file.map(str::to_string),
            line: event.line,
            fields: event.fields.0.iter().map(|(k, _)| k.to_string()).collect(),
        };
        let cs = self.callsite(&key);
        // The generic fallback takes the slow path, which knows its fields.
        if cs.is_generic() {
            return None;
        }
        self.events.entry(hash).or_default().push(cs);
        Some(cs)
    }

    /// Re-emits an event read borrowed; false to take the slow path.
    fn fast_event(&mut self, event: &FastEvent<'_>) -> bool {
        let Ok(level) = event.level.parse::<Level>() else {
            return false;
        };
        if level > LevelFilter::current() {
            return true;
        }
        // A value to mask: the slow path owns its fields and masks them.
        if self.has_hidden(&event.fields) || self.has_hidden(&event.context) {
            return false;
        }
        let Some(cs) = self.event_callsite(event, level) else {
            return false;
        };
        if !cs.maybe_enabled() {
            return true;
        }
        let meta = cs.meta();
        // Same field names in the same order: values map one to one.
        let mut owned: Vec<Option<FastValue<'_>>> = event
            .fields
            .0
            .iter()
            .map(|(_, raw)| Some(FastValue::parse(raw.get())))
            .collect();
        rebuild_fast_errors(&event.fields.0, &event.errors, &mut owned);
        let refs: Vec<Option<&dyn Value>> = owned
            .iter()
            .map(|v| v.as_ref().map(FastValue::as_value))
            .collect();
        let values = meta.fields().value_set_all(&refs);
        let chain = self.chain_ref(event.pid, event.span);
        dispatch_event(
            chain,
            meta,
            &values,
            spanline_core::Timestamp::from_unix(event.ts.0, event.ts.1),
            &event.context.as_pairs(),
        );
        true
    }

    /// Whether a redacted key is among `fields`, nested in one's value, or
    /// may be in JSON text a string holds (a string with an escaped quote).
    fn has_hidden(&self, fields: &crate::wire::decode::RawFields<'_>) -> bool {
        !self.redact.is_empty()
            && fields.0.iter().any(|(key, raw)| {
                let raw = raw.get();
                self.redact.hides(key)
                    || raw.contains("\\\"")
                    || (raw.starts_with(['{', '['])
                        && matches!(self.redact.scrub_json(raw), std::borrow::Cow::Owned(_)))
            })
    }

    /// At most 200 bytes of a bad record, for a warning (see [`excerpt`]).
    fn excerpt(&self, line: &[u8]) -> String {
        excerpt(line, &self.redact)
    }

    /// Ends the stream: reports a truncated last record (`tail` is what
    /// followed the last newline), and closes every span still open.
    ///
    /// ```
    /// let mut receiver = spanline_pipe::Receiver::new(tracing::Span::none());
    /// receiver.finish(b"{\"t\":\"ev"); // reports the truncated record, closes open spans
    /// ```
    pub fn finish(&mut self, tail: &[u8]) {
        if !tail.is_empty() {
            let record = self.excerpt(tail);
            tracing::warn!(target: TARGET, parent: &self.root, record, bytes = tail.len(), "truncated record at the end of the child's stream");
        }
        self.spans.clear();
    }

    /// Reports that reading the pipe failed: the stream ends here.
    pub(crate) fn read_failed(&mut self, error: &std::io::Error) {
        let error = error as &dyn std::error::Error;
        tracing::error!(target: TARGET, parent: &self.root, error, "reading the child's log pipe failed");
    }

    /// Reports a line too long to be a record (`start` is its beginning),
    /// which the reader then skips up to its newline.
    pub(crate) fn too_long(&mut self, start: &[u8]) {
        self.bad += 1;
        let record = self.excerpt(start);
        let limit = MAX_LINE;
        tracing::warn!(target: TARGET, parent: &self.root, record, limit, "record from the child too long; skipped");
    }

    /// The chain of spans an event of span `id` goes under, borrowed.
    fn chain_ref(&self, pid: u32, id: Option<u64>) -> &[Span] {
        match id.and_then(|id| self.spans.get(&(pid, id))) {
            Some(node) => &node.chain,
            None => std::slice::from_ref(&self.root),
        }
    }

    fn chain_of(&self, pid: u32, id: Option<u64>) -> Vec<Span> {
        id.and_then(|id| self.spans.get(&(pid, id)))
            .map_or_else(|| vec![self.root.clone()], |n| n.chain.clone())
    }

    fn handle(&mut self, record: Record) {
        match record {
            Record::Hello { v, pid } if v != VERSION => {
                tracing::warn!(target: TARGET, parent: &self.root, child_version = v, version = VERSION, pid, "the child writes another version of the wire format; its records may not be read");
            }
            Record::Hello { .. } => {}
            Record::Span {
                pid,
                id,
                parent,
                name,
                target,
                level,
                mut fields,
                empty,
            } => {
                crate::redact::redact_fields(&self.redact, &mut fields, None);
                let chain = self.chain_of(pid, parent);
                if self.spans.len() >= MAX_OPEN_SPANS && !self.spans.contains_key(&(pid, id)) {
                    // Its events go under the child span: memory stays bounded.
                    if !self.said_open {
                        self.said_open = true;
                        tracing::warn!(
                            target: TARGET,
                            parent: &self.root,
                            limit = MAX_OPEN_SPANS,
                            "the child keeps too many spans open; further ones are not recreated"
                        );
                    }
                    return;
                }
                let node = match level.parse::<Level>() {
                    Ok(_) if chain.len() > MAX_DEPTH => {
                        if !self.said_depth {
                            self.said_depth = true;
                            tracing::warn!(
                                target: TARGET,
                                parent: &self.root,
                                limit = MAX_DEPTH,
                                "the child's spans are nested too deep; deeper ones are folded into their ancestor"
                            );
                        }
                        Node { chain, own: false }
                    }
                    Ok(level) => self.new_span(chain, (&name, &target, level), &fields, &empty),
                    Err(_) => Node { chain, own: false },
                };
                self.spans.insert((pid, id), node);
            }
            Record::Rec {
                pid,
                id,
                mut fields,
            } => {
                crate::redact::redact_fields(&self.redact, &mut fields, None);
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
                mut fields,
                mut errors,
                mut context,
            } => {
                let Ok(level) = level.parse::<Level>() else {
                    return;
                };
                crate::redact::redact_fields(&self.redact, &mut fields, Some(&mut errors));
                if !self.redact.is_empty() {
                    crate::redact::redact_map(&self.redact, &mut context);
                }
                let chain = self.chain_of(pid, span);
                let at = spanline_core::Timestamp::from_unix(ts.0, ts.1);
                let context: Vec<(&str, String)> = context
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.to_string()))
                    .collect();
                let context: Vec<(&str, &str)> =
                    context.iter().map(|(k, v)| (*k, v.as_str())).collect();
                self.event(
                    &chain,
                    level,
                    &target,
                    file,
                    line,
                    (&fields, &errors, &context),
                    at,
                );
            }
            Record::Drop { n, .. } => {
                tracing::warn!(target: TARGET, parent: &self.root, dropped = n, "the child dropped log records");
            }
        }
    }

    fn callsite(&self, key: &Key) -> &'static DynCallsite {
        let mut budget = self.budget.get();
        let found = Interner::global().get(key, &mut budget);
        self.budget.set(budget);
        let full = match found {
            Ok(cs) => return cs,
            Err(full) => full,
        };
        // Said once per child: the first limit it meets.
        if !self.said_callsites.replace(true) {
            let limit = full.limit();
            match full {
                Full::Child => tracing::warn!(
                    target: TARGET,
                    parent: &self.root,
                    limit,
                    "too many distinct callsites from this child; further ones are forwarded through a generic one"
                ),
                Full::Live => tracing::warn!(
                    target: TARGET,
                    parent: &self.root,
                    limit,
                    "the running children hold too many distinct callsites; this child's new ones are forwarded through a generic one until others exit"
                ),
                Full::Retained => tracing::warn!(
                    target: TARGET,
                    parent: &self.root,
                    limit_bytes = limit,
                    "the callsites this process interned reached the memory it gives them; new ones are forwarded through a generic one"
                ),
            }
        }
        Interner::global().generic(key)
    }

    /// Recreates a span of the child's: `fields` with their values, then
    /// `empty`, the fields it declared without one (recorded later, if at
    /// all, by `rec` records).
    fn new_span(
        &self,
        chain: Vec<Span>,
        (name, target, level): (&str, &str, Level),
        fields: &Map<String, Json>,
        empty: &[String],
    ) -> Node {
        let key = Key {
            span: true,
            name: name.to_string(),
            target: target.to_string(),
            level,
            file: None,
            line: None,
            fields: field_names(fields, empty),
        };
        let cs = self.callsite(&key);
        let meta = cs.meta();
        // The parent writes nothing at all: no context is worth keeping.
        if LevelFilter::current() == LevelFilter::OFF {
            return Node { chain, own: false };
        }
        let owned = owned_values(cs, target, fields);
        let refs: Vec<Option<&dyn Value>> = owned
            .iter()
            .map(|o| o.as_ref().map(Owned::as_value))
            .collect();
        let values = meta.fields().value_set_all(&refs);
        let parent = chain.last().and_then(Span::id);
        // Made whatever this process's filter says: the child's filter
        // decided already that the span exists (and sent it), and its
        // fields are the context of the child's lines. It is asked first
        // all the same, so per-layer filters note their verdict: a layer
        // whose filter rejects the span does not see it. Lines the span
        // itself would make (close lines) are filtered when made.
        let span = {
            let _entered = Entered::chain(&chain);
            tracing::dispatcher::get_default(|d| {
                let _ = d.enabled(meta);
                Span::child_of_with(parent.clone(), meta, &values, d)
            })
        };
        // Disabled only without a subscriber.
        if span.is_disabled() {
            return Node { chain, own: false };
        }
        let mut chain = chain;
        chain.push(span);
        Node { chain, own: true }
    }

    #[allow(clippy::too_many_arguments)]
    fn event(
        &self,
        chain: &[Span],
        level: Level,
        target: &str,
        file: Option<String>,
        line: Option<u32>,
        (fields, errors, context): EventParts<'_>,
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
        let mut owned = owned_values(cs, target, fields);
        if !cs.is_generic() {
            rebuild_errors(meta, fields, errors, &mut owned);
        }
        let refs: Vec<Option<&dyn Value>> = owned
            .iter()
            .map(|o| o.as_ref().map(Owned::as_value))
            .collect();
        dispatch_event(
            chain,
            meta,
            &meta.fields().value_set_all(&refs),
            at,
            context,
        );
    }
}

/// A recreated span's field names: those with values, then those declared
/// without one, each name once.
fn field_names(fields: &Map<String, Json>, empty: &[String]) -> Vec<String> {
    let mut names: Vec<String> = fields.keys().cloned().collect();
    for name in empty {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
}

/// A slow-path event's fields, its errors' type names, and its context as
/// the child resolved it (keys and JSON values).
type EventParts<'a> = (
    &'a Map<String, Json>,
    &'a Map<String, Json>,
    &'a [(&'a str, &'a str)],
);

impl Drop for Receiver {
    /// The child is gone (its stream ended): the callsites it interned no
    /// longer count against the running children's limit.
    fn drop(&mut self) {
        Interner::global().release(self.budget.get_mut());
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
