//! [`RedisLayerBuilder`]: the options, checked once; `build` starts the
//! worker with its own [`WorkerConfig`] and hands back the layer and guard.
//!
//! Why one file: it is one concept, the options and the one place they are
//! checked. `build`, `check_url` and `BuildError` share `url_problem`, so
//! the builder and a program that reads Redis name a bad URL in the same
//! words, never repeating a password; most of the rest is one short
//! documented method per option.

use std::fmt;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{bounded, unbounded};
use spanline_core::Schema;

use crate::Channels;

use crate::layer::RedisSink;
use crate::link::Target;
use crate::queue::{Overflow, Queue};
use crate::stats::RedisStats;
use crate::worker::{Mode, Worker, WorkerConfig};
use crate::{RedisGuard, RedisLayer};

/// Builds a [`RedisLayer`]. Start from [`RedisLayer::builder`].
///
/// Every option, with the values a live view of many services might use
/// (each is described on its method; the defaults suit most):
///
/// ```
/// use std::time::Duration;
/// use spanline_redis::{Mode, Overflow, RedisLayer};
/// let builder = RedisLayer::builder("redis://logger:secret@127.0.0.1:6379/0")
///     .prefix("staging-logs")                 // channels `staging-logs:global`, `staging-logs:{job_id}`
///     .global_channel(true)
///     .mode(Mode::Both)                       // pub/sub for live views, streams for backlog
///     .stream_limits(50_000, 5_000, Duration::from_secs(600))
///     .overflow(Overflow::DropOldest)         // a live view wants the newest lines
///     .capacity(16_384, 16 << 20)             // events, bytes
///     .max_payload(32 * 1024)
///     .batch(512, 512 * 1024)
///     .timeouts(Duration::from_millis(500), Duration::from_secs(1))
///     .max_backoff(Duration::from_secs(2))
///     .shutdown_timeout(Duration::from_secs(1));
/// let shown = format!("{builder:?}");
/// assert!(shown.contains("DropOldest") && shown.contains("Both") && !shown.contains("secret"));
/// let (layer, guard) = builder.build().expect("a valid URL");
/// assert_eq!(layer.stats().emitted(), 0);
/// # drop(guard);
/// ```
#[derive(Clone)]
pub struct RedisLayerBuilder {
    pub(crate) url: String,
    pub(crate) prefix: String,
    pub(crate) global: bool,
    pub(crate) mode: Mode,
    pub(crate) overflow: Overflow,
    pub(crate) capacity: usize,
    pub(crate) max_queued_bytes: usize,
    pub(crate) max_payload: usize,
    pub(crate) batch_size: usize,
    pub(crate) batch_bytes: usize,
    pub(crate) connect_timeout: Duration,
    pub(crate) io_timeout: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) stderr_every: Duration,
    pub(crate) global_maxlen: usize,
    pub(crate) job_maxlen: usize,
    pub(crate) job_stream_ttl: Duration,
    pub(crate) sharded: bool,
    pub(crate) global_shards: usize,
    pub(crate) schema: Option<Schema>,
    /// A cluster's seed nodes (empty: one server).
    pub(crate) cluster_nodes: Vec<String>,
}

impl fmt::Debug for RedisLayerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may hold a password: never print it.
        f.debug_struct("RedisLayerBuilder")
            .field("prefix", &self.prefix)
            .field("mode", &self.mode)
            .field("overflow", &self.overflow)
            .field("capacity", &self.capacity)
            .field("global_shards", &self.global_shards)
            .finish_non_exhaustive()
    }
}

