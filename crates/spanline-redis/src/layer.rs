//! [`RedisLayer`]: the caller's side, a [`LineSink`] that routes each line
//! to its channels and puts it on the queue; it never touches the network.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use spanline_core::{JobEnds, LineEvent, LineLayer, LineSink, OnJobEnd, Refusal, Schema};
use tracing_core::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::queue::{Item, Overflow, Queue};
use crate::report::Report;
use crate::stats::add;
use crate::Channels;

/// Publishes every event's JSON line to Redis: to `{prefix}:global`, and to
/// `{prefix}:{job_id}` when the event's context holds a valid `job_id`.
///
/// When a job's run ends, the layer publishes one more line, to the job's
/// channel (and stream) and to the global feed: an INFO event of target
/// `spanline::job` with the fields `job_id` and `job_end = true` and the
/// message `job ended`, encoded with the layer's schema. A live view (the
/// `spanline web` console, `spanline tail`) knows from it that the job is
/// over. The run's end is the close of the outermost span carrying the job
/// id, unless the job was handed on from it (a `ContextSnapshot` captured
/// there, detached work); the [`ContextLayer`](spanline_core::ContextLayer)
/// sees it and tells this layer ([`JobEnds`](spanline_core::JobEnds)), so
/// the line comes whatever filter this layer has.
///
/// `on_event` encodes the line (or reuses the JSON layer's, see
/// [`RedisLayerBuilder::schema`](crate::RedisLayerBuilder::schema)) and puts it on a bounded queue; a worker
/// thread publishes queued lines in pipelined batches. The application
/// never waits on the network, and never fails because of Redis:
///
/// - Redis down at start or mid-run: the worker reconnects forever, with
///   capped exponential back-off and jitter; the queue rides out the outage,
///   and what does not fit follows the [`Overflow`] policy.
/// - A frozen server: connect, read and write timeouts bound every wait.
/// - Nothing is lost silently: [`RedisStats`](crate::RedisStats) counts every event's fate, and
///   at most once a second the worker publishes a WARN line with the drop
///   counts to the global channel; when Redis cannot be told (down, a
///   refused login), it says them on stderr, at most every
///   [`stderr_report_every`](crate::RedisLayerBuilder::stderr_report_every);
///   and [`RedisGuard::shutdown`](crate::RedisGuard::shutdown) (the guard's
///   drop) says on stderr what was not published.
/// - A configuration problem (a refused login, no such database, cluster
///   mode on a plain Redis or the reverse) is said once on stderr, in
///   words, and its lines are counted as failed at once, not queued.
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
    line: LineLayer<RedisSink>,
    /// Publishes a job's end line; the context layer holds it weakly.
    job_end: JobEndHook,
}

/// The hook given to the context layer's [`JobEnds`].
struct JobEndHook(Arc<OnJobEnd>);

impl std::fmt::Debug for JobEndHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JobEndHook")
    }
}

impl RedisLayer {
    /// The layer's counters.
    ///
    /// ```
    /// let (layer, _guard) = spanline_redis::RedisLayer::builder("redis://127.0.0.1:1").build().unwrap();
    /// let stats = layer.stats(); // keep it: the layer moves into the subscriber
    /// assert_eq!(stats.emitted(), 0);
    /// ```
    pub fn stats(&self) -> crate::RedisStats {
        self.line.sink().queue.stats.clone()
    }

    /// The schema lines are encoded with (see [`RedisLayerBuilder::schema`](crate::RedisLayerBuilder::schema)).
    ///
    /// ```
    /// let (layer, _guard) = spanline_redis::RedisLayer::builder("redis://127.0.0.1:1").build()?;
    /// assert_eq!(layer.schema().preset(), spanline_core::Preset::Flat);
    /// # Ok::<(), spanline_redis::BuildError>(())
    /// ```
    pub fn schema(&self) -> &Schema {
        self.line.schema()
    }

    pub(crate) fn new(schema: Schema, sink: RedisSink) -> Self {
        let ends = sink.clone();
        Self {
            line: LineLayer::new(schema, sink),
            job_end: JobEndHook(Arc::new(move |job: &str| ends.job_ended(job))),
        }
    }
}

/// Routes lines to the queue: the job's channel from the event's context.
#[derive(Clone, Debug)]
pub(crate) struct RedisSink {
    pub(crate) queue: Arc<Queue>,
    pub(crate) channels: Channels,
    /// Lines go to the global channel too.
    pub(crate) global: bool,
    pub(crate) max_payload: usize,
    /// Encodes the job-end lines.
    pub(crate) report: Arc<Report>,
}

/// The last job channel built on this thread: (channels, job id as JSON, channel).
type LastJob = Option<(Channels, Box<str>, Arc<str>)>;

