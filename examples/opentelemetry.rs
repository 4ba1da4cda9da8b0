//! spanline and OpenTelemetry, one trace: every line inside a span carries
//! the `trace_id` and `span_id` of the span tracing-opentelemetry exports,
//! and a job that arrives with a `traceparent` continues the caller's trace.
//!
//! ```sh
//! SPANLINE_FORMAT=json cargo run --example opentelemetry
//! ```
//!
//! prints the JSON lines on stdout and, on stderr, each span as it is
//! exported: the ids match. Nothing leaves the machine: the exporter here
//! writes to stderr; a service would use opentelemetry-otlp's.
//!
//! In your own `Cargo.toml`: `spanline` with feature `opentelemetry`,
//! `tracing-opentelemetry = "0.34"`, `opentelemetry = "0.33"` and
//! `opentelemetry_sdk = "0.33"`. See docs/opentelemetry.md.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use spanline::context::ContextSnapshot;

/// Writes each exported span to stderr as one line.
#[derive(Debug)]
struct StderrExporter;

impl SpanExporter for StderrExporter {
    #[allow(clippy::disallowed_macros)] // the example's exporter output
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        for span in batch {
            let sc = &span.span_context;
            eprintln!(
                "exported span {} trace_id={:032x} span_id={:016x} parent_span_id={:016x}",
                span.name,
                sc.trace_id(),
                sc.span_id(),
                span.parent_span_id
            );
        }
        std::future::ready(Ok(()))
    }
}

#[allow(clippy::disallowed_macros)] // the exporter's shutdown error, logging is gone by then
fn main() {
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(StderrExporter)
        .build();
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("opentelemetry-example"));
    let guard = spanline::builder()
        .service("billing")
        .with_layer(otel)
        .init();

    // A request of this service: a new trace.
    {
        let _request = tracing::info_span!("request", request_id = "9f1c2e7a").entered();
        tracing::info!("request received");
        let _query = tracing::info_span!("query", table = "invoices").entered();
        tracing::info!(rows = 3, "query done");
    }

    // A job whose payload carries the caller's context: it continues the
    // caller's trace (trace id 4bf9…), as a child of the caller's span.
    let payload = r#"{"v":2,"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","fields":{"job_id":"invoice_42"}}"#;
    match serde_json::from_str::<ContextSnapshot>(payload) {
        Ok(snapshot) => {
            let _job = snapshot.restore("render").entered();
            tracing::info!("job started");
            tracing::warn!(pages = 12, "job slow");
        }
        Err(e) => tracing::error!(error = &e as &dyn std::error::Error, "bad payload"),
    }

    drop(guard);
    if let Err(e) = provider.shutdown() {
        eprintln!("exporter shutdown: {e}");
    }
}
