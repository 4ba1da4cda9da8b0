//! The presets as data: one [`PresetSpec`] row per [`Preset`], the level
//! words, and the set of keys a schema reserves.
//!
//! Adding a preset is adding a variant, a row to [`PRESETS`] and a golden
//! file (`crates/spanline-json/tests/data/<name>.jsonl`).

use std::fmt;

use tracing_core::Level;

use super::errors::ErrorStyle;
use crate::keys::{filter_bit, KeyParts, FIELDS_PREFIX};
use crate::time::Precision;

/// A ready-made line shape. Every reserved key can still be renamed with
/// [`SchemaBuilder::rename`](crate::SchemaBuilder::rename).
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
    /// ([`SchemaBuilder::gcp_project`](crate::SchemaBuilder::gcp_project)).
    Gcp,
    /// Elastic Common Schema: `@timestamp`, `log.level`, `log.logger`,
    /// `ecs.version`.
    Ecs,
    /// The shape of tracing-subscriber's JSON (`fields`, `span`, `spans`),
    /// for users who migrate from it.
    Nested,
}

impl Preset {
    /// Every preset.
    ///
    /// ```
    /// assert_eq!(spanline_core::Preset::ALL.len(), 6);
    /// ```
    pub const ALL: [Preset; 6] = [
        Preset::Flat,
        Preset::Structlog,
        Preset::Bunyan,
        Preset::Gcp,
        Preset::Ecs,
        Preset::Nested,
    ];

    /// The preset's name, as [`FromStr`](std::str::FromStr) reads it.
    ///
    /// ```
    /// assert_eq!(spanline_core::Preset::Structlog.name(), "structlog");
    /// ```
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// The keys this preset writes under another name, as `(key, written)`:
    /// ECS's `user.id` for `user_id`, `trace.id` for `trace_id`, ... Readers
    /// use it to find a key whichever preset wrote the line.
    ///
    /// ```
    /// use spanline_core::Preset;
    /// assert!(Preset::Ecs.aliases().contains(&("user_id", "user.id")));
    /// assert!(Preset::Flat.aliases().is_empty());
    /// ```
    pub fn aliases(self) -> &'static [(&'static str, &'static str)] {
        self.spec().aliases
    }

    /// The preset's row of [`PRESETS`].
    pub(crate) fn spec(self) -> &'static PresetSpec {
        &PRESETS[self as usize]
    }
}

impl std::str::FromStr for Preset {
    type Err = ParsePresetError;

    /// Parses a preset's name, case-insensitively: `flat`, `structlog`,
    /// `bunyan`, `gcp`, `ecs`, `nested`.
    ///
    /// ```
    /// assert_eq!("Structlog".parse(), Ok(spanline_core::Preset::Structlog));
    /// let err = "xml".parse::<spanline_core::Preset>().unwrap_err();
    /// assert_eq!(err.to_string(), "unknown preset `xml` (expected flat, structlog, bunyan, gcp, ecs or nested)");
    /// ```
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        Preset::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| ParsePresetError {
                name: s.to_string(),
            })
    }
}

/// A preset name that [`Preset`]'s `FromStr` does not know.
///
/// ```
/// let err = "xml".parse::<spanline_core::Preset>().unwrap_err();
/// assert_eq!(err.name(), "xml");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsePresetError {
    name: String,
}

impl ParsePresetError {
    /// The name that was given.
    ///
    /// ```
    /// assert_eq!("yaml".parse::<spanline_core::Preset>().unwrap_err().name(), "yaml");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for ParsePresetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown preset `{}` (expected ", self.name)?;
        let last = Preset::ALL.len() - 1;
        for (i, p) in Preset::ALL.iter().enumerate() {
            let sep = match i {
                0 => "",
                i if i == last => " or ",
                _ => ", ",
            };
            write!(f, "{sep}{}", p.name())?;
        }
        f.write_str(")")
    }
}

impl std::error::Error for ParsePresetError {}

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

/// How a preset writes the level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LevelStyle {
    Upper,
    Lower,
    Structlog,
    Bunyan,
    Gcp,
}

/// A fixed key a preset writes after the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HeadKey {
    /// bunyan's `"v":0`.
    Version0,
    /// bunyan's `name`: the service, else the executable's name.
    Name,
    /// bunyan's `hostname`.
    Hostname,
    /// bunyan's `pid`.
    Pid,
    /// ECS's `ecs.version`.
    EcsVersion,
    /// ECS's `process.pid`.
    ProcessPid,
}

impl HeadKey {
    pub(crate) fn key(self) -> &'static str {
        match self {
            HeadKey::Version0 => "v",
            HeadKey::Name => "name",
            HeadKey::Hostname => "hostname",
            HeadKey::Pid => "pid",
            HeadKey::EcsVersion => "ecs.version",
            HeadKey::ProcessPid => "process.pid",
        }
    }
}

