//! spanline-json's behaviour tests, one binary (one link on a small machine).
//! Apart: `reentrancy.rs` sets the global default subscriber, and
//! `golden.rs` keeps its golden lines' target (`golden`, the crate's name).

/// No key is both a value and a dotted path, in every preset.
mod dotted;
/// JsonLayer: keys, precedence, numbers, errors, writing, sharing.
mod json;
/// The Nested preset against tracing-subscriber's JSON formatter.
mod nested;
/// PrettyLayer and PrettyLine.
mod pretty;
/// The presets against structlog, ecs-logging and the ECS definitions.
mod producers;
/// Property tests: every line is one valid JSON object with unique keys.
mod properties;
/// The reader against the writer: every preset reads back as written.
mod read;
/// Redaction inside JSON values, in every sink; U+2028 and U+2029 escaped.
mod redact;
