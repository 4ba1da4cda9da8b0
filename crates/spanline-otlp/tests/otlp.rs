//! The OTLP layer against real OTLP endpoints (spanline-testkit's receiver
//! on tonic's gRPC server and on axum), under `RUST_LOG=warn`, and against
//! endpoints that are down or frozen.

use std::net::TcpListener;
use std::time::Duration;

use spanline_core::{ContextLayer, Preset, Schema};
use spanline_otlp::{BuildError, OtlpLayer, Protocol};
use spanline_testkit::{OtlpReceiver, Received};
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN: &str = "00f067aa0ba902b7";

/// The registry with the context layer filtered as `RUST_LOG=warn`, and
/// the OTLP layer; `body` runs with it as this thread's subscriber.
fn with_stack(layer: OtlpLayer, body: impl FnOnce()) {
    let subscriber = tracing_subscriber::registry()
        .with(ContextLayer::new().filter(EnvFilter::new("warn")))
        .with(layer);
    tracing::subscriber::with_default(subscriber, body);
}

/// The registry, the context layer with no filter, and the OTLP layer:
/// for threads of their own (`with_stack` is this thread's).
fn unfiltered(layer: OtlpLayer) -> impl tracing::Subscriber + Send + Sync {
    tracing_subscriber::registry()
        .with(ContextLayer::new())
        .with(layer)
}

/// A request's lines: two at WARN and above, one at INFO that the filter
/// hides; the request's span is INFO and still gives its context.
fn log_a_request() {
    let _request = tracing::info_span!(
        "request",
        request_id = "r-7",
        user_id = 42u64,
        trace_id = TRACE,
        span_id = SPAN
    )
    .entered();
    tracing::warn!(attempt = 2, "slow upstream");
    tracing::info!("hidden by RUST_LOG=warn");
    tracing::error!(code = 503, password = "hunter2", "upstream down");
}

fn check_request(records: &[Received]) {
    assert_eq!(records.len(), 2, "{records:#?}");
    let (warn, error) = (&records[0], &records[1]);
    assert_eq!(
        (
            warn.record.severity_number,
            warn.record.severity_text.as_str()
        ),
        (13, "WARN")
    );
    assert_eq!(
        (
            error.record.severity_number,
            error.record.severity_text.as_str()
        ),
        (17, "ERROR")
    );
    assert_eq!(warn.body(), "slow upstream");
    assert_eq!(error.body(), "upstream down");
    for record in records {
        assert_eq!(record.attr("request_id").as_deref(), Some("r-7"));
        assert_eq!(record.attr("user_id").as_deref(), Some("42"));
        assert_eq!(record.trace_id(), TRACE);
        assert_eq!(record.span_id(), SPAN);
        assert_eq!(
            record.attr("trace_id"),
            None,
            "the ids are the record's own fields"
        );
        assert_eq!(
            record.resource_attr("service.name").as_deref(),
            Some("billing")
        );
        assert_eq!(record.scope, "otlp", "the target names the scope");
        assert!(record.record.time_unix_nano > 0);
        assert!(record.attr("message").is_none() && record.attr("level").is_none());
    }
    assert_eq!(warn.attr("attempt").as_deref(), Some("2"));
    assert_eq!(error.attr("code").as_deref(), Some("503"));
}

fn builder(receiver: &OtlpReceiver, protocol: Protocol) -> spanline_otlp::OtlpLayerBuilder {
    OtlpLayer::builder()
        .endpoint(receiver.endpoint())
        .protocol(protocol)
        .service_name("billing")
        .batch_delay(Duration::from_millis(10))
}

#[test]
fn records_arrive_over_grpc_with_severity_context_and_ids() {
    let receiver = OtlpReceiver::grpc();
    let (layer, guard) = builder(&receiver, Protocol::Grpc).build().unwrap();
    let stats = layer.stats();
    with_stack(layer, log_a_request);
    assert!(guard.flush(Duration::from_secs(10)), "{stats:?}");
    check_request(&receiver.wait_for(2, Duration::from_secs(5)));
    assert_eq!(
        (
            stats.emitted(),
            stats.exported(),
            stats.dropped(),
            stats.failed()
        ),
        (2, 2, 0, 0)
    );
}

