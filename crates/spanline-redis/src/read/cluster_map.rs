//! [`ClusterMap`]: where a Redis Cluster keeps each channel and stream,
//! for the consumers of what [`RedisLayer`](crate::RedisLayer) publishes
//! there (`spanline tail --cluster`, the live console).
//!
//! A consumer of sharded pub/sub must `SSUBSCRIBE` on the master that owns
//! the channel's slot, and read a stream on the master that owns its key.
//! This asks a node for the slot map (`CLUSTER SLOTS`) and connects to the
//! owner, with the seed URL's credentials and TLS settings. It needs no
//! cluster client (nor the `cluster` feature): plain connections, one per
//! owner, asked again after a failover.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::Channels;
use redis::{
    ConnectionAddr, ConnectionInfo, IntoConnectionInfo, ProtocolVersion, RedisResult, Value,
};

use super::names::{global_shards_key, key_slot, DEFAULT_GLOBAL_SHARDS, MAX_GLOBAL_SHARDS};

/// How long asking a node for its slot map may take.
const ASK: Duration = Duration::from_secs(2);

/// A master, as `(host, port)`.
pub(crate) type Node = (String, u16);

/// The seed nodes of a Redis Cluster, and where its keys live.
///
/// ```
/// use spanline_redis::read::ClusterMap;
/// let map = ClusterMap::new("redis://10.0.0.1:6379, redis://10.0.0.2:6379")?;
/// assert_eq!(map.seeds(), 2);
/// assert!(ClusterMap::new("").is_err());
/// # Ok::<(), redis::RedisError>(())
/// ```
#[derive(Clone, Debug)]
pub struct ClusterMap {
    seeds: Vec<ConnectionInfo>,
}

