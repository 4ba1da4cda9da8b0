//! The context store: every span's fields, encoded once, merged with its
//! ancestors' at creation, and readable by any layer in O(1) per event.
//!
//! One concept, the store, in rooms that depend one way (each uses only
//! the ones above it):
//! - `store`: the representation (keys, slots, entries, nodes, the span
//!   extension), merging a span's fields with its parent's, and reaching a
//!   span's context through the dispatcher;
//! - `record`: encoding a span's fields into entries;
//! - `view`: reading it ([`CtxView`], [`FieldValue`]), the context each
//!   event resolves to once, and [`with_event_context`];
//! - `set`: setting keys at run time ([`set`], [`set_in`], [`inherit`]);
//! - `hand_off`: [`hand_off_job`], which moves a job's end to the span
//!   that receives it;
//! - `layer`: [`ContextLayer`], which fills the store as spans open, record
//!   and close.
//!
//! # Model
//!
//! Each span gets a private extension holding an `Arc<Node>`:
//! - `own`: the span's own fields, in declaration order;
//! - `merged`: the span's fields and all its ancestors', one entry per key,
//!   root first, the nearest span's value winning;
//! - `dynamic`: keys set at run time with [`set`], shared by every span under
//!   the same root.
//!
//! A value given when the span is created is fixed: an already-encoded JSON
//! fragment behind an `Arc`, copied by reference into descendants. A field
//! declared `Empty` gets a shared late slot instead, so a later
//! `Span::record` shows up on lines of descendants and tasks that exist
//! already. A span without fields shares its parent's node.

// lib.rs re-exports the public items from the rooms themselves.
pub(crate) mod hand_off;
pub(crate) mod layer;
mod record;
pub(crate) mod set;
mod store;
pub(crate) mod view;

pub(crate) use store::{Entry, Node, Slot, SpanContext};
#[cfg(feature = "opentelemetry")]
pub(crate) use view::stored_event_otel;
pub(crate) use view::{event_key, event_node, CtxView, EventKey};