thread_local! {
    static LAST_JOB: std::cell::RefCell<LastJob> = const { std::cell::RefCell::new(None) };
}

impl RedisSink {
    /// Counts an event and says whether the queue takes it (the overflow
    /// policy decides when it is full).
    fn room(&self) -> bool {
        let queue = &*self.queue;
        let c = &queue.stats.inner;
        add(&c.emitted, 1);
        if queue.closed.load(Ordering::SeqCst) {
            add(&c.shutdown, 1);
            return false;
        }
        // Check for room before any other work: under overflow, the job
        // lookup and the encoding would be wasted.
        match queue.overflow {
            Overflow::DropNewest if !queue.has_room() => {
                add(&c.queue_full, 1);
                return false;
            }
            Overflow::DropOldest => while !queue.has_room() && queue.evict_one() {},
            _ => {}
        }
        true
    }

    /// A job's run ended: publish its end line.
    fn job_ended(&self, job_id: &str) {
        let Ok(channel) = self.channels.job(job_id) else {
            return;
        };
        if !self.room() {
            return;
        }
        let line = self.report.job_ended(job_id);
        if line.len() > self.max_payload {
            add(&self.queue.stats.inner.oversize, 1);
            return;
        }
        self.queue.enqueue(Item {
            line: line.into(),
            job: Some(Arc::from(channel)),
            job_only: false,
        });
    }

    /// The event's job channel, `{prefix}:{job_id}`, when its context holds
    /// a valid `job_id` (an invalid one is counted).
    fn job_channel(&self, event: &LineEvent<'_>) -> Option<Arc<str>> {
        let view = event.context()?;
        view.with_json("job_id", |json| {
            // A job logs many lines: reuse the channel name built for the
            // last one on this thread instead of allocating it again.
            let cached = LAST_JOB
                .try_with(|last| {
                    let last = last.try_borrow().ok()?;
                    let (channels, id_json, channel) = last.as_ref()?;
                    (channels == &self.channels && id_json.as_ref() == json)
                        .then(|| channel.clone())
                })
                .ok()
                .flatten();
            if cached.is_some() {
                return cached;
            }
            let id =
                spanline_core::decode_json_str(json).unwrap_or(std::borrow::Cow::Borrowed(json));
            let Ok(channel) = self.channels.job(&id) else {
                add(&self.queue.stats.inner.invalid_job_id, 1);
                return None;
            };
            let channel: Arc<str> = Arc::from(channel);
            let _ = LAST_JOB.try_with(|last| {
                if let Ok(mut last) = last.try_borrow_mut() {
                    *last = Some((self.channels.clone(), Box::from(json), channel.clone()));
                }
            });
            Some(channel)
        })?
    }
}

impl LineSink for RedisSink {
    fn ready(&self, event: &LineEvent<'_>) -> bool {
        // No loop to guard against here: the worker's thread logs to a
        // no-op dispatcher, so nothing it (or the redis crate) logs comes back.
        // Without the global channel, an event outside any job has nowhere
        // to go: not this layer's business, not counted.
        if !self.global && self.job_channel(event).is_none() {
            return false;
        }
        self.room()
    }

    fn accept(&self, line: &[u8], event: &LineEvent<'_>) {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let job = self.job_channel(event);
        self.queue.enqueue(Item {
            line: line.into(),
            job,
            job_only: false,
        });
    }

    fn max_line(&self) -> usize {
        self.max_payload
    }

    fn refused(&self, refusal: Refusal, _event: &LineEvent<'_>) {
        // `ready` counted the event as emitted: settle its fate.
        let c = &self.queue.stats.inner;
        match refusal {
            Refusal::Oversize { .. } => add(&c.oversize, 1),
            _ => add(&c.reentrant, 1),
        }
    }
}

impl<S> Layer<S> for RedisLayer
where
    S: Subscriber + for<'a> LookupSpan<'a> + 'static,
{
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        self.line.on_event(event, ctx);
    }

    fn on_register_dispatch(&self, subscriber: &tracing_core::Dispatch) {
        if let Some(ends) = subscriber.downcast_ref::<JobEnds>() {
            ends.subscribe(&self.job_end.0);
        }
    }

    // Also here: tracing-subscriber does not pass `on_register_dispatch` to
    // a layer inside an `Option` or a `Vec` (as `init()` composes it), but
    // does pass this one, with the layers under this one.
    fn on_layer(&mut self, subscriber: &mut S) {
        let subscriber: &dyn Subscriber = subscriber;
        if let Some(ends) = subscriber.downcast_ref::<JobEnds>() {
            ends.subscribe(&self.job_end.0);
        }
    }
}
