//! The set of keys already written to one JSON object, so no key is ever
//! written twice, and no key is both a value and, followed by a dot, the
//! start of another (`a` beside `a.b`): Elasticsearch, OpenSearch and
//! Datadog expand dotted keys into objects, and reject or mangle such a
//! line. The check costs nothing on a line without dotted keys.
//!
//! It lives on the stack for one event: a small inline array for up to
//! [`INLINE`] keys and an open-addressing index of [`TABLE`] bytes over
//! them, keyed by a hash of the key's first and last eight bytes and its
//! length, so a lookup is one probe or two, however alike the keys (`k00`
//! to `k31` once shared ten hashes, and were scanned one by one). A wider
//! object moves to a per-thread hash table: linear in its number of keys,
//! and no allocation once the thread has written one.
//!
//! Why one file: it is one concept, a key as written and the set that keeps
//! a line's keys unique. The key's parts, its hash and dot test
//! ([`NameMeta`], kept by context keys) are what the set indexes by, and
//! the wide table is the same set past its inline room; split, each half
//! would reach into the other's internals.

/// A key as written: `fields.` prefixes (a user key renamed away from a
/// reserved key, or away from another renamed key), the name, and an
/// optional `_sources` suffix (an error's chain), without building the
/// string.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KeyParts<'a> {
    pub(crate) name: &'a str,
    /// How many `fields.` go before the name: 0, 1 or 2.
    pub(crate) prefixes: u8,
    pub(crate) sources: bool,
}

pub(crate) const FIELDS_PREFIX: &str = "fields.";
/// An error's chain: `<name>_sources`, with no dot, so that no key is both
/// a value and the start of a dotted path (Elasticsearch and others expand
/// dots into objects, and reject a line whose `error` is both).
pub(crate) const SOURCES_SUFFIX: &str = "_sources";

impl<'a> KeyParts<'a> {
    pub(crate) fn plain(name: &'a str) -> Self {
        Self {
            name,
            prefixes: 0,
            sources: false,
        }
    }

    pub(crate) fn prefixed(name: &'a str) -> Self {
        Self {
            name,
            prefixes: 1,
            sources: false,
        }
    }

    /// The most prefixes a key gets.
    pub(crate) const MAX_PREFIXES: u8 = 2;

    pub(crate) fn prefix(&self) -> &'static str {
        match self.prefixes {
            0 => "",
            1 => FIELDS_PREFIX,
            _ => "fields.fields.",
        }
    }

    pub(crate) fn suffix(&self) -> &'static str {
        if self.sources {
            SOURCES_SUFFIX
        } else {
            ""
        }
    }

    /// A hash of the written key: its length and its first and last eight
    /// bytes (a key that differs only in between is told apart by
    /// [`same`](Self::same)).
    #[inline]
    pub(crate) fn hash(&self) -> u32 {
        if self.prefixes == 0 && !self.sources {
            return hash_bytes(self.name.as_bytes());
        }
        // Rare: a renamed key, or an error's chain. Its text, on the stack.
        let mut text = [0u8; 64];
        let mut len = 0;
        for b in self.bytes() {
            if let Some(at) = text.get_mut(len) {
                *at = b;
            }
            len += 1;
        }
        match text.get(..len) {
            Some(text) => hash_bytes(text),
            // Longer than the buffer: the prefix of it, and the length.
            None => hash_bytes(&text) ^ (len as u32).rotate_left(16),
        }
    }

    /// The written key holds a dot (a `fields.` prefix counts; the suffix,
    /// `_sources`, has none). A plain loop: keys are short, and this runs
    /// for every key of every line.
    #[inline]
    pub(crate) fn has_dot(&self) -> bool {
        self.prefixes > 0 || has_dot(self.name.as_bytes())
    }

    fn bytes(&self) -> impl Iterator<Item = u8> + '_ {
        self.prefix()
            .bytes()
            .chain(self.name.bytes())
            .chain(self.suffix().bytes())
    }

    /// This key is `base` followed by a dot and more.
    fn extends(&self, base: &KeyParts<'_>) -> bool {
        let mut mine = self.bytes();
        base.bytes().all(|b| mine.next() == Some(b)) && mine.next() == Some(b'.')
    }

    /// Calls `f` with each key this one extends (the text before each of
    /// its dots) until `f` says true; returns whether it did.
    fn any_dotted_base(&self, mut f: impl FnMut(&KeyParts<'_>) -> bool) -> bool {
        // In the prefix: `fields` and `fields.fields`.
        if self.prefixes >= 1 && f(&KeyParts::plain("fields")) {
            return true;
        }
        if self.prefixes >= 2 && f(&KeyParts::plain("fields.fields")) {
            return true;
        }
        // In the name (the suffix holds no dot).
        self.name.match_indices('.').any(|(at, _)| {
            f(&KeyParts {
                name: &self.name[..at],
                prefixes: self.prefixes,
                sources: false,
            })
        })
    }

    fn same(&self, other: &KeyParts<'_>) -> bool {
        if self.prefixes == other.prefixes && self.sources == other.sources {
            return self.name == other.name;
        }
        let bytes = |k: &KeyParts<'_>| {
            let (p, n, s) = (
                k.prefix().as_bytes(),
                k.name.as_bytes(),
                k.suffix().as_bytes(),
            );
            p.iter().chain(n).chain(s).copied().collect::<Vec<u8>>()
        };
        // Rare: only keys of equal length, first and last byte get here.
        bytes(self) == bytes(other)
    }
}

