//! [`SchemaBuilder`]: options over a preset's row, checked once at build.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::preset::{
    HeadKey, Reserved, ReservedKey, GCP_SPAN, GCP_TRACE, NESTED_KEYS, NESTED_MESSAGE,
};
use super::{Inner, Preset, Schema, ECS_VERSION};
use crate::encode::{self, NumberPolicy};
use crate::event::Clock;
use crate::fields::ValueSink;

/// Builds a [`Schema`]. Start from [`Schema::builder`].
///
/// Each option shows in the lines; this example renders one with most of
/// them (the methods' own examples show the others).
///
/// ```
/// use spanline_core::{sink_fn, Clock, LineLayer, NumberPolicy, Preset, ReservedKey, Schema, Timestamp};
/// use std::sync::{Arc, Mutex};
/// use tracing_subscriber::prelude::*;
///
/// let schema = Schema::builder(Preset::Flat)
///     .clock(Clock::fixed(Timestamp::from_unix(0, 0)))
///     .rename(ReservedKey::Level, "severity")
///     .service("billing")
///     .static_field("env", "production")
///     .static_number("shard", 3)
///     .with_pid()
///     .hostname("web-1")
///     .with_hostname()
///     .redact(["password", "*token*"])
///     .number_policy(NumberPolicy { big_ints_as_strings: true, ..NumberPolicy::default() })
///     .with_source_location(true)
///     .build();
///
/// let out = Arc::new(Mutex::new(Vec::new()));
/// let sink = { let out = out.clone(); sink_fn(move |line, _| out.lock().unwrap().extend_from_slice(line)) };
/// let subscriber = tracing_subscriber::registry().with(LineLayer::new(schema, sink));
/// tracing::subscriber::with_default(subscriber, || {
///     tracing::info!(id = u64::MAX, password = "hunter2", api_token = "t-1", "ready")
/// });
/// let line = String::from_utf8(out.lock().unwrap().clone()).unwrap();
/// for written in [
///     r#"{"timestamp":"1970-01-01T00:00:00.000000Z","severity":"INFO""#,
///     r#""service":"billing","env":"production","shard":3"#,
///     &format!(r#""pid":{},"hostname":"web-1""#, std::process::id()),
///     r#""password":"[redacted]","api_token":"[redacted]""#,
///     r#""id":"18446744073709551615""#,
///     r#""file":""#,
/// ] {
///     assert!(line.contains(written), "{written} not in {line}");
/// }
/// ```
#[derive(Debug, Clone)]
pub struct SchemaBuilder {
    preset: Preset,
    renames: Vec<(ReservedKey, String)>,
    statics: Vec<(String, String)>,
    numbers: NumberPolicy,
    clock: Clock,
    source_location: bool,
    dotted_targets: bool,
    errors: Option<super::ErrorStyle>,
    service: Option<String>,
    gcp_project: Option<String>,
    hostname: Option<String>,
    redact: crate::Redact,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl SchemaBuilder {
    pub(super) fn new(preset: Preset) -> Self {
        Self {
            preset,
            renames: Vec::new(),
            statics: Vec::new(),
            numbers: NumberPolicy::default(),
            clock: Clock::system(),
            source_location: false,
            dotted_targets: false,
            errors: None,
            service: None,
            gcp_project: None,
            hostname: None,
            redact: crate::Redact::default(),
        }
    }

    /// Writes the values of these keys (whole keys, or patterns with `*`)
    /// as `"[redacted]"`: event fields, span fields and context alike, and
    /// keys at any depth inside JSON values (see [`Redact`](crate::Redact)).
    /// Every sink on this schema (the JSON layer, Redis) gets the same lines.
    ///
    /// ```
    /// let schema = spanline_core::Schema::builder(spanline_core::Preset::Flat).redact(["password", "*token*"]).build();
    /// ```
    ///
    /// [`SchemaBuilder`]'s example renders a line with it.
    #[must_use]
    pub fn redact<I, S>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.redact = crate::Redact::new(keys);
        self
    }

    /// Renames a reserved key, for example the level to `severity`.
    ///
    /// ```
    /// use spanline_core::{Preset, ReservedKey, Schema};
    /// let schema = Schema::builder(Preset::Flat).rename(ReservedKey::Target, "logger").build();
    /// assert_eq!(schema.key_name(ReservedKey::Target), "logger");
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
    /// ```
    ///
    /// [`SchemaBuilder`]'s example renders a line with it.
    #[must_use]
    pub fn static_field(mut self, key: impl Into<String>, value: impl AsRef<str>) -> Self {
        self.statics.push((key.into(), json_string(value.as_ref())));
        self
    }

