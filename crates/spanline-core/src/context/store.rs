//! The store's representation: keys, slots, entries, the node each span
//! holds in its extension, merging a span's fields with its parent's, and
//! reaching a span's context through the dispatcher.
//!
//! Why one file: it is the one data model every other part of the context
//! reads and writes. Its types are small (a few dozen lines each), they
//! refer to one another (an entry is a key and a slot, a node holds entries
//! and its bound keys), and their layout is tuned together (a key's meta in
//! its tag's padding, a short pair inside its slot).

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use tracing_core::span::Id;
use tracing_subscriber::registry::LookupSpan;

use crate::encode;

/// A context key: a field name (static) or a key set at run time, with
/// what lines need to know of its name, worked out once.
#[derive(Clone, Debug)]
pub(crate) enum Key {
    Static(&'static str, KeyMeta),
    Shared(Arc<str>, KeyMeta),
}

// The meta sits in the padding after the tag: no larger than a bare key.
const _: () = assert!(std::mem::size_of::<Key>() <= 24);

impl Key {
    pub(crate) const fn of_static(name: &'static str) -> Self {
        Key::Static(name, KeyMeta(std::sync::atomic::AtomicU32::new(0)))
    }

    /// A field name whose [`NameMeta`](crate::keys::NameMeta) is known,
    /// packed.
    pub(crate) fn of_static_known(name: &'static str, meta: u32) -> Self {
        Key::Static(name, KeyMeta(std::sync::atomic::AtomicU32::new(meta)))
    }

    pub(crate) fn of_shared(name: Arc<str>) -> Self {
        Key::Shared(name, KeyMeta::default())
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            Key::Static(s, _) => s,
            Key::Shared(s, _) => s,
        }
    }

    /// The name's hash, dot test and reserved-name filter bit (see
    /// [`KeyMeta`]): worked out by the first line that writes the key,
    /// then read.
    #[inline]
    pub(crate) fn meta(&self) -> crate::keys::NameMeta {
        let (name, meta) = match self {
            Key::Static(s, m) => (*s, m),
            Key::Shared(s, m) => (&**s, m),
        };
        meta.get_or(|| crate::keys::NameMeta::of(name))
    }
}

/// A key's [`NameMeta`](crate::keys::NameMeta), packed in 32 bits, kept
/// once known (0: not yet). Shared by every thread that writes the key:
/// they all work out the same value, so a race only repeats the work.
#[derive(Debug, Default)]
pub(crate) struct KeyMeta(std::sync::atomic::AtomicU32);

impl KeyMeta {
    #[inline]
    fn get_or(&self, of: impl FnOnce() -> crate::keys::NameMeta) -> crate::keys::NameMeta {
        use std::sync::atomic::Ordering::Relaxed;
        let packed = self.0.load(Relaxed);
        if let Some(meta) = crate::keys::NameMeta::unpack(packed) {
            return meta;
        }
        let meta = of();
        self.0.store(meta.pack(), Relaxed);
        meta
    }
}

impl Clone for KeyMeta {
    fn clone(&self) -> Self {
        KeyMeta(std::sync::atomic::AtomicU32::new(
            self.0.load(std::sync::atomic::Ordering::Relaxed),
        ))
    }
}

/// Where an entry's value lives.
#[derive(Clone, Debug)]
pub(crate) enum Slot {
    /// Encoded when the span was created, as the whole `"key":value` pair,
    /// so an event copies it with one `memcpy`; never changes. Every pair of
    /// a span lives in one shared buffer (one allocation per span, not per
    /// field): the pair is `text[start..end]`, its value from `value_at`.
    Fixed {
        text: Arc<[u8]>,
        start: u32,
        value_at: u32,
        end: u32,
    },
    /// A pair of at most [`SMALL_PAIR`] bytes (`"user_id":42`), kept in
    /// the entry itself: no shared buffer to allocate, count or free, and
    /// the entry is no larger than a `Fixed` one.
    Small {
        len: u8,
        value_at: u8,
        bytes: [u8; SMALL_PAIR],
    },
    /// Declared `Empty`; filled later and shared by all descendants.
    Late(Arc<LateSlot>),
    /// Nothing: the unused inline room of [`Entries`], never in a slice.
    Unused,
}

