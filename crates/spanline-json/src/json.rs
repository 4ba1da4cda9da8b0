//! [`JsonLayer`]: one JSON object per event, one `write_all` per line.

use std::cell::{Cell, RefCell};
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use spanline_core::{Clock, NumberPolicy, Preset, ReservedKey, Schema, SchemaBuilder, SharedLine};
use tracing_core::{Event, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// Writes each event as one line of JSON.
///
/// # Overview
///
/// The line's shape comes from a [`Schema`]: a [`Preset`] (flat by default),
/// renamed reserved keys, and static fields. Span fields come from the
/// [`ContextLayer`](spanline_core::ContextLayer), which must be registered
/// before this layer.
///
/// ```
/// use tracing_subscriber::prelude::*;
/// use spanline_core::ContextLayer;
/// use spanline_json::{JsonLayer, Preset};
///
/// let json = JsonLayer::builder()
///     .preset(Preset::Structlog)
///     .static_field("service", "billing")
///     .writer(std::io::stderr)
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
/// ([`JsonLayerBuilder::buffer_capacity_limit`]).
///
/// # What is dropped, and when
///
/// Nothing silently. A failed write is counted in [`JsonStats::write_errors`].
/// An event logged from inside the formatting of another event (a `Debug`
/// impl that logs) is written normally; past [`JsonLayer::MAX_REENTRANCY`]
/// nested levels it is dropped and counted in [`JsonStats::reentrant_drops`].
#[derive(Debug)]
pub struct JsonLayer<W = fn() -> io::Stdout> {
    schema: Schema,
    make_writer: W,
    buffer_limit: usize,
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
    lines: AtomicU64,
    write_errors: AtomicU64,
    reentrant_drops: AtomicU64,
}

impl JsonStats {
    /// Lines written successfully.
    pub fn lines(&self) -> u64 {
        self.inner.lines.load(Ordering::Relaxed)
    }

    /// Lines whose `write_all` failed.
    pub fn write_errors(&self) -> u64 {
        self.inner.write_errors.load(Ordering::Relaxed)
    }

    /// Events dropped because logging recursed deeper than
    /// [`JsonLayer::MAX_REENTRANCY`].
    pub fn reentrant_drops(&self) -> u64 {
        self.inner.reentrant_drops.load(Ordering::Relaxed)
    }
}

/// Builds a [`JsonLayer`]. Start from [`JsonLayer::builder`].
///
/// ```
/// use spanline_json::{JsonLayer, Preset, ReservedKey};
/// let layer = JsonLayer::builder()
///     .preset(Preset::Flat)
///     .rename(ReservedKey::Level, "severity")
///     .service("api")
///     .with_pid()
///     .writer(std::io::stderr)
///     .build();
/// assert_eq!(layer.schema().key_name(ReservedKey::Level), "severity");
/// ```
#[derive(Debug)]
pub struct JsonLayerBuilder<W = fn() -> io::Stdout> {
    schema: Option<Schema>,
    schema_builder: SchemaBuilder,
    make_writer: W,
    buffer_limit: usize,
}

thread_local! {
    static BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static DEPTH: Cell<u8> = const { Cell::new(0) };
}

impl JsonLayer {
    /// The default cap on the reusable per-thread buffer, in bytes.
    pub const DEFAULT_BUFFER_CAPACITY_LIMIT: usize = 64 * 1024;

    /// How deeply events may nest (an event logged while another is being
    /// formatted) before they are dropped and counted.
    pub const MAX_REENTRANCY: u8 = 4;

    /// A flat-preset layer writing to stdout.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// Starts a builder: flat preset, stdout.
    pub fn builder() -> JsonLayerBuilder {
        JsonLayerBuilder {
            schema: None,
            schema_builder: Schema::builder(Preset::Flat),
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
    /// The schema this layer writes; clone it into another layer (Redis) to
    /// share one encoding per event.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The layer's counters.
    pub fn stats(&self) -> JsonStats {
        self.stats.clone()
    }
}

impl<W> JsonLayerBuilder<W> {
    /// Chooses a preset (default [`Preset::Flat`]). Resets earlier schema
    /// options, so call it first.
    #[must_use]
    pub fn preset(mut self, preset: Preset) -> Self {
        self.schema_builder = Schema::builder(preset);
        self
    }

    /// Renames a reserved key.
    #[must_use]
    pub fn rename(mut self, key: ReservedKey, to: impl Into<String>) -> Self {
        self.schema_builder = self.schema_builder.rename(key, to);
        self
    }

    /// Adds a string field to every line.
    #[must_use]
    pub fn static_field(mut self, key: impl Into<String>, value: impl AsRef<str>) -> Self {
        self.schema_builder = self.schema_builder.static_field(key, value);
        self
    }

    /// Adds `pid` to every line.
    #[must_use]
    pub fn with_pid(mut self) -> Self {
        self.schema_builder = self.schema_builder.with_pid();
        self
    }

    /// The host name to write instead of the machine's (see
    /// [`SchemaBuilder::hostname`]).
    #[must_use]
    pub fn hostname(mut self, name: impl Into<String>) -> Self {
        self.schema_builder = self.schema_builder.hostname(name);
        self
    }

    /// Adds `hostname` to every line.
    #[must_use]
    pub fn with_hostname(mut self) -> Self {
        self.schema_builder = self.schema_builder.with_hostname();
        self
    }

    /// Sets the service name (a `service` field; bunyan's `name`).
    #[must_use]
    pub fn service(mut self, name: impl Into<String>) -> Self {
        self.schema_builder = self.schema_builder.service(name);
        self
    }

    /// The Google Cloud project: with [`Preset::Gcp`], a `trace_id` in the
    /// context becomes `logging.googleapis.com/trace`.
    #[must_use]
    pub fn gcp_project(mut self, project: impl Into<String>) -> Self {
        self.schema_builder = self.schema_builder.gcp_project(project);
        self
    }

    /// Adds the source file and line of each event.
    #[must_use]
    pub fn with_source_location(mut self, on: bool) -> Self {
        self.schema_builder = self.schema_builder.with_source_location(on);
        self
    }

    /// Sets the number policy for event fields.
    #[must_use]
    pub fn number_policy(mut self, numbers: NumberPolicy) -> Self {
        self.schema_builder = self.schema_builder.number_policy(numbers);
        self
    }

    /// Sets the clock (a fixed clock for golden tests).
    #[must_use]
    pub fn clock(mut self, clock: Clock) -> Self {
        self.schema_builder = self.schema_builder.clock(clock);
        self
    }

    /// Uses a schema built elsewhere; the other schema options are ignored.
    #[must_use]
    pub fn schema(mut self, schema: Schema) -> Self {
        self.schema = Some(schema);
        self
    }

    /// Caps the capacity the per-thread buffer keeps between lines
    /// (default [`JsonLayer::DEFAULT_BUFFER_CAPACITY_LIMIT`]).
    #[must_use]
    pub fn buffer_capacity_limit(mut self, bytes: usize) -> Self {
        self.buffer_limit = bytes;
        self
    }

    /// Sets where lines go: any [`MakeWriter`] (default: stdout).
    pub fn writer<W2>(self, make_writer: W2) -> JsonLayerBuilder<W2>
    where
        W2: for<'a> MakeWriter<'a> + 'static,
    {
        JsonLayerBuilder {
            schema: self.schema,
            schema_builder: self.schema_builder,
            make_writer,
            buffer_limit: self.buffer_limit,
        }
    }

    /// Builds the layer.
    pub fn build(self) -> JsonLayer<W> {
        JsonLayer {
            schema: self.schema.unwrap_or_else(|| self.schema_builder.build()),
            make_writer: self.make_writer,
            buffer_limit: self.buffer_limit,
            stats: JsonStats::default(),
        }
    }
}

impl<W> JsonLayer<W>
where
    W: for<'a> MakeWriter<'a> + 'static,
{
    fn emit<S>(&self, buf: &mut Vec<u8>, event: &Event<'_>, ctx: &Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        buf.clear();
        self.schema
            .encode_event(event, ctx, self.schema.clock().now(), buf);
        SharedLine::publish(&self.schema, event, buf);
        let counters = &self.stats.inner;
        match self
            .make_writer
            .make_writer_for(event.metadata())
            .write_all(buf)
        {
            Ok(()) => counters.lines.fetch_add(1, Ordering::Relaxed),
            Err(_) => counters.write_errors.fetch_add(1, Ordering::Relaxed),
        };
        if buf.capacity() > self.buffer_limit {
            *buf = Vec::new();
        }
    }
}

impl<S, W> Layer<S> for JsonLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'a> MakeWriter<'a> + 'static,
{
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let depth = DEPTH.try_with(Cell::get).unwrap_or(0);
        if depth >= JsonLayer::MAX_REENTRANCY {
            self.stats
                .inner
                .reentrant_drops
                .fetch_add(1, Ordering::Relaxed);
            return;
        }
        let _ = DEPTH.try_with(|d| d.set(depth + 1));
        // A `Debug` impl that logs re-enters here while the thread's buffer
        // is borrowed: that inner event gets a fresh buffer.
        let reused = BUF.try_with(|cell| match cell.try_borrow_mut() {
            Ok(mut buf) => {
                self.emit(&mut buf, event, &ctx);
                true
            }
            Err(_) => false,
        });
        if reused != Ok(true) {
            self.emit(&mut Vec::new(), event, &ctx);
        }
        let _ = DEPTH.try_with(|d| d.set(depth));
    }
}
