//! [`OtlpGuard`]: flush on demand, shut down once (on drop, or from a
//! guard kept in a `static`).

use std::io::Write as _;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use crate::shared::{Control, Shared};

/// How long the shutdown waits for a worker told to stop at once (its
/// timeout ran out) before it settles the worker's lines itself.
const GRACE: Duration = Duration::from_millis(500);

/// How long the shutdown waits for stderr to take its line (a pipe nobody
/// reads may never).
const SAY_WITHIN: Duration = Duration::from_millis(100);

/// Keeps the worker running; exports queued records when dropped, waiting
/// up to the shutdown timeout, and counts what it abandons
/// ([`OtlpStats::dropped_shutdown`](crate::OtlpStats::dropped_shutdown)).
///
/// Keep it alive for as long as the application logs, typically in
/// `main`. `std::process::exit` and `panic = "abort"` skip destructors,
/// and so the last export.
///
/// ```
/// let (_layer, guard) = spanline_otlp::OtlpLayer::builder().endpoint("http://127.0.0.1:1").build()?;
/// assert!(guard.flush(std::time::Duration::from_millis(10)), "nothing was logged");
/// drop(guard); // exports what is queued, up to the shutdown timeout
/// # Ok::<(), spanline_otlp::BuildError>(())
/// ```
#[must_use = "dropping the guard stops exporting; keep it alive in main"]
#[derive(Debug)]
pub struct OtlpGuard {
    shared: Arc<Shared>,
    control: Sender<Control>,
    handle: Mutex<Option<JoinHandle<()>>>,
    timeout: Duration,
}

/// What [`OtlpGuard::shutdown`] did.
///
/// ```
/// let (_layer, guard) = spanline_otlp::OtlpLayer::builder().endpoint("http://127.0.0.1:1").build()?;
/// let outcome = guard.shutdown(std::time::Duration::from_secs(1)).unwrap();
/// assert!(outcome.complete && outcome.abandoned == 0, "nothing was logged");
/// # Ok::<(), spanline_otlp::BuildError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownOutcome {
    /// Every record was settled (exported, or failed) before the timeout.
    pub complete: bool,
    /// Records given up when the timeout ran out, counted in
    /// [`dropped_shutdown`](crate::OtlpStats::dropped_shutdown).
    pub abandoned: u64,
}

impl OtlpGuard {
    pub(crate) fn new(
        shared: Arc<Shared>,
        control: Sender<Control>,
        handle: JoinHandle<()>,
        timeout: Duration,
    ) -> Self {
        Self {
            shared,
            control,
            handle: Mutex::new(Some(handle)),
            timeout,
        }
    }

    /// Sends what is queued now and waits until every line queued before
    /// this call was exported or failed, or until `timeout`; true when
    /// none is left. Records keep flowing afterwards.
    ///
    /// See [`OtlpGuard`]'s example.
    pub fn flush(&self, timeout: Duration) -> bool {
        let shared = &*self.shared;
        let target = shared.queued.load(Ordering::SeqCst);
        let deadline = later(timeout);
        let _ = self.control.send(Control::Flush);
        loop {
            if shared.finished.load(Ordering::SeqCst) >= target {
                return true;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Stops taking events, exports what is queued, and stops the worker,
    /// waiting up to `timeout`; then an export still waiting is cut short,
    /// and what is left is counted as dropped
    /// ([`dropped_shutdown`](crate::OtlpStats::dropped_shutdown)) and said
    /// on stderr. `None` when the guard was shut down already. Dropping the
    /// guard calls it with the builder's
    /// [`shutdown_timeout`](crate::OtlpLayerBuilder::shutdown_timeout).
    ///
    /// See [`ShutdownOutcome`]'s example.
    pub fn shutdown(&self, timeout: Duration) -> Option<ShutdownOutcome> {
        let handle = self
            .handle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()?;
        let shared = &*self.shared;
        shared.closed.store(true, Ordering::SeqCst);
        let _ = self.control.send(Control::Stop);
        let stopped = |within: Option<Instant>| {
            while !handle.is_finished() && within.is_none_or(|d| Instant::now() < d) {
                std::thread::sleep(Duration::from_millis(1));
            }
            handle.is_finished()
        };
        if !stopped(later(timeout)) {
            // Time is up: the worker drops what it holds and stops.
            shared.cancelled.store(true, Ordering::SeqCst);
            shared.cancel.notify_one();
            if !stopped(later(GRACE)) {
                shared.give_up();
            }
        }
        if handle.is_finished() {
            let _ = handle.join();
        }
        let stats = &shared.stats;
        let abandoned = shared.abandoned.load(Ordering::SeqCst);
        if abandoned > 0 {
            say(format!(
                "spanline-otlp: {abandoned} records not exported at shutdown (the timeout of \
                 {timeout:?} ran out); in all, of {} records, {} exported, {} failed, {} dropped",
                stats.emitted(),
                stats.exported(),
                stats.failed(),
                stats.dropped(),
            ));
        }
        Some(ShutdownOutcome {
            complete: abandoned == 0,
            abandoned,
        })
    }
}

/// `timeout` from now; `None` when that is too far to tell (no limit).
fn later(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

impl Drop for OtlpGuard {
    fn drop(&mut self) {
        let _ = self.shutdown(self.timeout);
    }
}

/// Writes a line on stderr from a thread of its own, waiting
/// [`SAY_WITHIN`] at most: a stderr nobody reads never holds the caller.
fn say(text: String) {
    let Ok(writer) = std::thread::Builder::new()
        .name("spanline-otlp-exit".into())
        .spawn(move || drop(writeln!(std::io::stderr(), "{text}")))
    else {
        return;
    };
    let until = Instant::now() + SAY_WITHIN;
    while !writer.is_finished() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(1));
    }
}