/// Why [`RedisLayerBuilder::build`] failed.
///
/// ```
/// let err = spanline_redis::RedisLayer::builder("not a url").build().unwrap_err();
/// assert!(err.to_string().starts_with("invalid Redis URL"));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum BuildError {
    /// The URL is not a Redis URL (the URL itself is not repeated: it may
    /// hold a password).
    InvalidUrl(redis::RedisError),
    /// The prefix is not made of `[A-Za-z0-9_:-]`.
    InvalidPrefix(String),
    /// The URL is not a Redis URL; says what is wrong with it (never the
    /// URL itself, which may hold a password).
    BadUrl(String),
    /// An option is out of range.
    InvalidOption(&'static str),
    /// The worker thread could not be started.
    Spawn(std::io::Error),
    /// A cluster was asked for ([`RedisLayer::builder_cluster`]) but this
    /// build lacks the `cluster` feature.
    ClusterNotBuilt,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::InvalidUrl(e) => write!(f, "invalid Redis URL: {:?}", e.kind()),
            BuildError::BadUrl(why) => write!(f, "invalid Redis URL: {why}"),
            BuildError::InvalidPrefix(p) => {
                write!(f, "channel prefix {p:?} must be 1-50 of A-Z a-z 0-9 _ : -")
            }
            BuildError::InvalidOption(what) => write!(f, "invalid option: {what}"),
            BuildError::Spawn(e) => {
                write!(f, "could not start the spanline-redis worker thread: {e}")
            }
            BuildError::ClusterNotBuilt => f.write_str(
                "a Redis Cluster needs spanline-redis's `cluster` feature (spanline's `redis-cluster`)",
            ),
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BuildError::Spawn(e) => Some(e),
            _ => None,
        }
    }
}

/// The defaults of the options, and the builder's entry points.
impl RedisLayer {
    /// The default queue capacity, in events.
    ///
    /// ```
    /// assert_eq!(spanline_redis::RedisLayer::DEFAULT_CAPACITY, 8192);
    /// ```
    pub const DEFAULT_CAPACITY: usize = 8192;
    /// The default budget of queued bytes.
    ///
    /// ```
    /// assert_eq!(spanline_redis::RedisLayer::DEFAULT_MAX_QUEUED_BYTES, 8 << 20);
    /// ```
    pub const DEFAULT_MAX_QUEUED_BYTES: usize = 8 * 1024 * 1024;
    /// The default longest line.
    ///
    /// ```
    /// assert_eq!(spanline_redis::RedisLayer::DEFAULT_MAX_PAYLOAD, 64 << 10);
    /// ```
    pub const DEFAULT_MAX_PAYLOAD: usize = 64 * 1024;
    /// How long dropping the guard waits for queued lines, by default.
    ///
    /// ```
    /// assert_eq!(spanline_redis::RedisLayer::DEFAULT_SHUTDOWN_TIMEOUT.as_secs(), 2);
    /// ```
    pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(2);
    /// How often, at most, lines lost without a report on Redis (Redis
    /// down, a refused login) are counted on stderr, by default.
    ///
    /// ```
    /// assert_eq!(spanline_redis::RedisLayer::DEFAULT_STDERR_REPORT_EVERY.as_secs(), 30);
    /// ```
    pub const DEFAULT_STDERR_REPORT_EVERY: Duration = Duration::from_secs(30);
    /// How many shards [`builder_cluster`](Self::builder_cluster) spreads
    /// the global feed over, by default.
    ///
    /// ```
    /// assert_eq!(spanline_redis::RedisLayer::DEFAULT_CLUSTER_GLOBAL_SHARDS, 16);
    /// ```
    pub const DEFAULT_CLUSTER_GLOBAL_SHARDS: usize = crate::read::DEFAULT_GLOBAL_SHARDS;

    /// Starts a builder for the Redis at `url`:
    /// `redis://[user[:password]@]host[:port][/db]`, or `rediss://` with the
    /// `tls` feature. The URL is never logged.
    ///
    /// See [`RedisLayer`]'s example.
    pub fn builder(url: &str) -> RedisLayerBuilder {
        RedisLayerBuilder::new(url)
    }