/// Everything that sets one preset apart: one row of [`PRESETS`].
#[derive(Debug)]
pub(crate) struct PresetSpec {
    pub(crate) name: &'static str,
    /// Timestamp, level, message and target keys (`ReservedKey` order).
    pub(crate) names: [&'static str; 4],
    pub(crate) level: LevelStyle,
    pub(crate) precision: Precision,
    /// The file and line keys of [`with_source_location`](crate::SchemaBuilder::with_source_location).
    pub(crate) source_keys: [&'static str; 2],
    /// Fixed keys after the target, in order.
    pub(crate) head: &'static [HeadKey],
    /// The service goes into the head (`name`) rather than a `service` field.
    pub(crate) service_in_head: bool,
    /// tracing-subscriber's shape: `fields`, `span`, `spans`.
    pub(crate) nested: bool,
    /// Writes `logging.googleapis.com/trace` when a project is set.
    pub(crate) gcp_trace: bool,
    /// How error fields are written, unless the builder says otherwise.
    pub(crate) errors: ErrorStyle,
    /// User and context keys written under another name: `(key, written)`.
    pub(crate) aliases: &'static [(&'static str, &'static str)],
}

const FLAT_ROW: PresetSpec = PresetSpec {
    name: "flat",
    names: ["timestamp", "level", "message", "target"],
    level: LevelStyle::Upper,
    precision: Precision::Micros,
    source_keys: ["file", "line"],
    head: &[],
    service_in_head: false,
    nested: false,
    gcp_trace: false,
    errors: ErrorStyle::Chain,
    aliases: &[],
};

/// The ECS fields of spanline's context keys, the schema's own fields
/// (`service`, `pid`, `hostname`) and `error` (the message: the `Ecs`
/// error style adds `error.type` and `error.stack_trace`). Names as
/// generic as `method` or `status` are not mapped: an event's own field of
/// that name may mean anything (a login method is not `http.request.method`).
pub(crate) const ECS_ALIASES: &[(&str, &str)] = &[
    ("error", "error.message"),
    ("service", "service.name"),
    ("trace_id", "trace.id"),
    ("span_id", "span.id"),
    ("user_id", "user.id"),
    ("request_id", "http.request.id"),
    ("pid", "process.pid"),
    ("hostname", "host.hostname"),
];

/// One row per preset, indexed by `Preset as usize`.
pub(crate) const PRESETS: [PresetSpec; 6] = [
    FLAT_ROW,
    PresetSpec {
        name: "structlog",
        names: ["timestamp", "level", "event", "logger"],
        level: LevelStyle::Structlog,
        source_keys: ["filename", "lineno"],
        errors: ErrorStyle::Traceback,
        ..FLAT_ROW
    },
    PresetSpec {
        name: "bunyan",
        names: ["time", "level", "msg", "target"],
        level: LevelStyle::Bunyan,
        precision: Precision::Millis,
        head: &[
            HeadKey::Version0,
            HeadKey::Name,
            HeadKey::Hostname,
            HeadKey::Pid,
        ],
        service_in_head: true,
        ..FLAT_ROW
    },
    PresetSpec {
        name: "gcp",
        names: ["time", "severity", "message", "target"],
        level: LevelStyle::Gcp,
        // One object, as Cloud Logging reads it (see `write_target`).
        source_keys: [GCP_SOURCE, GCP_SOURCE],
        gcp_trace: true,
        ..FLAT_ROW
    },
    PresetSpec {
        name: "ecs",
        names: ["@timestamp", "log.level", "message", "log.logger"],
        level: LevelStyle::Lower,
        precision: Precision::Millis,
        source_keys: ["log.origin.file.name", "log.origin.file.line"],
        head: &[HeadKey::EcsVersion, HeadKey::ProcessPid],
        errors: ErrorStyle::Ecs,
        aliases: ECS_ALIASES,
        ..FLAT_ROW
    },
    PresetSpec {
        name: "nested",
        source_keys: ["filename", "line_number"],
        nested: true,
        ..FLAT_ROW
    },
];

/// The key tracing-subscriber-style `Nested` lines write the message under,
/// inside `fields`, and the keys that replace it at the top level.
pub(crate) const NESTED_MESSAGE: &str = "message";
pub(crate) const NESTED_KEYS: [&str; 3] = ["fields", "span", "spans"];

/// The key of Google Cloud Logging's trace.
pub(crate) const GCP_TRACE: &str = "logging.googleapis.com/trace";
/// Cloud Logging's span id, written beside the trace when OpenTelemetry gives one.
pub(crate) const GCP_SPAN: &str = "logging.googleapis.com/spanId";
/// Cloud Logging's source location: `{"file", "line", "function"}`.
pub(crate) const GCP_SOURCE: &str = "logging.googleapis.com/sourceLocation";

/// The event field that makes an ERROR event a critical one
/// ([`CRITICAL_FIELD`](crate::CRITICAL_FIELD)).
pub(crate) const CRITICAL: &str = "critical";

/// The level word of `level` (`critical`: an ERROR event marked critical;
/// tracing has no level above ERROR).
pub(crate) fn write_level(buf: &mut Vec<u8>, level: Level, style: LevelStyle, critical: bool) {
    if critical {
        buf.extend_from_slice(match style {
            LevelStyle::Bunyan => b"60",
            LevelStyle::Upper => b"\"CRITICAL\"",
            LevelStyle::Gcp => b"\"CRITICAL\"",
            LevelStyle::Lower | LevelStyle::Structlog => b"\"critical\"",
        });
        return;
    }
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

/// The top-level keys a schema writes itself.
#[derive(Debug, Default)]
pub(crate) struct Reserved {
    pub(crate) names: Vec<String>,
    /// A filter over (length, first byte) of the names, so most keys are
    /// cleared without a string comparison.
    filter: u64,
    /// Some reserved name starts with `fields.` (the prefix renamed user
    /// keys get) or holds a dot: then reserved names go into each line's
    /// key set.
    pub(crate) shadows_prefixed: bool,
    /// Keys written under another name (ECS's `user.id` for `user_id`).
    aliases: &'static [(&'static str, &'static str)],
    alias_filter: u64,
}

impl Reserved {
    pub(crate) fn with_aliases(
        names: Vec<String>,
        aliases: &'static [(&'static str, &'static str)],
    ) -> Self {
        Self {
            aliases,
            alias_filter: aliases.iter().fold(0, |m, (k, _)| m | reserved_bit(k)),
            ..Self::new(names)
        }
    }

    pub(crate) fn new(names: Vec<String>) -> Self {
        let filter = names.iter().fold(0, |m, n| m | reserved_bit(n));
        // Reserved names written into every line's key set: those a renamed
        // user key could equal, and dotted ones (`log.level`), so that no
        // user key is their dotted path's start (`log`) or extends them.
        let shadows_prefixed = names
            .iter()
            .any(|n| n.starts_with(FIELDS_PREFIX) || n.contains('.'));
        Self {
            names,
            filter,
            shadows_prefixed,
            aliases: &[],
            alias_filter: 0,
        }
    }

    /// The name `key` is written under, when the preset maps it.
    #[inline]
    pub(crate) fn alias(&self, key: &str) -> Option<&'static str> {
        if self.alias_filter & reserved_bit(key) == 0 {
            return None;
        }
        self.aliases
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, a)| *a)
    }

