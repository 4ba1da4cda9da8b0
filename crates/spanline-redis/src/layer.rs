//! [`RedisLayer`]: the caller's side. Encode, enqueue, never touch the network.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, unbounded, Receiver, Sender, TrySendError};
use spanline_core::{CtxView, Schema, SharedLine, SharedLineConsumer};
use tracing_core::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::config::{BuildError, Overflow, RedisLayerBuilder};
use crate::link::Target;
use crate::stats::{add, sub, RedisStats};
use crate::worker::{Control, Worker};
use crate::RedisGuard;

/// Publishes every event's JSON line to Redis: to `{prefix}:global`, and to
/// `{prefix}:{job_id}` when the event's context holds a valid `job_id`.
///
/// `on_event` encodes the line (or reuses the JSON layer's, see
/// [`RedisLayerBuilder::schema`]) and puts it on a bounded queue; a worker
/// thread publishes queued lines in pipelined batches. The application
/// never waits on the network, and never fails because of Redis:
///
/// - Redis down at start or mid-run: the worker reconnects forever, with
///   capped exponential back-off and jitter; the queue rides out the outage,
///   and what does not fit follows the [`Overflow`] policy.
/// - A frozen server: connect, read and write timeouts bound every wait.
/// - Nothing is lost silently: [`RedisStats`] counts every event's fate, and
///   at most once a second the worker publishes a WARN line with the drop
///   counts to the global channel.
///
/// ```no_run
/// use tracing_subscriber::prelude::*;
/// use spanline_core::ContextLayer;
/// use spanline_json::JsonLayer;
/// use spanline_redis::RedisLayer;
///
/// let json = JsonLayer::new();
/// let (redis, guard) = RedisLayer::builder("redis://127.0.0.1:6379")
///     .schema(json.schema().clone()) // publish the very bytes the JSON layer writes
///     .build()
///     .expect("a valid URL");
/// tracing_subscriber::registry().with(ContextLayer::new()).with(json).with(redis).init();
///
/// let job = spanline_context::JobId::new("build");
/// let _span = tracing::info_span!("job", job_id = %job).entered();
/// tracing::info!("compiling"); // to logs:global and logs:build_0193…
/// drop(guard); // flushes queued lines, up to the shutdown timeout
/// ```
#[derive(Debug)]
pub struct RedisLayer {
    shared: Arc<Shared>,
    _interest: SharedLineConsumer,
}

/// One queued event.
#[derive(Debug)]
pub(crate) struct Item {
    pub(crate) line: Box<[u8]>,
    /// The job's channel (and stream key): `{prefix}:{job_id}`.
    pub(crate) job: Option<Arc<str>>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) tx: Sender<Item>,
    pub(crate) rx: Receiver<Item>,
    pub(crate) ctrl: Sender<Control>,
    pub(crate) stats: RedisStats,
    pub(crate) closed: AtomicBool,
    pub(crate) overflow: Overflow,
    pub(crate) max_queued_bytes: u64,
    pub(crate) max_payload: usize,
    pub(crate) schema: Schema,
    /// Lines go to the global channel too.
    pub(crate) global: bool,
    /// `{prefix}:`, the start of every channel name.
    pub(crate) channel_prefix: String,
}

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

    /// Starts a builder for the Redis at `url`:
    /// `redis://[user[:password]@]host[:port][/db]`, or `rediss://` with the
    /// `tls` feature. The URL is never logged.
    ///
    /// ```
    /// let builder = spanline_redis::RedisLayer::builder("rediss://logger:secret@redis.internal:6380/0");
    /// # let _ = builder;
    /// ```
    pub fn builder(url: &str) -> RedisLayerBuilder {
        RedisLayerBuilder::new(url)
    }

    /// Starts a builder for a Redis Cluster (feature `cluster`), given some
    /// of its nodes (`redis://host:port` each). Lines are published with
    /// `SPUBLISH` (sharded pub/sub): each channel stays on the shard that
    /// owns its slot, and subscribers use `SSUBSCRIBE`. The global channel
    /// lives on one shard.
    ///
    /// ```
    /// let builder = spanline_redis::RedisLayer::builder_cluster(&["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"]);
    /// # let _ = builder;
    /// ```
    #[cfg(feature = "cluster")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cluster")))]
    pub fn builder_cluster(nodes: &[&str]) -> RedisLayerBuilder {
        let mut builder =
            RedisLayerBuilder::new(nodes.first().copied().unwrap_or_default()).sharded(true);
        builder.cluster_nodes = nodes.iter().map(|n| n.to_string()).collect();
        builder
    }

    /// The layer's counters.
    ///
    /// ```
    /// let (layer, _guard) = spanline_redis::RedisLayer::builder("redis://127.0.0.1:1").build().unwrap();
    /// let stats = layer.stats(); // keep it: the layer moves into the subscriber
    /// assert_eq!(stats.emitted(), 0);
    /// ```
    pub fn stats(&self) -> RedisStats {
        self.shared.stats.clone()
    }
}