    /// Starts a builder for a Redis Cluster (feature `cluster`), given some
    /// of its nodes (`redis://host:port` each). Lines are published with
    /// `SPUBLISH` (sharded pub/sub): each channel stays on the shard that
    /// owns its slot, and subscribers use `SSUBSCRIBE`. The global feed is
    /// spread over [`DEFAULT_CLUSTER_GLOBAL_SHARDS`](Self::DEFAULT_CLUSTER_GLOBAL_SHARDS)
    /// shards ([`global_shards`](RedisLayerBuilder::global_shards)), so no
    /// master takes every line; a job's channel and stream stay one key.
    /// Without the `cluster` feature, [`build`](RedisLayerBuilder::build)
    /// says so ([`BuildError::ClusterNotBuilt`]).
    ///
    /// ```
    /// let builder = spanline_redis::RedisLayer::builder_cluster(&["redis://127.0.0.1:7000", "redis://127.0.0.1:7001"]);
    /// assert!(format!("{builder:?}").contains("global_shards: 16"));
    /// ```
    pub fn builder_cluster(nodes: &[&str]) -> RedisLayerBuilder {
        let mut builder = RedisLayerBuilder::new(nodes.first().copied().unwrap_or_default())
            .sharded(true)
            .global_shards(Self::DEFAULT_CLUSTER_GLOBAL_SHARDS);
        builder.cluster_nodes = nodes.iter().map(|n| n.to_string()).collect();
        builder
    }
}

impl RedisLayerBuilder {
    pub(crate) fn new(url: &str) -> Self {
        Self {
            url: url.to_string(),
            prefix: "logs".to_string(),
            global: true,
            mode: Mode::PubSub,
            overflow: Overflow::DropNewest,
            capacity: RedisLayer::DEFAULT_CAPACITY,
            max_queued_bytes: RedisLayer::DEFAULT_MAX_QUEUED_BYTES,
            max_payload: RedisLayer::DEFAULT_MAX_PAYLOAD,
            batch_size: 256,
            batch_bytes: 256 * 1024,
            connect_timeout: Duration::from_secs(1),
            io_timeout: Duration::from_secs(2),
            backoff_max: Duration::from_secs(5),
            shutdown_timeout: RedisLayer::DEFAULT_SHUTDOWN_TIMEOUT,
            stderr_every: RedisLayer::DEFAULT_STDERR_REPORT_EVERY,
            global_maxlen: 100_000,
            job_maxlen: 10_000,
            job_stream_ttl: Duration::from_secs(3600),
            sharded: false,
            global_shards: 1,
            schema: None,
            cluster_nodes: Vec::new(),
        }
    }

    /// The channel (and stream key) prefix: `{prefix}:global` and
    /// `{prefix}:{job_id}`. Default `logs`.
    ///
    /// See [`RedisLayerBuilder`]'s example.
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Spreads the global feed over `n` channels (and streams)
    /// `{prefix}:global:{T}`, each line to the next in turn, so that on a
    /// Redis Cluster no one master takes every line (default 1: the one
    /// `{prefix}:global`; 16 from [`RedisLayer::builder_cluster`]). The
    /// names are [`read::global_shards`](crate::read::global_shards); the count is stored in
    /// `{prefix}:global:shards` for consumers. For an even spread, use the
    /// number of masters or a multiple of it. 1 to
    /// [`MAX_GLOBAL_SHARDS`](crate::read::MAX_GLOBAL_SHARDS).
    ///
    /// ```
    /// let builder = spanline_redis::RedisLayer::builder("redis://127.0.0.1:6379").global_shards(3);
    /// assert!(format!("{builder:?}").contains("global_shards: 3"));
    /// ```
    #[must_use]
    pub fn global_shards(mut self, n: usize) -> Self {
        self.global_shards = n;
        self
    }

    /// Also publish every line to `{prefix}:global` (default `true`).
    ///
    /// See [`RedisLayerBuilder`]'s example.
    #[must_use]
    pub fn global_channel(mut self, on: bool) -> Self {
        self.global = on;
        self
    }

