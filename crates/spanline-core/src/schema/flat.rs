//! The flat presets' body: the event's fields (with the header spliced in
//! when the message comes late) and the span context, flattened.

use std::error::Error;

use tracing_core::field::{Field, Visit};
use tracing_core::Metadata;

use super::errors::{self, ErrorStyle};
use super::preset::{Reserved, GCP_SOURCE, GCP_SPAN, GCP_TRACE};
use super::Schema;
use crate::context::{Entry, Node, Slot};
use crate::encode;
use crate::fields::{forward_visit, Val, ValueSink};
use crate::keys::{write_key, KeyParts, KeySet, NameMeta};

impl Schema {
    /// Writes the header at `start`, before the fields written since: it is
    /// appended, then rotated into place (no allocation).
    pub(super) fn insert_header(
        &self,
        buf: &mut Vec<u8>,
        start: usize,
        meta: &Metadata<'_>,
        message: Option<Val<'_>>,
    ) {
        let end = buf.len();
        self.write_header(buf, meta, message);
        // Nothing was written since `start` (the message came first, as from
        // tracing's macros): the header is in place already.
        if end > start {
            if let Some(moved) = buf.get_mut(start..) {
                moved.rotate_left(end - start);
            }
        }
    }

    /// The message and what follows it before the event's fields: the
    /// target and fixed keys (flat presets), or just the message (nested,
    /// inside `fields`).
    pub(super) fn write_header(
        &self,
        buf: &mut Vec<u8>,
        meta: &Metadata<'_>,
        message: Option<Val<'_>>,
    ) {
        let nested = self.inner.preset.spec().nested;
        // An event without a message has no message key (as tracing's own
        // formatters write it), not an empty one.
        if let Some(message) = message {
            if !nested {
                buf.push(b',');
            }
            buf.extend_from_slice(&self.inner.key_message);
            match message {
                Val::Str(s) => encode::write_str(buf, s),
                Val::Debug(d) => encode::write_debug(buf, d),
                other => ValueSink::default().write(
                    buf,
                    other,
                    (!self.inner.redact.is_empty()).then_some(&self.inner.redact),
                ),
            }
        }
        if !nested {
            self.write_target(meta, buf);
            buf.extend_from_slice(&self.inner.head);
        }
    }

