#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

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

// Items marked `#[doc(hidden)]` are the seams spanline's own crates share
// (the pipe re-emitting a child's events, the Redis layer's job ends, the
// facade reading its layers' options): public only because Rust has no
// visibility for sibling crates, outside the documented API and semver.
// api/spanline-core.txt lists and counts them.
pub use context::{
    hand_off::hand_off_job,
    layer::ContextLayer,
    set::{inherit, set, set_in, ContextValue, RawJson, SetError},
    view::{with_event_context, CtxView, FieldValue},
};
#[cfg(feature = "serde")]
pub use embed::{json, Json, JsonText};
pub use encode::{decode_json_str, write_str, NonFinite, NumberPolicy};
pub use event::{with_event_time, Clock};
pub use fields::{sources, ErrorTypes, JsonFields};
pub use job::{check_job_id, job_id_char, JobIdError, JOB_ID_MAX_LEN};
pub use job_end::{JobEnds, OnJobEnd};
pub use keep::{lines_max_level, CONTEXT_KEYS};
pub use redact::Redact;
pub use schema::{
    ErrorStyle, ParseErrorStyleError, ParsePresetError, Preset, ReservedKey, Schema, SchemaBuilder,
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
pub use sink::{sink_fn, LineEvent, LineLayer, LineSink, LineStats, Refusal, SinkFn};
pub use time::Timestamp;
