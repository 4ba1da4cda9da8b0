//! [`RedisStats`]: what happened to every event, as counters.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Written by the logging threads on every event.
    pub(crate) emitted: Padded,
    /// Bytes put on the queue (logging threads) and taken off it (the
    /// worker, or eviction): two counters on their own cache lines, so the
    /// two sides do not fight over one; their difference is what is queued.
    pub(crate) enqueued_bytes: Padded,
    pub(crate) dequeued_bytes: Padded,
    /// Written by the worker.
    pub(crate) published: Padded,
    pub(crate) failed: AtomicU64,
    /// Of `failed`: the outcome is unknown.
    pub(crate) unknown: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    // Drop reasons: the rare path, written by either side.
    pub(crate) queue_full: AtomicU64,
    pub(crate) evicted: AtomicU64,
    pub(crate) block_timeout: AtomicU64,
    pub(crate) oversize: AtomicU64,
    pub(crate) shutdown: AtomicU64,
    pub(crate) reentrant: AtomicU64,
    pub(crate) invalid_job_id: AtomicU64,
}

/// A counter alone on its cache line (and the next: prefetchers pair them).
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Padded(AtomicU64);

impl std::ops::Deref for Padded {
    type Target = AtomicU64;

    fn deref(&self) -> &AtomicU64 {
        &self.0
    }
}

impl Counters {
    /// Bytes on the queue now.
    pub(crate) fn queued_bytes(&self) -> u64 {
        let taken = self.dequeued_bytes.load(Ordering::SeqCst);
        self.enqueued_bytes
            .load(Ordering::SeqCst)
            .saturating_sub(taken)
    }
}

pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::SeqCst);
}

/// Counters of a [`RedisLayer`](crate::RedisLayer): cheap to clone, shared
/// with the layer and its worker.
///
/// Every event that reaches the layer is counted once in `emitted`, and
/// ends in exactly one of `published`, `dropped` (by reason) or `failed`;
/// until then it is `in_flight` (queued, or in the batch being sent):
///
/// ```text
/// emitted == published + dropped + failed + in_flight
/// ```
///
/// After [`RedisGuard::flush`](crate::RedisGuard::flush) returns complete,
/// or [`RedisGuard::shutdown`](crate::RedisGuard::shutdown) returns (the
/// guard dropped), `in_flight` is 0. (Counters are read one at a
/// time: while events are being logged, a sum read mid-way may be off by
/// the events being counted at that instant.)
///
/// ```
/// # let (layer, _guard) = spanline_redis::RedisLayer::builder("redis://127.0.0.1:1").build().unwrap();
/// let stats = layer.stats();
/// assert_eq!(stats.emitted(), stats.published() + stats.dropped() + stats.failed() + stats.in_flight());
/// ```
#[derive(Clone, Debug, Default)]
pub struct RedisStats {
    pub(crate) inner: Arc<Counters>,
}

macro_rules! getters {
    ($($(#[$doc:meta])* $name:ident => $field:ident;)*) => {$(
        $(#[$doc])*
        pub fn $name(&self) -> u64 {
            self.inner.$field.load(Ordering::SeqCst)
        }
    )*};
}

impl RedisStats {
    getters! {
        /// Events that reached the layer (past its filter).
        emitted => emitted;
        /// Events whose every command succeeded.
        published => published;
        /// Events that failed: Redis refused them (a refused login, an ACL
        /// without the right, a key of the wrong type, ...), or their
        /// outcome is unknown ([`failed_unknown`](Self::failed_unknown)).
        /// Never retried: at most once.
        failed => failed;
        /// Of [`failed`](Self::failed): events whose batch was on the wire
        /// when the connection broke, its deadline passed, or the guard's
        /// shutdown timeout ran out (a frozen server): Redis may still have
        /// run some of their commands.
        failed_unknown => unknown;
        /// Dropped: the queue was full (`DropNewest`).
        dropped_queue_full => queue_full;
        /// Dropped: evicted by newer events (`DropOldest`).
        dropped_evicted => evicted;
        /// Dropped: `Block` waited its maximum.
        dropped_block_timeout => block_timeout;
        /// Dropped: the line was longer than the payload limit.
        dropped_oversize => oversize;
        /// Dropped: still queued when shutdown's timeout ran out, or logged
        /// after the guard was dropped.
        dropped_shutdown => shutdown;
        /// Dropped: logged from inside the encoding of another line, deeper
        /// than [`LineLayer::MAX_REENTRANCY`](spanline_core::LineLayer::MAX_REENTRANCY).
        dropped_reentrant => reentrant;
        /// Events whose `job_id` was invalid as a channel name; they were
        /// published to the global channel only (not a drop).
        invalid_job_ids => invalid_job_id;
        /// Connection attempts that failed (each followed by a back-off).
        reconnects => reconnects;
    }

    /// Events queued or being sent: every event emitted and not yet
    /// published, dropped or failed.
    ///
    /// ```
    /// let (layer, _guard) = spanline_redis::RedisLayer::builder("redis://127.0.0.1:1").build().unwrap();
    /// assert_eq!(layer.stats().in_flight(), 0);
    /// ```
    pub fn in_flight(&self) -> u64 {
        // Settled first: an event settled after this read is still counted
        // in `emitted`, so the difference never goes below zero.
        let settled = self.published() + self.dropped() + self.failed();
        self.emitted().saturating_sub(settled)
    }

    /// All drops, whatever the reason.
    ///
    /// ```
    /// let (layer, _guard) = spanline_redis::RedisLayer::builder("redis://127.0.0.1:1").build().unwrap();
    /// assert_eq!(layer.stats().dropped(), 0);
    /// ```
    pub fn dropped(&self) -> u64 {
        self.dropped_queue_full()
            + self.dropped_evicted()
            + self.dropped_block_timeout()
            + self.dropped_oversize()
            + self.dropped_shutdown()
            + self.dropped_reentrant()
    }
}
