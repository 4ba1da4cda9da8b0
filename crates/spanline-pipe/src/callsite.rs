//! Callsites for records from another process: interned, registered with
//! tracing like any static callsite, so filters see the child's own targets
//! and levels.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use tracing_core::callsite::{Callsite, Identifier};
use tracing_core::field::FieldSet;
use tracing_core::metadata::Kind;
use tracing_core::subscriber::Interest;
use tracing_core::{Level, Metadata};

/// Most callsites the running children may hold: each child holds the
/// callsites it interned first, until it exits (its `Receiver` is dropped);
/// then they are released, and stay interned for any later child to use at
/// no cost. Past it, a child's new callsites use the generic one until
/// other children exit.
pub(crate) const MAX_LIVE_CALLSITES: usize = 16_384;

/// Most memory the callsites interned in the life of the process may
/// cost, released or not: tracing can never free a registered callsite (it
/// keeps a `&'static` to each), so this bounds them, at
/// [`Key::cost`] each (about 1.2 KiB for a usual one, measured 1 KiB).
/// Past it, new callsites use the generic one for good. Reached only by
/// children that keep inventing targets or field names: about 50 of them
/// at their full budget.
pub(crate) const MAX_RETAINED_BYTES: usize = 64 << 20;

/// Most new callsites one child (one `Receiver`) may intern: a child that
/// makes up targets or field names without end uses the generic callsites
/// past it, and leaves the process's budget to the others.
pub(crate) const MAX_CALLSITES_PER_CHILD: usize = 1_024;

pub(crate) struct DynCallsite {
    meta: OnceLock<Metadata<'static>>,
    interest: AtomicU8,
}

impl std::fmt::Debug for DynCallsite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynCallsite")
            .field("meta", &self.meta.get())
            .finish_non_exhaustive()
    }
}

impl Callsite for DynCallsite {
    fn set_interest(&self, interest: Interest) {
        let v = if interest.is_never() {
            0
        } else if interest.is_always() {
            2
        } else {
            1
        };
        self.interest.store(v, Ordering::Relaxed);
    }

    fn metadata(&self) -> &Metadata<'_> {
        self.meta.get().unwrap_or(&PLACEHOLDER_META)
    }
}

impl DynCallsite {
    pub(crate) fn meta(&'static self) -> &'static Metadata<'static> {
        self.meta.get().unwrap_or(&PLACEHOLDER_META)
    }

    /// Its metadata, for a borrowed callsite.
    pub(crate) fn meta_ref(&self) -> &Metadata<'static> {
        self.meta.get().unwrap_or(&PLACEHOLDER_META)
    }

    /// The generic callsite used past the interner's cap.
    pub(crate) fn is_generic(&self) -> bool {
        self.meta_ref().target() == GENERIC_TARGET
    }

    /// False when every subscriber said "never" for this callsite.
    pub(crate) fn maybe_enabled(&self) -> bool {
        self.interest.load(Ordering::Relaxed) != 0
    }
}

// Never used for a record: `metadata()` before the `OnceLock` is set, which
// cannot happen since a callsite is registered only after it is set.
static PLACEHOLDER: DynCallsite = DynCallsite {
    meta: OnceLock::new(),
    interest: AtomicU8::new(0),
};
static PLACEHOLDER_META: Metadata<'static> = Metadata::new(
    "spanline_pipe placeholder",
    "spanline_pipe",
    Level::TRACE,
    None,
    None,
    None,
    FieldSet::new(&[], Identifier(&PLACEHOLDER)),
    Kind::EVENT,
);

#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub(crate) span: bool,
    pub(crate) name: String,
    pub(crate) target: String,
    pub(crate) level: Level,
    pub(crate) file: Option<String>,
    pub(crate) line: Option<u32>,
    pub(crate) fields: Vec<String>,
}

