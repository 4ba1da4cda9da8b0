//! Test helpers for spanline: a capturing [`MakeWriter`], a strict JSON
//! line parser that rejects duplicate keys, and the standard subscriber of
//! spanline's tests ([`capture_json`], [`json_subscriber`]).
//!
//! ```
//! use spanline_testkit::Capture;
//! use std::io::Write;
//! let capture = Capture::new();
//! let mut w = tracing_subscriber::fmt::MakeWriter::make_writer(&capture);
//! w.write_all(b"{\"a\":1}\n").unwrap();
//! assert_eq!(capture.json_lines()[0]["a"], 1);
//! ```

#[cfg(feature = "browser")]
mod browser;
#[cfg(feature = "browser")]
pub use crate::browser::Browser;
#[cfg(feature = "otlp")]
mod otlp;
#[cfg(feature = "otlp")]
pub use crate::otlp::{any_text, OtlpReceiver, Received};
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "redis")]
pub use crate::redis::{free_port, RedisCluster, RedisServer, ShardedSubscription, Subscription};

/// A number no other call in this process returns: for unique file names.
pub fn unique() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// This test binary, run again to execute only its test `name` (single
/// threaded, output shown): the way tests start a real child process that
/// runs code of the test itself, chosen by an environment variable.
///
/// # Panics
///
/// When the test binary's own path is unknown.
pub fn this_test_binary(name: &str) -> std::process::Command {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("the test binary: {e}"));
    let mut cmd = std::process::Command::new(exe);
    cmd.args([
        "--exact",
        name,
        "--nocapture",
        "--quiet",
        "--test-threads=1",
    ]);
    cmd
}

/// A child process that is killed and reaped when dropped, so a test that
/// fails half-way never leaves it running.
#[derive(Debug)]
pub struct KillOnDrop(pub std::process::Child);

impl std::ops::Deref for KillOnDrop {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use tracing_subscriber::fmt::MakeWriter;

/// A [`MakeWriter`] that keeps everything written to it, and counts the
/// `write` calls (to check that each line is exactly one write).
#[derive(Clone, Debug, Default)]
pub struct Capture {
    inner: Arc<Mutex<Captured>>,
}

#[derive(Debug, Default)]
struct Captured {
    bytes: Vec<u8>,
    writes: usize,
    /// How long each write takes: a slow reader (a terminal, a full pipe).
    delay: std::time::Duration,
}

/// The writer handed out by [`Capture`].
#[derive(Debug)]
pub struct CaptureWriter {
    inner: Arc<Mutex<Captured>>,
}

impl Capture {
    /// An empty capture.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Captured> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A capture whose every write takes `delay`, as a slow reader would.
    pub fn slow(delay: std::time::Duration) -> Self {
        let capture = Self::default();
        capture.lock().delay = delay;
        capture
    }

    /// Everything written, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.lock().bytes).into_owned()
    }

    /// Everything written, as lines (without their `\n`).
    pub fn lines(&self) -> Vec<String> {
        self.text().lines().map(str::to_string).collect()
    }

    /// The number of `write` calls so far.
    pub fn writes(&self) -> usize {
        self.lock().writes
    }

    /// Forgets what was captured.
    pub fn clear(&self) {
        let mut c = self.lock();
        c.bytes.clear();
        c.writes = 0;
    }

    /// Every line parsed as one JSON object with [`parse_strict`].
    ///
    /// # Panics
    ///
    /// When a line is not exactly one JSON object with unique keys; the
    /// message shows the line.
    #[track_caller]
    pub fn json_lines(&self) -> Vec<Map<String, Value>> {
        self.lines()
            .iter()
            .map(|line| match parse_strict(line) {
                Ok(map) => map,
                Err(e) => panic!("invalid JSON line ({e}): {line}"),
            })
            .collect()
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = CaptureWriter;

    fn make_writer(&'a self) -> Self::Writer {
        CaptureWriter {
            inner: self.inner.clone(),
        }
    }
}

impl io::Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let delay = self
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .delay;
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        let mut c = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        c.bytes.extend_from_slice(buf);
        c.writes += 1;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The stack most tests need: a registry, spanline's `ContextLayer` and a
/// flat `JsonLayer` writing to `capture`.
///
/// ```
/// let capture = spanline_testkit::Capture::new();
/// let subscriber = spanline_testkit::json_subscriber(&capture);
/// tracing_core::dispatcher::with_default(&subscriber.into(), || {});
/// assert!(capture.lines().is_empty());
/// ```
pub fn json_subscriber(capture: &Capture) -> impl tracing_core::Subscriber + Send + Sync + 'static {
    use tracing_subscriber::layer::SubscriberExt;
    tracing_subscriber::registry()
        .with(spanline_core::ContextLayer::new())
        .with(
            spanline_json::JsonLayer::builder()
                .with_writer(capture.clone())
                .build(),
        )
}