    /// Adds a numeric field to every line (lowest precedence).
    ///
    /// ```
    /// let schema = spanline_core::Schema::builder(spanline_core::Preset::Flat).static_number("shard", 3).build();
    /// ```
    ///
    /// [`SchemaBuilder`]'s example renders a line with it.
    #[must_use]
    pub fn static_number(mut self, key: impl Into<String>, value: i64) -> Self {
        self.statics.push((key.into(), value.to_string()));
        self
    }

    /// Adds `pid` to every line.
    ///
    /// ```
    /// let schema = spanline_core::Schema::builder(spanline_core::Preset::Flat).with_pid().build();
    /// ```
    ///
    /// [`SchemaBuilder`]'s example renders a line with it.
    #[must_use]
    pub fn with_pid(self) -> Self {
        self.static_number("pid", i64::from(std::process::id()))
    }

    /// Adds `hostname` to every line: the one set with
    /// [`hostname`](Self::hostname), else the machine's.
    ///
    /// ```
    /// let schema = spanline_core::Schema::builder(spanline_core::Preset::Flat).with_hostname().build();
    /// ```
    ///
    /// [`SchemaBuilder`]'s example renders a line with it.
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
    /// ```
    ///
    /// [`SchemaBuilder`]'s example renders a line with it.
    #[must_use]
    pub fn hostname(mut self, name: impl Into<String>) -> Self {
        self.hostname = Some(name.into());
        self
    }

    /// The service name: a `service` field, bunyan's `name` (default: the
    /// executable's name).
    ///
    /// ```
    /// let schema = spanline_core::Schema::builder(spanline_core::Preset::Flat).service("billing").build();
    /// ```
    ///
    /// [`SchemaBuilder`]'s example renders a line with it.
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
    /// # use std::sync::{Arc, Mutex};
    /// # use tracing_subscriber::prelude::*;
    /// let out = Arc::new(Mutex::new(Vec::new()));
    /// let sink = { let out = out.clone(); spanline_core::sink_fn(move |line, _| out.lock().unwrap().extend_from_slice(line)) };
    /// let subscriber = tracing_subscriber::registry()
    ///     .with(spanline_core::ContextLayer::new())
    ///     .with(spanline_core::LineLayer::new(schema, sink));
    /// tracing::subscriber::with_default(subscriber, || {
    ///     let _request = tracing::info_span!("request", trace_id = "4bf92f3577b34da6a3ce929d0e0e4736").entered();
    ///     tracing::info!("ready");
    /// });
    /// let line = String::from_utf8(out.lock().unwrap().clone()).unwrap();
    /// assert!(line.contains(r#""logging.googleapis.com/trace":"projects/my-project/traces/4bf92f3577b34da6a3ce929d0e0e4736""#), "{line}");
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
    /// ```
    ///
    /// [`SchemaBuilder`]'s example renders a line with it.
    #[must_use]
    pub fn with_source_location(mut self, on: bool) -> Self {
        self.source_location = on;
        self
    }

    /// Writes targets with `.` instead of `::` (`myapp.api`, not
    /// `myapp::api`): the logger names of Python pipelines (structlog's
    /// `logger`, stdlib's `%(name)s`). Default off.
    ///
    /// ```
    /// let schema = spanline_core::Schema::builder(spanline_core::Preset::Structlog).dotted_targets(true).build();
    /// # use std::sync::{Arc, Mutex};
    /// # use tracing_subscriber::prelude::*;
    /// let out = Arc::new(Mutex::new(Vec::new()));
    /// let sink = { let out = out.clone(); spanline_core::sink_fn(move |line, _| out.lock().unwrap().extend_from_slice(line)) };
    /// let subscriber = tracing_subscriber::registry()
    ///     .with(spanline_core::ContextLayer::new())
    ///     .with(spanline_core::LineLayer::new(schema, sink));
    /// tracing::subscriber::with_default(subscriber, || tracing::info!(target: "myapp::api", "ready"));
    /// let line = String::from_utf8(out.lock().unwrap().clone()).unwrap();
    /// assert!(line.contains(r#""logger":"myapp.api""#), "{line}");
    /// ```
    #[must_use]
    pub fn dotted_targets(mut self, on: bool) -> Self {
        self.dotted_targets = on;
        self
    }

    /// How error fields are written (default: the preset's, see
    /// [`ErrorStyle`](super::ErrorStyle)).
    ///
    /// ```
    /// use spanline_core::{ErrorStyle, Preset, Schema};
    /// let schema = Schema::builder(Preset::Structlog).errors(ErrorStyle::Dicts).build();
    /// let err = std::io::Error::other("disk full");
    /// # use std::sync::{Arc, Mutex};
    /// # use tracing_subscriber::prelude::*;
    /// let out = Arc::new(Mutex::new(Vec::new()));
    /// let sink = { let out = out.clone(); spanline_core::sink_fn(move |line, _| out.lock().unwrap().extend_from_slice(line)) };
    /// let subscriber = tracing_subscriber::registry()
    ///     .with(spanline_core::ContextLayer::new())
    ///     .with(spanline_core::LineLayer::new(schema, sink));
    /// tracing::subscriber::with_default(subscriber, || {
    ///     tracing::error!(error = &err as &dyn std::error::Error, "write failed")
    /// });
    /// let line = String::from_utf8(out.lock().unwrap().clone()).unwrap();
    /// assert!(line.contains(r#""exception":[{"exc_type":"#), "{line}");
    /// ```
    #[must_use]
    pub fn errors(mut self, style: super::ErrorStyle) -> Self {
        self.errors = Some(style);
        self
    }

