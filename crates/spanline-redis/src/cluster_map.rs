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

use std::time::Duration;

use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisResult, Value};

/// The seed nodes of a Redis Cluster, and where its keys live.
///
/// ```
/// let map = spanline_redis::ClusterMap::new("redis://10.0.0.1:6379, redis://10.0.0.2:6379")?;
/// assert_eq!(map.seeds(), 2);
/// assert!(spanline_redis::ClusterMap::new("").is_err());
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
    /// let map = spanline_redis::ClusterMap::new("redis://:secret@10.0.0.1:6379")?;
    /// assert_eq!(map.address(), "10.0.0.1:6379");
    /// # Ok::<(), redis::RedisError>(())
    /// ```
    pub fn address(&self) -> String {
        self.seeds[0].addr().to_string()
    }

    /// The first seed's password, to keep it out of error texts.
    pub fn password(&self) -> Option<&str> {
        self.seeds[0].redis_settings().password()
    }

    /// The connection settings of node `host:port`: a seed's, with its address.
    fn node(&self, host: &str, port: u16) -> ConnectionInfo {
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
        seed.set_addr(addr)
    }

    /// The master that owns `key` now, as `(host, port)`: asks the seeds in
    /// turn for the slot map.
    ///
    /// # Errors
    /// When no seed answers, or none says who owns the slot.
    pub fn owner(&self, key: &str) -> RedisResult<(String, u16)> {
        let slot = spanline_core::key_slot(key.as_bytes());
        let mut last = None;
        for seed in &self.seeds {
            match slots_of(seed) {
                Ok(ranges) => {
                    if let Some((_, _, owner)) = ranges
                        .into_iter()
                        .find(|(first, last, _)| (*first..=*last).contains(&slot))
                    {
                        return Ok(owner);
                    }
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            redis::RedisError::from((redis::ErrorKind::Client, "no node owns the slot"))
        }))
    }

    /// A connection to the master that owns `key` now.
    ///
    /// # Errors
    /// As [`owner`](Self::owner), or when the owner does not answer within
    /// `timeout`.
    pub fn connect(&self, key: &str, timeout: Duration) -> RedisResult<redis::Connection> {
        let (host, port) = self.owner(key)?;
        redis::Client::open(self.node(&host, port))?.get_connection_with_timeout(timeout)
    }

    /// A connection to the owner of `channels` (they must share one),
    /// subscribed to them with `SSUBSCRIBE`; read it with
    /// `recv_response`: `["smessage", channel, payload]` per line, and
    /// `["sunsubscribe", channel, n]` when the channels' slots moved.
    ///
    /// # Errors
    /// As [`connect`](Self::connect), or when the node refuses (it is not
    /// the owner any more: ask again).
    pub fn ssubscribe(
        &self,
        channels: &[String],
        timeout: Duration,
    ) -> RedisResult<redis::Connection> {
        let first = channels.first().map_or("", String::as_str);
        let mut con = self.connect(first, timeout)?;
        con.set_read_timeout(Some(timeout))?;
        con.send_packed_command(&redis::cmd("SSUBSCRIBE").arg(channels).get_packed_command())?;
        for _ in channels {
            if let Value::ServerError(e) = con.recv_response()? {
                return Err(redis::RedisError::from((
                    redis::ErrorKind::Client,
                    "SSUBSCRIBE refused",
                    format!("{e:?}"),
                )));
            }
        }
        Ok(con)
    }
}

/// A range of slots and the master that owns them: (first, last, (host, port)).
type SlotRange = (u16, u16, (String, u16));

/// `CLUSTER SLOTS` of the node at `info`.
fn slots_of(info: &ConnectionInfo) -> RedisResult<Vec<SlotRange>> {
    let client = redis::Client::open(info.clone())?;
    let mut con = client.get_connection_with_timeout(Duration::from_secs(2))?;
    con.set_read_timeout(Some(Duration::from_secs(2)))?;
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