/// The longest pair a [`Slot::Small`] holds: as much as fits in the room
/// a `Fixed` slot takes anyway.
pub(crate) const SMALL_PAIR: usize = 28;
const _: () = assert!(std::mem::size_of::<Slot>() <= 32);

impl Slot {
    /// The slot for the pair `text[start..end]` (its value from
    /// `value_at`): in the entry when it is short, else in `shared`, the
    /// span's one buffer, made from `text` the first time a pair needs it.
    pub(crate) fn pair(
        text: &[u8],
        shared: &mut Option<Arc<[u8]>>,
        (start, value_at, end): (u32, u32, u32),
    ) -> Slot {
        let pair = text.get(start as usize..end as usize).unwrap_or_default();
        let mut bytes = [0u8; SMALL_PAIR];
        if let (Some(small), Ok(len), Ok(value_at)) = (
            bytes.get_mut(..pair.len()),
            u8::try_from(pair.len()),
            u8::try_from(value_at.saturating_sub(start)),
        ) {
            small.copy_from_slice(pair);
            return Slot::Small {
                len,
                value_at,
                bytes,
            };
        }
        Slot::Fixed {
            text: shared.get_or_insert_with(|| Arc::from(text)).clone(),
            start,
            value_at,
            end,
        }
    }

    /// A fixed slot's `"key":value` pair and where its value starts in it.
    #[inline]
    pub(crate) fn fixed_pair(&self) -> Option<(&[u8], usize)> {
        match self {
            Slot::Fixed {
                text,
                start,
                value_at,
                end,
            } => Some((
                text.get(*start as usize..*end as usize)?,
                value_at.saturating_sub(*start) as usize,
            )),
            Slot::Small {
                len,
                value_at,
                bytes,
            } => Some((bytes.get(..usize::from(*len))?, usize::from(*value_at))),
            Slot::Late(_) | Slot::Unused => None,
        }
    }

    /// A fixed slot's JSON value (its pair after the key).
    #[inline]
    fn fixed_value(&self) -> Option<&[u8]> {
        let (pair, value_at) = self.fixed_pair()?;
        pair.get(value_at..)
    }
}

/// A value recorded after the span was created.
#[derive(Debug)]
pub(crate) struct LateSlot {
    /// The encoded `"key":` that goes before the value.
    pub(crate) key_json: Box<str>,
    pub(crate) value: ArcSwapOption<String>,
    /// What an outer span held for the key when this span was created:
    /// shown while this slot is empty, so a field declared `Empty` and not
    /// yet recorded hides nothing.
    pub(crate) below: Option<Entry>,
}

/// `"key":` with the key escaped.
pub(crate) fn key_json(key: &str) -> String {
    let mut buf = Vec::with_capacity(key.len() + 3);
    encode::write_str(&mut buf, key);
    buf.push(b':');
    String::from_utf8(buf).unwrap_or_default()
}

#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) key: Key,
    pub(crate) slot: Slot,
}

impl Entry {
    /// A field declared `Empty`, over `below`, the outer span's entry for
    /// the same key (if any).
    pub(super) fn late(key: Key, below: Option<Entry>) -> Self {
        let key_json = key_json(key.as_str()).into_boxed_str();
        Entry {
            key,
            slot: Slot::Late(Arc::new(LateSlot {
                key_json,
                value: ArcSwapOption::empty(),
                below,
            })),
        }
    }

    /// Calls `f` with the entry's JSON value, if it has one now.
    #[inline]
    pub(crate) fn with_json<R>(&self, f: impl FnOnce(&str) -> R) -> Option<R> {
        match &self.slot {
            Slot::Late(cell) => match cell.value.load().as_deref() {
                Some(json) => Some(f(json)),
                None => cell.below.as_ref().and_then(|below| below.with_json(f)),
            },
            fixed => fixed
                .fixed_value()
                .and_then(|json| std::str::from_utf8(json).ok())
                .map(f),
        }
    }

    /// The entry's JSON value as bytes, if it has one now: for encoders,
    /// which copy it without reading it as text.
    #[inline]
    pub(crate) fn with_json_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        match &self.slot {
            Slot::Late(cell) => match cell.value.load().as_deref() {
                Some(json) => Some(f(json.as_bytes())),
                None => cell
                    .below
                    .as_ref()
                    .and_then(|below| below.with_json_bytes(f)),
            },
            fixed => fixed.fixed_value().map(f),
        }
    }
}

