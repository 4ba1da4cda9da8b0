//! Publishing to a Redis Cluster (3 masters on loopback, made by the
//! testkit): the events per second spanline sustains with zero drops
//! (block policy), with the global feed on one channel (one master takes
//! every global line: the hot spot) and spread over 3 and 16 shards, and
//! the `SPUBLISH` calls per master from `INFO commandstats` after each.
//!
//! Then, on a one-node cluster, the cluster client against the plain
//! client on the same node (the same lines, one channel), best of three
//! runs each, taken in turn.
//!
//! Run with: `cargo bench -p spanline-benches --bench cluster` (about a
//! minute). `SPANLINE_BENCH_EVENTS` sets the events per run (default 200,000).
//! With `SPANLINE_BENCH_ONE_NODE=plain` (or `cluster`) it runs only that
//! client on a one-node cluster, once: for callgrind's count of the
//! worker's instructions (`--separate-threads=yes`).

#![allow(clippy::expect_used, clippy::disallowed_macros)] // a bench: loud set-up failures, a printed report

use std::io;
use std::time::{Duration, Instant};

use spanline_core::ContextLayer;
use spanline_json::JsonLayer;
use spanline_redis::{Overflow, RedisLayer, RedisLayerBuilder};
use spanline_testkit::RedisCluster;
use tracing::{info_span, Dispatch};
use tracing_subscriber::prelude::*;

#[path = "support.rs"]
mod support;

fn run(cluster: &RedisCluster, shards: usize, events: u64, job: bool) -> (f64, Vec<(u16, u64)>) {
    let urls = cluster.urls();
    let nodes: Vec<&str> = urls.iter().map(String::as_str).collect();
    cluster.reset_stats();
    let rate = rate_of(
        RedisLayer::builder_cluster(&nodes).global_shards(shards),
        events,
        job,
    );
    (rate, cluster.command_calls("spublish"))
}

/// Events per second through the layer `builder` makes, zero drops.
fn rate_of(builder: RedisLayerBuilder, events: u64, job: bool) -> f64 {
    let json = JsonLayer::builder().with_writer(io::sink).build();
    let (redis, guard) = builder
        .overflow(Overflow::BlockForever)
        .schema(json.schema().clone())
        .build()
        .expect("valid options");
    let stats = redis.stats();
    let dispatch = Dispatch::new(
        tracing_subscriber::registry()
            .with(ContextLayer::new())
            .with(redis),
    );
    let started = Instant::now();
    tracing::dispatcher::with_default(&dispatch, || {
        let _job = job.then(|| info_span!("job", job_id = "bench_job").entered());
        let _request = info_span!("request", request_id = "9f1c2e7a", user_id = 42u64).entered();
        for i in 0..events {
            support::event(i);
        }
    });
    assert!(guard.flush(Duration::from_secs(120)).complete, "{stats:?}");
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(stats.published(), events + u64::from(job), "{stats:?}");
    events as f64 / elapsed
}

fn main() {
    let events: u64 = std::env::var("SPANLINE_BENCH_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200_000);
    if let Ok(client) = std::env::var("SPANLINE_BENCH_ONE_NODE") {
        let one = RedisCluster::start(1);
        let url = one.urls()[0].clone();
        let builder = if client == "plain" {
            RedisLayer::builder(&url)
        } else {
            RedisLayer::builder_cluster(&[url.as_str()]).global_shards(1)
        };
        let rate = rate_of(builder, events, false);
        println!("one node, {client} client: {:.0} k/s", rate / 1000.0);
        return;
    }
    let cluster = RedisCluster::start(3);
    // Warm up connections and the slot map.
    let _ = run(&cluster, 1, 10_000, false);
    println!("{events} events per run, 3 masters on loopback, block policy (no drops)");
    println!("| global feed | job channel too | events/s | SPUBLISH per master |");
    println!("|---|---|---|---|");
    for (shards, job) in [(1, false), (3, false), (16, false), (3, true)] {
        let (rate, calls) = run(&cluster, shards, events, job);
        let mut per: Vec<u64> = calls.iter().map(|(_, n)| *n).collect();
        per.sort_unstable();
        let feed = if shards == 1 {
            "one channel".to_string()
        } else {
            format!("{shards} shards")
        };
        println!(
            "| {feed} | {} | {:.0} k | {per:?} |",
            if job { "yes" } else { "no" },
            rate / 1000.0
        );
    }
    drop(cluster);
    let one = RedisCluster::start(1);
    let url = one.urls()[0].clone();
    let _ = rate_of(RedisLayer::builder_cluster(&[url.as_str()]), 10_000, false);
    let (mut plain, mut clustered) = (0f64, 0f64);
    for _ in 0..3 {
        plain = plain.max(rate_of(RedisLayer::builder(&url), events, false));
        clustered = clustered.max(rate_of(
            RedisLayer::builder_cluster(&[url.as_str()]).global_shards(1),
            events,
            false,
        ));
    }
    println!(
        "one node: plain client {:.0} k/s, cluster client {:.0} k/s: {:.2} of the plain",
        plain / 1000.0,
        clustered / 1000.0,
        clustered / plain
    );
}
