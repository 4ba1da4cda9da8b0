//! The context store: every span's fields, encoded once, merged with its
//! ancestors' at creation, and readable by any layer in O(1) per event.
//!
//! Why one file of about 1,100 lines: it is one concept, the store, in four
//! marked sections (storage, the layer, reading, setting at run time) that
//! share its private representation; a third of it is runnable examples.
//!
//! # Model
//!
//! Each span gets a private extension holding an `Arc<Node>`:
//! - `own`: the span's own fields, in declaration order;
//! - `merged`: the span's fields and all its ancestors', one entry per key,
//!   root first, the nearest span's value winning;
//! - `dynamic`: keys set at run time with [`set`], shared by every span under
//!   the same root.
//!
//! A value given when the span is created is fixed: an already-encoded JSON
//! fragment behind an `Arc`, copied by reference into descendants. A field
//! declared `Empty` gets a shared late slot instead, so a later
//! `Span::record` shows up on lines of descendants and tasks that exist
//! already. A span without fields shares its parent's node.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::error::Error;
use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use tracing_core::field::{Field, Visit};
use tracing_core::span::{Attributes, Id, Record};
use tracing_core::subscriber::Interest;
use tracing_core::{Dispatch, Event, LevelFilter, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Identity, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::encode::{self, NumberPolicy};
use crate::fields::{forward_visit, Val, ValueSink};
use crate::job_end::{HandedOff, JobEnds};
use crate::keep::ContextKeys;
use crate::span_close::Timing;
use crate::Redact;

// ==== storage ====

/// A context key: a field name (static) or a key set at run time.
#[derive(Clone, Debug)]
pub(crate) enum Key {
    Static(&'static str),
    Shared(Arc<str>),
}

impl Key {
    pub(crate) fn as_str(&self) -> &str {
        match self {
            Key::Static(s) => s,
            Key::Shared(s) => s,
        }
    }
}

/// Where an entry's value lives.
#[derive(Clone, Debug)]
pub(crate) enum Slot {
    /// Encoded when the span was created, as the whole `"key":value` pair,
    /// so an event copies it with one `memcpy`; never changes. Every pair of
    /// a span lives in one shared buffer (one allocation per span, not per
    /// field): the pair is `text[start..end]`, its value from `value_at`.
    Fixed {
        text: Arc<[u8]>,
        start: u32,
        value_at: u32,
        end: u32,
    },
    /// Declared `Empty`; filled later and shared by all descendants.
    Late(Arc<LateSlot>),
    /// Nothing: the unused inline room of [`Entries`], never in a slice.
    Unused,
}

/// A value recorded after the span was created.
#[derive(Debug)]
pub(crate) struct LateSlot {
    /// The encoded `"key":` that goes before the value.
    pub(crate) key_json: Box<str>,
    pub(crate) value: ArcSwapOption<String>,
    /// What an outer span held for the key when this span was created:
    /// shown while this slot is empty, so a field declared `Empty` and not
    /// yet recorded hides nothing.
    pub(crate) below: Option<Entry>,
}

/// `"key":` with the key escaped.
pub(crate) fn key_json(key: &str) -> String {
    let mut buf = Vec::with_capacity(key.len() + 3);
    encode::write_str(&mut buf, key);
    buf.push(b':');
    String::from_utf8(buf).unwrap_or_default()
}

#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) key: Key,
    pub(crate) slot: Slot,
}

impl Entry {
    /// A field declared `Empty`, over `below`, the outer span's entry for
    /// the same key (if any).
    fn late(key: Key, below: Option<Entry>) -> Self {
        let key_json = key_json(key.as_str()).into_boxed_str();
        Entry {
            key,
            slot: Slot::Late(Arc::new(LateSlot {
                key_json,
                value: ArcSwapOption::empty(),
                below,
            })),
        }
    }

    /// Calls `f` with the entry's JSON value, if it has one now.
    #[inline]
    pub(crate) fn with_json<R>(&self, f: impl FnOnce(&str) -> R) -> Option<R> {
        match &self.slot {
            Slot::Fixed {
                text,
                value_at,
                end,
                ..
            } => text
                .get(*value_at as usize..*end as usize)
                .and_then(|json| std::str::from_utf8(json).ok())
                .map(f),
            Slot::Late(cell) => match cell.value.load().as_deref() {
                Some(json) => Some(f(json)),
                None => cell.below.as_ref().and_then(|below| below.with_json(f)),
            },
            Slot::Unused => None,
        }
    }

    /// The entry's JSON value as bytes, if it has one now: for encoders,
    /// which copy it without reading it as text.
    #[inline]
    pub(crate) fn with_json_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        match &self.slot {
            Slot::Fixed {
                text,
                value_at,
                end,
                ..
            } => text.get(*value_at as usize..*end as usize).map(f),
            Slot::Late(cell) => match cell.value.load().as_deref() {
                Some(json) => Some(f(json.as_bytes())),
                None => cell
                    .below
                    .as_ref()
                    .and_then(|below| below.with_json_bytes(f)),
            },
            Slot::Unused => None,
        }
    }
}

/// How many entries a node keeps without an allocation of its own: a
/// request span and a child of two fields each fit.
const INLINE_ENTRIES: usize = 4;

const UNUSED: Entry = Entry {
    key: Key::Static(""),
    slot: Slot::Unused,
};

/// A node's entries: up to [`INLINE_ENTRIES`] inside the node, more on the
/// heap. Reads as a slice.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // inline on purpose: most nodes need no second allocation
pub(crate) enum Entries {
    Inline {
        len: u8,
        items: [Entry; INLINE_ENTRIES],
    },
    Heap(Vec<Entry>),
}

impl Entries {
    pub(crate) fn with_capacity(n: usize) -> Self {
        if n <= INLINE_ENTRIES {
            Entries::Inline {
                len: 0,
                items: [UNUSED; INLINE_ENTRIES],
            }
        } else {
            Entries::Heap(Vec::with_capacity(n))
        }
    }

    pub(crate) fn push(&mut self, entry: Entry) {
        match self {
            Entries::Inline { len, items } => match items.get_mut(usize::from(*len)) {
                Some(free) => {
                    *free = entry;
                    *len += 1;
                }
                None => {
                    let mut heap = Vec::with_capacity(INLINE_ENTRIES * 2);
                    heap.extend(items.iter_mut().map(|e| std::mem::replace(e, UNUSED)));
                    heap.push(entry);
                    *self = Entries::Heap(heap);
                }
            },
            Entries::Heap(heap) => heap.push(entry),
        }
    }
}

impl Default for Entries {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl std::ops::Deref for Entries {
    type Target = [Entry];

    fn deref(&self) -> &[Entry] {
        match self {
            Entries::Inline { len, items } => items.get(..usize::from(*len)).unwrap_or_default(),
            Entries::Heap(heap) => heap,
        }
    }
}

impl std::ops::DerefMut for Entries {
    fn deref_mut(&mut self) -> &mut [Entry] {
        match self {
            Entries::Inline { len, items } => {
                items.get_mut(..usize::from(*len)).unwrap_or_default()
            }
            Entries::Heap(heap) => heap,
        }
    }
}

impl FromIterator<Entry> for Entries {
    fn from_iter<I: IntoIterator<Item = Entry>>(iter: I) -> Self {
        let iter = iter.into_iter();
        let mut entries = Entries::with_capacity(iter.size_hint().0);
        for entry in iter {
            entries.push(entry);
        }
        entries
    }
}

/// The keys bound at run time with [`set`] under one root span.
pub(crate) type Bound = Vec<(Arc<str>, Arc<str>)>;

/// Keys set with [`set`], shared by every span under one root. Empty until
/// the first `set`: most requests never bind a key.
#[derive(Debug, Default)]
pub(crate) struct Dynamic {
    entries: ArcSwapOption<Bound>,
}

impl Dynamic {
    fn with_entries(entries: Bound) -> Self {
        Self {
            entries: ArcSwapOption::from_pointee(entries),
        }
    }

    /// The bound keys now (an empty list when none).
    pub(crate) fn load(&self) -> arc_swap::Guard<Option<Arc<Bound>>> {
        self.entries.load()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.load().as_ref().is_none_or(|e| e.is_empty())
    }

    fn to_vec(&self) -> Bound {
        self.entries.load().as_deref().cloned().unwrap_or_default()
    }
}

/// Which of a node's merged entries are the span's own.
#[derive(Debug)]
enum Own {
    /// `merged[from..]`: a root span, or a child that only adds keys (the
    /// common case: no second list to allocate).
    Tail(usize),
    /// A child that redefines a key of an ancestor (rare: on the heap).
    Entries(Vec<Entry>),
}

/// Where a node finds the keys bound with [`set`].
#[derive(Debug)]
enum BoundIn {
    /// This node is a root: it holds them.
    Here(Dynamic),
    /// The root node that holds them (kept alive by its descendants).
    Root(Arc<Node>),
}

#[derive(Debug)]
pub(crate) struct Node {
    own: Own,
    pub(crate) merged: Entries,
    bound: BoundIn,
}

impl Default for Node {
    fn default() -> Self {
        Self {
            own: Own::Tail(0),
            merged: Entries::default(),
            bound: BoundIn::Here(Dynamic::default()),
        }
    }
}

impl Node {
    /// The span's own entries, in declaration order.
    pub(crate) fn own(&self) -> &[Entry] {
        match &self.own {
            Own::Tail(from) => self.merged.get(*from..).unwrap_or_default(),
            Own::Entries(own) => own,
        }
    }

