//! [`ContextSnapshot`]: the context that crosses process boundaries.
//!
//! One carrier, several encodings, a file each:
//!
//! - here, the carrier: what a snapshot holds, capturing it from the
//!   current context, its rules on insert, and restoring it as a span;
//! - `value.rs`: [`SnapshotValue`], a value with its JSON type;
//! - `error.rs`: [`SnapshotError`];
//! - `baggage.rs`: the W3C `baggage` text, which the environment, the
//!   headers and version 1 of the serde form carry;
//! - `env.rs`: the environment of a child process (`TRACEPARENT`,
//!   `TRACESTATE`, `BAGGAGE`);
//! - `headers.rs`: the headers of an HTTP call;
//! - `payload.rs`: the serde form, for a job payload.
//!
//! The encodings read and write the carrier's private fields: they are
//! child modules of this one.

use spanline_core::CtxView;
use tracing::Span;

use crate::TraceParent;

mod baggage;
mod env;
mod error;
mod headers;
mod payload;
mod value;

pub use error::SnapshotError;
pub use value::SnapshotValue;

/// The keys a snapshot carries by default, and the only keys it accepts from
/// outside input (`BAGGAGE`, a `baggage` header): spanline's
/// [`CONTEXT_KEYS`](spanline_core::CONTEXT_KEYS).
///
/// ```
/// assert!(spanline_context::DEFAULT_KEYS.contains(&"request_id"));
/// ```
pub const DEFAULT_KEYS: &[&str] = spanline_core::CONTEXT_KEYS;

/// A versioned carrier of context that crosses process boundaries: a W3C
/// `traceparent` and a few allow-listed keys (see [`DEFAULT_KEYS`]).
///
/// One logical map, several encodings:
///
/// | medium | encoding | value types |
/// |---|---|---|
/// | a job payload | serde: `{"v":2,"traceparent":"00-…","fields":{"request_id":"r-1","user_id":42}}` | kept: strings, numbers, booleans |
/// | a child process | environment variables `TRACEPARENT`, `TRACESTATE`, `BAGGAGE` | strings (the medium has no types) |
/// | an outgoing HTTP call | headers `traceparent`, `tracestate`, `baggage`, `x-request-id` | strings |
///
/// In the worker or child, [`ContextSnapshot::restore`] opens a root span
/// whose lines all carry the snapshot's keys, with the types they had: a
/// `user_id` logged as `42` in the request is `42`, not `"42"`, on the job's
/// lines too (after the serde form; after the environment or headers it is
/// the string `"42"`). The serde form of version 1 (`"baggage"`, strings
/// only) is still read.
///
/// Outside input (the environment, incoming headers) is allow-listed on
/// read: keys other than [`DEFAULT_KEYS`] (or the keys given to
/// [`from_env_with`](Self::from_env_with)) are left out and
/// counted in [`dropped`](Self::dropped), so an inherited `BAGGAGE` cannot
/// put arbitrary keys on every line.
///
/// # Limits
///
/// At most [`MAX_ENTRIES`](Self::MAX_ENTRIES) keys and
/// [`MAX_BYTES`](Self::MAX_BYTES) of encoded baggage (the W3C minimums).
/// Keys are HTTP tokens; values are text without control characters, at most
/// [`MAX_VALUE_LEN`](Self::MAX_VALUE_LEN) bytes, and travel percent-encoded,
/// so on the wire they use only the baggage character set.
/// [`insert`](Self::insert) rejects what breaks a rule with a
/// [`SnapshotError`]. Decoding outside input (environment, headers) is
/// lenient as the W3C asks: an invalid member, or one past a limit, is left
/// out and counted in [`dropped`](Self::dropped); serde input is strict.
///
/// Baggage travels in clear text to every downstream service: never put
/// secrets or personal data in it. [`capture`](Self::capture) leaves out
/// the keys the `ContextLayer` redacts
/// ([`ContextLayer::redact`](spanline_core::ContextLayer::redact); with
/// `spanline::init()`, `SPANLINE_REDACT`), so a key masked on the lines is
/// not sent in clear either.
///
/// ```
/// use spanline_context::ContextSnapshot;
/// let mut snap = ContextSnapshot::new();
/// snap.insert("request_id", "r-1").unwrap();
/// snap.insert("user_id", 42).unwrap();
/// let json = serde_json::to_string(&snap).unwrap();
/// assert_eq!(json, r#"{"v":2,"fields":{"request_id":"r-1","user_id":42}}"#);
/// let back: ContextSnapshot = serde_json::from_str(&json).unwrap();
/// assert_eq!(back.get("user_id"), Some("42"));
/// assert_eq!(back.get_json("user_id").as_deref(), Some("42"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContextSnapshot {
    traceparent: Option<TraceParent>,
    /// The traceparent names a real span (OpenTelemetry's current span), so
    /// an outgoing call's `traceparent` is it, not a made-up child.
    parent_is_span: bool,
    tracestate: Option<String>,
    entries: Vec<(String, SnapshotValue)>,
    dropped: usize,
}

