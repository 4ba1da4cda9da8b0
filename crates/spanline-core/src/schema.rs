//! The shape of a JSON line (presets, key names, static fields) and the
//! encoder that writes one event into it.
//!
//! It lives in core so that every output layer (JSON, Redis, pipe) writes the
//! same bytes for the same schema, and can share them (see
//! [`SharedLine`](crate::SharedLine)).

use std::cell::Cell;
use std::error::Error;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tracing_core::field::{Field, Visit};
use tracing_core::{Event, Level, Metadata, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::context::{Node, Slot, SpanContext};
use crate::encode::{self, NumberPolicy};
use crate::fields::{forward_visit, Val, ValueSink};
use crate::keys::{KeyParts, KeySet, FIELDS_PREFIX};
use crate::time::{Precision, Timestamp};

/// A ready-made line shape. Every reserved key can still be renamed with
/// [`SchemaBuilder::rename`].
///
/// Samples (one event `info!(user_id = 42, "user logged in")` in a span
/// `request{request_id="r-1"}`):
///
/// | preset | line |
/// |---|---|
/// | `Flat` | `{"timestamp":"2026-11-21T20:52:49.633647Z","level":"INFO","message":"user logged in","target":"app","user_id":42,"request_id":"r-1"}` |
/// | `Structlog` | `{"timestamp":"2026-11-21T20:52:49.633647Z","level":"info","event":"user logged in","logger":"app","user_id":42,"request_id":"r-1"}` |
/// | `Bunyan` | `{"time":"2026-11-21T20:52:49.633Z","level":30,"msg":"user logged in","target":"app","v":0,"name":"svc","hostname":"h","pid":7,"user_id":42,"request_id":"r-1"}` |
/// | `Gcp` | `{"time":"2026-11-21T20:52:49.633647Z","severity":"INFO","message":"user logged in","target":"app","user_id":42,"request_id":"r-1"}` |
/// | `Ecs` | `{"@timestamp":"2026-11-21T20:52:49.633Z","log.level":"info","message":"user logged in","log.logger":"app","ecs.version":"8.11.0","user_id":42,"request_id":"r-1"}` |
/// | `Nested` | `{"timestamp":"2026-11-21T20:52:49.633647Z","level":"INFO","fields":{"message":"user logged in","user_id":42},"target":"app","span":{"request_id":"r-1","name":"request"},"spans":[{"request_id":"r-1","name":"request"}]}` |
///
/// ```
/// let schema = spanline_core::Schema::builder(spanline_core::Preset::Gcp).gcp_project("my-project").build();
/// assert_eq!(schema.key_name(spanline_core::ReservedKey::Level), "severity");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Preset {
    /// `timestamp`, `level` (upper case), `message`, `target`, then event
    /// fields in callsite order, then the span context flattened.
    #[default]
    Flat,
    /// structlog's JSON: `event` for the message, lower-case `level`
    /// (`warning`), `logger` for the target.
    Structlog,
    /// Readable by the `bunyan` CLI: numeric `level`, `msg`, `time`, and the
    /// required `v`, `name`, `hostname`, `pid`.
    Bunyan,
    /// Google Cloud Logging: `severity`, and `logging.googleapis.com/trace`
    /// from the context's `trace_id` when a project is set
    /// ([`SchemaBuilder::gcp_project`]).
    Gcp,
    /// Elastic Common Schema: `@timestamp`, `log.level`, `log.logger`,
    /// `ecs.version`.
    Ecs,
    /// The shape of tracing-subscriber's JSON (`fields`, `span`, `spans`),
    /// for users who migrate from it.
    Nested,
}

impl std::str::FromStr for Preset {
    type Err = String;

    /// Parses a preset's name, case-insensitively: `flat`, `structlog`,
    /// `bunyan`, `gcp`, `ecs`, `nested`. The error is the name given.
    ///
    /// ```
    /// assert_eq!("Structlog".parse(), Ok(spanline_core::Preset::Structlog));
    /// assert_eq!("xml".parse::<spanline_core::Preset>(), Err("xml".to_string()));
    /// ```
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "flat" => Ok(Preset::Flat),
            "structlog" => Ok(Preset::Structlog),
            "bunyan" => Ok(Preset::Bunyan),
            "gcp" => Ok(Preset::Gcp),
            "ecs" => Ok(Preset::Ecs),
            "nested" => Ok(Preset::Nested),
            _ => Err(s.to_string()),
        }
    }
}

/// A key the schema writes itself. User fields with the same name are kept
/// under `fields.<name>`.
///
/// ```
/// use spanline_core::{Preset, ReservedKey, Schema};
/// let schema = Schema::builder(Preset::Flat).rename(ReservedKey::Message, "msg").build();
/// assert_eq!(schema.key_name(ReservedKey::Message), "msg");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReservedKey {
    /// The event's time.
    Timestamp,
    /// The event's level.
    Level,
    /// The event's message.
    Message,
    /// The event's target (for `log` records, the logger name).
    Target,
}

