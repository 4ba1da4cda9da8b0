//! [`ForwardLayer`]: the child's side. Every span and event becomes one
//! record, written with one `write(2)` to the pipe its parent gave it.
//!
//! Why one file: it is one account, [`ForwardStats`], whose `written() +
//! dropped()` is every record the layer was given. The layer's callbacks
//! (counting a record dropped, unencoded, once the pipe broke), the direct
//! write, the drop-mode queue and its writer thread, and the flush at exit
//! each keep it through the same private `Counters` and `write_line`;
//! split, those would have to be opened to the crate.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, PoisonError, TryLockError};
use std::time::{Duration, Instant};

use tracing_core::span::{Attributes, Id, Record as SpanRecord};
use tracing_core::{Event, Level, LevelFilter, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::wire::encode::{
    context_map, encode_event, event_fields_map, fields_map, level_name, EventContext,
};
use crate::wire::{Record, Spec, ENV_VAR, MAX_RECORD, VERSION};

/// What the child does when the parent reads slower than it logs.
///
/// ```
/// let layer = spanline_pipe::ForwardLayer::from_env_with(spanline_pipe::OnFull::Drop { capacity: 4096 });
/// assert!(layer.is_none(), "not started by a Forwarder");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnFull {
    /// Wait for the parent (the default): lossless.
    #[default]
    Block,
    /// Queue up to `capacity` records for a writer thread; drop beyond,
    /// count, and report the count to the parent in a `drop` record.
    ///
    /// When the process exits (`main` returns, or `std::process::exit`),
    /// the queue is drained for at most [`ForwardLayer::EXIT_FLUSH`]; what
    /// is still queued then is counted as dropped and reported, so
    /// [`ForwardStats::dropped`] is exactly what never reached the parent.
    /// (`abort`, a fatal signal or `_exit` run no exit handlers: what is
    /// queued then is lost uncounted, as with any in-process buffer.)
    Drop {
        /// The queue's capacity, in records.
        capacity: usize,
    },
}

/// Counters of a [`ForwardLayer`]; cheap to clone.
///
/// ```
/// if let Some(layer) = spanline_pipe::ForwardLayer::from_env() {
///     let stats = layer.stats();
///     assert_eq!(stats.dropped(), 0);
/// }
/// ```
#[derive(Clone, Debug, Default)]
pub struct ForwardStats {
    inner: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    written: AtomicU64,
    dropped: AtomicU64,
    truncated: AtomicU64,
    broken: AtomicBool,
}

impl ForwardStats {
    /// Records written to the pipe.
    ///
    /// ```
    /// if let Some(layer) = spanline_pipe::ForwardLayer::from_env() {
    ///     let stats = layer.stats();
    ///     assert_eq!(stats.written(), 1, "the hello record");
    /// }
    /// ```
    pub fn written(&self) -> u64 {
        self.inner.written.load(Ordering::Relaxed)
    }

    /// Records not written to the pipe: the queue was full or still held
    /// them at exit (drop mode), a write failed, or the pipe had broken
    /// (the parent is gone): from the write that found it broken on, every
    /// record the layer would have sent is counted here, its events (those
    /// the parent's level lets through), spans, recorded fields and span
    /// closes alike, without being encoded. So
    /// `written() + dropped()` is every record the layer was given to
    /// send, the `hello` included.
    ///
    /// What a dead parent never read is not known here: records `written`
    /// into the pipe before it broke, and still in its buffer (64 KiB on
    /// Linux) when the parent died, are lost with it and stay counted in
    /// `written`.
    ///
    /// ```
    /// if let Some(layer) = spanline_pipe::ForwardLayer::from_env() {
    ///     let stats = layer.stats();
    ///     assert_eq!(stats.dropped(), 0);
    /// }
    /// ```
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    /// Records whose values were cut to fit one atomic write.
    ///
    /// ```
    /// if let Some(layer) = spanline_pipe::ForwardLayer::from_env() {
    ///     let stats = layer.stats();
    ///     assert_eq!(stats.truncated(), 0);
    /// }
    /// ```
    pub fn truncated(&self) -> u64 {
        self.inner.truncated.load(Ordering::Relaxed)
    }

    /// Whether the pipe broke (the parent is gone): forwarding stopped.
    ///
    /// ```
    /// if let Some(layer) = spanline_pipe::ForwardLayer::from_env() {
    ///     let stats = layer.stats();
    ///     assert!(!stats.broken());
    /// }
    /// ```
    pub fn broken(&self) -> bool {
        self.inner.broken.load(Ordering::Relaxed)
    }
}

