//! The set of keys already written to one JSON object, so no key is ever
//! written twice.
//!
//! It lives on the stack for one event: a small inline array, spilling to a
//! `Vec` only past [`INLINE`] keys, with a 64-bit filter so that most lookups
//! end after one AND.

/// A key as written: `prefix + name + suffix`, without building the string.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KeyParts<'a> {
    pub(crate) prefix: &'static str,
    pub(crate) name: &'a str,
    pub(crate) suffix: &'static str,
}

impl<'a> KeyParts<'a> {
    pub(crate) fn plain(name: &'a str) -> Self {
        Self { prefix: "", name, suffix: "" }
    }

    fn len(&self) -> usize {
        self.prefix.len() + self.name.len() + self.suffix.len()
    }

    fn bytes(&self) -> impl Iterator<Item = u8> + '_ {
        self.prefix.bytes().chain(self.name.bytes()).chain(self.suffix.bytes())
    }

    fn filter_bit(&self) -> u64 {
        let first = self.bytes().next().unwrap_or(0) as usize;
        let last = self.suffix.bytes().last().or_else(|| self.name.bytes().last()).unwrap_or(0) as usize;
        1u64 << ((self.len() * 7 + first * 3 + last) & 63)
    }

    fn same(&self, other: &KeyParts<'_>) -> bool {
        self.len() == other.len() && self.bytes().eq(other.bytes())
    }
}

const INLINE: usize = 24;

pub(crate) struct KeySet<'a> {
    filter: u64,
    inline: [KeyParts<'a>; INLINE],
    len: usize,
    spill: Vec<KeyParts<'a>>,
}

impl<'a> KeySet<'a> {
    pub(crate) fn new() -> Self {
        Self { filter: 0, inline: [KeyParts::plain(""); INLINE], len: 0, spill: Vec::new() }
    }

    pub(crate) fn contains(&self, key: &KeyParts<'_>) -> bool {
        if self.filter & key.filter_bit() == 0 {
            return false;
        }
        self.inline[..self.len].iter().chain(&self.spill).any(|k| k.same(key))
    }

    /// Adds `key`; returns false when it was there already.
    pub(crate) fn insert(&mut self, key: KeyParts<'a>) -> bool {
        if self.contains(&key) {
            return false;
        }
        self.filter |= key.filter_bit();
        if self.len < INLINE {
            self.inline[self.len] = key;
            self.len += 1;
        } else {
            self.spill.push(key);
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
        assert!(set.insert(KeyParts { prefix: "fields.", name: "level", suffix: "" }));
        assert!(!set.insert(KeyParts::plain("fields.level")));
        assert!(set.insert(KeyParts { prefix: "", name: "error", suffix: ".sources" }));
        assert!(set.contains(&KeyParts::plain("error.sources")));
        assert!(!set.contains(&KeyParts::plain("error")));
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