pub(crate) fn start(
    config: RedisLayerBuilder,
    target: Target,
) -> Result<(RedisLayer, RedisGuard), BuildError> {
    let (tx, rx) = bounded(config.capacity);
    let (ctrl, ctrl_rx) = unbounded();
    let shared = Arc::new(Shared {
        tx,
        rx,
        ctrl,
        stats: RedisStats::default(),
        closed: AtomicBool::new(false),
        overflow: config.overflow,
        max_queued_bytes: config.max_queued_bytes as u64,
        max_payload: config.max_payload,
        schema: config.schema.clone().unwrap_or_default(),
        global: config.global,
        channel_prefix: format!("{}:", config.prefix),
    });
    let shutdown_timeout = config.shutdown_timeout;
    let worker = Worker::new(shared.clone(), ctrl_rx, config, target);
    let handle = std::thread::Builder::new()
        .name("spanline-redis".into())
        .spawn(move || worker.run())
        .map_err(BuildError::Spawn)?;
    let guard = RedisGuard::new(shared.clone(), handle, shutdown_timeout);
    Ok((
        RedisLayer {
            shared,
            _interest: SharedLine::consumer(),
        },
        guard,
    ))
}

/// The last job channel built on this thread: (prefix, job id as JSON, channel).
type LastJob = Option<(String, Box<str>, Arc<str>)>;

thread_local! {
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    static LAST_JOB: std::cell::RefCell<LastJob> = const { std::cell::RefCell::new(None) };
}

/// The line without its newline, if it fits the payload limit.
fn boxed_line(line: &[u8], max: usize) -> Option<Box<[u8]>> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    (line.len() <= max).then(|| line.into())
}

/// A job id usable in a channel name: `[A-Za-z0-9_:-]{1,100}`, not `global`.
pub(crate) fn valid_job_channel(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 100
        && id != "global"
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b':' | b'-'))
}

impl Shared {
    /// Takes every line still queued and counts it abandoned at shutdown.
    pub(crate) fn abandon_queued(&self) {
        let c = &self.stats.inner;
        while let Ok(item) = self.rx.try_recv() {
            sub(&c.queued_bytes, item.line.len() as u64);
            sub(&c.in_flight, 1);
            add(&c.shutdown, 1);
        }
    }

