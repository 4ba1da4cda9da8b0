//! A real Redis Cluster on loopback (3 masters; 3 masters and 3 replicas
//! for the failover): the publishing tests of one node, run on both; the
//! global feed spread over shards with commands even across masters; a
//! master killed mid-stream with exact accounting.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::time::{Duration, Instant};

use spanline_redis::Channels;
use spanline_redis::{Mode, RedisLayer, RedisLayerBuilder};
use spanline_testkit::{RedisCluster, RedisServer, ShardedSubscription, Subscription};
use tracing::{info, info_span};

/// Where the shared test bodies publish: one node, or a cluster.
enum Deployment {
    Node(RedisServer),
    Cluster(RedisCluster),
}

/// What a consumer sees of one channel: the lines, in the order received.
enum Feed {
    Node(Subscription, String),
    Shard(ShardedSubscription),
}

impl Feed {
    fn lines(&self, timeout: Duration, n: usize) -> Vec<String> {
        match self {
            Feed::Node(sub, channel) => {
                let deadline = Instant::now() + timeout;
                while sub.payloads(channel).len() < n && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(10));
                }
                sub.payloads(channel)
            }
            Feed::Shard(sub) => sub.wait_for(n, timeout),
        }
    }
}

impl Deployment {
    fn builder(&self, shards: usize) -> RedisLayerBuilder {
        let quick = |b: RedisLayerBuilder| {
            b.timeouts(Duration::from_millis(500), Duration::from_millis(500))
                .max_backoff(Duration::from_millis(200))
                .global_shards(shards)
        };
        match self {
            Deployment::Node(server) => quick(RedisLayer::builder(&server.url())),
            Deployment::Cluster(cluster) => {
                let urls = cluster.urls();
                let nodes: Vec<&str> = urls.iter().map(String::as_str).collect();
                quick(RedisLayer::builder_cluster(&nodes))
            }
        }
    }

    /// Subscribes to `channel` where it lives.
    fn follow(&self, channel: &str) -> Feed {
        match self {
            Deployment::Node(server) => Feed::Node(
                Subscription::new(&server.url(), &[channel]),
                channel.to_string(),
            ),
            Deployment::Cluster(cluster) => {
                Feed::Shard(ShardedSubscription::new(cluster.node_for(channel), channel))
            }
        }
    }

    /// A connection to the node that owns `key`.
    fn connection(&self, key: &str) -> redis::Connection {
        match self {
            Deployment::Node(server) => server.client().get_connection().unwrap(),
            Deployment::Cluster(cluster) => {
                cluster.node_for(key).client().get_connection().unwrap()
            }
        }
    }
}

use crate::publish::Setup;