/// Where timestamps come from. A fixed clock makes golden tests possible.
///
/// ```
/// use spanline_core::{Clock, Timestamp};
/// let clock = Clock::fixed(Timestamp::from_unix(0, 0));
/// assert_eq!(clock.now(), Timestamp::from_unix(0, 0));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Clock(Option<Timestamp>);

impl Clock {
    /// The system clock (the default).
    ///
    /// ```
    /// let now = spanline_core::Clock::system().now();
    /// assert!(now.unix_secs() > 0);
    /// ```
    pub fn system() -> Self {
        Self(None)
    }

    /// Always the same instant.
    ///
    /// ```
    /// let at = spanline_core::Timestamp::from_unix(60, 0);
    /// assert_eq!(spanline_core::Clock::fixed(at).now(), at);
    /// ```
    pub fn fixed(at: Timestamp) -> Self {
        Self(Some(at))
    }

    /// The current time by this clock: the fixed instant, else the time
    /// set for the event being dispatched (see [`with_event_time`]), else
    /// the system clock.
    ///
    /// ```
    /// let clock = spanline_core::Clock::default();
    /// assert!(clock.now() >= spanline_core::Timestamp::from_unix(0, 0));
    /// ```
    #[inline]
    pub fn now(&self) -> Timestamp {
        self.0
            .or_else(|| EVENT_TIME.try_with(Cell::get).ok().flatten())
            .unwrap_or_else(Timestamp::now)
    }
}

thread_local! {
    static EVENT_TIME: Cell<Option<Timestamp>> = const { Cell::new(None) };
}

