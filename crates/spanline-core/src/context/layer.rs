//! [`ContextLayer`]: fills the store as spans open, record and close, and
//! tells of span closes and job ends.
//!
//! Why one file: it is one type, the layer, with its builder methods (and
//! their doc examples, half of the file) and its `Layer` callbacks; the
//! work each callback does lives in the modules beside it (`record`,
//! `store`, `view`, `set`).

use std::sync::Arc;

use tracing_core::span::{Attributes, Id, Record};
use tracing_core::subscriber::Interest;
use tracing_core::{Dispatch, Event, LevelFilter, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Identity, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::context::record::encode_fields;
use crate::context::store::{Entries, Entry, Key, Node, Slot, SpanContext};
use crate::context::view::{job_of, resolve, with_overlay};
use crate::encode::NumberPolicy;
use crate::fields::ValueSink;
use crate::job_end::{HandedOff, JobEnds};
use crate::keep::{ContextKeys, LinesMaxLevel};
use crate::span_close::Timing;
use crate::Redact;

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
/// like a context key ([`CONTEXT_KEYS`](crate::CONTEXT_KEYS) such as `request_id` or
/// `job_id`, and the keys [`context_key`](Self::context_key) adds), and every
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
    /// What its filter lets through (found through the dispatch, see
    /// [`lines_max_level`](crate::lines_max_level)).
    lines_max: LinesMaxLevel,
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
            lines_max: LinesMaxLevel::new(None),
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
            lines_max: self.lines_max,
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

    /// Makes `key` a context key too, beside [`CONTEXT_KEYS`](crate::CONTEXT_KEYS):
    /// a span with a field of that name is kept whatever the filter says.
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

    /// Keeps the context keys `keys` hides (whole keys or `*` patterns, see
    /// [`Redact`]) out of everything that carries context out of the
    /// process: `spanline_context::ContextSnapshot::capture` leaves them
    /// out of `BAGGAGE`, outgoing headers and job payloads, and masks
    /// hidden keys inside the JSON values it carries. Give it the keys you
    /// give the output layers (`spanline::init()` does): lines are masked
    /// by each sink's own keys, this layer stores values as they are, so
    /// that application code reading [`CtxView`](crate::CtxView) sees them.
    ///
    /// The keys are found through the subscriber, with
    /// [`Redact::current`].
    ///
    /// ```
    /// use tracing_subscriber::prelude::*;
    /// let layer = spanline_core::ContextLayer::new().redact(["user_id", "*token*"]);
    /// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
    ///     let _req = tracing::info_span!("request", user_id = 7).entered();
    ///     let redact = spanline_core::Redact::current();
    ///     assert!(redact.hides("user_id") && redact.hides("api_token"));
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
        self.lines_max.set(hint);
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
        } else if id == std::any::TypeId::of::<LinesMaxLevel>() {
            Some(&self.lines_max as *const LinesMaxLevel as *const ())
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
                        own.push(Entry::late(Key::of_static(field.name()), below.cloned()));
                    }
                }
            },
        );

        let ext = match parent {
            Some(node) if own.is_empty() => SpanContext {
                node,
                owns_node: false,
                #[cfg(feature = "opentelemetry")]
                otel: std::sync::OnceLock::new(),
            },
            parent => SpanContext {
                node: Arc::new(Node::new(parent.as_ref(), own)),
                owns_node: true,
                #[cfg(feature = "opentelemetry")]
                otel: std::sync::OnceLock::new(),
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
        // The span's context, and its OpenTelemetry ids when kept, in one
        // look at its extensions.
        let (node, kept) = span
            .as_ref()
            .and_then(|s| {
                let extensions = s.extensions();
                let c = extensions.get::<SpanContext>()?;
                Some((Some(c.node.clone()), c.kept_otel()))
            })
            .unwrap_or_default();
        let node = with_overlay(node);
        #[cfg(not(feature = "opentelemetry"))]
        let () = kept;
        // A span's ids, found at its first event and kept: once its
        // OpenTelemetry context is started they never change. Asked with no
        // span lock held: tracing-opentelemetry takes its own.
        #[cfg(feature = "opentelemetry")]
        let otel = span.and_then(|s| {
            if let Some(kept) = kept {
                return kept;
            }
            let dispatch = self.dispatch.get()?.upgrade()?;
            let ids = crate::otel::OtelIds::of_span(&s.id(), &dispatch);
            if let Some(c) = s.extensions().get::<SpanContext>() {
                let _ = c.otel.set(ids);
            }
            ids
        });
        resolve(
            event,
            node,
            #[cfg(feature = "opentelemetry")]
            otel,
        );
    }
}
