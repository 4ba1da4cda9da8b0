//! Following one feed in Redis (a job's, or the global one) on a thread of
//! its own: the backlog of its stream then new entries, or its pub/sub
//! channel; reconnecting with back-off, resuming a stream after the last
//! entry delivered, and saying what happens to the connection.

use std::time::Duration;

use redis::{Connection, Value};
use spanline_redis::ClusterMap;

/// The Redis a console reads: one server, or a cluster (where each key is
/// read on the master that owns it, and channels are sharded).
#[derive(Clone, Debug)]
pub(crate) enum Redis {
    Single(redis::Client),
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
    /// A log line; `id` is its stream entry id (none on pub/sub).
    Line { id: Option<String>, line: String },
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

impl Sink for tokio::sync::mpsc::Sender<Item> {
    fn send(&mut self, item: Item) -> bool {
        self.blocking_send(item).is_ok()
    }

    fn open(&self) -> bool {
        !self.is_closed()
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
                        return Ok(());
                    }
                    self.follow_stream(con, &mut sink)
                } else {
                    // Lines may be missing from before this connection.
                    let gap = connected_before || self.resumed;
                    connected_before = true;
                    self.follow_channel(con, &mut sink, gap)
                }
            });
            let Err(error) = outcome else { return };
            let reason = self.scrub(&error);
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

    /// An error's text with the Redis password taken out.
    fn scrub(&self, error: &redis::RedisError) -> String {
        let text = error.to_string();
        match self.redis.password() {
            Some(password) if !password.is_empty() => text.replace(&password, "***"),
            _ => text,
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
                let backlog: Value = redis::cmd("XREVRANGE")
                    .arg(&self.key)
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(self.backlog.max(1))
                    .query(&mut con)?;
                let mut entries = entries(&backlog);
                entries.reverse();
                // An empty stream: everything from its start is new.
                self.after = Some("0-0".into());
                if !self.deliver(entries, sink) {
                    return Ok(());
                }
            }
            Some(after) => {
                // The stream's first entry is newer than the last line shown:
                // what came between is gone (trimmed by MAXLEN, or lost when
                // Redis restarted without its data). Say so.
                let first: Value = redis::cmd("XRANGE")
                    .arg(&self.key)
                    .arg("-")
                    .arg("+")
                    .arg("COUNT")
                    .arg(1)
                    .query(&mut con)?;
                if let Some((id, _)) = entries(&first).first() {
                    if after != "0-0"
                        && newer(id, &after)
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
            let reply: Value = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(CHUNK)
                .arg("BLOCK")
                .arg(POLL.as_millis() as u64)
                .arg("STREAMS")
                .arg(&self.key)
                .arg(&after)
                .query(&mut con)?;
            let found = match &reply {
                // One stream: [[key, entries]].
                Value::Array(streams) => streams
                    .first()
                    .and_then(|s| match s {
                        Value::Array(pair) => pair.get(1).map(entries),
                        _ => None,
                    })
                    .unwrap_or_default(),
                Value::Map(streams) => streams.first().map(|(_, e)| entries(e)).unwrap_or_default(),
                _ => Vec::new(),
            };
            let caught_up = found.len() < CHUNK;
            if !self.deliver(found, sink) || (caught_up && !sink.caught_up()) {
                return Ok(());
            }
        }
        Ok(())
    }

    fn deliver(&mut self, entries: Vec<(String, String)>, sink: &mut impl Sink) -> bool {
        for (id, line) in entries {
            self.after = Some(id.clone());
            if !sink.send(Item::Line { id: Some(id), line }) {
                return false;
            }
        }
        true
    }

    /// Subscribes, then says so (and marks a gap when `gap`): a line
    /// published after the page sees "live" is shown.
    fn follow_channel(
        &mut self,
        mut con: Connection,
        sink: &mut impl Sink,
        gap: bool,
    ) -> redis::RedisResult<()> {
        if let Redis::Cluster(map) = &self.redis {
            drop(con);
            let con = map.ssubscribe(std::slice::from_ref(&self.key), POLL)?;
            return self.follow_shard_channel(con, sink, gap);
        }
        let mut pubsub = con.as_pubsub();
        pubsub.subscribe(&self.key)?;
        pubsub.set_read_timeout(Some(POLL))?;
        if !announce_live(sink, gap) {
            return Ok(());
        }
        while sink.open() {
            match pubsub.get_message() {
                Ok(msg) => {
                    let line = String::from_utf8_lossy(msg.get_payload_bytes()).into_owned();
                    if !sink.send(Item::Line { id: None, line }) {
                        return Ok(());
                    }
                }
                Err(e) if e.is_timeout() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
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
    /// is sharded, subscribed with `SSUBSCRIBE` on its master. When its
    /// slot moves (a failover), the server unsubscribes it: an error, so
    /// the follower finds its new master and marks the gap.
    fn follow_shard_channel(
        &mut self,
        mut con: Connection,
        sink: &mut impl Sink,
        gap: bool,
    ) -> redis::RedisResult<()> {
        if !announce_live(sink, gap) {
            return Ok(());
        }
        let mut pinged = false;
        while sink.open() {
            let reply = con.recv_response();
            if reply.is_ok() {
                pinged = false;
            }
            match reply {
                Ok(Value::Array(parts)) | Ok(Value::Push { data: parts, .. }) => {
                    match parts.first().and_then(text).as_deref() {
                        Some("smessage") => {
                            if let Some(line) = parts.get(2).and_then(text) {
                                if !sink.send(Item::Line { id: None, line }) {
                                    return Ok(());
                                }
                            }
                        }
                        Some("sunsubscribe") => {
                            return Err(redis::RedisError::from((
                                redis::ErrorKind::Io,
                                "the channel moved to another master",
                            )))
                        }
                        _ => {}
                    }
                }
                Ok(_) => {}
                // Quiet is normal; a node that does not answer a PING
                // within a poll is not (frozen, or cut off).
                Err(e) if e.is_timeout() => {
                    if pinged {
                        return Err(e);
                    }
                    con.send_packed_command(&redis::cmd("PING").get_packed_command())?;
                    pinged = true;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Is entry id `a` after `b`?
fn newer(a: &str, b: &str) -> bool {
    spanline_redis::entry_order(a) > spanline_redis::entry_order(b)
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

/// The (id, line) pairs of an `XRANGE`-shaped reply; entries without a
/// `line` field are skipped.
fn entries(value: &Value) -> Vec<(String, String)> {
    let Value::Array(items) = value else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|entry| {
            let Value::Array(pair) = entry else {
                return None;
            };
            let id = text(pair.first()?)?;
            let line = match pair.get(1)? {
                Value::Array(fields) => fields
                    .chunks(2)
                    .find(|kv| kv.first().and_then(text).as_deref() == Some("line"))
                    .and_then(|kv| kv.get(1).and_then(text)),
                Value::Map(fields) => fields
                    .iter()
                    .find(|(k, _)| text(k).as_deref() == Some("line"))
                    .and_then(|(_, v)| text(v)),
                _ => None,
            }?;
            Some((id, line))
        })
        .collect()
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
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
