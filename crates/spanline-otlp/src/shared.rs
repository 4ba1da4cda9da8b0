//! What the layer, the guard and the worker share: the queue of lines,
//! the counters, and the shutdown's state; and what the guard asks of the
//! worker.
//!
//! Each event is settled (exported, failed or dropped) by whoever holds
//! it: the logging thread until its line is on the queue, the worker from
//! then on. The guard settles nothing, but for the last resort of a worker
//! that does not stop when told (see [`Shared::give_up`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use crossbeam_channel::Sender;

use crate::stats::{add, OtlpStats};

/// What the layer and the guard share with the worker.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) lines: Sender<Box<[u8]>>,
    pub(crate) stats: OtlpStats,
    /// Set when the shutdown begins: later events are dropped and counted.
    pub(crate) closed: AtomicBool,
    /// Set when the shutdown's time ran out: the worker stops exporting
    /// and drops what it holds.
    pub(crate) cancelled: AtomicBool,
    /// Wakes a worker waiting on an export when the time ran out.
    pub(crate) cancel: tokio::sync::Notify,
    /// Events a logging thread holds: counted in `emitted`, not yet on the
    /// queue nor settled. The worker's last drain waits for it to be 0.
    pub(crate) holding: AtomicU64,
    /// Lines put on the queue, and those of them the worker settled: a
    /// flush waits for the second to reach the first (the queue is FIFO).
    pub(crate) queued: AtomicU64,
    pub(crate) finished: AtomicU64,
    /// Lines of the queue dropped because the shutdown's time ran out.
    pub(crate) abandoned: AtomicU64,
    /// Set (under the lock) when the guard settled what the worker still
    /// held: the worker counts nothing more.
    pub(crate) given_up: Mutex<bool>,
}

impl Shared {
    pub(crate) fn new(lines: Sender<Box<[u8]>>) -> Self {
        Self {
            lines,
            stats: OtlpStats::default(),
            closed: AtomicBool::new(false),
            cancelled: AtomicBool::new(false),
            cancel: tokio::sync::Notify::new(),
            holding: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            abandoned: AtomicU64::new(0),
            given_up: Mutex::new(false),
        }
    }

    /// A logging thread settles the event it holds as `counter` says.
    pub(crate) fn drop_held(&self, counter: &AtomicU64) {
        add(counter, 1);
        self.holding.fetch_sub(1, Ordering::SeqCst);
    }

    /// The worker settles `n` lines it took off the queue, unless the
    /// guard settled them.
    pub(crate) fn settle(&self, n: u64, how: Settled) {
        let given_up = self.given_up.lock().unwrap_or_else(PoisonError::into_inner);
        if *given_up {
            return;
        }
        let c = &self.stats.inner;
        match how {
            Settled::Exported => add(&c.exported, n),
            Settled::Failed => add(&c.failed, n),
            Settled::Abandoned => {
                add(&c.shutdown, n);
                add(&self.abandoned, n);
            }
        }
        add(&self.finished, n);
    }

    pub(crate) fn given_up(&self) -> bool {
        *self.given_up.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The last resort, for a worker that did not stop when told: what it
    /// still holds (on the queue or in its batch) is counted as abandoned
    /// here, and the worker counts nothing more. A line put on the queue
    /// at this very instant may be counted by the logging thread too.
    pub(crate) fn give_up(&self) {
        let mut given_up = self.given_up.lock().unwrap_or_else(PoisonError::into_inner);
        if *given_up {
            return;
        }
        *given_up = true;
        let left = self
            .queued
            .load(Ordering::SeqCst)
            .saturating_sub(self.finished.load(Ordering::SeqCst));
        add(&self.stats.inner.shutdown, left);
        add(&self.abandoned, left);
        add(&self.finished, left);
    }
}

/// How the worker settled lines.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Settled {
    Exported,
    Failed,
    /// Dropped: the shutdown's time ran out.
    Abandoned,
}

/// What the guard asks of the worker.
#[derive(Debug)]
pub(crate) enum Control {
    /// Send what is queued now.
    Flush,
    /// Send what is queued, then stop.
    Stop,
}
