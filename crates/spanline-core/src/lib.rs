#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod context;
mod encode;
mod fields;
mod keep;
mod keys;
mod line;
mod schema;
mod time;

pub use context::{
    inherit, set, set_in, ContextLayer, ContextValue, CtxView, FieldValue, RawJson, SetError,
};
pub use encode::{
    debug_string, decode_json_str, display_string, escape_str, write_debug, write_display,
    write_str, EscapeWriter, NonFinite, NumberPolicy, FMT_ERROR,
};
pub use keep::{lines_max_level, ContextKeys, CONTEXT_KEYS};
pub use line::{SharedLine, SharedLineConsumer};
pub use schema::{with_event_time, Clock, Preset, ReservedKey, Schema, SchemaBuilder, ECS_VERSION};
pub use time::{Precision, Timestamp};
