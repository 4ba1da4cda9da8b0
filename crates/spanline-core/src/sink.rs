//! The seam between a line and where it goes: [`LineSink`], and the one
//! layer that feeds every sink, [`LineLayer`].
//!
//! ```text
//! event ──▶ ContextLayer ──▶ LineLayer<K> ──▶ Schema::encode_event ──▶ K::accept(line)
//!           (context, once)   (room check,      (once per schema and      (write, enqueue,
//!                              buffer, guard)     event, shared)            send, …)
//! ```
//!
//! The layer owns what every sink would otherwise copy: the per-thread
//! buffer, the guard against events logged while a line is being encoded,
//! the room check before encoding, oversize handling, and the sharing of
//! one encoded line between every `LineLayer` of the stack that uses the
//! same [`Schema`] (clones share one identity). Sharing needs nothing from
//! the user: the first such layer encodes, the later ones reuse the bytes.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tracing_core::{Event, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::context::CtxView;
use crate::context::{event_key, EventKey};
use crate::Schema;

mod adapters;

pub use adapters::{sink_fn, SinkFn};

/// Where encoded lines go: a file, a socket, a queue to a network worker.
///
/// Runs on the thread that logged, inside the application's call: a sink
/// never blocks on I/O it does not own (hand slow work to a thread of its
/// own) and counts what it cannot take. Only `accept` is required.
///
/// ```
/// use std::sync::Mutex;
/// use spanline_core::{LineEvent, LineSink};
///
/// /// Keeps the lines of WARN and above in memory.
/// #[derive(Default)]
/// struct Warnings(Mutex<Vec<String>>);
///
/// impl LineSink for Warnings {
///     fn ready(&self, event: &LineEvent<'_>) -> bool {
///         *event.metadata().level() <= tracing::Level::WARN // skip the encoding of the rest
///     }
///     fn accept(&self, line: &[u8], _event: &LineEvent<'_>) {
///         if let Ok(mut lines) = self.0.lock() {
///             lines.push(String::from_utf8_lossy(line).into_owned());
///         }
///     }
/// }
/// ```
///
/// `examples/custom_sink.rs` in spanline's sources is a complete sink that
/// sends lines to a socket, with its accounting.
pub trait LineSink: Send + Sync + 'static {
    /// Whether to encode and offer this event at all; asked before any
    /// encoding, so a full queue or an uninteresting event costs nothing.
    /// A sink that says no because it is full counts that itself.
    fn ready(&self, event: &LineEvent<'_>) -> bool {
        let _ = event;
        true
    }

    /// Takes one line: one JSON object followed by `\n`, at most
    /// [`max_line`](Self::max_line) bytes before the newline.
    fn accept(&self, line: &[u8], event: &LineEvent<'_>);

    /// The longest line this sink takes, without its newline. Longer lines
    /// are not offered: [`refused`](Self::refused) is called, and
    /// [`LineStats::oversize`] counts them.
    fn max_line(&self) -> usize {
        usize::MAX
    }

    /// An event that was ready but not offered, and why. The layer counts
    /// every refusal in [`LineStats`] whether or not the sink overrides this.
    fn refused(&self, refusal: Refusal, event: &LineEvent<'_>) {
        let _ = (refusal, event);
    }
}

/// Why a [`LineLayer`] did not offer an event to its sink.
///
/// ```
/// let r = spanline_core::Refusal::Oversize { len: 70_000 };
/// assert_eq!(r, spanline_core::Refusal::Oversize { len: 70_000 });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The encoded line (`len` bytes, without the newline) is longer than
    /// [`LineSink::max_line`].
    Oversize {
        /// The line's length in bytes, without the newline.
        len: usize,
    },
    /// The event was logged while another was being encoded or delivered,
    /// more than [`LineLayer::MAX_REENTRANCY`] levels deep (a `Debug` impl
    /// or a writer that logs): dropped, so logging cannot recurse forever.
    Reentrant,
}

/// The event a sink is offered, with what sinks route on.
///
/// ```
/// use spanline_core::{LineEvent, LineSink};
/// struct ByJob;
/// impl LineSink for ByJob {
///     fn accept(&self, line: &[u8], event: &LineEvent<'_>) {
///         let job = event.job_id(); // Some("build_1") inside a span with job_id = "build_1"
///         let _ = (line, job, event.metadata().target());
///     }
/// }
/// ```
pub struct LineEvent<'a> {
    event: &'a Event<'a>,
    context: &'a dyn Fn() -> Option<CtxView>,
}

impl std::fmt::Debug for LineEvent<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineEvent")
            .field("metadata", self.event.metadata())
            .finish_non_exhaustive()
    }
}

impl<'a> LineEvent<'a> {
    /// The event itself.
    pub fn event(&self) -> &'a Event<'a> {
        self.event
    }

