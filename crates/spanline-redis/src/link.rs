//! The worker's connection: one Redis server, or (feature `cluster`) a
//! Redis Cluster.

use std::time::{Duration, Instant};

use redis::{Cmd, RedisResult, Value};

#[cfg(feature = "cluster")]
use crate::nodes::Nodes;
use crate::pack::Packer;
use crate::reply::Reply;
use crate::wire::{left, Wire, WireError, SLACK};

/// A pipeline that failed on the connection.
#[derive(Debug)]
pub(crate) struct Broken {
    /// The connection was already closed (reset, or end of stream, before
    /// any reply): the server ran none of it, so the batch can go again.
    pub(crate) unsent: bool,
}

/// A redis-rs reply as what became of its command.
fn reply_of(value: &Value) -> Reply {
    match value {
        Value::ServerError(e) => {
            Reply::of_error(&format!("{} {}", e.code(), e.details().unwrap_or_default()))
        }
        _ => Reply::Ok,
    }
}

/// Where to connect.
pub(crate) enum Target {
    Single(redis::Client),
    #[cfg(feature = "cluster")]
    Cluster {
        client: redis::cluster::ClusterClient,
        /// The nodes given, each as a single server: asked whether they
        /// are cluster nodes at all.
        seeds: Vec<redis::Client>,
        /// The nodes given, for our own connections to the masters
        /// (`None` over TLS: redis-rs's cluster client connects then).
        map: Option<crate::read::ClusterMap>,
    },
}

/// Why there is no connection.
#[derive(Debug)]
pub(crate) enum ConnectError {
    Redis(redis::RedisError),
    /// Our own connection (a single server without TLS).
    Wire(WireError),
    /// Cluster mode, and a node given is a plain Redis.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    NotACluster {
        node: String,
    },
}

impl ConnectError {
    /// The configuration problem it shows, `None` when worth retrying.
    pub(crate) fn misconfig(&self) -> Option<crate::problem::Misconfig> {
        match self {
            ConnectError::Redis(e) => crate::problem::Misconfig::of_connect(e),
            ConnectError::Wire(WireError::Refused(text)) => {
                Some(crate::problem::Misconfig::of_login_reply(text))
            }
            ConnectError::Wire(WireError::Io(_) | WireError::Busy(_)) => None,
            ConnectError::NotACluster { node } => Some(crate::problem::Misconfig::NotACluster {
                node: node.clone(),
                detail: crate::problem::NOT_A_CLUSTER.to_string(),
            }),
        }
    }
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Redis(e) => e.fmt(f),
            ConnectError::Wire(e) => e.fmt(f),
            ConnectError::NotACluster { node } => {
                write!(f, "{node}: {}", crate::problem::NOT_A_CLUSTER)
            }
        }
    }
}

/// An open connection.
pub(crate) enum Link {
    /// A single server over TLS: redis-rs's connection.
    Single(redis::Connection),
    /// A single server over TCP or a Unix socket: our own.
    Wire(Wire),
    /// Boxed: a cluster connection is four times the size of a single one.
    /// Over TLS: redis-rs's cluster client.
    #[cfg(feature = "cluster")]
    Cluster(Box<RsCluster>),
    /// Our own connections to a cluster's masters.
    #[cfg(feature = "cluster")]
    Nodes(Box<Nodes>),
}

/// redis-rs's cluster connection, and the batch's pipeline for it.
#[cfg(feature = "cluster")]
pub(crate) struct RsCluster {
    con: redis::cluster::ClusterConnection,
    pipe: redis::cluster::ClusterPipeline,
}

