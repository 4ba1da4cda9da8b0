//! Shared set-up for the benches: the layers under test, side by side, and
//! the workloads they run.
#![allow(dead_code)] // each bench uses part of it

use std::io;

use spanline_core::{ContextLayer, Preset};
use spanline_json::JsonLayer;
use tracing::Dispatch;
use tracing_subscriber::prelude::*;

/// Every JSON layer in the comparison, writing to a sink that discards bytes.
pub(crate) const LAYERS: &[&str] = &[
    "spanline-flat",
    "spanline-structlog",
    "tracing-subscriber",
    "json-subscriber",
    "tracing-flat-json",
    "bunyan",
];

#[allow(clippy::expect_used)] // a bench set-up: failing loudly is right
pub(crate) fn dispatch(name: &str) -> Dispatch {
    let registry = tracing_subscriber::registry();
    match name {
        // The registry under a layer that does nothing (alone it would
        // turn every event off), and spanline's context layer alone: what
        // the threads bench compares the full stacks against.
        "registry" => Dispatch::new(registry.with(Nothing)),
        "context" => Dispatch::new(registry.with(ContextLayer::new())),
        "spanline-flat" => Dispatch::new(
            registry
                .with(ContextLayer::new())
                .with(JsonLayer::builder().with_writer(io::sink).build()),
        ),
        // Redaction on: what hiding keys costs, with a pattern and with
        // whole keys only.
        "spanline-flat-redact" | "spanline-flat-redact-exact" => {
            let keys = if name.ends_with("exact") {
                ["password", "authorization"]
            } else {
                ["password", "*token*"]
            };
            Dispatch::new(
                registry.with(ContextLayer::new()).with(
                    JsonLayer::builder()
                        .schema(
                            spanline_core::Schema::builder(Preset::Flat)
                                .redact(keys)
                                .build(),
                        )
                        .with_writer(io::sink)
                        .build(),
                ),
            )
        }
        // tracing-opentelemetry's layer in front: every line in a span
        // carries its trace and span ids.
        "spanline-flat-otel" => {
            use opentelemetry::trace::TracerProvider;
            let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
            Dispatch::new(
                registry
                    .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("bench")))
                    .with(ContextLayer::new())
                    .with(JsonLayer::builder().with_writer(io::sink).build()),
            )
        }
        "spanline-structlog" => Dispatch::new(
            registry.with(ContextLayer::new()).with(
                JsonLayer::builder()
                    .schema(Preset::Structlog)
                    .with_writer(io::sink)
                    .build(),
            ),
        ),
        "tracing-subscriber" => Dispatch::new(
            registry.with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(io::sink),
            ),
        ),
        "json-subscriber" => {
            Dispatch::new(registry.with(json_subscriber::layer().with_writer(io::sink)))
        }
        "tracing-flat-json" => {
            Dispatch::new(registry.with(tracing_flat_json::FlatJsonLayer::new(io::sink)))
        }
        "bunyan" => Dispatch::new(
            registry
                .with(tracing_bunyan_formatter::JsonStorageLayer)
                .with(tracing_bunyan_formatter::BunyanFormattingLayer::new(
                    "bench".into(),
                    io::sink,
                )),
        ),
        // The Redis layer alone, queueing (nothing drains it: port 1): the
        // caller's side of `on_event`, for profiling.
        "redis-queue" => Dispatch::new(
            registry.with(ContextLayer::new()).with(
                spanline_redis::RedisLayer::builder("redis://127.0.0.1:1")
                    .capacity(1 << 22, 1 << 31)
                    .build()
                    .map(|(layer, guard)| {
                        std::mem::forget(guard);
                        layer
                    })
                    .expect("valid options"),
            ),
        ),
        // The OTLP layer alone, queueing: a queue and a batch larger than
        // any run and no batch delay to speak of, so the worker only
        // gathers lines (profile its thread apart: `--separate-threads`).
        "otlp-queue" => Dispatch::new(
            registry.with(ContextLayer::new()).with(
                spanline_otlp::OtlpLayer::builder()
                    .endpoint("http://127.0.0.1:1")
                    .protocol(spanline_otlp::Protocol::Grpc)
                    .capacity(1 << 22)
                    .batch_size(1 << 22)
                    .batch_delay(std::time::Duration::from_secs(3_600))
                    .build()
                    .map(|(layer, guard)| {
                        std::mem::forget(guard);
                        layer
                    })
                    .expect("valid options"),
            ),
        ),
        other => panic!("unknown layer {other}"),
    }
}