    /// Sets the number policy for event fields.
    ///
    /// ```
    /// use spanline_core::{NumberPolicy, Preset, Schema};
    /// let numbers = NumberPolicy { big_ints_as_strings: true, ..Default::default() };
    /// let schema = Schema::builder(Preset::Flat).number_policy(numbers).build();
    /// ```
    ///
    /// [`SchemaBuilder`]'s example renders a line with it.
    #[must_use]
    pub fn number_policy(mut self, numbers: NumberPolicy) -> Self {
        self.numbers = numbers;
        self
    }

    /// Sets the clock (default: the system clock).
    ///
    /// ```
    /// use spanline_core::{Clock, Preset, Schema, Timestamp};
    /// let at = Timestamp::from_unix(0, 0);
    /// assert_eq!(Schema::builder(Preset::Flat).clock(Clock::fixed(at)).build().clock().now(), at);
    /// ```
    #[must_use]
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Builds the schema.
    ///
    /// ```
    /// let schema = spanline_core::Schema::builder(spanline_core::Preset::Nested).build();
    /// assert_eq!(schema.preset(), spanline_core::Preset::Nested);
    /// ```
    pub fn build(mut self) -> Schema {
        let spec = self.preset.spec();
        if let Some(service) = self.service.as_ref().filter(|_| !spec.service_in_head) {
            self.statics
                .insert(0, ("service".to_string(), json_string(service)));
        }
        // Static keys the preset maps (ECS's `service.name`).
        for (key, _) in &mut self.statics {
            if let Some((_, alias)) = spec.aliases.iter().find(|(k, _)| k == key) {
                *key = (*alias).to_string();
            }
        }
        let mut names = spec.names.map(String::from);
        for (key, to) in std::mem::take(&mut self.renames) {
            names[key as usize] = to;
        }
        let mut reserved: Vec<String> = names.to_vec();
        let mut head = Vec::new();
        for &key in spec.head {
            let json = match key {
                HeadKey::Version0 => "0".to_string(),
                HeadKey::Name => json_string(&self.service.clone().unwrap_or_else(exe_name)),
                HeadKey::Hostname => json_string(&self.hostname.clone().unwrap_or_else(hostname)),
                HeadKey::Pid => std::process::id().to_string(),
                HeadKey::EcsVersion => json_string(ECS_VERSION),
                HeadKey::ProcessPid => std::process::id().to_string(),
            };
            head.push(b',');
            encode::write_str(&mut head, key.key());
            head.push(b':');
            head.extend_from_slice(json.as_bytes());
            reserved.push(key.key().to_string());
        }
        if spec.nested {
            // `message` moves inside `fields`; these are the nested keys.
            reserved.retain(|k| k != &names[ReservedKey::Message as usize]);
            reserved.extend(NESTED_KEYS.map(String::from));
        }
        let gcp_project = self.gcp_project.filter(|_| spec.gcp_trace);
        if gcp_project.is_some() {
            reserved.push(GCP_TRACE.to_string());
            reserved.push(GCP_SPAN.to_string());
        }
        let source_location = self.source_location.then(|| {
            reserved.extend(spec.source_keys.map(String::from));
            spec.source_keys.map(String::from)
        });
        let key = |name: &str| {
            let mut k = Vec::new();
            encode::write_str(&mut k, name);
            k.push(b':');
            k
        };
        let key_message = if spec.nested {
            key(NESTED_MESSAGE)
        } else {
            key(&names[ReservedKey::Message as usize])
        };
        Schema {
            inner: Arc::new(Inner {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                preset: self.preset,
                key_ts: key(&names[ReservedKey::Timestamp as usize]),
                key_level: key(&names[ReservedKey::Level as usize]),
                key_message,
                key_target: key(&names[ReservedKey::Target as usize]),
                names,
                reserved: Reserved::with_aliases(reserved, spec.aliases),
                level_style: spec.level,
                precision: spec.precision,
                values: ValueSink {
                    numbers: self.numbers,
                },
                clock: self.clock,
                head,
                statics: self.statics,
                source_location,
                dotted_targets: self.dotted_targets,
                errors: self.errors.unwrap_or(spec.errors),
                gcp_project,
                redact: self.redact,
            }),
        }
    }
}

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
fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_string())
}