impl Key {
    /// What interning this key costs, counted high: its strings twice
    /// (leaked into the metadata, and the interner's copy), 16 bytes a
    /// field name more, and 1 KiB for the rest (the callsite, its
    /// metadata, the map and registry entries).
    pub(crate) fn cost(&self) -> usize {
        let strings = self.name.len()
            + self.target.len()
            + self.file.as_ref().map_or(0, String::len)
            + self.fields.iter().map(|f| f.len() + 16).sum::<usize>();
        2 * strings + 1024
    }
}

/// The target of the generic callsite used past the cap.
pub(crate) const GENERIC_TARGET: &str = "spanline_pipe::overflow";

/// Field names of the generic callsite used past the cap.
// Named so as not to meet a reserved key (`target`) or make a renamed
// key's path (`fields`).
pub(crate) const GENERIC_FIELDS: &[&str] = &["message", "child_target", "child_fields"];

/// Why no new callsite was interned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Full {
    /// The child spent its budget ([`MAX_CALLSITES_PER_CHILD`]).
    Child,
    /// The running children hold [`MAX_LIVE_CALLSITES`].
    Live,
    /// The process interned [`MAX_RETAINED_BYTES`] of callsites in its life.
    Retained,
}

impl Full {
    /// The limit that was met.
    pub(crate) fn limit(self) -> usize {
        match self {
            Full::Child => MAX_CALLSITES_PER_CHILD,
            Full::Live => MAX_LIVE_CALLSITES,
            Full::Retained => MAX_RETAINED_BYTES,
        }
    }
}

/// One child's account with the interner.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Budget {
    /// New callsites it may still intern.
    pub(crate) left: usize,
    /// Callsites it interned first and holds until it exits.
    pub(crate) held: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            left: MAX_CALLSITES_PER_CHILD,
            held: 0,
        }
    }
}

#[derive(Default)]
struct Interned {
    map: HashMap<Key, &'static DynCallsite>,
    /// Callsites held by running children (the sum of their `held`).
    live: usize,
    /// What every interned callsite costs ([`Key::cost`]), summed.
    bytes: usize,
}

pub(crate) struct Interner {
    interned: Mutex<Interned>,
    generic: Mutex<HashMap<(bool, Level), &'static DynCallsite>>,
    max_live: usize,
    max_retained_bytes: usize,
}

impl Default for Interner {
    fn default() -> Self {
        Self::with_limits(MAX_LIVE_CALLSITES, MAX_RETAINED_BYTES)
    }
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_string().into_boxed_str())
}

fn make(
    span: bool,
    name: &str,
    target: &str,
    level: Level,
    file: Option<&str>,
    line: Option<u32>,
    fields: &[&str],
) -> &'static DynCallsite {
    let cs: &'static DynCallsite = Box::leak(Box::new(DynCallsite {
        meta: OnceLock::new(),
        interest: AtomicU8::new(1),
    }));
    let names: &'static [&'static str] = Box::leak(
        fields
            .iter()
            .map(|f| leak(f))
            .collect::<Vec<_>>()
            .into_boxed_slice(),
    );
    let meta = Metadata::new(
        leak(name),
        leak(target),
        level,
        file.map(leak),
        line,
        None,
        FieldSet::new(names, Identifier(cs)),
        if span { Kind::SPAN } else { Kind::EVENT },
    );
    let _ = cs.meta.set(meta);
    // Asks every dispatcher for its interest and keeps the callsite in the
    // global registry, so reloads and later dispatchers cover it too.
    tracing_core::callsite::register(cs);
    cs
}