    /// The event's job channel, `{prefix}:{job_id}`, when its context holds
    /// a valid `job_id` (an invalid one is counted).
    fn job_channel<S>(&self, ctx: &Context<'_, S>, event: &Event<'_>) -> Option<Arc<str>>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let view = CtxView::of_event(ctx, event)?;
        view.with_json("job_id", |json| {
            // A job logs many lines: reuse the channel name built for the
            // last one on this thread instead of allocating it again.
            let cached = LAST_JOB
                .try_with(|last| {
                    let last = last.try_borrow().ok()?;
                    let (prefix, id_json, channel) = last.as_ref()?;
                    (prefix == &self.channel_prefix && id_json.as_ref() == json)
                        .then(|| channel.clone())
                })
                .ok()
                .flatten();
            if cached.is_some() {
                return cached;
            }
            let id =
                spanline_core::decode_json_str(json).unwrap_or(std::borrow::Cow::Borrowed(json));
            if !valid_job_channel(&id) {
                add(&self.stats.inner.invalid_job_id, 1);
                return None;
            }
            let channel: Arc<str> = Arc::from(format!("{}{id}", self.channel_prefix));
            let _ = LAST_JOB.try_with(|last| {
                if let Ok(mut last) = last.try_borrow_mut() {
                    *last = Some((
                        self.channel_prefix.clone(),
                        Box::from(json),
                        channel.clone(),
                    ));
                }
            });
            Some(channel)
        })?
    }

    fn has_room(&self) -> bool {
        !self.tx.is_full()
            && self.stats.inner.queued_bytes.load(Ordering::SeqCst) < self.max_queued_bytes
    }

    /// Evicts the oldest queued event; false when the queue was empty.
    fn evict_one(&self) -> bool {
        match self.rx.try_recv() {
            Ok(old) => {
                let c = &self.stats.inner;
                sub(&c.queued_bytes, old.line.len() as u64);
                sub(&c.in_flight, 1);
                add(&c.evicted, 1);
                true
            }
            Err(_) => false,
        }
    }

    fn drop_new(&self, item_len: usize, reason: &std::sync::atomic::AtomicU64) {
        let c = &self.stats.inner;
        sub(&c.queued_bytes, item_len as u64);
        sub(&c.in_flight, 1);
        add(reason, 1);
    }

    /// Puts `item` on the queue following the overflow policy.
    fn enqueue(&self, item: Item) {
        let c = &self.stats.inner;
        let len = item.line.len();
        add(&c.in_flight, 1);
        add(&c.queued_bytes, len as u64);
        let outcome = match self.overflow {
            Overflow::DropNewest => self
                .tx
                .try_send(item)
                .map_err(|e| (e.is_disconnected(), &c.queue_full)),
            Overflow::DropOldest => {
                let mut item = item;
                loop {
                    match self.tx.try_send(item) {
                        Ok(()) => break Ok(()),
                        Err(TrySendError::Full(back)) => {
                            // Another thread may have emptied the queue meanwhile.
                            self.evict_one();
                            item = back;
                        }
                        Err(TrySendError::Disconnected(_)) => break Err((true, &c.shutdown)),
                    }
                }
            }
            Overflow::Block { max_wait } => {
                let deadline = Instant::now() + max_wait;
                self.wait_for_bytes(Some(deadline));
                self.tx.send_deadline(item, deadline).map_err(|e| match e {
                    crossbeam_channel::SendTimeoutError::Timeout(_) => (false, &c.block_timeout),
                    crossbeam_channel::SendTimeoutError::Disconnected(_) => (true, &c.shutdown),
                })
            }
            Overflow::BlockForever => {
                self.wait_for_bytes(None);
                self.tx.send(item).map_err(|_| (true, &c.shutdown))
            }
        };
        if let Err((disconnected, reason)) = outcome {
            self.drop_new(len, if disconnected { &c.shutdown } else { reason });
        }
    }

    /// Blocking policies also respect the bytes budget: wait (polling, the
    /// rare path) until the worker has drained below it.
    fn wait_for_bytes(&self, deadline: Option<Instant>) {
        while self.stats.inner.queued_bytes.load(Ordering::SeqCst) > self.max_queued_bytes
            && !self.closed.load(Ordering::SeqCst)
            && deadline.is_none_or(|d| Instant::now() < d)
        {
            std::thread::sleep(Duration::from_micros(100));
        }
    }
}

impl<S> Layer<S> for RedisLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        // No loop to guard against here: the worker's thread logs to a
        // no-op dispatcher, so nothing it (or the redis crate) logs comes back.
        let shared = &*self.shared;
        let c = &shared.stats.inner;
        // Without the global channel, an event outside any job has nowhere
        // to go: not this layer's business, not counted.
        let mut job = None;
        if !shared.global {
            job = Some(shared.job_channel(&ctx, event));
            if job == Some(None) {
                return;
            }
        }
        add(&c.emitted, 1);
        if shared.closed.load(Ordering::SeqCst) {
            add(&c.shutdown, 1);
            return;
        }
        // Check for room before any other work: under overflow, the job
        // lookup and the encoding would be wasted.
        match shared.overflow {
            Overflow::DropNewest if !shared.has_room() => {
                add(&c.queue_full, 1);
                return;
            }
            Overflow::DropOldest => while !shared.has_room() && shared.evict_one() {},
            _ => {}
        }
        let job = job.unwrap_or_else(|| shared.job_channel(&ctx, event));
        // The JSON layer's bytes when it encoded this event with our schema;
        // else encode into a per-thread buffer. One exact-size copy either way.
        let line = SharedLine::with(&shared.schema, event, |line| {
            boxed_line(line, shared.max_payload)
        })
        .unwrap_or_else(|| {
            let encode = |buf: &mut Vec<u8>| {
                buf.clear();
                shared
                    .schema
                    .encode_event(event, &ctx, shared.schema.clock().now(), buf);
                boxed_line(buf, shared.max_payload)
            };
            SCRATCH
                .try_with(|cell| match cell.try_borrow_mut() {
                    Ok(mut buf) => encode(&mut buf),
                    Err(_) => encode(&mut Vec::new()),
                })
                .unwrap_or_else(|_| encode(&mut Vec::new()))
        });
        match line {
            Some(line) => shared.enqueue(Item { line, job }),
            None => add(&c.oversize, 1),
        }
    }
}