    pub(super) fn write_target(&self, meta: &Metadata<'_>, buf: &mut Vec<u8>) {
        buf.push(b',');
        buf.extend_from_slice(&self.inner.key_target);
        if self.inner.dotted_targets {
            buf.push(b'"');
            for (i, part) in meta.target().split("::").enumerate() {
                if i > 0 {
                    buf.push(b'.');
                }
                encode::escape_str(buf, part);
            }
            buf.push(b'"');
        } else {
            encode::write_str(buf, meta.target());
        }
        if let Some([file_key, line_key]) = &self.inner.source_location {
            if file_key == GCP_SOURCE {
                return write_gcp_source(meta, buf);
            }
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
    pub(super) fn write_context<'n>(
        &self,
        node: &'n Node,
        buf: &mut Vec<u8>,
        keys: &mut KeySet<'n>,
    ) {
        let reserved = &self.inner.reserved;
        // Checked once here: with nothing to hide, the loop is as before.
        let redact = (!self.inner.redact.is_empty()).then_some(&self.inner.redact);
        for entry in node.merged.iter() {
            let name = entry.key.as_str();
            // Written under its own name (most keys), the key's hash and
            // dot test are the ones it keeps.
            let meta = entry.key.meta();
            let (parts, known) = if reserved.keeps(meta.bit) {
                (KeyParts::plain(name), Some(meta))
            } else {
                let parts = reserved.user_key_checked(name);
                let own = parts.prefixes == 0 && same_str(parts.name, name);
                (parts, own.then_some(meta))
            };
            if let Some(redact) = redact {
                if redact.hides(name) {
                    if let Some(parts) = entry
                        .with_json_bytes(|_| ())
                        .and_then(|()| keys.insert_renaming(parts))
                    {
                        buf.push(b',');
                        write_key(buf, &parts);
                        buf.extend_from_slice(crate::Redact::MASK_JSON);
                    }
                    continue;
                }
                // An object or array: hidden keys inside it are masked.
                if entry
                    .with_json_bytes(crate::redact::is_container)
                    .unwrap_or(false)
                {
                    write_scrubbed(redact, entry, parts, buf, keys);
                    continue;
                }
            }
            write_entry(entry, name, parts, known, buf, keys);
        }
    }

    /// Cloud Logging's trace (and span, from OpenTelemetry) for a `Gcp`
    /// schema with a project: OpenTelemetry's trace id when the line has
    /// one, else the context's `trace_id`.
    pub(super) fn write_gcp_trace(
        &self,
        node: Option<&Node>,
        otel: Option<(&str, &str)>,
        buf: &mut Vec<u8>,
    ) {
        let Some(project) = &self.inner.gcp_project else {
            return;
        };
        let mut write = |id: &str| {
            buf.extend_from_slice(b",\"");
            buf.extend_from_slice(GCP_TRACE.as_bytes());
            buf.extend_from_slice(b"\":\"projects/");
            encode::escape_str(buf, project);
            buf.extend_from_slice(b"/traces/");
            encode::escape_str(buf, id);
            buf.push(b'"');
        };
        if let Some((trace_id, _)) = otel {
            write(trace_id);
        } else if let Some(entry) =
            node.and_then(|n| n.merged.iter().find(|e| e.key.as_str() == "trace_id"))
        {
            entry.with_json(|json| {
                if let Some(id) = encode::decode_str(json) {
                    write(&id);
                }
            });
        }
        if let Some((_, span_id)) = otel {
            buf.extend_from_slice(b",\"");
            buf.extend_from_slice(GCP_SPAN.as_bytes());
            buf.extend_from_slice(b"\":\"");
            buf.extend_from_slice(span_id.as_bytes());
            buf.push(b'"');
        }
    }
}

/// Cloud Logging's `sourceLocation`: file, line (a number, as Google's
/// own Python `StructuredLogHandler` writes it; Cloud Logging also takes
/// the string proto3 JSON uses for int64) and function (the module path:
/// tracing knows no function names).
fn write_gcp_source(meta: &Metadata<'_>, buf: &mut Vec<u8>) {
    if meta.file().is_none() && meta.line().is_none() {
        return;
    }
    buf.extend_from_slice(b",\"");
    buf.extend_from_slice(GCP_SOURCE.as_bytes());
    buf.extend_from_slice(b"\":{");
    let mut sep = "";
    if let Some(file) = meta.file() {
        buf.extend_from_slice(b"\"file\":");
        encode::write_str(buf, file);
        sep = ",";
    }
    if let Some(line) = meta.line() {
        buf.extend_from_slice(sep.as_bytes());
        buf.extend_from_slice(b"\"line\":");
        buf.extend_from_slice(itoa::Buffer::new().format(line).as_bytes());
        sep = ",";
    }
    if let Some(module) = meta.module_path() {
        buf.extend_from_slice(sep.as_bytes());
        buf.extend_from_slice(b"\"function\":");
        encode::write_str(buf, module);
    }
    buf.push(b'}');
}

/// Writes `,"key":json` unless the key was written already (renamed
/// `fields.<key>` when it would start or extend another's dotted path).
#[inline]
pub(super) fn write_pair<'k>(
    buf: &mut Vec<u8>,
    keys: &mut KeySet<'k>,
    key: KeyParts<'k>,
    json: &[u8],
) {
    if let Some(key) = keys.insert_renaming(key) {
        buf.push(b',');
        write_key(buf, &key);
        buf.extend_from_slice(json);
    }
}

