//! `spanline tail --cluster`: follow channels and streams on a Redis
//! Cluster, through spanline-redis's reading API
//! ([`spanline_redis::read`]), and say what happens in words.
//!
//! Channels are followed with a [`ShardedSubscription`] (each on its
//! master, one connection per master; a quiet channel is not a lost one).
//! This says once every channel is subscribed that `tail` is live, and
//! when a node is lost, a channel moves, or the cluster cannot be read.
//! The global feed's channels are interleaved as lines arrive; its
//! streams are merged in time order.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::process::ExitCode;
use std::time::Duration;

use spanline_redis::read::{self, ClusterMap, Event, ShardedSubscription, StreamMerge};
use spanline_redis::redis;

use crate::server::backoff;

const TIMEOUT: Duration = Duration::from_secs(2);

/// The cluster to follow.
pub(crate) struct Cluster {
    map: ClusterMap,
}

impl Cluster {
    /// The cluster of the comma-separated `urls`.
    pub(crate) fn new(urls: &str) -> io::Result<Self> {
        crate::server::check_cluster_urls(urls)?;
        let map = ClusterMap::new(urls)
            .map_err(|e| io::Error::other(format!("invalid Redis URL: {e}")))?;
        Ok(Self { map })
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

    /// `e`, met following `what` on `node`, as a sentence.
    fn node_failure(&self, node: &str, what: &str, e: &redis::RedisError) -> String {
        let cause = crate::server::cause(e, None, self.map.password());
        if cause.unreachable {
            format!("cannot reach {node}, the master of {what}: {}", cause.text)
        } else {
            format!("{node}, the master of {what}, {}", cause.text)
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
                    backoff(&mut attempt);
                }
            }
        }
    }

    /// How many shards the publisher spread the global feed over: what it
    /// stored in `{prefix}:global:shards`, else the default on a cluster.
    pub(crate) fn global_shards(&self, channels: &spanline_redis::Channels) -> usize {
        self.retry(&mut false, |map| map.stored_global_shards(channels))
    }
}

/// What `tail` follows on the cluster, for its messages.
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

/// Follows `feed` (sharded pub/sub), giving each line to `line` until it
/// says `false` (`--count` reached).
pub(crate) fn follow_channels(
    cluster: &Cluster,
    feed: &Feed,
    mut line: impl FnMut(&[u8]) -> io::Result<bool>,
) -> io::Result<ExitCode> {
    let subscription = ShardedSubscription::start(&cluster.map, feed.channels.clone());
    // Where each channel is subscribed now (`None`: not yet, or lost).
    let mut following: BTreeMap<String, Option<String>> =
        feed.channels.iter().map(|c| (c.clone(), None)).collect();
    let mut live = false;
    let mut said = BTreeSet::new();
    while let Some(event) = subscription.recv() {
        match event {
            Event::Line(payload) if !line(&payload)? => return Ok(ExitCode::SUCCESS),
            Event::Line(_) => {}
            Event::Subscribed { channels, node } => {
                let again = channels
                    .iter()
                    .any(|c| following.get(c).is_some_and(Option::is_none));
                for channel in &channels {
                    following.insert(channel.clone(), Some(node.clone()));
                }
                if !live {
                    if following.values().all(Option::is_some) {
                        let masters: BTreeSet<&String> = following.values().flatten().collect();
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
                        "spanline: following {} again on {node} (live)",
                        feed.part(&channels),
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
                    "spanline: lost a node of the cluster, {node} ({why}): lines published on {} \
                     are missing until it is followed again, on that node when it answers or \
                     on the master that takes over",
                    feed.part(&channels)
                );
            }
            Event::Moved { channel, node } => {
                following.insert(channel.clone(), None);
                eprintln!(
                    "spanline: {channel} moved from {node} to another master; following it there; \
                     lines published on it meanwhile may be missing"
                );
            }
            Event::Retrying {
                channels,
                node,
                error,
            } => {
                let why = match node {
                    Some(node) => cluster.node_failure(&node, &feed.part(&channels), &error),
                    None => cluster.failure(&error),
                };
                if said.insert(why.clone()) {
                    eprintln!("spanline: {why}; retrying");
                }
            }
            _ => {}
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One stream's state while following: the last id shown.
struct Stream {
    key: String,
    last: String,
    con: Option<redis::Connection>,
}

const PAGE: usize = 512;

/// Follows the streams `keys` from `since`, merged in time order (by entry
/// id): an entry is shown once every stream that may still hold an older
/// one has been read past it. Each stream resumes after its last entry
/// shown when its node comes back or its master fails over.
pub(crate) fn follow_streams(
    cluster: &Cluster,
    keys: &[String],
    since: &str,
    mut line: impl FnMut(&[u8]) -> io::Result<bool>,
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
    let mut merge = StreamMerge::new(streams.len());
    loop {
        let mut read_any = false;
        for (index, stream) in streams.iter_mut().enumerate() {
            let con = match &mut stream.con {
                Some(con) => con,
                None => stream
                    .con
                    .insert(cluster.retry(&mut said, |map| map.connect(&stream.key, TIMEOUT))),
            };
            match read::read_stream(con, &stream.key, &stream.last, PAGE, None) {
                Ok(entries) => {
                    // A full page: the stream may hold older entries than
                    // the others' newest, and holds them back.
                    let full = entries.len() >= PAGE;
                    for entry in entries {
                        stream.last.clone_from(&entry.id);
                        merge.push(index, &entry.id, entry.line);
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
        while let Some(entry) = merge.ready() {
            if !line(&entry)? {
                return Ok(ExitCode::SUCCESS);
            }
        }
        if !read_any {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