    /// The keys bound with [`set`] under this node's root.
    pub(crate) fn dynamic(&self) -> &Dynamic {
        match &self.bound {
            BoundIn::Here(dynamic) => dynamic,
            BoundIn::Root(root) => root.dynamic(),
        }
    }

    /// A new node: `own` over the parent's entries (a root when `parent`
    /// is `None`), sharing the parent's bound keys.
    fn new(parent: Option<&Arc<Node>>, own: Entries) -> Self {
        let Some(parent) = parent else {
            return Self {
                own: Own::Tail(0),
                merged: own,
                bound: BoundIn::Here(Dynamic::default()),
            };
        };
        let bound = match &parent.bound {
            BoundIn::Here(_) => BoundIn::Root(parent.clone()),
            BoundIn::Root(root) => BoundIn::Root(root.clone()),
        };
        let redefines = own.iter().any(|o| {
            parent
                .merged
                .iter()
                .any(|p| p.key.as_str() == o.key.as_str())
        });
        if redefines {
            Self {
                merged: merge(&parent.merged, &own),
                own: Own::Entries(own.to_vec()),
                bound,
            }
        } else {
            let from = parent.merged.len();
            let mut merged = Entries::with_capacity(from + own.len());
            for entry in parent.merged.iter().cloned().chain(own.iter().cloned()) {
                merged.push(entry);
            }
            Self {
                own: Own::Tail(from),
                merged,
                bound,
            }
        }
    }

    /// This node with `own` as the span's entries instead (a fixed value
    /// recorded again), over the same ancestors and bound keys.
    fn rebuilt(self: &Arc<Self>, own: Entries, parent_merged: &[Entry]) -> Self {
        let bound = match &self.bound {
            // A root rebuilt: its bound keys stay where its children see them.
            BoundIn::Here(_) => BoundIn::Root(self.clone()),
            BoundIn::Root(root) => BoundIn::Root(root.clone()),
        };
        Self {
            merged: merge(parent_merged, &own),
            own: Own::Entries(own.to_vec()),
            bound,
        }
    }
}

/// The span extension. A newtype, so no other layer's data collides with it.
#[derive(Debug)]
pub(crate) struct SpanContext {
    pub(crate) node: Arc<Node>,
    /// False when the span has no fields and shares its parent's node.
    pub(crate) owns_node: bool,
}

// ==== the layer ====

/// The layer that stores span fields for every other spanline layer, and
/// the one place the filter goes.
///
/// Register it first, directly on the `Registry`: `Layered` calls inner
/// layers first, so the context of a span exists before any output layer
/// sees the span or its events.
///
/// # Filtering
///
/// Give it the filter ([`filter`](Self::filter), for example `RUST_LOG` as
/// an `EnvFilter`) rather than putting the filter in front of the registry.
/// It then acts as the global filter for every layer, with one difference:
/// a span that carries context is kept, with all its fields, whatever the
/// filter says. That is every span at `INFO` or above (the
/// [`context_level`](Self::context_level)), every span with a field named
/// like a [`ContextKeys`] key (such as `request_id` or `job_id`), and every
/// span spanline opened (a request, a restored job, detached work, a child
/// process). So under `RUST_LOG=warn` a WARN line inside an INFO request
/// span, or inside a span kept as a bound logger, still has its fields,
/// while a `debug_span!` with ordinary fields under `RUST_LOG=info` is
/// disabled at its callsite and costs nothing. Filters decide which lines
/// are written, not what a written line carries. A filter whose max level
/// is `OFF` turns everything off, context spans too.
///
/// A filter put in front of the registry (`registry().with(filter)`) or on
/// this layer with `.with_filter(..)` disables spans before this layer sees
/// them: their context is lost.
///
/// ```
/// use tracing_subscriber::{filter::LevelFilter, prelude::*};
/// let subscriber = tracing_subscriber::registry()
///     .with(spanline_core::ContextLayer::new().filter(LevelFilter::WARN));
/// tracing::subscriber::with_default(subscriber, || {
///     // An INFO span under a WARN filter: kept, because it carries context.
///     let _span = tracing::info_span!("request", request_id = "r-1").entered();
///     assert_eq!(
///         spanline_core::CtxView::current().unwrap().get("request_id").unwrap().as_str().unwrap(),
///         "r-1"
///     );
///     // An ordinary DEBUG span: disabled by the filter.
///     assert!(tracing::debug_span!("step", n = 1).is_disabled());
/// });
/// ```
///
/// Big integers as strings (give the JSON schema the same policy), and one
/// more key that makes a span a context span:
///
/// ```
/// use tracing_subscriber::prelude::*;
/// use spanline_core::{ContextLayer, CtxView, NumberPolicy};
/// let numbers = NumberPolicy { big_ints_as_strings: true, ..NumberPolicy::default() };
/// let layer = ContextLayer::new().with_number_policy(numbers).context_key("batch");
/// assert!(layer.context_keys().contains("batch"));
/// let subscriber = tracing_subscriber::registry().with(layer);
/// tracing::subscriber::with_default(subscriber, || {
///     let _s = tracing::info_span!("s", id = u64::MAX).entered();
///     assert_eq!(CtxView::current().unwrap().get("id").unwrap().as_json(), "\"18446744073709551615\"");
/// });
/// ```
#[derive(Debug, Clone)]
pub struct ContextLayer<F = Identity> {
    values: ValueSink,
    keys: ContextKeys,
    /// Spans at this level or above are kept whatever the filter says.
    context_level: LevelFilter,
    filter: F,
    /// Whether a closing span gets a line of its own ([`span_close_lines`](Self::span_close_lines)).
    span_close: bool,
    /// The subscriber this layer is part of: span-close lines are dispatched
    /// through it, and tracing-opentelemetry answers for a span through it
    /// (inside a dispatch, `get_default` gives none).
    dispatch: Arc<std::sync::OnceLock<tracing_core::dispatcher::WeakDispatch>>,
    /// Who hears of job ends (found through the dispatch, see [`JobEnds`]).
    job_ends: JobEnds,
    /// Keys kept out of everything that leaves the process (found through
    /// the dispatch, see [`Redact::current`]).
    redact: Redact,
}

impl Default for ContextLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl ContextLayer {
    /// The default [`context_level`](Self::context_level): spans at `INFO`
    /// and above keep their fields on the lines inside them under any
    /// filter.
    pub const CONTEXT_LEVEL: LevelFilter = LevelFilter::INFO;

    /// A context layer with no filter and the default [`NumberPolicy`]:
    /// every span and event the rest of the stack enables reaches it.
    ///
    /// See [`ContextLayer`]'s example.
    pub fn new() -> Self {
        Self {
            values: ValueSink::default(),
            keys: ContextKeys::default(),
            context_level: Self::CONTEXT_LEVEL,
            filter: Identity::new(),
            span_close: false,
            dispatch: Arc::default(),
            job_ends: JobEnds::default(),
            redact: Redact::default(),
        }
    }
}

impl<F> ContextLayer<F> {
    /// Sets how span field numbers are encoded. Use the same policy as the
    /// output layers so numbers look alike whether they come from an event
    /// or from a span.
    ///
    /// See [`ContextLayer`]'s example.
    #[must_use]
    pub fn with_number_policy(mut self, numbers: NumberPolicy) -> Self {
        self.values = ValueSink { numbers };
        self
    }

    /// Filters every line with `filter` (any filter that works in front of
    /// a registry: `EnvFilter`, `LevelFilter`, `Targets`, `filter_fn`),
    /// keeping spans that carry context whatever it says (see the type's
    /// docs).
    ///
    /// ```
    /// use tracing_subscriber::{prelude::*, EnvFilter};
    /// let layer = spanline_core::ContextLayer::new().filter(EnvFilter::new("warn,my_crate=debug"));
    /// let _subscriber = tracing_subscriber::registry().with(layer);
    /// ```
    pub fn filter<G>(self, filter: G) -> ContextLayer<G> {
        ContextLayer {
            values: self.values,
            keys: self.keys,
            context_level: self.context_level,
            filter,
            span_close: self.span_close,
            dispatch: self.dispatch,
            job_ends: self.job_ends,
            redact: self.redact,
        }
    }