/// Shared body: a job's lines on its channel, in order, with its end; every
/// line on the global feed (one channel, or spread over `shards`), each
/// shard in order; exact accounting.
fn jobs_and_the_global_feed(deployment: &Deployment, shards: usize) {
    let channels = Channels::default();
    let jobs: Vec<String> = (0..6).map(|i| format!("job-{i}")).collect();
    let job_feeds: Vec<Feed> = jobs
        .iter()
        .map(|job| deployment.follow(&channels.job(job).unwrap()))
        .collect();
    let global: Vec<Feed> = spanline_redis::read::global_shards(&channels, shards)
        .iter()
        .map(|shard| deployment.follow(shard))
        .collect();
    let setup = Setup::new(deployment.builder(shards));
    setup.run(|| {
        info!("before the jobs");
        for job in &jobs {
            let _job = info_span!("job", job_id = job.as_str()).entered();
            for step in 0..3 {
                info!(step, "working");
            }
        }
    });
    assert!(setup.flush(10).complete, "{:?}", setup.stats);
    setup.assert_accounted();
    // 19 lines and each job's end line.
    assert_eq!(setup.stats.published(), 25, "{:?}", setup.stats);
    let written = setup.capture.lines();
    for (job, feed) in jobs.iter().zip(&job_feeds) {
        let got = feed.lines(Duration::from_secs(5), 4);
        let expected: Vec<&String> = written
            .iter()
            .filter(|l| l.contains(&format!("\"job_id\":\"{job}\"")))
            .collect();
        assert_eq!(
            got.iter().take(3).collect::<Vec<_>>(),
            expected,
            "{job}: in order"
        );
        assert_eq!(got.len(), 4, "{job}: {got:?}");
        assert!(got[3].contains(r#""job_end":true"#), "{got:?}");
    }
    // The global feed: every application line exactly once over all
    // shards, each shard in the order written.
    let deadline = Instant::now() + Duration::from_secs(5);
    let read =
        || -> Vec<Vec<String>> { global.iter().map(|f| f.lines(Duration::ZERO, 0)).collect() };
    let mut shards = read();
    // The application's lines, and each job's end line (on the feed too).
    let expected = written.len() + jobs.len();
    while shards.iter().map(Vec::len).sum::<usize>() < expected && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        shards = read();
    }
    let ends: usize = shards
        .iter()
        .flatten()
        .filter(|l| l.contains(r#""job_end":true"#))
        .count();
    assert_eq!(ends, jobs.len(), "one end line per job on the global feed");
    let mut seen: Vec<String> = Vec::new();
    for lines in shards {
        let lines: Vec<String> = lines
            .into_iter()
            .filter(|l| !l.contains(r#""job_end":true"#))
            .collect();
        let positions: Vec<usize> = lines
            .iter()
            .map(|l| written.iter().position(|w| w == l).expect("a written line"))
            .collect();
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "a shard keeps order"
        );
        seen.extend(lines);
    }
    seen.sort();
    let mut all = written.clone();
    all.sort();
    assert_eq!(seen, all, "every line once on the global feed");
}

/// Shared body: streams keep a bounded, replayable log; the global limit is
/// the whole feed's, split over its shards.
fn streams_keep_a_bounded_replayable_log(deployment: &Deployment, shards: usize) {
    let channels = Channels::default();
    let job = "replay";
    let setup = Setup::new(
        deployment
            .builder(shards)
            .mode(Mode::Streams)
            .stream_limits(300, 50, Duration::from_secs(60)),
    );
    setup.run(|| {
        let _job = info_span!("job", job_id = job).entered();
        (0..1000).for_each(|i| info!(i, "streamed"));
    });
    assert!(setup.flush(10).complete);
    setup.assert_accounted();
    let mut total = 0;
    for key in spanline_redis::read::global_shards(&channels, shards) {
        let len: usize = redis::cmd("XLEN")
            .arg(&key)
            .query(&mut deployment.connection(&key))
            .unwrap();
        assert!(len >= 300 / shards, "{key}: {len}");
        total += len;
    }
    assert!(
        (300..=900).contains(&total),
        "MAXLEN ~ 300 over the feed bounds it: {total}"
    );
    let key = channels.job(job).unwrap();
    let mut con = deployment.connection(&key);
    let last: Vec<(String, Vec<(String, String)>)> = redis::cmd("XREVRANGE")
        .arg(&key)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query(&mut con)
        .unwrap();
    assert!(last[0].1[0].1.contains(r#""job_end":true"#), "{last:?}");
    let ttl: i64 = redis::cmd("TTL").arg(&key).query(&mut con).unwrap();
    assert!(ttl > 0 && ttl <= 60, "a job stream expires: {ttl}");
}

#[test]
fn jobs_and_the_global_feed_on_one_node() {
    jobs_and_the_global_feed(&Deployment::Node(RedisServer::start()), 1);
}

#[test]
fn jobs_and_the_global_feed_on_a_cluster_sharded_and_not() {
    let cluster = Deployment::Cluster(RedisCluster::start(3));
    jobs_and_the_global_feed(&cluster, 3);
    jobs_and_the_global_feed(&cluster, 1);
}

#[test]
fn streams_on_one_node() {
    streams_keep_a_bounded_replayable_log(&Deployment::Node(RedisServer::start()), 1);
}

#[test]
fn streams_on_a_cluster_sharded() {
    streams_keep_a_bounded_replayable_log(&Deployment::Cluster(RedisCluster::start(3)), 3);
}

/// The point of sharding: with the global feed over 3 shards, each master
/// runs about a third of the commands.
#[test]
fn the_sharded_global_feed_spreads_commands_evenly_over_the_masters() {
    let cluster = RedisCluster::start(3);
    let deployment = Deployment::Cluster(cluster);
    let setup = Setup::new(deployment.builder(3));
    let Deployment::Cluster(cluster) = &deployment else {
        unreachable!()
    };
    cluster.reset_stats();
    setup.run(|| (0..10_000).for_each(|i| info!(i, "spread")));
    assert!(setup.flush(20).complete);
    setup.assert_accounted();
    assert_eq!(setup.stats.published(), 10_000);
    let calls = cluster.command_calls("spublish");
    assert_eq!(calls.len(), 3, "{calls:?}");
    let total: u64 = calls.iter().map(|(_, n)| n).sum();
    assert!(total >= 10_000, "{calls:?}");
    let mean = total as f64 / 3.0;
    for (port, n) in &calls {
        let off = (*n as f64 - mean).abs() / mean;
        assert!(
            off <= 0.15,
            "master {port}: {n} commands, {:.0}% off the mean {mean:.0}: {calls:?}",
            off * 100.0
        );
    }
    // Unsharded, one master takes them all: the hot spot.
    let setup = Setup::new(deployment.builder(1));
    cluster.reset_stats();
    setup.run(|| (0..3_000).for_each(|i| info!(i, "hot")));
    assert!(setup.flush(20).complete);
    let calls = cluster.command_calls("spublish");
    assert_eq!(
        calls.iter().filter(|(_, n)| *n >= 3_000).count(),
        1,
        "{calls:?}"
    );
}

/// A master killed while lines are published: a replica takes over, the
/// publisher follows the slots to it, logging never waits on Redis, and
/// every line is published, dropped or failed: counted, never silent.
/// Commands the dead master never took wait for the new one (as a single
/// server's wait for its restart): only a full queue or a batch on the
/// wire when the master died loses lines.
#[test]
fn a_master_killed_mid_stream_is_survived_with_exact_accounting() {
    let mut cluster = RedisCluster::start_with_replicas(3, 1);
    let shards = spanline_redis::read::global_shards(&Channels::default(), 3);
    let victim_shard = shards[1].clone();
    let urls = cluster.urls();
    let nodes: Vec<&str> = urls.iter().map(String::as_str).collect();
    let setup = Setup::new(
        RedisLayer::builder_cluster(&nodes)
            .global_shards(3)
            .timeouts(Duration::from_millis(500), Duration::from_millis(500))
            .max_backoff(Duration::from_millis(200)),
    );
    let mut slowest = Duration::ZERO;
    let mut log_for = |setup: &Setup, from: u64, n: u64| {
        setup.run(|| {
            for i in from..from + n {
                let started = Instant::now();
                info!(i, "through the failover");
                slowest = slowest.max(started.elapsed());
            }
        });
    };
    log_for(&setup, 0, 2_000);
    assert!(setup.flush(10).complete);
    assert_eq!(setup.stats.published(), 2_000);
    let killed = cluster.kill_master_of(&victim_shard);
    // Lines while the shard has no master (node timeout 3 s), then after.
    let deadline = Instant::now() + Duration::from_secs(4);
    let mut next = 2_000;
    while Instant::now() < deadline {
        log_for(&setup, next, 100);
        next += 100;
        std::thread::sleep(Duration::from_millis(50));
    }
    let promoted = cluster.wait_served(&victim_shard, Duration::from_secs(30));
    assert_ne!(promoted, killed, "a replica took over");
    let before_after = setup.stats.published();
    log_for(&setup, next, 2_000);
    next += 2_000;
    let flushed = setup.flush(20);
    setup.assert_accounted();
    assert!(flushed.complete, "{:?}", setup.stats);
    assert_eq!(setup.stats.emitted(), next);
    // After the failover the shard's new master takes its lines again.
    assert!(
        setup.stats.published() >= before_after + 2_000,
        "publishing resumed on the new master: {:?}",
        setup.stats
    );
    let lost = setup.stats.failed() + setup.stats.dropped();
    assert_eq!(setup.stats.published() + lost, next, "{:?}", setup.stats);
    let calls = cluster.command_calls("spublish");
    assert!(
        calls.iter().any(|(port, n)| *port == promoted && *n > 0),
        "the promoted replica runs the shard's lines: {calls:?}"
    );
    assert!(
        slowest < Duration::from_secs(2),
        "logging never waited on Redis: slowest {slowest:?}"
    );
}

/// A slot moved to another master while the publisher holds the old map
/// (`CLUSTER SETSLOT .. NODE` on every master, as a resharding ends): the
/// old master answers `MOVED`, the publisher asks for the map again and
/// sends the lines to the new owner. None is lost or counted failed.
#[test]
fn lines_follow_a_slot_moved_to_another_master() {
    let cluster = RedisCluster::start(3);
    let urls = cluster.urls();
    let nodes: Vec<&str> = urls.iter().map(String::as_str).collect();
    let setup = Setup::new(
        RedisLayer::builder_cluster(&nodes)
            .global_shards(1)
            .timeouts(Duration::from_millis(500), Duration::from_millis(500))
            .max_backoff(Duration::from_millis(100)),
    );
    let channel = "logs:global";
    setup.run(|| (0..100).for_each(|i| info!(i, "before the move")));
    assert!(setup.flush(10).complete);
    assert_eq!(setup.stats.published(), 100);

    let from = cluster.node_for(channel).port();
    let to = cluster
        .masters()
        .into_iter()
        .find(|m| m.port() != from)
        .unwrap();
    let mut to_con = to.client().get_connection().unwrap();
    let to_id: String = redis::cmd("CLUSTER")
        .arg("MYID")
        .query(&mut to_con)
        .unwrap();
    let slot: u16 = redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(channel)
        .query(&mut to_con)
        .unwrap();
    for master in cluster.masters() {
        let mut con = master.client().get_connection().unwrap();
        redis::cmd("CLUSTER")
            .arg("SETSLOT")
            .arg(slot)
            .arg("NODE")
            .arg(&to_id)
            .exec(&mut con)
            .unwrap();
    }
    cluster.reset_stats();
    setup.run(|| (0..100).for_each(|i| info!(i, "after the move")));
    assert!(setup.flush(10).complete, "{:?}", setup.stats);
    setup.assert_accounted();
    assert_eq!(setup.stats.published(), 200, "{:?}", setup.stats);
    assert_eq!(setup.stats.failed(), 0, "{:?}", setup.stats);
    let calls = cluster.command_calls("spublish");
    let on_new = calls.iter().find(|(port, _)| *port == to.port());
    assert!(
        on_new.is_some_and(|(_, n)| *n >= 100),
        "the new owner runs the lines: {calls:?}"
    );
}
