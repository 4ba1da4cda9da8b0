//! Following one feed in Redis (a job's, or the global one) on a thread of
//! its own: the backlog of its stream then new entries, or its pub/sub
//! channel; reconnecting with back-off, resuming a stream after the last
//! entry delivered, and saying what happens to the connection.

use std::time::Duration;

use spanline_redis::read::{self, ClusterMap, Event, ShardedSubscription};
use spanline_redis::redis::{self, Connection};

/// The Redis a console reads: one server, or a cluster (where each key is
/// read on the master that owns it, and channels are sharded).
#[derive(Clone, Debug)]
pub(crate) enum Redis {
    Single(Box<redis::Client>),
    Cluster(ClusterMap),
}

impl Redis {
    /// A connection where `key` lives.
    pub(crate) fn connect(&self, key: &str) -> redis::RedisResult<Connection> {
        match self {
            Redis::Single(client) => client.get_connection_with_timeout(Duration::from_secs(2)),
            Redis::Cluster(map) => map.connect(key, Duration::from_secs(2)),
        }
    }

    /// An error's text with the Redis password taken out.
    pub(crate) fn scrub(&self, error: &redis::RedisError) -> String {
        let text = error.to_string();
        match self.password() {
            Some(password) if !password.is_empty() => text.replace(&password, "***"),
            _ => text,
        }
    }

    /// The password, to keep it out of error texts.
    fn password(&self) -> Option<String> {
        match self {
            Redis::Single(client) => client
                .get_connection_info()
                .redis_settings()
                .password()
                .map(str::to_owned),
            Redis::Cluster(map) => map.password().map(str::to_owned),
        }
    }

    /// Where it is, without the password.
    pub(crate) fn address(&self) -> String {
        match self {
            Redis::Single(client) => client.get_connection_info().addr().to_string(),
            Redis::Cluster(map) => format!("the cluster of {}", map.address()),
        }
    }
}

/// Where the console reads a feed from.
///
/// ```
/// use spanline_web::{Console, Source};
/// let console = Console::builder("redis://127.0.0.1:6379").source(Source::Streams);
/// assert!(format!("{console:?}").contains("Streams"));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// Streams when the publisher writes them (the feed's stream, or the
    /// global stream, exists), pub/sub otherwise. Decided at each connect.
    #[default]
    Auto,
    /// `XREAD` of the streams: a backlog, and a reconnect resumes exactly
    /// after the last line shown (`Mode::Streams` or `Mode::Both`).
    Streams,
    /// `SUBSCRIBE` to the channels: live only; a reconnect marks where lines
    /// may be missing.
    PubSub,
}

/// What a follower reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Item {
    /// A log line of the follower's feed number `from` (its index among
    /// the keys followed together); `id` is its stream entry id (none on
    /// pub/sub).
    Line {
        from: usize,
        id: Option<String>,
        line: String,
    },
    /// The connection to Redis changed.
    State(Link),
    /// Lines may be missing here (pub/sub reconnected, stream trimmed or lost).
    Gap(String),
}

/// The state of a follower's connection to Redis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Link {
    /// Following, from the stream (`true`) or the channel.
    Live { streams: bool },
    /// Lost; trying again. The reason is an error's text, without secrets.
    Unavailable(String),
}

/// Where a follower's items go; `false` from `send` or `open` stops it.
pub(crate) trait Sink: Send + 'static {
    fn send(&mut self, item: Item) -> bool;
    fn open(&self) -> bool;
    /// The stream has nothing older left to deliver (its last read
    /// returned less than a full chunk): for [`crate::merge`].
    fn caught_up(&mut self) -> bool {
        true
    }
}