#[cfg(feature = "cluster")]
impl RsCluster {
    /// Sends the batch's pipeline. `Ok` holds each command's reply; `Err`
    /// means the connection failed (outcome unknown).
    fn run(&mut self) -> RedisResult<Vec<Reply>> {
        // Cluster pipelines report the first error only: a server error
        // fails the whole batch, counted per event.
        let n = self.pipe.cmd_iter().count();
        match self.pipe.query::<Vec<Value>>(&mut self.con) {
            Ok(values) => Ok(values.iter().map(reply_of).collect()),
            Err(e) if e.code().is_some() => {
                let reply = if e.is_cluster_error() || e.code() == Some("LOADING") {
                    Reply::Retry(e.to_string())
                } else {
                    Reply::Fail(e.to_string())
                };
                Ok(vec![reply; n])
            }
            Err(e) => Err(e),
        }
    }
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

    /// The address, without any password: for messages.
    pub(crate) fn address(&self) -> String {
        match self {
            Target::Single(client) => client.get_connection_info().addr().to_string(),
            #[cfg(feature = "cluster")]
            Target::Cluster { seeds, .. } => {
                let nodes: Vec<String> = seeds
                    .iter()
                    .map(|s| s.get_connection_info().addr().to_string())
                    .collect();
                format!("the cluster of {}", nodes.join(", "))
            }
        }
    }

    /// The URL's database (0 for a cluster).
    pub(crate) fn db(&self) -> i64 {
        match self {
            Target::Single(client) => client.get_connection_info().redis_settings().db(),
            #[cfg(feature = "cluster")]
            Target::Cluster { .. } => 0,
        }
    }

    pub(crate) fn connect(&self, timeout: Duration) -> Result<Link, ConnectError> {
        match self {
            Target::Single(client) => match Wire::connect(client.get_connection_info(), timeout) {
                Some(wire) => wire.map(Link::Wire).map_err(ConnectError::Wire),
                None => client
                    .get_connection_with_timeout(timeout)
                    .map(Link::Single)
                    .map_err(ConnectError::Redis),
            },
            #[cfg(feature = "cluster")]
            Target::Cluster {
                map: Some(map),
                seeds,
                ..
            } => match Nodes::connect(map.clone(), timeout) {
                Ok(nodes) => Ok(Link::Nodes(Box::new(nodes))),
                Err(e) => Err(match plain_node(seeds, timeout) {
                    Some(node) => ConnectError::NotACluster { node },
                    None => ConnectError::Redis(e),
                }),
            },
            #[cfg(feature = "cluster")]
            Target::Cluster { client, seeds, .. } => {
                // The cluster client connects to a plain Redis without a
                // word, then fails every command ("No connections found"):
                // ask a node given what it is.
                let connected = client.get_connection();
                if let Some(node) = plain_node(seeds, timeout) {
                    return Err(ConnectError::NotACluster { node });
                }
                connected
                    .map(|con| {
                        Link::Cluster(Box::new(RsCluster {
                            con,
                            pipe: redis::cluster::cluster_pipe(),
                        }))
                    })
                    .map_err(ConnectError::Redis)
            }
        }
    }
}

/// The first node given that answers, when it says it is no cluster node
/// (`ERR This instance has cluster support disabled`).
#[cfg(feature = "cluster")]
fn plain_node(seeds: &[redis::Client], timeout: Duration) -> Option<String> {
    for seed in seeds {
        let Ok(mut con) = seed.get_connection_with_timeout(timeout) else {
            continue;
        };
        let _ = con.set_read_timeout(Some(timeout));
        let _ = con.set_write_timeout(Some(timeout));
        let answer: RedisResult<Value> = redis::cmd("CLUSTER").arg("MYID").query(&mut con);
        let plain = answer.is_err_and(|e| e.to_string().contains("cluster support disabled"));
        return plain.then(|| seed.get_connection_info().addr().to_string());
    }
    None
}

impl Link {
    pub(crate) fn set_io_timeout(&mut self, io: Duration) {
        match self {
            Link::Single(con) => {
                let _ = con.set_read_timeout(Some(io));
                let _ = con.set_write_timeout(Some(io));
            }
            Link::Wire(wire) => {
                let _ = wire.set_timeouts(io);
            }
            #[cfg(feature = "cluster")]
            Link::Cluster(rs) => {
                let _ = rs.con.set_read_timeout(Some(io));
                let _ = rs.con.set_write_timeout(Some(io));
            }
            #[cfg(feature = "cluster")]
            Link::Nodes(nodes) => nodes.set_io_timeout(io),
        }
    }

