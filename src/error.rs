//! [`InitError`]: why `init` could not use an option, and what it does
//! instead.

use std::fmt;

/// Why [`try_init`](crate::try_init) or [`Builder::try_init`](crate::Builder::try_init) failed.
///
/// ```
/// let err = spanline::builder().format_name("yaml").try_init().unwrap_err();
/// assert!(matches!(err, spanline::InitError::UnknownFormat(_)));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum InitError {
    /// `SPANLINE_FORMAT` (or [`Builder::format_name`](crate::Builder::format_name)) is not `json`, `pretty` or `auto`.
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

    /// The OTLP layer could not be built (`SPANLINE_OTLP_ENDPOINT`,
    /// `OTEL_EXPORTER_OTLP_PROTOCOL`).
    #[cfg(feature = "otlp")]
    Otlp(spanline_otlp::BuildError),
    /// `SPANLINE_OTLP_ENDPOINT` is set but spanline was built without the `otlp` feature.
    OtlpNotBuilt,

    /// A global subscriber was set already.
    AlreadySet(String),
    /// The log file (`SPANLINE_FILE`, [`Builder::file`](crate::Builder::file)) cannot be opened.
    File(String),
    /// [`Guard::set_filter`](crate::Guard::set_filter) on a stack installed without
    /// [`Builder::reload_filter`](crate::Builder::reload_filter), or on no stack.
    NotReloadable,
    /// An option's value is not one it takes.
    Invalid {
        /// The option: its environment variable when the value came from
        /// the environment, else its configuration key.
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

            #[cfg(feature = "otlp")]
            InitError::Otlp(e) => write!(f, "the OTLP layer: {e}"),
            InitError::OtlpNotBuilt => f.write_str(
                "SPANLINE_OTLP_ENDPOINT is set, but spanline was built without its `otlp` feature",
            ),
            InitError::AlreadySet(e) => {
                write!(f, "a global tracing subscriber is set already: {e}")
            }
            InitError::File(reason) => write!(f, "the log file (SPANLINE_FILE): {reason}"),
            InitError::NotReloadable => f.write_str(
                "the filter cannot be changed: install with `reload_filter(true)` (SPANLINE_RELOAD_FILTER)",
            ),
            InitError::Invalid {
                name,
                value,
                expected,
            } => write!(f, "{name}={value:?}: expected {}", expected.replace('`', "")),
        }
    }
}

impl std::error::Error for InitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            #[cfg(feature = "redis")]
            InitError::Redis(e) => Some(e),
            #[cfg(feature = "otlp")]
            InitError::Otlp(e) => Some(e),
            InitError::Filter(e) => Some(e),
            InitError::UnknownPreset(e) => Some(e),
            _ => None,
        }
    }
}

impl InitError {
    /// What [`Builder::init`](crate::Builder::init) does instead.
    pub(crate) fn fallback(&self) -> String {
        let fallback = match self {
            InitError::Filter(e) => {
                return format!("logging with `{}`", e.kept().unwrap_or("info"));
            }
            InitError::UnknownFormat(_) => "using auto",
            InitError::UnknownPreset(_) => "using flat",
            #[cfg(feature = "redis")]
            InitError::Redis(_) => "lines are not published to Redis",
            InitError::RedisNotBuilt => "lines are not published to Redis",
            #[cfg(feature = "otlp")]
            InitError::Otlp(_) => "lines are not sent over OTLP",
            InitError::OtlpNotBuilt => "lines are not sent over OTLP",
            InitError::AlreadySet(_) => "keeping it; spanline is not installed",
            InitError::File(_) => "writing to the output instead",
            InitError::NotReloadable => "the filter is unchanged",
            InitError::Invalid { .. } => "using the default",
        };
        fallback.to_string()
    }
}
