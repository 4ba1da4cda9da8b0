//! [`ShardedSubscription`]: sharded pub/sub channels followed on a Redis
//! Cluster, for as long as the subscription is kept.
//!
//! Sharded pub/sub (`SPUBLISH`) reaches only the subscribers of the shard
//! that owns the channel's slot, so each channel is followed with
//! `SSUBSCRIBE` on its owner, one connection per owner (one `SSUBSCRIBE`
//! per channel on it: a command's channels must share a slot).
//!
//! Each owner's connection has a thread of its own, which says when its
//! channels are subscribed and when the node is lost: its connection
//! broke, or it answered no `PING` for 5 s. A quiet channel
//! is not a lost one: the connection speaks RESP3, where lines come as
//! pushes that the redis crate never mistakes for the late reply to a read
//! that timed out (in RESP2 it drops the first reply after each timeout,
//! line or not, so a quiet connection looked lost every few seconds). The
//! thread then finds where the channels live now (the same node when it
//! comes back, or the replica that took over) and follows them there,
//! while the other owners' lines keep coming. A channel whose slot moves
//! (a resharding) is followed on its new master by a thread of its own.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::{PushKind, RedisError, RedisResult, Value};

use super::cluster_map::{ClusterMap, Node};
use super::stream::text;

/// How long connecting and subscribing may take.
const TIMEOUT: Duration = Duration::from_secs(2);

/// A subscription quiet for this long is asked for a `PING`.
const IDLE: Duration = Duration::from_secs(2);

/// A node that sends nothing for this long after a `PING` (no answer, no
/// line) has stopped answering: it is frozen or cut off.
const ANSWER: Duration = Duration::from_secs(5);

/// The longest wait between two attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(2);

fn address(node: &Node) -> String {
    format!("{}:{}", node.0, node.1)
}

/// What a [`ShardedSubscription`] reports. Nodes are named `host:port`.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// A line published on one of the channels (the payload as published).
    Line(Vec<u8>),
    /// `channels` are subscribed on `node`: every line published on them
    /// from now on comes.
    Subscribed {
        /// The channels, a group of those asked for.
        channels: Vec<String>,
        /// Their master.
        node: String,
    },
    /// The connection to `node` broke, or the node stopped answering:
    /// lines published on `channels` are missing until they are
    /// [`Subscribed`](Event::Subscribed) again (on that node when it
    /// answers, or on the master that takes over).
    Lost {
        /// The channels that node served.
        channels: Vec<String>,
        /// The node.
        node: String,
        /// Why, in words, without the password.
        why: String,
    },
    /// `node` unsubscribed `channel`: its slot moved to another master (a
    /// resharding), where it is followed next; lines published on it
    /// meanwhile may be missing.
    Moved {
        /// The channel.
        channel: String,
        /// The master it moved from.
        node: String,
    },
    /// `channels` cannot be followed yet: the slot map cannot be read
    /// (`node` is `None`), or their master refuses or does not answer.
    /// Tried again with back-off; said once per group until it works, and
    /// not after a [`Lost`](Event::Lost).
    Retrying {
        /// The channels.
        channels: Vec<String>,
        /// Their master, when known.
        node: Option<String>,
        /// What went wrong (its text may hold the password: see
        /// [`ClusterMap::password`]).
        error: RedisError,
    },
}

/// Sharded pub/sub channels followed on a Redis Cluster (see the module
/// docs): start it, then receive [`Event`]s. Following stops when it is
/// dropped (its threads end within a couple of seconds).
///
/// ```no_run
/// use spanline_redis::read::{self, ClusterMap, Event, ShardedSubscription};
/// let map = ClusterMap::new("redis://10.0.0.1:6379,redis://10.0.0.2:6379")?;
/// let channels = spanline_redis::Channels::default();
/// let shards = read::global_shards(&channels, map.stored_global_shards(&channels)?);
/// let feed = ShardedSubscription::start(&map, shards);
/// while let Some(event) = feed.recv() {
///     match event {
///         Event::Line(line) => println!("{}", String::from_utf8_lossy(&line)),
///         other => eprintln!("{other:?}"),
///     }
/// }
/// # Ok::<(), redis::RedisError>(())
/// ```
#[derive(Debug)]
pub struct ShardedSubscription {
    rx: mpsc::Receiver<Event>,
    stop: Arc<AtomicBool>,
}