    /// Writes one more line when a span closes, with how long it lived
    /// (`duration_ms`, `busy_ms`, `idle_ms`): what tracing-subscriber's
    /// `FmtSpan::CLOSE` gives, on every sink (default off). The line is the
    /// span's child, with its level and target, so the filter decides on
    /// it as on the span's other lines: under `RUST_LOG=warn` an INFO
    /// span's close line is not written, even when its context is kept.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use tracing_subscriber::prelude::*;
    /// use spanline_core::{ContextLayer, LineEvent, LineLayer, LineSink, Schema};
    ///
    /// #[derive(Clone, Default)]
    /// struct Memory(Arc<Mutex<String>>);
    /// impl LineSink for Memory {
    ///     fn accept(&self, line: &[u8], _event: &LineEvent<'_>) {
    ///         self.0.lock().unwrap().push_str(std::str::from_utf8(line).unwrap());
    ///     }
    /// }
    ///
    /// let memory = Memory::default();
    /// let subscriber = tracing_subscriber::registry()
    ///     .with(ContextLayer::new().span_close_lines(true))
    ///     .with(LineLayer::new(Schema::default(), memory.clone()));
    /// tracing::subscriber::with_default(subscriber, || {
    ///     let _query = tracing::info_span!("query", table = "users").entered();
    /// });
    /// let line: serde_json::Value = serde_json::from_str(&memory.0.lock().unwrap()).unwrap();
    /// assert_eq!(line["message"], "span closed");
    /// assert_eq!(line["span"], "query");
    /// assert_eq!(line["table"], "users");
    /// assert!(line["duration_ms"].as_f64().unwrap() >= line["busy_ms"].as_f64().unwrap());
    /// ```
    #[must_use]
    pub fn span_close_lines(mut self, on: bool) -> Self {
        self.span_close = on;
        self
    }

    /// Makes `key` a context key too: a span with a field of that name is
    /// kept whatever the filter says (see [`ContextKeys`]).
    ///
    /// ```
    /// use tracing_subscriber::{filter::LevelFilter, prelude::*};
    /// let layer = spanline_core::ContextLayer::new().context_key("batch").filter(LevelFilter::WARN);
    /// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
    ///     let _launch = tracing::info_span!("launch", batch = "nightly").entered();
    ///     assert!(spanline_core::CtxView::current().unwrap().get("batch").is_some());
    /// });
    /// ```
    #[must_use]
    pub fn context_key(mut self, key: impl Into<String>) -> Self {
        self.keys = self.keys.with(key);
        self
    }

    /// Keeps every span at `level` or above whatever the filter says
    /// (default [`INFO`](LevelFilter::INFO), the level of `info_span!` and
    /// `#[instrument]`), so the fields of a span kept as a bound logger, or
    /// of any `#[instrument]`ed function, stay on the lines inside it under
    /// `RUST_LOG=warn`. Spans below it (`debug_span!`, `trace_span!`) follow
    /// the filter unless they carry a context key: disabled, they cost
    /// nothing and give nothing. `LevelFilter::TRACE` keeps every span;
    /// `LevelFilter::OFF` keeps only context-key spans and spanline's own.
    ///
    /// ```
    /// use tracing_subscriber::{filter::LevelFilter, prelude::*};
    /// let layer = spanline_core::ContextLayer::new().filter(LevelFilter::WARN);
    /// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
    ///     // A bound logger: an INFO span kept in a struct, its lines at WARN.
    ///     let device = tracing::info_span!("device", device_uid = "dev-1");
    ///     let _in = device.enter();
    ///     assert!(spanline_core::CtxView::current().unwrap().get("device_uid").is_some());
    ///     assert!(tracing::debug_span!("detail", n = 1).is_disabled());
    /// });
    /// let strict = spanline_core::ContextLayer::new().context_level(LevelFilter::OFF).filter(LevelFilter::WARN);
    /// tracing::subscriber::with_default(tracing_subscriber::registry().with(strict), || {
    ///     assert!(tracing::info_span!("device", device_uid = "dev-1").is_disabled());
    /// });
    /// ```
    #[must_use]
    pub fn context_level(mut self, level: LevelFilter) -> Self {
        self.context_level = level;
        self
    }

    /// The keys that make a span a context span.
    ///
    /// ```
    /// let layer = spanline_core::ContextLayer::new().context_key("batch");
    /// assert!(layer.context_keys().contains("batch"));
    /// ```
    pub fn context_keys(&self) -> &ContextKeys {
        &self.keys
    }

    /// Keeps the context keys `keys` hides (whole keys or `*` patterns, see
    /// [`Redact`]) out of everything that carries context out of the
    /// process: `spanline_context::ContextSnapshot::capture` leaves them
    /// out of `BAGGAGE`, outgoing headers and job payloads, and masks
    /// hidden keys inside the JSON values it carries. Give it the keys you
    /// give the output layers (`spanline::init()` does): lines are masked
    /// by each sink's own keys, this layer stores values as they are, so
    /// that application code reading [`CtxView`] sees them.
    ///
    /// The keys are found through the subscriber, with
    /// [`Redact::current`].
    ///
    /// ```
    /// use tracing_subscriber::prelude::*;
    /// let layer = spanline_core::ContextLayer::new().redact(["user_id", "*token*"]);
    /// assert!(layer.redaction().hides("user_id"));
    /// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
    ///     let _req = tracing::info_span!("request", user_id = 7).entered();
    ///     assert!(spanline_core::Redact::current().hides("api_token"));
    ///     // The store keeps the value: lines and snapshots hide it.
    ///     assert_eq!(spanline_core::CtxView::current().unwrap().get("user_id").unwrap().as_json(), "7");
    /// });
    /// ```
    #[must_use]
    pub fn redact<I, S>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.redact = Redact::new(keys);
        self
    }

    /// The keys given with [`redact`](Self::redact).
    ///
    /// See [`redact`](Self::redact)'s example.
    pub fn redaction(&self) -> &Redact {
        &self.redact
    }

    /// True when `meta` is kept whatever the filter says: a context span,
    /// unless the filter turns everything off.
    fn keeps<S>(&self, meta: &Metadata<'_>) -> bool
    where
        F: Layer<S>,
        S: Subscriber,
    {
        let context = self.keys.is_context_span(meta)
            || (meta.is_span() && *meta.level() <= self.context_level);
        context && self.filter.max_level_hint() != Some(LevelFilter::OFF)
    }
}

impl<F> ContextLayer<F> {
    /// Tells of a job's end when span `id` is the outermost span of its job
    /// and the job was not handed on from it (see [`crate::job_end`]).
    fn job_end<S>(&self, id: &Id, ctx: &Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let Some(span) = ctx.span(id) else { return };
        let Some(job) = job_of(&span) else { return };
        if span
            .extensions()
            .get::<HandedOff>()
            .is_some_and(|HandedOff(jobs)| jobs.contains(&job))
        {
            return;
        }
        if span
            .parent()
            .is_some_and(|p| job_of(&p).as_deref() == Some(job.as_str()))
        {
            return;
        }
        drop(span);
        self.job_ends.announce(&job);
    }

    /// Dispatches the close line of span `id`, if the filter lets a line
    /// of its level and target through (a context span may be kept below
    /// the filter; its close line is not).
    fn close_line<S>(&self, id: &Id, ctx: &Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
        F: Layer<S>,
    {
        let Some(span) = ctx.span(id) else { return };
        let meta = span.metadata();
        let Some(timing) = span.extensions_mut().remove::<Timing>() else {
            return;
        };
        // The span's lock is released before the line is dispatched: the
        // output layers read the span's context.
        drop(span);
        if !self.filter.enabled(meta, ctx.clone()) {
            return;
        }
        if let Some(dispatch) = self.dispatch.get().and_then(|d| d.upgrade()) {
            crate::span_close::emit(&dispatch, id, meta, &timing);
        }
    }
}

impl<S, F> Layer<S> for ContextLayer<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    F: Layer<S>,
{
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        let _ = self.dispatch.set(subscriber.downgrade());
        self.filter.on_register_dispatch(subscriber);
    }

    fn on_layer(&mut self, subscriber: &mut S) {
        self.filter.on_layer(subscriber);
    }

    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        // The filter sees every callsite (an EnvFilter learns its span
        // directives here), then context spans are kept regardless.
        let interest = self.filter.register_callsite(meta);
        if self.keeps::<S>(meta) {
            Interest::always()
        } else {
            interest
        }
    }

    fn enabled(&self, meta: &Metadata<'_>, ctx: Context<'_, S>) -> bool {
        self.keeps::<S>(meta) || self.filter.enabled(meta, ctx)
    }

    fn event_enabled(&self, event: &Event<'_>, ctx: Context<'_, S>) -> bool {
        // tracing asks every layer here before any layer's `on_event`: the
        // one hook where the context is ready for all of them, whatever
        // order they were composed in.
        let enabled = self.filter.event_enabled(event, ctx.clone());
        if enabled {
            self.resolve_event(event, &ctx);
        }
        enabled
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        let hint = self.filter.max_level_hint();
        crate::keep::set_lines_max_level(hint);
        // Context spans may have any level: only OFF is a ceiling.
        hint.filter(|level| *level == LevelFilter::OFF)
    }