/// Runs `f` with `at` as the time of the events it dispatches, for every
/// spanline output layer on this thread. The pipe forwarder uses it so a
/// child's lines keep the child's timestamps.
///
/// ```
/// use spanline_core::{Clock, Timestamp};
/// let at = Timestamp::from_unix(1, 0);
/// assert_eq!(spanline_core::with_event_time(at, || Clock::system().now()), at);
/// ```
pub fn with_event_time<R>(at: Timestamp, f: impl FnOnce() -> R) -> R {
    let previous = EVENT_TIME.try_with(|t| t.replace(Some(at))).ok().flatten();
    let out = f();
    let _ = EVENT_TIME.try_with(|t| t.set(previous));
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LevelStyle {
    Upper,
    Lower,
    Structlog,
    Bunyan,
    Gcp,
}

/// The shape of one JSON line, and its encoder.
///
/// Cheap to clone: clones share one identity, which is what lets several
/// layers share one encoded line ([`SharedLine`](crate::SharedLine)).
///
/// # Key precedence
///
/// A line never holds the same key twice. When two sources define one key:
/// reserved keys (timestamp, level, message, target and the preset's own) >
/// event fields > the nearest span > its ancestors > keys set with
/// [`set`](crate::set) > static fields. A user field that collides with a
/// reserved key is kept as `fields.<key>`; a context value shadowed by an
/// event field or a nearer span is left out of that line.
///
/// # Encoding
///
/// Strings are escaped (`"`, `\`, control characters, DEL); numbers follow
/// the [`NumberPolicy`]; `Debug` values become strings; byte slices become
/// lower-case hex strings; an error recorded with `record_error` becomes its
/// `Display` plus `<field>.sources`, the chain of `source()` messages.
/// Records from the `log` crate take their target, file and line from the
/// `log.*` fields, which are not printed.
///
/// ```
/// use spanline_core::{Clock, Preset, Schema, Timestamp};
/// let schema = Schema::builder(Preset::Structlog)
///     .static_field("service", "billing")
///     .clock(Clock::fixed(Timestamp::from_unix(0, 0)))
///     .build();
/// assert_eq!(schema.preset(), Preset::Structlog);
/// ```
#[derive(Clone, Debug)]
pub struct Schema {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    id: u64,
    preset: Preset,
    /// The reserved keys' names, indexed by `ReservedKey as usize`.
    names: [String; 4],
    /// Pre-escaped `"key":` for timestamp, level, message, target.
    key_ts: Vec<u8>,
    key_level: Vec<u8>,
    key_message: Vec<u8>,
    key_target: Vec<u8>,
    /// Every top-level key the schema writes itself.
    reserved: Reserved,
    level_style: LevelStyle,
    precision: Precision,
    values: ValueSink,
    clock: Clock,
    /// Fixed fragments after the target, each starting with `,`.
    head: Vec<u8>,
    /// `(key, encoded value)`, written last, each unless shadowed.
    statics: Vec<(String, String)>,
    source_location: Option<(String, String)>,
    gcp_project: Option<String>,
}

/// Builds a [`Schema`]. Start from [`Schema::builder`].
///
/// ```
/// use spanline_core::{Clock, NumberPolicy, Preset, Schema, Timestamp};
/// let schema = Schema::builder(Preset::Structlog)
///     .service("billing")
///     .with_hostname()
///     .number_policy(NumberPolicy { big_ints_as_strings: true, ..NumberPolicy::default() })
///     .clock(Clock::fixed(Timestamp::from_unix(0, 0)))
///     .build();
/// assert!(schema.number_policy().big_ints_as_strings);
/// ```
#[derive(Debug, Clone)]
pub struct SchemaBuilder {
    preset: Preset,
    renames: Vec<(ReservedKey, String)>,
    statics: Vec<(String, String)>,
    numbers: NumberPolicy,
    clock: Clock,
    source_location: bool,
    service: Option<String>,
    gcp_project: Option<String>,
    hostname: Option<String>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The ECS version the `Ecs` preset declares.
///
/// ```
/// let schema = spanline_core::Schema::builder(spanline_core::Preset::Ecs).build();
/// assert_eq!(spanline_core::ECS_VERSION, "8.11.0");
/// # let _ = schema;
/// ```
pub const ECS_VERSION: &str = "8.11.0";

impl Schema {
    /// Starts a schema from a preset.
    ///
    /// ```
    /// let schema = spanline_core::Schema::builder(spanline_core::Preset::Bunyan).service("svc").build();
    /// assert_eq!(schema.preset(), spanline_core::Preset::Bunyan);
    /// ```
    pub fn builder(preset: Preset) -> SchemaBuilder {
        SchemaBuilder {
            preset,
            renames: Vec::new(),
            statics: Vec::new(),
            numbers: NumberPolicy::default(),
            clock: Clock::system(),
            source_location: false,
            service: None,
            gcp_project: None,
            hostname: None,
        }
    }

    /// The preset this schema was built from.
    ///
    /// ```
    /// assert_eq!(spanline_core::Schema::default().preset(), spanline_core::Preset::Flat);
    /// ```
    pub fn preset(&self) -> Preset {
        self.inner.preset
    }

    /// An identity shared by clones of this schema, and by no other schema.
    ///
    /// ```
    /// let a = spanline_core::Schema::default();
    /// assert_eq!(a.clone().id(), a.id());
    /// assert_ne!(spanline_core::Schema::default().id(), a.id());
    /// ```
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// The schema's clock.
    ///
    /// ```
    /// let at = spanline_core::Timestamp::from_unix(0, 0);
    /// let schema = spanline_core::Schema::builder(spanline_core::Preset::Flat).clock(spanline_core::Clock::fixed(at)).build();
    /// assert_eq!(schema.clock().now(), at);
    /// ```
    pub fn clock(&self) -> Clock {
        self.inner.clock
    }

    /// The number policy used for event fields.
    ///
    /// ```
    /// assert!(!spanline_core::Schema::default().number_policy().big_ints_as_strings);
    /// ```
    pub fn number_policy(&self) -> NumberPolicy {
        self.inner.values.numbers
    }

    /// The key the schema writes for `key`, after renames.
    ///
    /// ```
    /// let schema = spanline_core::Schema::builder(spanline_core::Preset::Ecs).build();
    /// assert_eq!(schema.key_name(spanline_core::ReservedKey::Timestamp), "@timestamp");
    /// ```
    pub fn key_name(&self, key: ReservedKey) -> &str {
        &self.inner.names[key as usize]
    }
}

impl Default for Schema {
    fn default() -> Self {
        Schema::builder(Preset::Flat).build()
    }
}

impl SchemaBuilder {
    /// Renames a reserved key, for example the level to `severity`.
    ///
    /// ```
    /// let schema = spanline_core::Schema::builder(spanline_core::Preset::Flat).rename(spanline_core::ReservedKey::Target, "logger").build();
    /// # let _ = schema;
    /// ```
    #[must_use]
    pub fn rename(mut self, key: ReservedKey, to: impl Into<String>) -> Self {
        self.renames.push((key, to.into()));
        self
    }

    /// Adds a string field to every line (lowest precedence), for example
    /// `service` or `version`.
    ///
    /// ```
    /// let schema = spanline_core::Schema::builder(spanline_core::Preset::Flat).static_field("env", "production").build();
    /// # let _ = schema;
    /// ```
    #[must_use]
    pub fn static_field(mut self, key: impl Into<String>, value: impl AsRef<str>) -> Self {
        let mut json = Vec::new();
        encode::write_str(&mut json, value.as_ref());
        self.statics
            .push((key.into(), String::from_utf8_lossy(&json).into_owned()));
        self
    }

    /// Adds a numeric field to every line (lowest precedence).
    ///
    /// ```
    /// let schema = spanline_core::Schema::builder(spanline_core::Preset::Flat).static_number("shard", 3).build();
    /// # let _ = schema;
    /// ```
    #[must_use]
    pub fn static_number(mut self, key: impl Into<String>, value: i64) -> Self {
        self.statics.push((key.into(), value.to_string()));
        self
    }

    /// Adds `pid` to every line.
    ///
    /// ```
    /// let schema = spanline_core::Schema::builder(spanline_core::Preset::Flat).with_pid().build();
    /// # let _ = schema;
    /// ```
    #[must_use]
    pub fn with_pid(self) -> Self {
        self.static_number("pid", i64::from(std::process::id()))
    }

    /// Adds `hostname` to every line: the one set with
    /// [`hostname`](Self::hostname), else the machine's.
    ///
    /// ```
    /// let schema = spanline_core::Schema::builder(spanline_core::Preset::Flat).with_hostname().build();
    /// # let _ = schema;
    /// ```
    #[must_use]
    pub fn with_hostname(self) -> Self {
        let host = self.hostname.clone().unwrap_or_else(hostname);
        self.static_field("hostname", host)
    }

    /// The host name to write (bunyan's `hostname`, and
    /// [`with_hostname`](Self::with_hostname)) instead of the machine's:
    /// a container's name is often more useful.
    ///
    /// ```
    /// let schema = spanline_core::Schema::builder(spanline_core::Preset::Flat).hostname("web-1").with_hostname().build();
    /// # let _ = schema;
    /// ```
    #[must_use]
    pub fn hostname(mut self, name: impl Into<String>) -> Self {
        self.hostname = Some(name.into());
        self
    }

    /// The service name: bunyan's `name` (default: the executable's name).
    ///
    /// ```
    /// let schema = spanline_core::Schema::builder(spanline_core::Preset::Flat).service("billing").build();
    /// # let _ = schema;
    /// ```
    #[must_use]
    pub fn service(mut self, name: impl Into<String>) -> Self {
        self.service = Some(name.into());
        self
    }

    /// The Google Cloud project; with the `Gcp` preset, a `trace_id` in the
    /// context becomes `logging.googleapis.com/trace`.
    ///
    /// ```
    /// let schema = spanline_core::Schema::builder(spanline_core::Preset::Gcp).gcp_project("my-project").build();
    /// # let _ = schema;
    /// ```
    #[must_use]
    pub fn gcp_project(mut self, project: impl Into<String>) -> Self {
        self.gcp_project = Some(project.into());
        self
    }

    /// Adds the source file and line of each event.
    ///
    /// ```
    /// let schema = spanline_core::Schema::builder(spanline_core::Preset::Flat).with_source_location(true).build();
    /// # let _ = schema;
    /// ```
    #[must_use]
    pub fn with_source_location(mut self, on: bool) -> Self {
        self.source_location = on;
        self
    }

    /// Sets the number policy for event fields.
    ///
    /// ```
    /// let schema = spanline_core::Schema::builder(spanline_core::Preset::Flat).number_policy(spanline_core::NumberPolicy { big_ints_as_strings: true, ..Default::default() }).build();
    /// # let _ = schema;
    /// ```
    #[must_use]
    pub fn number_policy(mut self, numbers: NumberPolicy) -> Self {
        self.numbers = numbers;
        self
    }

    /// Sets the clock (default: the system clock).
    ///
    /// ```
    /// let schema = spanline_core::Schema::builder(spanline_core::Preset::Flat).clock(spanline_core::Clock::system()).build();
    /// # let _ = schema;
    /// ```
    #[must_use]
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Builds the schema.
    ///
    /// ```
    /// let schema: spanline_core::Schema = spanline_core::Schema::builder(spanline_core::Preset::Nested).build();
    /// # let _ = schema;
    /// ```
    pub fn build(mut self) -> Schema {
        if let Some(service) = self
            .service
            .as_ref()
            .filter(|_| self.preset != Preset::Bunyan)
        {
            self.statics
                .insert(0, ("service".to_string(), json_string(service)));
        }
        let (names, level_style, precision) = match self.preset {
            Preset::Flat => (
                ["timestamp", "level", "message", "target"],
                LevelStyle::Upper,
                Precision::Micros,
            ),
            Preset::Structlog => (
                ["timestamp", "level", "event", "logger"],
                LevelStyle::Structlog,
                Precision::Micros,
            ),
            Preset::Bunyan => (
                ["time", "level", "msg", "target"],
                LevelStyle::Bunyan,
                Precision::Millis,
            ),
            Preset::Gcp => (
                ["time", "severity", "message", "target"],
                LevelStyle::Gcp,
                Precision::Micros,
            ),
            Preset::Ecs => (
                ["@timestamp", "log.level", "message", "log.logger"],
                LevelStyle::Lower,
                Precision::Millis,
            ),
            Preset::Nested => (
                ["timestamp", "level", "message", "target"],
                LevelStyle::Upper,
                Precision::Micros,
            ),
        };
        let mut names = names.map(String::from);
        for (key, to) in std::mem::take(&mut self.renames) {
            names[key as usize] = to;
        }
        let mut reserved: Vec<String> = names.to_vec();
        let mut head = Vec::new();
        let mut push_head = |reserved: &mut Vec<String>, key: &str, json: &str| {
            head.push(b',');
            encode::write_str(&mut head, key);
            head.push(b':');
            head.extend_from_slice(json.as_bytes());
            reserved.push(key.to_string());
        };
        match self.preset {
            Preset::Bunyan => {
                let service = self.service.clone().unwrap_or_else(exe_name);
                push_head(&mut reserved, "v", "0");
                push_head(&mut reserved, "name", &json_string(&service));
                push_head(
                    &mut reserved,
                    "hostname",
                    &json_string(&self.hostname.clone().unwrap_or_else(hostname)),
                );
                push_head(&mut reserved, "pid", &std::process::id().to_string());
            }
            Preset::Ecs => push_head(&mut reserved, "ecs.version", &json_string(ECS_VERSION)),
            Preset::Nested => {
                // `message` moves inside `fields`; these are the nested keys.
                reserved.retain(|k| k != &names[ReservedKey::Message as usize]);
                reserved.extend(["fields", "span", "spans"].map(String::from));
            }
            _ => {}
        }
        if self.preset == Preset::Gcp && self.gcp_project.is_some() {
            reserved.push(GCP_TRACE.to_string());
        }
        self.build_with(names, reserved, head, level_style, precision)
    }

    fn build_with(
        self,
        names: [String; 4],
        mut reserved: Vec<String>,
        head: Vec<u8>,
        level_style: LevelStyle,
        precision: Precision,
    ) -> Schema {
        let source_location = self.source_location.then(|| {
            let (file, line) = match self.preset {
                Preset::Structlog => ("filename", "lineno"),
                Preset::Ecs => ("log.origin.file.name", "log.origin.file.line"),
                Preset::Nested => ("filename", "line_number"),
                _ => ("file", "line"),
            };
            reserved.extend([file.to_string(), line.to_string()]);
            (file.to_string(), line.to_string())
        });
        let key = |name: &str| {
            let mut k = Vec::new();
            encode::write_str(&mut k, name);
            k.push(b':');
            k
        };
        // Nested writes the message inside `fields`, under `message`.
        let key_message = if self.preset == Preset::Nested {
            key("message")
        } else {
            key(&names[2])
        };
        Schema {
            inner: Arc::new(Inner {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                preset: self.preset,
                key_ts: key(&names[0]),
                key_level: key(&names[1]),
                key_message,
                key_target: key(&names[3]),
                names,
                reserved: Reserved::new(reserved),
                level_style,
                precision,
                values: ValueSink {
                    numbers: self.numbers,
                },
                clock: self.clock,
                head,
                statics: self.statics,
                source_location,
                gcp_project: self.gcp_project,
            }),
        }
    }
}

const GCP_TRACE: &str = "logging.googleapis.com/trace";

fn json_string(s: &str) -> String {
    let mut json = Vec::new();
    encode::write_str(&mut json, s);
    String::from_utf8_lossy(&json).into_owned()
}

fn exe_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "app".to_string())
}