/// A key's first and last eight bytes as words (overlapping, or packed
/// when it is shorter): the hash reads the key through them, in a few
/// instructions whatever its length, with no call to `memcpy`.
#[inline]
fn words(bytes: &[u8]) -> (u64, u64) {
    let len = bytes.len();
    if let (Some(head), Some(tail)) = (bytes.first_chunk::<8>(), bytes.last_chunk::<8>()) {
        return (u64::from_le_bytes(*head), u64::from_le_bytes(*tail));
    }
    if let (Some(head), Some(tail)) = (bytes.first_chunk::<4>(), bytes.last_chunk::<4>()) {
        // Four to seven bytes: two reads that overlap cover them all.
        let (head, tail) = (u32::from_le_bytes(*head), u32::from_le_bytes(*tail));
        return (u64::from(head) | u64::from(tail) << 32, 0);
    }
    // One to three bytes: the first, the middle and the last cover them.
    match (bytes.first(), bytes.get(len / 2), bytes.last()) {
        (Some(&a), Some(&b), Some(&c)) => {
            (u64::from(a) | u64::from(b) << 8 | u64::from(c) << 16, 0)
        }
        _ => (0, 0),
    }
}

/// Writes `"key":` as a line holds it: its `fields.` prefixes, the name
/// escaped, its suffix.
#[inline]
pub(crate) fn write_key(buf: &mut Vec<u8>, key: &KeyParts<'_>) {
    buf.push(b'"');
    buf.extend_from_slice(key.prefix().as_bytes());
    crate::encode::escape_str(buf, key.name);
    buf.extend_from_slice(key.suffix().as_bytes());
    buf.extend_from_slice(b"\":");
}

/// See [`KeyParts::hash`]: the key's words, its length and a multiply;
/// 24 bits, so that [`NameMeta`] packs it with its flags.
#[inline]
fn hash_bytes(bytes: &[u8]) -> u32 {
    let (head, tail) = words(bytes);
    let h = (head ^ tail.rotate_left(29) ^ (bytes.len() as u64).rotate_right(8))
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (h >> 40) as u32
}

/// The bit of a key in a 64-bit filter of names (the reserved names and
/// aliases of a preset): from its length and first byte.
#[inline]
pub(crate) fn filter_bit(key: &str) -> u8 {
    let first = key.as_bytes().first().copied().unwrap_or(0) as usize;
    ((key.len() * 13 + first) & 63) as u8
}

