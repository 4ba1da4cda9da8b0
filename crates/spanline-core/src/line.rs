//! Sharing one encoded line between layers.
//!
//! When the JSON layer and the Redis layer use the same [`Schema`], the
//! Redis layer publishes the very bytes the JSON layer wrote instead of
//! encoding the event again. The line is kept per thread, tagged with the
//! event it belongs to; it is stored only while some layer has declared
//! interest with [`SharedLine::consumer`], so a JSON layer alone pays nothing.
//!
//! An event is identified by a per-thread counter that the [`ContextLayer`]
//! advances for every event, plus the event's address. Without a
//! `ContextLayer` nothing is shared and each layer encodes for itself.
//!
//! [`ContextLayer`]: crate::ContextLayer

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicUsize, Ordering};

use tracing_core::Event;

use crate::Schema;

thread_local! {
    static SEQ: Cell<u64> = const { Cell::new(0) };
    static LAST: RefCell<Last> = const { RefCell::new(Last { seq: 0, event: 0, schema: 0, bytes: Vec::new() }) };
}

static CONSUMERS: AtomicUsize = AtomicUsize::new(0);

/// Lines longer than this are not kept for sharing (the consumer encodes).
const MAX_SHARED: usize = 64 * 1024;

struct Last {
    seq: u64,
    event: usize,
    schema: u64,
    bytes: Vec<u8>,
}

/// The per-thread event counter and the event's address.
pub(crate) type EventKey = (u64, usize);

/// Called by the context layer at the start of every event; returns the
/// event's key.
pub(crate) fn next_event(event: &Event<'_>) -> Option<EventKey> {
    let _ = SEQ.try_with(|s| s.set(s.get().wrapping_add(1).max(1)));
    event_key(event)
}

/// Identifies the event being dispatched on this thread: the context
/// layer's per-thread counter and the event's address. `None` when no
/// context layer has counted an event on this thread.
pub(crate) fn event_key(event: &Event<'_>) -> Option<EventKey> {
    let seq = SEQ.try_with(Cell::get).ok().filter(|&s| s != 0)?;
    Some((seq, event as *const Event<'_> as usize))
}

/// The shared encoded line of the current event (see the module docs).
///
/// ```
/// use spanline_core::{Schema, SharedLine};
/// // A layer that wants other layers' lines keeps a consumer token alive.
/// let _interest = SharedLine::consumer();
/// # let _ = Schema::default();
/// ```
#[derive(Debug)]
pub struct SharedLine {
    _private: (),
}

/// Interest in shared lines; producers store lines while any token lives.
///
/// ```
/// let token = spanline_core::SharedLine::consumer();
/// // … layers now keep their encoded lines for this one to reuse …
/// drop(token);
/// ```
#[derive(Debug)]
#[must_use = "lines are shared only while the token is alive"]
pub struct SharedLineConsumer {
    _private: (),
}

impl Drop for SharedLineConsumer {
    fn drop(&mut self) {
        CONSUMERS.fetch_sub(1, Ordering::Relaxed);
    }
}

impl SharedLine {
    /// Declares interest in lines encoded by other layers.
    ///
    /// ```
    /// let _interest = spanline_core::SharedLine::consumer();
    /// ```
    pub fn consumer() -> SharedLineConsumer {
        CONSUMERS.fetch_add(1, Ordering::Relaxed);
        SharedLineConsumer { _private: () }
    }

    /// Offers `line`, the encoding of `event` with `schema`, to later layers.
    /// A no-op unless some layer holds a [`SharedLineConsumer`].
    ///
    /// ```
    /// use tracing_subscriber::{layer::Context, Layer};
    /// // In a layer that encodes lines with `schema`, after writing one:
    /// struct Writer(spanline_core::Schema);
    /// impl<S: tracing::Subscriber> Layer<S> for Writer {
    ///     fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
    ///         let line = b"{}\n"; // the encoded line
    ///         spanline_core::SharedLine::publish(&self.0, event, line);
    ///     }
    /// }
    /// ```
    #[inline]
    pub fn publish(schema: &Schema, event: &Event<'_>, line: &[u8]) {
        if CONSUMERS.load(Ordering::Relaxed) == 0 || line.len() > MAX_SHARED {
            return;
        }
        let Some((seq, addr)) = event_key(event) else {
            return;
        };
        let _ = LAST.try_with(|last| {
            if let Ok(mut last) = last.try_borrow_mut() {
                last.seq = seq;
                last.event = addr;
                last.schema = schema.id();
                last.bytes.clear();
                last.bytes.extend_from_slice(line);
            }
        });
    }

    /// Calls `f` with the line another layer encoded for `event` with
    /// `schema`, if there is one; `None` means: encode it yourself.
    ///
    /// ```
    /// use tracing_subscriber::{layer::Context, Layer};
    /// struct Publisher(spanline_core::Schema);
    /// impl<S: tracing::Subscriber> Layer<S> for Publisher {
    ///     fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
    ///         match spanline_core::SharedLine::with(&self.0, event, |line| line.len()) {
    ///             Some(len) => assert!(len > 0),
    ///             None => { /* encode it yourself */ }
    ///         }
    ///     }
    /// }
    /// ```
    pub fn with<R>(schema: &Schema, event: &Event<'_>, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        let (seq, addr) = event_key(event)?;
        LAST.try_with(|last| {
            let last = last.try_borrow().ok()?;
            (last.seq == seq && last.event == addr && last.schema == schema.id())
                .then(|| f(&last.bytes))
        })
        .ok()
        .flatten()
    }
}
