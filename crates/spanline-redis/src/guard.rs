//! [`RedisGuard`]: flush on demand, and on drop.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::queue::{Control, Queue};

/// Keeps the worker running; flushes queued lines when dropped, waiting up
/// to the shutdown timeout, and counts what it abandons
/// ([`RedisStats::dropped_shutdown`](crate::RedisStats::dropped_shutdown)).
///
/// Keep it alive for as long as the application logs, typically in `main`.
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
    handle: Option<JoinHandle<()>>,
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

impl RedisGuard {
    pub(crate) fn new(shared: Arc<Queue>, handle: JoinHandle<()>, timeout: Duration) -> Self {
        Self {
            shared,
            handle: Some(handle),
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
        let deadline = Instant::now() + timeout;
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
}

impl Drop for RedisGuard {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + self.timeout;
        let (done, finished) = crossbeam_channel::bounded(1);
        let _ = self.shared.ctrl.send(Control::Shutdown { deadline, done });
        // The worker bounds every network wait by the deadline; the margin
        // covers the last socket operation it started.
        let waited = finished.recv_timeout(self.timeout + Duration::from_millis(500));
        if waited.is_ok() {
            if let Some(handle) = self.handle.take() {
                let _ = handle.join();
            }
        } else {
            // The worker did not answer in time (it should never happen: its
            // every wait is bounded by the deadline). Count what is still
            // queued as abandoned, so the loss is not silent.
            self.shared.abandon_queued();
        }
    }
}