/// What every line that writes a key needs of its name, whatever the
/// schema: its [`hash`](KeyParts::hash), whether it holds a dot, and its
/// [`filter_bit`]. A context key keeps it, worked out once (see
/// `context::store::KeyMeta`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NameMeta {
    pub(crate) hash: u32,
    pub(crate) dotted: bool,
    pub(crate) bit: u8,
}

impl NameMeta {
    const KNOWN: u32 = 1 << 31;
    const DOTTED: u32 = 1 << 30;

    pub(crate) fn of(name: &str) -> Self {
        let plain = KeyParts::plain(name);
        Self {
            hash: plain.hash(),
            dotted: plain.has_dot(),
            bit: filter_bit(name),
        }
    }

    /// Packed in 32 bits: known, dotted, the bit (6 bits), the hash (24).
    pub(crate) fn pack(self) -> u32 {
        Self::KNOWN
            | if self.dotted { Self::DOTTED } else { 0 }
            | u32::from(self.bit & 63) << 24
            | (self.hash & 0x00FF_FFFF)
    }

    /// `None` for 0 (not worked out yet).
    #[inline]
    pub(crate) fn unpack(packed: u32) -> Option<Self> {
        (packed & Self::KNOWN != 0).then_some(Self {
            hash: packed & 0x00FF_FFFF,
            dotted: packed & Self::DOTTED != 0,
            bit: ((packed >> 24) & 63) as u8,
        })
    }
}

/// Whether `bytes` holds a `.`: from eight bytes on, a zero-byte test on
/// its first and last eight (every byte of a key of up to sixteen), and
/// `memchr` only on the middle of a longer one; a shorter key as one
/// zero-padded word. `memchr` on every key cost about 26 instructions each.
#[inline]
fn has_dot(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let dot = |w: u64| {
        let x = w ^ (ONES * u64::from(b'.'));
        x.wrapping_sub(ONES) & !x & HIGHS != 0
    };
    match (bytes.first_chunk::<8>(), bytes.last_chunk::<8>()) {
        (Some(&head), Some(&tail)) => {
            dot(u64::from_le_bytes(head))
                || dot(u64::from_le_bytes(tail))
                || bytes
                    .get(8..bytes.len().saturating_sub(8))
                    .is_some_and(|middle| middle.contains(&b'.'))
        }
        // Shorter than eight bytes: one word, zero-padded (a zero is no
        // dot), with no call to `memchr`.
        _ => {
            let mut word = [0u8; 8];
            if let Some(head) = word.get_mut(..bytes.len()) {
                head.copy_from_slice(bytes);
            }
            dot(u64::from_le_bytes(word))
        }
    }
}
const INLINE: usize = 48;
/// Buckets of the inline index: a power of two, at most 3/8 full.
const TABLE: usize = 128;
/// Dotted keys remembered for the prefix check; past that, every key is
/// looked at (rare: a line with more than this many dotted keys).
const DOTTED: usize = 16;

#[derive(Clone, Copy)]
struct Slot<'a> {
    hash: u32,
    key: KeyParts<'a>,
}

/// The keys of one JSON object. Up to [`INLINE`] keys live on the stack,
/// found through a small open-addressing index; a wider object moves to a
/// hash table ([`Wide`]) borrowed from the thread, so detecting duplicates
/// stays linear in the number of keys and allocates nothing once warm.
pub(crate) struct KeySet<'a> {
    /// Positions in `inline`, plus one (0: empty), by hash.
    table: [u8; TABLE],
    inline: [Option<Slot<'a>>; INLINE],
    len: usize,
    wide: Option<Wide>,
    /// Where in `inline` the dotted keys written are, for the prefix check.
    dotted: [u8; DOTTED],
    /// How many dotted keys were written (may pass [`DOTTED`]).
    dotted_len: usize,
}