/// The machine's host name, from the kernel, `/etc/hostname` or `$HOSTNAME`.
pub(crate) fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_string())
}

// ==== encoding ====

impl Schema {
    /// Encodes `event` as one JSON line, with its span context, into `buf`
    /// (appended, ending with `\n`), at time `at`.
    ///
    /// Never fails: every value has a JSON form.
    ///
    /// ```
    /// use tracing_subscriber::{layer::Context, prelude::*, registry::LookupSpan, Layer};
    /// // A layer of your own that writes spanline's line somewhere else.
    /// struct Mine(spanline_core::Schema);
    /// impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Mine {
    ///     fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
    ///         let mut line = Vec::new();
    ///         self.0.encode_event(event, &ctx, self.0.clock().now(), &mut line);
    ///         assert!(line.ends_with(b"}\n"));
    ///     }
    /// }
    /// let subscriber = tracing_subscriber::registry().with(spanline_core::ContextLayer::new()).with(Mine(Default::default()));
    /// tracing::subscriber::with_default(subscriber, || tracing::info!("hello"));
    /// ```
    pub fn encode_event<S>(
        &self,
        event: &Event<'_>,
        ctx: &Context<'_, S>,
        at: Timestamp,
        buf: &mut Vec<u8>,
    ) where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let inner = &*self.inner;
        let normalized = event.normalized_metadata();
        let meta: &Metadata<'_> = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let nested = inner.preset == Preset::Nested;

