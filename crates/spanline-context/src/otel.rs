//! One trace for spanline and OpenTelemetry (feature `opentelemetry`).
//!
//! spanline reads `trace_id` from an incoming `traceparent` (HTTP headers,
//! a job's snapshot, a child's environment). With tracing-opentelemetry's
//! layer in the stack, the span spanline opens there is made a child of that
//! remote parent, so OpenTelemetry continues the caller's trace: its trace
//! id is the one on the lines, never a second one. Going out, a snapshot
//! takes its `traceparent` from the current OpenTelemetry span, so the next
//! hop's spans are children of this one. Without the layer both are no-ops.

use opentelemetry::trace::TraceContextExt;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::TraceParent;

/// Makes `span` (just created, not yet entered) continue `parent`'s trace.
pub(crate) fn continue_trace(span: &tracing::Span, parent: TraceParent) {
    // Errors: no OpenTelemetry layer, or a disabled span: nothing to continue.
    let _ = span.set_parent(parent.to_otel());
}

/// The current OpenTelemetry span as a `traceparent`, when there is one.
pub(crate) fn current_traceparent() -> Option<TraceParent> {
    let cx = tracing::Span::current().context();
    let span = cx.span();
    TraceParent::from_otel(span.span_context())
}