impl<'a> KeySet<'a> {
    pub(crate) fn new() -> Self {
        Self {
            table: [0; TABLE],
            inline: [None; INLINE],
            len: 0,
            wide: None,
            dotted: [0; DOTTED],
            dotted_len: 0,
        }
    }

    /// True when writing `key` would make a key both a value and the start
    /// of a dotted path: a key it extends is written, or a written key
    /// extends it.
    fn conflicts(&self, key: &KeyParts<'_>) -> bool {
        if key.has_dot() && key.any_dotted_base(|base| self.contains(base)) {
            return true;
        }
        if self.dotted_len == 0 {
            return false;
        }
        match &self.wide {
            None if self.dotted_len <= DOTTED => self.dotted[..self.dotted_len]
                .iter()
                .filter_map(|&at| self.inline.get(usize::from(at)).copied().flatten())
                .any(|s| s.key.extends(key)),
            Some(wide) => wide.any_extends(key),
            None => self.inline[..self.len]
                .iter()
                .flatten()
                .any(|s| s.key.extends(key)),
        }
    }

    /// Adds `key`, or, when it is taken or would conflict (see
    /// [`conflicts`](Self::conflicts)), the same key a `fields.` deeper,
    /// as a user key renamed away from a reserved one. `None` when the key
    /// itself is taken (a nearer definition won), or no depth is free.
    #[inline]
    pub(crate) fn insert_renaming(&mut self, key: KeyParts<'a>) -> Option<KeyParts<'a>> {
        if self.insert(key) {
            return Some(key);
        }
        self.rename(key)
    }

    /// [`insert_renaming`](Self::insert_renaming) of a plain key whose
    /// [`NameMeta`] is known (a context key's, kept with it).
    #[inline]
    pub(crate) fn insert_renaming_known(
        &mut self,
        key: KeyParts<'a>,
        meta: NameMeta,
    ) -> Option<KeyParts<'a>> {
        if self.insert_known(key, meta.hash, meta.dotted) {
            return Some(key);
        }
        self.rename(key)
    }