/// How many entries a node keeps without an allocation of its own: a
/// request span and a child of two fields each fit.
const INLINE_ENTRIES: usize = 4;

// Each use is a value of its own (an array's room, a `mem::replace`);
// its atomic is only the key's cache.
#[allow(clippy::declare_interior_mutable_const)]
const UNUSED: Entry = Entry {
    key: Key::of_static(""),
    slot: Slot::Unused,
};

/// A node's entries: up to [`INLINE_ENTRIES`] inside the node, more on the
/// heap. Reads as a slice.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // inline on purpose: most nodes need no second allocation
pub(crate) enum Entries {
    Inline {
        len: u8,
        items: [Entry; INLINE_ENTRIES],
    },
    Heap(Vec<Entry>),
}

impl Entries {
    pub(crate) fn with_capacity(n: usize) -> Self {
        if n <= INLINE_ENTRIES {
            Entries::Inline {
                len: 0,
                items: [UNUSED; INLINE_ENTRIES],
            }
        } else {
            Entries::Heap(Vec::with_capacity(n))
        }
    }

    pub(crate) fn push(&mut self, entry: Entry) {
        match self {
            Entries::Inline { len, items } => match items.get_mut(usize::from(*len)) {
                Some(free) => {
                    *free = entry;
                    *len += 1;
                }
                None => {
                    let mut heap = Vec::with_capacity(INLINE_ENTRIES * 2);
                    heap.extend(items.iter_mut().map(|e| std::mem::replace(e, UNUSED)));
                    heap.push(entry);
                    *self = Entries::Heap(heap);
                }
            },
            Entries::Heap(heap) => heap.push(entry),
        }
    }

    /// Moves `other`'s entries to the end of these.
    pub(crate) fn append(&mut self, other: Entries) {
        match other {
            Entries::Inline { len, items } => {
                for entry in items.into_iter().take(usize::from(len)) {
                    self.push(entry);
                }
            }
            Entries::Heap(heap) => heap.into_iter().for_each(|entry| self.push(entry)),
        }
    }
}

impl Default for Entries {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl std::ops::Deref for Entries {
    type Target = [Entry];

    fn deref(&self) -> &[Entry] {
        match self {
            Entries::Inline { len, items } => items.get(..usize::from(*len)).unwrap_or_default(),
            Entries::Heap(heap) => heap,
        }
    }
}

impl std::ops::DerefMut for Entries {
    fn deref_mut(&mut self) -> &mut [Entry] {
        match self {
            Entries::Inline { len, items } => {
                items.get_mut(..usize::from(*len)).unwrap_or_default()
            }
            Entries::Heap(heap) => heap,
        }
    }
}

impl FromIterator<Entry> for Entries {
    fn from_iter<I: IntoIterator<Item = Entry>>(iter: I) -> Self {
        let iter = iter.into_iter();
        let mut entries = Entries::with_capacity(iter.size_hint().0);
        for entry in iter {
            entries.push(entry);
        }
        entries
    }
}

/// The keys bound at run time with [`set`] under one root span.
pub(crate) type Bound = Vec<(Arc<str>, Arc<str>)>;

/// Keys set with [`set`], shared by every span under one root. Empty until
/// the first `set`: most requests never bind a key.
#[derive(Debug, Default)]
pub(crate) struct Dynamic {
    pub(super) entries: ArcSwapOption<Bound>,
    /// Set before the first key is bound: until then a line skips the
    /// load of `entries` (an arc-swap load, about 50 instructions).
    bound: std::sync::atomic::AtomicBool,
}

impl Dynamic {
    pub(super) fn with_entries(entries: Bound) -> Self {
        Self {
            entries: ArcSwapOption::from_pointee(entries),
            bound: std::sync::atomic::AtomicBool::new(true),
        }
    }

    /// The bound keys now; `None` when no key was ever bound here.
    #[inline]
    pub(crate) fn load(&self) -> Option<arc_swap::Guard<Option<Arc<Bound>>>> {
        use std::sync::atomic::Ordering::Acquire;
        self.bound.load(Acquire).then(|| self.entries.load())
    }

    /// Binds keys: `f` makes the new list from the current one.
    pub(super) fn rcu(&self, f: impl FnMut(&Option<Arc<Bound>>) -> Option<Arc<Bound>>) {
        self.bound.store(true, std::sync::atomic::Ordering::Release);
        self.entries.rcu(f);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.load().as_ref().is_none_or(|e| e.is_empty())
    }

