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
/// spans for: [`CONTEXT_KEYS`] and the keys added to it.
///
/// ```
/// let keys = spanline_core::ContextKeys::default().with("batch");
/// assert!(keys.contains("batch") && keys.contains("request_id"));
/// assert!(!keys.contains("table"));
/// ```
#[derive(Clone, Debug, Default)]
pub struct ContextKeys {
    extra: Arc<[Box<str>]>,
}

impl ContextKeys {
    /// Adds a key.
    ///
    /// ```
    /// let keys = spanline_core::ContextKeys::default().with("tenant_id");
    /// assert!(keys.contains("tenant_id"));
    /// ```
    #[must_use]
    pub fn with(self, key: impl Into<String>) -> Self {
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
    ///
    /// ```
    /// assert!(spanline_core::ContextKeys::default().contains("job_id"));
    /// ```
    pub fn contains(&self, key: &str) -> bool {
        CONTEXT_KEYS.contains(&key) || self.extra.iter().any(|k| &**k == key)
    }

    /// Every key, the defaults first.
    ///
    /// ```
    /// let keys = spanline_core::ContextKeys::default().with("batch");
    /// assert_eq!(keys.iter().last(), Some("batch"));
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        CONTEXT_KEYS
            .iter()
            .copied()
            .chain(self.extra.iter().map(|k| &**k))
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

/// The most verbose level of *line* that the filter given to a
/// [`ContextLayer`](crate::ContextLayer) lets through (its max level hint);
/// `TRACE` when no such filter was given. A process that forwards its lines
/// elsewhere (a child under a `Forwarder`) uses it to send no event that
/// would be discarded, while context spans go through whatever their level.
///
/// ```
/// assert_eq!(spanline_core::lines_max_level(), tracing_core::LevelFilter::TRACE);
/// ```
pub fn lines_max_level() -> LevelFilter {
    match LINES_MAX_LEVEL.load(Ordering::Relaxed) {
        0 => LevelFilter::OFF,
        1 => LevelFilter::ERROR,
        2 => LevelFilter::WARN,
        3 => LevelFilter::INFO,
        4 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    }
}

static LINES_MAX_LEVEL: AtomicUsize = AtomicUsize::new(5);

pub(crate) fn set_lines_max_level(level: Option<LevelFilter>) {
    let n = match level {
        Some(LevelFilter::OFF) => 0,
        Some(LevelFilter::ERROR) => 1,
        Some(LevelFilter::WARN) => 2,
        Some(LevelFilter::INFO) => 3,
        Some(LevelFilter::DEBUG) => 4,
        _ => 5,
    };
    LINES_MAX_LEVEL.store(n, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::prelude::*;

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
