//! Redis publishing, side by side in one run against a private loopback
//! redis-server:
//! - `raw`: redis-rs pipelines of 256 PUBLISH on one connection, no tracing
//!   (the ceiling);
//! - `sustained`: the layer's end-to-end rate with zero drops (block
//!   policy), one channel and job + global;
//! - `caller`: what `on_event` costs the logging thread, against the JSON
//!   layer alone for the same event;
//! - `drop_path`: `on_event` with Redis down and the queue full;
//! - and, printed first: `redis-benchmark -P 64` PUBLISH of the same line
//!   against the same server, the ceiling the sustained rates are held to.
//!
//! Run with: `cargo bench -p spanline-benches --bench redis`

#![allow(clippy::expect_used)] // a bench: a failed set-up should stop it loudly

use std::io;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use spanline_core::ContextLayer;
use spanline_json::JsonLayer;
use spanline_redis::{Overflow, RedisGuard, RedisLayer, RedisLayerBuilder};
use spanline_testkit::{free_port, RedisServer};
use tracing::{info_span, Dispatch};

#[path = "support.rs"]
mod support;
use tracing_subscriber::prelude::*;

// Events timed per chunk in `caller`: a short queue, as when the worker keeps up.
const CHUNK: u64 = 1_000;

fn payload() -> Vec<u8> {
    let line = r#"{"timestamp":"2026-11-22T03:10:19.891842Z","level":"INFO","message":"request handled","target":"bench","iteration":1,"latency_ms":3.25,"path":"/api/v1/users","request_id":"9f1c2e7a","user_id":42,"table":"users","attempt":1}"#;
    line.as_bytes().to_vec()
}

fn layer_dispatch(builder: RedisLayerBuilder, with_json: bool) -> (Dispatch, RedisGuard) {
    let json = JsonLayer::builder().with_writer(io::sink).build();
    let (redis, guard) = builder
        .schema(json.schema().clone())
        .build()
        .expect("valid options");
    let registry = tracing_subscriber::registry().with(ContextLayer::new());
    let dispatch = if with_json {
        Dispatch::new(registry.with(json).with(redis))
    } else {
        Dispatch::new(registry.with(redis))
    };
    (dispatch, guard)
}

fn log_events(n: u64, job: bool) {
    let _job = job.then(|| info_span!("job", job_id = "bench_job").entered());
    let _request = info_span!("request", request_id = "9f1c2e7a", user_id = 42u64).entered();
    for i in 0..n {
        support::event(i);
    }
}

fn raw(c: &mut Criterion, server: &RedisServer) {
    let mut group = c.benchmark_group("redis_raw");
    group.throughput(Throughput::Elements(1));
    let mut con = server.client().get_connection().expect("connect");
    let line = payload();
    group.bench_function("publish_pipelined_256", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            let mut left = iters;
            while left > 0 {
                let n = left.min(256);
                let mut pipe = redis::pipe();
                for _ in 0..n {
                    pipe.cmd("PUBLISH").arg("bench:global").arg(&line).ignore();
                }
                let _: redis::RedisResult<()> = pipe.query(&mut con);
                left -= n;
            }
            start.elapsed()
        });
    });
    group.finish();
}

fn sustained(c: &mut Criterion, server: &RedisServer) {
    let mut group = c.benchmark_group("redis_sustained");
    group.throughput(Throughput::Elements(1));
    for (name, job) in [("global", false), ("job_and_global", true)] {
        let (dispatch, guard) = layer_dispatch(
            RedisLayer::builder(&server.url())
                .prefix("bench")
                .overflow(Overflow::BlockForever),
            false,
        );
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                tracing::dispatcher::with_default(&dispatch, || log_events(iters, job));
                let _ = guard.flush(Duration::from_secs(60));
                start.elapsed()
            });
        });
        drop(guard);
    }
    group.finish();
}

fn caller(c: &mut Criterion, server: &RedisServer) {
    let mut group = c.benchmark_group("redis_caller");
    let json = JsonLayer::builder().with_writer(io::sink).build();
    let json_only = Dispatch::new(
        tracing_subscriber::registry()
            .with(ContextLayer::new())
            .with(json),
    );
    group.bench_function("json_layer_alone", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            tracing::dispatcher::with_default(&json_only, || log_events(iters, true));
            start.elapsed()
        });
    });
    // The Redis layer alone (it encodes the line itself), with room in the
    // queue. Each chunk is timed with the server frozen, so the worker (which
    // then waits on its socket) and redis-server do not compete with the
    // logging thread for this machine's two cores; then the server is
    // thawed and the chunk flushed, untimed.
    let (redis_only, guard) = layer_dispatch(
        RedisLayer::builder(&server.url())
            .prefix("bench")
            .capacity(CHUNK as usize * 2, 256 << 20),
        false,
    );
    group.bench_function("redis_layer_on_event", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(CHUNK);
                server.freeze();
                let start = Instant::now();
                tracing::dispatcher::with_default(&redis_only, || log_events(n, true));
                total += start.elapsed();
                server.thaw();
                let _ = guard.flush(Duration::from_secs(60));
                left -= n;
            }
            total
        });
    });
    drop(guard);
    group.finish();
}

fn drop_path(c: &mut Criterion) {
    let mut group = c.benchmark_group("redis_drop_path");
    let url = format!("redis://127.0.0.1:{}", free_port());
    let (dispatch, guard) =
        layer_dispatch(RedisLayer::builder(&url).capacity(1024, 1 << 20), false);
    // Fill the queue: Redis is down, nothing drains it.
    tracing::dispatcher::with_default(&dispatch, || log_events(2048, true));
    group.bench_function("redis_down_queue_full", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            tracing::dispatcher::with_default(&dispatch, || log_events(iters, true));
            start.elapsed()
        });
    });
    drop(guard);
    group.finish();
}

/// `redis-benchmark -P 64` PUBLISH of the bench's line on `server`: the
/// rate a tuned client reaches on this machine, in the same window.
fn redis_benchmark(server: &RedisServer) {
    let line = String::from_utf8(payload()).unwrap_or_default();
    let out = std::process::Command::new("redis-benchmark")
        .args([
            "-p",
            &server.port().to_string(),
            "-P",
            "64",
            "-n",
            "2000000",
            "-q",
        ])
        .args(["PUBLISH", "bench:global", &line])
        .output();
    let text = match out {
        Ok(out) => String::from_utf8_lossy(&out.stdout).into_owned(),
        Err(e) => format!("redis-benchmark did not run: {e}"),
    };
    // Its progress lines end in `\r`; the result is the last line.
    let result = text
        .rsplit(['\r', '\n'])
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let mut out = std::io::stdout().lock();
    let _ = std::io::Write::write_fmt(
        &mut out,
        format_args!("redis-benchmark -P 64, same server: {}\n", result.trim()),
    );
}

fn all(c: &mut Criterion) {
    let server = RedisServer::start();
    redis_benchmark(&server);
    raw(c, &server);
    sustained(c, &server);
    caller(c, &server);
    drop_path(c);
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
}

criterion_group! { name = benches; config = config(); targets = all }
criterion_main!(benches);