fn is_token(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 256
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl ContextSnapshot {
    /// The most keys a snapshot holds.
    ///
    /// ```
    /// assert_eq!(spanline_context::ContextSnapshot::MAX_ENTRIES, 64);
    /// ```
    pub const MAX_ENTRIES: usize = 64;
    /// The longest encoded baggage, in bytes.
    ///
    /// ```
    /// assert_eq!(spanline_context::ContextSnapshot::MAX_BYTES, 8192);
    /// ```
    pub const MAX_BYTES: usize = 8192;
    /// The longest value, in bytes.
    ///
    /// ```
    /// let mut snap = spanline_context::ContextSnapshot::new();
    /// assert!(snap.insert("k", &"v".repeat(spanline_context::ContextSnapshot::MAX_VALUE_LEN + 1)).is_err());
    /// ```
    pub const MAX_VALUE_LEN: usize = 4096;
    /// The serialized format's version.
    ///
    /// ```
    /// let json = serde_json::to_value(spanline_context::ContextSnapshot::new()).unwrap();
    /// assert_eq!(json["v"], spanline_context::ContextSnapshot::VERSION);
    /// ```
    pub const VERSION: u32 = 2;

    /// An empty snapshot.
    ///
    /// ```
    /// let snap = spanline_context::ContextSnapshot::new();
    /// assert!(snap.is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The current context's [`DEFAULT_KEYS`], and a `traceparent`: the
    /// context's own `traceparent` key if it has one, else one made from its
    /// `trace_id`. Values that break a rule are left out and counted in
    /// [`dropped`](Self::dropped).
    ///
    /// Keys that the subscriber's `ContextLayer` redacts
    /// ([`ContextLayer::redact`](spanline_core::ContextLayer::redact),
    /// `SPANLINE_REDACT` with `spanline::init()`) are left out, so they
    /// are in no `BAGGAGE`, header or job payload made from the snapshot;
    /// hidden keys inside an object or array value are masked.
    ///
    /// ```
    /// # use tracing_subscriber::prelude::*;
    /// let layer = spanline_core::ContextLayer::new().redact(["user_id"]);
    /// # tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
    /// let _req = tracing::info_span!("request", request_id = "r-1", user_id = 42).entered();
    /// let snap = spanline_context::ContextSnapshot::capture();
    /// assert_eq!((snap.get("request_id"), snap.get("user_id")), (Some("r-1"), None));
    /// # });
    /// ```
    ///
    /// ```
    /// # use tracing_subscriber::prelude::*;
    /// # let subscriber = tracing_subscriber::registry().with(spanline_core::ContextLayer::new());
    /// # tracing::subscriber::with_default(subscriber, || {
    /// let _req = tracing::info_span!("request", request_id = "r-1", secret = "not carried").entered();
    /// let snap = spanline_context::ContextSnapshot::capture();
    /// assert_eq!(snap.get("request_id"), Some("r-1"));
    /// assert_eq!(snap.get("secret"), None);
    /// # });
    /// ```
    pub fn capture() -> Self {
        Self::capture_keys(DEFAULT_KEYS)
    }

    /// Like [`capture`](Self::capture), with your own allow-list.
    ///
    /// ```
    /// # use tracing_subscriber::prelude::*;
    /// # let subscriber = tracing_subscriber::registry().with(spanline_core::ContextLayer::new());
    /// # tracing::subscriber::with_default(subscriber, || {
    /// let _req = tracing::info_span!("request", region = "eu").entered();
    /// let snap = spanline_context::ContextSnapshot::capture_keys(&["region"]);
    /// assert_eq!(snap.get("region"), Some("eu"));
    /// # });
    /// ```
    pub fn capture_keys(keys: &[&str]) -> Self {
        #[allow(unused_mut)] // set again only with OpenTelemetry
        let mut snap = Self::from_view(&crate::current(), keys);
        // The job goes on where the snapshot is restored: its end is there.
        if snap.get_json("job_id").is_some() {
            spanline_core::hand_off_job();
        }
        // The next hop's spans are children of the current OpenTelemetry
        // span, in its trace (the same trace id as the context's, once the
        // trace continued an incoming one).
        #[cfg(feature = "opentelemetry")]
        if let Some(tp) = crate::otel::current_traceparent() {
            snap.traceparent = Some(tp);
            snap.parent_is_span = true;
        }
        snap
    }

    /// Like [`capture`](Self::capture), carrying `extra` keys beside the
    /// [`DEFAULT_KEYS`]: for a job started by a request that should log the
    /// request's route and method too.
    ///
    /// ```
    /// # use tracing_subscriber::prelude::*;
    /// # let subscriber = tracing_subscriber::registry().with(spanline_core::ContextLayer::new());
    /// # tracing::subscriber::with_default(subscriber, || {
    /// let _req = tracing::info_span!("request", request_id = "r-1", route = "/users/{id}").entered();
    /// let snap = spanline_context::ContextSnapshot::capture_with(&["route", "method"]);
    /// assert_eq!(snap.get("request_id"), Some("r-1"));
    /// assert_eq!(snap.get("route"), Some("/users/{id}"));
    /// # });
    /// ```
    pub fn capture_with(extra: &[&str]) -> Self {
        let keys: Vec<&str> = DEFAULT_KEYS
            .iter()
            .copied()
            .chain(extra.iter().copied().filter(|k| !DEFAULT_KEYS.contains(k)))
            .collect();
        Self::capture_keys(&keys)
    }

    /// A snapshot of `view`'s allow-listed keys (see [`capture`](Self::capture)),
    /// leaving out the keys the current subscriber's `ContextLayer` redacts
    /// ([`Redact::current`](spanline_core::Redact::current)).
    ///
    /// ```
    /// # use tracing_subscriber::prelude::*;
    /// # let subscriber = tracing_subscriber::registry().with(spanline_core::ContextLayer::new());
    /// # tracing::subscriber::with_default(subscriber, || {
    /// let _req = tracing::info_span!("request", tenant = "acme").entered();
    /// let snap = spanline_context::ContextSnapshot::from_view(&spanline_context::current(), spanline_context::DEFAULT_KEYS);
    /// assert_eq!(snap.get("tenant"), Some("acme"));
    /// # });
    /// ```
    pub fn from_view(view: &CtxView, keys: &[&str]) -> Self {
        // The keys the ContextLayer hides never leave the process; read
        // where the view is, from the subscriber (see `ContextLayer::redact`).
        let redact = spanline_core::Redact::current();
        let get = |key: &str| (!redact.hides(key)).then(|| view.get(key)).flatten();
        let mut snap = Self::new();
        for key in keys {
            if let Some(value) = get(key) {
                if snap
                    .insert(key, SnapshotValue::from_field(&value, &redact))
                    .is_err()
                {
                    snap.dropped += 1;
                }
            }
        }
        let traceparent = get("traceparent").and_then(|v| v.to_string().parse().ok());
        snap.traceparent = traceparent.or_else(|| {
            let trace_id = get("trace_id")?.to_string();
            TraceParent::for_trace(&trace_id).ok()
        });
        snap
    }

    /// Adds or replaces a key; strings, integers, floats and booleans keep
    /// their type through the serde form.
    ///
    /// ```
    /// let mut snap = spanline_context::ContextSnapshot::new();
    /// snap.insert("request_id", "r-1").unwrap();
    /// snap.insert("user_id", 42u64).unwrap();
    /// assert!(snap.insert("bad key", "v").is_err());
    /// ```
    pub fn insert(
        &mut self,
        key: &str,
        value: impl Into<SnapshotValue>,
    ) -> Result<(), SnapshotError> {
        let value = value.into();
        self.insert_value(key, value)
    }

    fn insert_value(&mut self, key: &str, value: SnapshotValue) -> Result<(), SnapshotError> {
        if !is_token(key) {
            return Err(SnapshotError::InvalidKey(key.chars().take(64).collect()));
        }
        let text = value.as_str();
        if text.len() > Self::MAX_VALUE_LEN {
            return Err(SnapshotError::ValueTooLong(text.len()));
        }
        if text.chars().any(char::is_control) {
            return Err(SnapshotError::InvalidValue(text.chars().take(64).collect()));
        }
        let mut next = self.entries.clone();
        match next.iter().position(|(k, _)| k == key) {
            Some(i) => next[i].1 = value,
            None if next.len() >= Self::MAX_ENTRIES => return Err(SnapshotError::TooManyEntries),
            None => next.push((key.to_string(), value)),
        }
        let size = baggage::encoded_len(&next);
        if size > Self::MAX_BYTES {
            return Err(SnapshotError::TooLarge(size));
        }
        self.entries = next;
        Ok(())
    }

    /// The value of `key`.
    ///
    /// ```
    /// let mut snap = spanline_context::ContextSnapshot::new();
    /// snap.insert("request_id", "r-1").unwrap();
    /// assert_eq!(snap.get("request_id"), Some("r-1"));
    /// ```
    pub fn get(&self, key: &str) -> Option<&str> {
        self.value(key).map(SnapshotValue::as_str)
    }

    /// The value of `key`, with its type.
    ///
    /// ```
    /// let mut snap = spanline_context::ContextSnapshot::new();
    /// snap.insert("attempt", 3).unwrap();
    /// assert_eq!(snap.value("attempt").unwrap().to_json(), "3");
    /// ```
    pub fn value(&self, key: &str) -> Option<&SnapshotValue> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The value of `key` as JSON (`"r-1"`, `42`, `true`).
    ///
    /// ```
    /// let mut snap = spanline_context::ContextSnapshot::new();
    /// snap.insert("request_id", "r-1").unwrap();
    /// assert_eq!(snap.get_json("request_id").as_deref(), Some(r#""r-1""#));
    /// ```
    pub fn get_json(&self, key: &str) -> Option<String> {
        self.value(key).map(SnapshotValue::to_json)
    }

    /// Every key and value, in insertion order.
    ///
    /// ```
    /// let mut snap = spanline_context::ContextSnapshot::new();
    /// snap.insert("request_id", "r-1").unwrap();
    /// assert_eq!(snap.iter().collect::<Vec<_>>(), [("request_id", "r-1")]);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Every key and typed value, in insertion order.
    ///
    /// ```
    /// let mut snap = spanline_context::ContextSnapshot::new();
    /// snap.insert("user_id", 7).unwrap();
    /// let (key, value) = snap.values().next().unwrap();
    /// assert_eq!((key, value.to_json().as_str()), ("user_id", "7"));
    /// ```
    pub fn values(&self) -> impl Iterator<Item = (&str, &SnapshotValue)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of keys.
    ///
    /// ```
    /// let mut snap = spanline_context::ContextSnapshot::new();
    /// snap.insert("request_id", "r-1").unwrap();
    /// assert_eq!(snap.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the snapshot holds no keys and no `traceparent`.
    ///
    /// ```
    /// let mut snap = spanline_context::ContextSnapshot::new();
    /// snap.insert("request_id", "r-1").unwrap();
    /// assert!(!snap.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.traceparent.is_none()
    }

    /// The trace context, if any.
    ///
    /// ```
    /// let snap = spanline_context::ContextSnapshot::from_env_vars(|name| (name == "TRACEPARENT").then(|| "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_string()));
    /// assert_eq!(snap.traceparent().unwrap().parent_id(), "00f067aa0ba902b7");
    /// ```
    pub fn traceparent(&self) -> Option<&TraceParent> {
        self.traceparent.as_ref()
    }

    /// Sets the trace context.
    ///
    /// ```
    /// let mut snap = spanline_context::ContextSnapshot::new();
    /// snap.set_traceparent(spanline_context::TraceParent::for_trace("4bf92f3577b34da6a3ce929d0e0e4736").ok());
    /// assert!(snap.traceparent().is_some());
    /// ```
    pub fn set_traceparent(&mut self, traceparent: Option<TraceParent>) {
        self.traceparent = traceparent;
        self.parent_is_span = false;
    }

    /// Members of outside input (or captured values) that were left out
    /// because they were invalid or past a limit.
    ///
    /// ```
    /// let snap = spanline_context::ContextSnapshot::from_baggage("ok=1,broken");
    /// assert_eq!((snap.len(), snap.dropped()), (1, 1));
    /// ```
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    /// Leaves out (and counts) the keys `allowed` refuses.
    fn retain_keys(&mut self, allowed: impl Fn(&str) -> bool) {
        let before = self.entries.len();
        self.entries.retain(|(k, _)| allowed(k));
        self.dropped += before - self.entries.len();
    }

    // ==== restoring ====

    /// Opens a root span (target `spanline::context`, name `restored`, with
    /// `task = name`) that carries the snapshot's keys with their types, and
    /// `trace_id` from the `traceparent`: every line logged inside it has
    /// them, whatever `RUST_LOG` says (it is a context span, see
    /// [`ContextLayer`](spanline_core::ContextLayer)). Enter it for the
    /// duration of the job.
    ///
    /// ```
    /// use tracing_subscriber::prelude::*;
    /// let subscriber = tracing_subscriber::registry().with(spanline_core::ContextLayer::new());
    /// tracing::subscriber::with_default(subscriber, || {
    ///     let payload = r#"{"v":1,"baggage":"request_id=r-1,job_id=build_1"}"#;
    ///     let snap: spanline_context::ContextSnapshot = serde_json::from_str(payload).unwrap();
    ///     let _job = snap.restore("build").entered();
    ///     assert_eq!(spanline_context::current().get("request_id").unwrap().to_string(), "r-1");
    /// });
    /// ```
    pub fn restore(&self, name: &str) -> Span {
        let span =
            tracing::info_span!(target: "spanline::context", parent: None, "restored", task = name);
        #[cfg(feature = "opentelemetry")]
        if let Some(parent) = self.traceparent {
            crate::otel::continue_trace(&span, parent);
        }
        if let Some(id) = span.id() {
            if let Some(tp) = &self.traceparent {
                let _ = spanline_core::set_in(&id, "trace_id", tp.trace_id());
            }
            for (k, v) in &self.entries {
                let _ = spanline_core::set_in(&id, k, spanline_core::RawJson(&v.to_json()));
            }
        }
        span
    }
}
