//! Names for a Redis Cluster: the global feed spread over shards.
//!
//! One `{prefix}:global` channel (or stream) lives on one shard of a
//! cluster, which then takes every service's every line: the hot spot that
//! stops the global feed from scaling. Sharded, the feed is `n` channels
//! (and streams) `{prefix}:global:{T}`, one hash tag `T` each, chosen so
//! that their slots spread evenly over the cluster's slot space, and every
//! line goes to one of them in turn. Consumers follow all `n` and merge.
//!
//! The tag of shard `i` of `n` is the smallest decimal integer `T` whose
//! slot (`CRC16(T) mod 16384`, as Redis computes it for a hash tag) is in
//! `[⌊i·16384/n⌋, ⌊(i+1)·16384/n⌋)`, so any client can compute the names;
//! the publisher also stores `n` in the key `{prefix}:global:shards`.

use crate::Channels;

/// The number of hash slots of a Redis Cluster.
///
/// ```
/// assert_eq!(spanline_core::CLUSTER_SLOTS, 16384);
/// ```
pub const CLUSTER_SLOTS: u16 = 16384;

/// How many shards the global feed is spread over on a cluster, unless
/// the publisher is told otherwise (consumers assume it when the publisher
/// stored no count).
///
/// ```
/// assert_eq!(spanline_core::cluster::DEFAULT_GLOBAL_SHARDS, 16);
/// ```
pub const DEFAULT_GLOBAL_SHARDS: usize = 16;

/// The most shards the global feed can be spread over.
///
/// ```
/// assert_eq!(spanline_core::MAX_GLOBAL_SHARDS, 1024);
/// ```
pub const MAX_GLOBAL_SHARDS: usize = 1024;

/// The hash slot of `key` in a Redis Cluster: CRC16 (XMODEM) of the key,
/// or of its hash tag (the text between the first `{` and the next `}`,
/// when not empty), modulo 16384. The same as `CLUSTER KEYSLOT`.
///
/// ```
/// assert_eq!(spanline_core::key_slot(b"logs:global"), spanline_core::key_slot(b"logs:global"));
/// assert_eq!(spanline_core::key_slot(b"foo"), 12182); // CLUSTER KEYSLOT foo
/// assert_eq!(spanline_core::key_slot(b"x{foo}y"), 12182);
/// assert_eq!(spanline_core::key_slot(b"{}foo"), spanline_core::key_slot(b"{}foo")); // an empty tag: the whole key
/// ```
pub fn key_slot(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        let close = rest.iter().position(|&b| b == b'}')?;
        (close > 0).then(|| &rest[..close])
    });
    crc16(tagged.unwrap_or(key)) % CLUSTER_SLOTS
}

/// CRC16-XMODEM (polynomial 0x1021, initial 0), as Redis Cluster uses.
fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in bytes {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The hash tag of shard `i` of `n` (see the module's docs).
fn shard_tag(i: usize, n: usize) -> u32 {
    let slots = usize::from(CLUSTER_SLOTS);
    let (low, high) = (i * slots / n, (i + 1) * slots / n);
    // Each range holds at least 16 slots (n ≤ 1024): a tag is found within
    // a few hundred tries; the bound only keeps the loop finite.
    (0..u32::MAX)
        .find(|t| {
            let slot = usize::from(crc16(t.to_string().as_bytes()) % CLUSTER_SLOTS);
            (low..high).contains(&slot)
        })
        .unwrap_or(0)
}

impl Channels {
    /// The global feed spread over `n` shards (at most
    /// [`MAX_GLOBAL_SHARDS`]): `{prefix}:global:{T}` for each shard's tag
    /// `T` (see the [module docs](crate::cluster)); with `n` of 0 or 1, the
    /// one global channel, `{prefix}:global`.
    ///
    /// ```
    /// let channels = spanline_core::Channels::default();
    /// assert_eq!(channels.global_shards(1), ["logs:global"]);
    /// let shards = channels.global_shards(3);
    /// assert_eq!(shards, ["logs:global:{3}", "logs:global:{1}", "logs:global:{0}"]);
    /// // Each in its third of the slot space: one per master of a 3-master cluster.
    /// let slots: Vec<u16> = shards.iter().map(|s| spanline_core::key_slot(s.as_bytes())).collect();
    /// assert!(slots[0] < 5461 && (5461..10923).contains(&slots[1]) && slots[2] >= 10923);
    /// ```
    pub fn global_shards(&self, n: usize) -> Vec<String> {
        let n = n.min(MAX_GLOBAL_SHARDS);
        if n <= 1 {
            return vec![self.global()];
        }
        (0..n)
            .map(|i| format!("{}global:{{{}}}", self.start(), shard_tag(i, n)))
            .collect()
    }

    /// The key where a publisher stores how many shards the global feed
    /// has: `{prefix}:global:shards`.
    ///
    /// ```
    /// assert_eq!(spanline_core::Channels::default().global_shards_key(), "logs:global:shards");
    /// ```
    pub fn global_shards_key(&self) -> String {
        format!("{}global:shards", self.start())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis() {
        // Values from `CLUSTER KEYSLOT` on Redis 7.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b"logs:global"), key_slot(b"{logs:global}"));
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(
            key_slot(b"foo{}{bar}"),
            crc16(b"foo{}{bar}") % CLUSTER_SLOTS
        );
        assert_eq!(key_slot(b"foo{{bar}}zap"), crc16(b"{bar") % CLUSTER_SLOTS);
    }

    #[test]
    fn every_shard_lands_in_its_own_range() {
        for n in [2, 3, 5, 6, 16, 100, 1024] {
            let shards = Channels::default().global_shards(n);
            assert_eq!(shards.len(), n);
            for (i, shard) in shards.iter().enumerate() {
                let slot = usize::from(key_slot(shard.as_bytes()));
                assert!(
                    (i * 16384 / n..(i + 1) * 16384 / n).contains(&slot),
                    "{n} {i} {shard}"
                );
            }
        }
        assert_eq!(
            Channels::default().global_shards(5000).len(),
            MAX_GLOBAL_SHARDS
        );
    }
}
