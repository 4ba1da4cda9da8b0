//! `spanline tail --cluster`: follow channels and streams on a Redis
//! Cluster.
//!
//! Sharded pub/sub (`SPUBLISH`) reaches only the subscribers of the shard
//! that owns the channel's slot, so each channel is followed with
//! `SSUBSCRIBE` on its owner, one connection per owner (one `SSUBSCRIBE`
//! per channel on it: a command's channels must share a slot). The global
//! feed is several channels (see `spanline_core::cluster`), followed
//! together and interleaved as lines arrive; on streams, merged in time
//! order.
//!
//! Each owner's connection has a thread of its own, which says when its
//! channels are subscribed (once all are, `tail` says it is live) and when
//! the node is lost: its connection broke, or it answered no `PING` for
//! `ANSWER` (5 s). A quiet channel is not a lost one. The thread then finds
//! where the channels live now (the same node when it comes back, or the
//! replica that took over) and follows them there, while the other
//! owners' lines keep coming.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::process::ExitCode;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use redis::{
    ConnectionAddr, ConnectionInfo, IntoConnectionInfo, ProtocolVersion, PushKind, RedisResult,
    Value,
};
use spanline_redis::ClusterMap;

use crate::tail::Output;

const TIMEOUT: Duration = Duration::from_secs(2);

/// A subscription quiet for this long is asked for a `PING`.
const IDLE: Duration = Duration::from_secs(2);

/// A node that sends nothing for this long after a `PING` (no answer, no
/// line) has stopped answering: it is frozen or cut off.
const ANSWER: Duration = Duration::from_secs(5);

/// A master, as `(host, port)`.
type Node = (String, u16);

fn address(node: &Node) -> String {
    format!("{}:{}", node.0, node.1)
}

/// The cluster to follow.
#[derive(Clone)]
pub(crate) struct Cluster {
    map: ClusterMap,
    /// The seed nodes' settings: the first one's credentials and TLS
    /// settings serve every node.
    seeds: Vec<ConnectionInfo>,
}

impl Cluster {
    /// The cluster of the comma-separated `urls`.
    pub(crate) fn new(urls: &str) -> io::Result<Self> {
        crate::server::check_cluster_urls(urls)?;
        let invalid = |e: redis::RedisError| io::Error::other(format!("invalid Redis URL: {e}"));
        let map = ClusterMap::new(urls).map_err(invalid)?;
        let seeds = urls
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(IntoConnectionInfo::into_connection_info)
            .collect::<RedisResult<Vec<_>>>()
            .map_err(invalid)?;
        if seeds.is_empty() {
            return Err(io::Error::other("invalid Redis URL: no node URL"));
        }
        Ok(Self { map, seeds })
    }

    /// `e` as a sentence naming the cluster (by its first node).
    fn failure(&self, e: &redis::RedisError) -> String {
        let cause = crate::server::cause(e, None, self.map.password());
        if cause.unreachable {
            format!(
                "cannot reach the Redis cluster at {}: {}",
                self.map.address(),
                cause.text
            )
        } else {
            format!("the Redis cluster at {} {}", self.map.address(), cause.text)
        }
    }

    /// Retries `f` with back-off until it works, saying once that the
    /// cluster does not answer.
    fn retry<T>(
        &self,
        said: &mut bool,
        mut f: impl FnMut(&ClusterMap) -> redis::RedisResult<T>,
    ) -> T {
        let mut attempt = 0;
        loop {
            match f(&self.map) {
                Ok(value) => {
                    *said = false;
                    return value;
                }
                Err(e) => {
                    if !*said {
                        eprintln!("spanline: {}; retrying", self.failure(&e));
                        *said = true;
                    }
                    crate::tail::backoff(&mut attempt);
                }
            }
        }
    }

    /// A connection to the owner of `key`, retried until made.
    fn owner_connection(&self, key: &str, said: &mut bool) -> redis::Connection {
        self.retry(said, |map| map.connect(key, TIMEOUT))
    }
}

/// How many shards the publisher spread the global feed over: what it
/// stored in `{prefix}:global:shards`, else the default on a cluster.
pub(crate) fn global_shards(cluster: &Cluster, channels: &spanline_core::Channels) -> usize {
    let key = channels.global_shards_key();
    let mut said = false;
    let mut con = cluster.owner_connection(&key, &mut said);
    let stored: redis::RedisResult<Option<usize>> = redis::cmd("GET").arg(&key).query(&mut con);
    stored
        .ok()
        .flatten()
        .unwrap_or(spanline_core::cluster::DEFAULT_GLOBAL_SHARDS)
}

/// A range of slots and the master that owns them: (first, last, master).
type SlotRange = (u16, u16, Node);

