//! `spanline::init()`: the whole stack, composed in the right order, from
//! the environment.

use std::fmt;
use std::io::IsTerminal;

use spanline_core::{ContextLayer, Preset, Schema};
use spanline_json::{JsonLayer, PrettyLayer};
use tracing_subscriber::prelude::*;

/// How lines are written to stdout.
///
/// ```
/// let format: spanline::Format = "pretty".parse().unwrap();
/// assert_eq!(format, spanline::Format::Pretty);
/// assert!("yaml".parse::<spanline::Format>().is_err());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// JSON lines ([`JsonLayer`]).
    Json,
    /// The readable console renderer ([`PrettyLayer`]).
    Pretty,
    /// Pretty when stdout is a terminal, JSON otherwise (the default).
    #[default]
    Auto,
}

impl std::str::FromStr for Format {
    type Err = InitError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "json" => Ok(Format::Json),
            "pretty" => Ok(Format::Pretty),
            "auto" | "" => Ok(Format::Auto),
            other => Err(InitError::UnknownFormat(other.to_string())),
        }
    }
}

/// Where lines are written.
///
/// ```
/// let output: spanline::Output = "stderr".parse().unwrap();
/// assert_eq!(output, spanline::Output::Stderr);
/// assert!("syslog".parse::<spanline::Output>().is_err());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output {
    /// Standard output (the default).
    #[default]
    Stdout,
    /// Standard error: stdout stays the program's own.
    Stderr,
}

impl std::str::FromStr for Output {
    type Err = InitError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "stdout" | "" => Ok(Output::Stdout),
            "stderr" => Ok(Output::Stderr),
            other => Err(InitError::Invalid {
                name: "SPANLINE_OUTPUT",
                value: other.to_string(),
                expected: "stdout, stderr",
            }),
        }
    }
}

impl Output {
    fn is_terminal(self) -> bool {
        match self {
            Output::Stdout => std::io::stdout().is_terminal(),
            Output::Stderr => std::io::stderr().is_terminal(),
        }
    }
}

/// The `MakeWriter` of an [`Output`].
#[derive(Clone, Copy, Debug)]
struct StdStream(Output);

/// stdout or stderr, as one writer type.
enum StdWriter {
    Out(std::io::Stdout),
    Err(std::io::Stderr),
}

impl std::io::Write for StdWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            StdWriter::Out(w) => w.write(buf),
            StdWriter::Err(w) => w.write(buf),
        }
    }
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            StdWriter::Out(w) => w.write_all(buf),
            StdWriter::Err(w) => w.write_all(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            StdWriter::Out(w) => w.flush(),
            StdWriter::Err(w) => w.flush(),
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for StdStream {
    type Writer = StdWriter;
    fn make_writer(&'a self) -> StdWriter {
        match self.0 {
            Output::Stdout => StdWriter::Out(std::io::stdout()),
            Output::Stderr => StdWriter::Err(std::io::stderr()),
        }
    }
}

/// Why [`try_init`] or [`Builder::try_init`] failed.
///
/// ```
/// let err = spanline::builder().format_name("yaml").try_init().unwrap_err();
/// assert!(matches!(err, spanline::InitError::UnknownFormat(_)));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum InitError {
    /// `SPANLINE_FORMAT` (or [`Builder::format_name`]) is not `json`, `pretty` or `auto`.
    UnknownFormat(String),
    /// `SPANLINE_PRESET` is not one of `flat`, `structlog`, `bunyan`, `gcp`, `ecs`, `nested`.
    UnknownPreset(spanline_core::ParsePresetError),
    /// `RUST_LOG` (or the filter given) has directives that do not parse.
    Filter(crate::filter::FilterError),
    /// The Redis layer could not be built (a bad URL: the URL itself is not shown).
    #[cfg(feature = "redis")]
    Redis(spanline_redis::BuildError),
    /// `SPANLINE_REDIS_URL` is set but spanline was built without the `redis` feature.
    RedisNotBuilt,

    /// A global subscriber was set already.
    AlreadySet(String),
    /// An option's value is not one it takes (`SPANLINE_OUTPUT`,
    /// `SPANLINE_REDIS_MODE`, `SPANLINE_REDIS_CAPACITY`,
    /// `SPANLINE_REDIS_OVERFLOW`, `SPANLINE_ERRORS`, a yes/no option).
    Invalid {
        /// The option, as its environment variable.
        name: &'static str,
        /// The value given.
        value: String,
        /// The values it takes.
        expected: &'static str,
    },
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitError::UnknownFormat(v) => {
                write!(f, "SPANLINE_FORMAT={v:?} is not one of json, pretty, auto")
            }
            InitError::UnknownPreset(e) => write!(f, "SPANLINE_PRESET={:?}: {e}", e.name()),
            InitError::Filter(e) => write!(f, "invalid log filter (RUST_LOG): {e}"),
            #[cfg(feature = "redis")]
            InitError::Redis(e) => write!(f, "the Redis layer: {e}"),
            InitError::RedisNotBuilt => f.write_str(
                "SPANLINE_REDIS_URL is set, but spanline was built without its `redis` feature",
            ),

            InitError::AlreadySet(e) => {
                write!(f, "a global tracing subscriber is set already: {e}")
            }
            InitError::Invalid {
                name,
                value,
                expected,
            } => write!(f, "{name}={value:?} is not one of {expected}"),
        }
    }
}

