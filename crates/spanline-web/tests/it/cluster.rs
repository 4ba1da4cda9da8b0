//! The console on a real 3-master Redis Cluster, over real HTTP: a job's
//! page from its shard, the global feed from all its shards, the jobs
//! list, on pub/sub and on streams; lines published by the real layer.

use std::time::{Duration, Instant};

use spanline_core::ContextLayer;
use spanline_json::JsonLayer;
use spanline_redis::Channels;
use spanline_redis::{Mode, Overflow, RedisLayer};
use spanline_testkit::RedisCluster;
use spanline_web::{Console, Source};
use tracing_subscriber::prelude::*;

use crate::{get, serve};

/// Publishes 6 lines in job `job_c`, 3 outside, with the global feed over 3 shards.
fn publish(cluster: &RedisCluster, mode: Mode) {
    let urls = cluster.urls();
    let nodes: Vec<&str> = urls.iter().map(String::as_str).collect();
    let json = JsonLayer::builder().with_writer(std::io::sink).build();
    let (layer, guard) = RedisLayer::builder_cluster(&nodes)
        .global_shards(3)
        .mode(mode)
        .overflow(Overflow::BlockForever)
        .schema(json.schema().clone())
        .build()
        .unwrap();
    let stats = layer.stats();
    let subscriber = tracing_subscriber::registry()
        .with(ContextLayer::new())
        .with(layer);
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..3 {
            tracing::info!(i, "outside {i}");
        }
        tracing::info_span!("job", job_id = "job_c").in_scope(|| {
            for i in 0..6 {
                tracing::info!(i, "in the job {i}");
            }
        });
    });
    assert!(guard.flush(Duration::from_secs(10)).complete);
    assert_eq!(stats.published(), stats.emitted(), "{stats:?}");
}

fn lines(events: &str) -> Vec<&str> {
    events
        .lines()
        .filter(|l| l.starts_with("data: {\"raw\""))
        .collect()
}

fn shard_subscribers(cluster: &RedisCluster, channel: &str) -> i64 {
    let Ok(mut con) = cluster.node_for(channel).client().get_connection() else {
        return 0;
    };
    let counts: Vec<(String, i64)> = redis::cmd("PUBSUB")
        .arg("SHARDNUMSUB")
        .arg(channel)
        .query(&mut con)
        .unwrap_or_default();
    counts.first().map_or(0, |(_, n)| *n)
}

#[test]
fn on_streams_the_global_page_shows_every_shard_and_a_job_page_reads_its_own() {
    let cluster = RedisCluster::start(3);
    publish(&cluster, Mode::Streams);
    // The shard count comes from what the publisher stored.
    let served = serve(Console::builder(cluster.urls().join(",")).cluster(true));
    // 9 lines and the job's end line, which the global feed carries too.
    let global = get(&format!("{}/events", served.base), &[], |got| {
        lines(got).len() >= 10
    });
    let got = lines(&global);
    assert_eq!(got.len(), 10, "every line of every shard: {global}");
    assert_eq!(
        got.iter().filter(|l| l.contains("job ended")).count(),
        1,
        "{global}"
    );
    for i in 0..3 {
        assert!(global.contains(&format!("outside {i}")), "{global}");
    }
    let job = get(&format!("{}/jobs/job_c/events", served.base), &[], |got| {
        got.contains("job ended")
    });
    let got = lines(&job);
    assert_eq!(got.len(), 7, "six lines and the job's end, in order: {job}");
    for (i, line) in got.iter().take(6).enumerate() {
        assert!(line.contains(&format!("in the job {i}")), "{job}");
    }
    // The jobs list is built from the global feed's shards.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let list = get(&format!("{}/api/jobs", served.base), &[], |_| false);
        if list.contains("\"job_id\":\"job_c\"") {
            break;
        }
        assert!(Instant::now() < deadline, "job_c not listed: {list}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn on_pub_sub_pages_follow_sharded_channels_on_their_masters() {
    let cluster = RedisCluster::start(3);
    let served = serve(
        Console::builder(cluster.urls().join(","))
            .cluster(true)
            .global_shards(3)
            .source(Source::PubSub),
    );
    let shards = spanline_redis::read::global_shards(&Channels::default(), 3);
    let (global_url, job_url) = (
        format!("{}/events", served.base),
        format!("{}/jobs/job_c/events", served.base),
    );
    // The job's 6 lines, 3 others, and the job's end.
    let global = std::thread::spawn(move || get(&global_url, &[], |got| lines(got).len() >= 10));
    let job = std::thread::spawn(move || get(&job_url, &[], |got| got.contains("job ended")));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(shards.iter().all(|s| shard_subscribers(&cluster, s) >= 1)
        && shard_subscribers(&cluster, "logs:job_c") >= 1)
    {
        assert!(Instant::now() < deadline, "the pages' subscriptions");
        std::thread::sleep(Duration::from_millis(20));
    }
    publish(&cluster, Mode::PubSub);
    let global = global.join().unwrap();
    assert_eq!(lines(&global).len(), 10, "{global}");
    let job = job.join().unwrap();
    assert_eq!(lines(&job).len(), 7, "{job}");
    assert!(
        job.contains(r#"data: {"state":"live","source":"pubsub"}"#),
        "{job}"
    );
}

#[test]
fn the_global_page_merges_the_shards_streams_in_time_order() {
    let cluster = RedisCluster::start(3);
    let shards = spanline_redis::read::global_shards(&Channels::default(), 2);
    // Blocks of 300 lines, taking turns on the two shards: shown shard
    // after shard (in either order), or as each follower reads, the page
    // would be out of order.
    for i in 0..1_200u64 {
        let key = &shards[usize::from((i / 300) % 2 == 1)];
        let line = format!(r#"{{"timestamp":"t","level":"INFO","message":"m{i}","target":"app"}}"#);
        let _: String = redis::cmd("XADD")
            .arg(key)
            .arg(format!("{}-0", i + 1))
            .arg("line")
            .arg(line)
            .query(&mut cluster.node_for(key).client().get_connection().unwrap())
            .unwrap();
    }
    let served = serve(
        Console::builder(cluster.urls().join(","))
            .cluster(true)
            .global_shards(2),
    );
    let page = get(&format!("{}/events", served.base), &[], |got| {
        lines(got).len() >= 1_200
    });
    let messages: Vec<String> = lines(&page)
        .iter()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l.trim_start_matches("data: ")).unwrap();
            v["message"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        messages,
        (0..1_200).map(|i| format!("m{i}")).collect::<Vec<_>>()
    );
}

/// A quiet page on a cluster stays live: its node answers PINGs (the old
/// follower, in RESP2, took each quiet spell for a lost node, ~every 4 s).
#[test]
fn a_quiet_pub_sub_page_on_a_cluster_stays_live() {
    let cluster = RedisCluster::start(3);
    let served = serve(
        Console::builder(cluster.urls().join(","))
            .cluster(true)
            .global_shards(3)
            .source(Source::PubSub),
    );
    let job_url = format!("{}/jobs/job_c/events", served.base);
    let job = std::thread::spawn(move || get(&job_url, &[], |got| got.contains("job ended")));
    let deadline = Instant::now() + Duration::from_secs(10);
    while shard_subscribers(&cluster, "logs:job_c") < 1 {
        assert!(Instant::now() < deadline, "the page's subscription");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_secs(8));
    publish(&cluster, Mode::PubSub);
    let job = job.join().unwrap();
    assert_eq!(lines(&job).len(), 7, "{job}");
    assert!(!job.contains("unavailable"), "{job}");
    assert_eq!(job.matches(r#""state":"live""#).count(), 1, "{job}");
}
