//! `spanline::init()`: the whole stack, composed in the right order, from
//! the builder, the environment and a configuration file (see the options
//! table in `options.rs`).

use std::fmt;

use crate::error::InitError;
use crate::guard::Guard;
use crate::install::{ExtraLayer, Plan};
use crate::options::{self as opt, Settings, Values};
use crate::output::{Format, Output, Rotation};

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
    /// The values set by the builder's methods, by option key.
    values: Values,
    config: Option<crate::Config>,
    layers: Vec<ExtraLayer>,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Builder");
        for (key, values) in &self.values {
            if *key == opt::REDIS_URL.key {
                d.field(key, &"…");
            } else {
                d.field(key, values);
            }
        }
        d.field("config", &self.config)
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
    pub fn filter(self, directives: impl Into<String>) -> Self {
        self.set(&opt::FILTER, directives)
    }

    /// The output format (default: `SPANLINE_FORMAT`, else [`Format::Auto`]).
    ///
    /// See [`Builder`]'s example.
    #[must_use]
    pub fn format(self, format: Format) -> Self {
        let name = match format {
            Format::Json => "json",
            Format::Pretty => "pretty",
            Format::Auto => "auto",
        };
        self.set(&opt::FORMAT, name)
    }

    /// The output format by name, as `SPANLINE_FORMAT` takes it.
    ///
    /// See [`Builder`]'s example.
    #[must_use]
    pub fn format_name(self, name: impl Into<String>) -> Self {
        self.set(&opt::FORMAT, name)
    }

    /// The JSON preset by name (default: `SPANLINE_PRESET`, else `flat`).
    ///
    /// See [`Builder`]'s example.
    #[must_use]
    pub fn preset(self, name: impl Into<String>) -> Self {
        self.set(&opt::PRESET, name)
    }

    /// A `service` field on every line, in the pretty format too (default:
    /// `SPANLINE_SERVICE`, if set).
    ///
    /// See [`Builder`]'s example.
    #[must_use]
    pub fn service(self, name: impl Into<String>) -> Self {
        self.set(&opt::SERVICE, name)
    }

    /// Where lines are written (default: `SPANLINE_OUTPUT`, else stdout).
    ///
    /// See [`Builder`]'s example.
    #[must_use]
    pub fn output(self, output: Output) -> Self {
        self.set(&opt::OUTPUT, output.name())
    }

    /// Pub/sub, streams or both (default: `SPANLINE_REDIS_MODE`, else
    /// pub/sub; see [`Mode`](spanline_redis::Mode)).
    ///
    /// See [`Builder`]'s example.
    #[cfg(feature = "redis")]
    #[must_use]
    pub fn redis_mode(self, mode: spanline_redis::Mode) -> Self {
        let name = match mode {
            spanline_redis::Mode::Streams => "streams",
            spanline_redis::Mode::Both => "both",
            _ => "pubsub",
        };
        self.set(&opt::REDIS_MODE, name)
    }

    /// Lines queued for Redis at most (default: `SPANLINE_REDIS_CAPACITY`,
    /// else 8,192); the queue's bytes budget is 1 KiB a line, at least
    /// 8 MiB.
    ///
    /// See [`Builder`]'s example.
    #[must_use]
    pub fn redis_capacity(self, lines: usize) -> Self {
        self.set(&opt::REDIS_CAPACITY, lines.to_string())
    }

    /// What happens to a line when the Redis queue is full (default:
    /// `SPANLINE_REDIS_OVERFLOW`, else drop the newest; see
    /// [`Overflow`](spanline_redis::Overflow)).
    ///
    /// See [`Builder`]'s example.
    #[cfg(feature = "redis")]
    #[must_use]
    pub fn redis_overflow(self, overflow: spanline_redis::Overflow) -> Self {
        let name = match overflow {
            spanline_redis::Overflow::DropOldest => "drop-oldest".to_string(),
            spanline_redis::Overflow::Block { max_wait } => {
                format!("block:{}", max_wait.as_millis())
            }
            spanline_redis::Overflow::BlockForever => "block-forever".to_string(),
            _ => "drop-newest".to_string(),
        };
        self.set(&opt::REDIS_OVERFLOW, name)
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
    pub fn redact<I, T>(self, keys: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.extend(&opt::REDACT, keys.into_iter().map(Into::into))
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
    pub fn local_time(self, on: bool) -> Self {
        self.set(&opt::TIME, if on { "local" } else { "utc" })
    }

    /// The thread's name and id on every line of the pretty format
    /// (default: `SPANLINE_THREADS=names|ids|both|none`, else none).
    ///
    /// ```
    /// let builder = spanline::builder().threads(true, false);
    /// assert!(format!("{builder:?}").contains("names"));
    /// ```
    #[must_use]
    pub fn threads(self, names: bool, ids: bool) -> Self {
        let name = match (names, ids) {
            (true, true) => "both",
            (true, false) => "names",
            (false, true) => "ids",
            (false, false) => "none",
        };
        self.set(&opt::THREADS, name)
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
    /// assert!(format!("{builder:?}").contains("span_close: [\"true\"]"));
    /// ```
    #[must_use]
    pub fn span_close(self, on: bool) -> Self {
        self.set(&opt::SPAN_CLOSE, on.to_string())
    }

    /// Targets written with `.` instead of `::` (`myapp.api`), the logger
    /// names Python pipelines expect (default:
    /// `SPANLINE_DOTTED_TARGETS=true|false`, else off).
    ///
    /// ```
    /// let builder = spanline::builder().dotted_targets(true);
    /// assert!(format!("{builder:?}").contains("dotted_targets: [\"true\"]"));
    /// ```
    #[must_use]
    pub fn dotted_targets(self, on: bool) -> Self {
        self.set(&opt::DOTTED_TARGETS, on.to_string())
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
    /// assert!(format!("{builder:?}").contains("errors: [\"dicts\"]"));
    /// ```
    #[must_use]
    pub fn errors(self, style: impl Into<String>) -> Self {
        self.set(&opt::ERRORS, style)
    }

    /// The event's source file and line on every JSON line, under the
    /// preset's keys (structlog's `filename`/`lineno`, ECS's
    /// `log.origin.file.*`, Cloud Logging's `sourceLocation`). Default:
    /// `SPANLINE_SOURCE_LOCATION=true|false`, else off.
    ///
    /// ```
    /// let builder = spanline::builder().with_source_location(true);
    /// assert!(format!("{builder:?}").contains("source_location: [\"true\"]"));
    /// ```
    #[must_use]
    pub fn with_source_location(self, on: bool) -> Self {
        self.set(&opt::SOURCE_LOCATION, on.to_string())
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
    pub fn context_key(self, key: impl Into<String>) -> Self {
        self.extend(&opt::CONTEXT_KEYS, [key.into()])
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
    pub fn redis_url(self, url: impl Into<String>) -> Self {
        self.set(&opt::REDIS_URL, url)
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
    /// assert!(format!("{builder:?}").contains("redis_cluster: [\"true\"]"));
    /// ```
    #[must_use]
    pub fn redis_cluster<I, T>(self, nodes: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        let nodes: Vec<String> = nodes.into_iter().map(Into::into).collect();
        self.set(&opt::REDIS_URL, nodes.join(","))
            .set(&opt::REDIS_CLUSTER, "true")
    }

    /// How many shards the global feed is spread over (default:
    /// `SPANLINE_REDIS_GLOBAL_SHARDS`, else 16 on a cluster and 1 on one
    /// server); see docs/scale.md.
    ///
    /// ```
    /// let builder = spanline::builder().redis_global_shards(6);
    /// assert!(format!("{builder:?}").contains("redis_global_shards: [\"6\"]"));
    /// ```
    #[must_use]
    pub fn redis_global_shards(self, n: usize) -> Self {
        self.set(&opt::REDIS_GLOBAL_SHARDS, n.to_string())
    }

    /// Send every line as an OpenTelemetry LogRecord to this collector, an
    /// `http://host:port` URL (default: `SPANLINE_OTLP_ENDPOINT`, if set).
    /// Over HTTP/protobuf unless `OTEL_EXPORTER_OTLP_PROTOCOL=grpc`;
    /// `OTEL_EXPORTER_OTLP_TIMEOUT` and `OTEL_SERVICE_NAME` apply, and the
    /// [`service`](Self::service) is the resource's `service.name`. Needs
    /// the feature `otlp`; see
    /// [`OtlpLayer`](https://docs.rs/spanline-otlp/latest/spanline_otlp/struct.OtlpLayer.html)
    /// for what a record holds. Like Redis, not in a process that forwards
    /// to a parent: the parent sends its lines.
    ///
    /// ```
    /// let builder = spanline::builder().otlp_endpoint("http://127.0.0.1:4318");
    /// assert!(format!("{builder:?}").contains("otlp_endpoint"));
    /// ```
    #[must_use]
    pub fn otlp_endpoint(self, url: impl Into<String>) -> Self {
        self.set(&opt::OTLP_ENDPOINT, url)
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
    pub fn forward(self, on: bool) -> Self {
        self.set(&opt::FORWARD, on.to_string())
    }

    /// A file to write lines to instead of stdout (default: `SPANLINE_FILE`);
    /// appended to, its folder created. JSON unless the format says pretty.
    /// With [`rotation`](Self::rotation), a new file every day, hour or
    /// minute. Written from the logging thread, unless
    /// [`non_blocking`](Self::non_blocking).
    ///
    /// ```no_run
    /// let _guard = spanline::builder()
    ///     .file("/var/log/billing/app.log")
    ///     .rotation(spanline::Rotation::Daily) // app.log.2026-12-06, ...
    ///     .non_blocking(true)
    ///     .init();
    /// ```
    #[must_use]
    pub fn file(self, path: impl Into<String>) -> Self {
        self.set(&opt::FILE, path)
    }

    /// When the [`file`](Self::file) starts anew (default:
    /// `SPANLINE_ROTATION`, else [`Rotation::Never`]).
    ///
    /// ```
    /// let builder = spanline::builder().rotation(spanline::Rotation::Hourly);
    /// assert!(format!("{builder:?}").contains("hourly"));
    /// ```
    #[must_use]
    pub fn rotation(self, rotation: Rotation) -> Self {
        self.set(&opt::ROTATION, rotation.name())
    }

    /// Lines go through a writer thread (default: `SPANLINE_NON_BLOCKING`,
    /// else off): a log call only queues its line, so a stalled reader of
    /// stdout (a full pipe, a paused terminal) never blocks the program.
    /// The queue holds 128,000 lines; beyond, lines are dropped and
    /// counted ([`Guard::writer_dropped`]), and at exit what was dropped or
    /// left unwritten is said on stderr. Off, a line is written before the
    /// log call returns, and a stalled reader stalls every logging thread.
    ///
    /// ```
    /// let builder = spanline::builder().non_blocking(true);
    /// assert!(format!("{builder:?}").contains("non_blocking"));
    /// ```
    #[must_use]
    pub fn non_blocking(self, on: bool) -> Self {
        self.set(&opt::NON_BLOCKING, on.to_string())
    }

    /// Lets [`Guard::set_filter`] change the filter while running
    /// (default: `SPANLINE_RELOAD_FILTER`, else off). Off, the filter is
    /// read without a lock on every event.
    ///
    /// See [`Guard::set_filter`]'s example.
    #[must_use]
    pub fn reload_filter(self, on: bool) -> Self {
        self.set(&opt::RELOAD_FILTER, on.to_string())
    }

    /// Spans at this level or above keep their fields on the lines inside
    /// them whatever the filter says (default: `SPANLINE_CONTEXT_LEVEL`,
    /// else INFO; see
    /// [`ContextLayer::context_level`](spanline_core::ContextLayer::context_level)).
    ///
    /// ```
    /// let builder = spanline::builder().context_level(tracing_subscriber::filter::LevelFilter::DEBUG);
    /// assert!(format!("{builder:?}").contains("debug"));
    /// ```
    #[must_use]
    pub fn context_level(self, level: tracing_subscriber::filter::LevelFilter) -> Self {
        self.set(&opt::CONTEXT_LEVEL, level.to_string())
    }

    /// Prints every option's effective value on stderr at start, and where
    /// it came from (default: `SPANLINE_DEBUG_CONFIG`, else off). A Redis
    /// password is never shown.
    ///
    /// ```
    /// let builder = spanline::builder().debug_config(true);
    /// assert!(format!("{builder:?}").contains("debug_config"));
    /// ```
    #[must_use]
    pub fn debug_config(self, on: bool) -> Self {
        self.set(&opt::DEBUG_CONFIG, on.to_string())
    }

    /// Sets a one-value option.
    fn set(mut self, opt: &opt::Opt, value: impl Into<String>) -> Self {
        self.values.insert(opt.key, vec![value.into()]);
        self
    }

    /// Adds to a list option.
    fn extend(mut self, opt: &opt::Opt, values: impl IntoIterator<Item = String>) -> Self {
        self.values.entry(opt.key).or_default().extend(values);
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

    /// Resolves every option (the builder's, else the environment's, else
    /// the file's), parses them and installs the stack.
    #[allow(clippy::disallowed_macros)] // asked for: the effective options, where the operator looks
    fn install(self, problem: crate::install::Problem<'_>) -> Result<Guard, InitError> {
        let file = self.config.unwrap_or_default();
        let env = |name: &str| std::env::var(name).ok();
        let settings = Settings::resolve(&self.values, &env, file.values());
        let plan = Plan::parse(&settings, problem)?;
        if plan.debug_config {
            eprintln!(
                "spanline::init: the options in effect:\n{}",
                settings.describe().trim_end()
            );
        }
        plan.install(self.layers, problem)
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
/// (publish every line to Redis), `SPANLINE_OTLP_ENDPOINT` (send every line
/// as an OpenTelemetry LogRecord, feature `otlp`), `TRACEPARENT` and `BAGGAGE` (context from
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