impl std::error::Error for InitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            #[cfg(feature = "redis")]
            InitError::Redis(e) => Some(e),
            InitError::Filter(e) => Some(e),
            InitError::UnknownPreset(e) => Some(e),
            _ => None,
        }
    }
}

/// Flushes Redis (up to its shutdown timeout) when dropped: keep it in
/// `main` so that the last lines are published before the process exits.
/// Dropping it early does not stop publishing (`let _ = spanline::init()`
/// still publishes every line); [`flush`](crate::flush) flushes at any time.
///
/// ```
/// let guard = spanline::builder().format(spanline::Format::Json).try_init().expect("first init");
/// tracing::info!("work");
/// assert!(guard.flush(std::time::Duration::from_secs(1)));
/// ```
#[must_use = "dropping the guard flushes Redis now; keep it in main to flush the last lines at exit"]
#[derive(Debug, Default)]
pub struct Guard {
    #[cfg(feature = "redis")]
    redis: Option<&'static spanline_redis::RedisGuard>,
    #[cfg(feature = "redis")]
    redis_stats: Option<spanline_redis::RedisStats>,
}

/// The Redis guard of the stack [`init`] installed: it lives as long as the
/// process, so that publishing goes on whatever becomes of the [`Guard`].
#[cfg(feature = "redis")]
static REDIS: std::sync::OnceLock<spanline_redis::RedisGuard> = std::sync::OnceLock::new();

impl Drop for Guard {
    fn drop(&mut self) {
        #[cfg(feature = "redis")]
        if let Some(redis) = self.redis {
            redis.flush(spanline_redis::RedisLayer::DEFAULT_SHUTDOWN_TIMEOUT);
        }
    }
}

/// Publishes what is queued for Redis, waiting up to `timeout`; `true` when
/// every line logged before was settled (or [`init`] set up no Redis). For
/// a program that did not keep its [`Guard`], or a panic hook.
///
/// ```
/// assert!(spanline::flush(std::time::Duration::from_millis(10)));
/// ```
pub fn flush(timeout: std::time::Duration) -> bool {
    #[cfg(feature = "redis")]
    if let Some(redis) = REDIS.get() {
        return redis.flush(timeout).complete;
    }
    let _ = timeout;
    true
}

impl Guard {
    /// The Redis layer's counters, when Redis publishing is on.
    ///
    /// ```
    /// let guard = spanline::builder().format(spanline::Format::Json).init();
    /// assert!(guard.redis_stats().is_none(), "no SPANLINE_REDIS_URL here");
    /// ```
    #[cfg(feature = "redis")]
    pub fn redis_stats(&self) -> Option<&spanline_redis::RedisStats> {
        self.redis_stats.as_ref()
    }

    /// Flushes Redis now, waiting up to `timeout` (see
    /// [`RedisGuard::flush`](spanline_redis::RedisGuard::flush)); `true`
    /// when everything logged before was settled, or there is no Redis.
    ///
    /// ```
    /// let guard = spanline::builder().format(spanline::Format::Json).init();
    /// assert!(guard.flush(std::time::Duration::from_secs(1)));
    /// ```
    pub fn flush(&self, timeout: std::time::Duration) -> bool {
        #[cfg(feature = "redis")]
        if let Some(redis) = self.redis {
            return redis.flush(timeout).complete;
        }
        let _ = timeout;
        true
    }
}

/// Every option of [`init`]; each defaults to what the environment says.
///
/// ```no_run
/// let _guard = spanline::builder()
///     .filter("info,my_crate=debug")      // else RUST_LOG, else info
///     .format(spanline::Format::Json)     // or .format_name("json"); else SPANLINE_FORMAT
///     .preset("structlog")                // else SPANLINE_PRESET, else flat
///     .service("billing")                 // else SPANLINE_SERVICE
///     .output(spanline::Output::Stderr)   // else SPANLINE_OUTPUT, else stdout
///     .context_key("batch_id")            // spans with it keep their fields at any level
///     .redis_url("redis://127.0.0.1:6379") // else SPANLINE_REDIS_URL, if set
///     .redis_mode(spanline::redis::Mode::Both)          // else SPANLINE_REDIS_MODE, else pub/sub
///     .redis_capacity(100_000)                          // else SPANLINE_REDIS_CAPACITY
///     .redis_overflow(spanline::redis::Overflow::DropOldest) // else SPANLINE_REDIS_OVERFLOW
///     .forward(true)                      // to a parent Forwarder, when started by one
///     .try_init()
///     .expect("logging set up");
/// ```
///
/// Every option is also read from the environment (see [`init`]), and from
/// an application's configuration file through [`Builder::config`]: the
/// builder's own value wins, then the environment, then the file.
///
/// ```
/// let builder = spanline::builder().format_name("json").service("billing");
/// assert!(format!("{builder:?}").contains("billing"));
/// ```
#[derive(Default)]
pub struct Builder {
    filter: Option<String>,
    format: Option<String>,
    preset: Option<String>,
    service: Option<String>,
    output: Option<String>,
    redis_url: Option<String>,
    redis_cluster: Option<bool>,
    redis_global_shards: Option<usize>,
    redis_mode: Option<String>,
    redis_capacity: Option<usize>,
    redis_overflow: Option<String>,
    forward: Option<bool>,
    context_keys: Vec<String>,
    redact: Vec<String>,
    time: Option<String>,
    threads: Option<String>,
    span_close: Option<bool>,
    dotted_targets: Option<bool>,
    errors: Option<String>,
    source_location: Option<bool>,
    config: Option<crate::Config>,
    layers: Vec<ExtraLayer>,
}

