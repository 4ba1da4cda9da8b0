//! How long the reader has waited on an empty pipe: what tells a slow
//! reader from a pipe that a descendant keeps open.
//!
//! After the child exits, everything it wrote is already in the pipe, so a
//! reader that is still busy (re-emitting into a slow sink) only needs time,
//! and `wait` must give it all the time it needs: blocking mode delivers
//! every record. Only time spent *waiting for bytes* after the child is gone
//! means someone else holds the write end; that is what the leak timeout
//! measures.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

#[derive(Clone, Debug, Default)]
pub(crate) struct IdleClock {
    inner: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    /// Time spent waiting in finished reads.
    waited: Duration,
    /// When the read under way started waiting.
    since: Option<Instant>,
}

impl IdleClock {
    /// The reader starts waiting for bytes.
    pub(crate) fn start(&self) {
        self.lock().since = Some(Instant::now());
    }

    /// The wait is over: bytes, EOF or an error came.
    pub(crate) fn stop(&self) {
        let mut state = self.lock();
        if let Some(since) = state.since.take() {
            state.waited += since.elapsed();
        }
    }

    /// All the time spent waiting so far.
    pub(crate) fn waited(&self) -> Duration {
        let state = self.lock();
        state.waited + state.since.map_or(Duration::ZERO, |s| s.elapsed())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is two plain values: a panic cannot leave it torn.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How often `wait` looks at the clock while the reader works.
pub(crate) const POLL: Duration = Duration::from_millis(10);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_only_waiting_time() {
        let clock = IdleClock::default();
        assert_eq!(clock.waited(), Duration::ZERO);
        clock.start();
        std::thread::sleep(Duration::from_millis(20));
        clock.stop();
        let after_wait = clock.waited();
        assert!(after_wait >= Duration::from_millis(20));
        // Busy time (between reads) does not count.
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(clock.waited(), after_wait);
        clock.start();
        assert!(clock.waited() >= after_wait, "a wait under way counts");
    }
}