    /// The event's callsite: level, target, name, file and line.
    pub fn metadata(&self) -> &'static Metadata<'static> {
        self.event.metadata()
    }

    /// The event's span context (what the [`ContextLayer`](crate::ContextLayer)
    /// resolved for it); `None` outside any span.
    pub fn context(&self) -> Option<CtxView> {
        (self.context)()
    }

    /// The context's `job_id`, when it is a valid job id
    /// ([`check_job_id`](crate::check_job_id)); for routing a line to its
    /// job's channel, file or topic. A string is read as its text, any
    /// other value as its JSON (`set("job_id", 7)` is job `7`), as the
    /// Redis layer routes it.
    pub fn job_id(&self) -> Option<String> {
        let value = self.context()?.get("job_id")?;
        let id = value
            .as_str()
            .unwrap_or(std::borrow::Cow::Borrowed(value.as_json()));
        crate::check_job_id(&id).ok().map(|()| id.into_owned())
    }
}

/// Counters of a [`LineLayer`]: what it could not offer to its sink.
/// Cheap to clone, shared with the layer.
///
/// ```
/// let layer = spanline_core::LineLayer::new(spanline_core::Schema::default(), Discard);
/// assert_eq!(layer.stats().oversize(), 0);
/// # struct Discard;
/// # impl spanline_core::LineSink for Discard { fn accept(&self, _: &[u8], _: &spanline_core::LineEvent<'_>) {} }
/// ```
#[derive(Clone, Debug, Default)]
pub struct LineStats {
    inner: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    oversize: AtomicU64,
    reentrant: AtomicU64,
}

impl LineStats {
    /// Lines longer than the sink's [`LineSink::max_line`], not offered.
    pub fn oversize(&self) -> u64 {
        self.inner.oversize.load(Ordering::Relaxed)
    }

    /// Events dropped because logging recursed deeper than
    /// [`LineLayer::MAX_REENTRANCY`].
    pub fn reentrant_drops(&self) -> u64 {
        self.inner.reentrant.load(Ordering::Relaxed)
    }
}

/// A layer that encodes each event once with a [`Schema`] and hands the
/// line to a [`LineSink`].
///
/// Register it after the [`ContextLayer`](crate::ContextLayer), as any
/// output layer. Several `LineLayer`s with clones of one schema encode each
/// event once between them, in any order.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use tracing_subscriber::prelude::*;
/// use spanline_core::{ContextLayer, LineEvent, LineLayer, LineSink, Preset, Schema};
///
/// #[derive(Clone, Default)]
/// struct Memory(Arc<Mutex<Vec<u8>>>);
/// impl LineSink for Memory {
///     fn accept(&self, line: &[u8], _event: &LineEvent<'_>) {
///         if let Ok(mut all) = self.0.lock() {
///             all.extend_from_slice(line);
///         }
///     }
/// }
///
/// let memory = Memory::default();
/// let layer = LineLayer::new(Schema::from(Preset::Structlog), memory.clone());
/// let subscriber = tracing_subscriber::registry().with(ContextLayer::new()).with(layer);
/// tracing::subscriber::with_default(subscriber, || {
///     let _job = tracing::info_span!("job", job_id = "build_1").entered();
///     tracing::info!("compiling");
/// });
/// let text = String::from_utf8(memory.0.lock().unwrap().clone()).unwrap();
/// assert!(text.contains(r#""event":"compiling""#) && text.contains(r#""job_id":"build_1""#));
/// ```
#[derive(Debug)]
pub struct LineLayer<K> {
    schema: Schema,
    sink: K,
    buffer_limit: usize,
    stats: LineStats,
}

/// The line encoded last on this thread, and what it encodes.
struct Shared {
    /// The event and schema the bytes belong to; `None` while they are
    /// being written, or when the event cannot be told apart.
    of: Option<(EventKey, u64)>,
    bytes: Vec<u8>,
}

thread_local! {
    static SHARED: RefCell<Shared> = const { RefCell::new(Shared { of: None, bytes: Vec::new() }) };
    static DEPTH: Cell<u8> = const { Cell::new(0) };
}

impl<K> LineLayer<K> {
    /// How deeply events may nest (an event logged while another is being
    /// encoded or delivered) before they are dropped and counted.
    ///
    /// ```
    /// assert_eq!(spanline_core::LineLayer::<()>::MAX_REENTRANCY, 4);
    /// ```
    pub const MAX_REENTRANCY: u8 = 4;

    /// The default cap on the capacity the per-thread buffer keeps between
    /// lines, in bytes.
    ///
    /// ```
    /// assert_eq!(spanline_core::LineLayer::<()>::DEFAULT_BUFFER_CAPACITY_LIMIT, 64 * 1024);
    /// ```
    pub const DEFAULT_BUFFER_CAPACITY_LIMIT: usize = 64 * 1024;