/// Forwards the child's spans and events to its parent's [`Forwarder`].
///
/// [`ForwardLayer::from_env`] returns `None` when the process was not
/// started by a `Forwarder`, so the same binary also runs on its own:
///
/// ```no_run
/// use tracing_subscriber::prelude::*;
/// tracing_subscriber::registry()
///     .with(spanline_pipe::ForwardLayer::from_env()) // None: a no-op layer
///     .init();
/// ```
///
/// Each record is one JSON line of at most 4096 bytes (`PIPE_BUF` on
/// Linux), written with one `write(2)`: records from many threads never
/// interleave, and a crash never leaves half a record but at the very end.
/// Longer values are cut, with a `…[truncated]` marker. Events above the
/// level the parent asked for are not encoded at all. When the pipe breaks
/// (the parent died), forwarding stops for good; the application goes on.
///
/// Every span that reaches this layer is sent, whatever its level (unless
/// the parent writes nothing at all): the process's own filter decided
/// which spans exist, and the parent recreates each one, so a line keeps
/// its span fields under any filter of the parent's. With a
/// `spanline_core::ContextLayer` in the subscriber, each event also carries
/// the keys bound in its context (`spanline::set`, a restored
/// `ContextSnapshot`) that none of its spans has a value for. Put the
/// filter on the `ContextLayer` (as `spanline::init()` does), not in front
/// of the registry, so this layer sees the spans the filter keeps for
/// context:
///
/// ```no_run
/// use tracing_subscriber::{prelude::*, EnvFilter};
/// tracing_subscriber::registry()
///     .with(spanline_core::ContextLayer::new().filter(EnvFilter::from_default_env()))
///     .with(spanline_pipe::ForwardLayer::from_env())
///     .init();
/// let _job = tracing::info_span!("job", job_id = "build_1").entered();
/// spanline_core::set("user_id", 42u64).ok(); // on the parent's lines too
/// tracing::warn!("disk almost full");
/// ```
///
/// [`Forwarder`]: crate::Forwarder
#[derive(Debug)]
pub struct ForwardLayer {
    sink: Sink,
    max_level: LevelFilter,
    /// Values hidden before they leave the process.
    redact: spanline_core::Redact,
    stats: ForwardStats,
    pid: u32,
}

#[derive(Debug)]
enum Sink {
    Direct(File),
    Queue(SyncSender<Vec<u8>>, Arc<Queued>),
}

/// What the drop-mode writer thread shares with the senders and with the
/// flush at exit.
#[derive(Debug)]
struct Queued {
    file: File,
    stats: ForwardStats,
    /// Records accepted into the queue and not yet written.
    pending: AtomicU64,
    /// Drops already reported to the parent.
    reported: AtomicU64,
    /// Held while a record is written; `true` once the exit flush has
    /// counted what is left, after which nothing more is written.
    closed: Mutex<bool>,
    /// Set when the exit flush gave up on a writer stuck in a write (a
    /// parent that stopped reading): the record under way is counted as
    /// dropped already.
    abandoned: AtomicBool,
    /// Signalled when `pending` reaches zero.
    drained: Condvar,
}

impl Queued {
    fn closed(&self) -> std::sync::MutexGuard<'_, bool> {
        self.closed.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes one queued record, unless the exit flush closed the queue.
    fn write(&self, line: &[u8]) -> bool {
        let closed = self.closed();
        if *closed {
            return false;
        }
        write_line(&self.file, line, &self.stats.inner);
        if self.abandoned.load(Ordering::Acquire) {
            return false;
        }
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.drained.notify_all();
        }
        true
    }

    /// Tells the parent about drops not reported yet.
    fn report_drops(&self, pid: u32) {
        let c = &self.stats.inner;
        if c.broken.load(Ordering::Relaxed) {
            return;
        }
        let dropped = c.dropped.load(Ordering::Relaxed);
        let before = self.reported.swap(dropped, Ordering::AcqRel);
        if dropped > before {
            let (report, _) = Record::Drop {
                pid,
                n: dropped - before,
            }
            .encode(MAX_RECORD);
            if (&self.file).write_all(&report).is_err() {
                self.reported.fetch_sub(dropped - before, Ordering::AcqRel);
            }
        }
    }

    /// At exit: waits up to `timeout` for the writer to drain the queue,
    /// then counts what is left as dropped and reports every drop.
    fn flush_at_exit(&self, timeout: Duration, pid: u32) {
        let deadline = Instant::now() + timeout;
        // The lock is held by a write under way: wait for it only until
        // the deadline (a parent that stopped reading never frees it).
        let guard = loop {
            match self.closed.try_lock() {
                Ok(guard) => break Some(guard),
                Err(TryLockError::Poisoned(p)) => break Some(p.into_inner()),
                Err(TryLockError::WouldBlock) if Instant::now() >= deadline => break None,
                Err(TryLockError::WouldBlock) => std::thread::sleep(Duration::from_millis(1)),
            }
        };
        match guard {
            Some(mut closed) => {
                while self.pending.load(Ordering::Acquire) > 0 {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    closed = match self.drained.wait_timeout(closed, left) {
                        Ok((guard, _)) => guard,
                        Err(poisoned) => poisoned.into_inner().0,
                    };
                }
                *closed = true;
            }
            None => self.abandoned.store(true, Ordering::Release),
        }
        let left = self.pending.swap(0, Ordering::AcqRel);
        self.stats.inner.dropped.fetch_add(left, Ordering::Relaxed);
        // The report must not block the exit either.
        crate::sys::set_nonblocking(self.file.as_raw_fd());
        self.report_drops(pid);
    }
}