/// One feed to follow.
#[derive(Clone, Debug)]
pub(crate) struct Follow {
    pub(crate) redis: Redis,
    /// The feed's channel, which is also its stream's key.
    pub(crate) key: String,
    /// The global stream's key: its existence says the publisher writes
    /// streams (for `Source::Auto`, before a job's stream exists).
    pub(crate) global_key: String,
    pub(crate) source: Source,
    /// The last stream entry delivered: resume after it.
    pub(crate) after: Option<String>,
    /// At most this many lines of backlog when starting without `after`.
    pub(crate) backlog: usize,
    /// The page had followed before (a browser reconnect): on pub/sub,
    /// lines may be missing from before this connection.
    pub(crate) resumed: bool,
    /// This feed's index among the keys followed together (the lines say
    /// it as [`Item::Line::from`]).
    pub(crate) index: usize,
}

/// How long one blocking read waits before the follower checks that its
/// page is still there.
const POLL: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// Entries read per `XREAD`.
const CHUNK: usize = 500;

impl Follow {
    /// Follows the feed on a new thread until `sink` closes.
    pub(crate) fn spawn(self, sink: impl Sink) {
        let _ = std::thread::Builder::new()
            .name("spanline-web-follow".into())
            .spawn(move || self.run(sink));
    }