/// A layer of the application's own, put under spanline's.
type ExtraLayer = Box<dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync>;

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("filter", &self.filter)
            .field("format", &self.format)
            .field("preset", &self.preset)
            .field("service", &self.service)
            .field("output", &self.output)
            .field("redis_url", &self.redis_url.as_ref().map(|_| "…"))
            .field("redis_cluster", &self.redis_cluster)
            .field("redis_global_shards", &self.redis_global_shards)
            .field("redis_mode", &self.redis_mode)
            .field("redis_capacity", &self.redis_capacity)
            .field("redis_overflow", &self.redis_overflow)
            .field("forward", &self.forward)
            .field("context_keys", &self.context_keys)
            .field("redact", &self.redact)
            .field("time", &self.time)
            .field("threads", &self.threads)
            .field("span_close", &self.span_close)
            .field("dotted_targets", &self.dotted_targets)
            .field("errors", &self.errors)
            .field("source_location", &self.source_location)
            .field("config", &self.config)
            .field("layers", &self.layers.len())
            .finish()
    }
}

impl Builder {
    /// Adds a layer of your own to the stack `init()` installs: for
    /// example tracing-opentelemetry's, which gives every line its
    /// OpenTelemetry `trace_id` and `span_id` (feature `opentelemetry`,
    /// see docs/opentelemetry.md), or tokio-console's. Layers added here
    /// sit on the registry under spanline's own, in the order added, and
    /// see what `RUST_LOG` keeps.
    ///
    /// ```
    /// use tracing_subscriber::Layer;
    /// let builder = spanline::builder().with_layer(tracing_subscriber::fmt::layer().with_writer(std::io::sink).boxed());
    /// assert!(format!("{builder:?}").contains("layers: 1"));
    /// ```
    #[must_use]
    pub fn with_layer(
        mut self,
        layer: impl tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync + 'static,
    ) -> Self {
        self.layers.push(Box::new(layer));
        self
    }

    /// Filter directives in `RUST_LOG` syntax (default: `RUST_LOG`, else `info`).
    ///
    /// See [`Builder`]'s example.
    #[must_use]
    pub fn filter(mut self, directives: impl Into<String>) -> Self {
        self.filter = Some(directives.into());
        self
    }

    /// The output format (default: `SPANLINE_FORMAT`, else [`Format::Auto`]).
    ///
    /// See [`Builder`]'s example.
    #[must_use]
    pub fn format(mut self, format: Format) -> Self {
        self.format = Some(
            match format {
                Format::Json => "json",
                Format::Pretty => "pretty",
                Format::Auto => "auto",
            }
            .to_string(),
        );
        self
    }

    /// The output format by name, as `SPANLINE_FORMAT` takes it.
    ///
    /// See [`Builder`]'s example.
    #[must_use]
    pub fn format_name(mut self, name: impl Into<String>) -> Self {
        self.format = Some(name.into());
        self
    }

    /// The JSON preset by name (default: `SPANLINE_PRESET`, else `flat`).
    ///
    /// See [`Builder`]'s example.
    #[must_use]
    pub fn preset(mut self, name: impl Into<String>) -> Self {
        self.preset = Some(name.into());
        self
    }

    /// A `service` field on every line, in the pretty format too (default:
    /// `SPANLINE_SERVICE`, if set).
    ///
    /// See [`Builder`]'s example.
    #[must_use]
    pub fn service(mut self, name: impl Into<String>) -> Self {
        self.service = Some(name.into());
        self
    }

    /// Where lines are written (default: `SPANLINE_OUTPUT`, else stdout).
    ///
    /// See [`Builder`]'s example.
    #[must_use]
    pub fn output(mut self, output: Output) -> Self {
        self.output = Some(
            match output {
                Output::Stdout => "stdout",
                Output::Stderr => "stderr",
            }
            .to_string(),
        );
        self
    }

    /// Pub/sub, streams or both (default: `SPANLINE_REDIS_MODE`, else
    /// pub/sub; see [`Mode`](spanline_redis::Mode)).
    ///
    /// See [`Builder`]'s example.
    #[cfg(feature = "redis")]
    #[must_use]
    pub fn redis_mode(mut self, mode: spanline_redis::Mode) -> Self {
        self.redis_mode = Some(
            match mode {
                spanline_redis::Mode::Streams => "streams",
                spanline_redis::Mode::Both => "both",
                _ => "pubsub",
            }
            .to_string(),
        );
        self
    }

    /// Lines queued for Redis at most (default: `SPANLINE_REDIS_CAPACITY`,
    /// else 8,192); the queue's bytes budget is 1 KiB a line, at least
    /// 8 MiB.
    ///
    /// See [`Builder`]'s example.
    #[must_use]
    pub fn redis_capacity(mut self, lines: usize) -> Self {
        self.redis_capacity = Some(lines);
        self
    }

