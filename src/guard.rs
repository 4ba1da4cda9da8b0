//! [`Guard`]: what `init` installed, for flushing, changing the filter and
//! reading the counters.

use std::fmt;
use std::sync::Arc;

use crate::error::InitError;

/// What [`init`](crate::init) installed: flushes on demand, changes the filter while
/// running ([`Builder::reload_filter`](crate::Builder::reload_filter)), and shows the Redis counters.
///
/// Nothing needs it to be kept: at exit (return from `main`, or
/// `std::process::exit`) spanline writes and publishes what is queued,
/// within the shutdown timeout, and says on stderr what it could not,
/// whether the guard was kept, dropped at once (`let _ = spanline::init()`)
/// or never dropped. Dropping it does nothing else.
///
/// ```
/// let guard = spanline::builder().format(spanline::Format::Json).try_init().expect("first init");
/// tracing::info!("work");
/// assert!(guard.flush(std::time::Duration::from_secs(1)));
/// ```
#[derive(Default)]
pub struct Guard {
    #[cfg(feature = "redis")]
    pub(crate) redis: Option<&'static spanline_redis::RedisGuard>,
    #[cfg(feature = "redis")]
    pub(crate) redis_stats: Option<spanline_redis::RedisStats>,
    #[cfg(feature = "otlp")]
    pub(crate) otlp: Option<&'static spanline_otlp::OtlpGuard>,
    #[cfg(feature = "otlp")]
    pub(crate) otlp_stats: Option<spanline_otlp::OtlpStats>,
    pub(crate) set_filter: Option<SetFilter>,
}

/// Replaces the installed filter (a `reload` handle, typed away).
pub(crate) type SetFilter =
    Arc<dyn Fn(tracing_subscriber::EnvFilter) -> Result<(), String> + Send + Sync>;

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Guard");
        #[cfg(feature = "redis")]
        d.field("redis", &self.redis.is_some());
        #[cfg(feature = "otlp")]
        d.field("otlp", &self.otlp.is_some());
        d.field("reload_filter", &self.set_filter.is_some())
            .finish()
    }
}

/// Publishes what is queued for Redis and sends what is queued for OTLP,
/// waiting up to `timeout` for each; `true` when every line logged before
/// was settled (or [`init`](crate::init) set up neither). For a panic
/// hook, or before a long pause.
///
/// ```
/// assert!(spanline::flush(std::time::Duration::from_millis(10)));
/// ```
pub fn flush(timeout: std::time::Duration) -> bool {
    #[cfg_attr(not(any(feature = "redis", feature = "otlp")), allow(unused_mut))]
    let mut done = true;
    #[cfg(feature = "redis")]
    if let Some(redis) = crate::exit::REDIS.get() {
        done &= redis.flush(timeout).complete;
    }
    #[cfg(feature = "otlp")]
    if let Some(otlp) = crate::exit::OTLP.get() {
        done &= otlp.flush(timeout);
    }
    let _ = timeout;
    done
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

    /// Flushes Redis and OTLP now, waiting up to `timeout` for each (see
    /// [`RedisGuard::flush`](spanline_redis::RedisGuard::flush)); `true`
    /// when everything logged before was settled, or there is neither.
    ///
    /// ```
    /// let guard = spanline::builder().format(spanline::Format::Json).init();
    /// assert!(guard.flush(std::time::Duration::from_secs(1)));
    /// ```
    pub fn flush(&self, timeout: std::time::Duration) -> bool {
        #[cfg_attr(not(any(feature = "redis", feature = "otlp")), allow(unused_mut))]
        let mut done = true;
        #[cfg(feature = "redis")]
        if let Some(redis) = self.redis {
            done &= redis.flush(timeout).complete;
        }
        #[cfg(feature = "otlp")]
        if let Some(otlp) = self.otlp {
            done &= otlp.flush(timeout);
        }
        let _ = timeout;
        done
    }

    /// The OTLP layer's counters, when OTLP export is on
    /// (`SPANLINE_OTLP_ENDPOINT`, feature `otlp`).
    ///
    /// ```
    /// let guard = spanline::builder().format(spanline::Format::Json).init();
    /// assert!(guard.otlp_stats().is_none(), "no SPANLINE_OTLP_ENDPOINT here");
    /// ```
    #[cfg(feature = "otlp")]
    pub fn otlp_stats(&self) -> Option<&spanline_otlp::OtlpStats> {
        self.otlp_stats.as_ref()
    }

    /// Replaces the filter while running, in `RUST_LOG` syntax (read as
    /// [`filter::parse`](crate::filter::parse) reads it: a directive that
    /// does not parse is an error, and the filter is left as it was). Needs
    /// [`Builder::reload_filter`](crate::Builder::reload_filter).
    ///
    /// ```
    /// let guard = spanline::builder().format(spanline::Format::Json).reload_filter(true).init();
    /// guard.set_filter("debug").unwrap();
    /// assert!(tracing::enabled!(tracing::Level::DEBUG));
    /// assert!(guard.set_filter("warnn").is_err(), "a mistyped level is refused");
    /// guard.set_filter("warn").unwrap();
    /// assert!(!tracing::enabled!(tracing::Level::INFO));
    /// ```
    pub fn set_filter(&self, directives: &str) -> Result<(), InitError> {
        let set = self.set_filter.as_ref().ok_or(InitError::NotReloadable)?;
        let filter = crate::filter::parse(directives).map_err(InitError::Filter)?;
        set(filter).map_err(InitError::AlreadySet)
    }

    /// Lines the writer thread ([`Builder::non_blocking`](crate::Builder::non_blocking)) dropped because
    /// its queue was full; 0 when lines are written from the logging
    /// thread.
    ///
    /// ```
    /// let guard = spanline::builder().format(spanline::Format::Json).init();
    /// assert_eq!(guard.writer_dropped(), 0);
    /// ```
    pub fn writer_dropped(&self) -> u64 {
        crate::exit::WRITER_COUNTS.get().map_or(0, |c| c.dropped())
    }
}
