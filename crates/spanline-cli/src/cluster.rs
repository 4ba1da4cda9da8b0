//! `spanline tail --cluster`: follow channels and streams on a Redis
//! Cluster.
//!
//! Sharded pub/sub (`SPUBLISH`) reaches only the subscribers of the shard
//! that owns the channel's slot, so each channel is followed with
//! `SSUBSCRIBE` on its owner, one connection per owner. The global feed is
//! several channels (see `spanline_core::cluster`), followed together and
//! interleaved as lines arrive; on streams, merged in time order. When a
//! master goes away (a failover), the owners are looked up again and the
//! lost subscriptions made again, and `tail` says that lines published
//! meanwhile may be missing.

use std::collections::BTreeMap;
use std::io;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo, Value};

use crate::tail::Output;

/// Who owns which slots: (first slot, last slot, the master's address).
#[derive(Debug, Default)]
struct Topology {
    ranges: Vec<(u16, u16, (String, u16))>,
}

/// The cluster to follow: its seed nodes (with their credentials and TLS
/// settings, which every node shares).
pub(crate) struct Cluster {
    seeds: Vec<ConnectionInfo>,
}

impl Cluster {
    /// The cluster of the comma-separated `urls`.
    pub(crate) fn new(urls: &str) -> io::Result<Self> {
        let seeds = urls
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(|u| {
                u.into_connection_info()
                    .map_err(|e| io::Error::other(format!("invalid Redis URL ({:?})", e.kind())))
            })
            .collect::<io::Result<Vec<_>>>()?;
        if seeds.is_empty() {
            return Err(io::Error::other("--redis: no node URL"));
        }
        Ok(Self { seeds })
    }

    /// The connection settings of node `host:port`: a seed's, with its address.
    fn node(&self, (host, port): &(String, u16)) -> ConnectionInfo {
        let seed = self.seeds[0].clone();
        let mut addr = seed.addr().clone();
        match &mut addr {
            ConnectionAddr::Tcp(h, p)
            | ConnectionAddr::TcpTls {
                host: h, port: p, ..
            } => {
                h.clone_from(host);
                *p = *port;
            }
            _ => {}
        }
        seed.set_addr(addr)
    }

    /// Asks the seeds, then known masters, who owns which slots; retries
    /// with back-off until one answers, saying once that none does.
    fn topology(&self, said: &mut bool) -> Topology {
        let mut attempt = 0;
        loop {
            for seed in &self.seeds {
                if let Some(topology) = slots_of(seed) {
                    *said = false;
                    return topology;
                }
            }
            if !*said {
                eprintln!("spanline: no node of the cluster answers; retrying");
                *said = true;
            }
            crate::tail::backoff(&mut attempt);
        }
    }

    /// A connection to the owner of `key`, asking for the topology again
    /// until one is made.
    fn owner_connection(&self, key: &str, said: &mut bool) -> redis::Connection {
        let mut attempt = 0;
        loop {
            let topology = self.topology(said);
            if let Some(owner) = topology.owner(key) {
                let client = redis::Client::open(self.node(owner));
                if let Ok(con) =
                    client.and_then(|c| c.get_connection_with_timeout(Duration::from_secs(2)))
                {
                    return con;
                }
            }
            crate::tail::backoff(&mut attempt);
        }
    }
}

impl Topology {
    fn owner(&self, key: &str) -> Option<&(String, u16)> {
        let slot = spanline_core::key_slot(key.as_bytes());
        self.ranges
            .iter()
            .find(|(first, last, _)| (*first..=*last).contains(&slot))
            .map(|(_, _, owner)| owner)
    }
}

