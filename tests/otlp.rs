//! `init()` with `SPANLINE_OTLP_ENDPOINT` (feature `otlp`), in real child
//! processes (this test binary, run again with `SPANLINE_OTLP_CHILD` set)
//! against spanline-testkit's OTLP receiver, over gRPC and HTTP/protobuf as
//! `OTEL_EXPORTER_OTLP_PROTOCOL` says, under `RUST_LOG=warn`: every record
//! arrives by the exit with no flush called, with the request's context,
//! the severity and the OpenTelemetry ids of the line written beside it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report
#![allow(clippy::disallowed_macros)] // the child reports its init error on stderr, as a program would

use std::process::{Output, Stdio};
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use serde_json::Value;
use spanline_testkit::OtlpReceiver;

#[test]
fn child() {
    if std::env::var_os("SPANLINE_OTLP_CHILD").is_none() {
        return;
    }
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("child"));
    // The guard is dropped at once: the exit still sends what is queued.
    if let Err(e) = spanline::builder().with_layer(otel).try_init() {
        eprintln!("init failed: {e}");
        std::process::exit(2);
    }
    let _request = tracing::info_span!("request", request_id = "r-9", user_id = 42u64).entered();
    tracing::warn!(attempt = 2, "slow upstream");
    tracing::info!("hidden by RUST_LOG=warn");
    let _job = tracing::info_span!("job", job_id = "export_7").entered();
    tracing::error!(code = 503, "upstream down");
}

fn run_child(env: &[(&str, &str)]) -> Output {
    let mut cmd = spanline_testkit::this_test_binary("child");
    cmd.env("SPANLINE_OTLP_CHILD", "1")
        .env("RUST_LOG", "warn")
        .env("SPANLINE_FORMAT", "json")
        .env("SPANLINE_SERVICE", "billing")
        .env_remove("SPANLINE_REDIS_URL")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL")
        .env_remove("OTEL_SERVICE_NAME")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// The child's JSON lines (libtest's own output filtered out).
fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn init_sends_every_line_over_otlp_by_the_exit_with_context_and_ids() {
    for (protocol, receiver) in [
        ("grpc", OtlpReceiver::grpc()),
        ("http/protobuf", OtlpReceiver::http()),
    ] {
        let out = run_child(&[
            ("SPANLINE_OTLP_ENDPOINT", &receiver.endpoint()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{protocol}: {stderr}");
        let lines = json_lines(&out);
        assert_eq!(lines.len(), 2, "{protocol}: {lines:?}");
        // By the time the child exited, its records were sent.
        let records = receiver.wait_for(2, Duration::from_millis(100));
        assert_eq!(records.len(), 2, "{protocol}: {records:#?}\n{stderr}");
        for (line, record) in lines.iter().zip(&records) {
            assert_eq!(record.body(), line["message"], "{protocol}");
            assert_eq!(record.record.severity_text, line["level"], "{protocol}");
            assert_eq!(record.attr("request_id").as_deref(), Some("r-9"));
            assert_eq!(record.attr("user_id").as_deref(), Some("42"));
            assert_eq!(
                record.trace_id(),
                line["trace_id"],
                "{protocol}: the line's trace"
            );
            assert_eq!(
                record.span_id(),
                line["span_id"],
                "{protocol}: the line's span"
            );
            assert_eq!(record.trace_id().len(), 32);
            assert_eq!(
                record.resource_attr("service.name").as_deref(),
                Some("billing")
            );
        }
        assert_eq!(records[0].attr("attempt").as_deref(), Some("2"));
        assert_eq!(records[1].attr("job_id").as_deref(), Some("export_7"));
        assert_eq!(records[1].record.severity_number, 17);
    }
}

#[test]
fn an_endpoint_that_is_down_is_said_at_exit_and_never_holds_the_program() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let out = run_child(&[("SPANLINE_OTLP_ENDPOINT", &endpoint)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(json_lines(&out).len(), 2, "stdout is not affected");
    assert!(
        stderr.contains("spanline-otlp: 2 records not exported") && stderr.contains("failed"),
        "{stderr}"
    );
}

#[test]
fn a_protocol_init_cannot_speak_is_a_clear_error() {
    let out = run_child(&[
        ("SPANLINE_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("the OTLP layer") && stderr.contains("http/json"),
        "{stderr}"
    );
}
