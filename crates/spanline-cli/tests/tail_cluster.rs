//! `spanline tail --cluster` live (sharded pub/sub) on a real 3-master
//! Redis Cluster: what it says on stderr and when. Idle is not lost; "live"
//! is said once every shard is subscribed, and a line published right
//! after it is shown; a node that dies or freezes is said once, and
//! followed again when it answers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report
#![allow(clippy::disallowed_macros)] // timings, shown with --nocapture

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use spanline_testkit::{KillOnDrop, RedisCluster};

const BIN: &str = env!("CARGO_BIN_EXE_spanline");

/// A running `spanline tail --cluster --json`, its stdout's messages and
/// its stderr's lines collected as they come.
struct Tail {
    child: KillOnDrop,
    messages: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    started: Instant,
}

impl Tail {
    fn start(cluster: &RedisCluster, args: &[&str]) -> Self {
        let mut child = KillOnDrop(
            Command::new(BIN)
                .args([
                    "tail",
                    "--cluster",
                    "--redis",
                    &cluster.urls().join(","),
                    "--json",
                ])
                .args(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let messages = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        {
            let messages = messages.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    let value: serde_json::Value = serde_json::from_str(&line).unwrap();
                    lock(&messages).push(value["message"].as_str().unwrap().to_string());
                }
            });
        }
        {
            let stderr = stderr.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines() {
                    let Ok(line) = line else { break };
                    lock(&stderr).push(line);
                }
            });
        }
        Self {
            child,
            messages,
            stderr,
            started: Instant::now(),
        }
    }

    fn stderr(&self) -> Vec<String> {
        lock(&self.stderr).clone()
    }

    fn count(&self, what: &str) -> usize {
        self.stderr().iter().filter(|l| l.contains(what)).count()
    }

    /// Waits until a stderr line contains `what`; returns it.
    #[track_caller]
    fn wait_said(&self, what: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.stderr().into_iter().find(|l| l.contains(what)) {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "{what:?} not said within {timeout:?}; stderr: {:#?}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits for the "live" notice; returns how long it took from the start.
    #[track_caller]
    fn wait_live(&self) -> Duration {
        let line = self.wait_said("(live)", Duration::from_secs(20));
        let took = self.started.elapsed();
        eprintln!("live after {took:?}: {line}");
        took
    }

    /// Waits until `n` messages were printed (or `timeout`); returns them, sorted.
    fn wait_messages(&self, n: usize, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = lock(&self.messages).clone();
            if got.len() >= n || Instant::now() >= deadline {
                let mut got = got;
                got.sort();
                return got;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits for `tail` to end by itself (`--count`); its exit status.
    fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "tail did not end; stderr: {:#?}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn line(msg: &str) -> String {
    format!(r#"{{"level":"INFO","message":"{msg}","target":"app"}}"#)
}

/// The port of the master of each channel, asked while every node answers
/// (a frozen node would hang the question later).
fn owners(cluster: &RedisCluster, channels: &[String]) -> BTreeMap<String, u16> {
    channels
        .iter()
        .map(|c| (c.clone(), cluster.node_for(c).port()))
        .collect()
}

/// `SPUBLISH` on the master at `port`; how many subscribers got it.
fn spublish(port: u16, channel: &str, payload: &str) -> i64 {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
    let mut con = client
        .get_connection_with_timeout(Duration::from_secs(2))
        .unwrap();
    con.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    redis::cmd("SPUBLISH")
        .arg(channel)
        .arg(payload)
        .query(&mut con)
        .unwrap()
}

/// One line on each of `channels`, published on its master; the messages.
fn publish_each(owners: &BTreeMap<String, u16>, channels: &[String], tag: &str) -> Vec<String> {
    let mut sent = Vec::new();
    for (i, channel) in channels.iter().enumerate() {
        let msg = format!("{tag}{i:02}");
        let got = spublish(owners[channel], channel, &line(&msg));
        assert_eq!(got, 1, "{channel}: tail is subscribed on its master");
        sent.push(msg);
    }
    sent.sort();
    sent
}

fn pings(cluster: &RedisCluster) -> u64 {
    cluster
        .command_calls("ping")
        .into_iter()
        .map(|(_, n)| n)
        .sum()
}

#[test]
fn an_idle_healthy_cluster_followed_for_30_s_raises_no_alarm() {
    let cluster = RedisCluster::start(3);
    // No count stored: the default 16 shards, several per master (one
    // SSUBSCRIBE of them all on a master was refused: CROSSSLOT).
    let shards = spanline_redis::read::global_shards(&spanline_redis::Channels::default(), 16);
    let owners = owners(&cluster, &shards);
    let tail = Tail::start(&cluster, &["--global"]);
    tail.wait_live();
    let pings_before = pings(&cluster);
    std::thread::sleep(Duration::from_secs(30));
    // Idle was checked (PINGs on the subscriptions), and found healthy.
    assert!(
        pings(&cluster) >= pings_before + 3 * 10,
        "the subscriptions were pinged while idle"
    );
    assert_eq!(
        tail.stderr(),
        ["spanline: following logs:global (16 shards) on 3 masters (live)"],
        "one notice, no alarm"
    );
    // After 30 s of quiet, the first line of each shard is shown.
    let sent = publish_each(&owners, &shards, "after-idle-");
    assert_eq!(tail.wait_messages(16, Duration::from_secs(10)), sent);
    assert_eq!(tail.stderr().len(), 1, "{:#?}", tail.stderr());
}

#[test]
fn every_line_published_right_after_the_live_notice_is_shown() {
    let cluster = RedisCluster::start(3);
    let channels = spanline_redis::Channels::default();
    let stored_key = spanline_redis::read::global_shards_key(&channels);
    let mut took = Vec::new();
    // The default 16 shards; 3 (one per master); 5, as the publisher
    // stored it; a job's channel.
    for (round, (args, names)) in [
        (
            vec!["--global"],
            spanline_redis::read::global_shards(&channels, 16),
        ),
        (
            vec!["--global", "--shards", "3"],
            spanline_redis::read::global_shards(&channels, 3),
        ),
        (
            vec!["--global"],
            spanline_redis::read::global_shards(&channels, 5),
        ),
        (
            vec!["--job", "build_1"],
            vec![channels.job("build_1").unwrap()],
        ),
    ]
    .into_iter()
    .enumerate()
    {
        if round == 2 {
            let _: () = redis::cmd("SET")
                .arg(&stored_key)
                .arg(5)
                .query(
                    &mut cluster
                        .node_for(&stored_key)
                        .client()
                        .get_connection()
                        .unwrap(),
                )
                .unwrap();
        }
        let owners = owners(&cluster, &names);
        for attempt in 0..3 {
            let count = names.len().to_string();
            let mut tail = Tail::start(&cluster, &[&args[..], &["--count", &count]].concat());
            took.push(tail.wait_live());
            // Right after the notice: nothing may be missed.
            let sent = publish_each(&owners, &names, &format!("r{round}a{attempt}-"));
            assert!(tail.wait_exit(Duration::from_secs(10)).success());
            assert_eq!(
                tail.wait_messages(names.len(), Duration::from_secs(1)),
                sent,
                "{args:?}: {:#?}",
                tail.stderr()
            );
            assert_eq!(tail.stderr().len(), 1, "{:#?}", tail.stderr());
        }
    }
    eprintln!("time to live: {took:?}");
    // Once it took 4 to 8 s (and never came with 16 shards).
    assert!(took.iter().all(|t| *t < Duration::from_secs(5)), "{took:?}");
}

#[test]
fn a_killed_master_is_said_once_and_the_other_masters_keep_flowing() {
    let mut cluster = RedisCluster::start(3);
    let shards = spanline_redis::read::global_shards(&spanline_redis::Channels::default(), 16);
    let owners = owners(&cluster, &shards);
    let tail = Tail::start(&cluster, &["--global"]);
    tail.wait_live();
    let killed = cluster.kill_master_of(&shards[0]);
    let alarm = tail.wait_said("lost a node", Duration::from_secs(10));
    assert!(
        alarm.contains(&format!("127.0.0.1:{killed}")) && alarm.contains("missing"),
        "{alarm}"
    );
    // The lines of the other masters keep coming while the dead one is
    // retried (and the cluster, allowed sharded pub/sub when down, lets
    // them through).
    let alive: Vec<String> = shards
        .iter()
        .filter(|s| owners[*s] != killed)
        .cloned()
        .collect();
    let sent = publish_each(&owners, &alive, "alive-");
    assert_eq!(
        tail.wait_messages(alive.len(), Duration::from_secs(10)),
        sent
    );
    // Said once, not once per retry.
    std::thread::sleep(Duration::from_secs(10));
    assert_eq!(tail.count("lost a node"), 1, "{:#?}", tail.stderr());
    assert_eq!(tail.stderr().len(), 2, "{:#?}", tail.stderr());
}

#[test]
fn a_frozen_master_is_said_once_and_followed_again_when_it_answers() {
    let cluster = RedisCluster::start(3);
    let shards = spanline_redis::read::global_shards(&spanline_redis::Channels::default(), 16);
    let owners = owners(&cluster, &shards);
    let tail = Tail::start(&cluster, &["--global"]);
    tail.wait_live();
    let frozen_port = owners[&shards[0]];
    let frozen = cluster.node_for(&shards[0]);
    let at = Instant::now();
    frozen.freeze();
    // No connection breaks: only the unanswered PINGs say it.
    let alarm = tail.wait_said("lost a node", Duration::from_secs(20));
    let detected = at.elapsed();
    eprintln!("frozen master said after {detected:?}: {alarm}");
    assert!(
        alarm.contains(&format!("127.0.0.1:{frozen_port}")) && alarm.contains("PING"),
        "{alarm}"
    );
    std::thread::sleep(Duration::from_secs(5));
    frozen.thaw();
    let again = tail.wait_said("again on", Duration::from_secs(30));
    eprintln!(
        "followed again {:?} after the freeze: {again}",
        at.elapsed()
    );
    assert!(
        again.contains(&format!("127.0.0.1:{frozen_port}")),
        "{again}"
    );
    cluster.wait_ok(Duration::from_secs(20));
    let sent = publish_each(&owners, &shards, "thawed-");
    assert_eq!(tail.wait_messages(16, Duration::from_secs(10)), sent);
    assert_eq!(tail.count("lost a node"), 1, "{:#?}", tail.stderr());
    assert_eq!(tail.count("(live)"), 2, "{:#?}", tail.stderr());
    assert_eq!(tail.stderr().len(), 3, "{:#?}", tail.stderr());
}

/// `CLUSTER MYID` of the node at `port`.
fn node_id(port: u16) -> String {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
    redis::cmd("CLUSTER")
        .arg("MYID")
        .query(&mut client.get_connection().unwrap())
        .unwrap()
}

#[test]
fn a_shard_whose_slot_moves_is_followed_on_its_new_master() {
    let cluster = RedisCluster::start(3);
    let shards = spanline_redis::read::global_shards(&spanline_redis::Channels::default(), 3);
    let mut owners = owners(&cluster, &shards);
    let tail = Tail::start(&cluster, &["--global", "--shards", "3"]);
    tail.wait_live();
    // The empty slot of the first shard, given to the second shard's master
    // (a resharding step): its old master unsubscribes the channel.
    let (from, to) = (owners[&shards[0]], owners[&shards[1]]);
    let slot: u16 = redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(&shards[0])
        .query(
            &mut redis::Client::open(format!("redis://127.0.0.1:{from}"))
                .unwrap()
                .get_connection()
                .unwrap(),
        )
        .unwrap();
    let to_id = node_id(to);
    for port in [to, from, owners[&shards[2]]] {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
        let _: () = redis::cmd("CLUSTER")
            .arg("SETSLOT")
            .arg(slot)
            .arg("NODE")
            .arg(&to_id)
            .query(&mut client.get_connection().unwrap())
            .unwrap();
    }
    let moved = tail.wait_said("moved", Duration::from_secs(10));
    assert!(moved.contains(&shards[0]), "{moved}");
    let again = tail.wait_said("again on", Duration::from_secs(10));
    assert!(
        again.contains(&shards[0]) && again.contains(&format!("127.0.0.1:{to}")),
        "{again}"
    );
    owners.insert(shards[0].clone(), to);
    let sent = publish_each(&owners, &shards, "moved-");
    assert_eq!(tail.wait_messages(3, Duration::from_secs(10)), sent);
    assert_eq!(tail.count("lost a node"), 0, "{:#?}", tail.stderr());
    assert_eq!(tail.stderr().len(), 3, "{:#?}", tail.stderr());
}