    /// Adds one command to the batch, where this connection takes it: the
    /// packed buffer of a single server, redis-rs's cluster pipeline, or our
    /// own cluster connections' per-master buffers.
    pub(crate) fn push(&mut self, args: &[&[u8]], packed: &mut Packer) {
        match self {
            #[cfg(feature = "cluster")]
            Link::Nodes(nodes) => nodes.push(args),
            #[cfg(feature = "cluster")]
            Link::Cluster(rs) => {
                rs.pipe
                    .cmd(std::str::from_utf8(args[0]).unwrap_or("PUBLISH"));
                args[1..].iter().for_each(|a| {
                    rs.pipe.arg(*a);
                });
            }
            Link::Single(_) | Link::Wire(_) => packed.push(args),
        }
    }

    /// Starts a batch: a cluster's pipeline emptied, and its slot map asked
    /// again when a reply said it changed.
    pub(crate) fn begin(&mut self) {
        #[cfg(feature = "cluster")]
        match self {
            Link::Nodes(nodes) => nodes.begin(),
            Link::Cluster(rs) => rs.pipe.clear(),
            Link::Single(_) | Link::Wire(_) => {}
        }
    }

    /// Sends a batch: `packed` (`count` commands) on a single server, or
    /// what was pushed to a cluster's connections. `Ok` holds each
    /// command's reply; `Err`: the connection failed.
    pub(crate) fn send(
        &mut self,
        packed: &[u8],
        count: usize,
        deadline: &dyn Fn() -> Instant,
    ) -> Result<Vec<Reply>, Broken> {
        match self {
            #[cfg(feature = "cluster")]
            Link::Cluster(rs) => rs.run().map_err(|_| Broken { unsent: false }),
            #[cfg(feature = "cluster")]
            Link::Nodes(nodes) => Ok(nodes.run(deadline)),
            Link::Single(_) | Link::Wire(_) => self.run_packed(packed, count, deadline),
        }
    }

    /// Sends `count` commands already in the Redis protocol (single server
    /// only) and reads their replies, all by `deadline`. `Ok` holds each
    /// command's reply; `Err`: the connection failed or the deadline passed
    /// (the caller drops the connection: its replies are out of step).
    /// `deadline` is asked again before each reply: the worker's shutdown
    /// can bring it forward.
    pub(crate) fn run_packed(
        &mut self,
        packed: &[u8],
        count: usize,
        deadline: &dyn Fn() -> Instant,
    ) -> Result<Vec<Reply>, Broken> {
        let mut replies = Vec::with_capacity(count);
        self.read_packed(packed, count, deadline, &mut replies)
            .map_err(|e| Broken {
                unsent: replies.is_empty() && !e.is_timeout() && e.is_connection_dropped(),
            })?;
        Ok(replies)
    }

    fn read_packed(
        &mut self,
        packed: &[u8],
        count: usize,
        deadline: &dyn Fn() -> Instant,
        replies: &mut Vec<Reply>,
    ) -> RedisResult<()> {
        match self {
            Link::Single(con) => {
                // One deadline for the whole pipeline: redis-rs would wait
                // the I/O timeout once per reply on a frozen server.
                let time_left = || left(deadline());
                con.set_write_timeout(Some(time_left()))?;
                con.send_packed_command(packed)?;
                // The read timeout is a system call to set: set it again only
                // when the time left has shrunk by more than a millisecond
                // (most replies are read from one buffered read), so a wait
                // ends at most that much after the deadline.
                let mut read_timeout: Option<Duration> = None;
                for _ in 0..count {
                    if Instant::now() >= deadline() {
                        return Err(redis::RedisError::from(std::io::Error::from(
                            std::io::ErrorKind::TimedOut,
                        )));
                    }
                    let left = time_left();
                    if read_timeout.is_none_or(|set| set > left + SLACK) {
                        con.set_read_timeout(Some(left))?;
                        read_timeout = Some(left);
                    }
                    replies.push(reply_of(&con.recv_response()?));
                }
                Ok(())
            }
            Link::Wire(wire) => {
                // As above, with our own reply reader.
                wire.set_timeouts(left(deadline()))?;
                wire.send(packed)?;
                Ok(wire.read_replies(count, deadline, replies)?)
            }
            #[cfg(feature = "cluster")]
            Link::Cluster(_) | Link::Nodes(_) => Err(redis::RedisError::from((
                redis::ErrorKind::Client,
                "packed commands need a single server",
            ))),
        }
    }