    /// What happens to a line when the Redis queue is full (default:
    /// `SPANLINE_REDIS_OVERFLOW`, else drop the newest; see
    /// [`Overflow`](spanline_redis::Overflow)).
    ///
    /// See [`Builder`]'s example.
    #[cfg(feature = "redis")]
    #[must_use]
    pub fn redis_overflow(mut self, overflow: spanline_redis::Overflow) -> Self {
        self.redis_overflow = Some(match overflow {
            spanline_redis::Overflow::DropOldest => "drop-oldest".to_string(),
            spanline_redis::Overflow::Block { max_wait } => {
                format!("block:{}", max_wait.as_millis())
            }
            spanline_redis::Overflow::BlockForever => "block-forever".to_string(),
            _ => "drop-newest".to_string(),
        });
        self
    }

    /// Hides the values of these keys on every line of every sink (JSON,
    /// pretty, Redis, the pipe to a parent): event fields, span fields and
    /// context alike are written as `[redacted]` (see
    /// [`Redact`](spanline_core::Redact)). Added to `SPANLINE_REDACT`
    /// (comma-separated) and the configuration file's `redact`.
    ///
    /// ```
    /// let builder = spanline::builder().redact(["password", "authorization"]);
    /// assert!(format!("{builder:?}").contains("authorization"));
    /// ```
    #[must_use]
    pub fn redact<I, T>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.redact.extend(keys.into_iter().map(Into::into));
        self
    }

    /// Times of the pretty format in the local zone (`TZ`, else the
    /// system's) instead of UTC (default: `SPANLINE_TIME=local|utc`, else
    /// UTC). Needs the feature `local-time`; JSON lines stay UTC (RFC 3339).
    ///
    /// ```
    /// let builder = spanline::builder().local_time(true);
    /// assert!(format!("{builder:?}").contains("local"));
    /// ```
    #[must_use]
    pub fn local_time(mut self, on: bool) -> Self {
        self.time = Some(if on { "local" } else { "utc" }.to_string());
        self
    }

    /// The thread's name and id on every line of the pretty format
    /// (default: `SPANLINE_THREADS=names|ids|both|none`, else none).
    ///
    /// ```
    /// let builder = spanline::builder().threads(true, false);
    /// assert!(format!("{builder:?}").contains("names"));
    /// ```
    #[must_use]
    pub fn threads(mut self, names: bool, ids: bool) -> Self {
        self.threads = Some(
            match (names, ids) {
                (true, true) => "both",
                (true, false) => "names",
                (false, true) => "ids",
                (false, false) => "none",
            }
            .to_string(),
        );
        self
    }

    /// One more line when a span closes, with how long it lived
    /// (`duration_ms`, `busy_ms`, `idle_ms`), in JSON, the pretty format
    /// and every other sink: what tracing-subscriber's `FmtSpan::CLOSE`
    /// gives (default: `SPANLINE_SPAN_CLOSE=true|false`, else off). The
    /// line has the span's level and target and follows `RUST_LOG` like
    /// the span's other lines.
    ///
    /// ```
    /// let builder = spanline::builder().span_close(true);
    /// assert!(format!("{builder:?}").contains("span_close: Some(true)"));
    /// ```
    #[must_use]
    pub fn span_close(mut self, on: bool) -> Self {
        self.span_close = Some(on);
        self
    }

    /// Targets written with `.` instead of `::` (`myapp.api`), the logger
    /// names Python pipelines expect (default:
    /// `SPANLINE_DOTTED_TARGETS=true|false`, else off).
    ///
    /// ```
    /// let builder = spanline::builder().dotted_targets(true);
    /// assert!(format!("{builder:?}").contains("dotted_targets: Some(true)"));
    /// ```
    #[must_use]
    pub fn dotted_targets(mut self, on: bool) -> Self {
        self.dotted_targets = Some(on);
        self
    }

    /// How error fields are written on JSON lines, by name: `chain`
    /// (`error` and `error_sources`), `ecs` (`error.message`, `error.type`,
    /// `error.stack_trace`), `traceback` (structlog's `exception` text) or
    /// `dicts` (structlog's `dict_tracebacks`); see
    /// [`ErrorStyle`](spanline_core::ErrorStyle). Default:
    /// `SPANLINE_ERRORS`, else the preset's own.
    ///
    /// ```
    /// let builder = spanline::builder().preset("structlog").errors("dicts");
    /// assert!(format!("{builder:?}").contains("errors: Some(\"dicts\")"));
    /// ```
    #[must_use]
    pub fn errors(mut self, style: impl Into<String>) -> Self {
        self.errors = Some(style.into());
        self
    }

    /// The event's source file and line on every JSON line, under the
    /// preset's keys (structlog's `filename`/`lineno`, ECS's
    /// `log.origin.file.*`, Cloud Logging's `sourceLocation`). Default:
    /// `SPANLINE_SOURCE_LOCATION=true|false`, else off.
    ///
    /// ```
    /// let builder = spanline::builder().with_source_location(true);
    /// assert!(format!("{builder:?}").contains("source_location: Some(true)"));
    /// ```
    #[must_use]
    pub fn with_source_location(mut self, on: bool) -> Self {
        self.source_location = Some(on);
        self
    }

    /// Options from an application's configuration file (see [`Config`](crate::Config)):
    /// used where neither the builder nor the environment sets them.
    ///
    /// ```
    /// let config: spanline::Config = serde_json::from_str(r#"{"service": "billing"}"#).unwrap();
    /// let builder = spanline::builder().config(config);
    /// assert!(format!("{builder:?}").contains("billing"));
    /// ```
    #[must_use]
    pub fn config(mut self, config: crate::Config) -> Self {
        self.config = Some(config);
        self
    }

    /// Makes `key` a context key: a span with a field of that name keeps its
    /// fields on the lines inside it whatever `RUST_LOG` says, and an
    /// inherited `BAGGAGE` may carry it (see
    /// [`ContextLayer`](spanline_core::ContextLayer)).
    ///
    /// See [`Builder`]'s example.
    #[must_use]
    pub fn context_key(mut self, key: impl Into<String>) -> Self {
        self.context_keys.push(key.into());
        self
    }

    /// Publish every line to this Redis (default: `SPANLINE_REDIS_URL`, if set).
    ///
    /// Not in a process that forwards to a parent (see
    /// [`forward`](Self::forward)): there the parent re-emits every line
    /// and publishes it with its own Redis layer, typed as this process
    /// wrote it, so the line is published once; this process builds no
    /// Redis layer (and does not check the URL).
    ///
    /// See [`Builder`]'s example.
    #[must_use]
    pub fn redis_url(mut self, url: impl Into<String>) -> Self {
        self.redis_url = Some(url.into());
        self
    }

    /// Publish every line to the Redis Cluster of these nodes (some or
    /// all of them, `redis://host:port` each; default:
    /// `SPANLINE_REDIS_CLUSTER=true` with comma-separated URLs in
    /// `SPANLINE_REDIS_URL`). Sharded pub/sub, and the global feed spread
    /// over [`redis_global_shards`](Self::redis_global_shards) shards.
    /// Needs the feature `redis-cluster`; see docs/scale.md.
    ///
    /// ```
    /// let builder = spanline::builder().redis_cluster(["redis://10.0.0.1:6379", "redis://10.0.0.2:6379"]);
    /// assert!(format!("{builder:?}").contains("redis_cluster: Some(true)"));
    /// ```
    #[must_use]
    pub fn redis_cluster<I, T>(mut self, nodes: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        let nodes: Vec<String> = nodes.into_iter().map(Into::into).collect();
        self.redis_url = Some(nodes.join(","));
        self.redis_cluster = Some(true);
        self
    }

    /// How many shards the global feed is spread over (default:
    /// `SPANLINE_REDIS_GLOBAL_SHARDS`, else 16 on a cluster and 1 on one
    /// server); see docs/scale.md.
    ///
    /// ```
    /// let builder = spanline::builder().redis_global_shards(6);
    /// assert!(format!("{builder:?}").contains("redis_global_shards: Some(6)"));
    /// ```
    #[must_use]
    pub fn redis_global_shards(mut self, n: usize) -> Self {
        self.redis_global_shards = Some(n);
        self
    }

    /// Whether to forward to a parent `Forwarder` when started by one
    /// (default: yes, when `SPANLINE_FORWARD` is set and names the pipe the
    /// parent gave this process).
    ///
    /// While forwarding, this process writes nothing itself: the parent
    /// re-emits every line, under its own filter, output and Redis
    /// publishing, so no stdout line and no Redis line is written twice.
    /// [`redis_url`](Self::redis_url) and `SPANLINE_REDIS_URL` are then
    /// ignored (the parent publishes this process's lines).
    ///
    /// ```no_run
    /// // A worker that logs for itself even when a parent forwards it.
    /// let _guard = spanline::builder().forward(false).init();
    /// ```
    #[must_use]
    pub fn forward(mut self, on: bool) -> Self {
        self.forward = Some(on);
        self
    }

    /// Composes the layers and installs them as the global subscriber; also
    /// bridges the `log` crate. Any misconfiguration is an error, and
    /// nothing is installed.
    ///
    /// ```
    /// let _guard = spanline::builder().format(spanline::Format::Json).try_init()?;
    /// # Ok::<(), spanline::InitError>(())
    /// ```
    pub fn try_init(self) -> Result<Guard, InitError> {
        self.install(&mut |e| Err(e))
    }

    /// Like [`try_init`](Self::try_init), but never fails: a directive of
    /// `RUST_LOG` that does not parse is skipped, an unknown format or
    /// preset falls back to the default, a bad Redis URL leaves Redis
    /// publishing off, and a subscriber set already is kept; each is said
    /// once on stderr. Logging must never stop a service from starting.
    ///
    /// ```
    /// let _guard = spanline::builder().filter("info,foo===bar").format_name("yaml").init();
    /// tracing::info!("still logging, as JSON lines at INFO");
    /// ```
    #[allow(clippy::disallowed_macros)] // a setup mistake, said once where the operator looks
    pub fn init(self) -> Guard {
        let mut report = |e: InitError| {
            eprintln!("spanline::init: {e}; {}", e.fallback());
            Ok(())
        };
        self.install(&mut report).unwrap_or_default()
    }

    /// Builds and installs the stack; `problem` decides whether a
    /// misconfiguration stops it (`Err`) or is reported and replaced by the
    /// default (`Ok`).
    fn install(
        self,
        problem: &mut dyn FnMut(InitError) -> Result<(), InitError>,
    ) -> Result<Guard, InitError> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        // Each option: the builder's, else the environment's, else the
        // configuration file's.
        let config = self.config.unwrap_or_default();
        let pick = |own: Option<String>, name: &str, file: Option<String>| {
            own.or_else(|| env(name)).or(file)
        };
        let directives = pick(self.filter, "RUST_LOG", config.filter).unwrap_or_default();
        let (filter, bad) = crate::filter::parse_lenient(&directives);
        if !bad.is_empty() {
            problem(InitError::Filter(crate::filter::FilterError::new(bad)))?;
        }
        let format: Format = match pick(self.format, "SPANLINE_FORMAT", config.format)
            .unwrap_or_default()
            .parse()
        {
            Ok(format) => format,
            Err(e) => problem(e).map(|()| Format::Auto)?,
        };
        let preset = match pick(self.preset, "SPANLINE_PRESET", config.preset) {
            Some(name) => match name.parse::<Preset>() {
                Ok(preset) => preset,
                Err(e) => problem(InitError::UnknownPreset(e)).map(|()| Preset::Flat)?,
            },
            None => Preset::Flat,
        };
        let output: Output = match pick(self.output, "SPANLINE_OUTPUT", config.output)
            .unwrap_or_default()
            .parse()
        {
            Ok(output) => output,
            Err(e) => problem(e).map(|()| Output::Stdout)?,
        };
        let service = pick(self.service, "SPANLINE_SERVICE", config.service);
        let pretty = match format {
            Format::Pretty => true,
            Format::Json => false,
            Format::Auto => output.is_terminal(),
        };
        let span_close = pick_flag(
            self.span_close,
            "SPANLINE_SPAN_CLOSE",
            config.span_close,
            problem,
        )?;
        let mut context = ContextLayer::new().span_close_lines(span_close);
        for key in self.context_keys.iter().chain(&config.context_keys) {
            context = context.context_key(key.clone());
        }
        // Fields on every line: the service, and the context handed down by
        // a parent process (TRACEPARENT, BAGGAGE), below anything logged here.
        let mut fields: Vec<(String, String)> = Vec::new();
        if let Some(service) = &service {
            fields.push(("service".into(), service.clone()));
        }
        let inherited =
            spanline_context::ContextSnapshot::from_env_with_keys(context.context_keys());
        if let Some(tp) = inherited.traceparent() {
            fields.push(("trace_id".into(), tp.trace_id().to_string()));
        }
        for (key, value) in inherited.iter() {
            fields.push((key.to_string(), value.to_string()));
        }
        // Hidden values: the builder's keys, the environment's and the file's.
        let mut redact = self.redact;
        redact.extend(
            env("SPANLINE_REDACT")
                .iter()
                .flat_map(|v| v.split(',').map(str::to_string)),
        );
        redact.extend(config.redact.iter().cloned());
        let dotted_targets = pick_flag(
            self.dotted_targets,
            "SPANLINE_DOTTED_TARGETS",
            config.dotted_targets,
            problem,
        )?;
        let source_location = pick_flag(
            self.source_location,
            "SPANLINE_SOURCE_LOCATION",
            config.source_location,
            problem,
        )?;
        let mut schema = Schema::builder(preset)
            .redact(&redact)
            .dotted_targets(dotted_targets)
            .with_source_location(source_location);
        if let Some(name) = pick(self.errors, "SPANLINE_ERRORS", config.errors) {
            match name.parse::<spanline_core::ErrorStyle>() {
                Ok(style) => schema = schema.errors(style),
                Err(_) => problem(InitError::Invalid {
                    name: "SPANLINE_ERRORS",
                    value: name,
                    expected: "chain, ecs, traceback, dicts",
                })?,
            }
        }
        if let Some(service) = &service {
            schema = schema.service(service.clone());
        }
        for (key, value) in fields.iter().filter(|(k, _)| k != "service") {
            schema = schema.static_field(key.clone(), value.clone());
        }
        let schema = schema.build();
        let json = JsonLayer::builder()
            .schema(schema.clone())
            .with_writer(StdStream(output))
            .build();
        // Colours on a terminal, unless NO_COLOR (https://no-color.org) is set.
        let ansi = output.is_terminal() && env("NO_COLOR").is_none();
        let (thread_names, thread_ids) =
            match pick(self.threads, "SPANLINE_THREADS", config.threads)
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
                .as_str()
            {
                "" | "none" => (false, false),
                "names" => (true, false),
                "ids" => (false, true),
                "both" => (true, true),
                other => problem(InitError::Invalid {
                    name: "SPANLINE_THREADS",
                    value: other.to_string(),
                    expected: "names, ids, both, none",
                })
                .map(|()| (false, false))?,
            };
        let pretty_layer = fields.iter().fold(
            PrettyLayer::new()
                .with_writer(StdStream(output))
                .with_ansi(ansi)
                .redact(&redact)
                .with_thread_names(thread_names)
                .with_thread_ids(thread_ids),
            |layer, (k, v)| layer.with_field(k.clone(), v.clone()),
        );
        let local_time = match pick(self.time, "SPANLINE_TIME", config.time)
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "" | "utc" => false,
            "local" if cfg!(feature = "local-time") => true,
            other => problem(InitError::Invalid {
                name: "SPANLINE_TIME",
                value: other.to_string(),
                expected: if cfg!(feature = "local-time") {
                    "local, utc"
                } else {
                    "utc (local needs spanline's `local-time` feature)"
                },
            })
            .map(|()| false)?,
        };
        #[cfg(feature = "local-time")]
        let pretty_layer = pretty_layer.with_local_time(local_time);
        #[cfg(not(feature = "local-time"))]
        let _ = local_time;

        #[cfg(all(feature = "pipe", unix))]
        let forward = self
            .forward
            .or(config.forward)
            .unwrap_or(true)
            .then(spanline_pipe::ForwardLayer::from_env)
            .flatten()
            .map(|forward| forward.redact(&redact));
        // Started by a Forwarder: the parent re-emits every line, so this
        // process prints nothing itself (or each line would show twice), and
        // publishes nothing to Redis either: the parent publishes its lines.
        #[cfg(all(feature = "pipe", unix))]
        let local = forward.is_none();
        #[cfg(not(all(feature = "pipe", unix)))]
        let local = true;

        #[cfg_attr(not(feature = "redis"), allow(unused_mut))]
        let mut guard = Guard::default();
        let redis_url =
            pick(self.redis_url, "SPANLINE_REDIS_URL", config.redis_url).filter(|_| local);
        let redis_mode = pick(self.redis_mode, "SPANLINE_REDIS_MODE", config.redis_mode);
        let redis_capacity = match self.redis_capacity.or(config.redis_capacity) {
            Some(lines) => env("SPANLINE_REDIS_CAPACITY")
                .map_or(Ok(lines), |v| v.parse())
                .map(Some),
            None => env("SPANLINE_REDIS_CAPACITY")
                .map(|v| v.parse())
                .transpose(),
        };
        let redis_overflow = pick(
            self.redis_overflow,
            "SPANLINE_REDIS_OVERFLOW",
            config.redis_overflow,
        );
        let redis_cluster = pick_flag(
            self.redis_cluster,
            "SPANLINE_REDIS_CLUSTER",
            config.redis_cluster,
            problem,
        )?;
        let redis_shards = match self.redis_global_shards {
            Some(n) => Some(n),
            None => match env("SPANLINE_REDIS_GLOBAL_SHARDS") {
                Some(value) => match value.trim().parse::<usize>() {
                    Ok(n) => Some(n),
                    Err(_) => problem(InitError::Invalid {
                        name: "SPANLINE_REDIS_GLOBAL_SHARDS",
                        value,
                        expected: "a number of shards, 1 to 1024",
                    })
                    .map(|()| None)?,
                },
                None => config.redis_global_shards,
            },
        };
        #[cfg(feature = "redis")]
        let (redis, redis_guard) = match redis_url {
            Some(url) => match redis_layer_builder(&url, redis_cluster) {
                Err(e) => problem(e).map(|()| (None, None))?,
                Ok(builder) => {
                    let mut builder = builder.schema(schema);
                    if let Some(n) = redis_shards {
                        builder = builder.global_shards(n);
                    }
                    if let Some(mode) = redis_mode {
                        match parse_mode(&mode) {
                            Ok(mode) => builder = builder.mode(mode),
                            Err(e) => problem(e)?,
                        }
                    }
                    match redis_capacity {
                        Ok(Some(lines)) => {
                            let bytes = (lines.saturating_mul(1024))
                                .max(spanline_redis::RedisLayer::DEFAULT_MAX_QUEUED_BYTES);
                            builder = builder.capacity(lines.max(1), bytes);
                        }
                        Ok(None) => {}
                        Err(_) => problem(InitError::Invalid {
                            name: "SPANLINE_REDIS_CAPACITY",
                            value: env("SPANLINE_REDIS_CAPACITY").unwrap_or_default(),
                            expected: "a number of lines",
                        })?,
                    }
                    if let Some(overflow) = redis_overflow {
                        match parse_overflow(&overflow) {
                            Ok(overflow) => builder = builder.overflow(overflow),
                            Err(e) => problem(e)?,
                        }
                    }
                    match builder.build() {
                        Ok((layer, redis_guard)) => {
                            guard.redis_stats = Some(layer.stats());
                            (Some(layer), Some(redis_guard))
                        }
                        Err(e) => problem(InitError::Redis(e)).map(|()| (None, None))?,
                    }
                }
            },
            None => (None, None),
        };
        #[cfg(not(feature = "redis"))]
        {
            let _ = (
                schema,
                redis_mode,
                redis_capacity,
                redis_overflow,
                redis_shards,
            );
            if redis_url.is_some() || (redis_cluster && local) {
                problem(InitError::RedisNotBuilt)?;
            }
        }

        // The filter goes to the ContextLayer, not in front of the registry:
        // it decides which lines are written, while spans that carry context
        // are kept whatever it says (see ContextLayer's docs). The output
        // layers have no filter of their own.
        let registry = tracing_subscriber::registry()
            // An empty Vec of layers disables every callsite (its interest is
            // `never`); `None` is neutral.
            .with((!self.layers.is_empty()).then_some(self.layers))
            .with(context.filter(filter))
            .with((local && pretty).then_some(pretty_layer))
            .with((local && !pretty).then_some(json));
        #[cfg(feature = "redis")]
        let registry = registry.with(redis);
        #[cfg(all(feature = "pipe", unix))]
        let registry = registry.with(forward);
        if let Err(e) = registry.try_init() {
            problem(InitError::AlreadySet(e.to_string()))?;
            return Ok(Guard::default());
        }
        // Publishing lives as long as the process: the guard only flushes.
        #[cfg(feature = "redis")]
        if let Some(redis_guard) = redis_guard {
            if REDIS.set(redis_guard).is_ok() {
                guard.redis = REDIS.get();
            }
        }
        // Records of the `log` crate become events; another logger may be
        // set already, which is the application's choice.
        let _ = tracing_log::LogTracer::init();
        Ok(guard)
    }
}

