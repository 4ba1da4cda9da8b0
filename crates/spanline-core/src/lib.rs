#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod cluster;
mod context;
#[cfg(feature = "serde")]
mod embed;
mod encode;
mod event;
mod fields;
mod job;
mod job_end;
mod keep;
mod keys;
#[cfg(feature = "opentelemetry")]
mod otel;
mod redact;
mod schema;
mod sink;
mod span_close;
mod time;

pub use cluster::{key_slot, CLUSTER_SLOTS, MAX_GLOBAL_SHARDS};
pub use context::{
    hand_off_job, inherit, set, set_in, with_event_context, ContextLayer, ContextValue, CtxView,
    FieldValue, RawJson, SetError,
};
#[cfg(feature = "serde")]
pub use embed::{json, Json, JsonText};
pub use encode::{
    debug_string, decode_json_str, display_string, escape_str, write_debug, write_display,
    write_str, EscapeWriter, NonFinite, NumberPolicy, FMT_ERROR,
};
pub use event::{with_event_time, Clock};
pub use fields::{sources, ErrorTypes, JsonFields, MAX_SOURCES};
pub use job::{check_job_id, job_id_char, Channels, JobIdError, JOB_ID_MAX_LEN};
pub use job_end::{JobEnds, OnJobEnd};
pub use keep::{lines_max_level, ContextKeys, CONTEXT_KEYS};
pub use redact::Redact;
pub use schema::{
    ErrorStyle, ParseErrorStyleError, ParsePresetError, Preset, ReservedKey, Schema, SchemaBuilder,
    ECS_VERSION,
};

/// The event field that makes an ERROR event critical: `critical = true`
/// on an `error!` writes the level `critical` (structlog, ECS), `CRITICAL`
/// (flat, gcp) or `60` (bunyan) instead of the error word, and the field
/// itself is not written. tracing has no level above ERROR, so filters
/// see an ERROR event. The `nested` preset, tracing-subscriber's shape,
/// keeps `ERROR` and the field. `spanline::critical!` writes it for you.
///
/// ```
/// assert_eq!(spanline_core::CRITICAL_FIELD, "critical");
/// ```
pub const CRITICAL_FIELD: &str = "critical";
pub use sink::{LineEvent, LineLayer, LineSink, LineStats, Refusal};
pub use time::{Precision, Timestamp};