    /// Runs one command: `true` when it was done.
    pub(crate) fn ask(&mut self, cmd: &Cmd) -> bool {
        match self {
            Link::Single(con) => cmd.query::<Value>(con).is_ok(),
            Link::Wire(wire) => {
                wire.send(&cmd.get_packed_command()).is_ok()
                    && matches!(wire.reply(), Ok(Reply::Ok))
            }
            #[cfg(feature = "cluster")]
            Link::Cluster(rs) => cmd.query::<Value>(&mut rs.con).is_ok(),
            #[cfg(feature = "cluster")]
            Link::Nodes(nodes) => {
                let args: Vec<&[u8]> = cmd
                    .args_iter()
                    .filter_map(|arg| match arg {
                        redis::Arg::Simple(bytes) => Some(bytes),
                        _ => None,
                    })
                    .collect();
                nodes.ask(&args)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is a failure report

    use super::*;
    use spanline_testkit::RedisServer;

    /// 200 commands to a frozen server: redis-rs alone waits its read
    /// timeout once per reply (200 x 300 ms = 60 s); the pipeline's one
    /// deadline ends it after 600 ms.
    #[test]
    fn a_frozen_server_costs_one_deadline_per_pipeline() {
        let server = RedisServer::start();
        let target = Target::single(server.client());
        let mut link = target.connect(Duration::from_secs(2)).unwrap();
        link.set_io_timeout(Duration::from_millis(300));
        let started_ok = Instant::now() + Duration::from_secs(5);
        let mut packed = Vec::new();
        for i in 0..200 {
            packed.extend_from_slice(
                &redis::cmd("PUBLISH")
                    .arg("logs:global")
                    .arg(i)
                    .get_packed_command(),
            );
        }
        assert_eq!(
            link.run_packed(&packed, 200, &|| started_ok).unwrap(),
            vec![Reply::Ok; 200]
        );
        server.freeze();
        let started = Instant::now();
        let sent = link.run_packed(&packed, 200, &|| started + Duration::from_millis(600));
        let took = started.elapsed();
        server.thaw();
        assert!(sent.is_err(), "the deadline passed");
        assert!(took < Duration::from_secs(10), "took {took:?}");
    }

    #[test]
    fn replies_are_sorted_into_done_and_refused() {
        let server = RedisServer::start();
        let mut con = server.client().get_connection().unwrap();
        redis::cmd("SET")
            .arg("logs:global")
            .arg("a string")
            .exec(&mut con)
            .unwrap();
        let mut link = Target::single(server.client())
            .connect(Duration::from_secs(2))
            .unwrap();
        let mut packed = redis::cmd("PUBLISH")
            .arg("logs:global")
            .arg("x")
            .get_packed_command();
        packed.extend_from_slice(
            &redis::cmd("XADD")
                .arg("logs:global")
                .arg("*")
                .arg("line")
                .arg("x")
                .get_packed_command(),
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        let replies = link.run_packed(&packed, 2, &|| deadline).unwrap();
        assert_eq!(replies[0], Reply::Ok);
        assert!(
            matches!(&replies[1], Reply::Fail(e) if e.starts_with("WRONGTYPE")),
            "{replies:?}"
        );
    }
}