impl Interner {
    pub(crate) fn global() -> &'static Interner {
        static GLOBAL: OnceLock<Interner> = OnceLock::new();
        GLOBAL.get_or_init(Interner::default)
    }

    fn with_limits(max_live: usize, max_retained_bytes: usize) -> Self {
        Self {
            interned: Mutex::default(),
            generic: Mutex::default(),
            max_live,
            max_retained_bytes,
        }
    }

    fn interned(&self) -> std::sync::MutexGuard<'_, Interned> {
        self.interned.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The callsite for `key`: one already interned (by any child, running
    /// or gone) costs nothing; a new one only while `budget` (the asking
    /// child's), the running children's and the process's limits allow,
    /// else which limit was met: use [`generic`](Self::generic).
    pub(crate) fn get(&self, key: &Key, budget: &mut Budget) -> Result<&'static DynCallsite, Full> {
        let mut interned = self.interned();
        if let Some(cs) = interned.map.get(key) {
            return Ok(cs);
        }
        if budget.left == 0 {
            return Err(Full::Child);
        }
        let cost = key.cost();
        if interned.bytes.saturating_add(cost) > self.max_retained_bytes {
            return Err(Full::Retained);
        }
        if interned.live >= self.max_live {
            return Err(Full::Live);
        }
        budget.left -= 1;
        budget.held += 1;
        interned.live += 1;
        interned.bytes += cost;
        let names: Vec<&str> = key.fields.iter().map(String::as_str).collect();
        let cs = make(
            key.span,
            &key.name,
            &key.target,
            key.level,
            key.file.as_deref(),
            key.line,
            &names,
        );
        interned.map.insert(key.clone(), cs);
        Ok(cs)
    }

    /// A child is gone: the callsites it held no longer count against the
    /// running children's limit (they stay interned, for any child).
    pub(crate) fn release(&self, budget: &mut Budget) {
        let mut interned = self.interned();
        interned.live = interned.live.saturating_sub(budget.held);
        budget.held = 0;
    }

    /// The generic callsite for `key`'s kind and level.
    pub(crate) fn generic(&self, key: &Key) -> &'static DynCallsite {
        let mut generic = self.generic.lock().unwrap_or_else(PoisonError::into_inner);
        generic.entry((key.span, key.level)).or_insert_with(|| {
            make(
                key.span,
                "forwarded",
                GENERIC_TARGET,
                key.level,
                None,
                None,
                GENERIC_FIELDS,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: usize) -> Key {
        Key {
            span: false,
            name: "event".into(),
            target: format!(
                "spanline_pipe::callsite::tests::t{i}_{}",
                std::process::id()
            ),
            level: Level::INFO,
            file: None,
            line: None,
            fields: vec!["message".into()],
        }
    }

    #[test]
    fn a_childs_callsites_are_released_when_it_is_gone() {
        let interner = Interner::with_limits(4, usize::MAX);
        let mut first = Budget::default();
        for i in 0..4 {
            assert!(interner.get(&key(i), &mut first).is_ok());
        }
        let mut second = Budget::default();
        assert_eq!(interner.get(&key(4), &mut second).err(), Some(Full::Live));
        // Interned already: free, whoever asks.
        assert!(interner.get(&key(0), &mut second).is_ok());
        assert_eq!(second.held, 0);
        interner.release(&mut first);
        assert_eq!(first.held, 0);
        for i in 4..8 {
            assert!(interner.get(&key(i), &mut second).is_ok(), "{i}");
        }
        assert_eq!(second.held, 4);
        assert_eq!(interner.get(&key(8), &mut second).err(), Some(Full::Live));
    }

    #[test]
    fn a_child_spends_at_most_its_budget() {
        let interner = Interner::with_limits(100, usize::MAX);
        let mut budget = Budget { left: 2, held: 0 };
        assert!(interner.get(&key(100), &mut budget).is_ok());
        assert!(interner.get(&key(101), &mut budget).is_ok());
        assert_eq!(
            interner.get(&key(102), &mut budget).err(),
            Some(Full::Child)
        );
        assert!(
            interner.get(&key(100), &mut budget).is_ok(),
            "its own, again"
        );
    }

    #[test]
    fn the_process_retains_a_bounded_amount() {
        let interner = Interner::with_limits(100, 3 * key(200).cost());
        let mut budget = Budget::default();
        for i in 200..203 {
            assert!(interner.get(&key(i), &mut budget).is_ok());
        }
        interner.release(&mut budget);
        let mut next = Budget::default();
        assert_eq!(
            interner.get(&key(203), &mut next).err(),
            Some(Full::Retained)
        );
        assert!(interner.get(&key(200), &mut next).is_ok(), "reused");
    }
}