impl ShardedSubscription {
    /// Follows `channels` on the cluster of `map`, each on its master.
    ///
    /// See [`ShardedSubscription`]'s example.
    pub fn start(map: &ClusterMap, channels: Vec<String>) -> Self {
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            map: map.clone(),
            stop: stop.clone(),
        });
        if !channels.is_empty() {
            spawn_group(&shared, None, channels, &tx);
        }
        Self { rx, stop }
    }

    /// The next event, waiting for it; `None` when nothing is followed any
    /// more (no channel was given).
    ///
    /// See [`ShardedSubscription`]'s example.
    pub fn recv(&self) -> Option<Event> {
        self.rx.recv().ok()
    }

    /// The next event, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`] when none came in time,
    /// [`RecvTimeoutError::Disconnected`] when nothing is followed any more.
    ///
    /// ```no_run
    /// # let map = spanline_redis::read::ClusterMap::new("redis://10.0.0.1:6379")?;
    /// let feed = spanline_redis::read::ShardedSubscription::start(&map, vec!["logs:build_7".into()]);
    /// while let Ok(event) = feed.recv_timeout(std::time::Duration::from_millis(500)) {
    ///     println!("{event:?}");
    /// }
    /// # Ok::<(), redis::RedisError>(())
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Event, RecvTimeoutError> {
        self.rx.recv_timeout(timeout)
    }
}

impl Drop for ShardedSubscription {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// What every subscription thread shares.
struct Shared {
    map: ClusterMap,
    stop: Arc<AtomicBool>,
}

impl Shared {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Waits before the next attempt: 100 ms, doubling to 2 s; false once
    /// stopped.
    fn backoff(&self, attempt: &mut u32) -> bool {
        let wait = Duration::from_millis(100u64 << (*attempt).min(5)).min(BACKOFF_MAX);
        *attempt += 1;
        let until = Instant::now() + wait;
        while Instant::now() < until {
            if self.stopped() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50).min(wait));
        }
        !self.stopped()
    }

    /// A connection to `node` subscribed to `channels`, each confirmed.
    /// Lines that come before the last confirmation are sent on `tx`.
    fn subscribe_on(
        &self,
        node: &Node,
        channels: &[String],
        tx: &mpsc::Sender<Event>,
    ) -> RedisResult<redis::Connection> {
        let info = self.map.node(&node.0, node.1, true);
        let mut con = redis::Client::open(info)?.get_connection_with_timeout(TIMEOUT)?;
        con.set_read_timeout(Some(TIMEOUT))?;
        con.set_write_timeout(Some(TIMEOUT))?;
        // One SSUBSCRIBE per channel: the channels of one command must
        // share a slot (else CROSSSLOT), and a master owns many slots.
        let mut packed = Vec::new();
        for channel in channels {
            packed.extend(redis::cmd("SSUBSCRIBE").arg(channel).get_packed_command());
        }
        con.send_packed_command(&packed)?;
        let mut waiting: BTreeSet<&str> = channels.iter().map(String::as_str).collect();
        while !waiting.is_empty() {
            match con.recv_response()? {
                Value::Push {
                    kind: PushKind::SSubscribe,
                    data,
                } => {
                    if let Some(channel) = data.first().and_then(text) {
                        waiting.remove(channel.as_str());
                    }
                }
                Value::Push {
                    kind: PushKind::SMessage,
                    data,
                } => {
                    if let Some(Value::BulkString(payload)) = data.get(1) {
                        let _ = tx.send(Event::Line(payload.clone()));
                    }
                }
                // MOVED (the slot map changed meanwhile), CLUSTERDOWN, NOPERM…
                Value::ServerError(e) => {
                    return Err(RedisError::from((
                        redis::ErrorKind::Client,
                        "SSUBSCRIBE refused",
                        e.to_string(),
                    )))
                }
                _ => {}
            }
        }
        con.set_read_timeout(Some(IDLE))?;
        Ok(con)
    }

    /// `text` without the password.
    fn scrub(&self, text: &str) -> String {
        match self.map.password() {
            Some(password) if !password.is_empty() => text.replace(password, "***"),
            _ => text.to_string(),
        }
    }
}

/// Follows `channels` on a thread of their own, on `node` if given (else
/// where the slot map says).
fn spawn_group(
    shared: &Arc<Shared>,
    node: Option<Node>,
    channels: Vec<String>,
    tx: &mpsc::Sender<Event>,
) {
    let (thread_shared, thread_tx) = (shared.clone(), tx.clone());
    let group = channels.clone();
    let spawned = std::thread::Builder::new()
        .name("spanline-sharded".into())
        .spawn(move || follow_group(&thread_shared, node, group, &thread_tx));
    if let Err(e) = spawned {
        let _ = tx.send(Event::Lost {
            channels,
            node: String::new(),
            why: format!("no thread could be started to follow them: {e}"),
        });
    }
}