    fn on_follows_from(&self, span: &Id, follows: &Id, ctx: Context<'_, S>) {
        self.filter.on_follows_from(span, follows, ctx);
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if self.span_close {
            if let Some(span) = ctx.span(id) {
                if let Some(timing) = span.extensions_mut().get_mut::<Timing>() {
                    timing.enter();
                }
            }
        }
        self.filter.on_enter(id, ctx);
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        if self.span_close {
            if let Some(span) = ctx.span(id) {
                if let Some(timing) = span.extensions_mut().get_mut::<Timing>() {
                    timing.exit();
                }
            }
        }
        self.filter.on_exit(id, ctx);
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if self.span_close {
            self.close_line(&id, &ctx);
        }
        if !self.job_ends.is_empty() {
            self.job_end(&id, &ctx);
        }
        self.filter.on_close(id, ctx);
    }

    // `Dispatch::downcast_ref::<JobEnds>()` finds this layer's job ends, as
    // tracing-opentelemetry's layer is found: the way layers of one
    // subscriber find each other.
    #[allow(unsafe_code)]
    unsafe fn downcast_raw(&self, id: std::any::TypeId) -> Option<*const ()> {
        if id == std::any::TypeId::of::<Self>() {
            Some(self as *const Self as *const ())
        } else if id == std::any::TypeId::of::<JobEnds>() {
            Some(&self.job_ends as *const JobEnds as *const ())
        } else if id == std::any::TypeId::of::<Redact>() {
            Some(&self.redact as *const Redact as *const ())
        } else {
            None
        }
    }

    fn on_id_change(&self, old: &Id, new: &Id, ctx: Context<'_, S>) {
        self.filter.on_id_change(old, new, ctx);
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        self.filter.on_new_span(attrs, id, ctx.clone());
        let Some(span) = ctx.span(id) else { return };
        let parent = span
            .parent()
            .and_then(|p| p.extensions().get::<SpanContext>().map(|c| c.node.clone()));
        // Encode with no lock held: user Debug impls run here.
        let fields = attrs.metadata().fields();
        let own = encode_fields(
            self.values,
            fields.len(),
            |v| attrs.record(v),
            |own| {
                for field in fields {
                    if !own.iter().any(|e| e.key.as_str() == field.name()) {
                        let below = parent
                            .as_ref()
                            .and_then(|p| p.merged.iter().find(|e| e.key.as_str() == field.name()));
                        own.push(Entry::late(Key::Static(field.name()), below.cloned()));
                    }
                }
            },
        );

        let ext = match parent {
            Some(node) if own.is_empty() => SpanContext {
                node,
                owns_node: false,
            },
            parent => SpanContext {
                node: Arc::new(Node::new(parent.as_ref(), own)),
                owns_node: true,
            },
        };
        let mut extensions = span.extensions_mut();
        if extensions.get_mut::<SpanContext>().is_none() {
            extensions.insert(ext);
        }
        if self.span_close && extensions.get_mut::<Timing>().is_none() {
            extensions.insert(Timing::new());
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        self.filter.on_record(id, values, ctx.clone());
        let recorded = encode_fields(self.values, 0, |v| values.record(v), |_| {});
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        let Some(sc) = extensions.get_mut::<SpanContext>() else {
            return;
        };
        let mut changed_fixed = Vec::new();
        for entry in recorded.iter().cloned() {
            let own = sc
                .node
                .own()
                .iter()
                .find(|e| e.key.as_str() == entry.key.as_str());
            match own.map(|e| &e.slot) {
                Some(Slot::Late(cell)) => {
                    if let Some(json) = entry.with_json(str::to_string) {
                        cell.value.store(Some(Arc::new(json)));
                    }
                }
                _ => changed_fixed.push(entry),
            }
        }
        if changed_fixed.is_empty() || !sc.owns_node {
            return;
        }
        // A fixed value was recorded again: later children and events of this
        // span see the new value; children created before keep their copy.
        let mut own: Entries = sc.node.own().iter().cloned().collect();
        for entry in changed_fixed {
            match own
                .iter_mut()
                .find(|e| e.key.as_str() == entry.key.as_str())
            {
                Some(slot) => *slot = entry,
                None => own.push(entry),
            }
        }
        let merged = sc.node.merged.to_vec();
        sc.node = Arc::new(sc.node.rebuilt(own, &merged));
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        self.filter.on_event(event, ctx);
    }
}

impl<F> ContextLayer<F> {
    /// Resolves `event`'s context once, for every output layer, with this
    /// layer's unfiltered view: a span that an output layer's own filter
    /// hides still contributes its fields to that layer's lines.
    fn resolve_event<S>(&self, event: &Event<'_>, ctx: &Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let span = ctx.event_span(event);
        let node = span
            .as_ref()
            .and_then(|s| s.extensions().get::<SpanContext>().map(|c| c.node.clone()));
        let node = with_overlay(node);
        // Asked with no span lock held: tracing-opentelemetry takes its own.
        #[cfg(feature = "opentelemetry")]
        let otel = span.and_then(|s| {
            let dispatch = self.dispatch.get()?.upgrade()?;
            crate::otel::OtelIds::of_span(&s.id(), &dispatch)
        });
        resolve(
            event,
            node,
            #[cfg(feature = "opentelemetry")]
            otel,
        );
    }
}

/// The job id in `span`'s context, as text (a number as its digits).
pub(crate) fn job_of<'a, R: LookupSpan<'a>>(
    span: &tracing_subscriber::registry::SpanRef<'a, R>,
) -> Option<String> {
    let node = span.extensions().get::<SpanContext>()?.node.clone();
    CtxView { node }.with_json("job_id", |json| {
        encode::decode_str(json).map_or_else(|| json.to_string(), |s| s.into_owned())
    })
}

fn merge(parent: &[Entry], own: &[Entry]) -> Entries {
    let mut merged = Entries::with_capacity(parent.len() + own.len());
    for p in parent {
        match own.iter().find(|o| o.key.as_str() == p.key.as_str()) {
            Some(o) => merged.push(o.clone()),
            None => merged.push(p.clone()),
        }
    }
    for o in own {
        if !parent.iter().any(|p| p.key.as_str() == o.key.as_str()) {
            merged.push(o.clone());
        }
    }
    merged
}

/// Reusable buffers for encoding a span's fields.
#[derive(Default)]
struct Scratch {
    text: Vec<u8>,
    pairs: Vec<(Key, u32, u32, u32)>,
}

thread_local! {
    static SCRATCH: Cell<Scratch> = const {
        Cell::new(Scratch {
            text: Vec::new(),
            pairs: Vec::new(),
        })
    };
}

/// Encodes the fields `record` visits into entries that share one buffer
/// (one allocation for all of a span's values), with room for `extra`
/// entries that `finish` may add. A span created while another one's
/// fields are being encoded (a `Debug` impl that opens a span) gets
/// buffers of its own.
fn encode_fields(
    values: ValueSink,
    extra: usize,
    record: impl FnOnce(&mut SpanVisitor<'_>),
    finish: impl FnOnce(&mut Entries),
) -> Entries {
    // The thread's buffers, lent for this span (one opened meanwhile, from a
    // `Debug` impl, gets new ones) and given back after.
    let mut scratch = SCRATCH.try_with(Cell::take).unwrap_or_default();
    scratch.text.clear();
    scratch.pairs.clear();
    record(&mut SpanVisitor {
        values,
        scratch: &mut scratch,
    });
    let mut own = Entries::with_capacity(scratch.pairs.len() + extra);
    if !scratch.pairs.is_empty() {
        let text: Arc<[u8]> = Arc::from(&scratch.text[..]);
        for (key, start, value_at, end) in scratch.pairs.drain(..) {
            own.push(Entry {
                key,
                slot: Slot::Fixed {
                    text: text.clone(),
                    start,
                    value_at,
                    end,
                },
            });
        }
    }
    finish(&mut own);
    let _ = SCRATCH.try_with(|s| s.set(scratch));
    own
}

/// Encodes each span field as `"key":value` into the shared text.
struct SpanVisitor<'s> {
    values: ValueSink,
    scratch: &'s mut Scratch,
}

impl SpanVisitor<'_> {
    /// Starts a pair: writes `"key":`; returns (start, value_at).
    fn key(&mut self, key: &str) -> (u32, u32) {
        let text = &mut self.scratch.text;
        let start = text.len();
        encode::write_str(text, key);
        text.push(b':');
        (offset(start), offset(text.len()))
    }

    fn finish(&mut self, key: Key, (start, value_at): (u32, u32)) {
        let end = offset(self.scratch.text.len());
        self.scratch.pairs.push((key, start, value_at, end));
    }