    /// [`insert_renaming`](Self::insert_renaming) once the key itself did
    /// not go in: rare.
    #[cold]
    #[inline(never)]
    fn rename(&mut self, key: KeyParts<'a>) -> Option<KeyParts<'a>> {
        let mut parts = key;
        loop {
            if self.insert(parts) {
                return Some(parts);
            }
            if parts.prefixes == key.prefixes && self.contains(&parts) {
                return None;
            }
            if parts.prefixes >= KeyParts::MAX_PREFIXES {
                return None;
            }
            parts.prefixes += 1;
        }
    }

    /// Where `key` is in the index, or the empty bucket where it would go.
    #[inline]
    fn probe(&self, hash: u32, key: &KeyParts<'_>) -> (usize, bool) {
        // The hash's top bits: a multiply's best mixed.
        let mut at = (hash >> (24 - TABLE.trailing_zeros())) as usize % TABLE;
        loop {
            match self.table[at] {
                0 => return (at, false),
                i => {
                    if let Some(Some(slot)) = self.inline.get(usize::from(i) - 1) {
                        if slot.hash == hash && slot.key.same(key) {
                            return (at, true);
                        }
                    }
                }
            }
            at = (at + 1) % TABLE;
        }
    }

    #[inline]
    fn find(&self, hash: u32, key: &KeyParts<'_>) -> bool {
        self.probe(hash, key).1
    }

    pub(crate) fn contains(&self, key: &KeyParts<'_>) -> bool {
        match &self.wide {
            Some(wide) => wide.contains(key),
            None => self.find(key.hash(), key),
        }
    }

    /// Adds `key`; returns false when it was there already, or when it
    /// would make a key both a value and the start of a dotted path.
    #[inline]
    pub(crate) fn insert(&mut self, key: KeyParts<'a>) -> bool {
        self.insert_known(key, key.hash(), key.has_dot())
    }

    /// [`insert`](Self::insert), with the key's [`hash`](KeyParts::hash)
    /// and [`has_dot`](KeyParts::has_dot) known already (a callsite's
    /// field names: decided once).
    #[inline]
    pub(crate) fn insert_known(&mut self, key: KeyParts<'a>, hash: u32, dotted: bool) -> bool {
        if (dotted || self.dotted_len > 0) && self.conflicts(&key) {
            return false;
        }
        let at = self.len;
        let inserted = self.insert_exact(key, hash);
        if inserted && dotted {
            if let Some(slot) = self.dotted.get_mut(self.dotted_len) {
                *slot = u8::try_from(at).unwrap_or(u8::MAX);
            }
            self.dotted_len += 1;
        }
        inserted
    }

    #[inline]
    fn insert_exact(&mut self, key: KeyParts<'a>, hash: u32) -> bool {
        if self.len == INLINE {
            return self.insert_wide(key);
        }
        let (bucket, found) = self.probe(hash, &key);
        if found {
            return false;
        }
        self.inline[self.len] = Some(Slot { hash, key });
        self.len += 1;
        // INLINE < u8::MAX: the position fits.
        self.table[bucket] = u8::try_from(self.len).unwrap_or(u8::MAX);
        true
    }
}

/// An open-addressing table of keys, their text copied into one buffer.
/// One per thread, lent to the wide object being written (an object written
/// while another is, from a `Debug` impl that logs, gets a new one).
#[derive(Default)]
struct Wide {
    text: Vec<u8>,
    /// (hash, start, end) of each key's text.
    keys: Vec<(u64, u32, u32)>,
    /// Indexes into `keys`, plus one; 0 is empty. A power of two in size,
    /// at most half full.
    index: Vec<u32>,
}

/// A `Wide`'s buffers, kept by the thread between objects.
type Buffers = (Vec<u8>, Vec<(u64, u32, u32)>, Vec<u32>);

thread_local! {
    static WIDE: std::cell::Cell<Option<Buffers>> = const { std::cell::Cell::new(None) };
}

impl Wide {
    fn take() -> Self {
        let (mut text, mut keys, mut index) = WIDE
            .try_with(|w| w.take())
            .ok()
            .flatten()
            .unwrap_or_default();
        text.clear();
        keys.clear();
        index.iter_mut().for_each(|i| *i = 0);
        Self { text, keys, index }
    }

    /// The key's text appended to `text`; returns where it starts.
    fn write(&mut self, key: &KeyParts<'_>) -> usize {
        let start = self.text.len();
        self.text.extend_from_slice(key.prefix().as_bytes());
        self.text.extend_from_slice(key.name.as_bytes());
        self.text.extend_from_slice(key.suffix().as_bytes());
        start
    }

