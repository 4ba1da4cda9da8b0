//! [`ContextSnapshot`]: the context that crosses process boundaries.
//!
//! Why one file of about 1,000 lines: the snapshot is one type with its
//! three forms (serde, environment variables, HTTP headers), each reading
//! and writing the same private fields; a third of it is runnable examples.

use std::fmt;

use serde::{Deserialize, Serialize};
use spanline_core::CtxView;
use tracing::Span;

use crate::TraceParent;

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
/// [`from_env_with_keys`](Self::from_env_with_keys)) are left out and
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

/// A snapshot value: its text and its JSON type (string, integer, float or
/// boolean). Made from the Rust values with `From`.
///
/// ```
/// use spanline_context::SnapshotValue;
/// assert_eq!(SnapshotValue::from(7u32).to_json(), "7");
/// assert_eq!(SnapshotValue::from("7").to_json(), r#""7""#);
/// assert_eq!(SnapshotValue::from(true).as_str(), "true");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotValue {
    text: String,
    kind: Kind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Str,
    Int,
    UInt,
    Float,
    Bool,
}

impl SnapshotValue {
    /// The value as text: a string's contents, a number's digits, `true`.
    ///
    /// ```
    /// assert_eq!(spanline_context::SnapshotValue::from(1.5).as_str(), "1.5");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The value as JSON: strings quoted and escaped, numbers and booleans
    /// bare.
    ///
    /// ```
    /// assert_eq!(spanline_context::SnapshotValue::from("a\"b").to_json(), r#""a\"b""#);
    /// ```
    pub fn to_json(&self) -> String {
        match self.kind {
            Kind::Str => {
                let mut buf = Vec::with_capacity(self.text.len() + 2);
                spanline_core::write_str(&mut buf, &self.text);
                String::from_utf8_lossy(&buf).into_owned()
            }
            _ => self.text.clone(),
        }
    }

    /// A value from a context field's JSON (as [`spanline_core::FieldValue`]
    /// holds it): strings, numbers and booleans keep their type; anything
    /// else (a list, an object) travels as its JSON text, with the keys
    /// `redact` hides inside it masked.
    fn from_field(value: &spanline_core::FieldValue, redact: &spanline_core::Redact) -> Self {
        let json = value.as_json();
        if let Some(text) = value.as_str() {
            return text.into_owned().into();
        }
        let kind = match json {
            "true" | "false" => Kind::Bool,
            _ if json.parse::<i64>().is_ok() => Kind::Int,
            _ if json.parse::<u64>().is_ok() => Kind::UInt,
            _ if json.parse::<f64>().is_ok_and(f64::is_finite)
                && json.starts_with(|c: char| c == '-' || c.is_ascii_digit()) =>
            {
                Kind::Float
            }
            _ => return redact.scrub_json(json).into_owned().into(),
        };
        Self {
            text: json.to_string(),
            kind,
        }
    }
}

impl From<String> for SnapshotValue {
    fn from(text: String) -> Self {
        Self {
            text,
            kind: Kind::Str,
        }
    }
}
impl From<&str> for SnapshotValue {
    fn from(text: &str) -> Self {
        text.to_string().into()
    }
}
impl From<&String> for SnapshotValue {
    fn from(text: &String) -> Self {
        text.clone().into()
    }
}
impl From<bool> for SnapshotValue {
    fn from(v: bool) -> Self {
        Self {
            text: v.to_string(),
            kind: Kind::Bool,
        }
    }
}
impl From<f64> for SnapshotValue {
    /// NaN and the infinities have no JSON form: they travel as text.
    fn from(v: f64) -> Self {
        let kind = if v.is_finite() {
            Kind::Float
        } else {
            Kind::Str
        };
        Self {
            text: v.to_string(),
            kind,
        }
    }
}
macro_rules! snapshot_int {
    ($kind:ident: $($t:ty),*) => {$(
        impl From<$t> for SnapshotValue {
            fn from(v: $t) -> Self {
                Self { text: v.to_string(), kind: Kind::$kind }
            }
        }
    )*};
}
snapshot_int!(Int: i8, i16, i32, i64);
snapshot_int!(UInt: u8, u16, u32, u64, usize);