#[test]
fn records_arrive_over_http_protobuf_and_the_schema_redacts() {
    let receiver = OtlpReceiver::http();
    let schema = Schema::builder(Preset::Flat).redact(["password"]).build();
    let (layer, guard) = builder(&receiver, Protocol::HttpProtobuf)
        .schema(schema)
        .build()
        .unwrap();
    with_stack(layer, log_a_request);
    drop(guard); // the shutdown exports what is queued
    let records = receiver.wait_for(2, Duration::from_secs(5));
    check_request(&records);
    assert_eq!(records[1].attr("password").as_deref(), Some("[redacted]"));
}

#[test]
fn records_in_one_batch_up_to_its_size_and_in_order() {
    let receiver = OtlpReceiver::grpc();
    let (layer, guard) = builder(&receiver, Protocol::Grpc)
        .batch_size(10)
        .batch_delay(Duration::from_secs(60))
        .build()
        .unwrap();
    with_stack(layer, || {
        for i in 0..25 {
            tracing::warn!(i, "numbered");
        }
    });
    // Two full batches go at once; the last five wait for the flush.
    let first = receiver.wait_for(20, Duration::from_secs(5));
    assert_eq!(first.len(), 20);
    assert!(guard.flush(Duration::from_secs(5)));
    let records = receiver.wait_for(25, Duration::from_secs(5));
    let order: Vec<String> = records.iter().map(|r| r.attr("i").unwrap()).collect();
    let expected: Vec<String> = (0..25).map(|i| i.to_string()).collect();
    assert_eq!(order, expected);
    assert_eq!(receiver.requests().len(), 3, "batches of 10, 10 and 5");
}

#[test]
fn an_endpoint_that_is_down_fails_its_records_and_counts_them() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for protocol in [Protocol::Grpc, Protocol::HttpProtobuf] {
        let (layer, guard) = OtlpLayer::builder()
            .endpoint(format!("http://127.0.0.1:{port}"))
            .protocol(protocol)
            .batch_delay(Duration::from_millis(10))
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let stats = layer.stats();
        with_stack(layer, || {
            for _ in 0..5 {
                tracing::warn!("nobody listens");
            }
        });
        assert!(
            guard.flush(Duration::from_secs(10)),
            "{protocol:?}: {stats:?}"
        );
        assert_eq!(
            (stats.emitted(), stats.failed(), stats.exported()),
            (5, 5, 0),
            "{protocol:?}"
        );
    }
}

#[test]
fn a_frozen_endpoint_never_holds_the_application_and_every_record_is_counted() {
    // Accepts connections (the kernel does) and never answers.
    let frozen = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", frozen.local_addr().unwrap());
    let (layer, guard) = OtlpLayer::builder()
        .endpoint(endpoint)
        .protocol(Protocol::Grpc)
        .capacity(4)
        .batch_size(2)
        .batch_delay(Duration::from_millis(1))
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let stats = layer.stats();
    with_stack(layer, || {
        for i in 0..1_000 {
            tracing::warn!(i, "into the void");
        }
    });
    assert_eq!(stats.emitted(), 1_000);
    assert!(stats.dropped_queue_full() > 0, "{stats:?}");
    let outcome = guard.shutdown(Duration::from_millis(100)).unwrap();
    assert_eq!(stats.in_flight(), 0, "{stats:?}");
    assert_eq!(
        stats.emitted(),
        stats.exported() + stats.dropped() + stats.failed(),
        "{stats:?}"
    );
    assert_eq!(outcome.complete, outcome.abandoned == 0);
    assert!(stats.dropped_shutdown() >= outcome.abandoned);
    drop(frozen);
}

#[test]
fn oversize_lines_and_events_after_the_shutdown_are_dropped_and_counted() {
    let receiver = OtlpReceiver::grpc();
    let (layer, guard) = builder(&receiver, Protocol::Grpc)
        .max_line(200)
        .build()
        .unwrap();
    let stats = layer.stats();
    tracing::subscriber::with_default(unfiltered(layer), || {
        tracing::warn!(blob = "x".repeat(500).as_str(), "too long");
        tracing::warn!("fits");
        assert!(guard.shutdown(Duration::from_secs(5)).unwrap().complete);
        tracing::warn!("after the shutdown");
    });
    assert_eq!(stats.dropped_oversize(), 1);
    assert_eq!(stats.dropped_shutdown(), 1);
    assert_eq!(stats.exported(), 1);
    let records = receiver.wait_for(1, Duration::from_secs(5));
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].body(), "fits");
}