    fn hash(bytes: &[u8]) -> u64 {
        // FxHash's step over the key's bytes: keys are short.
        let mut h: u64 = bytes.len() as u64;
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            h = (h.rotate_left(5) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
        h
    }

    /// The slot of `index` where the key of `hash` and `text` is, or the
    /// empty slot where it would go.
    fn probe(&self, hash: u64, text: &[u8]) -> (usize, bool) {
        let mask = self.index.len() - 1;
        let mut at = bucket(hash, mask);
        loop {
            match self.index[at] {
                0 => return (at, false),
                i => {
                    let (h, start, end) = self.keys[i as usize - 1];
                    if h == hash && self.text.get(start as usize..end as usize) == Some(text) {
                        return (at, true);
                    }
                }
            }
            at = (at + 1) & mask;
        }
    }

    fn contains(&self, key: &KeyParts<'_>) -> bool {
        if self.index.is_empty() {
            return false;
        }
        let parts = [
            key.prefix().as_bytes(),
            key.name.as_bytes(),
            key.suffix().as_bytes(),
        ];
        let len: usize = parts.iter().map(|p| p.len()).sum();
        // The key's text, on the stack when it is short (keys are).
        let mut short = [0u8; 96];
        let mut long = Vec::new();
        let text: &mut [u8] = match short.get_mut(..len) {
            Some(text) => text,
            None => {
                long.resize(len, 0);
                &mut long
            }
        };
        let mut at = 0;
        for part in parts {
            text[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        self.probe(Self::hash(text), text).1
    }

    /// Some key in the table extends `base` (see [`KeyParts::extends`]).
    fn any_extends(&self, base: &KeyParts<'_>) -> bool {
        self.keys.iter().any(|&(_, start, end)| {
            let text = self
                .text
                .get(start as usize..end as usize)
                .unwrap_or_default();
            let mut mine = text.iter().copied();
            base.bytes().all(|b| mine.next() == Some(b)) && mine.next() == Some(b'.')
        })
    }

    fn insert(&mut self, key: &KeyParts<'_>) -> bool {
        if (self.keys.len() + 1) * 2 > self.index.len() {
            self.grow();
        }
        let start = self.write(key);
        let hash = Self::hash(&self.text[start..]);
        let (at, found) = self.probe(hash, &self.text[start..]);
        if found {
            self.text.truncate(start);
            return false;
        }
        let end = self.text.len();
        self.keys.push((hash, offset(start), offset(end)));
        self.index[at] = u32::try_from(self.keys.len()).unwrap_or(u32::MAX);
        true
    }

    fn grow(&mut self) {
        let size = (self.index.len() * 2).max(64);
        self.index.clear();
        self.index.resize(size, 0);
        let mask = size - 1;
        for (i, (hash, _, _)) in self.keys.iter().enumerate() {
            let mut at = bucket(*hash, mask);
            while self.index[at] != 0 {
                at = (at + 1) & mask;
            }
            self.index[at] = u32::try_from(i + 1).unwrap_or(u32::MAX);
        }
    }
}

impl KeySet<'_> {
    /// Past [`INLINE`] keys: the object is wide, and every key so far moves
    /// to the table.
    #[cold]
    #[inline(never)]
    fn insert_wide(&mut self, key: KeyParts<'_>) -> bool {
        let inline = &self.inline;
        let wide = self.wide.get_or_insert_with(|| {
            let mut wide = Wide::take();
            for slot in inline.iter().flatten() {
                wide.insert(&slot.key);
            }
            wide
        });
        wide.insert(&key)
    }
}

impl Drop for Wide {
    fn drop(&mut self) {
        // Back to the thread for the next wide object, unless it has one.
        let buffers = (
            std::mem::take(&mut self.text),
            std::mem::take(&mut self.keys),
            std::mem::take(&mut self.index),
        );
        let _ = WIDE.try_with(|w| {
            let kept = w.take();
            w.set(kept.or(Some(buffers)));
        });
    }
}

/// The first slot for `hash`: its high bits, which the multiply mixes
/// (the low bits follow the key's first byte).
fn bucket(hash: u64, mask: usize) -> usize {
    (hash >> 32) as usize & mask
}

fn offset(at: usize) -> u32 {
    u32::try_from(at).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composite_keys_compare_by_text() {
        let mut set = KeySet::new();
        assert!(set.insert(KeyParts::prefixed("level")));
        assert!(!set.insert(KeyParts::plain("fields.level")));
        assert!(set.insert(KeyParts {
            name: "error",
            prefixes: 0,
            sources: true
        }));
        assert!(set.contains(&KeyParts::plain("error_sources")));
        assert!(!set.contains(&KeyParts::plain("error")));
        assert!(set.insert(KeyParts::plain("")));
        assert!(!set.insert(KeyParts::plain("")));
    }

    #[test]
    fn wide_objects_keep_exactness_and_nest() {
        let names: Vec<String> = (0..300).map(|i| format!("k{i}")).collect();
        let mut outer = KeySet::new();
        for n in &names[..150] {
            assert!(outer.insert(KeyParts::plain(n)));
        }
        {
            // A second wide set while the first is alive: its own table.
            let mut inner = KeySet::new();
            for n in &names {
                assert!(inner.insert(KeyParts::plain(n)));
            }
            assert!(!inner.insert(KeyParts::plain("k299")));
        }
        assert!(outer.contains(&KeyParts::plain("k0")));
        assert!(!outer.contains(&KeyParts::plain("k151")));
        assert!(outer.insert(KeyParts::prefixed("k1")));
        assert!(!outer.insert(KeyParts::plain("fields.k1")));
    }

    #[test]
    fn no_key_is_a_value_and_the_start_of_a_dotted_path() {
        let mut set = KeySet::new();
        assert!(set.insert(KeyParts::plain("a")));
        assert!(!set.insert(KeyParts::plain("a.b")), "a is a value");
        assert!(
            set.insert(KeyParts::plain("ab.c")),
            "not a dotted path of a"
        );
        assert!(!set.insert(KeyParts::plain("ab")), "ab.c is a path");
        assert_eq!(
            set.insert_renaming(KeyParts::plain("a.b"))
                .map(|k| k.prefixes),
            Some(1),
            "renamed fields.a.b"
        );
        assert!(
            !set.insert(KeyParts::plain("fields")),
            "fields.a.b is written"
        );
        assert!(
            set.insert_renaming(KeyParts::plain("a")).is_none(),
            "a is taken"
        );
        // A renamed key's `fields` prefix counts as a path too (which is why
        // the schema never writes a user key `fields` as a value).
        let mut set = KeySet::new();
        assert!(set.insert(KeyParts::plain("fields")));
        assert!(!set.insert(KeyParts::prefixed("level")));
        assert!(!set.insert(KeyParts::plain("fields.level")));
        // Past the dotted keys remembered, and in a wide object.
        let names: Vec<String> = (0..100).map(|i| format!("p{i}.x")).collect();
        let mut set = KeySet::new();
        for n in &names {
            assert!(set.insert(KeyParts::plain(n)));
        }
        assert!(!set.insert(KeyParts::plain("p99")));
        assert!(!set.insert(KeyParts::plain("p3")));
        assert!(set.insert(KeyParts::plain("p100")));
    }

    #[test]
    fn dots_are_found_anywhere() {
        for text in ["", "a", "abcdefgh", "abcdefghi", "é", "/.", "~", "\u{ae}"] {
            assert_eq!(has_dot(text.as_bytes()), text.contains('.'), "{text:?}");
        }
        for len in 1..40 {
            for at in 0..len {
                let mut bytes = vec![b'x'; len];
                bytes[at] = b'.';
                assert!(has_dot(&bytes), "{len} {at}");
                bytes[at] = b'/';
                assert!(!has_dot(&bytes), "{len} {at}");
            }
        }
    }

    #[test]
    fn keys_alike_but_in_the_middle_are_told_apart() {
        // Same length, same first and last eight bytes: one hash for all.
        let names: Vec<String> = (0..40)
            .map(|i| format!("request_{i:02}_duration"))
            .collect();
        assert!(names
            .windows(2)
            .all(|w| KeyParts::plain(&w[0]).hash() == KeyParts::plain(&w[1]).hash()));
        let mut set = KeySet::new();
        for n in &names {
            assert!(set.insert(KeyParts::plain(n)), "{n}");
        }
        for n in &names {
            assert!(!set.insert(KeyParts::plain(n)), "{n} twice");
        }
        // A renamed key and a plain one of the same text are one key.
        assert!(set.insert(KeyParts::plain("fields.x")));
        assert!(!set.insert(KeyParts::prefixed("x")));
    }

    #[test]
    fn spills_past_inline_capacity() {
        let names: Vec<String> = (0..100).map(|i| format!("k{i}")).collect();
        let mut set = KeySet::new();
        for n in &names {
            assert!(set.insert(KeyParts::plain(n)));
        }
        for n in &names {
            assert!(!set.insert(KeyParts::plain(n)));
        }
    }
}
