//! Every line as an OpenTelemetry LogRecord over OTLP, set up by `init()`:
//! the request's context as attributes, the level as the severity, the
//! service as the resource's `service.name`; the JSON lines on stdout as
//! always.
//!
//! ```text
//! # a collector's OTLP/HTTP port (the default protocol)
//! SPANLINE_OTLP_ENDPOINT=http://127.0.0.1:4318 cargo run --example otlp --features otlp
//! # or its gRPC port
//! SPANLINE_OTLP_ENDPOINT=http://127.0.0.1:4317 OTEL_EXPORTER_OTLP_PROTOCOL=grpc \
//!     cargo run --example otlp --features otlp
//! ```
//!
//! Without a collector listening, the records fail: the counts are said on
//! stderr, and the program is not held up.

#![allow(clippy::disallowed_macros)] // the example says its counts on stderr

use std::time::Duration;

fn main() {
    let mut builder = spanline::builder().service("checkout");
    if std::env::var_os("SPANLINE_OTLP_ENDPOINT").is_none() {
        builder = builder.otlp_endpoint("http://127.0.0.1:4318"); // a local collector
    }
    let guard = builder.init();

    {
        let _request = tracing::info_span!(
            "request",
            request_id = "req-5c1d",
            user_id = 42,
            route = "/checkout"
        )
        .entered();
        tracing::info!(items = 3, "cart priced");
        tracing::warn!(latency_ms = 812, "payment provider slow");
    }

    // Not needed at exit (spanline sends what is queued then); here, to
    // show the counts.
    let sent = guard.flush(Duration::from_secs(5));
    if let Some(stats) = guard.otlp_stats() {
        eprintln!(
            "otlp: {} exported, {} failed, {} dropped (all settled: {sent})",
            stats.exported(),
            stats.failed(),
            stats.dropped()
        );
    }
}
