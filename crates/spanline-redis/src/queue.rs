//! The queue between the logging threads and the worker: its items, the
//! overflow policy, and the accounting of every line that enters it.
//! Nothing here knows Redis.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::stats::{add, RedisStats};

/// What `on_event` does when the queue is full.
///
/// ```
/// use std::time::Duration;
/// use spanline_redis::{Overflow, RedisLayer};
/// let live_view = RedisLayer::builder("redis://127.0.0.1:6379").overflow(Overflow::DropOldest);
/// let careful = RedisLayer::builder("redis://127.0.0.1:6379").overflow(Overflow::Block { max_wait: Duration::from_millis(5) });
/// assert!(format!("{live_view:?} {careful:?}").contains("DropOldest"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Overflow {
    /// Drop the new event (counted). Never blocks. The default.
    DropNewest,
    /// Evict the oldest queued event (counted) to make room: a live view
    /// keeps the freshest lines.
    DropOldest,
    /// Wait for room up to `max_wait`, then drop (counted).
    Block {
        /// The longest the logging thread waits.
        max_wait: Duration,
    },
    /// Wait for room for as long as it takes: lossless, but a Redis outage
    /// stalls every thread that logs once the queue is full. Opt-in only.
    BlockForever,
}

/// One queued event.
#[derive(Debug)]
pub(crate) struct Item {
    /// The line, without its newline.
    pub(crate) line: Box<[u8]>,
    /// The job's channel (and stream key): `{prefix}:{job_id}`.
    pub(crate) job: Option<std::sync::Arc<str>>,
    /// To the job's channel only, not the global one (a job's end line:
    /// the global feed stays exactly the lines the application logged).
    pub(crate) job_only: bool,
}

/// Messages from the guard to the worker.
#[derive(Debug)]
pub(crate) enum Control {
    /// A flush is waiting: get out of any idle wait.
    Wake,
    /// Publish what is queued until `deadline`, abandon the rest, then stop.
    Shutdown { deadline: Instant, done: Sender<()> },
}

/// What the layer, the worker and the guard share.
#[derive(Debug)]
pub(crate) struct Queue {
    pub(crate) tx: Sender<Item>,
    pub(crate) rx: Receiver<Item>,
    pub(crate) ctrl: Sender<Control>,
    pub(crate) stats: RedisStats,
    pub(crate) closed: AtomicBool,
    pub(crate) overflow: Overflow,
    pub(crate) max_queued_bytes: u64,
}

impl Queue {
    /// Takes every line still queued and counts it abandoned at shutdown.
    pub(crate) fn abandon_queued(&self) {
        let c = &self.stats.inner;
        while let Ok(item) = self.rx.try_recv() {
            add(&c.dequeued_bytes, item.line.len() as u64);
            add(&c.shutdown, 1);
        }
    }

    pub(crate) fn has_room(&self) -> bool {
        !self.tx.is_full() && self.stats.inner.queued_bytes() < self.max_queued_bytes
    }

    /// Evicts the oldest queued event; false when the queue was empty.
    pub(crate) fn evict_one(&self) -> bool {
        match self.rx.try_recv() {
            Ok(old) => {
                let c = &self.stats.inner;
                add(&c.dequeued_bytes, old.line.len() as u64);
                add(&c.evicted, 1);
                true
            }
            Err(_) => false,
        }
    }

    fn drop_new(&self, item_len: usize, reason: &std::sync::atomic::AtomicU64) {
        let c = &self.stats.inner;
        add(&c.dequeued_bytes, item_len as u64);
        add(reason, 1);
    }

    /// Puts `item` on the queue following the overflow policy.
    pub(crate) fn enqueue(&self, item: Item) {
        let c = &self.stats.inner;
        let len = item.line.len();
        add(&c.enqueued_bytes, len as u64);
        let outcome = match self.overflow {
            Overflow::DropNewest => self
                .tx
                .try_send(item)
                .map_err(|e| (e.is_disconnected(), &c.queue_full)),
            Overflow::DropOldest => {
                let mut item = item;
                loop {
                    match self.tx.try_send(item) {
                        Ok(()) => break Ok(()),
                        Err(TrySendError::Full(back)) => {
                            // Another thread may have emptied the queue meanwhile.
                            self.evict_one();
                            item = back;
                        }
                        Err(TrySendError::Disconnected(_)) => break Err((true, &c.shutdown)),
                    }
                }
            }
            Overflow::Block { max_wait } => {
                let deadline = Instant::now() + max_wait;
                self.wait_for_bytes(Some(deadline));
                self.tx.send_deadline(item, deadline).map_err(|e| match e {
                    crossbeam_channel::SendTimeoutError::Timeout(_) => (false, &c.block_timeout),
                    crossbeam_channel::SendTimeoutError::Disconnected(_) => (true, &c.shutdown),
                })
            }
            Overflow::BlockForever => {
                self.wait_for_bytes(None);
                self.tx.send(item).map_err(|_| (true, &c.shutdown))
            }
        };
        if let Err((disconnected, reason)) = outcome {
            self.drop_new(len, if disconnected { &c.shutdown } else { reason });
        }
    }

    /// Blocking policies also respect the bytes budget: wait (polling, the
    /// rare path) until the worker has drained below it.
    fn wait_for_bytes(&self, deadline: Option<Instant>) {
        while self.stats.inner.queued_bytes() > self.max_queued_bytes
            && !self.closed.load(Ordering::SeqCst)
            && deadline.is_none_or(|d| Instant::now() < d)
        {
            std::thread::sleep(Duration::from_micros(100));
        }
    }
}
