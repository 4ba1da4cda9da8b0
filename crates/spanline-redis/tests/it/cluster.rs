//! Sharded pub/sub on a real 3-master Redis Cluster on loopback: job
//! channels arrive through `SSUBSCRIBE` on the shard that owns them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::time::Duration;

use spanline_core::ContextLayer;
use spanline_json::JsonLayer;
use spanline_redis::RedisLayer;
use spanline_testkit::{Capture, RedisCluster, ShardedSubscription};
use tracing::{info, info_span};
use tracing_subscriber::prelude::*;

#[test]
fn job_channels_are_published_to_their_shard() {
    let cluster = RedisCluster::start(3);
    let jobs: Vec<String> = (0..6).map(|i| format!("job-{i}")).collect();
    let subs: Vec<ShardedSubscription> = jobs
        .iter()
        .map(|job| {
            let channel = format!("logs:{job}");
            ShardedSubscription::new(cluster.node_for(&channel), &channel)
        })
        .collect();
    let global = ShardedSubscription::new(cluster.node_for("logs:global"), "logs:global");

    let urls = cluster.urls();
    let nodes: Vec<&str> = urls.iter().map(String::as_str).collect();
    let capture = Capture::new();
    let json = JsonLayer::builder().with_writer(capture.clone()).build();
    let (redis, guard) = RedisLayer::builder_cluster(&nodes)
        .schema(json.schema().clone())
        .build()
        .unwrap();
    let stats = redis.stats();
    let subscriber = tracing_subscriber::registry()
        .with(ContextLayer::new())
        .with(json)
        .with(redis);
    tracing::subscriber::with_default(subscriber, || {
        for job in &jobs {
            let _job = info_span!("job", job_id = job.as_str()).entered();
            for step in 0..3 {
                info!(step, "working");
            }
        }
    });
    assert!(guard.flush(Duration::from_secs(10)).complete, "{stats:?}");
    // 18 lines, and each job's end line.
    assert_eq!(stats.published(), 24, "{stats:?}");
    for (job, sub) in jobs.iter().zip(&subs) {
        let got = sub.wait_for(4, Duration::from_secs(5));
        assert_eq!(got.len(), 4, "{job}: {got:?}");
        assert!(got
            .iter()
            .all(|line| line.contains(&format!("\"job_id\":\"{job}\""))));
        assert!(got[3].contains(r#""job_end":true"#), "{got:?}");
    }
    // The global feed: the application's lines only.
    assert_eq!(global.wait_for(18, Duration::from_secs(5)).len(), 18);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(global.wait_for(18, Duration::from_millis(10)).len(), 18);
}
