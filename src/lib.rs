#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod config;
mod error;
mod exit;
pub mod filter;
mod guard;
mod init;
mod install;
mod options;
mod output;

pub use config::Config;
pub use error::InitError;
pub use guard::{flush, Guard};
pub use init::{builder, init, try_init, Builder};
pub use output::{Format, Output, Rotation};
pub use spanline_core::{
    json, set, sink_fn, ContextLayer, CtxView, FieldValue, Json, LineEvent, LineLayer, LineSink,
    NumberPolicy, Preset, ReservedKey, Schema, SetError, Timestamp,
};
pub use spanline_json::{JsonLayer, JsonStats, PrettyLayer};

#[doc(hidden)]
pub use tracing as __tracing;

/// A critical line: tracing's `error!` with `critical = true`, which the
/// presets write as `critical` (structlog, ECS), `CRITICAL` (flat, gcp) or
/// `60` (bunyan), for the alerts that Python pipelines key on
/// `level:critical`. Filters see an ERROR event (tracing has no higher
/// level). Takes what `error!` takes.
///
/// ```
/// let lines = spanline_testkit::capture_json(|| {
///     spanline::critical!(rss_mb = 4096, "out of memory");
///     spanline::critical!(target: "billing", "ledger out of balance");
/// });
/// assert_eq!(lines[0]["level"], "CRITICAL");
/// assert_eq!(lines[0]["rss_mb"], 4096);
/// assert!(lines[0].get("critical").is_none(), "the marker is the level");
/// assert_eq!(lines[1]["target"], "billing");
/// ```
#[macro_export]
macro_rules! critical {
    (target: $target:expr, parent: $parent:expr, $($rest:tt)+) => {
        $crate::__tracing::error!(target: $target, parent: $parent, critical = true, $($rest)+)
    };
    (target: $target:expr, $($rest:tt)+) => {
        $crate::__tracing::error!(target: $target, critical = true, $($rest)+)
    };
    (parent: $parent:expr, $($rest:tt)+) => {
        $crate::__tracing::error!(parent: $parent, critical = true, $($rest)+)
    };
    ($($rest:tt)+) => {
        $crate::__tracing::error!(critical = true, $($rest)+)
    };
}
/// The guides in `docs/`: every Rust snippet in them is compiled (and run,
/// unless marked `no_run`) as a doctest of this crate, with the features
/// its snippets use: `cargo test -p spanline --doc --features
/// web,apalis,opentelemetry,otlp,redis-cluster` (a CI step).
#[cfg(all(
    doctest,
    feature = "web",
    feature = "apalis",
    feature = "opentelemetry",
    feature = "otlp",
    feature = "redis-cluster"
))]
mod guides {
    #[doc = include_str!("../docs/context.md")]
    mod context {}
    #[doc = include_str!("../docs/guide.md")]
    mod guide {}
    #[doc = include_str!("../docs/pipe.md")]
    mod pipe {}
    #[doc = include_str!("../docs/redis.md")]
    mod redis {}
    #[doc = include_str!("../docs/opentelemetry.md")]
    mod opentelemetry {}
    #[doc = include_str!("../docs/presets.md")]
    mod presets {}
    #[doc = include_str!("../docs/scale.md")]
    mod scale {}
    #[doc = include_str!("../docs/console.md")]
    mod console {}
    #[doc = include_str!("../docs/query.md")]
    mod query {}
}

/// The field model shared by all layers (re-export of `spanline-core`).
pub mod core {
    pub use spanline_core::*;
}

/// Context across tasks, threads, jobs, processes and HTTP (re-export of
/// `spanline-context`).
pub mod context {
    pub use spanline_context::*;
}

/// Publishing lines to Redis (re-export of `spanline-redis`, feature `redis`).
#[cfg(feature = "redis")]
pub mod redis {
    pub use spanline_redis::*;
}

/// apalis jobs that carry the context of the code that pushed them
/// (re-export of `spanline-apalis`, feature `apalis`).
#[cfg(feature = "apalis")]
pub mod apalis {
    pub use spanline_apalis::*;
}

/// Every line as an OpenTelemetry LogRecord over OTLP (re-export of
/// `spanline-otlp`, feature `otlp`); `init()` sets it up from
/// `SPANLINE_OTLP_ENDPOINT`.
#[cfg(feature = "otlp")]
pub mod otlp {
    pub use spanline_otlp::*;
}

/// The live log console (re-export of `spanline-web`, feature `web`): an
/// axum router to nest into your app, showing every job's lines from Redis.
#[cfg(feature = "web")]
pub mod web {
    pub use spanline_web::*;
}

/// Child-process forwarding (re-export of `spanline-pipe`, feature `pipe`),
/// and [`forwarder`](pipe::forwarder), which also hands the child the
/// current context.
#[cfg(all(feature = "pipe", unix))]
pub mod pipe {
    pub use spanline_pipe::*;

    /// A [`Forwarder`] whose children continue the current context: each
    /// gets `TRACEPARENT`, `TRACESTATE` and `BAGGAGE` (the allow-listed
    /// context keys, without the redacted ones) from
    /// [`ContextSnapshot`](crate::context::ContextSnapshot) at spawn, which
    /// `spanline::init()` in the child puts on every line. The keys this
    /// process redacts (`SPANLINE_REDACT`, [`Builder::redact`](crate::Builder::redact))
    /// are hidden in the child's re-emitted lines too, whatever the child did.
    ///
    /// ```no_run
    /// let status = spanline::pipe::forwarder("worker-1")
    ///     .spawn(&mut std::process::Command::new("my-worker"))?
    ///     .wait()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn forwarder(name: impl Into<String>) -> Forwarder {
        // The keys this process hides, hidden in the child's lines too,
        // whether or not the child redacts them itself.
        let redact = spanline_core::Redact::current();
        Forwarder::new(name)
            .env_with(spanline_context::ContextSnapshot::capture_env)
            .redact(redact.keys())
    }
}

/// JSON and console output layers (re-export of `spanline-json`).
pub mod json {
    pub use spanline_json::*;
}