/// Runs `f` under [`json_subscriber`] and returns the lines it logged, each
/// parsed with [`parse_strict`].
///
/// # Panics
///
/// When a line is not exactly one JSON object with unique keys.
///
/// ```
/// let lines = spanline_testkit::capture_json(|| {
///     let _req = tracing::info_span!("request", request_id = "r-1").entered();
///     tracing::info!(status = 200, "done");
/// });
/// assert_eq!(lines[0]["message"], "done");
/// assert_eq!(lines[0]["request_id"], "r-1");
/// ```
#[track_caller]
pub fn capture_json(f: impl FnOnce()) -> Vec<Map<String, Value>> {
    let capture = Capture::new();
    tracing_core::dispatcher::with_default(&json_subscriber(&capture).into(), f);
    capture.json_lines()
}

/// [`capture_json`] with a `JsonLayer` on `schema` (a preset, a builder or
/// a schema).
///
/// # Panics
///
/// When a line is not exactly one JSON object with unique keys.
///
/// ```
/// use spanline_core::Preset;
/// let lines = spanline_testkit::capture_json_with(Preset::Structlog, || tracing::info!("done"));
/// assert_eq!(lines[0]["event"], "done");
/// ```
#[track_caller]
pub fn capture_json_with(
    schema: impl Into<spanline_core::Schema>,
    f: impl FnOnce(),
) -> Vec<Map<String, Value>> {
    use tracing_subscriber::layer::SubscriberExt;
    let capture = Capture::new();
    let subscriber = tracing_subscriber::registry()
        .with(spanline_core::ContextLayer::new())
        .with(
            spanline_json::JsonLayer::builder()
                .schema(schema)
                .with_writer(capture.clone())
                .build(),
        );
    tracing_core::dispatcher::with_default(&subscriber.into(), f);
    capture.json_lines()
}

/// Parses `line` as exactly one JSON object, rejecting duplicate keys at any
/// depth (serde_json alone keeps the last value silently).
///
/// ```
/// assert!(spanline_testkit::parse_strict(r#"{"a":1,"b":{"c":2}}"#).is_ok());
/// assert!(spanline_testkit::parse_strict(r#"{"a":1,"a":2}"#).is_err());
/// assert!(spanline_testkit::parse_strict(r#"{"a":1} {"b":2}"#).is_err());
/// assert!(spanline_testkit::parse_strict("[1]").is_err());
/// ```
pub fn parse_strict(line: &str) -> Result<Map<String, Value>, String> {
    let mut de = serde_json::Deserializer::from_str(line);
    let Strict(value) = Strict::deserialize(&mut de).map_err(|e| e.to_string())?;
    de.end().map_err(|e| format!("trailing data: {e}"))?;
    match value {
        Value::Object(map) => Ok(map),
        other => Err(format!("not an object: {other}")),
    }
}

struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format!("duplicate key `{key}`")));
            }
            let Strict(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

/// An error with a cause, for tests of how errors are written:
/// `QueryFailed` ("query failed") caused by [`TimedOut`] ("timed out after
/// 5s"). `Debug` is derived, so the type names read `QueryFailed` and
/// `TimedOut`, as the Python producers' classes of the same names do.
///
/// ```
/// let err = spanline_testkit::QueryFailed(spanline_testkit::TimedOut);
/// let cause = std::error::Error::source(&err).unwrap();
/// assert_eq!((err.to_string(), cause.to_string()), ("query failed".into(), "timed out after 5s".into()));
/// ```
#[derive(Debug)]
pub struct QueryFailed(pub TimedOut);

/// The cause of [`QueryFailed`].
#[derive(Debug)]
pub struct TimedOut;

impl std::fmt::Display for QueryFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("query failed")
    }
}

impl std::fmt::Display for TimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("timed out after 5s")
    }
}

impl std::error::Error for QueryFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl std::error::Error for TimedOut {}
