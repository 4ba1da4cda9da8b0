//! The worker's connection: one Redis server, or (feature `cluster`) a
//! Redis Cluster.

use std::time::Duration;

use redis::{Cmd, RedisResult, Value};

/// Where to connect.
pub(crate) enum Target {
    Single(redis::Client),
    #[cfg(feature = "cluster")]
    Cluster(redis::cluster::ClusterClient),
}

/// An open connection.
pub(crate) enum Link {
    Single(redis::Connection),
    /// Boxed: a cluster connection is four times the size of a single one.
    #[cfg(feature = "cluster")]
    Cluster(Box<redis::cluster::ClusterConnection>),
}

impl Target {
    /// A single server, with TCP keepalive (a connection silently cut by a
    /// middlebox is noticed) and no Nagle delay on small pipelines.
    pub(crate) fn single(client: redis::Client) -> Self {
        let tcp = redis::io::tcp::TcpSettings::default()
            .set_nodelay(true)
            .set_keepalive(socket2::TcpKeepalive::new().with_time(Duration::from_secs(30)));
        let info = client.get_connection_info().clone().set_tcp_settings(tcp);
        Target::Single(redis::Client::open(info).unwrap_or(client))
    }

    pub(crate) fn connect(&self, timeout: Duration) -> RedisResult<Link> {
        match self {
            Target::Single(client) => client
                .get_connection_with_timeout(timeout)
                .map(Link::Single),
            #[cfg(feature = "cluster")]
            Target::Cluster(client) => client
                .get_connection()
                .map(|con| Link::Cluster(Box::new(con))),
        }
    }
}

impl Link {
    pub(crate) fn set_io_timeout(&self, io: Duration) {
        match self {
            Link::Single(con) => {
                let _ = con.set_read_timeout(Some(io));
                let _ = con.set_write_timeout(Some(io));
            }
            #[cfg(feature = "cluster")]
            Link::Cluster(con) => {
                let _ = con.set_read_timeout(Some(io));
                let _ = con.set_write_timeout(Some(io));
            }
        }
    }

    /// Sends `cmds` as one pipeline. `Ok` holds each command's success;
    /// `Err` means the connection failed (outcome unknown).
    pub(crate) fn run(&mut self, cmds: Vec<Cmd>) -> RedisResult<Vec<bool>> {
        match self {
            Link::Single(con) => {
                let mut pipe = redis::pipe();
                pipe.ignore_errors();
                for cmd in cmds {
                    pipe.add_command(cmd);
                }
                let results: Vec<RedisResult<Value>> = pipe.query(con)?;
                Ok(results.iter().map(Result::is_ok).collect())
            }
            #[cfg(feature = "cluster")]
            Link::Cluster(con) => {
                // Cluster pipelines report the first error only: a server
                // error fails the whole batch, counted per event.
                let n = cmds.len();
                let mut pipe = redis::cluster::cluster_pipe();
                for cmd in cmds {
                    pipe.add_command(cmd);
                }
                match pipe.query::<Vec<Value>>(con) {
                    Ok(values) => Ok(values
                        .iter()
                        .map(|v| !matches!(v, Value::ServerError(_)))
                        .collect()),
                    Err(e) if e.code().is_some() => Ok(vec![false; n]),
                    Err(e) => Err(e),
                }
            }
        }
    }

    pub(crate) fn is_cluster(&self) -> bool {
        !matches!(self, Link::Single(_))
    }

    /// Sends `count` commands already in the Redis protocol (single server
    /// only). `Ok` holds each command's success; `Err`: the connection failed.
    pub(crate) fn run_packed(&mut self, packed: &[u8], count: usize) -> RedisResult<Vec<bool>> {
        match self {
            Link::Single(con) => {
                let replies = redis::ConnectionLike::req_packed_commands(con, packed, 0, count)?;
                Ok(replies
                    .iter()
                    .map(|v| !matches!(v, Value::ServerError(_)))
                    .collect())
            }
            #[cfg(feature = "cluster")]
            Link::Cluster(_) => Err(redis::RedisError::from((
                redis::ErrorKind::Client,
                "packed commands need a single server",
            ))),
        }
    }

    pub(crate) fn query(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        match self {
            Link::Single(con) => cmd.query(con),
            #[cfg(feature = "cluster")]
            Link::Cluster(con) => cmd.query(&mut **con),
        }
    }
}