impl Cluster {
    /// The slot map (`CLUSTER SLOTS`) of the first seed that gives one.
    fn slot_map(&self) -> RedisResult<Vec<SlotRange>> {
        let mut last = None;
        for seed in &self.seeds {
            match slots_of(seed) {
                Ok(ranges) if !ranges.is_empty() => return Ok(ranges),
                Ok(_) => {}
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            redis::RedisError::from((redis::ErrorKind::Client, "no node knows the slot map"))
        }))
    }

    /// `channels` by the master that owns each now (one `CLUSTER SLOTS`).
    fn owners(&self, channels: &[String]) -> RedisResult<BTreeMap<Node, Vec<String>>> {
        let ranges = self.slot_map()?;
        let mut owners: BTreeMap<Node, Vec<String>> = BTreeMap::new();
        for channel in channels {
            let slot = spanline_core::key_slot(channel.as_bytes());
            let Some((_, _, node)) = ranges
                .iter()
                .find(|(first, last, _)| (*first..=*last).contains(&slot))
            else {
                return Err(redis::RedisError::from((
                    redis::ErrorKind::Client,
                    "no node owns the slot",
                    format!("{slot} (of {channel})"),
                )));
            };
            owners
                .entry(node.clone())
                .or_default()
                .push(channel.clone());
        }
        Ok(owners)
    }

    /// The settings of `node`: the first seed's, with its address, in
    /// RESP3. In RESP3 lines come as pushes, which the redis crate never
    /// mistakes for the late reply to a read that timed out (in RESP2 it
    /// drops the first reply after each timeout, line or not).
    fn node_info(&self, node: &Node) -> Option<ConnectionInfo> {
        let seed = self.seeds.first()?.clone();
        let mut addr = seed.addr().clone();
        if let ConnectionAddr::Tcp(h, p)
        | ConnectionAddr::TcpTls {
            host: h, port: p, ..
        } = &mut addr
        {
            h.clone_from(&node.0);
            *p = node.1;
        }
        let settings = seed
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        Some(seed.set_addr(addr).set_redis_settings(settings))
    }

    /// A connection to `node` subscribed to `channels`, each confirmed.
    /// Lines that come before the last confirmation are sent on `tx`.
    fn subscribe_on(
        &self,
        node: &Node,
        channels: &[String],
        tx: &mpsc::Sender<Event>,
    ) -> RedisResult<redis::Connection> {
        let info = self.node_info(node).ok_or_else(|| {
            redis::RedisError::from((redis::ErrorKind::InvalidClientConfig, "no node URL"))
        })?;
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
                    return Err(redis::RedisError::from((
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

    /// `e`, met following `what` on `node`, as a sentence.
    fn node_failure(&self, node: &Node, what: &str, e: &redis::RedisError) -> String {
        let cause = crate::server::cause(e, None, self.map.password());
        if cause.unreachable {
            format!(
                "cannot reach {}, the master of {what}: {}",
                address(node),
                cause.text
            )
        } else {
            format!("{}, the master of {what}, {}", address(node), cause.text)
        }
    }
}

/// `CLUSTER SLOTS` of the node at `info`.
fn slots_of(info: &ConnectionInfo) -> RedisResult<Vec<SlotRange>> {
    let mut con = redis::Client::open(info.clone())?.get_connection_with_timeout(TIMEOUT)?;
    con.set_read_timeout(Some(TIMEOUT))?;
    let reply: Vec<Value> = redis::cmd("CLUSTER").arg("SLOTS").query(&mut con)?;
    let asked = match info.addr() {
        ConnectionAddr::Tcp(host, _) | ConnectionAddr::TcpTls { host, .. } => host.clone(),
        _ => String::new(),
    };
    Ok(reply
        .iter()
        .filter_map(|entry| {
            let Value::Array(parts) = entry else {
                return None;
            };
            let first: u16 = redis::from_redis_value_ref(parts.first()?).ok()?;
            let last: u16 = redis::from_redis_value_ref(parts.get(1)?).ok()?;
            let Value::Array(master) = parts.get(2)? else {
                return None;
            };
            let host: String = redis::from_redis_value_ref(master.first()?).ok()?;
            let port: u16 = redis::from_redis_value_ref(master.get(1)?).ok()?;
            // An empty host means "the address you asked me on".
            let host = if host.is_empty() || host == "?" {
                asked.clone()
            } else {
                host
            };
            Some((first, last, (host, port)))
        })
        .collect())
}

fn text(value: &Value) -> Option<String> {
    redis::from_redis_value_ref(value).ok()
}

/// What a subscription thread reports.
enum Event {
    Line(Vec<u8>),
    /// `channels` are subscribed on `node`.
    Subscribed {
        channels: Vec<String>,
        node: Node,
    },
    /// The connection to `node` is gone, or the node stopped answering:
    /// its thread follows `channels` again where they live, and says
    /// `Subscribed` when it does.
    Lost {
        channels: Vec<String>,
        node: Node,
        why: String,
    },
    /// The server unsubscribed `channel`: its slot moved to another master
    /// (a resharding), where a new thread follows it.
    Moved {
        channel: String,
        node: Node,
    },
    /// Channels cannot be followed yet: why (said once per cause).
    Retrying(String),
}

/// What `tail` follows on the cluster, for its messages.
#[derive(Clone)]
pub(crate) struct Feed {
    /// The channel a job's lines go to, or the global feed (`logs:global`).
    pub(crate) name: String,
    pub(crate) channels: Vec<String>,
}

impl Feed {
    /// `group`, some channels of the feed, in words.
    fn part(&self, group: &[String]) -> String {
        match group {
            [one] => one.clone(),
            _ => format!(
                "{} of the {} shards of {}",
                group.len(),
                self.channels.len(),
                self.name
            ),
        }
    }

    /// The whole feed, in words.
    fn whole(&self) -> String {
        match self.channels.as_slice() {
            [one] => one.clone(),
            all => format!("{} ({} shards)", self.name, all.len()),
        }
    }
}

/// Follows `feed` (sharded pub/sub) until `--count` is reached.
pub(crate) fn follow_channels(
    cluster: &Cluster,
    feed: &Feed,
    out: &mut Output,
) -> io::Result<ExitCode> {
    let (tx, rx) = mpsc::channel();
    let shared = Arc::new(Follower {
        cluster: cluster.clone(),
        feed: feed.clone(),
    });
    spawn_follower(&shared, None, feed.channels.clone(), &tx);
    drop(tx);
    // Where each channel is subscribed now (`None`: not yet, or lost).
    let mut following: BTreeMap<String, Option<Node>> =
        feed.channels.iter().map(|c| (c.clone(), None)).collect();
    let mut live = false;
    let mut said = BTreeSet::new();
    loop {
        let Ok(event) = rx.recv() else {
            return Ok(ExitCode::SUCCESS);
        };
        match event {
            Event::Line(payload) => {
                if !out.line(&payload)? {
                    return Ok(ExitCode::SUCCESS);
                }
            }
            Event::Subscribed { channels, node } => {
                let again = channels
                    .iter()
                    .any(|c| following.get(c).is_some_and(Option::is_none));
                for channel in &channels {
                    following.insert(channel.clone(), Some(node.clone()));
                }
                if !live {
                    if following.values().all(Option::is_some) {
                        let masters: BTreeSet<&Node> = following.values().flatten().collect();
                        let n = masters.len();
                        eprintln!(
                            "spanline: following {} on {n} master{} (live)",
                            feed.whole(),
                            if n == 1 { "" } else { "s" }
                        );
                        live = true;
                    }
                } else if again {
                    eprintln!(
                        "spanline: following {} again on {} (live)",
                        feed.part(&channels),
                        address(&node)
                    );
                }
            }
            Event::Lost {
                channels,
                node,
                why,
            } => {
                for channel in &channels {
                    following.insert(channel.clone(), None);
                }
                eprintln!(
                    "spanline: lost a node of the cluster, {} ({why}): lines published on {} \
                     are missing until it is followed again, on that node when it answers or \
                     on the master that takes over",
                    address(&node),
                    feed.part(&channels)
                );
            }
            Event::Moved { channel, node } => {
                following.insert(channel.clone(), None);
                eprintln!(
                    "spanline: {channel} moved from {} to another master; following it there; \
                     lines published on it meanwhile may be missing",
                    address(&node)
                );
            }
            Event::Retrying(why) => {
                if said.insert(why.clone()) {
                    eprintln!("spanline: {why}; retrying");
                }
            }
        }
    }
}

/// What every subscription thread shares.
struct Follower {
    cluster: Cluster,
    feed: Feed,
}

/// Follows `channels` on a thread of their own, on `node` if given (else
/// where the slot map says).
fn spawn_follower(
    shared: &Arc<Follower>,
    node: Option<Node>,
    channels: Vec<String>,
    tx: &mpsc::Sender<Event>,
) {
    let (shared, tx) = (shared.clone(), tx.clone());
    std::thread::spawn(move || follow_group(&shared, node, channels, &tx));
}

/// Subscribes to `channels` on their master and reads them, for as long
/// as `tail` runs: after a loss, subscribes again where they live then.
/// Channels found on other masters go to threads of their own.
fn follow_group(
    shared: &Arc<Follower>,
    mut node: Option<Node>,
    mut channels: Vec<String>,
    tx: &mpsc::Sender<Event>,
) {
    let cluster = &shared.cluster;
    let mut attempt = 0;
    // A failure to subscribe is said until the first subscription; after
    // a loss, the alarm said it already: retry quietly.
    let mut quiet = false;
    loop {
        let target = match node.take() {
            Some(node) => node,
            None => match cluster.owners(&channels) {
                Ok(owners) => {
                    let mut owners = owners.into_iter();
                    let Some((first, mine)) = owners.next() else {
                        return;
                    };
                    for (other, group) in owners {
                        spawn_follower(shared, Some(other), group, tx);
                    }
                    channels = mine;
                    first
                }
                Err(e) => {
                    if !quiet && tx.send(Event::Retrying(cluster.failure(&e))).is_err() {
                        return;
                    }
                    quiet = true;
                    crate::tail::backoff(&mut attempt);
                    continue;
                }
            },
        };
        match cluster.subscribe_on(&target, &channels, tx) {
            Ok(con) => {
                attempt = 0;
                quiet = true;
                let subscribed = Event::Subscribed {
                    channels: channels.clone(),
                    node: target.clone(),
                };
                if tx.send(subscribed).is_err() {
                    return;
                }
                let Some(why) = read_messages(shared, con, &target, &mut channels, tx) else {
                    return;
                };
                let lost = Event::Lost {
                    channels: channels.clone(),
                    node: target,
                    why,
                };
                if tx.send(lost).is_err() {
                    return;
                }
            }
            Err(e) => {
                let why = cluster.node_failure(&target, &shared.feed.part(&channels), &e);
                if !quiet && tx.send(Event::Retrying(why)).is_err() {
                    return;
                }
                quiet = true;
                crate::tail::backoff(&mut attempt);
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
/// answering: why, then. `None` when `tail` is done, or every channel
/// moved to another master (handed to threads of their own).
fn read_messages(
    shared: &Arc<Follower>,
    mut con: redis::Connection,
    node: &Node,
    channels: &mut Vec<String>,
    tx: &mpsc::Sender<Event>,
) -> Option<String> {
    let password = shared.cluster.map.password();
    // Since when a PING waits for its answer, with nothing heard since.
    let mut asked: Option<Instant> = None;
    loop {
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
                            node: node.clone(),
                        };
                        if tx.send(moved).is_err() {
                            return None;
                        }
                        spawn_follower(shared, None, vec![channel], tx);
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
                    return Some(crate::server::scrub(&e.to_string(), password));
                }
            }
            Err(e) => return Some(crate::server::scrub(&e.to_string(), password)),
        }
    }
}

/// One stream's state while following: the last id shown.
struct Stream {
    key: String,
    last: String,
    con: Option<redis::Connection>,
}

/// One `XREAD` reply: its key, and its entries (id, fields).
type StreamReply = (String, Vec<(String, Vec<(String, Vec<u8>)>)>);

const PAGE: usize = 512;

/// Follows the streams `keys` from `since`, merged in time order (by entry
/// id): an entry is shown once every stream that may still hold an older
/// one has been read past it. Each stream resumes after its last entry
/// shown when its node comes back or its master fails over.
pub(crate) fn follow_streams(
    cluster: &Cluster,
    keys: &[String],
    since: &str,
    out: &mut Output,
) -> io::Result<ExitCode> {
    let mut streams: Vec<Stream> = keys
        .iter()
        .map(|key| Stream {
            key: key.clone(),
            last: since.to_string(),
            con: None,
        })
        .collect();
    let mut said = false;
    // Entries read but not shown yet, released in id order.
    let mut merge = spanline_redis::StreamMerge::new(streams.len());
    loop {
        let mut read_any = false;
        for (index, stream) in streams.iter_mut().enumerate() {
            let con = match &mut stream.con {
                Some(con) => con,
                None => stream
                    .con
                    .insert(cluster.owner_connection(&stream.key, &mut said)),
            };
            let reply: redis::RedisResult<Option<Vec<StreamReply>>> = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(PAGE)
                .arg("STREAMS")
                .arg(&stream.key)
                .arg(&stream.last)
                .query(con);
            match reply {
                Ok(found) => {
                    let entries: Vec<_> =
                        found.into_iter().flatten().flat_map(|(_, e)| e).collect();
                    // A full page: the stream may hold older entries than
                    // the others' newest, and holds them back.
                    let full = entries.len() >= PAGE;
                    for (id, fields) in entries {
                        if let Some((_, line)) = fields.into_iter().find(|(name, _)| name == "line")
                        {
                            merge.push(index, &id, line);
                        }
                        stream.last = id;
                        read_any = true;
                    }
                    if !full {
                        merge.caught_up(index);
                    }
                }
                Err(e) => {
                    eprintln!(
                        "spanline: reading {} failed ({}); resuming after {} where it lives now",
                        stream.key,
                        crate::server::scrub(&e.to_string(), cluster.map.password()),
                        stream.last
                    );
                    stream.con = None;
                    merge.caught_up(index);
                }
            }
        }
        while let Some(line) = merge.ready() {
            if !out.line(&line)? {
                return Ok(ExitCode::SUCCESS);
            }
        }
        if !read_any {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