/// The Redis layer's builder for `urls`: one server, or (`cluster`) the
/// cluster of these comma-separated nodes.
#[cfg(feature = "redis")]
fn redis_layer_builder(
    urls: &str,
    cluster: bool,
) -> Result<spanline_redis::RedisLayerBuilder, InitError> {
    let nodes: Vec<&str> = urls
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .collect();
    if !cluster {
        if nodes.len() > 1 {
            return Err(InitError::Invalid {
                name: "SPANLINE_REDIS_URL",
                value: format!("{} URLs", nodes.len()),
                expected:
                    "one URL (several are a cluster's nodes: set SPANLINE_REDIS_CLUSTER=true)",
            });
        }
        return Ok(spanline_redis::RedisLayer::builder(urls.trim()));
    }
    // Without spanline-redis's `cluster` feature, building it says so.
    Ok(spanline_redis::RedisLayer::builder_cluster(&nodes))
}

/// A yes/no option: the builder's value, else the environment's, else the
/// file's, else off. An environment value that is not a yes or no goes to
/// `problem` as an error naming the variable (off when it lets init go on).
fn pick_flag(
    own: Option<bool>,
    name: &'static str,
    file: Option<bool>,
    problem: &mut dyn FnMut(InitError) -> Result<(), InitError>,
) -> Result<bool, InitError> {
    if let Some(on) = own {
        return Ok(on);
    }
    match std::env::var(name).ok().filter(|v| !v.is_empty()) {
        Some(value) => match parse_bool(&value) {
            Some(on) => Ok(on),
            None => problem(InitError::Invalid {
                name,
                value,
                expected: "true, false",
            })
            .map(|()| false),
        },
        None => Ok(file.unwrap_or(false)),
    }
}

