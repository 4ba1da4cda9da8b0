//! [`RedisGuard`]: flush on demand, shut down once (on drop, or from a
//! guard kept in a `static`).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::queue::{after, later, Control, Phase, Queue};
use crate::stats::add;

/// How long past its timeout [`RedisGuard::shutdown`] lets the worker
/// finish on its own (counting, the last system call it started) before it
/// settles the worker's lines itself.
const GRACE: Duration = Duration::from_millis(100);

/// How long [`RedisGuard::shutdown`] waits for stderr to take its line (a
/// pipe nobody reads may never).
const SAY_WITHIN: Duration = Duration::from_millis(100);

/// Keeps the worker running; flushes queued lines when dropped, waiting up
/// to the shutdown timeout, and counts what it abandons
/// ([`RedisStats::dropped_shutdown`](crate::RedisStats::dropped_shutdown)).
///
/// Keep it alive for as long as the application logs, typically in `main`,
/// or in a `static` and call [`shutdown`](Self::shutdown) at exit.
/// `std::process::exit` and `panic = "abort"` skip destructors, and so the
/// flush.
///
/// ```
/// let (layer, guard) = spanline_redis::RedisLayer::builder("redis://127.0.0.1:1").build().unwrap();
/// let outcome = guard.flush(std::time::Duration::from_millis(10));
/// assert!(outcome.complete, "nothing was logged");
/// drop(guard); // flushes, up to the shutdown timeout
/// # drop(layer);
/// ```
#[must_use = "dropping the guard stops publishing; keep it alive in main"]
#[derive(Debug)]
pub struct RedisGuard {
    shared: Arc<Queue>,
    handle: Mutex<Option<JoinHandle<()>>>,
    timeout: Duration,
}
/// What [`RedisGuard::flush`] achieved.
///
/// ```
/// let (_layer, guard) = spanline_redis::RedisLayer::builder("redis://127.0.0.1:1").build().unwrap();
/// let spanline_redis::FlushOutcome { complete, pending } = guard.flush(std::time::Duration::ZERO);
/// assert!(complete && pending == 0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlushOutcome {
    /// Every event emitted before the call was published, dropped or failed.
    pub complete: bool,
    /// Events emitted before the call and still in flight at return.
    pub pending: u64,
}

/// What [`RedisGuard::shutdown`] did.
///
/// ```
/// let (_layer, guard) = spanline_redis::RedisLayer::builder("redis://127.0.0.1:1").build().unwrap();
/// let Some(spanline_redis::ShutdownOutcome { complete, abandoned, .. }) =
///     guard.shutdown(std::time::Duration::from_secs(1))
/// else {
///     unreachable!("the first call shuts down")
/// };
/// assert!(complete && abandoned == 0, "nothing was logged");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownOutcome {
    /// Every line was settled (published, or failed on Redis's reply)
    /// before the timeout: none was abandoned.
    pub complete: bool,
    /// Lines given up when the timeout ran out: still queued (counted in
    /// [`dropped_shutdown`](crate::RedisStats::dropped_shutdown)), or on the
    /// wire to a server that did not answer in time (counted in
    /// [`failed_unknown`](crate::RedisStats::failed_unknown)).
    pub abandoned: u64,
}

impl RedisGuard {
    pub(crate) fn new(shared: Arc<Queue>, handle: JoinHandle<()>, timeout: Duration) -> Self {
        Self {
            shared,
            handle: Mutex::new(Some(handle)),
            timeout,
        }
    }