        let mut keys = KeySet::new();
        if inner.reserved.shadows_prefixed {
            for r in &inner.reserved.names {
                keys.insert(KeyParts::plain(r));
            }
        }

        buf.push(b'{');
        buf.extend_from_slice(&inner.key_ts);
        buf.push(b'"');
        at.write_rfc3339(buf, inner.precision);
        buf.extend_from_slice(b"\",");
        buf.extend_from_slice(&inner.key_level);
        write_level(buf, *meta.level(), inner.level_style);
        if nested {
            buf.extend_from_slice(b",\"fields\":{");
        }

        // One pass over the event's fields. The header (message, target and
        // the preset's fixed keys) is written when the message comes by,
        // which is first for events from tracing's macros; otherwise it is
        // inserted in front of the fields already written.
        let mut field_keys = KeySet::new();
        let no_reserved = Reserved::default();
        let mut visitor = EventVisitor {
            schema: self,
            meta,
            start: buf.len(),
            header_done: false,
            values: inner.values,
            buf,
            keys: if nested { &mut field_keys } else { &mut keys },
            reserved: if nested {
                &no_reserved
            } else {
                &inner.reserved
            },
            is_log: normalized.is_some(),
        };
        event.record(&mut visitor);
        let (start, header_done) = (visitor.start, visitor.header_done);
        if !header_done {
            let mut header = Vec::new();
            self.write_header(&mut header, meta, None);
            buf.splice(start..start, header);
        }
        if nested {
            buf.push(b'}');
            self.write_target(meta, buf);
        }

