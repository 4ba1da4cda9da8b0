//! [`OtlpStats`]: what happened to every event, as counters.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) emitted: AtomicU64,
    pub(crate) exported: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) queue_full: AtomicU64,
    pub(crate) oversize: AtomicU64,
    pub(crate) reentrant: AtomicU64,
    pub(crate) shutdown: AtomicU64,
}

pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::SeqCst);
}

fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::SeqCst)
}

/// Counters of an [`OtlpLayer`](crate::OtlpLayer): cheap to clone, shared
/// with the layer and its worker.
///
/// Every event that reaches the layer is counted once in `emitted`, and
/// ends in exactly one of `exported`, `dropped` (by reason) or `failed`;
/// until then it is `in_flight` (queued, or in the batch being sent):
///
/// ```text
/// emitted == exported + dropped + failed + in_flight
/// ```
///
/// ```
/// # let (layer, _guard) = spanline_otlp::OtlpLayer::builder().endpoint("http://127.0.0.1:1").build().unwrap();
/// let stats = layer.stats();
/// assert_eq!(stats.emitted(), stats.exported() + stats.dropped() + stats.failed() + stats.in_flight());
/// ```
#[derive(Clone, Debug, Default)]
pub struct OtlpStats {
    pub(crate) inner: Arc<Counters>,
}

impl OtlpStats {
    /// Events the layer was offered.
    pub fn emitted(&self) -> u64 {
        get(&self.inner.emitted)
    }

    /// Records the endpoint accepted.
    pub fn exported(&self) -> u64 {
        get(&self.inner.exported)
    }

    /// Records whose export failed (the endpoint down, refusing, or not
    /// answering within the timeout).
    pub fn failed(&self) -> u64 {
        get(&self.inner.failed)
    }

    /// Events dropped, for any reason below.
    pub fn dropped(&self) -> u64 {
        self.dropped_queue_full()
            + self.dropped_oversize()
            + self.dropped_reentrant()
            + self.dropped_shutdown()
    }

    /// Dropped because the queue was full (the endpoint slower than the
    /// application, or down).
    pub fn dropped_queue_full(&self) -> u64 {
        get(&self.inner.queue_full)
    }

    /// Dropped because the line was longer than
    /// [`max_line`](crate::OtlpLayerBuilder::max_line).
    pub fn dropped_oversize(&self) -> u64 {
        get(&self.inner.oversize)
    }

    /// Dropped because logging recursed (an event logged while another was
    /// being encoded, too deep).
    pub fn dropped_reentrant(&self) -> u64 {
        get(&self.inner.reentrant)
    }

    /// Logged after the shutdown began, or still queued when its timeout
    /// ran out, or being exported then: that export is cut short, and the
    /// endpoint may have received part of it or all of it.
    pub fn dropped_shutdown(&self) -> u64 {
        get(&self.inner.shutdown)
    }

    /// Events neither exported, dropped nor failed yet.
    pub fn in_flight(&self) -> u64 {
        self.emitted()
            .saturating_sub(self.exported() + self.dropped() + self.failed())
    }
}
