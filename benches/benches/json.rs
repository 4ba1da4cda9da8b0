//! JSON layers side by side, writing to a sink (formatting cost, not I/O).
//!
//! - W1: an event with three fields (u64, f64, &str) inside two entered
//!   spans with two fields each;
//! - W2: the same event at span depth 0, 1, 3, 5 and 10 (three fields per span);
//! - W3: create and enter two spans, one event, exit and close;
//! - baseline: `serde_json::to_writer` of an equivalent struct, no tracing.
//!
//! Run with: `cargo bench -p spanline-benches --bench json`

use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use serde::Serialize;
use tracing::{info_span, Span};

#[path = "support.rs"]
mod support;

fn w1(c: &mut Criterion) {
    let mut group = c.benchmark_group("W1");
    for name in support::LAYERS {
        let dispatch = support::dispatch(name);
        group.bench_function(*name, |b| {
            tracing::dispatcher::with_default(&dispatch, || {
                let _spans = support::w1_spans();
                let mut i = 0u64;
                b.iter(|| {
                    i += 1;
                    support::event(i);
                });
            });
        });
    }
    group.bench_function("serde_json-baseline", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            let line = Line {
                timestamp_secs: now.as_secs(),
                timestamp_micros: now.subsec_micros(),
                level: "INFO",
                message: "request handled",
                target: "json",
                iteration: i,
                latency_ms: 3.25,
                path: "/api/v1/users",
                request_id: "9f1c2e7a",
                user_id: 42,
                table: "users",
                attempt: 1,
            };
            let _ = serde_json::to_writer(std::io::sink(), black_box(&line));
        });
    });
    group.finish();
}

#[derive(Serialize)]
struct Line<'a> {
    timestamp_secs: u64,
    timestamp_micros: u32,
    level: &'a str,
    message: &'a str,
    target: &'a str,
    iteration: u64,
    latency_ms: f64,
    path: &'a str,
    request_id: &'a str,
    user_id: u64,
    table: &'a str,
    attempt: u64,
}

fn w2(c: &mut Criterion) {
    let mut group = c.benchmark_group("W2");
    for name in [
        "spanline-flat",
        "tracing-subscriber",
        "json-subscriber",
        "bunyan",
    ] {
        let dispatch = support::dispatch(name);
        for depth in [0usize, 1, 3, 5, 10] {
            group.bench_with_input(BenchmarkId::new(name, depth), &depth, |b, &depth| {
                tracing::dispatcher::with_default(&dispatch, || {
                    let _spans = support::nest(depth);
                    let mut i = 0u64;
                    b.iter(|| {
                        i += 1;
                        support::event(i);
                    });
                });
            });
        }
    }
    group.finish();
}

fn w3(c: &mut Criterion) {
    let mut group = c.benchmark_group("W3");
    for name in support::LAYERS {
        let dispatch = support::dispatch(name);
        group.bench_function(*name, |b| {
            tracing::dispatcher::with_default(&dispatch, || {
                let mut i = 0u64;
                b.iter(|| {
                    i += 1;
                    let request: Span =
                        info_span!("request", request_id = "9f1c2e7a", user_id = 42u64);
                    let _r = request.enter();
                    let db = info_span!("db_query", table = "users", attempt = 1u64);
                    let _d = db.enter();
                    support::event(i);
                });
            });
        });
    }
    group.finish();
}

fn config() -> Criterion {
    support::criterion_config(Duration::from_millis(700), Duration::from_secs(2), 40)
}

criterion_group! { name = benches; config = config(); targets = w1, w2, w3 }
criterion_main!(benches);
