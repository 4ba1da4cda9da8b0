//! Setting context keys at run time: [`set`], [`set_in`], [`inherit`].

use std::error::Error;
use std::fmt;
use std::sync::Arc;

use tracing_core::span::Id;

use crate::context::store::{
    merge, with_span, with_span_mut, Bound, BoundIn, Dynamic, Entry, Node, Own, Slot, SpanContext,
};
use crate::context::view::CtxView;
use crate::encode::{self, NumberPolicy};

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
    /// `tracing_subscriber::Registry` with a [`ContextLayer`](crate::ContextLayer), or the span
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
    sc.node.dynamic().rcu(|current| {
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