    fn value(&mut self, field: &Field, v: Val<'_>) {
        let at = self.key(field.name());
        // Stored as it is: each sink masks its own hidden keys.
        self.values.write(&mut self.scratch.text, v, None);
        self.finish(Key::Static(field.name()), at);
    }

    fn error(&mut self, field: &Field, err: &(dyn Error + 'static)) {
        let at = self.key(field.name());
        encode::write_display(&mut self.scratch.text, &err);
        self.finish(Key::Static(field.name()), at);
        if err.source().is_some() {
            let key: Arc<str> =
                Arc::from(format!("{}{}", field.name(), crate::keys::SOURCES_SUFFIX));
            let at = self.key(&key);
            self.values.write_sources(&mut self.scratch.text, err);
            self.finish(Key::Shared(key), at);
        }
    }
}

/// A position in a span's text. A span's fields never reach 4 GiB; past
/// that, positions saturate and the value reads as absent, never wrong.
fn offset(at: usize) -> u32 {
    u32::try_from(at).unwrap_or(u32::MAX)
}

impl Visit for SpanVisitor<'_> {
    forward_visit!();
}

// ==== reading the context ====

// The context of each event is resolved once, by the context layer, and
// read by every output layer. It is resolved in `event_enabled`, which
// tracing calls on every layer before any layer's `on_event`: so an output
// layer composed under the context layer (its `on_event` runs first) reads
// this event's context, never the previous one's.

/// How many events of one thread stay resolved: the one being dispatched
/// and the events logged during its dispatch (by a `Debug` impl, a writer).
const RESOLVED_EVENTS: usize = 8;

thread_local! {
    static RESOLVED: RefCell<Vec<Resolved>> = const { RefCell::new(Vec::new()) };
    static NEXT_SEQ: Cell<u64> = const { Cell::new(1) };
    /// The context given to the events dispatched now ([`with_event_context`]).
    static OVERLAY: RefCell<Option<Arc<Bound>>> = const { RefCell::new(None) };
}

/// Identifies one event dispatch on a thread: a sequence number the
/// context layer gave it, and the event's address.
pub(crate) type EventKey = (u64, usize);

/// An event's context, as the context layer resolved it.
struct Resolved {
    key: EventKey,
    /// The event's callsite: with the address, what tells this event from
    /// an earlier one that lived at the same address.
    callsite: usize,
    node: Option<Arc<Node>>,
    #[cfg(feature = "opentelemetry")]
    otel: Option<crate::otel::OtelIds>,
}

fn address(event: &Event<'_>) -> usize {
    event as *const Event<'_> as usize
}

fn callsite(event: &Event<'_>) -> usize {
    event.metadata() as *const Metadata<'_> as usize
}

/// Records `event`'s context for the layers that write it.
fn resolve(
    event: &Event<'_>,
    node: Option<Arc<Node>>,
    #[cfg(feature = "opentelemetry")] otel: Option<crate::otel::OtelIds>,
) {
    let seq = NEXT_SEQ
        .try_with(|n| {
            let seq = n.get();
            n.set(seq.wrapping_add(1).max(1));
            seq
        })
        .unwrap_or(0);
    let resolved = Resolved {
        key: (seq, address(event)),
        callsite: callsite(event),
        node,
        #[cfg(feature = "opentelemetry")]
        otel,
    };
    let _ = RESOLVED.try_with(|events| {
        if let Ok(mut events) = events.try_borrow_mut() {
            // An event at the same address has ended: this one lives there now.
            events.retain(|r| r.key.1 != resolved.key.1);
            if events.len() >= RESOLVED_EVENTS {
                events.remove(0);
            }
            events.push(resolved);
        }
    });
}

/// Calls `f` with what the context layer resolved for `event`, if it did.
fn with_resolved<R>(event: &Event<'_>, f: impl FnOnce(&Resolved) -> R) -> Option<R> {
    let (at, callsite) = (address(event), callsite(event));
    RESOLVED
        .try_with(|events| {
            let events = events.try_borrow().ok()?;
            let resolved = events
                .iter()
                .rev()
                .find(|r| r.key.1 == at && r.callsite == callsite)?;
            Some(f(resolved))
        })
        .ok()
        .flatten()
}

/// The key of the event being dispatched, when a context layer resolved
/// it: output layers that encode the same line share it by this key.
pub(crate) fn event_key(event: &Event<'_>) -> Option<EventKey> {
    with_resolved(event, |r| r.key)
}

/// The OpenTelemetry ids the context layer found for `event`'s span.
#[cfg(feature = "opentelemetry")]
pub(crate) fn stored_event_otel(event: &Event<'_>) -> Option<crate::otel::OtelIds> {
    with_resolved(event, |r| r.otel).flatten()
}

/// The node the context layer resolved for `event`: `Some(None)` when the
/// event has no context, `None` when no context layer resolved it.
pub(crate) fn stored_event_node(event: &Event<'_>) -> Option<Option<Arc<Node>>> {
    with_resolved(event, |r| r.node.clone())
}

/// The node of an event dispatched inside [`with_event_context`]: the
/// given keys as a child of the event's span, so they win over every span.
fn with_overlay(node: Option<Arc<Node>>) -> Option<Arc<Node>> {
    let overlay = OVERLAY
        .try_with(|o| o.try_borrow().ok().and_then(|o| o.clone()))
        .ok()
        .flatten();
    let Some(overlay) = overlay else { return node };
    let mut text = Vec::new();
    let mut pairs = Vec::with_capacity(overlay.len());
    for (key, json) in overlay.iter() {
        let start = text.len();
        encode::write_str(&mut text, key);
        text.push(b':');
        let value_at = text.len();
        encode::extend_json(&mut text, json.as_bytes());
        pairs.push((
            key.clone(),
            offset(start),
            offset(value_at),
            offset(text.len()),
        ));
    }
    let text: Arc<[u8]> = Arc::from(text);
    let own: Entries = pairs
        .into_iter()
        .map(|(key, start, value_at, end)| Entry {
            key: Key::Shared(key),
            slot: Slot::Fixed {
                text: text.clone(),
                start,
                value_at,
                end,
            },
        })
        .collect();
    Some(Arc::new(Node::new(node.as_ref(), own)))
}

/// Runs `f` with `context` (keys and their JSON values) as the context of
/// the events it dispatches on this thread, above every span's value and
/// below the events' own fields: as if a span with these fields were the
/// events' parent. The child-process forwarder uses it to write a child's
/// line with the context the child resolved; like
/// [`with_event_time`](crate::with_event_time), it is for layers that
/// re-emit events from elsewhere.
///
/// The values are written into lines as they are: each must be one JSON
/// value (check text from outside with `JsonText::new`).
///
/// ```
/// use tracing_subscriber::prelude::*;
/// use spanline_core::{ContextLayer, CtxView, LineEvent, LineLayer, LineSink, Schema};
/// use std::sync::{Arc, Mutex};
///
/// #[derive(Clone, Default)]
/// struct Seen(Arc<Mutex<Vec<String>>>);
/// impl LineSink for Seen {
///     fn accept(&self, _line: &[u8], event: &LineEvent<'_>) {
///         let user = event.context().and_then(|c| c.get("user_id")).map(|v| v.as_json().to_string());
///         self.0.lock().unwrap().push(user.unwrap_or_default());
///     }
/// }
///
/// let seen = Seen::default();
/// let subscriber = tracing_subscriber::registry()
///     .with(ContextLayer::new())
///     .with(LineLayer::new(Schema::default(), seen.clone()));
/// tracing::subscriber::with_default(subscriber, || {
///     let _launch = tracing::info_span!("launch", user_id = 1).entered();
///     spanline_core::with_event_context(&[("user_id", "42")], || tracing::info!("forwarded"));
///     tracing::info!("after");
/// });
/// assert_eq!(*seen.0.lock().unwrap(), ["42", "1"]);
/// ```
pub fn with_event_context<R>(context: &[(&str, &str)], f: impl FnOnce() -> R) -> R {
    let next: Bound = context
        .iter()
        .map(|(k, v)| (Arc::from(*k), Arc::from(*v)))
        .collect();
    let previous = OVERLAY
        .try_with(|o| {
            o.try_borrow_mut()
                .ok()
                .map(|mut o| std::mem::replace(&mut *o, (!next.is_empty()).then(|| Arc::new(next))))
        })
        .ok()
        .flatten();
    let out = f();
    if let Some(previous) = previous {
        let _ = OVERLAY.try_with(|o| {
            if let Ok(mut o) = o.try_borrow_mut() {
                *o = previous;
            }
        });
    }
    out
}

