//! The reading side: what a consumer of the lines [`RedisLayer`](crate::RedisLayer)
//! publishes needs (`spanline tail`, the live console, your own tool).
//!
//! - **Names.** A job's lines go to `{prefix}:{job_id}` and every line to
//!   the global feed, `{prefix}:global` ([`Channels`](crate::Channels)
//!   names both); on a Redis Cluster the global feed is spread over shards,
//!   [`global_shards`], whose count the publisher stores at
//!   [`global_shards_key`].
//! - **A cluster's map.** [`ClusterMap`] finds the master that owns a
//!   channel or stream, connects to it, and reads the stored shard count.
//! - **Sharded pub/sub.** [`ShardedSubscription`] follows channels on a
//!   cluster, each on its master, through failovers and reshardings.
//! - **Streams.** [`read_stream`], [`last_entries`], [`entries_before`] and [`first_id`] read
//!   the streams of `Mode::Streams`; [`StreamMerge`] reads several (the
//!   global feed's shards) as one, in entry-id order.
//!
//! On one server, a channel is followed with a plain `SUBSCRIBE` (the
//! [`redis`] crate's `PubSub`).
//!
//! ```no_run
//! use spanline_redis::read;
//! let channels = spanline_redis::Channels::default();
//! let map = read::ClusterMap::new("redis://10.0.0.1:6379")?;
//! // The global feed's streams, merged in time order.
//! let shards = read::global_shards(&channels, map.stored_global_shards(&channels)?);
//! let mut merge = read::StreamMerge::new(shards.len());
//! for (i, key) in shards.iter().enumerate() {
//!     let mut con = map.connect(key, std::time::Duration::from_secs(2))?;
//!     for entry in read::read_stream(&mut con, key, "0", 512, None)? {
//!         merge.push(i, &entry.id.clone(), entry);
//!     }
//!     merge.caught_up(i); // (a full page would mean: read on)
//! }
//! while let Some(entry) = merge.ready() {
//!     println!("{}", String::from_utf8_lossy(&entry.line));
//! }
//! # Ok::<(), redis::RedisError>(())
//! ```

mod cluster_map;
mod names;
mod sharded;
mod stream;
mod stream_merge;

pub use cluster_map::ClusterMap;
#[cfg(feature = "cluster")]
pub(crate) use cluster_map::SlotRange;
pub use names::{global_shards, global_shards_key, DEFAULT_GLOBAL_SHARDS, MAX_GLOBAL_SHARDS};
#[cfg(feature = "cluster")]
pub(crate) use names::{key_slot, CLUSTER_SLOTS};
pub use sharded::{Event, ShardedSubscription};
pub use stream::{entries_before, first_id, last_entries, read_stream, Entry};
pub use stream_merge::{entry_order, StreamMerge};
