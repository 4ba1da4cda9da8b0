//! [`JsonLayer`]: one JSON object per event, one `write_all` per line; a
//! [`LineSink`] over a [`MakeWriter`].

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use spanline_core::{LineEvent, LineLayer, LineSink, Refusal, Schema};
use tracing_core::{Event, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// Writes each event as one line of JSON.
///
/// # Overview
///
/// The line's shape comes from a [`Schema`]: a [`Preset`](spanline_core::Preset)
/// (flat by default), renamed reserved keys, and static fields. Span fields
/// come from the [`ContextLayer`](spanline_core::ContextLayer), which must be
/// registered before this layer.
///
/// ```
/// use tracing_subscriber::prelude::*;
/// use spanline_core::{ContextLayer, Preset, Schema};
/// use spanline_json::JsonLayer;
///
/// let json = JsonLayer::builder()
///     .schema(Schema::builder(Preset::Structlog).static_field("service", "billing"))
///     .with_writer(std::io::stderr)
///     .build();
/// let subscriber = tracing_subscriber::registry().with(ContextLayer::new()).with(json);
/// tracing::subscriber::with_default(subscriber, || {
///     let _req = tracing::info_span!("request", request_id = "r-1").entered();
///     tracing::info!(user_id = 42, "user logged in");
///     // {"timestamp":"…","level":"info","event":"user logged in","logger":"rust_out",
///     //  "user_id":42,"request_id":"r-1","service":"billing"}
/// });
/// ```
///
/// # Key collisions
///
/// No line holds a key twice. Reserved keys > event fields > nearest span >
/// ancestors > keys set with [`spanline_core::set`] > static fields; a user
/// field named like a reserved key is kept as `fields.<name>`.
///
/// # Writing
///
/// The line is encoded into a per-thread buffer and written with exactly one
/// `write_all`, so lines from many threads never interleave on a writer that
/// forwards each call as one `write(2)` (stdout, files, pipes). The buffer is
/// shrunk back after a line longer than the capacity cap
/// ([`JsonLayerBuilder::buffer_capacity_limit`]). Other line sinks with a
/// clone of this layer's schema (the Redis layer) reuse the encoded line.
///
/// # What is dropped, and when
///
/// Nothing silently. A failed write is counted in [`JsonStats::write_errors`].
/// An event logged from inside the formatting of another event (a `Debug`
/// impl that logs) is written normally; past [`JsonLayer::MAX_REENTRANCY`]
/// nested levels it is dropped and counted in [`JsonStats::reentrant_drops`].
#[derive(Debug)]
pub struct JsonLayer<W = fn() -> io::Stdout> {
    line: LineLayer<WriterSink<W>>,
}

/// The sink under [`JsonLayer`]: one `write_all` per line.
#[derive(Debug)]
struct WriterSink<W> {
    make_writer: W,
    stats: JsonStats,
}

/// Counters of a [`JsonLayer`]; cheap to clone, shared with the layer.
///
/// ```
/// let json = spanline_json::JsonLayer::new();
/// let stats = json.stats();
/// assert_eq!(stats.write_errors(), 0);
/// ```
#[derive(Clone, Debug, Default)]
pub struct JsonStats {
    inner: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    /// Every line adds to it, from every thread: one cache line per shard.
    lines: Sharded,
    write_errors: AtomicU64,
    reentrant_drops: AtomicU64,
}

/// A counter that threads add to without sharing a cache line (most of the
/// time): each thread adds to its own shard; reading sums them.
#[derive(Debug, Default)]
struct Sharded([Padded; SHARDS]);

const SHARDS: usize = 16;

#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded(AtomicU64);

impl Sharded {
    #[inline]
    fn add(&self) {
        thread_local! {
            static SHARD: usize = {
                static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
                NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS
            };
        }
        let shard = SHARD.try_with(|s| *s).unwrap_or(0);
        if let Some(Padded(counter)) = self.0.get(shard) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn sum(&self) -> u64 {
        self.0.iter().map(|p| p.0.load(Ordering::Relaxed)).sum()
    }
}

impl JsonStats {
    /// Lines written successfully.
    ///
    /// ```
    /// assert_eq!(spanline_json::JsonLayer::new().stats().lines(), 0);
    /// ```
    pub fn lines(&self) -> u64 {
        self.inner.lines.sum()
    }

    /// Lines whose `write_all` failed.
    ///
    /// ```
    /// assert_eq!(spanline_json::JsonLayer::new().stats().write_errors(), 0);
    /// ```
    pub fn write_errors(&self) -> u64 {
        self.inner.write_errors.load(Ordering::Relaxed)
    }

    /// Events dropped because logging recursed deeper than
    /// [`JsonLayer::MAX_REENTRANCY`].
    ///
    /// ```
    /// assert_eq!(spanline_json::JsonLayer::new().stats().reentrant_drops(), 0);
    /// ```
    pub fn reentrant_drops(&self) -> u64 {
        self.inner.reentrant_drops.load(Ordering::Relaxed)
    }
}

/// Builds a [`JsonLayer`]. Start from [`JsonLayer::builder`].
///
/// ```
/// use spanline_core::{Preset, ReservedKey, Schema};
/// use spanline_json::JsonLayer;
/// let layer = JsonLayer::builder()
///     .schema(Schema::builder(Preset::Flat).rename(ReservedKey::Level, "severity").service("api").with_pid())
///     .with_writer(std::io::stderr)
///     .build();
/// assert_eq!(layer.schema().key_name(ReservedKey::Level), "severity");
/// ```
#[derive(Debug)]
pub struct JsonLayerBuilder<W = fn() -> io::Stdout> {
    schema: Schema,
    make_writer: W,
    buffer_limit: usize,
}

impl JsonLayer {
    /// The default cap on the reusable per-thread buffer, in bytes.
    ///
    /// ```
    /// assert_eq!(spanline_json::JsonLayer::DEFAULT_BUFFER_CAPACITY_LIMIT, 64 * 1024);
    /// ```
    pub const DEFAULT_BUFFER_CAPACITY_LIMIT: usize = LineLayer::<()>::DEFAULT_BUFFER_CAPACITY_LIMIT;

    /// How deeply events may nest (an event logged while another is being
    /// formatted) before they are dropped and counted.
    ///
    /// ```
    /// assert_eq!(spanline_json::JsonLayer::MAX_REENTRANCY, 4);
    /// ```
    pub const MAX_REENTRANCY: u8 = LineLayer::<()>::MAX_REENTRANCY;

    /// A flat-preset layer writing to stdout.
    ///
    /// ```
    /// let layer = spanline_json::JsonLayer::new(); // flat preset, stdout
    /// assert_eq!(layer.schema().preset(), spanline_core::Preset::Flat);
    /// ```
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// Starts a builder: flat preset, stdout.
    ///
    /// ```
    /// let layer = spanline_json::JsonLayer::builder().schema(spanline_core::Preset::Ecs).build();
    /// assert_eq!(layer.schema().preset(), spanline_core::Preset::Ecs);
    /// ```
    pub fn builder() -> JsonLayerBuilder {
        JsonLayerBuilder {
            schema: Schema::default(),
            make_writer: io::stdout,
            buffer_limit: Self::DEFAULT_BUFFER_CAPACITY_LIMIT,
        }
    }
}

impl Default for JsonLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<W> JsonLayer<W> {
    /// The schema this layer writes; give a clone to another line sink
    /// (the Redis layer) and the two share one encoding per event.
    ///
    /// ```
    /// let json = spanline_json::JsonLayer::new();
    /// let shared: spanline_core::Schema = json.schema().clone();
    /// assert_eq!(shared.id(), json.schema().id());
    /// ```
    pub fn schema(&self) -> &Schema {
        self.line.schema()
    }

    /// The layer's counters.
    ///
    /// ```
    /// let json = spanline_json::JsonLayer::new();
    /// let stats = json.stats(); // keep it; read it any time
    /// assert_eq!(stats.lines(), 0);
    /// ```
    pub fn stats(&self) -> JsonStats {
        self.line.sink().stats.clone()
    }
}

impl<W> JsonLayerBuilder<W> {
    /// The line's shape (default: [`Schema::default`], the flat preset):
    /// a [`Schema`], a [`SchemaBuilder`](spanline_core::SchemaBuilder) or a
    /// [`Preset`](spanline_core::Preset).
    ///
    /// ```
    /// use spanline_core::{Preset, Schema};
    /// let schema = Schema::builder(Preset::Structlog).service("api").build();
    /// let layer = spanline_json::JsonLayer::builder().schema(schema.clone()).build();
    /// assert_eq!(layer.schema().id(), schema.id());
    /// ```
    #[must_use]
    pub fn schema(mut self, schema: impl Into<Schema>) -> Self {
        self.schema = schema.into();
        self
    }

    /// Caps the capacity the per-thread buffer keeps between lines
    /// (default [`JsonLayer::DEFAULT_BUFFER_CAPACITY_LIMIT`]).
    ///
    /// ```
    /// let layer = spanline_json::JsonLayer::builder().buffer_capacity_limit(16 * 1024).build();
    /// ```
    #[must_use]
    pub fn buffer_capacity_limit(mut self, bytes: usize) -> Self {
        self.buffer_limit = bytes;
        self
    }

    /// Sets where lines go: any [`MakeWriter`] (default: stdout).
    ///
    /// ```
    /// let layer = spanline_json::JsonLayer::builder().with_writer(std::io::sink).build();
    /// assert_eq!(layer.stats().lines(), 0);
    /// ```
    pub fn with_writer<W2>(self, make_writer: W2) -> JsonLayerBuilder<W2>
    where
        W2: for<'a> MakeWriter<'a> + Send + Sync + 'static,
    {
        JsonLayerBuilder {
            schema: self.schema,
            make_writer,
            buffer_limit: self.buffer_limit,
        }
    }

    /// Builds the layer.
    ///
    /// See [`JsonLayer`]'s example.
    pub fn build(self) -> JsonLayer<W> {
        let sink = WriterSink {
            make_writer: self.make_writer,
            stats: JsonStats::default(),
        };
        JsonLayer {
            line: LineLayer::new(self.schema, sink).buffer_capacity_limit(self.buffer_limit),
        }
    }
}

impl<W> LineSink for WriterSink<W>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    fn accept(&self, line: &[u8], event: &LineEvent<'_>) {
        let counters = &self.stats.inner;
        match self
            .make_writer
            .make_writer_for(event.metadata())
            .write_all(line)
        {
            Ok(()) => counters.lines.add(),
            Err(_) => {
                counters.write_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn refused(&self, refusal: Refusal, _event: &LineEvent<'_>) {
        if refusal == Refusal::Reentrant {
            let drops = &self.stats.inner.reentrant_drops;
            drops.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl<S, W> Layer<S> for JsonLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        self.line.on_event(event, ctx);
    }
}