/// A span's context as the event at hand sees it: the span's fields, its
/// ancestors', and the keys set with [`set`].
///
/// Cheap to clone (one `Arc`). Other layers get it with
/// [`CtxView::of_event`]; application code with [`CtxView::current`].
///
/// An event's context is resolved once, by the [`ContextLayer`], for all
/// layers, and without per-layer filters: a span that an output layer's own
/// filter hides still gives its fields to that layer's lines. (A span that a
/// global filter disables does not exist at all, and gives nothing.)
///
/// ```
/// use tracing_subscriber::prelude::*;
/// let subscriber = tracing_subscriber::registry().with(spanline_core::ContextLayer::new());
/// tracing::subscriber::with_default(subscriber, || {
///     let _req = tracing::info_span!("request", request_id = "r-1", user_id = tracing::field::Empty).entered();
///     let _db = tracing::info_span!("db", table = "users", attempt = 2).entered();
///     spanline_core::set("user_id", 42u64);
///     let ctx = spanline_core::CtxView::current().unwrap();
///     assert_eq!(ctx.get("table").unwrap().as_str().unwrap(), "users");
///     assert_eq!(ctx.get("attempt").unwrap().as_json(), "2");
///     assert_eq!(ctx.get("user_id").unwrap().as_json(), "42");
///     let keys: Vec<String> = ctx.iter().map(|(k, _)| k.to_string()).collect();
///     assert_eq!(keys, ["request_id", "user_id", "table", "attempt"]);
/// });
/// ```
#[derive(Clone, Debug, Default)]
pub struct CtxView {
    node: Arc<Node>,
}

/// One context value, as the JSON that spanline writes for it.
///
/// ```
/// # use tracing_subscriber::prelude::*;
/// # let subscriber = tracing_subscriber::registry().with(spanline_core::ContextLayer::new());
/// # tracing::subscriber::with_default(subscriber, || {
/// let _s = tracing::info_span!("s", id = "a-1", n = 3).entered();
/// let ctx = spanline_core::CtxView::current().unwrap();
/// assert_eq!(ctx.get("id").unwrap().as_json(), r#""a-1""#);
/// assert_eq!(ctx.get("id").unwrap().to_string(), "a-1");
/// assert_eq!(ctx.get("n").unwrap().as_str(), None);
/// # });
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldValue {
    json: Arc<str>,
}

impl FieldValue {
    /// The value as JSON text: `"abc"`, `42`, `true`, `["a"]`.
    ///
    /// ```
    /// # use tracing_subscriber::prelude::*;
    /// # let subscriber = tracing_subscriber::registry().with(spanline_core::ContextLayer::new());
    /// # tracing::subscriber::with_default(subscriber, || {
    /// let _s = tracing::info_span!("s", ok = true).entered();
    /// assert_eq!(spanline_core::CtxView::current().unwrap().get("ok").unwrap().as_json(), "true");
    /// # });
    /// ```
    pub fn as_json(&self) -> &str {
        &self.json
    }

    /// The value as a string, when it is a JSON string.
    ///
    /// ```
    /// # use tracing_subscriber::prelude::*;
    /// # let subscriber = tracing_subscriber::registry().with(spanline_core::ContextLayer::new());
    /// # tracing::subscriber::with_default(subscriber, || {
    /// let _s = tracing::info_span!("s", id = "x").entered();
    /// assert_eq!(spanline_core::CtxView::current().unwrap().get("id").unwrap().as_str().unwrap(), "x");
    /// # });
    /// ```
    pub fn as_str(&self) -> Option<Cow<'_, str>> {
        encode::decode_str(&self.json)
    }
}

impl fmt::Display for FieldValue {
    /// Strings without quotes, everything else as JSON.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_str() {
            Some(s) => f.write_str(&s),
            None => f.write_str(&self.json),
        }
    }
}

impl CtxView {
    /// The context of the span the event belongs to, as seen by a layer.
    /// `None` when the event is outside any span, or when [`ContextLayer`]
    /// is not registered.
    ///
    /// ```
    /// use tracing_subscriber::{layer::Context, prelude::*, registry::LookupSpan, Layer};
    /// struct JobIds;
    /// impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for JobIds {
    ///     fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
    ///         let ctx = spanline_core::CtxView::of_event(&ctx, event).unwrap();
    ///         assert_eq!(ctx.get("job_id").unwrap().to_string(), "j-1");
    ///     }
    /// }
    /// let subscriber = tracing_subscriber::registry().with(spanline_core::ContextLayer::new()).with(JobIds);
    /// tracing::subscriber::with_default(subscriber, || {
    ///     let _job = tracing::info_span!("job", job_id = "j-1").entered();
    ///     tracing::info!("working");
    /// });
    /// ```
    pub fn of_event<S>(ctx: &Context<'_, S>, event: &Event<'_>) -> Option<Self>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        event_node(ctx, event).map(|node| Self { node })
    }

    /// The context of span `id` in the current thread's subscriber.
    ///
    /// ```
    /// # use tracing_subscriber::prelude::*;
    /// # let subscriber = tracing_subscriber::registry().with(spanline_core::ContextLayer::new());
    /// # tracing::subscriber::with_default(subscriber, || {
    /// let span = tracing::info_span!("s", k = 1);
    /// let ctx = spanline_core::CtxView::of_span(&span.id().unwrap()).unwrap();
    /// assert_eq!(ctx.get("k").unwrap().as_json(), "1");
    /// # });
    /// ```
    pub fn of_span(id: &Id) -> Option<Self> {
        with_span(id, |sc| Self {
            node: sc.node.clone(),
        })
    }

    /// The context of span `id`, looked up through a layer's `ctx` (in
    /// `on_close`, say, where the span is still there).
    ///
    /// ```
    /// use tracing_subscriber::{layer::Context, prelude::*, registry::LookupSpan, Layer};
    /// struct OnClose;
    /// impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for OnClose {
    ///     fn on_close(&self, id: tracing::span::Id, ctx: Context<'_, S>) {
    ///         let view = spanline_core::CtxView::of_span_in(&ctx, &id).unwrap();
    ///         assert_eq!(view.get("job_id").unwrap().to_string(), "j-1");
    ///     }
    /// }
    /// let subscriber = tracing_subscriber::registry().with(spanline_core::ContextLayer::new()).with(OnClose);
    /// tracing::subscriber::with_default(subscriber, || {
    ///     tracing::info_span!("job", job_id = "j-1").in_scope(|| {});
    /// });
    /// ```
    pub fn of_span_in<S>(ctx: &Context<'_, S>, id: &Id) -> Option<Self>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let span = ctx.span(id)?;
        let ext = span.extensions();
        ext.get::<SpanContext>().map(|sc| Self {
            node: sc.node.clone(),
        })
    }

    /// A context with no keys.
    ///
    /// ```
    /// assert!(spanline_core::CtxView::empty().is_empty());
    /// ```
    pub fn empty() -> Self {
        Self::default()
    }

    /// True when the context has no keys at all.
    ///
    /// ```
    /// # use tracing_subscriber::prelude::*;
    /// # let subscriber = tracing_subscriber::registry().with(spanline_core::ContextLayer::new());
    /// # tracing::subscriber::with_default(subscriber, || {
    /// let _s = tracing::info_span!("s").entered();
    /// assert!(spanline_core::CtxView::current().unwrap().is_empty());
    /// # });
    /// ```
    pub fn is_empty(&self) -> bool {
        self.node.merged.is_empty() && self.node.dynamic().is_empty()
    }

    /// The context of the current span of the current thread's subscriber.
    /// `None` outside any span, or when the subscriber is not a
    /// `tracing_subscriber::Registry` with a [`ContextLayer`].
    ///
    /// ```
    /// # use tracing_subscriber::prelude::*;
    /// # let subscriber = tracing_subscriber::registry().with(spanline_core::ContextLayer::new());
    /// # tracing::subscriber::with_default(subscriber, || {
    /// assert!(spanline_core::CtxView::current().is_none(), "outside any span");
    /// # });
    /// ```
    pub fn current() -> Option<Self> {
        with_current_span(|sc| Self {
            node: sc.node.clone(),
        })
    }

    /// The value for `key`: the nearest span that defines it wins, then keys
    /// set with [`set`]. A late field that was never recorded is absent.
    ///
    /// ```
    /// # use tracing_subscriber::prelude::*;
    /// # let subscriber = tracing_subscriber::registry().with(spanline_core::ContextLayer::new());
    /// # tracing::subscriber::with_default(subscriber, || {
    /// let _s = tracing::info_span!("s", user = "ann").entered();
    /// assert!(spanline_core::CtxView::current().unwrap().get("missing").is_none());
    /// # });
    /// ```
    pub fn get(&self, key: &str) -> Option<FieldValue> {
        self.with_json(key, |json| FieldValue {
            json: Arc::from(json),
        })
    }

    /// Calls `f` with the JSON text of `key`'s value, without copying it
    /// (see [`get`](Self::get) for which value wins). For hot paths: the
    /// Redis layer reads `job_id` this way on every event.
    ///
    /// ```
    /// # use tracing_subscriber::prelude::*;
    /// # let subscriber = tracing_subscriber::registry().with(spanline_core::ContextLayer::new());
    /// # tracing::subscriber::with_default(subscriber, || {
    /// let _job = tracing::info_span!("job", job_id = "build_1").entered();
    /// let ctx = spanline_core::CtxView::current().unwrap();
    /// assert_eq!(ctx.with_json("job_id", |json| json.len()), Some(9));
    /// # });
    /// ```
    pub fn with_json<R>(&self, key: &str, f: impl FnOnce(&str) -> R) -> Option<R> {
        let mut f = Some(f);
        if let Some(entry) = self.node.merged.iter().find(|e| e.key.as_str() == key) {
            if let Some(r) = entry.with_json(|json| f.take().map(|f| f(json))).flatten() {
                return Some(r);
            }
        }
        let dynamic = self.node.dynamic().load();
        let (_, value) = dynamic.as_deref()?.iter().find(|(k, _)| &**k == key)?;
        f.take().map(|f| f(value))
    }

    /// Every key and value, in output order: span fields root first (each key
    /// once, nearest value), then keys set with [`set`] that no span defines.
    ///
    /// ```
    /// # use tracing_subscriber::prelude::*;
    /// # let subscriber = tracing_subscriber::registry().with(spanline_core::ContextLayer::new());
    /// # tracing::subscriber::with_default(subscriber, || {
    /// let _s = tracing::info_span!("s", a = 1, b = 2).entered();
    /// let keys: Vec<String> = spanline_core::CtxView::current().unwrap().iter().map(|(k, _)| k.into_owned()).collect();
    /// assert_eq!(keys, ["a", "b"]);
    /// # });
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (Cow<'_, str>, FieldValue)> + '_ {
        let spans = self.node.merged.iter().filter_map(|e| {
            e.with_json(|json| {
                (
                    Cow::Borrowed(e.key.as_str()),
                    FieldValue {
                        json: Arc::from(json),
                    },
                )
            })
        });
        let dynamic = self.node.dynamic().to_vec();
        let extra: Vec<_> = dynamic
            .iter()
            .filter(|(k, _)| !self.span_has(k))
            .map(|(k, v)| (Cow::Owned(k.to_string()), FieldValue { json: v.clone() }))
            .collect();
        spans.chain(extra)
    }

    /// Calls `f` with every key that has a value and its JSON, in output
    /// order (span fields root first, then bound keys no span has), without
    /// allocating: for layers that copy the context elsewhere (the
    /// child-process forwarder sends it with each event).
    ///
    /// ```
    /// use tracing_subscriber::prelude::*;
    /// let subscriber = tracing_subscriber::registry().with(spanline_core::ContextLayer::new());
    /// tracing::subscriber::with_default(subscriber, || {
    ///     let _r = tracing::info_span!("request", request_id = "r-1").entered();
    ///     spanline_core::set("user_id", 7u64).unwrap();
    ///     let mut pairs = Vec::new();
    ///     spanline_core::CtxView::current().unwrap().for_each_json(|k, v| pairs.push(format!("{k}={v}")));
    ///     assert_eq!(pairs, ["request_id=\"r-1\"", "user_id=7"]);
    /// });
    /// ```
    pub fn for_each_json(&self, mut f: impl FnMut(&str, &str)) {
        for entry in self.node.merged.iter() {
            entry.with_json(|json| f(entry.key.as_str(), json));
        }
        let dynamic = self.node.dynamic().load();
        for (key, json) in dynamic.as_deref().into_iter().flatten() {
            if !self.span_has(key) {
                f(key, json);
            }
        }
    }

    /// True when a span of this view has a value for `key` now.
    fn span_has(&self, key: &str) -> bool {
        self.node
            .merged
            .iter()
            .any(|e| e.key.as_str() == key && e.with_json_bytes(|_| ()).is_some())
    }
}