        // The context is looked up only now, after the event's fields are
        // written: field `Debug` impls are user code that may log or record,
        // and must not run while a span lock is held.
        let node = crate::context::event_node(ctx, event);
        let dynamic = node.as_ref().map(|n| n.dynamic.entries.load());
        if nested {
            self.write_nested_spans(event, ctx, buf);
        } else if let Some(node) = node.as_deref() {
            self.write_context(node, buf, &mut keys);
        }
        for (k, v) in dynamic.iter().flat_map(|d| d.iter()) {
            write_user_pair(buf, &mut keys, &inner.reserved, k, v.as_bytes());
        }
        for (k, v) in &inner.statics {
            if !inner.reserved.contains(k) {
                write_pair(buf, &mut keys, KeyParts::plain(k), v.as_bytes());
            }
        }
        buf.extend_from_slice(b"}\n");
    }

    /// The message and what follows it before the event's fields: the
    /// target and fixed keys (flat presets), or just the message (nested,
    /// inside `fields`).
    fn write_header(&self, buf: &mut Vec<u8>, meta: &Metadata<'_>, message: Option<Val<'_>>) {
        let nested = self.inner.preset == Preset::Nested;
        if !nested {
            buf.push(b',');
        }
        buf.extend_from_slice(&self.inner.key_message);
        match message {
            Some(Val::Str(s)) => encode::write_str(buf, s),
            Some(Val::Debug(d)) => encode::write_debug(buf, d),
            Some(other) => ValueSink::default().write(buf, other),
            None => buf.extend_from_slice(b"\"\""),
        }
        if !nested {
            self.write_target(meta, buf);
            buf.extend_from_slice(&self.inner.head);
        }
    }

    fn write_target(&self, meta: &Metadata<'_>, buf: &mut Vec<u8>) {
        buf.push(b',');
        buf.extend_from_slice(&self.inner.key_target);
        encode::write_str(buf, meta.target());
        if let Some((file_key, line_key)) = &self.inner.source_location {
            if let Some(file) = meta.file() {
                buf.push(b',');
                encode::write_str(buf, file_key);
                buf.push(b':');
                encode::write_str(buf, file);
            }
            if let Some(line) = meta.line() {
                buf.push(b',');
                encode::write_str(buf, line_key);
                buf.push(b':');
                buf.extend_from_slice(itoa::Buffer::new().format(line).as_bytes());
            }
        }
    }

    /// The flattened span context, root first (dynamic keys come after).
    fn write_context<'n>(&self, node: &'n Node, buf: &mut Vec<u8>, keys: &mut KeySet<'n>) {
        let reserved = &self.inner.reserved;
        for entry in node.merged.iter() {
            let parts = reserved.user_key(entry.key.as_str());
            match &entry.slot {
                // The common case: the pre-encoded `"key":value`, one copy.
                Slot::Fixed { pair, value_at } => {
                    if keys.insert(parts) {
                        buf.push(b',');
                        if parts.prefixes > 0 {
                            write_key(buf, &parts);
                            buf.extend_from_slice(pair[*value_at..].as_bytes());
                        } else {
                            buf.extend_from_slice(pair.as_bytes());
                        }
                    }
                }
                Slot::Late(cell) => {
                    let value = cell.value.load();
                    if let Some(json) = value.as_deref() {
                        if keys.insert(parts) {
                            buf.push(b',');
                            if parts.prefixes > 0 {
                                write_key(buf, &parts);
                            } else {
                                buf.extend_from_slice(cell.key_json.as_bytes());
                            }
                            buf.extend_from_slice(json.as_bytes());
                        }
                    }
                }
            }
        }
        if let Some(project) = &self.inner.gcp_project {
            if self.inner.preset == Preset::Gcp {
                let trace = node.merged.iter().find(|e| e.key.as_str() == "trace_id");
                if let Some(entry) = trace {
                    entry.with_json(|json| {
                        if let Some(id) = encode::decode_str(json) {
                            buf.extend_from_slice(b",\"logging.googleapis.com/trace\":\"projects/");
                            encode::escape_str(buf, project);
                            buf.extend_from_slice(b"/traces/");
                            encode::escape_str(buf, &id);
                            buf.push(b'"');
                        }
                    });
                }
            }
        }
    }

    /// tracing-subscriber's `span` (the leaf) and `spans` (root to leaf).
    fn write_nested_spans<S>(&self, event: &Event<'_>, ctx: &Context<'_, S>, buf: &mut Vec<u8>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let Some(scope) = ctx.event_scope(event) else {
            return;
        };
        if let Some(leaf) = ctx.event_span(event) {
            buf.extend_from_slice(b",\"span\":");
            write_span_object(&leaf, buf);
        }
        buf.extend_from_slice(b",\"spans\":[");
        for (i, span) in scope.from_root().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            write_span_object(&span, buf);
        }
        buf.push(b']');
    }
}

