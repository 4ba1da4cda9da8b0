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

/// Keeps what must outlive logging: flushes Redis (up to its shutdown
/// timeout) when dropped. Keep it in `main`.
///
/// ```
/// let guard = spanline::builder().format(spanline::Format::Json).try_init().expect("first init");
/// tracing::info!("work");
/// assert!(guard.flush(std::time::Duration::from_secs(1)));
/// ```
#[must_use = "dropping the guard flushes and stops Redis publishing; keep it in main"]
#[derive(Debug, Default)]
pub struct Guard {
    #[cfg(feature = "redis")]
    redis: Option<spanline_redis::RedisGuard>,
    #[cfg(feature = "redis")]
    redis_stats: Option<spanline_redis::RedisStats>,
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
        if let Some(redis) = &self.redis {
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
///     .service("billing")
///     .context_key("batch_id")            // spans with it keep their fields at any level
///     .redis_url("redis://127.0.0.1:6379") // else SPANLINE_REDIS_URL, if set
///     .forward(true)                      // to a parent Forwarder, when started by one
///     .try_init()
///     .expect("logging set up");
/// ```
///
/// Every option is also read from the environment (see [`init`]); the
/// builder's value wins.
///
/// ```
/// let builder = spanline::builder().format_name("json").service("billing");
/// assert!(format!("{builder:?}").contains("billing"));
/// ```
#[derive(Debug, Default, Clone)]
pub struct Builder {
    filter: Option<String>,
    format: Option<String>,
    preset: Option<String>,
    service: Option<String>,
    redis_url: Option<String>,
    forward: Option<bool>,
    context_keys: Vec<String>,
}

impl Builder {
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

    /// A `service` field on every line.
    ///
    /// See [`Builder`]'s example.
    #[must_use]
    pub fn service(mut self, name: impl Into<String>) -> Self {
        self.service = Some(name.into());
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
    /// See [`Builder`]'s example.
    #[must_use]
    pub fn redis_url(mut self, url: impl Into<String>) -> Self {
        self.redis_url = Some(url.into());
        self
    }

    /// Whether to forward to a parent `Forwarder` when started by one
    /// (default: yes, when `SPANLINE_FORWARD` is set).
    ///
    /// See [`Builder`]'s example.
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
        let directives = self.filter.or_else(|| env("RUST_LOG")).unwrap_or_default();
        let (filter, bad) = crate::filter::parse_lenient(&directives);
        if !bad.is_empty() {
            problem(InitError::Filter(crate::filter::FilterError::new(bad)))?;
        }
        let format: Format = match self
            .format
            .or_else(|| env("SPANLINE_FORMAT"))
            .unwrap_or_default()
            .parse()
        {
            Ok(format) => format,
            Err(e) => problem(e).map(|()| Format::Auto)?,
        };
        let preset = match self.preset.or_else(|| env("SPANLINE_PRESET")) {
            Some(name) => match name.parse::<Preset>() {
                Ok(preset) => preset,
                Err(e) => problem(InitError::UnknownPreset(e)).map(|()| Preset::Flat)?,
            },
            None => Preset::Flat,
        };
        let pretty = match format {
            Format::Pretty => true,
            Format::Json => false,
            Format::Auto => std::io::stdout().is_terminal(),
        };
        let mut context = ContextLayer::new();
        for key in &self.context_keys {
            context = context.context_key(key.clone());
        }
        let mut schema = Schema::builder(preset);
        if let Some(service) = &self.service {
            schema = schema.service(service.clone());
        }
        // Context handed down by a parent process (TRACEPARENT, BAGGAGE):
        // on every line of this process, below anything logged here.
        let inherited =
            spanline_context::ContextSnapshot::from_env_with_keys(context.context_keys());
        if let Some(tp) = inherited.traceparent() {
            schema = schema.static_field("trace_id", tp.trace_id());
        }
        for (key, value) in inherited.iter() {
            schema = schema.static_field(key, value);
        }
        let schema = schema.build();
        let json = JsonLayer::builder().schema(schema.clone()).build();

        #[cfg_attr(not(feature = "redis"), allow(unused_mut))]
        let mut guard = Guard::default();
        let redis_url = self.redis_url.or_else(|| env("SPANLINE_REDIS_URL"));
        #[cfg(feature = "redis")]
        let redis = match redis_url {
            Some(url) => match spanline_redis::RedisLayer::builder(&url)
                .schema(schema)
                .build()
            {
                Ok((layer, redis_guard)) => {
                    guard.redis_stats = Some(layer.stats());
                    guard.redis = Some(redis_guard);
                    Some(layer)
                }
                Err(e) => problem(InitError::Redis(e)).map(|()| None)?,
            },
            None => None,
        };
        #[cfg(not(feature = "redis"))]
        {
            let _ = schema;
            if redis_url.is_some() {
                problem(InitError::RedisNotBuilt)?;
            }
        }
        #[cfg(all(feature = "pipe", unix))]
        let forward = self
            .forward
            .unwrap_or(true)
            .then(spanline_pipe::ForwardLayer::from_env)
            .flatten();
        // Started by a Forwarder: the parent re-emits every line, so this
        // process prints nothing itself (or each line would show twice).
        #[cfg(all(feature = "pipe", unix))]
        let local = forward.is_none();
        #[cfg(not(all(feature = "pipe", unix)))]
        let local = true;

        // The filter goes to the ContextLayer, not in front of the registry:
        // it decides which lines are written, while spans that carry context
        // are kept whatever it says (see ContextLayer's docs). The output
        // layers have no filter of their own.
        let registry = tracing_subscriber::registry()
            .with(context.filter(filter))
            .with((local && pretty).then(PrettyLayer::new))
            .with((local && !pretty).then_some(json));
        #[cfg(feature = "redis")]
        let registry = registry.with(redis);
        #[cfg(all(feature = "pipe", unix))]
        let registry = registry.with(forward);
        if let Err(e) = registry.try_init() {
            problem(InitError::AlreadySet(e.to_string()))?;
            return Ok(Guard::default());
        }
        // Records of the `log` crate become events; another logger may be
        // set already, which is the application's choice.
        let _ = tracing_log::LogTracer::init();
        Ok(guard)
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
/// `Forwarder`: forward every line to it, and print nothing locally, since
/// the parent re-emits them). Returns a [`Guard`] to keep in `main`.
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
