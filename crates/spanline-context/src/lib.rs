#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod capture;
mod filter;
#[cfg(feature = "tower")]
mod http;
mod job;
#[cfg(feature = "opentelemetry")]
mod otel;
mod snapshot;
#[cfg(feature = "tokio")]
mod task;
pub mod thread;
mod traceparent;

pub use capture::{capture, Captured};
#[cfg(feature = "env-filter")]
pub use filter::add_request_directive;
pub use filter::{REQUEST_DIRECTIVE, REQUEST_TARGET};
#[cfg(feature = "tower")]
pub use http::{RequestContext, RequestContextLayer, RequestId, RequestStats, ResponseFuture};
pub use job::{JobId, JobIdError};
pub use snapshot::{ContextSnapshot, SnapshotError, SnapshotValue, DEFAULT_KEYS};
pub use spanline_core::{set, CtxView, FieldValue};
#[cfg(feature = "tokio")]
pub use task::{spawn, spawn_blocking, spawn_detached};
pub use traceparent::{TraceParent, TraceParentError};

/// The current context: the current span's fields, its ancestors', and the
/// keys bound with [`set`]. Empty outside any span.
///
/// ```
/// use tracing_subscriber::prelude::*;
/// let subscriber = tracing_subscriber::registry().with(spanline_core::ContextLayer::new());
/// tracing::subscriber::with_default(subscriber, || {
///     assert!(spanline_context::current().is_empty());
///     let _req = tracing::info_span!("request", request_id = "r-1").entered();
///     assert_eq!(spanline_context::current().get("request_id").unwrap().to_string(), "r-1");
/// });
/// ```
pub fn current() -> CtxView {
    CtxView::current().unwrap_or_default()
}