/// Why a snapshot, or an entry of one, was rejected.
///
/// ```
/// let mut snap = spanline_context::ContextSnapshot::new();
/// let err = snap.insert("user id", "x").unwrap_err();
/// assert!(matches!(err, spanline_context::SnapshotError::InvalidKey(_)));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The key is not an HTTP token (letters, digits, `!#$%&'*+-.^_|~` and backtick).
    InvalidKey(String),
    /// The value holds a control character.
    InvalidValue(String),
    /// The value is longer than [`ContextSnapshot::MAX_VALUE_LEN`].
    ValueTooLong(usize),
    /// The snapshot would hold more than [`ContextSnapshot::MAX_ENTRIES`] keys.
    TooManyEntries,
    /// The encoded baggage would be longer than [`ContextSnapshot::MAX_BYTES`].
    TooLarge(usize),
    /// The `traceparent` is invalid.
    TraceParent(crate::traceparent::TraceParentError),
    /// A serialized snapshot has a version this library does not read.
    UnsupportedVersion(u32),
    /// A serialized snapshot's baggage is malformed.
    Malformed(String),
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::InvalidKey(k) => write!(f, "context key {k:?} is not an HTTP token"),
            SnapshotError::InvalidValue(v) => {
                write!(f, "context value {v:?} holds a control character")
            }
            SnapshotError::ValueTooLong(n) => {
                write!(
                    f,
                    "context value is {n} bytes, more than {}",
                    ContextSnapshot::MAX_VALUE_LEN
                )
            }
            SnapshotError::TooManyEntries => {
                write!(
                    f,
                    "context snapshot holds more than {} keys",
                    ContextSnapshot::MAX_ENTRIES
                )
            }
            SnapshotError::TooLarge(n) => {
                write!(
                    f,
                    "context snapshot encodes to {n} bytes, more than {}",
                    ContextSnapshot::MAX_BYTES
                )
            }
            SnapshotError::TraceParent(e) => e.fmt(f),
            SnapshotError::UnsupportedVersion(v) => {
                write!(f, "context snapshot version {v} is not supported")
            }
            SnapshotError::Malformed(m) => write!(f, "malformed context snapshot: {m}"),
        }
    }
}

impl std::error::Error for SnapshotError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SnapshotError::TraceParent(e) => Some(e),
            _ => None,
        }
    }
}

fn is_token(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 256
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Bytes that travel as they are in a baggage value (W3C `baggage-octet`,
/// less `%`, which introduces an escape).
fn is_baggage_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x24 | 0x26..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e)
}

fn percent_encode(value: &str, out: &mut String) {
    for &b in value.as_bytes() {
        if is_baggage_octet(b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[(b >> 4) as usize]));
            out.push(char::from(b"0123456789ABCDEF"[(b & 0xf) as usize]));
        }
    }
}