/// The event's context node: the one the context layer stored for it, or,
/// when that layer did not see this event, a lookup through `ctx`.
pub(crate) fn event_node<S>(ctx: &Context<'_, S>, event: &Event<'_>) -> Option<Arc<Node>>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    match stored_event_node(event) {
        Some(node) => node,
        None => {
            let span = ctx.event_span(event)?;
            let node = span
                .extensions()
                .get::<SpanContext>()
                .map(|c| c.node.clone());
            if node.is_none() {
                warn_no_storage();
            }
            node
        }
    }
}

/// Says once, on stderr, that an output layer found a span without
/// spanline's storage: its lines would silently lack their context.
#[allow(clippy::disallowed_macros)] // a setup mistake, said once where the operator looks
fn warn_no_storage() {
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| {
        eprintln!(
            "spanline: a span has no spanline context, so log lines lack their span fields. \
             Register spanline::ContextLayer first on the registry, without a per-layer \
             filter (give it the filter instead: ContextLayer::new().filter(..)), \
             or use spanline::init()."
        );
    });
}

/// Runs `f` on the current span's context, through the thread's dispatcher.
fn with_current_span<R>(f: impl FnOnce(&SpanContext) -> R) -> Option<R> {
    let id =
        tracing_core::dispatcher::get_default(|dispatch| dispatch.current_span().id().cloned())?;
    with_span(&id, f)
}

/// Runs `f` on the context of span `id`, through the thread's dispatcher.
fn with_span<R>(id: &Id, f: impl FnOnce(&SpanContext) -> R) -> Option<R> {
    let mut f = Some(f);
    tracing_core::dispatcher::get_default(|dispatch| {
        let registry = dispatch.downcast_ref::<tracing_subscriber::Registry>()?;
        let span = registry.span(id)?;
        let ext = span.extensions();
        ext.get::<SpanContext>().zip(f.take()).map(|(sc, f)| f(sc))
    })
}

/// Like [`with_span`], with the span's extensions locked for writing.
fn with_span_mut<R>(id: &Id, f: impl FnOnce(&mut SpanContext) -> R) -> Option<R> {
    let mut f = Some(f);
    tracing_core::dispatcher::get_default(|dispatch| {
        let registry = dispatch.downcast_ref::<tracing_subscriber::Registry>()?;
        let span = registry.span(id)?;
        let mut ext = span.extensions_mut();
        ext.get_mut::<SpanContext>()
            .zip(f.take())
            .map(|(sc, f)| f(sc))
    })
}

// ==== setting keys at run time ====

/// A value that [`set`] can store: strings, integers, floats and booleans.
///
/// ```
/// use spanline_core::{ContextValue, NumberPolicy};
/// let mut buf = Vec::new();
/// 42u32.write_json(&mut buf, &NumberPolicy::default());
/// "a\"b".write_json(&mut buf, &NumberPolicy::default());
/// assert_eq!(buf, br#"42"a\"b""#);
/// ```
pub trait ContextValue {
    /// Writes the value as JSON.
    fn write_json(&self, buf: &mut Vec<u8>, numbers: &NumberPolicy);
}

impl ContextValue for str {
    fn write_json(&self, buf: &mut Vec<u8>, _: &NumberPolicy) {
        encode::write_str(buf, self);
    }
}
impl ContextValue for String {
    fn write_json(&self, buf: &mut Vec<u8>, _: &NumberPolicy) {
        encode::write_str(buf, self);
    }
}
impl<T: ContextValue + ?Sized> ContextValue for &T {
    fn write_json(&self, buf: &mut Vec<u8>, numbers: &NumberPolicy) {
        (**self).write_json(buf, numbers);
    }
}
impl ContextValue for bool {
    fn write_json(&self, buf: &mut Vec<u8>, _: &NumberPolicy) {
        encode::write_bool(buf, *self);
    }
}
impl ContextValue for f64 {
    fn write_json(&self, buf: &mut Vec<u8>, numbers: &NumberPolicy) {
        numbers.write_f64(buf, *self);
    }
}
macro_rules! context_int {
    ($method:ident as $wide:ty: $($t:ty),*) => {$(
        impl ContextValue for $t {
            fn write_json(&self, buf: &mut Vec<u8>, numbers: &NumberPolicy) {
                numbers.$method(buf, <$wide>::from(*self));
            }
        }
    )*};
}
context_int!(write_u64 as u64: u8, u16, u32, u64);
context_int!(write_i64 as i64: i8, i16, i32, i64);
impl ContextValue for usize {
    fn write_json(&self, buf: &mut Vec<u8>, numbers: &NumberPolicy) {
        numbers.write_u64(buf, *self as u64);
    }
}

/// A value that is JSON already (a number, `true`, a quoted string), stored
/// as it is: for context that arrives encoded, such as a typed
/// `ContextSnapshot` entry. The caller vouches that it is valid JSON.
///
/// ```
/// use spanline_core::{ContextValue, NumberPolicy, RawJson};
/// let mut buf = Vec::new();
/// RawJson("7").write_json(&mut buf, &NumberPolicy::default());
/// assert_eq!(buf, b"7");
/// ```
#[derive(Clone, Copy, Debug)]
pub struct RawJson<'a>(pub &'a str);

