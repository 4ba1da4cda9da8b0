//! spanline-context's behaviour tests, one binary (one link on a small
//! machine); each module needs the features it names.

/// The HTTP middleware with an EnvFilter (features `axum`, `env-filter`).
#[cfg(all(feature = "axum", feature = "env-filter"))]
mod http_filter;
/// The HTTP middleware's options, and tower-http's TraceLayer composed
/// with it (feature `axum`).
#[cfg(feature = "axum")]
mod http_options;
/// Context across tasks and threads (feature `tokio`).
#[cfg(feature = "tokio")]
mod propagation;
/// ContextSnapshot: capture, serialize, restore.
mod snapshot;
