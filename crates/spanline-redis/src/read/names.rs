//! Names on a Redis Cluster: the global feed spread over shards, and the
//! slot of a key (moved here from spanline-core: Redis knowledge lives in
//! spanline-redis).
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
pub(crate) const CLUSTER_SLOTS: u16 = 16384;

/// How many shards the global feed is spread over on a cluster, unless
/// the publisher is told otherwise (consumers assume it when the publisher
/// stored no count).
///
/// ```
/// assert_eq!(spanline_redis::read::DEFAULT_GLOBAL_SHARDS, 16);
/// ```
pub const DEFAULT_GLOBAL_SHARDS: usize = 16;

/// The most shards the global feed can be spread over.
///
/// ```
/// assert_eq!(spanline_redis::read::MAX_GLOBAL_SHARDS, 1024);
/// ```
pub const MAX_GLOBAL_SHARDS: usize = 1024;

/// The hash slot of `key` in a Redis Cluster: CRC16 (XMODEM) of the key,
/// or of its hash tag (the text between the first `{` and the next `}`,
/// when not empty), modulo 16384. The same as `CLUSTER KEYSLOT`.
pub(crate) fn key_slot(key: &[u8]) -> u16 {
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

/// The global feed of `channels` spread over `n` shards (at most
/// [`MAX_GLOBAL_SHARDS`]): `{prefix}:global:{T}` for each shard's tag `T`,
/// each in its `1/n` of the cluster's slot space; with `n` of 0 or 1, the
/// one global channel, `{prefix}:global`. These are the channels (and
/// stream keys) a publisher built with
/// [`global_shards(n)`](crate::RedisLayerBuilder::global_shards) writes.
///
/// ```
/// use spanline_redis::read::global_shards;
/// let channels = spanline_redis::Channels::default();
/// assert_eq!(global_shards(&channels, 1), ["logs:global"]);
/// assert_eq!(global_shards(&channels, 3), ["logs:global:{3}", "logs:global:{1}", "logs:global:{0}"]);
/// ```
pub fn global_shards(channels: &Channels, n: usize) -> Vec<String> {
    let n = n.min(MAX_GLOBAL_SHARDS);
    if n <= 1 {
        return vec![channels.global()];
    }
    let global = channels.global();
    (0..n)
        .map(|i| format!("{global}:{{{}}}", shard_tag(i, n)))
        .collect()
}

/// The key where a publisher stores how many shards the global feed of
/// `channels` has: `{prefix}:global:shards`.
///
/// ```
/// let channels = spanline_redis::Channels::default();
/// assert_eq!(spanline_redis::read::global_shards_key(&channels), "logs:global:shards");
/// ```
pub fn global_shards_key(channels: &Channels) -> String {
    format!("{}:shards", channels.global())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis() {
        // Values from `CLUSTER KEYSLOT` on Redis 7.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b"x{foo}y"), 12182);
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
        let channels = Channels::default();
        for n in [2, 3, 5, 6, 16, 100, 1024] {
            let shards = global_shards(&channels, n);
            assert_eq!(shards.len(), n);
            for (i, shard) in shards.iter().enumerate() {
                let slot = usize::from(key_slot(shard.as_bytes()));
                assert!(
                    (i * 16384 / n..(i + 1) * 16384 / n).contains(&slot),
                    "{n} {i} {shard}"
                );
            }
        }
        assert_eq!(global_shards(&channels, 5000).len(), MAX_GLOBAL_SHARDS);
    }

    #[test]
    fn the_names_follow_the_prefix() {
        let channels = Channels::new("app:logs").unwrap_or_default();
        let shards = global_shards(&channels, 2);
        assert_eq!(
            shards[0],
            format!("app:logs:global:{{{}}}", shard_tag(0, 2))
        );
        assert_eq!(global_shards_key(&channels), "app:logs:global:shards");
    }
}