    /// A layer that writes `schema`'s lines to `sink`.
    ///
    /// See the type's example.
    pub fn new(schema: Schema, sink: K) -> Self {
        Self {
            schema,
            sink,
            buffer_limit: Self::DEFAULT_BUFFER_CAPACITY_LIMIT,
            stats: LineStats::default(),
        }
    }

    /// Caps the capacity the per-thread buffer keeps between lines (default
    /// [`DEFAULT_BUFFER_CAPACITY_LIMIT`](Self::DEFAULT_BUFFER_CAPACITY_LIMIT)):
    /// once a thread writes an ordinary line after a longer one, its next
    /// event starts from a fresh buffer. (A run of long lines keeps the
    /// buffer, so each does not regrow it.)
    ///
    /// ```
    /// # struct Discard;
    /// # impl spanline_core::LineSink for Discard { fn accept(&self, _: &[u8], _: &spanline_core::LineEvent<'_>) {} }
    /// let layer = spanline_core::LineLayer::new(Default::default(), Discard).buffer_capacity_limit(16 << 10);
    /// ```
    #[must_use]
    pub fn buffer_capacity_limit(mut self, bytes: usize) -> Self {
        self.buffer_limit = bytes;
        self
    }

    /// The schema lines are encoded with.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The sink.
    pub fn sink(&self) -> &K {
        &self.sink
    }

    /// The layer's counters (the sink keeps its own).
    pub fn stats(&self) -> LineStats {
        self.stats.clone()
    }
}

impl<K: LineSink> LineLayer<K> {
    fn refuse(&self, refusal: Refusal, event: &LineEvent<'_>) {
        let counter = match refusal {
            Refusal::Oversize { .. } => &self.stats.inner.oversize,
            Refusal::Reentrant => &self.stats.inner.reentrant,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.sink.refused(refusal, event);
    }

    /// Offers `line` (with its newline) to the sink, or refuses it.
    fn offer(&self, line: &[u8], event: &LineEvent<'_>) {
        let len = line.len().saturating_sub(1);
        if len > self.sink.max_line() {
            self.refuse(Refusal::Oversize { len }, event);
        } else {
            self.sink.accept(line, event);
        }
    }

    /// Encodes `event` into `buf` (cleared first).
    fn encode<S>(&self, buf: &mut Vec<u8>, event: &Event<'_>, ctx: &Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        buf.clear();
        self.schema
            .encode_event(event, ctx, self.schema.clock().now(), buf);
    }
}

impl<S, K> Layer<S> for LineLayer<K>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    K: LineSink,
{
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let context = || CtxView::of_event(&ctx, event);
        let line_event = LineEvent {
            event,
            context: &context,
        };
        if !self.sink.ready(&line_event) {
            return;
        }
        let depth = DEPTH.try_with(Cell::get).unwrap_or(0);
        if depth >= Self::MAX_REENTRANCY {
            return self.refuse(Refusal::Reentrant, &line_event);
        }
        let _ = DEPTH.try_with(|d| d.set(depth + 1));
        let of = event_key(event).map(|key| (key, self.schema.id()));
        // The thread's shared line: reuse it when an earlier layer encoded
        // this event with this schema. An event logged while it is borrowed
        // (a `Debug` impl or a writer that logs) gets a buffer of its own.
        let shared = SHARED.try_with(|cell| {
            let Ok(mut shared) = cell.try_borrow_mut() else {
                return false;
            };
            if of.is_none() || shared.of != of {
                shared.of = None;
                // Give memory back after a long line, unless long lines are
                // what this thread writes now (the last one was long too):
                // then regrowing the buffer for each would cost more.
                if shared.bytes.capacity() > self.buffer_limit
                    && shared.bytes.len() <= self.buffer_limit
                {
                    shared.bytes = Vec::new();
                }
                self.encode(&mut shared.bytes, event, &ctx);
                shared.of = of;
            }
            self.offer(&shared.bytes, &line_event);
            true
        });
        if shared != Ok(true) {
            let mut own = Vec::new();
            self.encode(&mut own, event, &ctx);
            self.offer(&own, &line_event);
        }
        let _ = DEPTH.try_with(|d| d.set(depth));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::prelude::*;

    /// The capacity the thread's shared buffer holds now.
    fn kept() -> usize {
        SHARED.with(|s| s.borrow().bytes.capacity())
    }

    #[test]
    fn the_buffer_gives_memory_back_after_a_long_line() {
        let layer =
            LineLayer::new(Schema::default(), sink_fn(|_, _| {})).buffer_capacity_limit(4096);
        let big = "y".repeat(1 << 20);
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(big = %big, "long");
            tracing::info!("short");
            // Kept while the last line was long: a run of long lines does
            // not regrow the buffer for each.
            assert!(kept() > 1 << 20, "{} bytes kept", kept());
            tracing::info!("short again");
            assert!(kept() <= 4096, "{} bytes kept after the long line", kept());
        });
    }
}