fn write_span_object<R>(span: &tracing_subscriber::registry::SpanRef<'_, R>, buf: &mut Vec<u8>)
where
    R: for<'a> LookupSpan<'a>,
{
    buf.push(b'{');
    let mut keys = KeySet::new();
    keys.insert(KeyParts::plain("name"));
    let ext = span.extensions();
    if let Some(sc) = ext.get::<SpanContext>().filter(|sc| sc.owns_node) {
        for entry in sc.node.own.iter() {
            entry.with_json(|json| {
                let key = entry.key.as_str();
                let parts = if key == "name" {
                    KeyParts::prefixed(key)
                } else {
                    KeyParts::plain(key)
                };
                if keys.contains(&parts) {
                    return;
                }
                write_key(buf, &parts);
                buf.extend_from_slice(json.as_bytes());
                buf.push(b',');
            });
        }
    }
    buf.extend_from_slice(b"\"name\":");
    encode::write_str(buf, span.name());
    buf.push(b'}');
}

fn write_level(buf: &mut Vec<u8>, level: Level, style: LevelStyle) {
    let text: &[u8] = match (style, level) {
        (LevelStyle::Bunyan, Level::TRACE) => b"10",
        (LevelStyle::Bunyan, Level::DEBUG) => b"20",
        (LevelStyle::Bunyan, Level::INFO) => b"30",
        (LevelStyle::Bunyan, Level::WARN) => b"40",
        (LevelStyle::Bunyan, _) => b"50",
        (LevelStyle::Upper, Level::TRACE) => b"\"TRACE\"",
        (LevelStyle::Upper, Level::DEBUG) => b"\"DEBUG\"",
        (LevelStyle::Upper, Level::INFO) => b"\"INFO\"",
        (LevelStyle::Upper, Level::WARN) => b"\"WARN\"",
        (LevelStyle::Upper, _) => b"\"ERROR\"",
        (LevelStyle::Lower, Level::TRACE) => b"\"trace\"",
        (LevelStyle::Lower, Level::DEBUG) => b"\"debug\"",
        (LevelStyle::Lower, Level::INFO) => b"\"info\"",
        (LevelStyle::Lower, Level::WARN) => b"\"warn\"",
        (LevelStyle::Lower, _) => b"\"error\"",
        (LevelStyle::Structlog, Level::TRACE | Level::DEBUG) => b"\"debug\"",
        (LevelStyle::Structlog, Level::INFO) => b"\"info\"",
        (LevelStyle::Structlog, Level::WARN) => b"\"warning\"",
        (LevelStyle::Structlog, _) => b"\"error\"",
        (LevelStyle::Gcp, Level::TRACE | Level::DEBUG) => b"\"DEBUG\"",
        (LevelStyle::Gcp, Level::INFO) => b"\"INFO\"",
        (LevelStyle::Gcp, Level::WARN) => b"\"WARNING\"",
        (LevelStyle::Gcp, _) => b"\"ERROR\"",
    };
    buf.extend_from_slice(text);
}

#[inline]
fn write_key(buf: &mut Vec<u8>, key: &KeyParts<'_>) {
    buf.push(b'"');
    buf.extend_from_slice(key.prefix().as_bytes());
    encode::escape_str(buf, key.name);
    buf.extend_from_slice(key.suffix().as_bytes());
    buf.extend_from_slice(b"\":");
}

/// Writes `,"key":json` unless the key was written already.
#[inline]
fn write_pair<'k>(buf: &mut Vec<u8>, keys: &mut KeySet<'k>, key: KeyParts<'k>, json: &[u8]) {
    if keys.insert(key) {
        buf.push(b',');
        write_key(buf, &key);
        buf.extend_from_slice(json);
    }
}

