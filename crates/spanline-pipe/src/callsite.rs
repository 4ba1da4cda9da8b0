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

/// Most distinct callsites interned per process; past it, records use a
/// generic callsite per kind and level (each interned callsite is leaked,
/// a few hundred bytes).
pub(crate) const MAX_CALLSITES: usize = 16_384;

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

/// The target of the generic callsite used past the cap.
pub(crate) const GENERIC_TARGET: &str = "spanline_pipe::overflow";

/// Field names of the generic callsite used past the cap.
// Named so as not to meet a reserved key (`target`) or make a renamed
// key's path (`fields`).
pub(crate) const GENERIC_FIELDS: &[&str] = &["message", "child_target", "child_fields"];

#[derive(Default)]
pub(crate) struct Interner {
    map: Mutex<HashMap<Key, &'static DynCallsite>>,
    generic: Mutex<HashMap<(bool, Level), &'static DynCallsite>>,
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

    /// The callsite for `key`; a new one only while `budget` (the asking
    /// child's) and the process's cap allow, else `None`: use
    /// [`generic`](Self::generic).
    pub(crate) fn get(&self, key: &Key, budget: &mut usize) -> Option<&'static DynCallsite> {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(cs) = map.get(key) {
            return Some(cs);
        }
        if *budget == 0 || map.len() >= MAX_CALLSITES {
            return None;
        }
        *budget -= 1;
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
        map.insert(key.clone(), cs);
        Some(cs)
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
