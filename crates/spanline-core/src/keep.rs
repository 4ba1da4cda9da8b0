//! Which spans carry context whatever the filter says.
//!
//! Filters decide which lines are written, never what context a written line
//! carries. A span is a *context span* when one of its fields is a context
//! key ([`CONTEXT_KEYS`], plus keys the application adds), or when spanline
//! opened it (a request, a restored job, detached work, a child process):
//! the [`ContextLayer`](crate::ContextLayer) keeps such a span, with all of
//! its fields, even when its level is below the filter, and so it keeps
//! every span at its context level (`INFO` and above by default). Other
//! spans follow the filter, so a `debug_span!` in a hot loop under
//! `RUST_LOG=info` still costs nothing.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tracing_core::{LevelFilter, Metadata};

/// The keys that make a span a context span, and that a
/// `ContextSnapshot` carries across processes by default.
///
/// ```
/// assert!(spanline_core::CONTEXT_KEYS.contains(&"request_id"));
/// ```
pub const CONTEXT_KEYS: &[&str] = &["request_id", "trace_id", "user_id", "job_id", "tenant"];

/// The set of context keys a [`ContextLayer`](crate::ContextLayer) keeps
/// spans for: [`CONTEXT_KEYS`] and the keys added to it
/// ([`ContextLayer::context_key`](crate::ContextLayer::context_key)).
#[derive(Clone, Debug, Default)]
pub(crate) struct ContextKeys {
    extra: Arc<[Box<str>]>,
}

impl ContextKeys {
    /// Adds a key.
    #[must_use]
    pub(crate) fn with(self, key: impl Into<String>) -> Self {
        let key: Box<str> = key.into().into_boxed_str();
        if self.contains(&key) {
            return self;
        }
        let mut extra = self.extra.to_vec();
        extra.push(key);
        Self {
            extra: extra.into(),
        }
    }

    /// True when `key` is a context key.
    pub(crate) fn contains(&self, key: &str) -> bool {
        CONTEXT_KEYS.contains(&key) || self.extra.iter().any(|k| &**k == key)
    }

    /// True when `meta` is a span that carries context: one of its fields is
    /// a context key, or spanline opened it (its target is `spanline` or
    /// starts with `spanline::` or `spanline_`).
    pub(crate) fn is_context_span(&self, meta: &Metadata<'_>) -> bool {
        meta.is_span()
            && (is_spanline_target(meta.target())
                || meta.fields().iter().any(|f| self.contains(f.name())))
    }
}

fn is_spanline_target(target: &str) -> bool {
    target == "spanline" || target.starts_with("spanline::") || target.starts_with("spanline_")
}

/// The most verbose level of *line* that the filter given to the current
/// subscriber's [`ContextLayer`](crate::ContextLayer) lets through (its max
/// level hint); `TRACE` when it has no such filter, or no context layer. A
/// process that forwards its lines elsewhere (a child under a `Forwarder`)
/// uses it to send no event that would be discarded, while context spans go
/// through whatever their level. Each subscriber answers for itself, so
/// scoped subscribers with different filters do not see each other's.
///
/// ```
/// use tracing_subscriber::{filter::LevelFilter, prelude::*};
/// assert_eq!(spanline_core::lines_max_level(), LevelFilter::TRACE);
/// let layer = spanline_core::ContextLayer::new().filter(LevelFilter::WARN);
/// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
///     assert_eq!(spanline_core::lines_max_level(), LevelFilter::WARN);
/// });
/// ```
#[doc(hidden)]
pub fn lines_max_level() -> LevelFilter {
    tracing_core::dispatcher::get_default(|dispatch| {
        dispatch
            .downcast_ref::<LinesMaxLevel>()
            .map_or(LevelFilter::TRACE, LinesMaxLevel::get)
    })
}

/// A context layer's answer to [`lines_max_level`], found through the
/// dispatch; kept up to date by the layer's `max_level_hint`, which tracing
/// calls again when a reloadable filter changes.
#[derive(Debug)]
pub(crate) struct LinesMaxLevel(AtomicUsize);

impl LinesMaxLevel {
    pub(crate) fn new(hint: Option<LevelFilter>) -> Self {
        let me = Self(AtomicUsize::new(5));
        me.set(hint);
        me
    }

    pub(crate) fn set(&self, hint: Option<LevelFilter>) {
        let n = match hint {
            Some(LevelFilter::OFF) => 0,
            Some(LevelFilter::ERROR) => 1,
            Some(LevelFilter::WARN) => 2,
            Some(LevelFilter::INFO) => 3,
            Some(LevelFilter::DEBUG) => 4,
            _ => 5,
        };
        self.0.store(n, Ordering::Relaxed);
    }

    fn get(&self) -> LevelFilter {
        match self.0.load(Ordering::Relaxed) {
            0 => LevelFilter::OFF,
            1 => LevelFilter::ERROR,
            2 => LevelFilter::WARN,
            3 => LevelFilter::INFO,
            4 => LevelFilter::DEBUG,
            _ => LevelFilter::TRACE,
        }
    }
}

impl Clone for LinesMaxLevel {
    fn clone(&self) -> Self {
        Self(AtomicUsize::new(self.0.load(Ordering::Relaxed)))
    }
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::prelude::*;

    /// Each subscriber answers for its own filter: a subscriber made later,
    /// with another filter (a test beside it, a scoped subscriber), does
    /// not change what the first one says. It did, through a process-wide
    /// value, and a `Forwarder` under the first then told its child to send
    /// only the other's levels.
    #[test]
    fn lines_max_level_is_the_current_subscribers() {
        use tracing_core::LevelFilter;
        let warn = tracing_core::Dispatch::new(
            tracing_subscriber::registry()
                .with(crate::ContextLayer::new().filter(LevelFilter::WARN)),
        );
        let open = tracing_core::Dispatch::new(
            tracing_subscriber::registry().with(crate::ContextLayer::new()),
        );
        let debug = tracing_core::Dispatch::new(
            tracing_subscriber::registry()
                .with(crate::ContextLayer::new().filter(LevelFilter::DEBUG)),
        );
        tracing_core::dispatcher::with_default(&warn, || {
            assert_eq!(super::lines_max_level(), LevelFilter::WARN);
        });
        tracing_core::dispatcher::with_default(&open, || {
            assert_eq!(super::lines_max_level(), LevelFilter::TRACE);
        });
        tracing_core::dispatcher::with_default(&debug, || {
            assert_eq!(super::lines_max_level(), LevelFilter::DEBUG);
        });
        // No context layer at all: nothing to hold lines back.
        let bare = tracing_core::Dispatch::new(tracing_subscriber::registry());
        tracing_core::dispatcher::with_default(&bare, || {
            assert_eq!(super::lines_max_level(), LevelFilter::TRACE);
        });
    }

    #[test]
    fn context_spans_carry_a_context_key() {
        let keys = super::ContextKeys::default();
        let subscriber = tracing_subscriber::registry().with(crate::ContextLayer::new());
        tracing::subscriber::with_default(subscriber, || {
            // An application's target: this module's own starts with `spanline_`.
            let request = tracing::info_span!(target: "app", "request", request_id = "r-1");
            let db = tracing::debug_span!(target: "app", "db", table = "users");
            assert!(keys.is_context_span(request.metadata().unwrap()));
            assert!(!keys.is_context_span(db.metadata().unwrap()));
        });
    }
}