/// [`write_user_pair`], the value written by `value`.
#[inline]
pub(super) fn write_user_pair_with<'k>(
    buf: &mut Vec<u8>,
    keys: &mut KeySet<'k>,
    reserved: &Reserved,
    key: &'k str,
    value: impl FnOnce(&mut Vec<u8>),
) {
    if let Some(key) = keys.insert_renaming(reserved.user_key(key)) {
        buf.push(b',');
        write_key(buf, &key);
        value(buf);
    }
}

/// A user key: renamed to `fields.<key>` when it collides with a reserved key.
#[cfg(feature = "opentelemetry")]
#[inline]
pub(super) fn write_user_pair<'k>(
    buf: &mut Vec<u8>,
    keys: &mut KeySet<'k>,
    reserved: &Reserved,
    key: &'k str,
    json: &[u8],
) {
    write_pair(buf, keys, reserved.user_key(key), json);
}

/// Writes an event's fields, and the header when the message comes by.
pub(super) struct EventVisitor<'b, 'k> {
    pub(super) schema: &'b Schema,
    pub(super) meta: &'b Metadata<'b>,
    /// Where the header belongs: right after the level (or `"fields":{`).
    pub(super) start: usize,
    pub(super) header_done: bool,
    pub(super) values: ValueSink,
    pub(super) buf: &'b mut Vec<u8>,
    pub(super) keys: &'b mut KeySet<'k>,
    pub(super) reserved: &'b Reserved,
    /// The callsite's field names, decided once (see `callsite.rs`).
    pub(super) callsite_keys: Option<&'b super::callsite::CallsiteKeys>,
    pub(super) is_log: bool,
    /// The schema's redaction, when it hides anything.
    pub(super) redact: Option<&'b crate::Redact>,
    /// The level says critical: the `critical` field is not written again.
    pub(super) critical: bool,
}

impl EventVisitor<'_, '_> {
    fn message(&mut self, v: Val<'_>) {
        if self.header_done {
            return; // a second `message` field: the first one wins
        }
        self.header_done = true;
        self.schema
            .insert_header(self.buf, self.start, self.meta, Some(v));
    }

    fn key(&mut self, name: &'static str, sources: bool) -> bool {
        let mut parts = self.reserved.user_key(name);
        if sources {
            // The chain keeps the field's own name (`error_sources`, also
            // where ECS writes the error as `error.message`).
            parts.name = name;
            parts.sources = true;
        }
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
        if self.critical && name == super::preset::CRITICAL && matches!(v, Val::Bool(true)) {
            return;
        }
        if (self.is_log && name.starts_with("log.")) || !self.field_key(field) {
            return;
        }
        if self.redact.is_some_and(|r| r.hides(name)) {
            return self.buf.extend_from_slice(crate::Redact::MASK_JSON);
        }
        self.values.write(self.buf, v, self.redact);
    }

    /// [`key`](Self::key) for an event field, with what its callsite
    /// decided once when that is known (the usual case); a key already
    /// taken goes the long way, which renames it.
    #[inline]
    fn field_key(&mut self, field: &Field) -> bool {
        let known = self
            .callsite_keys
            .and_then(|keys| keys.fields.get(field.index()))
            .filter(|known| std::ptr::eq(known.name, field.name()));
        if let Some(known) = known {
            if self
                .keys
                .insert_known(known.parts, known.hash, known.dotted)
            {
                self.buf.push(b',');
                self.buf.extend_from_slice(&known.json);
                return true;
            }
        }
        self.key(field.name(), false)
    }