    /// Waits until every event emitted before this call has been published,
    /// dropped or has failed, or until `timeout`. Lines keep flowing
    /// afterwards.
    ///
    /// ```
    /// let (_layer, guard) = spanline_redis::RedisLayer::builder("redis://127.0.0.1:1").build().unwrap();
    /// let outcome = guard.flush(std::time::Duration::from_secs(1));
    /// assert!(outcome.complete);
    /// ```
    pub fn flush(&self, timeout: Duration) -> FlushOutcome {
        let stats = &self.shared.stats;
        let target = stats.emitted();
        let deadline = later(timeout);
        let _ = self.shared.ctrl.send(Control::Wake);
        loop {
            let settled = stats.published() + stats.dropped() + stats.failed();
            if settled >= target {
                return FlushOutcome {
                    complete: true,
                    pending: 0,
                };
            }
            if Instant::now() >= deadline {
                return FlushOutcome {
                    complete: false,
                    pending: target - settled,
                };
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Stops publishing: publishes what is queued, waiting up to `timeout`,
    /// then counts every line still queued or in flight, says on stderr
    /// what was lost (if any line was), and returns. Dropping the guard
    /// calls it with the builder's
    /// [`shutdown_timeout`](crate::RedisLayerBuilder::shutdown_timeout).
    ///
    /// When it returns, every line logged before is settled
    /// ([`in_flight`](crate::RedisStats::in_flight) is 0, and
    /// `emitted == published + dropped + failed`), and the stderr line
    /// (`spanline-redis: at exit, …`) is written; lines logged afterwards
    /// are counted in [`dropped_shutdown`](crate::RedisStats::dropped_shutdown).
    /// It returns within `timeout` and 0.1 s, whatever Redis does (0.1 s
    /// more when stderr does not take the line: a pipe nobody reads): a
    /// batch still waiting on a frozen server then is counted in
    /// [`failed_unknown`](crate::RedisStats::failed_unknown) (Redis may still
    /// run it).
    ///
    /// It takes `&self`, so a guard kept in a `static` can be shut down
    /// from an at-exit hook: it uses no thread-local state and logs
    /// nothing through `tracing`. Only the first call (or drop) shuts down;
    /// a later one returns `None` at once.
    ///
    /// ```
    /// use std::sync::OnceLock;
    /// use std::time::Duration;
    /// use spanline_redis::{RedisGuard, RedisLayer};
    ///
    /// static GUARD: OnceLock<RedisGuard> = OnceLock::new();
    ///
    /// let (layer, guard) = RedisLayer::builder("redis://127.0.0.1:1").build()?;
    /// let stats = layer.stats();
    /// let guard = GUARD.get_or_init(|| guard);
    /// // ... install `layer` and log; then, at exit (an at-exit hook, or the end of main):
    /// let outcome = guard.shutdown(Duration::from_secs(2));
    /// assert!(outcome.is_some_and(|o| o.complete));
    /// assert_eq!(stats.in_flight(), 0);
    /// assert_eq!(guard.shutdown(Duration::from_secs(2)), None, "once only");
    /// # Ok::<(), spanline_redis::BuildError>(())
    /// ```
    pub fn shutdown(&self, timeout: Duration) -> Option<ShutdownOutcome> {
        let exit = &self.shared.exit;
        if exit.asked.swap(true, Ordering::SeqCst) {
            return None;
        }
        self.shared.closed.store(true, Ordering::SeqCst);
        let deadline = later(timeout);
        exit.set_deadline(deadline);
        // Wakes the worker from an idle wait or a back-off; its every later
        // wait is bounded by the deadline.
        let _ = self.shared.ctrl.send(Control::Shutdown);
        let mut held = exit.wait_settled(after(deadline, GRACE));
        if held.phase == Phase::Running {
            // The worker is stuck in a wait it started before the shutdown
            // (a batch on a frozen server): settle its lines here. It counts
            // nothing more once it sees this.
            held.phase = Phase::TakenOver;
            let c = &self.shared.stats.inner;
            let batch = std::mem::take(&mut held.batch);
            if held.sending {
                add(&c.failed, batch);
                add(&c.unknown, batch);
            } else {
                add(&c.shutdown, batch);
            }
            let queued = self.shared.abandon_queued();
            add(&exit.abandoned, batch + queued);
            exit.notify();
        }
        let done = held.phase == Phase::Done;
        drop(held);
        if done {
            self.join_worker();
        }
        if let Some(text) = crate::report::at_exit(&self.shared.stats) {
            crate::report::say_within(text, SAY_WITHIN);
        }
        let abandoned = exit.abandoned.load(Ordering::SeqCst);
        Some(ShutdownOutcome {
            complete: abandoned == 0,
            abandoned,
        })
    }

    /// Joins the worker if it has stopped (it does right after it settled
    /// every line); never waits for it.
    fn join_worker(&self) {
        let mut handle = self.handle.lock().unwrap_or_else(PoisonError::into_inner);
        if handle.as_ref().is_some_and(JoinHandle::is_finished) {
            if let Some(handle) = handle.take() {
                let _ = handle.join();
            }
        }
    }
}

impl Drop for RedisGuard {
    fn drop(&mut self) {
        let _ = self.shutdown(self.timeout);
    }
}
