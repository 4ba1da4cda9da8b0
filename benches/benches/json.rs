//! JSON layers side by side, writing to a sink (formatting cost, not I/O).
//!
//! - W1: an event with three fields (u64, f64, &str) inside two entered
//!   spans with two fields each;
//! - W2: the same event at span depth 0, 1, 3, 5 and 10 (three fields per span);
//! - W3: create and enter two spans, one event, exit and close;
//! - wide: a message-less event of 1, 8 and 32 fields, outside spans;
//! - long: W1's event with one string value of 1 KiB, 16 KiB and 64 KiB,
//!   beside a `memcpy` of the same bytes (the floor);
//! - spans: W3's two spans alone, no event (the span lifecycle);
//! - W5: W1 on two threads at once into one layer (time per event: 0.5 of
//!   W1's would be perfect scaling);
//! - baseline: `serde_json::to_writer` of an equivalent struct, no tracing.
//!
//! Run with: `cargo bench -p spanline-benches --bench json`

use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use serde::Serialize;

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
    // W3, and its span pair alone (no event).
    for (group, iteration) in [
        ("W3", support::w3 as fn(u64)),
        ("spans", support::spans as fn(u64)),
    ] {
        let mut group = c.benchmark_group(group);
        for name in support::LAYERS {
            let dispatch = support::dispatch(name);
            group.bench_function(*name, |b| {
                tracing::dispatcher::with_default(&dispatch, || {
                    let mut i = 0u64;
                    b.iter(|| {
                        i += 1;
                        iteration(i);
                    });
                });
            });
        }
        group.finish();
    }
}

fn wide(c: &mut Criterion) {
    let mut group = c.benchmark_group("wide");
    for name in ["spanline-flat", "tracing-flat-json", "json-subscriber"] {
        let dispatch = support::dispatch(name);
        for n in [1usize, 8, 32] {
            group.bench_with_input(BenchmarkId::new(name, n), &n, |b, &n| {
                tracing::dispatcher::with_default(&dispatch, || {
                    let mut i = 0u64;
                    b.iter(|| {
                        i += 1;
                        support::wide(n, i);
                    });
                });
            });
        }
    }
    group.finish();
}

fn long(c: &mut Criterion) {
    let mut group = c.benchmark_group("long");
    for size in [1usize << 10, 16 << 10, 64 << 10] {
        let value: String = "abcdefghijklmnopqrstuvwxyz0123456789 "
            .chars()
            .cycle()
            .take(size)
            .collect();
        group.throughput(criterion::Throughput::Bytes(size as u64));
        for name in ["spanline-flat", "tracing-flat-json"] {
            let dispatch = support::dispatch(name);
            group.bench_with_input(BenchmarkId::new(name, size), &value, |b, value| {
                tracing::dispatcher::with_default(&dispatch, || {
                    let _spans = support::w1_spans();
                    b.iter(|| tracing::info!(body = value.as_str(), "long"));
                });
            });
        }
        // The escaper, through `write_str` (it adds the two quotes): the
        // row keeps its name so earlier figures compare.
        group.bench_with_input(BenchmarkId::new("escape_str", size), &value, |b, value| {
            let mut buf = Vec::with_capacity(size + 16);
            b.iter(|| {
                buf.clear();
                spanline_core::write_str(&mut buf, black_box(value));
                black_box(&buf);
            });
        });
        group.bench_with_input(BenchmarkId::new("memcpy", size), &value, |b, value| {
            let mut buf = Vec::with_capacity(size);
            b.iter(|| {
                buf.clear();
                buf.extend_from_slice(black_box(value.as_bytes()));
                black_box(&buf);
            });
        });
    }
    group.finish();
}

fn w5(c: &mut Criterion) {
    let mut group = c.benchmark_group("W5");
    for name in [
        "spanline-flat",
        "tracing-flat-json",
        "json-subscriber",
        "tracing-subscriber",
    ] {
        let dispatch = support::dispatch(name);
        let pair = ThreadPair::start(&dispatch);
        group.bench_function(name, |b| b.iter_custom(|iters| pair.run(iters)));
    }
    group.finish();
}

/// Two logging threads kept for a whole W5 row, so that a sample times the
/// events alone: spawning two threads per sample costs tens of
/// microseconds, which would weigh most on the fastest layer.
struct ThreadPair {
    /// Events each thread logs next; `u64::MAX` tells them to stop.
    each: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Three parties: the two threads and the timer, at the start and at
    /// the end of each sample.
    barrier: std::sync::Arc<std::sync::Barrier>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl ThreadPair {
    fn start(dispatch: &tracing::Dispatch) -> Self {
        use std::sync::atomic::Ordering;
        let each = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(3));
        let threads = (0..2)
            .map(|_| {
                let (dispatch, each, barrier) = (dispatch.clone(), each.clone(), barrier.clone());
                std::thread::spawn(move || {
                    tracing::dispatcher::with_default(&dispatch, || {
                        let _spans = support::w1_spans();
                        loop {
                            barrier.wait();
                            let n = each.load(Ordering::SeqCst);
                            if n == u64::MAX {
                                return;
                            }
                            for i in 0..n {
                                support::event(i);
                            }
                            barrier.wait();
                        }
                    });
                })
            })
            .collect();
        Self {
            each,
            barrier,
            threads,
        }
    }

    /// Logs `iters` events between the two threads; the time per event is
    /// the elapsed time over `iters`.
    fn run(&self, iters: u64) -> Duration {
        self.each
            .store(iters.div_ceil(2), std::sync::atomic::Ordering::SeqCst);
        let start = std::time::Instant::now();
        self.barrier.wait();
        self.barrier.wait();
        start.elapsed()
    }
}

impl Drop for ThreadPair {
    fn drop(&mut self) {
        self.each
            .store(u64::MAX, std::sync::atomic::Ordering::SeqCst);
        self.barrier.wait();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn config() -> Criterion {
    support::criterion_config(Duration::from_millis(700), Duration::from_secs(2), 40)
}

criterion_group! { name = benches; config = config(); targets = w1, w2, w3, wide, long, w5 }
criterion_main!(benches);
