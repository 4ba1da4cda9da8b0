//! The `Nested` preset's spans: tracing-subscriber's `span` (the leaf) and
//! `spans` (root to leaf), each an object of the span's own fields.

use tracing_core::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::{LookupSpan, SpanRef};

use crate::context::SpanContext;
use crate::encode;
use crate::keys::write_key;
use crate::keys::{KeyParts, KeySet};

/// tracing-subscriber's `span` (the leaf) and `spans` (root to leaf).
pub(super) fn write_spans<S>(
    event: &Event<'_>,
    ctx: &Context<'_, S>,
    buf: &mut Vec<u8>,
    redact: &crate::Redact,
) where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let Some(scope) = ctx.event_scope(event) else {
        return;
    };
    if let Some(leaf) = ctx.event_span(event) {
        buf.extend_from_slice(b",\"span\":");
        write_span_object(&leaf, buf, redact);
    }
    buf.extend_from_slice(b",\"spans\":[");
    for (i, span) in scope.from_root().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        write_span_object(&span, buf, redact);
    }
    buf.push(b']');
}

fn write_span_object<R>(span: &SpanRef<'_, R>, buf: &mut Vec<u8>, redact: &crate::Redact)
where
    R: for<'a> LookupSpan<'a>,
{
    buf.push(b'{');
    let mut keys = KeySet::new();
    keys.insert(KeyParts::plain("name"));
    let ext = span.extensions();
    if let Some(sc) = ext.get::<SpanContext>().filter(|sc| sc.owns_node) {
        for entry in sc.node.own().iter() {
            entry.with_json_bytes(|json| {
                let key = entry.key.as_str();
                let parts = if key == "name" {
                    KeyParts::prefixed(key)
                } else {
                    KeyParts::plain(key)
                };
                // Renamed `fields.<key>` when it would start or extend
                // another key's dotted path.
                let Some(parts) = keys.insert_renaming(parts) else {
                    return;
                };
                write_key(buf, &parts);
                // The mask, or the value with hidden keys inside it masked.
                redact.write_json(buf, key, json);
                buf.push(b',');
            });
        }
    }
    buf.extend_from_slice(b"\"name\":");
    encode::write_str(buf, span.name());
    buf.push(b'}');
}
