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
    ///
    /// ```
    /// assert_eq!(spanline_json::JsonLayer::new().stats().lines(), 0);
    /// ```
    pub fn lines(&self) -> u64 {
        self.inner.lines.load(Ordering::Relaxed)
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
    ///
    /// ```
    /// assert_eq!(spanline_json::JsonLayer::DEFAULT_BUFFER_CAPACITY_LIMIT, 64 * 1024);
    /// ```
    pub const DEFAULT_BUFFER_CAPACITY_LIMIT: usize = 64 * 1024;

    /// How deeply events may nest (an event logged while another is being
    /// formatted) before they are dropped and counted.
    ///
    /// ```
    /// assert_eq!(spanline_json::JsonLayer::MAX_REENTRANCY, 4);
    /// ```
    pub const MAX_REENTRANCY: u8 = 4;

    /// A flat-preset layer writing to stdout.
    ///
    /// ```
    /// let layer = spanline_json::JsonLayer::new(); // flat preset, stdout
    /// assert_eq!(layer.schema().preset(), spanline_json::Preset::Flat);
    /// ```
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// Starts a builder: flat preset, stdout.
    ///
    /// ```
    /// let layer = spanline_json::JsonLayer::builder().service("api").build();
    /// # let _ = layer;
    /// ```
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
    ///
    /// ```
    /// let json = spanline_json::JsonLayer::new();
    /// let shared: spanline_json::Schema = json.schema().clone(); // give it to the Redis layer
    /// # let _ = shared;
    /// ```
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The layer's counters.
    ///
    /// ```
    /// let json = spanline_json::JsonLayer::new();
    /// let stats = json.stats(); // keep it; read it any time
    /// assert_eq!(stats.lines(), 0);
    /// ```
    pub fn stats(&self) -> JsonStats {
        self.stats.clone()
    }
}

impl<W> JsonLayerBuilder<W> {
    /// Chooses a preset (default [`Preset::Flat`]). Resets earlier schema
    /// options, so call it first.
    ///
    /// ```
    /// let layer = spanline_json::JsonLayer::builder().preset(spanline_json::Preset::Ecs).build();
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn preset(mut self, preset: Preset) -> Self {
        self.schema_builder = Schema::builder(preset);
        self
    }

    /// Renames a reserved key.
    ///
    /// ```
    /// let layer = spanline_json::JsonLayer::builder().rename(spanline_json::ReservedKey::Message, "msg").build();
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn rename(mut self, key: ReservedKey, to: impl Into<String>) -> Self {
        self.schema_builder = self.schema_builder.rename(key, to);
        self
    }

    /// Adds a string field to every line.
    ///
    /// ```
    /// let layer = spanline_json::JsonLayer::builder().static_field("version", env!("CARGO_PKG_VERSION")).build();
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn static_field(mut self, key: impl Into<String>, value: impl AsRef<str>) -> Self {
        self.schema_builder = self.schema_builder.static_field(key, value);
        self
    }

    /// Adds `pid` to every line.
    ///
    /// ```
    /// let layer = spanline_json::JsonLayer::builder().with_pid().build();
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn with_pid(mut self) -> Self {
        self.schema_builder = self.schema_builder.with_pid();
        self
    }

    /// The host name to write instead of the machine's (see
    /// [`SchemaBuilder::hostname`]).
    ///
    /// ```
    /// let layer = spanline_json::JsonLayer::builder().hostname("api-7f9c").with_hostname().build();
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn hostname(mut self, name: impl Into<String>) -> Self {
        self.schema_builder = self.schema_builder.hostname(name);
        self
    }

    /// Adds `hostname` to every line.
    ///
    /// ```
    /// let layer = spanline_json::JsonLayer::builder().with_hostname().build();
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn with_hostname(mut self) -> Self {
        self.schema_builder = self.schema_builder.with_hostname();
        self
    }

    /// Sets the service name (a `service` field; bunyan's `name`).
    ///
    /// ```
    /// let layer = spanline_json::JsonLayer::builder().service("billing").build();
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn service(mut self, name: impl Into<String>) -> Self {
        self.schema_builder = self.schema_builder.service(name);
        self
    }

    /// The Google Cloud project: with [`Preset::Gcp`], a `trace_id` in the
    /// context becomes `logging.googleapis.com/trace`.
    ///
    /// ```
    /// let layer = spanline_json::JsonLayer::builder().preset(spanline_json::Preset::Gcp).gcp_project("my-project").build();
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn gcp_project(mut self, project: impl Into<String>) -> Self {
        self.schema_builder = self.schema_builder.gcp_project(project);
        self
    }

    /// Adds the source file and line of each event.
    ///
    /// ```
    /// let layer = spanline_json::JsonLayer::builder().with_source_location(true).build();
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn with_source_location(mut self, on: bool) -> Self {
        self.schema_builder = self.schema_builder.with_source_location(on);
        self
    }

    /// Sets the number policy for event fields.
    ///
    /// ```
    /// let layer = spanline_json::JsonLayer::builder().number_policy(spanline_json::NumberPolicy { big_ints_as_strings: true, ..Default::default() }).build();
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn number_policy(mut self, numbers: NumberPolicy) -> Self {
        self.schema_builder = self.schema_builder.number_policy(numbers);
        self
    }

    /// Sets the clock (a fixed clock for golden tests).
    ///
    /// ```
    /// let layer = spanline_json::JsonLayer::builder().clock(spanline_json::Clock::fixed(spanline_json::Timestamp::from_unix(0, 0))).build();
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn clock(mut self, clock: Clock) -> Self {
        self.schema_builder = self.schema_builder.clock(clock);
        self
    }

    /// Uses a schema built elsewhere; the other schema options are ignored.
    ///
    /// ```
    /// let schema = spanline_json::Schema::builder(spanline_json::Preset::Structlog).build();
    /// let layer = spanline_json::JsonLayer::builder().schema(schema.clone()).build();
    /// assert_eq!(layer.schema().id(), schema.id());
    /// ```
    #[must_use]
    pub fn schema(mut self, schema: Schema) -> Self {
        self.schema = Some(schema);
        self
    }

    /// Caps the capacity the per-thread buffer keeps between lines
    /// (default [`JsonLayer::DEFAULT_BUFFER_CAPACITY_LIMIT`]).
    ///
    /// ```
    /// let layer = spanline_json::JsonLayer::builder().buffer_capacity_limit(16 * 1024).build();
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn buffer_capacity_limit(mut self, bytes: usize) -> Self {
        self.buffer_limit = bytes;
        self
    }

    /// Sets where lines go: any [`MakeWriter`] (default: stdout).
    ///
    /// ```
    /// let layer = spanline_json::JsonLayer::builder().writer(std::io::stderr).build();
    /// # let _ = layer;
    /// ```
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
    ///
    /// ```
    /// let layer = spanline_json::JsonLayer::builder().build();
    /// # let _ = layer;
    /// ```
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
