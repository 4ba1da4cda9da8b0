//! The hash of the receiver's own tables: callsites by their shape, spans
//! by a child's ids, looked up for every record.
//!
//! std's SipHash cost about 1,400 instructions a record there (a callsite's
//! target, file and field names hashed for every event). This one mixes a
//! word at a time (rustc-hash's multiply), from a seed drawn at random for
//! each table, so a child cannot pick colliding keys ahead of time. It is
//! not a keyed PRF: a child that could see its timings might still find
//! collisions, and what that costs is bounded by the tables' own limits
//! (`MAX_CALLSITES_PER_CHILD` callsites, `MAX_OPEN_SPANS` spans), and slows
//! only the forwarding of logs, never the application.

use std::hash::{BuildHasher, Hasher, RandomState};

/// rustc-hash's multiplier: odd, with its bits spread.
const K: u64 = 0xf135_7aea_2e62_a9c5;

/// Builds [`Fast`] hashers from one random seed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Seeded(u64);

impl Default for Seeded {
    fn default() -> Self {
        Self(RandomState::new().hash_one(0x5eed_u64))
    }
}

impl BuildHasher for Seeded {
    type Hasher = Fast;

    fn build_hasher(&self) -> Fast {
        Fast(self.0)
    }
}

/// A word-at-a-time multiplicative hash.
pub(crate) struct Fast(u64);

impl Fast {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
    }
}

impl Hasher for Fast {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut w = [0u8; 8];
            w.copy_from_slice(word);
            self.add(u64::from_le_bytes(w));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w.get_mut(..rest.len())
                .unwrap_or_default()
                .copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }

    #[inline]
    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // The multiply leaves the low bits weakest; hashbrown takes its
        // bucket from them.
        self.0.rotate_left(26)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_keys_hash_alike_and_seeds_differ() {
        let (a, b) = (Seeded::default(), Seeded::default());
        let key = ("target", Some("src/main.rs"), 42u32, ["a", "b"]);
        assert_eq!(a.hash_one(key), a.hash_one(key));
        assert_ne!(a.hash_one(key), b.hash_one(key), "a random seed per table");
        // Strings end with a marker: ("ab", "c") is not ("a", "bc").
        assert_ne!(a.hash_one(("ab", "c")), a.hash_one(("a", "bc")));
        // Spans' ids spread over the table's low bits.
        let buckets: std::collections::HashSet<u64> =
            (0..64u64).map(|id| a.hash_one((1u32, id)) & 63).collect();
        assert!(buckets.len() > 32, "{} buckets of 64", buckets.len());
    }
}