    pub(super) fn to_vec(&self) -> Bound {
        self.entries.load().as_deref().cloned().unwrap_or_default()
    }
}

/// Which of a node's merged entries are the span's own.
#[derive(Debug)]
pub(super) enum Own {
    /// `merged[from..]`: a root span, or a child that only adds keys (the
    /// common case: no second list to allocate).
    Tail(usize),
    /// A child that redefines a key of an ancestor (rare: on the heap).
    Entries(Vec<Entry>),
}

/// Where a node finds the keys bound with [`set`].
#[derive(Debug)]
pub(super) enum BoundIn {
    /// This node is a root: it holds them.
    Here(Dynamic),
    /// The root node that holds them (kept alive by its descendants).
    Root(Arc<Node>),
}

#[derive(Debug)]
pub(crate) struct Node {
    pub(super) own: Own,
    pub(crate) merged: Entries,
    pub(super) bound: BoundIn,
}

impl Default for Node {
    fn default() -> Self {
        Self {
            own: Own::Tail(0),
            merged: Entries::default(),
            bound: BoundIn::Here(Dynamic::default()),
        }
    }
}

impl Node {
    /// The span's own entries, in declaration order.
    pub(crate) fn own(&self) -> &[Entry] {
        match &self.own {
            Own::Tail(from) => self.merged.get(*from..).unwrap_or_default(),
            Own::Entries(own) => own,
        }
    }

    /// The keys bound with [`set`] under this node's root.
    pub(crate) fn dynamic(&self) -> &Dynamic {
        match &self.bound {
            BoundIn::Here(dynamic) => dynamic,
            BoundIn::Root(root) => root.dynamic(),
        }
    }

    /// A new node: `own` over the parent's entries (a root when `parent`
    /// is `None`), sharing the parent's bound keys.
    pub(super) fn new(parent: Option<&Arc<Node>>, own: Entries) -> Self {
        let Some(parent) = parent else {
            return Self {
                own: Own::Tail(0),
                merged: own,
                bound: BoundIn::Here(Dynamic::default()),
            };
        };
        let bound = match &parent.bound {
            BoundIn::Here(_) => BoundIn::Root(parent.clone()),
            BoundIn::Root(root) => BoundIn::Root(root.clone()),
        };
        let redefines = own.iter().any(|o| {
            parent
                .merged
                .iter()
                .any(|p| p.key.as_str() == o.key.as_str())
        });
        if redefines {
            Self {
                merged: merge(&parent.merged, &own),
                own: Own::Entries(own.to_vec()),
                bound,
            }
        } else {
            let from = parent.merged.len();
            let mut merged = Entries::with_capacity(from + own.len());
            for entry in parent.merged.iter().cloned() {
                merged.push(entry);
            }
            merged.append(own);
            Self {
                own: Own::Tail(from),
                merged,
                bound,
            }
        }
    }

    /// This node with `own` as the span's entries instead (a fixed value
    /// recorded again), over the same ancestors and bound keys.
    pub(super) fn rebuilt(self: &Arc<Self>, own: Entries, parent_merged: &[Entry]) -> Self {
        let bound = match &self.bound {
            // A root rebuilt: its bound keys stay where its children see them.
            BoundIn::Here(_) => BoundIn::Root(self.clone()),
            BoundIn::Root(root) => BoundIn::Root(root.clone()),
        };
        Self {
            merged: merge(parent_merged, &own),
            own: Own::Entries(own.to_vec()),
            bound,
        }
    }
}

/// The span extension. A newtype, so no other layer's data collides with it.
#[derive(Debug)]
pub(crate) struct SpanContext {
    pub(crate) node: Arc<Node>,
    /// False when the span has no fields and shares its parent's node.
    pub(crate) owns_node: bool,
    /// The span's OpenTelemetry ids, asked for at its first event (they
    /// never change after); `None` kept too: a stack without
    /// tracing-opentelemetry's layer asks once per span, not at every
    /// event (asking takes the subscriber's `Arc`, a write all threads
    /// share).
    #[cfg(feature = "opentelemetry")]
    pub(crate) otel: std::sync::OnceLock<Option<crate::otel::OtelIds>>,
}

impl SpanContext {
    /// The span's OpenTelemetry ids, when an event asked for them already
    /// (`Some(None)`: it has none).
    #[cfg(feature = "opentelemetry")]
    pub(crate) fn kept_otel(&self) -> Option<Option<crate::otel::OtelIds>> {
        self.otel.get().copied()
    }