    /// Pub/sub, streams, or both (default [`Mode::PubSub`]).
    ///
    /// See [`RedisLayerBuilder`]'s example.
    #[must_use]
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// What to do when the queue is full (default [`Overflow::DropNewest`]).
    ///
    /// See [`RedisLayerBuilder`]'s example.
    #[must_use]
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.overflow = overflow;
        self
    }

    /// The queue's capacity in events (default
    /// [`RedisLayer::DEFAULT_CAPACITY`]) and in bytes of queued lines
    /// (default [`RedisLayer::DEFAULT_MAX_QUEUED_BYTES`]). It bounds the
    /// lines waiting in the queue; the batch the worker is sending is on top
    /// of it, so [`in_flight`](crate::RedisStats::in_flight) reaches the
    /// capacity plus one batch (8,448 lines by default).
    ///
    /// See [`RedisLayerBuilder`]'s example.
    #[must_use]
    pub fn capacity(mut self, events: usize, bytes: usize) -> Self {
        self.capacity = events;
        self.max_queued_bytes = bytes;
        self
    }

    /// The longest line published; longer ones are dropped and counted
    /// (default [`RedisLayer::DEFAULT_MAX_PAYLOAD`]).
    ///
    /// See [`RedisLayerBuilder`]'s example.
    #[must_use]
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.max_payload = bytes;
        self
    }

    /// The most events and bytes in one pipeline (default 256 and 256 KiB).
    ///
    /// See [`RedisLayerBuilder`]'s example.
    #[must_use]
    pub fn batch(mut self, events: usize, bytes: usize) -> Self {
        self.batch_size = events;
        self.batch_bytes = bytes;
        self
    }

    /// Connect timeout (default 1 s), and read and write timeout (default
    /// 2 s): a frozen server never hangs the worker longer than this.
    ///
    /// See [`RedisLayerBuilder`]'s example.
    #[must_use]
    pub fn timeouts(mut self, connect: Duration, io: Duration) -> Self {
        self.connect_timeout = connect;
        self.io_timeout = io;
        self
    }

    /// The longest pause between reconnection attempts (default 5 s; the
    /// pause starts at 100 ms and doubles, with jitter).
    ///
    /// See [`RedisLayerBuilder`]'s example.
    #[must_use]
    pub fn max_backoff(mut self, max: Duration) -> Self {
        self.backoff_max = max;
        self
    }

    /// How long dropping the guard waits for queued lines (default
    /// [`RedisLayer::DEFAULT_SHUTDOWN_TIMEOUT`]).
    ///
    /// See [`RedisLayerBuilder`]'s example.
    #[must_use]
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// How often, at most, the worker says on stderr how many lines were
    /// dropped or failed since it last did, when Redis could not be told
    /// (it is down, it refuses the login, ...): one line with the counts
    /// and why (default [`RedisLayer::DEFAULT_STDERR_REPORT_EVERY`]). While
    /// Redis takes lines, drops are reported on Redis itself (a WARN line
    /// on the global feed), not on stderr.
    ///
    /// ```
    /// let builder = spanline_redis::RedisLayer::builder("redis://127.0.0.1:6379")
    ///     .stderr_report_every(std::time::Duration::from_secs(60));
    /// # drop(builder);
    /// ```
    #[must_use]
    pub fn stderr_report_every(mut self, every: Duration) -> Self {
        self.stderr_every = every;
        self
    }

    /// Streams: approximate length limits of the global and job streams
    /// (default 100,000 and 10,000), and the expiry of a job stream after
    /// its last line (default 1 hour).
    ///
    /// See [`RedisLayerBuilder`]'s example.
    #[must_use]
    pub fn stream_limits(
        mut self,
        global_maxlen: usize,
        job_maxlen: usize,
        job_ttl: Duration,
    ) -> Self {
        self.global_maxlen = global_maxlen;
        self.job_maxlen = job_maxlen;
        self.job_stream_ttl = job_ttl;
        self
    }

    /// Publish with `SPUBLISH` (sharded pub/sub, Redis 7+): on a Redis
    /// Cluster each channel stays on the shard that owns it. Subscribers use
    /// `SSUBSCRIBE`. For a cluster's URL list, see
    /// [`RedisLayer::builder_cluster`].
    ///
    /// See [`RedisLayerBuilder`]'s example.
    #[must_use]
    pub fn sharded(mut self, on: bool) -> Self {
        self.sharded = on;
        self
    }

    /// The line's shape: a [`Schema`], a
    /// [`SchemaBuilder`](spanline_core::SchemaBuilder) or a
    /// [`Preset`](spanline_core::Preset). Pass the JSON layer's schema
    /// (`json.schema().clone()`) and both write the same bytes, encoded once
    /// per event. Default: a flat schema of its own.
    ///
    /// ```
    /// let json = spanline_json::JsonLayer::new();
    /// let (redis, _guard) = spanline_redis::RedisLayer::builder("redis://127.0.0.1:6379")
    ///     .schema(json.schema().clone())
    ///     .build()?;
    /// assert_eq!(redis.schema().id(), json.schema().id());
    /// # Ok::<(), spanline_redis::BuildError>(())
    /// ```
    #[must_use]
    pub fn schema(mut self, schema: impl Into<Schema>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// Builds the layer and its guard, and starts the worker thread. Never
    /// connects: a Redis that is down neither fails nor delays this.
    ///
    /// ```
    /// let (layer, guard) = spanline_redis::RedisLayer::builder("redis://127.0.0.1:6379").build()?;
    /// # drop((layer, guard));
    /// # Ok::<(), spanline_redis::BuildError>(())
    /// ```
    pub fn build(self) -> Result<(RedisLayer, RedisGuard), BuildError> {
        if Channels::new(&self.prefix).is_err() {
            return Err(BuildError::InvalidPrefix(self.prefix));
        }
        if self.capacity == 0 || self.batch_size == 0 || self.max_payload == 0 {
            return Err(BuildError::InvalidOption(
                "capacity, batch size and payload limit must be above 0",
            ));
        }
        if !(1..=crate::read::MAX_GLOBAL_SHARDS).contains(&self.global_shards) {
            return Err(BuildError::InvalidOption("global shards must be 1 to 1024"));
        }
        if !self.global && self.mode == Mode::Streams && self.job_maxlen == 0 {
            return Err(BuildError::InvalidOption(
                "job stream length must be above 0",
            ));
        }
        #[cfg(not(feature = "cluster"))]
        if !self.cluster_nodes.is_empty() {
            return Err(BuildError::ClusterNotBuilt);
        }
        #[cfg(feature = "cluster")]
        if !self.cluster_nodes.is_empty() {
            let client = redis::cluster::ClusterClient::builder(self.cluster_nodes.clone())
                .connection_timeout(self.connect_timeout)
                .response_timeout(self.io_timeout)
                .build()
                .map_err(BuildError::InvalidUrl)?;
            let seeds = self
                .cluster_nodes
                .iter()
                .filter_map(|url| redis::Client::open(url.as_str()).ok())
                .collect();
            // Our own connections to the masters, but over TLS.
            let map = crate::read::ClusterMap::new(&self.cluster_nodes.join(","))
                .ok()
                .filter(|map| !map.is_tls());
            return self.start(Target::Cluster { client, seeds, map });
        }
        if let Some(why) = url_problem(&self.url) {
            return Err(BuildError::BadUrl(why));
        }
        let client = redis::Client::open(self.url.as_str()).map_err(BuildError::InvalidUrl)?;
        self.start(Target::single(client))
    }

    /// Starts the worker thread on `target`.
    fn start(self, target: Target) -> Result<(RedisLayer, RedisGuard), BuildError> {
        let channels = Channels::new(&self.prefix)
            .map_err(|_| BuildError::InvalidPrefix(self.prefix.clone()))?;
        let (tx, rx) = bounded(self.capacity);
        let (ctrl, ctrl_rx) = unbounded();
        let queue = Arc::new(Queue {
            tx,
            rx,
            ctrl,
            stats: RedisStats::default(),
            closed: AtomicBool::new(false),
            overflow: self.overflow,
            max_queued_bytes: self.max_queued_bytes as u64,
            exit: crate::queue::Exit::new(),
        });
        let schema = self.schema.unwrap_or_default();
        let config = WorkerConfig {
            channels: channels.clone(),
            global: self.global,
            global_shards: self.global_shards,
            mode: self.mode,
            sharded: self.sharded,
            batch_size: self.batch_size,
            batch_bytes: self.batch_bytes,
            connect_timeout: self.connect_timeout,
            io_timeout: self.io_timeout,
            backoff_max: self.backoff_max,
            global_maxlen: self.global_maxlen,
            job_maxlen: self.job_maxlen,
            job_stream_ttl: self.job_stream_ttl,
            stderr_every: self.stderr_every,
            schema: schema.clone(),
        };
        let worker = Worker::new(queue.clone(), ctrl_rx, config, target);
        let handle = std::thread::Builder::new()
            .name("spanline-redis".into())
            .spawn(move || worker.run())
            .map_err(BuildError::Spawn)?;
        let guard = RedisGuard::new(queue.clone(), handle, self.shutdown_timeout);
        let sink = RedisSink {
            queue,
            channels,
            global: self.global,
            max_payload: self.max_payload,
            report: Arc::new(crate::report::Report::new(schema.clone())),
        };
        Ok((RedisLayer::new(schema, sink), guard))
    }
}