impl ContextValue for RawJson<'_> {
    fn write_json(&self, buf: &mut Vec<u8>, _: &NumberPolicy) {
        // Stored as it came, but for the characters spanline escapes in
        // strings (C1 controls, U+2028, U+2029, bidi overrides).
        encode::extend_json(buf, self.0.as_bytes());
    }
}

/// Why [`set`] stored nothing.
///
/// ```
/// assert_eq!(spanline_core::set("user_id", 7), Err(spanline_core::SetError::NoSpan));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SetError {
    /// No span is current on this thread (or task): there is no context to
    /// bind to. Open one first (`info_span!("job").entered()`, a restored
    /// `ContextSnapshot`, the HTTP middleware's request span).
    NoSpan,
    /// The current span has no spanline context: the subscriber is not a
    /// `tracing_subscriber::Registry` with a [`ContextLayer`], or the span
    /// was filtered out before the `ContextLayer` saw it.
    NoContextLayer,
}

impl fmt::Display for SetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SetError::NoSpan => {
                "no span is current: open a span (for example info_span!(\"job\").entered()) before binding context"
            }
            SetError::NoContextLayer => {
                "the current span has no spanline context: register spanline::ContextLayer on a tracing_subscriber::Registry"
            }
        })
    }
}

impl Error for SetError {}

/// Sets `key` in the current context, like structlog's `bind`.
///
/// If the nearest span that declares `key` declared it `Empty`, this records
/// it there. Otherwise the key is attached to the current context root (the
/// outermost span), where every line of the request or job shows it from now
/// on, including lines of tasks and threads that carry the context already;
/// a value a span declares for the same key takes precedence.
///
/// The scope is the current span's tree, never a thread: a key set in a
/// tokio task lives as long as the task's request or job span, whatever
/// thread the task runs on. Outside any span there is nothing to bind to,
/// and `set` says so with [`SetError::NoSpan`] rather than dropping the key
/// silently.
///
/// ```
/// use tracing_subscriber::prelude::*;
/// let subscriber = tracing_subscriber::registry().with(spanline_core::ContextLayer::new());
/// tracing::subscriber::with_default(subscriber, || {
///     let _req = tracing::info_span!("request", request_id = "r-1").entered();
///     let _auth = tracing::info_span!("authenticate").entered();
///     spanline_core::set("user_id", "alice").unwrap();
///     drop(_auth);
///     assert_eq!(spanline_core::CtxView::current().unwrap().get("user_id").unwrap().to_string(), "alice");
/// });
/// assert_eq!(spanline_core::set("user_id", "nobody"), Err(spanline_core::SetError::NoSpan));
/// ```
pub fn set(key: &str, value: impl ContextValue) -> Result<(), SetError> {
    let Some(id) =
        tracing_core::dispatcher::get_default(|dispatch| dispatch.current_span().id().cloned())
    else {
        return Err(SetError::NoSpan);
    };
    set_in(&id, key, value)
}

/// Sets `key` in the context of the span `id`, as [`set`] does for the
/// current span. For a span just created (a restored job, a detached task)
/// this seeds its context before anything runs in it.
///
/// ```
/// use tracing_subscriber::prelude::*;
/// let subscriber = tracing_subscriber::registry().with(spanline_core::ContextLayer::new());
/// tracing::subscriber::with_default(subscriber, || {
///     let job = tracing::info_span!("job");
///     spanline_core::set_in(&job.id().unwrap(), "job_id", "build_1").unwrap();
///     let _entered = job.entered();
///     assert_eq!(spanline_core::CtxView::current().unwrap().get("job_id").unwrap().to_string(), "build_1");
/// });
/// ```
pub fn set_in(id: &Id, key: &str, value: impl ContextValue) -> Result<(), SetError> {
    let json = encode_value(&value);
    with_span(id, |sc| bind(sc, key, json)).ok_or(SetError::NoContextLayer)
}

fn encode_value(value: &impl ContextValue) -> String {
    let mut json = Vec::new();
    value.write_json(&mut json, &NumberPolicy::default());
    String::from_utf8_lossy(&json).into_owned()
}

fn bind(sc: &SpanContext, key: &str, json: String) {
    if let Some(Entry {
        slot: Slot::Late(cell),
        ..
    }) = sc.node.merged.iter().find(|e| e.key.as_str() == key)
    {
        cell.value.store(Some(Arc::new(json)));
        return;
    }
    let value: Arc<str> = Arc::from(json);
    sc.node.dynamic().entries.rcu(|current| {
        let mut next: Bound = current
            .iter()
            .flat_map(|c| c.iter())
            .filter(|(k, _)| &**k != key)
            .cloned()
            .collect();
        next.push((Arc::from(key), value.clone()));
        Some(Arc::new(next))
    });
}

/// Gives the span `id` the context `from`, under its own fields: the span
/// then carries `from`'s keys as if it were its child, without being one.
///
/// This is how detached work keeps a request's context without keeping the
/// request's span open: a new root span inherits a copy. Late fields stay
/// shared (a value recorded on the request later still shows); keys bound
/// with [`set`] are copied (binding in one does not change the other).
/// Call it right after creating the span, before it has children.
///
/// ```
/// use tracing_subscriber::prelude::*;
/// let subscriber = tracing_subscriber::registry().with(spanline_core::ContextLayer::new());
/// tracing::subscriber::with_default(subscriber, || {
///     let request = tracing::info_span!("request", request_id = "r-1");
///     let ctx = request.in_scope(|| spanline_core::CtxView::current()).unwrap();
///     let task = tracing::info_span!(parent: None, "task", step = 1);
///     assert!(spanline_core::inherit(&task.id().unwrap(), &ctx));
///     drop(request);
///     let _t = task.entered();
///     let view = spanline_core::CtxView::current().unwrap();
///     assert_eq!(view.get("request_id").unwrap().to_string(), "r-1");
///     assert_eq!(view.get("step").unwrap().to_string(), "1");
/// });
/// ```
pub fn inherit(id: &Id, from: &CtxView) -> bool {
    with_span_mut(id, |sc| {
        let own: &[Entry] = if sc.owns_node { sc.node.own() } else { &[] };
        let merged = merge(&from.node.merged, own);
        let mut dynamic = from.node.dynamic().to_vec();
        for entry in sc.node.dynamic().to_vec() {
            dynamic.retain(|(k, _)| k != &entry.0);
            dynamic.push(entry);
        }
        sc.node = Arc::new(Node {
            own: Own::Entries(own.to_vec()),
            merged,
            bound: BoundIn::Here(Dynamic::with_entries(dynamic)),
        });
        sc.owns_node = true;
    })
    .is_some()
}

/// Says that the job of the current span is handed on: its outermost span
/// in this process does not end the job when it closes; the span that
/// receives it (restored from a snapshot, or detached) does.
/// `ContextSnapshot::capture` and `capture().detached()` call it; call it
/// yourself when you hand a job on by other means.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use tracing_subscriber::prelude::*;
/// use spanline_core::{ContextLayer, JobEnds, OnJobEnd};
///
/// let ended = Arc::new(Mutex::new(0));
/// let count = ended.clone();
/// let hook: Arc<OnJobEnd> = Arc::new(move |_: &str| *count.lock().unwrap() += 1);
/// let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(ContextLayer::new()));
/// JobEnds::of(&dispatch).unwrap().subscribe(&hook);
/// tracing::dispatcher::with_default(&dispatch, || {
///     let _enqueue = tracing::info_span!("request", job_id = "build_1").entered();
///     spanline_core::hand_off_job(); // the job goes on in a worker
/// });
/// assert_eq!(*ended.lock().unwrap(), 0);
/// ```
pub fn hand_off_job() {
    let _ = tracing_core::dispatcher::get_default(|dispatch| {
        let registry = dispatch.downcast_ref::<tracing_subscriber::Registry>()?;
        let id = dispatch.current_span().id()?.clone();
        mark_outermost(registry, &id);
        Some(())
    });
}

/// Marks every span from `id` up to the outermost one that carries the
/// same job id: whichever of them closes last as the job's outermost span
/// (an inner one, once the outer one's `job_id` changed) hands it on.
fn mark_outermost(registry: &tracing_subscriber::Registry, id: &Id) {
    let Some(span) = registry.span(id) else {
        return;
    };
    let Some(job) = job_of(&span) else {
        return;
    };
    let mut next = Some(span);
    while let Some(span) = next {
        if job_of(&span).as_deref() != Some(job.as_str()) {
            break;
        }
        {
            let mut extensions = span.extensions_mut();
            match extensions.get_mut::<HandedOff>() {
                Some(HandedOff(jobs)) if jobs.contains(&job) => {}
                Some(HandedOff(jobs)) => jobs.push(job.clone()),
                None => extensions.insert(HandedOff(vec![job.clone()])),
            }
        }
        next = span.parent();
    }
}