impl ClusterMap {
    /// The cluster of the comma-separated node URLs `urls` (some or all of
    /// its nodes; every node shares the first one's credentials and TLS
    /// settings).
    ///
    /// # Errors
    /// A URL that does not parse, or none at all.
    pub fn new(urls: &str) -> RedisResult<Self> {
        let seeds = urls
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(IntoConnectionInfo::into_connection_info)
            .collect::<RedisResult<Vec<_>>>()?;
        if seeds.is_empty() {
            return Err(redis::RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "no node URL",
            )));
        }
        Ok(Self { seeds })
    }

    /// How many seed nodes it knows.
    ///
    /// See [`ClusterMap`]'s example.
    pub fn seeds(&self) -> usize {
        self.seeds.len()
    }

    /// The first seed's address (without credentials), for messages.
    ///
    /// ```
    /// let map = spanline_redis::read::ClusterMap::new("redis://:secret@10.0.0.1:6379")?;
    /// assert_eq!(map.address(), "10.0.0.1:6379");
    /// # Ok::<(), redis::RedisError>(())
    /// ```
    pub fn address(&self) -> String {
        self.seeds[0].addr().to_string()
    }

    /// The first seed's password, to keep it out of error texts.
    ///
    /// ```
    /// let map = spanline_redis::read::ClusterMap::new("redis://:secret@10.0.0.1:6379")?;
    /// assert_eq!(map.password(), Some("secret"));
    /// # Ok::<(), redis::RedisError>(())
    /// ```
    pub fn password(&self) -> Option<&str> {
        self.seeds[0].redis_settings().password()
    }

    /// Its nodes speak TLS (`rediss://`).
    #[cfg(feature = "cluster")]
    pub(crate) fn is_tls(&self) -> bool {
        matches!(self.seeds[0].addr(), ConnectionAddr::TcpTls { .. })
    }

    /// The connection settings of node `host:port`: a seed's, with its
    /// address. In RESP3 when `resp3` (pushes for sharded pub/sub).
    pub(crate) fn node(&self, host: &str, port: u16, resp3: bool) -> ConnectionInfo {
        let seed = self.seeds[0].clone();
        let mut addr = seed.addr().clone();
        if let ConnectionAddr::Tcp(h, p)
        | ConnectionAddr::TcpTls {
            host: h, port: p, ..
        } = &mut addr
        {
            *h = host.to_string();
            *p = port;
        }
        if !resp3 {
            return seed.set_addr(addr);
        }
        let settings = seed
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        seed.set_addr(addr).set_redis_settings(settings)
    }

    /// The slot map (`CLUSTER SLOTS`) of the first seed that gives one.
    pub(crate) fn slot_map(&self) -> RedisResult<Vec<SlotRange>> {
        let mut last = None;
        for seed in &self.seeds {
            match slots_of(seed) {
                Ok(ranges) if !ranges.is_empty() => return Ok(ranges),
                Ok(_) => {}
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            redis::RedisError::from((redis::ErrorKind::Client, "no node knows the slot map"))
        }))
    }

    /// `keys` by the master that owns each now (one `CLUSTER SLOTS`).
    pub(crate) fn owners(&self, keys: &[String]) -> RedisResult<BTreeMap<Node, Vec<String>>> {
        let ranges = self.slot_map()?;
        let mut owners: BTreeMap<Node, Vec<String>> = BTreeMap::new();
        for key in keys {
            let slot = key_slot(key.as_bytes());
            let Some((_, _, node)) = ranges
                .iter()
                .find(|(first, last, _)| (*first..=*last).contains(&slot))
            else {
                return Err(redis::RedisError::from((
                    redis::ErrorKind::Client,
                    "no node owns the slot",
                    format!("{slot} (of {key})"),
                )));
            };
            owners.entry(node.clone()).or_default().push(key.clone());
        }
        Ok(owners)
    }

    /// How many shards the publisher spread the global feed of `channels`
    /// over: what it stored in `{prefix}:global:shards` (see
    /// [`global_shards_key`](super::global_shards_key)), else
    /// [`DEFAULT_GLOBAL_SHARDS`](super::DEFAULT_GLOBAL_SHARDS). Give the
    /// count to [`global_shards`](super::global_shards) for the names.
    ///
    /// # Errors
    /// When the key's master cannot be found or reached.
    pub fn stored_global_shards(&self, channels: &Channels) -> RedisResult<usize> {
        let key = global_shards_key(channels);
        let mut con = self.connect(&key, ASK)?;
        con.set_read_timeout(Some(ASK))?;
        let stored: RedisResult<Option<usize>> = redis::cmd("GET").arg(&key).query(&mut con);
        Ok(match stored {
            Ok(Some(n)) => n.clamp(1, MAX_GLOBAL_SHARDS),
            // Not stored, or not a count: the publisher's default.
            Ok(None) | Err(_) => DEFAULT_GLOBAL_SHARDS,
        })
    }

    /// The master that owns `key` now, as `(host, port)`: asks the seeds in
    /// turn for the slot map.
    ///
    /// # Errors
    /// When no seed answers, or none says who owns the slot.
    pub fn owner(&self, key: &str) -> RedisResult<(String, u16)> {
        let slot = key_slot(key.as_bytes());
        self.slot_map()?
            .into_iter()
            .find(|(first, last, _)| (*first..=*last).contains(&slot))
            .map(|(_, _, owner)| owner)
            .ok_or_else(|| {
                redis::RedisError::from((redis::ErrorKind::Client, "no node owns the slot"))
            })
    }

    /// A connection to the master that owns `key` now.
    ///
    /// # Errors
    /// As [`owner`](Self::owner), or when the owner does not answer within
    /// `timeout`.
    pub fn connect(&self, key: &str, timeout: Duration) -> RedisResult<redis::Connection> {
        let (host, port) = self.owner(key)?;
        redis::Client::open(self.node(&host, port, false))?.get_connection_with_timeout(timeout)
    }
}

/// A range of slots and the master that owns them: (first, last, master).
pub(crate) type SlotRange = (u16, u16, Node);

/// `CLUSTER SLOTS` of the node at `info`.
fn slots_of(info: &ConnectionInfo) -> RedisResult<Vec<SlotRange>> {
    let client = redis::Client::open(info.clone())?;
    let mut con = client.get_connection_with_timeout(ASK)?;
    con.set_read_timeout(Some(ASK))?;
    let reply: Vec<Value> = redis::cmd("CLUSTER").arg("SLOTS").query(&mut con)?;
    let asked = match info.addr() {
        ConnectionAddr::Tcp(host, _) | ConnectionAddr::TcpTls { host, .. } => host.clone(),
        _ => String::new(),
    };
    Ok(reply
        .into_iter()
        .filter_map(|entry| {
            let Value::Array(parts) = entry else {
                return None;
            };
            let first: u16 = redis::from_redis_value(parts.first()?.clone()).ok()?;
            let last: u16 = redis::from_redis_value(parts.get(1)?.clone()).ok()?;
            let Value::Array(master) = parts.get(2)?.clone() else {
                return None;
            };
            let host: String = redis::from_redis_value(master.first()?.clone()).ok()?;
            let port: u16 = redis::from_redis_value(master.get(1)?.clone()).ok()?;
            // An empty host means "the address you asked me on".
            let host = if host.is_empty() || host == "?" {
                asked.clone()
            } else {
                host
            };
            Some((first, last, (host, port)))
        })
        .collect())
}
