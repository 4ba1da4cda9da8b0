//! The lines the layer writes itself, encoded with the layer's own schema
//! so that a live view reads them like any other line (structlog keys under
//! the structlog preset, ECS keys under ECS, the service and static
//! fields): the drop report (a WARN line from the worker) and a job's end
//! (an INFO line when the span that brought its `job_id` closes).
//!
//! Each line is a real `tracing` event, dispatched to a private subscriber
//! that encodes it and nothing else.

use std::sync::{Arc, Mutex};

use spanline_core::Schema;
use tracing_core::subscriber::Interest;
use tracing_core::{Dispatch, Event, LevelFilter, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

use crate::RedisStats;

/// The drop report's target.
pub(crate) const TARGET: &str = "spanline::redis";
/// The target of a job's end line.
pub(crate) const JOB_TARGET: &str = "spanline::job";

/// Encodes the layer's own lines.
pub(crate) struct Report {
    dispatch: Dispatch,
    line: Arc<Mutex<Vec<u8>>>,
    /// One line at a time: the line is written by the event, then taken.
    turn: Mutex<()>,
}

impl std::fmt::Debug for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Report").finish_non_exhaustive()
    }
}

/// The private subscriber's one layer: keeps the encoded line.
struct Encode {
    schema: Schema,
    line: Arc<Mutex<Vec<u8>>>,
}

impl<S> Layer<S> for Encode
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    // Only its own callsites, and nothing below INFO: this subscriber must
    // not make any other callsite more expensive.
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if ours(meta) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, meta: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        ours(meta)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::INFO)
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if let Ok(mut line) = self.line.lock() {
            line.clear();
            let at = self.schema.clock().now();
            self.schema.encode_event(event, &ctx, at, &mut line);
        }
    }
}

fn ours(meta: &Metadata<'_>) -> bool {
    meta.target() == TARGET || meta.target() == JOB_TARGET
}

impl Report {
    pub(crate) fn new(schema: Schema) -> Self {
        let line = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry().with(Encode {
            schema,
            line: line.clone(),
        });
        Self {
            dispatch: Dispatch::new(subscriber),
            line,
            turn: Mutex::new(()),
        }
    }

    /// Runs `log` (which logs one event) on the private subscriber and
    /// returns the line, without its newline.
    fn encode(&self, log: impl FnOnce()) -> Vec<u8> {
        let _turn = self.turn.lock();
        tracing_core::dispatcher::with_default(&self.dispatch, log);
        let mut line = self
            .line
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default();
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        line
    }

    /// The line that says job `job_id` ended: its span (the one that
    /// brought the `job_id`) closed.
    pub(crate) fn job_ended(&self, job_id: &str) -> Vec<u8> {
        self.encode(|| {
            tracing::info!(target: "spanline::job", job_id, job_end = true, "job ended");
        })
    }

    /// The report line (without its newline): `dropped` since the last
    /// report (`dropped_total` minus `reported`), and the counts by reason.
    pub(crate) fn drops(&self, stats: &RedisStats, reported: u64) -> Vec<u8> {
        let total = stats.dropped();
        self.encode(|| {
            tracing::warn!(
                target: "spanline::redis",
                dropped = total.saturating_sub(reported),
                dropped_total = total,
                queue_full = stats.dropped_queue_full(),
                evicted = stats.dropped_evicted(),
                block_timeout = stats.dropped_block_timeout(),
                oversize = stats.dropped_oversize(),
                shutdown = stats.dropped_shutdown(),
                reentrant = stats.dropped_reentrant(),
                failed = stats.failed(),
                "spanline-redis dropped log lines"
            );
        })
    }
}

/// Writes one line to stderr, ignoring failure (a closed stderr is no
/// reason to panic): no `eprintln!`, no lock held across calls, no
/// thread-local state, so an at-exit hook may call it.
pub(crate) fn say(text: &str) {
    use std::io::Write;
    let mut line = String::with_capacity(text.len() + 1);
    line.push_str(text);
    line.push('\n');
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// Says `text` on stderr like [`say`], from a thread of its own, waiting
/// `max` at most for the write: a stderr nobody reads (a full pipe) never
/// holds the caller longer. Uses no thread-local state (an at-exit hook
/// calls it).
pub(crate) fn say_within(text: String, max: std::time::Duration) {
    use std::sync::{Condvar, Mutex, PoisonError};
    let text: Arc<str> = Arc::from(text);
    let written = Arc::new((Mutex::new(false), Condvar::new()));
    let spawned = {
        let (text, written) = (text.clone(), written.clone());
        std::thread::Builder::new()
            .name("spanline-redis-exit".into())
            .spawn(move || {
                say(&text);
                let (done, changed) = &*written;
                *done.lock().unwrap_or_else(PoisonError::into_inner) = true;
                changed.notify_all();
            })
    };
    if spawned.is_err() {
        // No thread to spare: write it here.
        return say(&text);
    }
    let (done, changed) = &*written;
    let until = crate::queue::later(max);
    let mut done = done.lock().unwrap_or_else(PoisonError::into_inner);
    while !*done {
        let left = until.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return;
        }
        done = match changed.wait_timeout(done, left) {
            Ok((done, _)) => done,
            Err(poisoned) => poisoned.into_inner().0,
        };
    }
}

/// The drop reasons that counted anything, in words: `2 queue full, 3 oversize`.
fn drop_reasons(stats: &RedisStats) -> String {
    [
        (stats.dropped_shutdown(), "abandoned at shutdown"),
        (stats.dropped_queue_full(), "queue full"),
        (stats.dropped_evicted(), "evicted by newer lines"),
        (stats.dropped_block_timeout(), "waited too long for room"),
        (stats.dropped_oversize(), "too long"),
        (stats.dropped_reentrant(), "logged while encoding"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, why)| format!("{n} {why}"))
    .collect::<Vec<_>>()
    .join(", ")
}

/// The shutdown's stderr line: what was not published over the layer's
/// life, by fate; `None` when every line was.
pub(crate) fn at_exit(stats: &RedisStats) -> Option<String> {
    let (dropped, failed) = (stats.dropped(), stats.failed());
    if dropped + failed == 0 {
        return None;
    }
    let mut text = format!(
        "spanline-redis: at exit, {} of {} log lines were not published to Redis: {dropped} dropped",
        dropped + failed,
        stats.emitted(),
    );
    if dropped > 0 {
        text.push_str(&format!(" ({})", drop_reasons(stats)));
    }
    text.push_str(&format!(", {failed} failed"));
    let unknown = stats.failed_unknown();
    if unknown > 0 {
        text.push_str(&format!(
            " ({unknown} of them on the wire when the connection broke or its time ran out: \
             Redis may have them)"
        ));
    }
    text.push_str(&format!("; {} published", stats.published()));
    Some(text)
}

/// The periodic stderr line while lines are lost without a report on
/// Redis: `dropped` and `failed` over the last `since`, and why.
pub(crate) fn meanwhile(
    stats: &RedisStats,
    dropped: u64,
    failed: u64,
    since: std::time::Duration,
    why: &str,
) -> String {
    format!(
        "spanline-redis: {dropped} log lines dropped and {failed} failed in the last {} s, \
         not reported on Redis ({why}); in all: {} dropped, {} failed, {} of {} published",
        since.as_secs().max(1),
        stats.dropped(),
        stats.failed(),
        stats.published(),
        stats.emitted(),
    )
}