/// `CLUSTER SLOTS` of the node at `info`; `None` when it does not answer.
fn slots_of(info: &ConnectionInfo) -> Option<Topology> {
    let client = redis::Client::open(info.clone()).ok()?;
    let mut con = client
        .get_connection_with_timeout(Duration::from_secs(2))
        .ok()?;
    let _ = con.set_read_timeout(Some(Duration::from_secs(2)));
    let reply: Vec<Value> = redis::cmd("CLUSTER").arg("SLOTS").query(&mut con).ok()?;
    let asked = match info.addr() {
        ConnectionAddr::Tcp(host, _) | ConnectionAddr::TcpTls { host, .. } => host.clone(),
        _ => String::new(),
    };
    let ranges: Vec<_> = reply
        .into_iter()
        .filter_map(|entry| {
            let Value::Array(parts) = entry else {
                return None;
            };
            let first: u16 = redis::from_redis_value(parts.first()?.clone()).ok()?;
            let last: u16 = redis::from_redis_value(parts.get(1)?.clone()).ok()?;
            let Value::Array(master) = parts.get(2)?.clone() else {
                return None;
            };
            let host: String = redis::from_redis_value(master.first()?.clone()).ok()?;
            let port: u16 = redis::from_redis_value(master.get(1)?.clone()).ok()?;
            // An empty host means "the address you asked me on".
            let host = if host.is_empty() || host == "?" {
                asked.clone()
            } else {
                host
            };
            Some((first, last, (host, port)))
        })
        .collect();
    (!ranges.is_empty()).then_some(Topology { ranges })
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

/// What a subscription thread reports.
enum Event {
    Line(Vec<u8>),
    /// The thread's connection is gone (a failover, a restart): its
    /// channels must be subscribed again where they live now.
    Lost {
        channels: Vec<String>,
        why: String,
    },
}

/// Follows `channels` (sharded pub/sub) until `--count` is reached.
pub(crate) fn follow_channels(
    cluster: &Cluster,
    channels: &[String],
    out: &mut Output,
) -> io::Result<ExitCode> {
    let (tx, rx) = mpsc::channel();
    let mut said = false;
    subscribe(cluster, channels.to_vec(), &tx, &mut said);
    loop {
        match rx.recv() {
            Ok(Event::Line(payload)) => {
                if !out.line(&payload)? {
                    return Ok(ExitCode::SUCCESS);
                }
            }
            Ok(Event::Lost { channels, why }) => {
                eprintln!(
                    "spanline: lost a node of the cluster ({why}); following its channels where \
                     they live now; lines published meanwhile on them are missing"
                );
                subscribe(cluster, channels, &tx, &mut said);
            }
            Err(_) => return Ok(ExitCode::SUCCESS),
        }
    }
}

/// Subscribes to `channels` on their owners, a thread per owner.
fn subscribe(cluster: &Cluster, channels: Vec<String>, tx: &mpsc::Sender<Event>, said: &mut bool) {
    let mut attempt = 0;
    let mut left = channels;
    while !left.is_empty() {
        let topology = cluster.topology(said);
        let mut by_owner: BTreeMap<(String, u16), Vec<String>> = BTreeMap::new();
        for channel in left.drain(..) {
            let owner = topology.owner(&channel).cloned().unwrap_or_default();
            by_owner.entry(owner).or_default().push(channel);
        }
        for (owner, group) in by_owner {
            match ssubscribe(&cluster.node(&owner), &group) {
                Ok(con) => {
                    let tx = tx.clone();
                    std::thread::spawn(move || read_messages(con, group, &tx));
                }
                // Not the owner any more, or down: look again.
                Err(_) => left.extend(group),
            }
        }
        if !left.is_empty() {
            crate::tail::backoff(&mut attempt);
        }
    }
}

/// A connection subscribed to `channels` with `SSUBSCRIBE`.
fn ssubscribe(node: &ConnectionInfo, channels: &[String]) -> redis::RedisResult<redis::Connection> {
    let client = redis::Client::open(node.clone())?;
    let mut con = client.get_connection_with_timeout(Duration::from_secs(2))?;
    con.set_read_timeout(Some(Duration::from_secs(2)))?;
    con.send_packed_command(&redis::cmd("SSUBSCRIBE").arg(channels).get_packed_command())?;
    // One confirmation per channel; an error (MOVED: not the owner) fails it.
    for _ in channels {
        if let Value::ServerError(e) = con.recv_response()? {
            return Err(redis::RedisError::from((
                redis::ErrorKind::Client,
                "SSUBSCRIBE refused",
                format!("{e:?}"),
            )));
        }
    }
    Ok(con)
}

/// Reads messages until the connection goes or the server unsubscribes
/// the channels (their slots moved): then reports them lost.
fn read_messages(mut con: redis::Connection, channels: Vec<String>, tx: &mpsc::Sender<Event>) {
    // Quiet channels are normal; a node that does not answer a PING within
    // a read timeout (2 s) is not: it is frozen or cut off.
    let mut pinged = false;
    let why = loop {
        let reply = con.recv_response();
        if reply.is_ok() {
            pinged = false;
        }
        match reply {
            Err(e) if e.is_timeout() && !pinged => {
                if con
                    .send_packed_command(&redis::cmd("PING").get_packed_command())
                    .is_err()
                {
                    break "it went away".to_string();
                }
                pinged = true;
            }
            Err(e) if e.is_timeout() => break "it stopped answering".to_string(),
            Ok(Value::Array(parts)) | Ok(Value::Push { data: parts, .. }) => {
                let kind = parts
                    .first()
                    .and_then(|k| redis::from_redis_value::<String>(k.clone()).ok());
                match kind.as_deref() {
                    Some("smessage") => {
                        if let Some(Value::BulkString(payload)) = parts.get(2) {
                            if tx.send(Event::Line(payload.clone())).is_err() {
                                return;
                            }
                        }
                    }
                    Some("sunsubscribe") => break "its channels moved".to_string(),
                    _ => {}
                }
            }
            Ok(_) => {}
            Err(e) => break format!("{:?}", e.kind()),
        }
    };
    let _ = tx.send(Event::Lost { channels, why });
}

/// One stream's state while following: the last id shown.
struct Stream {
    key: String,
    last: String,
    con: Option<redis::Connection>,
}

/// An entry id's order: (milliseconds, sequence).
fn order(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
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
    // Entries read but not shown yet: (order, id, line).
    let mut pending: Vec<((u64, u64), Vec<u8>)> = Vec::new();
    loop {
        // Streams that returned a full page may hold older entries than the
        // others' newest: nothing past their last id is shown yet.
        let mut watermark: Option<(u64, u64)> = None;
        let mut read_any = false;
        for stream in &mut streams {
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
                    let full = entries.len() >= PAGE;
                    for (id, fields) in entries {
                        if let Some((_, line)) = fields.into_iter().find(|(name, _)| name == "line")
                        {
                            pending.push((order(&id), line));
                        }
                        stream.last = id;
                        read_any = true;
                    }
                    if full {
                        let at = order(&stream.last);
                        watermark = Some(watermark.map_or(at, |w| w.min(at)));
                    }
                }
                Err(e) => {
                    eprintln!(
                        "spanline: reading {} failed ({e}); resuming after {} where it lives now",
                        stream.key, stream.last
                    );
                    stream.con = None;
                }
            }
        }
        pending.sort_by_key(|(at, _)| *at);
        let shown = pending
            .iter()
            .take_while(|(at, _)| watermark.is_none_or(|w| *at <= w))
            .count();
        for (_, line) in pending.drain(..shown) {
            if !out.line(&line)? {
                return Ok(ExitCode::SUCCESS);
            }
        }
        if !read_any {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