fn percent_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
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
        let size = encoded_len(&next);
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

    /// The W3C `baggage` form: `k=v,k2=v2`, values percent-encoded.
    ///
    /// ```
    /// let mut snap = spanline_context::ContextSnapshot::new();
    /// snap.insert("request_id", "r-1").unwrap();
    /// snap.insert("user_id", "ann lee").unwrap();
    /// assert_eq!(snap.to_baggage(), "request_id=r-1,user_id=ann%20lee");
    /// ```
    pub fn to_baggage(&self) -> String {
        encode_baggage(&self.entries)
    }

    /// Reads a W3C `baggage` value leniently (see the type's docs).
    ///
    /// ```
    /// let snap = spanline_context::ContextSnapshot::from_baggage("request_id=r-1;ttl=5, user_id=ann%20lee");
    /// assert_eq!(snap.get("user_id"), Some("ann lee"));
    /// ```
    pub fn from_baggage(baggage: &str) -> Self {
        let mut snap = Self::new();
        snap.merge_baggage(baggage);
        snap
    }

    fn merge_baggage(&mut self, baggage: &str) {
        for member in baggage.split(',') {
            let member = member.trim();
            if member.is_empty() {
                continue;
            }
            // Properties (`;k=v`) are allowed by the format; spanline keeps
            // only the value.
            let pair = member.split(';').next().unwrap_or_default();
            let parsed = pair
                .split_once('=')
                .and_then(|(k, v)| Some((k.trim(), percent_decode(v.trim())?)))
                .filter(|(k, _)| is_token(k));
            let inserted = parsed.is_some_and(|(k, v)| self.insert(k, v).is_ok());
            if !inserted {
                self.dropped += 1;
            }
        }
    }

    fn strict_baggage(baggage: &str) -> Result<Vec<(String, SnapshotValue)>, SnapshotError> {
        let mut snap = Self::new();
        for member in baggage.split(',').filter(|m| !m.is_empty()) {
            let (k, v) = member.split_once('=').ok_or_else(|| {
                SnapshotError::Malformed(format!("member without '=': {member:.64}"))
            })?;
            let v = percent_decode(v).ok_or_else(|| {
                SnapshotError::Malformed(format!("bad percent-encoding: {v:.64}"))
            })?;
            snap.insert(k, v)?;
        }
        Ok(snap.entries)
    }

    // ==== environment ====

    /// The environment variables for a child process: `TRACEPARENT`,
    /// `TRACESTATE` and `BAGGAGE` (each only when set).
    ///
    /// ```
    /// let mut snap = spanline_context::ContextSnapshot::new();
    /// snap.insert("request_id", "r-1").unwrap();
    /// let mut cmd = std::process::Command::new("true");
    /// cmd.envs(snap.to_env());
    /// ```
    pub fn to_env(&self) -> Vec<(&'static str, String)> {
        let mut vars = Vec::new();
        if let Some(tp) = &self.traceparent {
            vars.push(("TRACEPARENT", tp.to_string()));
        }
        if let Some(ts) = &self.tracestate {
            vars.push(("TRACESTATE", ts.clone()));
        }
        if !self.entries.is_empty() {
            vars.push(("BAGGAGE", self.to_baggage()));
        }
        vars
    }

    /// The current context's variables for a child process
    /// ([`capture`](Self::capture), then [`to_env`](Self::to_env)), in the
    /// form `spanline_pipe::Forwarder::env_with` takes.
    ///
    /// ```
    /// use tracing_subscriber::prelude::*;
    /// let subscriber = tracing_subscriber::registry().with(spanline_core::ContextLayer::new());
    /// tracing::subscriber::with_default(subscriber, || {
    ///     let _req = tracing::info_span!("request", request_id = "r-1").entered();
    ///     let vars = spanline_context::ContextSnapshot::capture_env();
    ///     assert_eq!(vars, [("BAGGAGE".to_string(), "request_id=r-1".to_string())]);
    /// });
    /// ```
    pub fn capture_env() -> Vec<(String, String)> {
        Self::capture()
            .to_env()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
    }

    /// Reads `TRACEPARENT`, `TRACESTATE` and `BAGGAGE` from this process's
    /// environment, leniently, keeping only the [`DEFAULT_KEYS`] of the
    /// baggage. Empty when none is set.
    ///
    /// See [`ContextSnapshot`]'s example.
    pub fn from_env() -> Self {
        Self::from_env_vars(|name| std::env::var(name).ok())
    }

    /// Like [`from_env`](Self::from_env), keeping the baggage keys of `keys`
    /// (the [`DEFAULT_KEYS`] and the keys added to it).
    ///
    /// See [`ContextSnapshot`]'s example.
    pub fn from_env_with_keys(keys: &spanline_core::ContextKeys) -> Self {
        Self::read_env(|name| std::env::var(name).ok(), |k| keys.contains(k))
    }

    /// Like [`from_env`](Self::from_env), reading variables through `var`.
    /// Baggage keys outside [`DEFAULT_KEYS`] are left out and counted.
    ///
    /// ```
    /// let snap = spanline_context::ContextSnapshot::from_env_vars(|name| {
    ///     (name == "BAGGAGE").then(|| "job_id=j-1,secret=hunter2".to_string())
    /// });
    /// assert_eq!(snap.get("job_id"), Some("j-1"));
    /// assert_eq!((snap.get("secret"), snap.dropped()), (None, 1));
    /// ```
    pub fn from_env_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        Self::read_env(var, |k| DEFAULT_KEYS.contains(&k))
    }

    fn read_env(var: impl Fn(&str) -> Option<String>, allowed: impl Fn(&str) -> bool) -> Self {
        let mut snap = var("BAGGAGE")
            .map(|b| Self::from_baggage(&b))
            .unwrap_or_default();
        snap.retain_keys(allowed);
        if let Some(tp) = var("TRACEPARENT") {
            match tp.parse() {
                Ok(tp) => snap.traceparent = Some(tp),
                Err(_) => snap.dropped += 1,
            }
        }
        snap.tracestate =
            var("TRACESTATE").filter(|ts| ts.len() <= 512 && !ts.chars().any(char::is_control));
        snap
    }

    // ==== HTTP headers ====

    /// Headers for an outgoing call: `traceparent` (a child of this
    /// snapshot's), `tracestate`, `baggage`, and `x-request-id` when the
    /// snapshot holds a `request_id`.
    ///
    /// ```
    /// let mut snap = spanline_context::ContextSnapshot::new();
    /// snap.insert("request_id", "r-1").unwrap();
    /// let headers = snap.to_headers();
    /// assert_eq!(headers["x-request-id"], "r-1");
    /// assert_eq!(headers["baggage"], "request_id=r-1");
    /// ```
    pub fn to_headers(&self) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        let mut put = |name: &'static str, value: String| {
            if let Ok(value) = http::HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        };
        if let Some(tp) = &self.traceparent {
            let tp = if self.parent_is_span { *tp } else { tp.child() };
            put("traceparent", tp.to_string());
        }
        if let Some(ts) = &self.tracestate {
            put("tracestate", ts.clone());
        }
        if !self.entries.is_empty() {
            put("baggage", self.to_baggage());
        }
        if let Some(id) = self.get("request_id") {
            put("x-request-id", id.to_string());
        }
        headers
    }

    /// Reads `traceparent`, `tracestate` and `baggage` from incoming headers,
    /// leniently, keeping only the [`DEFAULT_KEYS`] of the baggage (the rest
    /// is counted in [`dropped`](Self::dropped)). Accept baggage only from
    /// trusted peers: anyone can send it.
    ///
    /// ```
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("baggage", "tenant=acme,debug=1".parse().unwrap());
    /// let snap = spanline_context::ContextSnapshot::from_headers(&headers);
    /// assert_eq!((snap.get("tenant"), snap.get("debug"), snap.dropped()), (Some("acme"), None, 1));
    /// ```
    pub fn from_headers(headers: &http::HeaderMap) -> Self {
        let text = |name: &str| {
            headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut snap = Self::from_baggage(&text("baggage"));
        snap.retain_keys(|k| DEFAULT_KEYS.contains(&k));
        let tp = text("traceparent");
        if !tp.is_empty() {
            match tp.parse() {
                Ok(tp) => snap.traceparent = Some(tp),
                Err(_) => snap.dropped += 1,
            }
        }
        let ts = text("tracestate");
        snap.tracestate = (!ts.is_empty() && ts.len() <= 512).then_some(ts);
        snap
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

fn encode_baggage(entries: &[(String, SnapshotValue)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in entries.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push('=');
        percent_encode(v.as_str(), &mut out);
    }
    out
}

fn encoded_len(entries: &[(String, SnapshotValue)]) -> usize {
    encode_baggage(entries).len()
}

// ==== serde ====

/// Version 1 carried string values in `baggage`; version 2 carries typed
/// values in `fields`. Both are read; version 2 is written.
#[derive(Deserialize)]
struct Wire {
    v: u32,
    #[serde(default)]
    traceparent: Option<String>,
    #[serde(default)]
    tracestate: Option<String>,
    #[serde(default)]
    baggage: Option<String>,
    #[serde(default)]
    fields: Option<Fields>,
}

/// The typed `fields` map, in order.
struct Fields(Vec<(String, SnapshotValue)>);

impl Serialize for ContextSnapshot {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("v", &Self::VERSION)?;
        if let Some(tp) = &self.traceparent {
            map.serialize_entry("traceparent", &tp.to_string())?;
        }
        if let Some(ts) = &self.tracestate {
            map.serialize_entry("tracestate", ts)?;
        }
        if !self.entries.is_empty() {
            map.serialize_entry("fields", &FieldsRef(&self.entries))?;
        }
        map.end()
    }
}

struct FieldsRef<'a>(&'a [(String, SnapshotValue)]);