/// A layer that does nothing: events and spans still reach the registry.
pub(crate) struct Nothing;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Nothing {}

/// W1's context: two entered spans with two fields each.
pub(crate) fn w1_spans() -> [tracing::span::EnteredSpan; 2] {
    [
        tracing::info_span!("request", request_id = "9f1c2e7a", user_id = 42u64).entered(),
        tracing::info_span!("db_query", table = "users", attempt = 1u64).entered(),
    ]
}

/// W2's context: `depth` entered spans of three fields each.
pub(crate) fn nest(depth: usize) -> Vec<tracing::span::EnteredSpan> {
    (0..depth)
        .map(|d| {
            tracing::info_span!(
                "level",
                depth = d as u64,
                name_of = "span-field",
                flag = true
            )
            .entered()
        })
        .collect()
}

/// The measured event: three fields (u64, f64, &str) and a message.
#[inline]
pub(crate) fn event(i: u64) {
    tracing::info!(
        iteration = i,
        latency_ms = 3.25,
        path = "/api/v1/users",
        "request handled"
    );
}

/// A `spanline_core::json` value of two levels: what `json` workloads log.
pub(crate) fn config() -> &'static serde_json::Value {
    static CONFIG: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    CONFIG.get_or_init(|| {
        serde_json::json!({
            "db": {"host": "db.internal", "port": 5432, "password": "hunter2"},
            "pool": [{"name": "primary", "size": 8}, {"name": "replica", "size": 4}],
            "api_token": "tok-1",
            "debug": false
        })
    })
}

/// About 200 bytes of accented and typographic text (é, —, “ ”, ✓, €):
/// non-ASCII bytes on every line, lead bytes 0xc3 and 0xe2.
pub(crate) fn text() -> String {
    "Naïve café — “quoted” text ✓ costs 12 € (été, déjà vu) — ".repeat(3)
}

/// W3's iteration: create and enter two spans of two fields each, one
/// event, exit and close.
#[inline]
pub(crate) fn w3(i: u64) {
    let request = tracing::info_span!("request", request_id = "9f1c2e7a", user_id = 42u64);
    let _r = request.enter();
    let db = tracing::info_span!("db_query", table = "users", attempt = 1u64);
    let _d = db.enter();
    event(i);
}

/// The span lifecycle alone (the speed issue's first goal): W3 without
/// its event; two spans of two fields each created, entered, exited and
/// closed.
#[inline]
pub(crate) fn spans(_: u64) {
    let request = tracing::info_span!("request", request_id = "9f1c2e7a", user_id = 42u64);
    let _r = request.enter();
    let db = tracing::info_span!("db_query", table = "users", attempt = 1u64);
    let _d = db.enter();
}

/// A message-less event of `n` fields (1, 8 or 32: tracing's most).
#[inline]
pub(crate) fn wide(n: usize, i: u64) {
    match n {
        1 => tracing::info!(f0 = i),
        8 => tracing::info!(
            f0 = i,
            f1 = 1u64,
            f2 = "two",
            f3 = 3.5,
            f4 = true,
            f5 = 5i64,
            f6 = "six",
            f7 = 7u64
        ),
        _ => tracing::info!(
            f0 = i,
            f1 = 1u64,
            f2 = "two",
            f3 = 3.5,
            f4 = true,
            f5 = 5i64,
            f6 = "six",
            f7 = 7u64,
            f8 = i,
            f9 = 1u64,
            f10 = "two",
            f11 = 3.5,
            f12 = true,
            f13 = 5i64,
            f14 = "six",
            f15 = 7u64,
            f16 = i,
            f17 = 1u64,
            f18 = "two",
            f19 = 3.5,
            f20 = true,
            f21 = 5i64,
            f22 = "six",
            f23 = 7u64,
            f24 = i,
            f25 = 1u64,
            f26 = "two",
            f27 = 3.5,
            f28 = true,
            f29 = 5i64,
            f30 = "six",
            f31 = 7u64
        ),
    }
}

/// Short criterion runs: the VM is shared, so compare rows of one run.
pub(crate) fn criterion_config(
    warm_up: std::time::Duration,
    measure: std::time::Duration,
    samples: usize,
) -> criterion::Criterion {
    criterion::Criterion::default()
        .warm_up_time(warm_up)
        .measurement_time(measure)
        .sample_size(samples)
}