    /// Without OpenTelemetry, nothing.
    #[cfg(not(feature = "opentelemetry"))]
    pub(crate) fn kept_otel(&self) {}
}

pub(super) fn merge(parent: &[Entry], own: &[Entry]) -> Entries {
    let mut merged = Entries::with_capacity(parent.len() + own.len());
    for p in parent {
        match own.iter().find(|o| o.key.as_str() == p.key.as_str()) {
            Some(o) => merged.push(o.clone()),
            None => merged.push(p.clone()),
        }
    }
    for o in own {
        if !parent.iter().any(|p| p.key.as_str() == o.key.as_str()) {
            merged.push(o.clone());
        }
    }
    merged
}

/// A position in a span's text. A span's fields never reach 4 GiB; past
/// that, positions saturate and the value reads as absent, never wrong.
pub(super) fn offset(at: usize) -> u32 {
    u32::try_from(at).unwrap_or(u32::MAX)
}

/// Runs `f` on the current span's context, through the thread's dispatcher.
pub(super) fn with_current_span<R>(f: impl FnOnce(&SpanContext) -> R) -> Option<R> {
    let id =
        tracing_core::dispatcher::get_default(|dispatch| dispatch.current_span().id().cloned())?;
    with_span(&id, f)
}

/// Runs `f` on the context of span `id`, through the thread's dispatcher.
pub(super) fn with_span<R>(id: &Id, f: impl FnOnce(&SpanContext) -> R) -> Option<R> {
    let mut f = Some(f);
    tracing_core::dispatcher::get_default(|dispatch| {
        let registry = dispatch.downcast_ref::<tracing_subscriber::Registry>()?;
        let span = registry.span(id)?;
        let ext = span.extensions();
        ext.get::<SpanContext>().zip(f.take()).map(|(sc, f)| f(sc))
    })
}

/// Like [`with_span`], with the span's extensions locked for writing.
pub(super) fn with_span_mut<R>(id: &Id, f: impl FnOnce(&mut SpanContext) -> R) -> Option<R> {
    let mut f = Some(f);
    tracing_core::dispatcher::get_default(|dispatch| {
        let registry = dispatch.downcast_ref::<tracing_subscriber::Registry>()?;
        let span = registry.span(id)?;
        let mut ext = span.extensions_mut();
        ext.get_mut::<SpanContext>()
            .zip(f.take())
            .map(|(sc, f)| f(sc))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pairs up to `SMALL_PAIR` bytes live in their entry, longer ones in
    /// the span's one shared buffer, made once; each reads back exactly.
    #[test]
    fn short_pairs_live_in_their_entry_and_long_ones_share_one_buffer() {
        let mut text = Vec::new();
        let mut at = Vec::new();
        for n in [1, 20, 23, 24, 25, 40, 2] {
            let start = text.len();
            encode::write_str(&mut text, "k");
            text.push(b':');
            let value_at = text.len();
            encode::write_str(&mut text, &"x".repeat(n));
            at.push((offset(start), offset(value_at), offset(text.len())));
        }
        let mut shared = None;
        let slots: Vec<Slot> = at
            .iter()
            .map(|&pair| Slot::pair(&text, &mut shared, pair))
            .collect();
        let shared = shared.expect("the long pairs made the shared buffer");
        for (slot, &(start, value_at, end)) in slots.iter().zip(&at) {
            let expected = &text[start as usize..end as usize];
            let (pair, value) = slot.fixed_pair().expect("a fixed pair");
            assert_eq!(pair, expected);
            assert_eq!(value, (value_at - start) as usize);
            match slot {
                Slot::Small { .. } => assert!(expected.len() <= SMALL_PAIR),
                Slot::Fixed { text, .. } => {
                    assert!(expected.len() > SMALL_PAIR);
                    assert!(Arc::ptr_eq(text, &shared), "one buffer for the span");
                }
                _ => panic!("not a fixed slot"),
            }
        }
        assert!(slots.iter().any(|s| matches!(s, Slot::Small { .. })));
        assert!(slots.iter().any(|s| matches!(s, Slot::Fixed { .. })));
    }
}
