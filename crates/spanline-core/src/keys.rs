//! The set of keys already written to one JSON object, so no key is ever
//! written twice.
//!
//! It lives on the stack for one event: a small inline array, spilling to a
//! `Vec` only past [`INLINE`] keys. Each key carries a cheap hash (length,
//! first and last byte), and the set keeps a 64-bit filter of them, so most
//! lookups end after one AND and the rest compare a `u32` before any bytes.

/// A key as written: `fields.` prefixes (a user key renamed away from a
/// reserved key, or away from another renamed key), the name, and an
/// optional `.sources` suffix (an error's chain), without building the
/// string.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KeyParts<'a> {
    pub(crate) name: &'a str,
    /// How many `fields.` go before the name: 0, 1 or 2.
    pub(crate) prefixes: u8,
    pub(crate) sources: bool,
}

pub(crate) const FIELDS_PREFIX: &str = "fields.";
pub(crate) const SOURCES_SUFFIX: &str = ".sources";

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

    /// Length, first and last byte of the written key.
    fn hash(&self) -> u32 {
        let len = self.prefix().len() + self.name.len() + self.suffix().len();
        let first = if self.prefixes > 0 {
            b'f'
        } else {
            self.name.as_bytes().first().copied().unwrap_or(0)
        };
        let last = if self.sources {
            b's'
        } else {
            self.name.as_bytes().last().copied().unwrap_or(0)
        };
        (len as u32) << 16 | u32::from(first) << 8 | u32::from(last)
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

const INLINE: usize = 16;

#[derive(Clone, Copy)]
struct Slot<'a> {
    hash: u32,
    key: KeyParts<'a>,
}

pub(crate) struct KeySet<'a> {
    filter: u64,
    inline: [Slot<'a>; INLINE],
    len: usize,
    spill: Vec<Slot<'a>>,
}

fn filter_bit(hash: u32) -> u64 {
    1u64 << ((hash ^ (hash >> 16).wrapping_mul(7)) & 63)
}

impl<'a> KeySet<'a> {
    pub(crate) fn new() -> Self {
        let empty = Slot {
            hash: 0,
            key: KeyParts::plain(""),
        };
        Self {
            filter: 0,
            inline: [empty; INLINE],
            len: 0,
            spill: Vec::new(),
        }
    }

    fn find(&self, hash: u32, key: &KeyParts<'_>) -> bool {
        if self.filter & filter_bit(hash) == 0 {
            return false;
        }
        self.inline[..self.len]
            .iter()
            .chain(&self.spill)
            .any(|s| s.hash == hash && s.key.same(key))
    }

    pub(crate) fn contains(&self, key: &KeyParts<'_>) -> bool {
        self.find(key.hash(), key)
    }

    /// Adds `key`; returns false when it was there already.
    pub(crate) fn insert(&mut self, key: KeyParts<'a>) -> bool {
        let hash = key.hash();
        if self.find(hash, &key) {
            return false;
        }
        self.filter |= filter_bit(hash);
        let slot = Slot { hash, key };
        if self.len < INLINE {
            self.inline[self.len] = slot;
            self.len += 1;
        } else {
            self.spill.push(slot);
        }
        true
    }
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
        assert!(set.contains(&KeyParts::plain("error.sources")));
        assert!(!set.contains(&KeyParts::plain("error")));
        assert!(set.insert(KeyParts::plain("")));
        assert!(!set.insert(KeyParts::plain("")));
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