    fn error(&mut self, field: &Field, err: &(dyn Error + 'static)) {
        let name = field.name();
        if name == "message" {
            return self.message(Val::Debug(&DisplayAsDebug(err)));
        }
        let style = self.schema.inner.errors;
        if (self.is_log && name.starts_with("log.")) || !self.key(style.key(name), false) {
            return;
        }
        if self.redact.is_some_and(|r| r.hides(name)) {
            return self.buf.extend_from_slice(crate::Redact::MASK_JSON);
        }
        match style {
            ErrorStyle::Traceback => errors::write_traceback(self.buf, err),
            ErrorStyle::Dicts => errors::write_dicts(self.buf, err),
            ErrorStyle::Ecs if name == "error" => {
                encode::write_display(self.buf, &err);
                if let Some(type_name) = crate::fields::type_name(err) {
                    if self.key(errors::ECS_TYPE, false) {
                        encode::write_str(self.buf, &type_name);
                    }
                }
                if err.source().is_some() && self.key(errors::ECS_STACK, false) {
                    errors::write_caused_by(self.buf, err);
                }
            }
            ErrorStyle::Chain | ErrorStyle::Ecs => {
                encode::write_display(self.buf, &err);
                if err.source().is_some() && self.key(name, true) {
                    self.values.write_sources(self.buf, err);
                }
            }
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

/// Writes `entry`'s pair, its value (an object or array) with the keys
/// `redact` hides inside it masked. Out of line: the usual value is not
/// one.
#[inline(never)]
fn write_scrubbed<'n>(
    redact: &crate::Redact,
    entry: &'n Entry,
    parts: KeyParts<'n>,
    buf: &mut Vec<u8>,
    keys: &mut KeySet<'n>,
) {
    entry.with_json_bytes(|json| {
        if let Some(parts) = keys.insert_renaming(parts) {
            buf.push(b',');
            write_key(buf, &parts);
            redact.scrub_into(buf, json);
        }
    });
}

/// Whether `a` is `b`: the same bytes in memory (a key the preset did not
/// rename is the very `&str` it was given), else the same text.
#[inline]
fn same_str(a: &str, b: &str) -> bool {
    (std::ptr::eq(a.as_ptr(), b.as_ptr()) && a.len() == b.len()) || a == b
}

/// Puts a context key in the line's key set (renamed when taken), its
/// [`NameMeta`] used when known.
#[inline(always)]
fn insert_key<'n>(
    keys: &mut KeySet<'n>,
    parts: KeyParts<'n>,
    known: Option<NameMeta>,
) -> Option<KeyParts<'n>> {
    match known {
        Some(meta) => keys.insert_renaming_known(parts, meta),
        None => keys.insert_renaming(parts),
    }
}

/// Writes `entry`'s `"key":value` pair as the value of context key `key`,
/// when it has a value now. An empty late slot writes what it hides, the
/// outer span's entry for the key.
fn write_entry<'n>(
    entry: &Entry,
    key: &'n str,
    parts: KeyParts<'n>,
    known: Option<NameMeta>,
    buf: &mut Vec<u8>,
    keys: &mut KeySet<'n>,
) {
    match &entry.slot {
        // The common case: the pre-encoded `"key":value`, one copy.
        Slot::Fixed { .. } | Slot::Small { .. } => {
            let Some((pair, value_at)) = entry.slot.fixed_pair() else {
                return;
            };
            if let Some(parts) = insert_key(keys, parts, known) {
                buf.push(b',');
                if parts.prefixes > 0 || !same_str(parts.name, key) {
                    write_key(buf, &parts);
                    buf.extend_from_slice(pair.get(value_at..).unwrap_or_default());
                } else {
                    buf.extend_from_slice(pair);
                }
            }
        }
        Slot::Late(cell) => {
            let value = cell.value.load();
            match value.as_deref() {
                Some(json) => {
                    if let Some(parts) = insert_key(keys, parts, known) {
                        buf.push(b',');
                        if parts.prefixes > 0 || !same_str(parts.name, key) {
                            write_key(buf, &parts);
                        } else {
                            buf.extend_from_slice(cell.key_json.as_bytes());
                        }
                        buf.extend_from_slice(json.as_bytes());
                    }
                }
                None => {
                    if let Some(below) = &cell.below {
                        write_entry(below, key, parts, known, buf, keys);
                    }
                }
            }
        }
        Slot::Unused => {}
    }
}
