//! Encoding the fields a span records into the entries of its node.

use std::cell::Cell;
use std::error::Error;
use std::sync::Arc;

use tracing_core::field::{Field, Visit};

use crate::context::store::{offset, Entries, Entry, Key, Slot};
use crate::encode::{self};
use crate::fields::{forward_visit, Val, ValueSink};

/// Reusable buffers for encoding a span's fields.
#[derive(Default)]
struct Scratch {
    text: Vec<u8>,
    pairs: Vec<(Key, u32, u32, u32)>,
    /// Field names seen on this thread, each as `"key":` already escaped
    /// (a span's field names are `&'static str`: the same address is the
    /// same name): a span copies its keys instead of escaping them again.
    keys: Vec<KeyJson>,
}

/// A field name's `"key":` and its [`NameMeta`](crate::keys::NameMeta)
/// (packed), found by the name's address and length.
#[derive(Clone, Copy, Default)]
struct KeyJson {
    at: usize,
    len: usize,
    meta: u32,
    json_len: u8,
    json: [u8; KEY_JSON],
}

/// The longest `"key":` kept (a 25-byte name without escapes).
const KEY_JSON: usize = 28;
/// Places in the thread's table of field names: the last name seen in
/// each is kept.
const KEY_PLACES: usize = 128;

thread_local! {
    static SCRATCH: Cell<Scratch> = const {
        Cell::new(Scratch {
            text: Vec::new(),
            pairs: Vec::new(),
            keys: Vec::new(),
        })
    };
}

/// Encodes the fields `record` visits into entries that share one buffer
/// (one allocation for all of a span's values), with room for `extra`
/// entries that `finish` may add. A span created while another one's
/// fields are being encoded (a `Debug` impl that opens a span) gets
/// buffers of its own.
pub(super) fn encode_fields(
    values: ValueSink,
    extra: usize,
    record: impl FnOnce(&mut SpanVisitor<'_>),
    finish: impl FnOnce(&mut Entries),
) -> Entries {
    // The thread's buffers, lent for this span (one opened meanwhile, from a
    // `Debug` impl, gets new ones) and given back after.
    let mut scratch = SCRATCH.try_with(Cell::take).unwrap_or_default();
    scratch.text.clear();
    scratch.pairs.clear();
    record(&mut SpanVisitor {
        values,
        scratch: &mut scratch,
    });
    let mut own = Entries::with_capacity(scratch.pairs.len() + extra);
    // Short pairs live in their entries; the span's one shared buffer is
    // made only when a pair is too long for that.
    let mut shared = None;
    for (key, start, value_at, end) in scratch.pairs.drain(..) {
        let slot = Slot::pair(&scratch.text, &mut shared, (start, value_at, end));
        own.push(Entry { key, slot });
    }
    finish(&mut own);
    let _ = SCRATCH.try_with(|s| s.set(scratch));
    own
}

/// Encodes each span field as `"key":value` into the shared text.
pub(super) struct SpanVisitor<'s> {
    values: ValueSink,
    scratch: &'s mut Scratch,
}

impl SpanVisitor<'_> {
    /// Starts a pair: writes `"key":`; returns (start, value_at).
    fn key(&mut self, key: &str) -> (u32, u32) {
        let text = &mut self.scratch.text;
        let start = text.len();
        encode::write_str(text, key);
        text.push(b':');
        (offset(start), offset(text.len()))
    }

    /// [`key`](Self::key) for a field's own name: copied from the
    /// thread's table when seen before, escaped and kept there otherwise;
    /// with the name's entry key, its meta known.
    fn field_key(&mut self, name: &'static str) -> ((u32, u32), Key) {
        let Scratch { text, keys, .. } = &mut *self.scratch;
        if keys.is_empty() {
            keys.resize(KEY_PLACES, KeyJson::default());
        }
        let at = name.as_ptr() as usize;
        let place = (at >> 3 ^ name.len()) % KEY_PLACES;
        let start = text.len();
        if let Some(kept) = keys.get(place) {
            if let Some(json) = kept.json.get(..usize::from(kept.json_len)) {
                if kept.at == at && kept.len == name.len() {
                    text.extend_from_slice(json);
                    let key = Key::of_static_known(name, kept.meta);
                    return ((offset(start), offset(text.len())), key);
                }
            }
        }
        // Not seen here yet: escaped, then kept when it fits.
        let written = self.key(name);
        let meta = crate::keys::NameMeta::of(name).pack();
        let Scratch { text, keys, .. } = &mut *self.scratch;
        let json = text.get(start..).unwrap_or_default();
        if let (Some(kept), Ok(json_len)) = (keys.get_mut(place), u8::try_from(json.len())) {
            if let Some(room) = kept.json.get_mut(..json.len()) {
                room.copy_from_slice(json);
                (kept.at, kept.len, kept.meta, kept.json_len) = (at, name.len(), meta, json_len);
            }
        }
        (written, Key::of_static_known(name, meta))
    }

    fn finish(&mut self, key: Key, (start, value_at): (u32, u32)) {
        let end = offset(self.scratch.text.len());
        self.scratch.pairs.push((key, start, value_at, end));
    }

    fn value(&mut self, field: &Field, v: Val<'_>) {
        let (at, key) = self.field_key(field.name());
        // Stored as it is: each sink masks its own hidden keys.
        self.values.write(&mut self.scratch.text, v, None);
        self.finish(key, at);
    }

    fn error(&mut self, field: &Field, err: &(dyn Error + 'static)) {
        let (at, key) = self.field_key(field.name());
        encode::write_display(&mut self.scratch.text, &err);
        self.finish(key, at);
        if err.source().is_some() {
            let key: Arc<str> =
                Arc::from(format!("{}{}", field.name(), crate::keys::SOURCES_SUFFIX));
            let at = self.key(&key);
            self.values.write_sources(&mut self.scratch.text, err);
            self.finish(Key::of_shared(key), at);
        }
    }
}

impl Visit for SpanVisitor<'_> {
    forward_visit!();
}
