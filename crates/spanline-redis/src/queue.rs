//! The queue between the logging threads and the worker: its items, the
//! overflow policy, and the accounting of every line that enters it.
//! Nothing here knows Redis.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
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

/// `at` plus `d`, or as far as time goes: a huge timeout never panics.
pub(crate) fn after(at: Instant, d: Duration) -> Instant {
    at.checked_add(d)
        .or_else(|| at.checked_add(Duration::from_secs(u64::from(u32::MAX))))
        .unwrap_or(at)
}

/// `d` from now (see [`after`]).
pub(crate) fn later(d: Duration) -> Instant {
    after(Instant::now(), d)
}

/// Messages from the guard to the worker: both only wake it from an idle
/// wait or a back-off (the shutdown's deadline is in [`Exit`]).
#[derive(Debug)]
pub(crate) enum Control {
    /// A flush is waiting: get out of any idle wait.
    Wake,
    /// Shutdown was asked: publish what is queued until [`Exit::deadline`],
    /// abandon the rest, then stop.
    Shutdown,
}

/// Where the worker stands, as far as shutdown is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Publishing.
    Running,
    /// The worker settled every line and stopped.
    Done,
    /// The worker missed the shutdown's deadline (its batch was waiting on
    /// a frozen server): the guard settled its lines; the worker counts
    /// nothing more and stops when its wait ends.
    TakenOver,
}

/// The lines the worker holds, out of the queue and not yet settled:
/// whoever settles them (the worker, or the guard taking over at the
/// deadline) does so under this lock, so each is counted exactly once.
#[derive(Debug)]
pub(crate) struct Held {
    /// Events in the worker's batch.
    pub(crate) batch: u64,
    /// The batch is on the wire: its outcome is unknown until the replies come.
    pub(crate) sending: bool,
    pub(crate) phase: Phase,
}

/// Shutdown, shared by the guard and the worker. Nothing here uses
/// thread-local state: the guard's side runs from an at-exit hook too.
#[derive(Debug)]
pub(crate) struct Exit {
    epoch: Instant,
    /// Nanoseconds from `epoch` to the shutdown's deadline, plus one; 0
    /// until shutdown is asked.
    deadline: AtomicU64,
    /// Set by the first shutdown call: later calls return at once.
    pub(crate) asked: AtomicBool,
    held: Mutex<Held>,
    changed: Condvar,
    /// Lines the shutdown gave up (queued, or on the wire at the deadline).
    pub(crate) abandoned: AtomicU64,
}

impl Exit {
    pub(crate) fn new() -> Self {
        Self {
            epoch: Instant::now(),
            deadline: AtomicU64::new(0),
            asked: AtomicBool::new(false),
            held: Mutex::new(Held {
                batch: 0,
                sending: false,
                phase: Phase::Running,
            }),
            changed: Condvar::new(),
            abandoned: AtomicU64::new(0),
        }
    }

    /// The shutdown's deadline, once asked.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        match self.deadline.load(Ordering::SeqCst) {
            0 => None,
            n => Some(after(self.epoch, Duration::from_nanos(n - 1))),
        }
    }

    pub(crate) fn set_deadline(&self, at: Instant) {
        let nanos = at.saturating_duration_since(self.epoch).as_nanos();
        let nanos = u64::try_from(nanos).unwrap_or(u64::MAX).min(u64::MAX - 1);
        self.deadline.store(nanos + 1, Ordering::SeqCst);
    }

    /// The lock on the held lines (a panic elsewhere never stops the accounting).
    pub(crate) fn held(&self) -> MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// True once nobody will take lines off the queue any more.
    pub(crate) fn settled(&self) -> bool {
        self.held().phase != Phase::Running
    }

    /// Says that the phase changed.
    pub(crate) fn notify(&self) {
        self.changed.notify_all();
    }

    /// Waits while the worker runs, until `until`; returns the lock.
    pub(crate) fn wait_settled(&self, until: Instant) -> MutexGuard<'_, Held> {
        let mut held = self.held();
        while held.phase == Phase::Running {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            held = match self.changed.wait_timeout(held, left) {
                Ok((held, _)) => held,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        held
    }
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
    pub(crate) exit: Exit,
}

impl Queue {
    /// Takes every line still queued and counts it abandoned at shutdown;
    /// returns how many.
    pub(crate) fn abandon_queued(&self) -> u64 {
        let c = &self.stats.inner;
        let mut n = 0;
        while let Ok(item) = self.rx.try_recv() {
            add(&c.dequeued_bytes, item.line.len() as u64);
            add(&c.shutdown, 1);
            n += 1;
        }
        n
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
                let deadline = later(max_wait);
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
        match outcome {
            Err((disconnected, reason)) => {
                self.drop_new(len, if disconnected { &c.shutdown } else { reason });
            }
            // Shut down between the check for room and now: the worker may
            // be gone, count the line (and any other late one) abandoned.
            Ok(()) if self.closed.load(Ordering::SeqCst) && self.exit.settled() => {
                let _ = self.abandon_queued();
            }
            Ok(()) => {}
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