/// Checks a Redis URL as [`RedisLayer::builder`] does, without connecting:
/// what is wrong with it is said in words (no scheme, no host, a port that
/// is not a number, …), never repeating the URL, which may hold a password.
/// For programs that read Redis (a CLI, a console) and want the same words.
///
/// ```
/// assert!(spanline_redis::check_url("redis://127.0.0.1:6379/0").is_ok());
/// let err = spanline_redis::check_url("127.0.0.1:6379").unwrap_err();
/// assert_eq!(err.to_string(), "invalid Redis URL: no scheme (`redis://`); expected redis://[user:password@]host[:port][/db], rediss://… or unix:///path");
/// let err = spanline_redis::check_url("redis://:s3cret@host:port").unwrap_err();
/// assert!(!err.to_string().contains("s3cret"));
/// ```
pub fn check_url(url: &str) -> Result<(), BuildError> {
    match url_problem(url) {
        Some(why) => Err(BuildError::BadUrl(why)),
        None => Ok(()),
    }
}

/// What is wrong with a Redis URL, in words, without repeating it (it may
/// hold a password); `None` when it looks right.
fn url_problem(url: &str) -> Option<String> {
    const FORM: &str =
        "expected redis://[user:password@]host[:port][/db], rediss://… or unix:///path";
    let Some((scheme, rest)) = url.split_once("://") else {
        return Some(format!("no scheme (`redis://`); {FORM}"));
    };
    match scheme {
        "redis" | "valkey" => {}
        "rediss" | "valkeys" if cfg!(feature = "tls") => {}
        "rediss" | "valkeys" => {
            return Some("rediss:// needs spanline-redis's `tls` feature".to_string())
        }
        "unix" | "redis+unix" => return None,
        other => {
            let shown: String = other.chars().take(16).collect();
            return Some(format!("unknown scheme `{shown}`; {FORM}"));
        }
    }
    // Past the credentials: host, port and database.
    let host_part = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let (authority, path) = host_part.split_once('/').unwrap_or((host_part, ""));
    let authority = authority.split_once('?').map_or(authority, |(a, _)| a);
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => (h, Some(p)),
        _ => (authority, None),
    };
    if host.is_empty() {
        return Some(format!("no host; {FORM}"));
    }
    if let Some(port) = port {
        if port.parse::<u16>().is_err() {
            return Some("the port is not a number from 0 to 65535".to_string());
        }
    }
    let db = path.split_once('?').map_or(path, |(d, _)| d);
    if !db.is_empty() && db.parse::<i64>().is_err() {
        return Some("the database (after the `/`) is not a number".to_string());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::url_problem;

    #[test]
    fn url_problems_are_named_without_the_url() {
        for (url, said) in [
            ("not a url", "no scheme"),
            ("http://h:1", "unknown scheme `http`"),
            ("redis://", "no host"),
            ("redis://:secret@h:port", "the port is not a number"),
            ("redis://h:6379/zero", "the database"),
        ] {
            let why = url_problem(url).unwrap_or_default();
            assert!(why.contains(said), "{url}: {why}");
            assert!(!why.contains("secret"), "{why}");
        }
        for url in [
            "redis://127.0.0.1:6379",
            "redis://user:p%40ss@host:1/2",
            "redis://h",
            "unix:///tmp/redis.sock",
            "redis://[::1]:6379/0",
        ] {
            assert_eq!(url_problem(url), None, "{url}");
        }
    }
}
