//! What an event's field names cost, decided once per schema and callsite:
//! the key each is written under (a reserved name gets its `fields.`
//! prefix, ECS its alias), its hash for the line's key set, whether it
//! holds a dot, and the key as JSON (`"name":`, escaped). A callsite's
//! names never change, so every event of it would work these out again
//! for nothing: about 120 instructions a field (W1's three fields, a
//! 32-field event's thirty-two).
//!
//! The table is the thread's own (no lock, nothing shared between
//! threads): 64 callsites by address, the last seen in each place kept.

use std::cell::RefCell;
use std::rc::Rc;

use tracing_core::Metadata;

use super::preset::Reserved;
use crate::keys::write_key;
use crate::keys::KeyParts;

/// One field name's decisions.
pub(super) struct FieldKey {
    /// The field's own name (its address tells it is the same field).
    pub(super) name: &'static str,
    /// The key the field is written under.
    pub(super) parts: KeyParts<'static>,
    pub(super) hash: u32,
    pub(super) dotted: bool,
    /// `"key":`, as [`write_key`] writes it.
    pub(super) json: Box<[u8]>,
}

/// A callsite's field names' decisions, by field index.
pub(super) struct CallsiteKeys {
    schema: u64,
    callsite: usize,
    pub(super) fields: Box<[FieldKey]>,
}

const PLACES: usize = 64;

thread_local! {
    static TABLE: RefCell<[Option<Rc<CallsiteKeys>>; PLACES]> =
        const { RefCell::new([const { None }; PLACES]) };
}

/// The decisions for `meta`'s fields under schema `schema` (whose user
/// keys `reserved` maps), from the thread's table or made now. `None` when
/// the thread's table cannot be reached (a thread ending, a reentrant call
/// from a field's `Debug`): the caller decides per field, as before.
pub(super) fn keys_of(
    schema: u64,
    meta: &'static Metadata<'static>,
    reserved: &Reserved,
) -> Option<Rc<CallsiteKeys>> {
    #[cfg(test)]
    if tests::OFF.with(std::cell::Cell::get) {
        return None;
    }
    let callsite = std::ptr::from_ref(meta) as usize;
    // Metadata are statics of at least a few words: the address over 16
    // spreads neighbouring callsites over the places.
    let place = (callsite >> 4) % PLACES;
    TABLE
        .try_with(|table| {
            let mut table = table.try_borrow_mut().ok()?;
            let slot = table.get_mut(place)?;
            if let Some(keys) = slot {
                if keys.schema == schema && keys.callsite == callsite {
                    return Some(Rc::clone(keys));
                }
            }
            let keys = Rc::new(CallsiteKeys {
                schema,
                callsite,
                fields: meta
                    .fields()
                    .iter()
                    .map(|field| decide(field.name(), reserved))
                    .collect(),
            });
            *slot = Some(Rc::clone(&keys));
            Some(keys)
        })
        .ok()
        .flatten()
}

fn decide(name: &'static str, reserved: &Reserved) -> FieldKey {
    let parts = reserved.user_key(name);
    let mut json = Vec::with_capacity(name.len() + 3);
    write_key(&mut json, &parts);
    FieldKey {
        name,
        parts,
        hash: parts.hash(),
        dotted: parts.has_dot(),
        json: json.into_boxed_slice(),
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::Context;
    use tracing_subscriber::prelude::*;

    use crate::{ContextLayer, Preset, Schema, Timestamp};

    thread_local! {
        /// Decide per field, as without the table: the oracle below.
        pub(super) static OFF: Cell<bool> = const { Cell::new(false) };
    }

    struct Encode(Schema, Arc<Mutex<Vec<Vec<u8>>>>);

    impl<S> tracing_subscriber::Layer<S> for Encode
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
            let mut buf = Vec::new();
            self.0
                .encode_event(event, &ctx, Timestamp::from_unix(0, 0), &mut buf);
            self.1.lock().map(|mut lines| lines.push(buf)).ok();
        }
    }

    /// One callsite per value given, each with keys that rename, alias,
    /// collide with the span's and with each other, hold a dot, or need
    /// escaping: more callsites than the table has places.
    macro_rules! callsites {
        ($($n:literal)*) => {{
            $(
                tracing::info!(n = $n, level = "x", user_id = 7u64, "fields.level" = 1,
                    fields = 2, "a.b" = 3, a = 4, "q\"k" = 5, request_id = "r", "m");
                tracing::warn!(target: "t", message = $n, "error.message" = "e", trace_id = 1);
            )*
        }};
    }

    fn lines(preset: Preset, off: bool) -> Vec<Vec<u8>> {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry()
            .with(ContextLayer::new())
            .with(Encode(Schema::from(preset), lines.clone()));
        OFF.with(|o| o.set(off));
        tracing::subscriber::with_default(subscriber, || {
            let _span =
                tracing::info_span!("s", user_id = 1u64, a = 1, request_id = "outer").entered();
            for _ in 0..2 {
                callsites!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24
                    25 26 27 28 29 30 31 32 33 34 35 36 37 38 39);
            }
        });
        OFF.with(|o| o.set(false));
        let lines = lines.lock().map(|l| l.clone()).unwrap_or_default();
        lines
    }

    #[test]
    fn lines_are_the_same_with_the_callsites_decisions_as_without() {
        for preset in Preset::ALL {
            let (decided, per_field) = (lines(preset, false), lines(preset, true));
            assert_eq!(decided.len(), 160, "{preset:?}");
            for (a, b) in decided.iter().zip(&per_field) {
                assert_eq!(
                    String::from_utf8_lossy(a),
                    String::from_utf8_lossy(b),
                    "{preset:?}"
                );
            }
        }
    }
}
