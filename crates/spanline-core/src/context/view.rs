//! Reading the context: the context each event resolves to (once, for
//! every output layer), [`CtxView`] and [`FieldValue`], and
//! [`with_event_context`].

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::sync::Arc;

use tracing_core::span::Id;
use tracing_core::{Event, Metadata, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::context::store::{
    offset, with_current_span, with_span, Bound, Entries, Entry, Key, Node, Slot, SpanContext,
};
use crate::encode;

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
pub(super) fn resolve(
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
pub(super) fn with_overlay(node: Option<Arc<Node>>) -> Option<Arc<Node>> {
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
    let mut shared = None;
    let own: Entries = pairs
        .into_iter()
        .map(|(key, start, value_at, end)| Entry {
            key: Key::of_shared(key),
            slot: Slot::pair(&text, &mut shared, (start, value_at, end)),
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
#[doc(hidden)]
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
/// ancestors', and the keys set with [`set`](crate::set).
///
/// Cheap to clone (one `Arc`). Other layers get it with
/// [`CtxView::of_event`]; application code with [`CtxView::current`].
///
/// An event's context is resolved once, by the [`ContextLayer`](crate::ContextLayer), for all
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
    pub(super) node: Arc<Node>,
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
    /// `None` when the event is outside any span, or when [`ContextLayer`](crate::ContextLayer)
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
    #[doc(hidden)]
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
    /// `tracing_subscriber::Registry` with a [`ContextLayer`](crate::ContextLayer).
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
    /// set with [`set`](crate::set). A late field that was never recorded is absent.
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
    #[doc(hidden)]
    pub fn with_json<R>(&self, key: &str, f: impl FnOnce(&str) -> R) -> Option<R> {
        let mut f = Some(f);
        if let Some(entry) = self.node.merged.iter().find(|e| e.key.as_str() == key) {
            if let Some(r) = entry.with_json(|json| f.take().map(|f| f(json))).flatten() {
                return Some(r);
            }
        }
        let dynamic = self.node.dynamic().load()?;
        let (_, value) = dynamic.as_deref()?.iter().find(|(k, _)| &**k == key)?;
        f.take().map(|f| f(value))
    }

    /// Every key and value, in output order: span fields root first (each key
    /// once, nearest value), then keys set with [`set`](crate::set) that no span defines.
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
    #[doc(hidden)]
    pub fn for_each_json(&self, mut f: impl FnMut(&str, &str)) {
        for entry in self.node.merged.iter() {
            entry.with_json(|json| f(entry.key.as_str(), json));
        }
        let dynamic = self.node.dynamic().load();
        for (key, json) in dynamic.iter().flat_map(|d| d.as_deref()).flatten() {
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

/// The job id in `span`'s context, as text (a number as its digits).
pub(crate) fn job_of<'a, R: LookupSpan<'a>>(
    span: &tracing_subscriber::registry::SpanRef<'a, R>,
) -> Option<String> {
    let node = span.extensions().get::<SpanContext>()?.node.clone();
    CtxView { node }.with_json("job_id", |json| {
        encode::decode_str(json).map_or_else(|| json.to_string(), |s| s.into_owned())
    })
}