impl Serialize for FieldsRef<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl Serialize for SnapshotValue {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // The text of a typed value was made from that type, so it parses.
        match self.kind {
            Kind::Str => serializer.serialize_str(&self.text),
            Kind::Bool => serializer.serialize_bool(self.text == "true"),
            Kind::Int => match self.text.parse::<i64>() {
                Ok(n) => serializer.serialize_i64(n),
                Err(_) => serializer.serialize_str(&self.text),
            },
            Kind::UInt => match self.text.parse::<u64>() {
                Ok(n) => serializer.serialize_u64(n),
                Err(_) => serializer.serialize_str(&self.text),
            },
            Kind::Float => match self.text.parse::<f64>() {
                Ok(n) => serializer.serialize_f64(n),
                Err(_) => serializer.serialize_str(&self.text),
            },
        }
    }
}

impl<'de> Deserialize<'de> for SnapshotValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = SnapshotValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, a number or a boolean")
            }
            fn visit_bool<E>(self, v: bool) -> Result<SnapshotValue, E> {
                Ok(v.into())
            }
            fn visit_i64<E>(self, v: i64) -> Result<SnapshotValue, E> {
                Ok(v.into())
            }
            fn visit_u64<E>(self, v: u64) -> Result<SnapshotValue, E> {
                Ok(v.into())
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<SnapshotValue, E> {
                if v.is_finite() {
                    Ok(v.into())
                } else {
                    Err(E::custom("a number that JSON can hold"))
                }
            }
            fn visit_str<E>(self, v: &str) -> Result<SnapshotValue, E> {
                Ok(v.into())
            }
            fn visit_string<E>(self, v: String) -> Result<SnapshotValue, E> {
                Ok(v.into())
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Fields;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of context keys to strings, numbers or booleans")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Fields, A::Error> {
                let mut fields = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, SnapshotValue>()? {
                    if fields.len() > ContextSnapshot::MAX_ENTRIES {
                        return Err(serde::de::Error::custom(SnapshotError::TooManyEntries));
                    }
                    fields.push((k, v));
                }
                Ok(Fields(fields))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

impl<'de> Deserialize<'de> for ContextSnapshot {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = Wire::deserialize(deserializer)?;
        Self::try_from_wire(wire).map_err(serde::de::Error::custom)
    }
}

impl ContextSnapshot {
    fn try_from_wire(wire: Wire) -> Result<Self, SnapshotError> {
        let entries = match (wire.v, wire.baggage, wire.fields) {
            (1, baggage, None) => Self::strict_baggage(&baggage.unwrap_or_default())?,
            (2, None, fields) => {
                let mut snap = Self::new();
                for (k, v) in fields.map(|f| f.0).unwrap_or_default() {
                    snap.insert(&k, v)?;
                }
                snap.entries
            }
            (1 | 2, _, _) => {
                return Err(SnapshotError::Malformed(
                    "version 1 carries `baggage`, version 2 `fields`".into(),
                ))
            }
            (v, _, _) => return Err(SnapshotError::UnsupportedVersion(v)),
        };
        let traceparent = wire
            .traceparent
            .map(|tp| tp.parse())
            .transpose()
            .map_err(SnapshotError::TraceParent)?;
        if wire
            .tracestate
            .as_ref()
            .is_some_and(|ts| ts.len() > 512 || ts.chars().any(char::is_control))
        {
            return Err(SnapshotError::Malformed("tracestate".into()));
        }
        Ok(Self {
            traceparent,
            parent_is_span: false,
            tracestate: wire.tracestate,
            entries,
            dropped: 0,
        })
    }
}
