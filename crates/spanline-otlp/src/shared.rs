//! What the layer, the guard and the worker share: the queue of lines,
//! the counters, and the shutdown's state; and what the guard asks of the
//! worker.

use std::sync::atomic::AtomicBool;
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
    /// Set (under the lock) when the guard gave up waiting and counted what
    /// was left as dropped: the worker counts nothing more.
    pub(crate) given_up: Mutex<bool>,
}

impl Shared {
    /// Settles records the worker sent, unless the guard settled them.
    pub(crate) fn settle(&self, exported: u64, failed: u64) {
        let given_up = self.given_up.lock().unwrap_or_else(PoisonError::into_inner);
        if !*given_up {
            add(&self.stats.inner.exported, exported);
            add(&self.stats.inner.failed, failed);
        }
    }

    pub(crate) fn given_up(&self) -> bool {
        *self.given_up.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What the guard asks of the worker.
#[derive(Debug)]
pub(crate) enum Control {
    /// Send what is queued now.
    Flush,
    /// Send what is queued, then stop.
    Stop,
}
