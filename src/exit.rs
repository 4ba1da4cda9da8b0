//! What `init()` does when the process exits: every line logged before is
//! written and published, or the shortfall is said on stderr, whether the
//! [`Guard`](crate::Guard) was kept, dropped at once or never dropped
//! (`std::process::exit`).
//!
//! The stack `init()` installs is global, so its Redis publisher, its OTLP
//! exporter and its
//! writer thread live in statics that nothing drops; a C `atexit` hook,
//! registered once, shuts them down. It runs after `main` returns or on
//! `std::process::exit`, not on a signal or `panic = "abort"`. By then the
//! main thread's thread-locals are gone, so the work runs on a thread of
//! its own.

use std::io::Write as _;
use std::sync::{Arc, Mutex, Once, OnceLock};
use std::time::Duration;

use crate::output::{QueueCounts, Writer};

/// The Redis publisher of the installed stack.
#[cfg(feature = "redis")]
pub(crate) static REDIS: OnceLock<spanline_redis::RedisGuard> = OnceLock::new();

/// The OTLP exporter of the installed stack.
#[cfg(feature = "otlp")]
pub(crate) static OTLP: OnceLock<spanline_otlp::OtlpGuard> = OnceLock::new();

/// How long the exit waits for queued OTLP records.
#[cfg(feature = "otlp")]
const OTLP_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// The writer thread of the installed stack, and its counts.
static WRITER: Mutex<Option<Writer>> = Mutex::new(None);

/// The counts of the writer thread, for [`Guard`](crate::Guard).
pub(crate) static WRITER_COUNTS: OnceLock<Arc<QueueCounts>> = OnceLock::new();

/// Keeps the writer thread until exit.
pub(crate) fn keep_writer(writer: Writer) {
    let _ = WRITER_COUNTS.set(writer.counts.clone());
    if let Ok(mut slot) = WRITER.lock() {
        *slot = Some(writer);
    }
    register();
}

/// Keeps the Redis publisher until exit.
#[cfg(feature = "redis")]
pub(crate) fn keep_redis(
    guard: spanline_redis::RedisGuard,
) -> Option<&'static spanline_redis::RedisGuard> {
    let kept = REDIS.set(guard).is_ok();
    register();
    kept.then(|| REDIS.get()).flatten()
}

/// Keeps the OTLP exporter until exit.
#[cfg(feature = "otlp")]
pub(crate) fn keep_otlp(
    guard: spanline_otlp::OtlpGuard,
) -> Option<&'static spanline_otlp::OtlpGuard> {
    let kept = OTLP.set(guard).is_ok();
    register();
    kept.then(|| OTLP.get()).flatten()
}

/// Registers [`at_exit`] once.
fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        #[cfg(unix)]
        // SAFETY: `at_exit` is an `extern "C" fn()` that never unwinds
        // (its work runs on another thread, whose panic `join` returns).
        #[allow(unsafe_code)]
        unsafe {
            libc::atexit(at_exit);
        }
    });
}

#[cfg(unix)]
extern "C" fn at_exit() {
    // The main thread's thread-locals are destroyed by now; a new thread
    // has its own.
    let _ = std::thread::Builder::new()
        .name("spanline-exit".into())
        .spawn(shut_down)
        .map(|worker| worker.join());
}

/// Publishes and writes what is queued, within the timeouts, and says
/// what could not be.
fn shut_down() {
    #[cfg(feature = "redis")]
    if let Some(redis) = REDIS.get() {
        // Says on stderr what it could not publish, before it returns.
        let _ = redis.shutdown(spanline_redis::RedisLayer::DEFAULT_SHUTDOWN_TIMEOUT);
    }
    #[cfg(feature = "otlp")]
    if let Some(otlp) = OTLP.get() {
        // Says on stderr what it could not send, before it returns.
        let _ = otlp.shutdown(OTLP_SHUTDOWN_TIMEOUT);
    }
    let writer = WRITER.lock().ok().and_then(|mut slot| slot.take());
    if let Some(Writer { guard, counts }) = writer {
        // Dropped, the guard waits up to a second for the writer thread to
        // drain its queue; with the queue full it may also print to a
        // stdout that does not drain. Waited for on another thread, so a
        // stalled reader never holds the exit.
        let waited = Duration::from_millis(1_500);
        let (done, dropped) = std::sync::mpsc::channel();
        let dropper = std::thread::Builder::new()
            .name("spanline-writer-exit".into())
            .spawn(move || {
                drop(guard);
                let _ = done.send(());
            });
        if dropper.is_ok() {
            let _ = dropped.recv_timeout(waited);
        }
        report_writer(&counts, waited);
    }
}

/// Says on stderr what the writer thread dropped or left unwritten.
fn report_writer(counts: &QueueCounts, waited: Duration) {
    let (dropped, unwritten) = (counts.dropped(), counts.unwritten());
    if dropped + unwritten == 0 {
        return;
    }
    let _ = writeln!(
        std::io::stderr(),
        "spanline: at exit, {} log lines were not written: {dropped} dropped because the \
         writer thread's queue was full (its reader was slower than the program), \
         {unwritten} still queued after {waited:?}",
        dropped + unwritten
    );
}