/// Every drop-mode queue of the process, flushed by the exit handler.
static QUEUES: Mutex<Vec<Arc<Queued>>> = Mutex::new(Vec::new());

/// Runs when the process exits: drains every drop-mode queue, within
/// [`ForwardLayer::EXIT_FLUSH`] in all.
extern "C" fn flush_queues_at_exit() {
    let queues = std::mem::take(&mut *QUEUES.lock().unwrap_or_else(PoisonError::into_inner));
    let deadline = std::time::Instant::now() + ForwardLayer::EXIT_FLUSH;
    let pid = std::process::id();
    for queue in queues {
        queue.flush_at_exit(
            deadline.saturating_duration_since(std::time::Instant::now()),
            pid,
        );
    }
}

impl ForwardLayer {
    /// The layer, when this process was started by a `Forwarder`; `None`
    /// otherwise, or when the descriptor named in [`ENV_VAR`] is not the
    /// pipe the parent made (a grandchild that inherited the variable).
    /// Blocking mode ([`OnFull::Block`]).
    ///
    /// ```
    /// use tracing_subscriber::prelude::*;
    /// // None when this process was not started by a Forwarder: then nothing is forwarded.
    /// let forward = spanline_pipe::ForwardLayer::from_env();
    /// assert!(forward.is_none(), "a doctest is not started by a Forwarder");
    /// let _subscriber = tracing_subscriber::registry().with(forward);
    /// ```
    pub fn from_env() -> Option<Self> {
        Self::from_env_with(OnFull::Block)
    }

    /// Like [`from_env`](Self::from_env), with a choice of [`OnFull`].
    ///
    /// See [`ForwardLayer`]'s example.
    pub fn from_env_with(on_full: OnFull) -> Option<Self> {
        let spec = Spec::parse(&std::env::var(ENV_VAR).ok()?)?;
        let file = open_checked(&spec)?;
        let stats = ForwardStats::default();
        let sink = match on_full {
            OnFull::Block => Sink::Direct(file),
            OnFull::Drop { capacity } => spawn_writer(file, capacity.max(1), stats.clone())?,
        };
        let layer = Self {
            sink,
            max_level: spec.max_level,
            redact: spanline_core::Redact::default(),
            stats,
            pid: std::process::id(),
        };
        layer.send(Record::Hello {
            v: VERSION,
            pid: layer.pid,
        });
        Some(layer)
    }

    /// The layer's counters.
    ///
    /// ```
    /// if let Some(layer) = spanline_pipe::ForwardLayer::from_env() {
    ///     let stats = layer.stats(); // keep it: the layer moves into the subscriber
    ///     assert_eq!(stats.dropped(), 0);
    /// }
    /// ```
    pub fn stats(&self) -> ForwardStats {
        self.stats.clone()
    }

