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

use redis::Value;
use spanline_redis::ClusterMap;

use crate::tail::Output;

const TIMEOUT: Duration = Duration::from_secs(2);

/// The cluster to follow.
pub(crate) struct Cluster {
    map: ClusterMap,
}

impl Cluster {
    /// The cluster of the comma-separated `urls`.
    pub(crate) fn new(urls: &str) -> io::Result<Self> {
        crate::server::check_cluster_urls(urls)?;
        ClusterMap::new(urls)
            .map(|map| Self { map })
            .map_err(|e| io::Error::other(format!("invalid Redis URL: {e}")))
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
        let mut by_owner: BTreeMap<(String, u16), Vec<String>> = BTreeMap::new();
        for channel in left.drain(..) {
            let owner = cluster.retry(said, |map| map.owner(&channel));
            by_owner.entry(owner).or_default().push(channel);
        }
        for (_, group) in by_owner {
            match cluster.map.ssubscribe(&group, TIMEOUT) {
                Ok(con) => {
                    let tx = tx.clone();
                    let password = cluster.map.password().map(str::to_owned);
                    std::thread::spawn(move || read_messages(con, group, password, &tx));
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

/// Reads messages until the connection goes or the server unsubscribes
/// the channels (their slots moved): then reports them lost.
fn read_messages(
    mut con: redis::Connection,
    channels: Vec<String>,
    password: Option<String>,
    tx: &mpsc::Sender<Event>,
) {
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
            Err(e) => break crate::server::scrub(&e.to_string(), password.as_deref()),
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