/// A user key: renamed to `fields.<key>` when it collides with a reserved key.
#[inline]
fn write_user_pair<'k>(
    buf: &mut Vec<u8>,
    keys: &mut KeySet<'k>,
    reserved: &Reserved,
    key: &'k str,
    json: &[u8],
) {
    write_pair(buf, keys, reserved.user_key(key), json);
}

/// The top-level keys a schema writes itself.
#[derive(Debug, Default)]
pub(crate) struct Reserved {
    names: Vec<String>,
    /// A filter over (length, first byte) of the names, so most keys are
    /// cleared without a string comparison.
    filter: u64,
    /// Some reserved name starts with `fields.`, the prefix that renamed
    /// user keys get: then reserved names must also be checked per line.
    shadows_prefixed: bool,
}

impl Reserved {
    fn new(names: Vec<String>) -> Self {
        let filter = names.iter().fold(0, |m, n| m | reserved_bit(n));
        let shadows_prefixed = names.iter().any(|n| n.starts_with(FIELDS_PREFIX));
        Self {
            names,
            filter,
            shadows_prefixed,
        }
    }

    #[inline]
    fn contains(&self, key: &str) -> bool {
        self.filter & reserved_bit(key) != 0 && self.names.iter().any(|r| r == key)
    }

    #[inline]
    fn user_key<'k>(&self, key: &'k str) -> KeyParts<'k> {
        if self.contains(key) {
            KeyParts::prefixed(key)
        } else {
            KeyParts::plain(key)
        }
    }
}

#[inline]
fn reserved_bit(key: &str) -> u64 {
    let first = key.as_bytes().first().copied().unwrap_or(0) as usize;
    1u64 << ((key.len() * 13 + first) & 63)
}

/// Writes an event's fields, and the header when the message comes by.
struct EventVisitor<'b, 'k> {
    schema: &'b Schema,
    meta: &'b Metadata<'b>,
    /// Where the header belongs: right after the level (or `"fields":{`).
    start: usize,
    header_done: bool,
    values: ValueSink,
    buf: &'b mut Vec<u8>,
    keys: &'b mut KeySet<'k>,
    reserved: &'b Reserved,
    is_log: bool,
}

impl EventVisitor<'_, '_> {
    fn message(&mut self, v: Val<'_>) {
        if self.header_done {
            return; // a second `message` field: the first one wins
        }
        self.header_done = true;
        if self.buf.len() == self.start {
            self.schema.write_header(self.buf, self.meta, Some(v));
        } else {
            let mut header = Vec::new();
            self.schema.write_header(&mut header, self.meta, Some(v));
            self.buf.splice(self.start..self.start, header);
        }
    }

    fn key(&mut self, name: &'static str, sources: bool) -> bool {
        let mut parts = self.reserved.user_key(name);
        parts.sources = sources;
        while !self.keys.insert(parts) {
            // Two event fields want one key: `level`, renamed to
            // `fields.level`, and a field named `fields.level`. Keep both,
            // the later one a prefix deeper.
            if parts.prefixes >= KeyParts::MAX_PREFIXES {
                return false;
            }
            parts.prefixes += 1;
        }
        self.buf.push(b',');
        write_key(self.buf, &parts);
        true
    }

    fn value(&mut self, field: &Field, v: Val<'_>) {
        let name = field.name();
        if name == "message" {
            return self.message(v);
        }
        if (self.is_log && name.starts_with("log.")) || !self.key(name, false) {
            return;
        }
        self.values.write(self.buf, v);
    }

    fn error(&mut self, field: &Field, err: &(dyn Error + 'static)) {
        let name = field.name();
        if name == "message" {
            return self.message(Val::Debug(&DisplayAsDebug(err)));
        }
        if (self.is_log && name.starts_with("log.")) || !self.key(name, false) {
            return;
        }
        encode::write_display(self.buf, &err);
        if err.source().is_some() && self.key(name, true) {
            self.values.write_sources(self.buf, err);
        }
    }
}

impl Visit for EventVisitor<'_, '_> {
    forward_visit!();
}

/// Formats a `Display` value through `Debug`, for the message slot.
struct DisplayAsDebug<'a>(&'a (dyn Error + 'static));

impl std::fmt::Debug for DisplayAsDebug<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self.0, f)
    }
}