    /// Writes the values of these keys as `"[redacted]"` in every record
    /// sent to the parent (event and span fields): they never reach the pipe.
    ///
    /// ```
    /// let forward = spanline_pipe::ForwardLayer::from_env().map(|f| f.redact(["password", "token"]));
    /// assert!(forward.is_none(), "a doctest is not started by a Forwarder");
    /// ```
    #[must_use]
    pub fn redact<I, T>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        self.redact = spanline_core::Redact::new(keys);
        self
    }

    fn send(&self, record: Record) {
        let (line, truncated) = record.encode(MAX_RECORD);
        if truncated {
            self.stats.inner.truncated.fetch_add(1, Ordering::Relaxed);
        }
        self.send_line(&line);
    }

    /// Writes one encoded record (at most `MAX_RECORD` bytes, ending in `\n`).
    fn send_line(&self, line: &[u8]) {
        let c = &self.stats.inner;
        if c.broken.load(Ordering::Relaxed) {
            c.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        match &self.sink {
            Sink::Direct(file) => write_line(file, line, c),
            Sink::Queue(tx, queued) => {
                // Counted before it is sent: the writer may take it at once.
                queued.pending.fetch_add(1, Ordering::AcqRel);
                match tx.try_send(line.to_vec()) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                        queued.pending.fetch_sub(1, Ordering::AcqRel);
                        c.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }

    /// Whether the parent wants events of `level` (it writes them).
    fn wanted(&self, level: &Level) -> bool {
        self.max_level >= *level
    }

    /// True when the pipe broke: the record the caller was about to send
    /// is counted dropped, without being encoded.
    fn lost(&self) -> bool {
        let c = &self.stats.inner;
        if c.broken.load(Ordering::Relaxed) {
            c.dropped.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        false
    }

    /// Every span that reaches this layer is sent, whatever its level, as
    /// long as the parent writes anything at all: this process's own filter
    /// (on its `ContextLayer`, as `spanline::init()` puts it) decided already
    /// which spans exist and carry context, and the parent recreates each
    /// one, so its lines have the context they would have in one process.
    fn sends_spans(&self) -> bool {
        // `wanted(ERROR)`: the parent's level is not OFF.
        self.wanted(&Level::ERROR)
    }
}

/// One `write(2)`: a line of at most `PIPE_BUF` bytes goes in whole or not
/// at all. A broken pipe stops forwarding for good.
fn write_line(mut file: &File, line: &[u8], c: &Counters) {
    match file.write_all(line) {
        Ok(()) => {
            c.written.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => {
            if e.kind() == ErrorKind::BrokenPipe {
                c.broken.store(true, Ordering::Relaxed);
            }
            c.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Drop mode: a bounded queue and a writer thread, so logging threads never
/// wait for the parent; what does not fit is counted and reported.
fn spawn_writer(file: File, capacity: usize, stats: ForwardStats) -> Option<Sink> {
    let (tx, rx) = sync_channel::<Vec<u8>>(capacity);
    let pid = std::process::id();
    let queued = Arc::new(Queued {
        file,
        stats,
        pending: AtomicU64::new(0),
        reported: AtomicU64::new(0),
        closed: Mutex::new(false),
        abandoned: AtomicBool::new(false),
        drained: Condvar::new(),
    });
    let writer = queued.clone();
    std::thread::Builder::new()
        .name("spanline-forward".into())
        .spawn(move || {
            while let Ok(line) = rx.recv() {
                if !writer.write(&line) {
                    break;
                }
                writer.report_drops(pid);
            }
        })
        .ok()?;
    static AT_EXIT: std::sync::Once = std::sync::Once::new();
    AT_EXIT.call_once(|| {
        // atexit fails only when its table is full (32 slots guaranteed);
        // then the queue is not flushed at exit, as before this existed.
        let _ = crate::sys::at_exit(flush_queues_at_exit);
    });
    QUEUES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(queued.clone());
    Some(Sink::Queue(tx, queued))
}

/// Opens the pipe named by `spec`, after checking the descriptor is that
/// pipe; then closes the inherited descriptor on exec, so grandchildren do
/// not inherit it (each forwards through its own `Forwarder`, or not at all).
fn open_checked(spec: &Spec) -> Option<File> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let path = format!("/proc/self/fd/{}", spec.fd);
    let meta = std::fs::metadata(&path).ok()?;
    if !meta.file_type().is_fifo() || meta.ino() != spec.ino {
        return None;
    }
    let file = OpenOptions::new().write(true).open(&path).ok()?;
    crate::sys::set_cloexec(spec.fd);
    Some(file)
}

thread_local! {
    static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl ForwardLayer {
    /// How long the exit of a process waits for its drop-mode queues to
    /// reach the parent (see [`OnFull::Drop`]).
    ///
    /// ```
    /// assert_eq!(spanline_pipe::ForwardLayer::EXIT_FLUSH.as_secs(), 1);
    /// ```
    pub const EXIT_FLUSH: Duration = Duration::from_secs(1);
}

/// `event`'s context as this process's `ContextLayer` resolved it: every
/// key with a value, span fields and bound keys alike (core's
/// [`CtxView::for_each_json`](spanline_core::CtxView::for_each_json)), redacted. The parent writes it
/// above the spans it recreates: the store can change without a tracing
/// record the parent would see (`set` filling an `Empty` field, the copy
/// `detached()` makes), so the child's resolution is the one truth. `span`
/// is the event's span.
pub(crate) fn event_context<S>(
    ctx: &Context<'_, S>,
    span: &Id,
    event: &Event<'_>,
    redact: &spanline_core::Redact,
) -> EventContext
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    // Only a ContextLayer keeps a store. Without one, it is missing
    // from the span, and `of_event` would say so on stderr.
    if spanline_core::CtxView::of_span_in(ctx, span).is_none() {
        return EventContext::default();
    }
    // The event's view, as the ContextLayer resolved it: with the keys a
    // parent bound around a re-emitted event too, so a chain of forwarders
    // passes them on.
    let Some(view) = spanline_core::CtxView::of_event(ctx, event) else {
        return EventContext::default();
    };
    // Keys the event has a field of go too: a field declared `Empty` on
    // the event hides nothing, and the parent's line writes a valued field
    // first anyway.
    let mut pairs = Vec::new();
    view.for_each_json(|key, json| {
        if !pairs.is_empty() {
            pairs.push(b',');
        }
        spanline_core::write_str(&mut pairs, key);
        pairs.push(b':');
        // The mask for a hidden key; hidden keys inside a JSON value too.
        redact.write_json(&mut pairs, key, json.as_bytes());
    });
    EventContext(pairs)
}

impl<S> Layer<S> for ForwardLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let meta = attrs.metadata();
        if !self.sends_spans() || self.lost() {
            return;
        }
        let fields = fields_map(&self.redact, |v| attrs.record(v));
        // Declared without a value: named, so that a later `rec` of them has
        // a field to land in on the parent's side.
        let empty = meta
            .fields()
            .iter()
            .filter(|f| !fields.contains_key(f.name()))
            .map(|f| f.name().to_string())
            .collect();
        let parent = ctx
            .span(id)
            .and_then(|s| s.parent())
            .map(|p| p.id().into_u64());
        self.send(Record::Span {
            pid: self.pid,
            id: id.into_u64(),
            parent,
            name: meta.name().into(),
            target: meta.target().into(),
            level: level_name(meta.level()),
            fields,
            empty,
        });
    }

    fn on_record(&self, id: &Id, values: &SpanRecord<'_>, _ctx: Context<'_, S>) {
        // No span is sent to a parent that writes nothing: nor its records.
        if !self.sends_spans() || self.lost() {
            return;
        }
        let fields = fields_map(&self.redact, |v| values.record(v));
        self.send(Record::Rec {
            pid: self.pid,
            id: id.into_u64(),
            fields,
        });
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        if !self.wanted(meta.level()) || self.lost() {
            return;
        }
        let span = ctx.event_span(event).map(|s| s.id());
        let context = span
            .as_ref()
            .map(|id| event_context(&ctx, id, event, &self.redact))
            .unwrap_or_default();
        let span = span.map(|id| id.into_u64());
        let now = spanline_core::Timestamp::now();
        // The hot path writes the record straight into a per-thread buffer;
        // a record too large for one atomic write takes the slow path, which
        // cuts its longest values.
        let fast = BUF.try_with(|cell| {
            let Ok(mut buf) = cell.try_borrow_mut() else {
                return false;
            };
            encode_event(
                &mut buf,
                (self.pid, now, span),
                event,
                &context,
                &self.redact,
            );
            if buf.len() > MAX_RECORD {
                return false;
            }
            self.send_line(&buf);
            true
        });
        if fast != Ok(true) {
            let (fields, errors) = event_fields_map(&self.redact, event);
            self.send(Record::Ev {
                pid: self.pid,
                ts: (now.unix_secs(), now.subsec_nanos()),
                span,
                level: level_name(meta.level()),
                target: meta.target().into(),
                file: meta.file().map(Into::into),
                line: meta.line(),
                fields,
                errors,
                context: context_map(&context),
            });
        }
    }

    fn on_close(&self, id: Id, _ctx: Context<'_, S>) {
        if !self.sends_spans() || self.lost() {
            return;
        }
        self.send(Record::Close {
            pid: self.pid,
            id: id.into_u64(),
        });
    }
}