    fn run(mut self, mut sink: impl Sink) {
        let mut backoff = Duration::from_millis(100);
        let mut said: Option<String> = None;
        let mut connected_before = false;
        while sink.open() {
            let outcome = self.redis.connect(&self.key).and_then(|mut con| {
                backoff = Duration::from_millis(100);
                let streams = self.use_streams(&mut con)?;
                said = None;
                if streams {
                    if !sink.send(Item::State(Link::Live { streams })) {
                        return Ok(false);
                    }
                    self.follow_stream(con, &mut sink).map(|()| false)
                } else {
                    // Lines may be missing from before this connection.
                    let gap = connected_before || self.resumed;
                    connected_before = true;
                    self.follow_channel(con, &mut sink, gap)
                }
            });
            let error = match outcome {
                // The publisher writes streams now: follow them.
                Ok(true) => continue,
                Ok(false) => return,
                Err(error) => error,
            };
            let reason = self.redis.scrub(&error);
            if said.as_ref() != Some(&reason) {
                if !sink.send(Item::State(Link::Unavailable(reason.clone()))) {
                    return;
                }
                said = Some(reason);
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    fn use_streams(&self, con: &mut Connection) -> redis::RedisResult<bool> {
        let type_of = |con: &mut Connection, key: &str| -> redis::RedisResult<String> {
            redis::cmd("TYPE").arg(key).query(con)
        };
        Ok(match self.source {
            Source::Streams => true,
            Source::PubSub => false,
            Source::Auto => {
                self.after.is_some()
                    || type_of(con, &self.key)? == "stream"
                    || match &self.redis {
                        Redis::Single(_) => type_of(con, &self.global_key)? == "stream",
                        // Another key may live on another master.
                        Redis::Cluster(_) => {
                            type_of(&mut self.redis.connect(&self.global_key)?, &self.global_key)?
                                == "stream"
                        }
                    }
            }
        })
    }

    /// The backlog (when starting afresh), then every new entry, each with
    /// its id; returns on an error, or `Ok` when the page is gone.
    fn follow_stream(
        &mut self,
        mut con: Connection,
        sink: &mut impl Sink,
    ) -> redis::RedisResult<()> {
        con.set_read_timeout(Some(POLL * 4))?;
        match self.after.clone() {
            None => {
                let backlog = read::last_entries(&mut con, &self.key, self.backlog.max(1))?;
                // An empty stream: everything from its start is new.
                self.after = Some("0-0".into());
                if !self.deliver(backlog, sink) {
                    return Ok(());
                }
            }
            Some(after) => {
                // The stream's first entry is newer than the last line shown:
                // what came between is gone (trimmed by MAXLEN, or lost when
                // Redis restarted without its data). Say so.
                if let Some(id) = read::first_id(&mut con, &self.key)? {
                    if after != "0-0"
                        && newer(&id, &after)
                        && !sink.send(Item::Gap(
                            "the stream no longer holds the lines after the last one shown \
                             (trimmed, or lost in a Redis restart): some may be missing"
                                .into(),
                        ))
                    {
                        return Ok(());
                    }
                }
            }
        }
        while sink.open() {
            let after = self.after.clone().unwrap_or_else(|| "0-0".into());
            let found = read::read_stream(&mut con, &self.key, &after, CHUNK, Some(POLL))?;
            let caught_up = found.len() < CHUNK;
            if !self.deliver(found, sink) || (caught_up && !sink.caught_up()) {
                return Ok(());
            }
        }
        Ok(())
    }

    fn deliver(&mut self, entries: Vec<read::Entry>, sink: &mut impl Sink) -> bool {
        for entry in entries {
            self.after = Some(entry.id.clone());
            let line = String::from_utf8_lossy(&entry.line).into_owned();
            if !sink.send(Item::Line {
                from: self.index,
                id: Some(entry.id),
                line,
            }) {
                return false;
            }
        }
        true
    }

    /// Subscribes, then says so (and marks a gap when `gap`): a line
    /// published after the page sees "live" is shown. `Ok(true)` when the
    /// publisher started writing streams (with [`Source::Auto`]): follow
    /// them instead; `Ok(false)` when the page is gone.
    fn follow_channel(
        &mut self,
        mut con: Connection,
        sink: &mut impl Sink,
        gap: bool,
    ) -> redis::RedisResult<bool> {
        if let Redis::Cluster(map) = &self.redis {
            drop(con);
            let subscription = ShardedSubscription::start(map, vec![self.key.clone()]);
            return Ok(self.follow_shard_channel(&subscription, sink, gap));
        }
        let mut pubsub = con.as_pubsub();
        pubsub.subscribe(&self.key)?;
        pubsub.set_read_timeout(Some(POLL))?;
        if !announce_live(sink, gap) {
            return Ok(false);
        }
        let mut switch = StreamsAppear::new();
        while sink.open() {
            match pubsub.get_message() {
                Ok(msg) => {
                    let line = String::from_utf8_lossy(msg.get_payload_bytes()).into_owned();
                    let from = self.index;
                    switch.heard = true;
                    if !sink.send(Item::Line {
                        from,
                        id: None,
                        line,
                    }) {
                        return Ok(false);
                    }
                }
                Err(e) if e.is_timeout() => {}
                Err(e) => return Err(e),
            }
            if switch.now(self) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// A channel is subscribed: the page hears "live", and, after a
/// reconnection, that lines published meanwhile are lost. False when the
/// page is gone.
fn announce_live(sink: &mut impl Sink, gap: bool) -> bool {
    let reason = "reconnected: lines published meanwhile are not shown (pub/sub keeps no backlog)";
    sink.send(Item::State(Link::Live { streams: false }))
        && (!gap || sink.send(Item::Gap(reason.into())))
}

impl Follow {
    /// [`follow_channel`](Self::follow_channel) on a cluster: the channel
    /// is sharded, followed by spanline-redis's [`ShardedSubscription`] on
    /// its master (a quiet channel is not a lost one; a lost node or a
    /// moved slot is followed again where the channel lives then). Says
    /// "live" at each subscription, and a gap after the first, until the
    /// page is gone.
    fn follow_shard_channel(
        &mut self,
        subscription: &ShardedSubscription,
        sink: &mut impl Sink,
        mut gap: bool,
    ) -> bool {
        let mut said: Option<String> = None;
        let mut switch = StreamsAppear::new();
        while sink.open() {
            if switch.now(self) {
                return true;
            }
            let sent = match subscription.recv_timeout(POLL) {
                Ok(Event::Line(payload)) => {
                    switch.heard = true;
                    let line = String::from_utf8_lossy(&payload).into_owned();
                    sink.send(Item::Line {
                        from: self.index,
                        id: None,
                        line,
                    })
                }
                Ok(Event::Subscribed { .. }) => {
                    said = None;
                    let live = announce_live(sink, gap);
                    gap = true;
                    live
                }
                Ok(Event::Lost { node, why, .. }) => {
                    self.unavailable(sink, &mut said, format!("lost {node}: {why}"))
                }
                Ok(Event::Moved { channel, node }) => self.unavailable(
                    sink,
                    &mut said,
                    format!("{channel} moved from {node} to another master"),
                ),
                Ok(Event::Retrying { error, .. }) => {
                    let reason = self.redis.scrub(&error);
                    self.unavailable(sink, &mut said, reason)
                }
                Ok(_) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => true,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return false,
            };
            if !sent {
                return false;
            }
        }
        false
    }

    /// Says that Redis is unavailable for `reason`, unless it was the
    /// last thing said; false when the page is gone.
    fn unavailable(&self, sink: &mut impl Sink, said: &mut Option<String>, reason: String) -> bool {
        if said.as_ref() == Some(&reason) {
            return true;
        }
        *said = Some(reason.clone());
        sink.send(Item::State(Link::Unavailable(reason)))
    }
}

/// How often a follower on pub/sub (with [`Source::Auto`]) looks whether
/// the publisher writes streams now: a console started before its first
/// publisher, or before Redis, does not stay on pub/sub.
const STREAMS_CHECK: Duration = Duration::from_secs(2);

/// Watches, from pub/sub, for the streams to appear.
struct StreamsAppear {
    checked: std::time::Instant,
    /// A line came on the channel: the publisher writes pub/sub (both,
    /// if a stream appears), and the follower stays on the channel: lines
    /// heard there have no entry id to resume the stream after.
    heard: bool,
    /// The connection the checks use, kept between them.
    con: Option<Connection>,
}

impl StreamsAppear {
    fn new() -> Self {
        StreamsAppear {
            checked: std::time::Instant::now(),
            heard: false,
            con: None,
        }
    }

    /// True when the follower should follow the stream now, from its
    /// start: no line came on the channel, so every entry is newer than
    /// the subscription (which found no stream).
    fn now(&mut self, follow: &mut Follow) -> bool {
        if follow.source != Source::Auto || self.heard || self.checked.elapsed() < STREAMS_CHECK {
            return false;
        }
        self.checked = std::time::Instant::now();
        let con = match self.con.take() {
            Some(con) => Ok(con),
            None => follow.redis.connect(&follow.key),
        };
        let found = con.and_then(|mut con| {
            let found = follow.use_streams(&mut con)?;
            self.con = Some(con);
            Ok(found)
        });
        match found {
            Ok(true) => {
                follow.after = Some("0-0".to_owned());
                true
            }
            // No stream yet, or Redis cannot say now: stay.
            _ => false,
        }
    }
}

/// Is entry id `a` after `b`?
fn newer(a: &str, b: &str) -> bool {
    read::entry_order(a) > read::entry_order(b)
}

/// Is `id` a stream entry id (`ms-seq`), as a browser sends back?
pub(crate) fn is_entry_id(id: &str) -> bool {
    match id.split_once('-') {
        Some((ms, seq)) => {
            !ms.is_empty()
                && !seq.is_empty()
                && ms.len() <= 20
                && seq.len() <= 20
                && ms.bytes().all(|b| b.is_ascii_digit())
                && seq.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_ids_are_digits_dash_digits() {
        assert!(is_entry_id("1733140000000-0"));
        assert!(is_entry_id("0-0"));
        for bad in ["live", "", "1-", "-1", "1-2-3", "a-1", "1733140000000"] {
            assert!(!is_entry_id(bad), "{bad}");
        }
        assert!(newer("2-0", "1-9"));
        assert!(newer("1-10", "1-9"));
        assert!(!newer("1-9", "1-9"));
    }
}