#[test]
fn what_cannot_be_built_says_why() {
    let err = |b: spanline_otlp::OtlpLayerBuilder| b.build().unwrap_err();
    let https = err(OtlpLayer::builder().endpoint("https://collector:4317"));
    assert!(matches!(https, BuildError::Endpoint(_)), "{https}");
    assert!(https.to_string().contains("TLS"));
    assert!(matches!(
        err(OtlpLayer::builder().endpoint("collector:4317")),
        BuildError::Endpoint(_)
    ));
    assert_eq!(
        Protocol::parse("http/json"),
        Err(BuildError::Protocol("http/json".into()))
    );
}

/// A `Debug` value that takes its time: its event is held by the logging
/// thread (counted, not on the queue) while the shutdown runs.
struct Slow(Duration);

impl std::fmt::Debug for Slow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::thread::sleep(self.0);
        f.write_str("slow")
    }
}

#[test]
fn an_event_held_by_its_thread_through_the_shutdown_is_counted_once() {
    let receiver = OtlpReceiver::grpc();
    let (layer, guard) = builder(&receiver, Protocol::Grpc).build().unwrap();
    let stats = layer.stats();
    let subscriber = std::sync::Arc::new(unfiltered(layer));
    let logging = {
        let subscriber = subscriber.clone();
        std::thread::spawn(move || {
            tracing::subscriber::with_default(subscriber, || {
                tracing::warn!(value = ?Slow(Duration::from_millis(400)), "slow to encode");
            });
        })
    };
    std::thread::sleep(Duration::from_millis(100)); // the thread holds its event
    let outcome = guard.shutdown(Duration::from_millis(50)).unwrap();
    logging.join().unwrap();
    assert_eq!(stats.emitted(), 1);
    assert_eq!(stats.dropped_shutdown(), 1, "{stats:?}");
    assert_eq!(
        (stats.exported(), stats.failed(), stats.in_flight()),
        (0, 0, 0)
    );
    assert_eq!(outcome.abandoned, 0, "nothing was on the queue");
}

#[test]
fn threads_logging_through_the_shutdown_are_each_counted_once() {
    let receiver = OtlpReceiver::http();
    let (layer, guard) = builder(&receiver, Protocol::HttpProtobuf)
        .capacity(64)
        .build()
        .unwrap();
    let stats = layer.stats();
    let subscriber = std::sync::Arc::new(unfiltered(layer));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let subscriber = subscriber.clone();
            std::thread::spawn(move || {
                tracing::subscriber::with_default(subscriber, || {
                    for i in 0..5_000 {
                        tracing::warn!(t, i, "busy");
                    }
                });
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(20));
    let outcome = guard.shutdown(Duration::from_millis(5)).unwrap();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(stats.emitted(), 20_000);
    assert_eq!(
        stats.emitted(),
        stats.exported() + stats.dropped() + stats.failed(),
        "{stats:?}"
    );
    assert!(stats.dropped_shutdown() >= outcome.abandoned);
    // Every record exported was received; an export the shutdown cut short
    // (counted in `dropped_shutdown`) may have arrived too.
    let received = receiver.records().len() as u64;
    assert!(
        (stats.exported()..=stats.exported() + stats.dropped_shutdown()).contains(&received),
        "received {received}: {stats:?}"
    );
}

#[test]
fn durations_too_long_to_add_up_mean_no_limit_and_never_panic() {
    let receiver = OtlpReceiver::grpc();
    let (layer, guard) = builder(&receiver, Protocol::Grpc)
        .batch_delay(Duration::MAX)
        .timeout(Duration::MAX)
        .shutdown_timeout(Duration::MAX)
        .build()
        .unwrap();
    let stats = layer.stats();
    with_stack(layer, || tracing::warn!("one"));
    assert!(guard.flush(Duration::MAX), "a flush sends the batch");
    assert_eq!(stats.exported(), 1);
    drop(guard);
}