/// Subscribes to `channels` on their master and reads them until the
/// subscription is dropped: after a loss, subscribes again where they live
/// then. Channels found on other masters go to threads of their own.
fn follow_group(
    shared: &Arc<Shared>,
    mut node: Option<Node>,
    mut channels: Vec<String>,
    tx: &mpsc::Sender<Event>,
) {
    let mut attempt = 0;
    // A failure to subscribe is said until the first subscription; after
    // a loss, the alarm said it already: retry quietly.
    let mut quiet = false;
    while !shared.stopped() {
        let target = match node.take() {
            Some(node) => node,
            None => match shared.map.owners(&channels) {
                Ok(owners) => {
                    let mut owners = owners.into_iter();
                    let Some((first, mine)) = owners.next() else {
                        return;
                    };
                    for (other, group) in owners {
                        spawn_group(shared, Some(other), group, tx);
                    }
                    channels = mine;
                    first
                }
                Err(error) => {
                    let retrying = Event::Retrying {
                        channels: channels.clone(),
                        node: None,
                        error,
                    };
                    if !quiet && tx.send(retrying).is_err() {
                        return;
                    }
                    quiet = true;
                    if !shared.backoff(&mut attempt) {
                        return;
                    }
                    continue;
                }
            },
        };
        match shared.subscribe_on(&target, &channels, tx) {
            Ok(con) => {
                attempt = 0;
                quiet = true;
                let subscribed = Event::Subscribed {
                    channels: channels.clone(),
                    node: address(&target),
                };
                if tx.send(subscribed).is_err() {
                    return;
                }
                let Some(why) = read_messages(shared, con, &target, &mut channels, tx) else {
                    return;
                };
                let lost = Event::Lost {
                    channels: channels.clone(),
                    node: address(&target),
                    why,
                };
                if tx.send(lost).is_err() {
                    return;
                }
            }
            Err(error) => {
                let retrying = Event::Retrying {
                    channels: channels.clone(),
                    node: Some(address(&target)),
                    error,
                };
                if !quiet && tx.send(retrying).is_err() {
                    return;
                }
                quiet = true;
                if !shared.backoff(&mut attempt) {
                    return;
                }
            }
        }
    }
}

/// Sends `PING` `n` times.
fn ping(con: &mut redis::Connection, n: usize) -> RedisResult<()> {
    let packed = redis::cmd("PING").get_packed_command().repeat(n);
    con.send_packed_command(&packed)
}

/// Reads lines from `node` until the connection goes or the node stops
/// answering: why, then. `None` when the subscription is dropped, or every
/// channel moved to another master (handed to threads of their own).
fn read_messages(
    shared: &Arc<Shared>,
    mut con: redis::Connection,
    node: &Node,
    channels: &mut Vec<String>,
    tx: &mpsc::Sender<Event>,
) -> Option<String> {
    // Since when a PING waits for its answer, with nothing heard since.
    let mut asked: Option<Instant> = None;
    while !shared.stopped() {
        match con.recv_response() {
            Ok(Value::Push { kind, data }) => {
                if let Some(since) = &mut asked {
                    *since = Instant::now();
                }
                match kind {
                    PushKind::SMessage => {
                        if let Some(Value::BulkString(payload)) = data.get(1) {
                            if tx.send(Event::Line(payload.clone())).is_err() {
                                return None;
                            }
                        }
                    }
                    PushKind::SUnsubscribe => {
                        let Some(channel) = data.first().and_then(text) else {
                            continue;
                        };
                        if !channels.contains(&channel) {
                            continue;
                        }
                        channels.retain(|c| *c != channel);
                        let moved = Event::Moved {
                            channel: channel.clone(),
                            node: address(node),
                        };
                        if tx.send(moved).is_err() {
                            return None;
                        }
                        spawn_group(shared, None, vec![channel], tx);
                        if channels.is_empty() {
                            return None;
                        }
                    }
                    _ => {}
                }
            }
            // A reply: the answer to the last PING sent (see below).
            Ok(_) => asked = None,
            // Quiet. The redis crate drops the first reply that follows a
            // read that timed out (as the late answer to it): so each
            // timeout sends one PING to be dropped, the first one of a
            // quiet spell one more, whose answer shows the node is there.
            Err(e) if e.is_timeout() => {
                let sent = match asked {
                    Some(since) if since.elapsed() >= ANSWER => {
                        return Some(format!("it answered no PING for {} s", ANSWER.as_secs()));
                    }
                    Some(_) => ping(&mut con, 1),
                    None => {
                        asked = Some(Instant::now());
                        ping(&mut con, 2)
                    }
                };
                if let Err(e) = sent {
                    return Some(shared.scrub(&e.to_string()));
                }
            }
            Err(e) => return Some(shared.scrub(&e.to_string())),
        }
    }
    None
}
