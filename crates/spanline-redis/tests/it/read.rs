//! The reading API (`spanline_redis::read`) on a real 3-master cluster:
//! a sharded subscription follows every shard of the global feed, and a
//! quiet one is not taken for lost; the streams a publisher wrote read
//! back, merged in time order, with the shard count it stored.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use spanline_redis::read::{self, ClusterMap, Event, ShardedSubscription, StreamMerge};
use spanline_redis::Channels;
use spanline_redis::{Mode, RedisLayer};
use spanline_testkit::RedisCluster;
use tracing::{info, info_span};

use crate::publish::Setup;

fn map(cluster: &RedisCluster) -> ClusterMap {
    ClusterMap::new(&cluster.urls().join(",")).unwrap()
}

#[test]
fn a_sharded_subscription_follows_every_shard_and_a_quiet_one_is_not_lost() {
    let cluster = RedisCluster::start(3);
    let shards = read::global_shards(&Channels::default(), 16);
    let feed = ShardedSubscription::start(&map(&cluster), shards.clone());
    // Every shard confirmed, on the 3 masters.
    let (mut subscribed, mut masters) = (BTreeSet::new(), BTreeSet::new());
    let deadline = Instant::now() + Duration::from_secs(15);
    while subscribed.len() < shards.len() {
        assert!(Instant::now() < deadline, "subscribed: {subscribed:?}");
        match feed.recv_timeout(Duration::from_millis(200)) {
            Ok(Event::Subscribed { channels, node }) => {
                subscribed.extend(channels);
                masters.insert(node);
            }
            Ok(other) => panic!("before any line: {other:?}"),
            Err(_) => {}
        }
    }
    assert_eq!(masters.len(), 3, "{masters:?}");
    // 8 s of quiet (the old follower said "lost" after ~4 s): nothing.
    let quiet = Instant::now() + Duration::from_secs(8);
    while Instant::now() < quiet {
        if let Ok(event) = feed.recv_timeout(Duration::from_millis(200)) {
            panic!("a quiet cluster is not a lost one: {event:?}");
        }
    }
    // Then one line per shard, each published on its master.
    for shard in &shards {
        let mut con = cluster.node_for(shard).client().get_connection().unwrap();
        let _: i64 = redis::cmd("SPUBLISH")
            .arg(shard)
            .arg(format!("line of {shard}"))
            .query(&mut con)
            .unwrap();
    }
    let mut got = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.len() < shards.len() && Instant::now() < deadline {
        match feed.recv_timeout(Duration::from_millis(200)) {
            Ok(Event::Line(line)) => {
                got.insert(String::from_utf8(line).unwrap());
            }
            Ok(other) => panic!("{other:?}"),
            Err(_) => {}
        }
    }
    let sent: BTreeSet<String> = shards.iter().map(|s| format!("line of {s}")).collect();
    assert_eq!(got, sent);
}

#[test]
fn the_streams_of_a_sharded_global_feed_read_back_in_time_order() {
    let cluster = RedisCluster::start(3);
    let urls = cluster.urls();
    let nodes: Vec<&str> = urls.iter().map(String::as_str).collect();
    let setup = Setup::new(
        RedisLayer::builder_cluster(&nodes)
            .global_shards(3)
            .mode(Mode::Streams),
    );
    setup.run(|| {
        let _job = info_span!("job", job_id = "read_back").entered();
        (0..600).for_each(|i| info!(i, "streamed"));
    });
    assert!(setup.flush(10).complete);
    let map = map(&cluster);
    let channels = Channels::default();
    assert_eq!(map.stored_global_shards(&channels).unwrap(), 3);
    let shards = read::global_shards(&channels, 3);
    // Pages of 100: each shard is behind until a short page.
    let mut merge = StreamMerge::new(shards.len());
    let mut after = vec!["0".to_string(); shards.len()];
    let mut order = Vec::new();
    let mut done = vec![false; shards.len()];
    while done.iter().any(|d| !d) {
        for (i, key) in shards.iter().enumerate() {
            let mut con = map.connect(key, Duration::from_secs(2)).unwrap();
            let page = read::read_stream(&mut con, key, &after[i], 100, None).unwrap();
            let short = page.len() < 100;
            for entry in page {
                after[i].clone_from(&entry.id);
                merge.push(i, &after[i], entry);
            }
            // After the push: a push marks its stream behind again (more
            // pages may follow), so a short page's `caught_up` comes last,
            // as in `tail --cluster`. Said first, the shard stayed behind
            // at its last id and held newer lines of the others for ever
            // (a flaky loss of the last few lines).
            if short {
                merge.caught_up(i);
                done[i] = true;
            }
        }
        while let Some(entry) = merge.ready() {
            order.push(entry);
        }
    }
    // (Besides the job's end.)
    let mut numbers: Vec<u64> = order
        .iter()
        .filter_map(|e| {
            let line: serde_json::Value = serde_json::from_slice(&e.line).unwrap();
            line["i"].as_u64()
        })
        .collect();
    // In time order: the masters' clocks, to the millisecond (within one,
    // lines of different shards have no order).
    assert!(order
        .windows(2)
        .all(|w| read::entry_order(&w[0].id).0 <= read::entry_order(&w[1].id).0));
    numbers.sort_unstable();
    assert_eq!(numbers, (0..600).collect::<Vec<_>>(), "every line, once");
    // The job's stream: its backlog, oldest first, and its first id.
    let key = channels.job("read_back").unwrap();
    let mut con = map.connect(&key, Duration::from_secs(2)).unwrap();
    let backlog = read::last_entries(&mut con, &key, 10).unwrap();
    assert_eq!(backlog.len(), 10);
    assert!(read::entry_order(&backlog[0].id) < read::entry_order(&backlog[9].id));
    // Earlier than the backlog: the entries just before it, oldest first.
    let earlier = read::entries_before(&mut con, &key, &backlog[0].id, 3).unwrap();
    assert_eq!(earlier.len(), 3, "the job has more than 13 lines");
    assert!(read::entry_order(&earlier[0].id) < read::entry_order(&earlier[2].id));
    let next = read::read_stream(&mut con, &key, &earlier[2].id, 1, None).unwrap();
    assert_eq!(next[0].id, backlog[0].id, "nothing between them");
    let first = read::first_id(&mut con, &key).unwrap().unwrap();
    let all = read::read_stream(&mut con, &key, "0", 1, None).unwrap();
    assert_eq!(first, all[0].id);
    assert_eq!(read::first_id(&mut con, "logs:no_such_job").unwrap(), None);
}