    #[inline]
    pub(crate) fn contains(&self, key: &str) -> bool {
        self.filter & reserved_bit(key) != 0 && self.names.iter().any(|r| r == key)
    }

    /// The key a user key is written under: `fields.<key>` when it is a
    /// reserved key, `fields_` for `fields` itself (which would make every
    /// renamed key the path of a value), the preset's name for it when it
    /// maps it (ECS), else the key.
    #[inline]
    pub(crate) fn user_key<'k>(&self, key: &'k str) -> KeyParts<'k> {
        if self.keeps(filter_bit(key)) {
            return KeyParts::plain(key);
        }
        self.user_key_checked(key)
    }

    /// True when a key of this [`filter_bit`] is written as it is, whatever
    /// its text: no reserved name, alias or `fields` has the bit. Most keys.
    #[inline]
    pub(crate) fn keeps(&self, bit: u8) -> bool {
        (self.filter | self.alias_filter | FIELDS_BIT) & (1u64 << (bit & 63)) == 0
    }

    /// [`user_key`](Self::user_key) for a key the filter could not let
    /// through: its text decides.
    #[inline(never)]
    pub(crate) fn user_key_checked<'k>(&self, key: &'k str) -> KeyParts<'k> {
        if key == "fields" {
            // Not `fields.fields`: that would be the path of every key
            // renamed twice.
            return KeyParts::plain("fields_");
        }
        if self.contains(key) {
            return KeyParts::prefixed(key);
        }
        match self.alias(key) {
            Some(alias) => KeyParts::plain(alias),
            None => KeyParts::plain(key),
        }
    }
}

#[inline]
fn reserved_bit(key: &str) -> u64 {
    1u64 << filter_bit(key)
}

/// `fields`' bit: the one user key renamed whatever the preset.
const FIELDS_BIT: u64 = 1 << ((6 * 13 + b'f' as usize) & 63);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_bit_is_the_bit_of_fields() {
        assert_eq!(FIELDS_BIT, reserved_bit("fields"));
    }

    #[test]
    fn rows_are_indexed_by_variant() {
        for preset in Preset::ALL {
            assert_eq!(preset.name().parse::<Preset>(), Ok(preset));
        }
    }
}