/// `true`/`false` as environment variables spell them.
fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" | "" => Some(false),
        _ => None,
    }
}

/// `pubsub`, `streams` or `both`.
#[cfg(feature = "redis")]
fn parse_mode(text: &str) -> Result<spanline_redis::Mode, InitError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "pubsub" | "pub/sub" => Ok(spanline_redis::Mode::PubSub),
        "streams" => Ok(spanline_redis::Mode::Streams),
        "both" => Ok(spanline_redis::Mode::Both),
        other => Err(InitError::Invalid {
            name: "SPANLINE_REDIS_MODE",
            value: other.to_string(),
            expected: "pubsub, streams, both",
        }),
    }
}

/// `drop-newest`, `drop-oldest`, `block:<ms>` or `block-forever`.
#[cfg(feature = "redis")]
fn parse_overflow(text: &str) -> Result<spanline_redis::Overflow, InitError> {
    use spanline_redis::Overflow;
    let text = text.trim().to_ascii_lowercase();
    match text.as_str() {
        "drop-newest" => return Ok(Overflow::DropNewest),
        "drop-oldest" => return Ok(Overflow::DropOldest),
        "block-forever" => return Ok(Overflow::BlockForever),
        _ => {}
    }
    match text.strip_prefix("block:").map(str::parse::<u64>) {
        Some(Ok(ms)) => Ok(Overflow::Block {
            max_wait: std::time::Duration::from_millis(ms),
        }),
        _ => Err(InitError::Invalid {
            name: "SPANLINE_REDIS_OVERFLOW",
            value: text,
            expected: "drop-newest, drop-oldest, block:<milliseconds>, block-forever",
        }),
    }
}

