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
//! Run with: `cargo bench -p spanline-benches --bench redis`. With
//! `SPANLINE_BENCH_CPU_SPLIT=N` it runs only the CPU split instead: N lines
//! published, and the CPU time per line of the logging thread, the worker
//! and redis-server, beside redis-benchmark's.

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

/// CPU seconds of this process's threads (user + system) from a `/proc`
/// stat file: `thread-self` for the calling thread, `self` for all.
fn cpu_of(stat: &str) -> f64 {
    let text = std::fs::read_to_string(stat).unwrap_or_default();
    // Fields after the command's closing parenthesis: utime is the 12th,
    // stime the 13th (0-based 11 and 12).
    let rest = text.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    (f.get(11).unwrap_or(&0.0) + f.get(12).unwrap_or(&0.0)) / 100.0
}

/// redis-server's CPU seconds (user + system), from `INFO cpu`.
fn server_cpu(server: &RedisServer) -> f64 {
    let mut con = server.client().get_connection().expect("connect");
    let info: String = redis::cmd("INFO").arg("cpu").query(&mut con).expect("INFO");
    info.lines()
        .filter(|l| l.starts_with("used_cpu_sys:") || l.starts_with("used_cpu_user:"))
        .filter_map(|l| l.split_once(':')?.1.trim().parse::<f64>().ok())
        .sum()
}

/// Where the two cores go while lines are published at the sustained rate,
/// and while redis-benchmark publishes: CPU microseconds per line of the
/// logging thread, the rest of this process (the worker), and redis-server.
const N_SPLIT: u64 = 1_000_000;

fn cpu_split(server: &RedisServer, lines: u64) {
    let n = lines.max(1);
    let (dispatch, guard) = layer_dispatch(
        RedisLayer::builder(&server.url())
            .prefix("bench")
            .overflow(Overflow::BlockForever),
        false,
    );
    let mut report = String::new();
    for job in [false, true] {
        let (app0, all0, srv0) = (
            cpu_of("/proc/thread-self/stat"),
            cpu_of("/proc/self/stat"),
            server_cpu(server),
        );
        let start = Instant::now();
        tracing::dispatcher::with_default(&dispatch, || log_events(n, job));
        let _ = guard.flush(Duration::from_secs(600));
        let wall = start.elapsed().as_secs_f64();
        let app = cpu_of("/proc/thread-self/stat") - app0;
        let worker = cpu_of("/proc/self/stat") - all0 - app;
        let srv = server_cpu(server) - srv0;
        let us = |s: f64| s * 1e6 / n as f64;
        report += &format!(
            "cpu per line ({}): wall {:.2} us = {:.0} k/s; logging thread {:.2} us, worker {:.2} us, redis-server {:.2} us\n",
            if job { "job + global" } else { "global" },
            us(wall),
            n as f64 / wall / 1e3,
            us(app),
            us(worker),
            us(srv),
        );
    }
    drop(guard);
    let srv0 = server_cpu(server);
    let start = Instant::now();
    redis_benchmark(server);
    let wall = start.elapsed().as_secs_f64();
    let srv = server_cpu(server) - srv0;
    report += &format!(
        "cpu per line (redis-benchmark -P 64, 2,000,000 lines): wall {:.2} us, redis-server {:.2} us\n",
        wall * 1e6 / 2e6,
        srv * 1e6 / 2e6,
    );
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), report.as_bytes());
}

fn all(c: &mut Criterion) {
    let server = RedisServer::start();
    if let Ok(lines) = std::env::var("SPANLINE_BENCH_CPU_SPLIT") {
        return cpu_split(&server, lines.parse().unwrap_or(N_SPLIT));
    }
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