impl InitError {
    /// What [`Builder::init`] does instead.
    fn fallback(&self) -> &'static str {
        match self {
            InitError::Filter(_) => "skipped, using the other directives",
            InitError::UnknownFormat(_) => "using auto",
            InitError::UnknownPreset(_) => "using flat",
            #[cfg(feature = "redis")]
            InitError::Redis(_) => "lines are not published to Redis",
            InitError::RedisNotBuilt => "lines are not published to Redis",
            InitError::AlreadySet(_) => "keeping it; spanline is not installed",
            InitError::Invalid { .. } => "using the default",
        }
    }
}

/// A [`Builder`] with every option from the environment.
///
/// ```
/// let _guard = spanline::builder().service("api").init();
/// ```
pub fn builder() -> Builder {
    Builder::default()
}

/// Sets up logging from the environment: `RUST_LOG` (default `info`; spans
/// that carry context are kept whatever it says, see
/// [`ContextLayer`](spanline_core::ContextLayer)), `SPANLINE_FORMAT`
/// (`json`, `pretty`, `auto`), `SPANLINE_PRESET`, `SPANLINE_REDIS_URL`
/// (publish every line to Redis), `TRACEPARENT` and `BAGGAGE` (context from
/// a parent process, on every line), and `SPANLINE_FORWARD` (set by a parent's
/// `Forwarder`: forward every line to it, and neither print nor publish to
/// Redis locally, since the parent re-emits and publishes them). Returns a
/// [`Guard`] to keep in `main`.
///
/// ```no_run
/// let _guard = spanline::init(); // in main
/// tracing::info!("ready");
/// ```
///
/// Never panics: a misconfiguration is said on stderr and replaced by the
/// default (see [`Builder::init`]); [`try_init`] returns it as an error.
pub fn init() -> Guard {
    builder().init()
}

/// Like [`init`], returning misconfigurations as errors.
///
/// ```
/// match spanline::try_init() {
///     Ok(_guard) => tracing::info!("ready"),
///     Err(e) => eprintln!("logging not set up: {e}"),
/// }
/// ```
pub fn try_init() -> Result<Guard, InitError> {
    builder().try_init()
}
