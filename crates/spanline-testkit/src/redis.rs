//! A private `redis-server` per test, on a free loopback port, and a
//! subscriber that records what it receives.
//!
//! Why one file: it is one fixture, Redis processes a test owns and the
//! clients that watch them, all behind the one `redis` feature. A
//! `RedisCluster` is made of `RedisServer`s and reads their private `child`
//! to tell running nodes from killed ones, and a `ShardedSubscription`
//! listens on one of those nodes.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A `redis-server` of the test's own: no persistence, loopback only,
/// killed on drop. Fault injection: [`stop`](Self::stop),
/// [`restart`](Self::restart) (same port), [`freeze`](Self::freeze) and
/// [`thaw`](Self::thaw).
///
/// # Panics
///
/// When `redis-server` is not installed (the message says how to install
/// it), or does not answer within 10 seconds.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
    dir: PathBuf,
    args: Vec<String>,
}

/// A port nobody listens on now, and that no other caller of this function
/// in this process gets.
///
/// Ports come from below the kernel's ephemeral range (32768 and up on
/// Linux), so a port reserved here and bound only later (Redis started after
/// the application, on purpose) cannot meanwhile be handed to another test
/// that asks the kernel for any free port.
pub fn free_port() -> u16 {
    use std::sync::atomic::AtomicU32;
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id() * 7919 % SPAN;
    for _ in 0..SPAN {
        let port = (LOW + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between {LOW} and {}", LOW + SPAN);
}

impl RedisServer {
    /// Starts a server on a free port.
    #[track_caller]
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a server with extra `redis-server` arguments, for example
    /// `["--user", "logger", "on", ">secret", "&logs:*", "+publish"]`.
    #[track_caller]
    pub fn start_with(args: &[&str]) -> Self {
        // A port found free may be taken before the server binds it (another
        // process on this machine): a server that exits at once is started
        // again on another port.
        for _ in 0..3 {
            if let Some(server) = Self::try_start_on(free_port(), args) {
                return server;
            }
        }
        Self::start_on(free_port(), args)
    }

    /// Like [`start_on`](Self::start_on), `None` when the server exits
    /// before it answers (its port was taken meanwhile).
    #[track_caller]
    fn try_start_on(port: u16, args: &[&str]) -> Option<Self> {
        let mut server = Self::unstarted(port, args);
        server.spawn_process();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if ping(server.port) {
                return Some(server);
            }
            let exited = server
                .child
                .as_mut()
                .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))));
            if exited {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "redis-server on port {} did not answer PING within 10 s",
            server.port
        );
    }

    fn unstarted(port: u16, args: &[&str]) -> Self {
        let dir =
            std::env::temp_dir().join(format!("spanline-redis-{}-{port}", std::process::id()));
        // A directory left by a killed run of a process with the same pid
        // may hold another cluster's nodes.conf.
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::create_dir_all(&dir);
        Self {
            port,
            child: None,
            dir,
            args: args.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Starts a server on `port` (one a test reserved earlier, to start
    /// Redis after the application).
    #[track_caller]
    pub fn start_on(port: u16, args: &[&str]) -> Self {
        let mut server = Self::unstarted(port, args);
        server.spawn();
        server
    }

    /// Starts the server again on the same port (after a `SAVE`), returning
    /// as soon as it answers, while it may still be loading its data set
    /// (it replies `-LOADING` until done; start it with `--key-load-delay`
    /// and `--loading-process-events-interval-bytes 1024` to make that last).
    #[track_caller]
    pub fn restart_loading(&mut self) {
        self.stop();
        self.spawn_process();
        let deadline = Instant::now() + Duration::from_secs(10);
        while reply_to_ping(self.port).is_none() {
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} did not answer within 10 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// True while the server answers `-LOADING`.
    pub fn is_loading(&self) -> bool {
        reply_to_ping(self.port).is_some_and(|r| r.starts_with("-LOADING"))
    }

    #[track_caller]
    fn spawn(&mut self) {
        self.spawn_process();
        self.wait_ready();
    }

    #[track_caller]
    fn spawn_process(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match child {
            Ok(child) => self.child = Some(child),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "redis-server is not installed; the Redis tests need a real one. \
                 Install it with `apt-get install redis-server` (Debian/Ubuntu) or `brew install redis`."
            ),
            Err(e) => panic!("could not start redis-server: {e}"),
        }
    }

    #[track_caller]
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if ping(self.port) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "redis-server on port {} did not answer PING within 10 s",
            self.port
        );
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A client for the test's own checks.
    #[track_caller]
    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).unwrap_or_else(|e| panic!("client: {e}"))
    }

    /// Kills the server (SIGKILL): connections break, the port closes.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (after [`stop`](Self::stop)).
    #[track_caller]
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing answers.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Thaws a frozen server (SIGCONT).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .arg(sig)
                .arg(child.id().to_string())
                .status();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.thaw();
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ping(port: u16) -> bool {
    reply_to_ping(port).is_some_and(|r| r.starts_with("+PONG"))
}

/// The first bytes of the server's reply to `PING`, if it answers.
fn reply_to_ping(port: u16) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    stream.write_all(b"PING\r\n").ok()?;
    let mut reply = [0u8; 16];
    let n = stream.read(&mut reply).ok().filter(|&n| n > 0)?;
    Some(String::from_utf8_lossy(&reply[..n]).into_owned())
}

/// A subscriber that records every message of some channels, on its own
/// thread, and resubscribes when the server restarts.
#[derive(Debug)]
pub struct Subscription {
    messages: Arc<Mutex<Vec<(String, String)>>>,
    subscribed: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Subscription {
    /// Subscribes to `channels` (`PSUBSCRIBE` for names with `*`) and waits
    /// until the subscription is active.
    ///
    /// # Panics
    ///
    /// When it cannot subscribe within 10 seconds.
    #[track_caller]
    pub fn new(url: &str, channels: &[&str]) -> Self {
        let messages = Arc::new(Mutex::new(Vec::new()));
        let subscribed = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (url, channels) = (
            url.to_string(),
            channels.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
        );
        let handle = {
            let (messages, subscribed, stop) = (messages.clone(), subscribed.clone(), stop.clone());
            std::thread::spawn(move || listen(&url, &channels, &messages, &subscribed, &stop))
        };
        let sub = Self {
            messages,
            subscribed,
            stop,
            handle: Some(handle),
        };
        sub.wait_subscribed(1);
        sub
    }

    /// Waits until the `n`th successful subscription (1: the first; 2: after
    /// one reconnection).
    #[track_caller]
    pub fn wait_subscribed(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.subscribed.load(Ordering::SeqCst) < n {
            assert!(
                Instant::now() < deadline,
                "subscription {n} not made within 10 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Every `(channel, payload)` received so far, in order.
    pub fn messages(&self) -> Vec<(String, String)> {
        self.messages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Every message received since the last `take`, removed from the
    /// record: a long run (a soak) polls this without copying what it has
    /// already read.
    pub fn take(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *self.messages.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Waits until at least `n` messages arrived, or `timeout`; returns them.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<(String, String)> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.messages();
            if got.len() >= n || Instant::now() >= deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The payloads received on `channel`.
    pub fn payloads(&self, channel: &str) -> Vec<String> {
        self.messages()
            .into_iter()
            .filter(|(c, _)| c == channel)
            .map(|(_, p)| p)
            .collect()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

fn listen(
    url: &str,
    channels: &[String],
    messages: &Mutex<Vec<(String, String)>>,
    subscribed: &AtomicUsize,
    stop: &AtomicBool,
) {
    while !stop.load(Ordering::SeqCst) {
        let Ok(client) = redis::Client::open(url) else {
            return;
        };
        let Ok(mut con) = client.get_connection_with_timeout(Duration::from_millis(200)) else {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        let mut pubsub = con.as_pubsub();
        let ok = channels.iter().all(|c| {
            if c.contains('*') {
                pubsub.psubscribe(c).is_ok()
            } else {
                pubsub.subscribe(c).is_ok()
            }
        });
        if !ok
            || pubsub
                .set_read_timeout(Some(Duration::from_millis(50)))
                .is_err()
        {
            continue;
        }
        subscribed.fetch_add(1, Ordering::SeqCst);
        while !stop.load(Ordering::SeqCst) {
            match pubsub.get_message() {
                Ok(msg) => {
                    let payload = String::from_utf8_lossy(msg.get_payload_bytes()).into_owned();
                    messages
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push((msg.get_channel_name().to_string(), payload));
                }
                Err(e) if e.is_timeout() => {}
                Err(_) => break,
            }
        }
    }
}

/// A Redis Cluster on loopback: `masters` nodes, and with
/// [`start_with_replicas`](Self::start_with_replicas) a replica of each,
/// made with `redis-cli --cluster create`.
///
/// # Panics
///
/// When `redis-server` or `redis-cli` is missing, or the cluster is not
/// ready within 20 seconds.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts `masters` nodes and joins them into a cluster (no replicas).
    #[track_caller]
    pub fn start(masters: usize) -> Self {
        Self::start_with_replicas(masters, 0)
    }

    /// Starts `masters * (1 + replicas)` nodes: `masters` masters with
    /// `replicas` replicas each, which take over when their master dies.
    /// One master alone takes every slot (a one-node cluster).
    #[track_caller]
    pub fn start_with_replicas(masters: usize, replicas: usize) -> Self {
        let nodes: Vec<RedisServer> = (0..masters * (1 + replicas))
            .map(|_| {
                RedisServer::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "3000",
                ])
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        if masters == 1 && replicas == 0 {
            // `redis-cli --cluster create` wants three masters: one node
            // takes every slot itself.
            let mut con = nodes[0]
                .client()
                .get_connection()
                .unwrap_or_else(|e| panic!("connect: {e}"));
            redis::cmd("CLUSTER")
                .arg(&["ADDSLOTSRANGE", "0", "16383"])
                .exec(&mut con)
                .unwrap_or_else(|e| panic!("CLUSTER ADDSLOTSRANGE: {e}"));
            let cluster = Self { nodes };
            cluster.wait_ok(Duration::from_secs(20));
            return cluster;
        }
        let status = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap_or_else(|e| {
                panic!("redis-cli (package redis-tools) is needed for cluster tests: {e}")
            });
        assert!(status.success(), "redis-cli --cluster create failed");
        let cluster = Self { nodes };
        cluster.wait_ok(Duration::from_secs(20));
        if replicas > 0 {
            // Replicas take a moment to sync; a failover needs them synced.
            let deadline = Instant::now() + Duration::from_secs(20);
            while cluster.masters().len() != masters || !cluster.replicas_synced() {
                assert!(
                    Instant::now() < deadline,
                    "replicas not in sync within 20 s"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        cluster
    }

    /// Waits until every running node says `cluster_state:ok`.
    ///
    /// # Panics
    ///
    /// When that takes longer than `timeout`.
    #[track_caller]
    pub fn wait_ok(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self
            .nodes
            .iter()
            .filter(|n| n.child.is_some())
            .all(cluster_ok)
        {
            assert!(
                Instant::now() < deadline,
                "cluster not ok within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `key`'s slot is served by a running master (after
    /// [`kill_master_of`](Self::kill_master_of): until a replica took
    /// over) and the cluster is ok again; returns that master's port.
    ///
    /// # Panics
    ///
    /// When that takes longer than `timeout`.
    #[track_caller]
    pub fn wait_served(&self, key: &str, timeout: Duration) -> u16 {
        let deadline = Instant::now() + timeout;
        loop {
            let owner = self.node_for(key);
            if owner.child.is_some() && role(owner).as_deref() == Some("master") {
                self.wait_ok(deadline.saturating_duration_since(Instant::now()));
                return owner.port();
            }
            assert!(
                Instant::now() < deadline,
                "{key} not served within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The running nodes that are masters now.
    pub fn masters(&self) -> Vec<&RedisServer> {
        self.nodes
            .iter()
            .filter(|n| n.child.is_some() && role(n).as_deref() == Some("master"))
            .collect()
    }

    /// True when every running replica's link to its master is up.
    fn replicas_synced(&self) -> bool {
        self.nodes
            .iter()
            .filter(|n| n.child.is_some() && role(n).as_deref() == Some("slave"))
            .all(|n| info(n, "replication").is_some_and(|i| i.contains("master_link_status:up")))
    }

    /// Kills the master that owns `key`'s slot (SIGKILL: no goodbye to its
    /// clients or peers) and returns its port. With replicas, one of its
    /// replicas is promoted after the node timeout.
    #[track_caller]
    pub fn kill_master_of(&mut self, key: &str) -> u16 {
        let port = self.node_for(key).port();
        if let Some(node) = self.nodes.iter_mut().find(|n| n.port() == port) {
            node.stop();
        }
        port
    }

    /// `INFO commandstats`' call count of `command` (lower case, e.g.
    /// `spublish`) on each running master, by port.
    pub fn command_calls(&self, command: &str) -> Vec<(u16, u64)> {
        self.masters()
            .into_iter()
            .map(|n| {
                let calls = info(n, "commandstats")
                    .and_then(|text| {
                        let line = text
                            .lines()
                            .find(|l| l.starts_with(&format!("cmdstat_{command}:")))?
                            .to_string();
                        let calls = line.split("calls=").nth(1)?.split(',').next()?.to_string();
                        calls.parse().ok()
                    })
                    .unwrap_or(0);
                (n.port(), calls)
            })
            .collect()
    }

    /// `CONFIG RESETSTAT` on every running node: command counts start at 0.
    pub fn reset_stats(&self) {
        for node in self.nodes.iter().filter(|n| n.child.is_some()) {
            if let Ok(mut con) = node.client().get_connection() {
                let _: redis::RedisResult<()> =
                    redis::cmd("CONFIG").arg("RESETSTAT").query(&mut con);
            }
        }
    }

    /// The nodes' URLs.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// The node that owns `key`'s slot (a sharded channel lives there).
    #[track_caller]
    pub fn node_for(&self, key: &str) -> &RedisServer {
        let Some(asked) = self.nodes.iter().find(|n| n.child.is_some()) else {
            panic!("no node is running");
        };
        let mut con = asked
            .client()
            .get_connection()
            .unwrap_or_else(|e| panic!("connect: {e}"));
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut con)
            .unwrap_or_else(|e| panic!("KEYSLOT: {e}"));
        let ranges: Vec<(u16, u16, (String, u16))> = {
            let raw: Vec<redis::Value> = redis::cmd("CLUSTER")
                .arg("SLOTS")
                .query(&mut con)
                .unwrap_or_else(|e| panic!("SLOTS: {e}"));
            raw.into_iter()
                .filter_map(|entry| {
                    let redis::Value::Array(parts) = entry else {
                        return None;
                    };
                    let start: u16 = redis::from_redis_value(parts.first()?.clone()).ok()?;
                    let end: u16 = redis::from_redis_value(parts.get(1)?.clone()).ok()?;
                    let redis::Value::Array(master) = parts.get(2)?.clone() else {
                        return None;
                    };
                    let port: u16 = redis::from_redis_value(master.get(1)?.clone()).ok()?;
                    Some((start, end, (String::new(), port)))
                })
                .collect()
        };
        let port = ranges
            .iter()
            .find(|(s, e, _)| (*s..=*e).contains(&slot))
            .map(|(_, _, (_, p))| *p);
        self.nodes
            .iter()
            .find(|n| Some(n.port()) == port)
            .unwrap_or_else(|| panic!("no node owns slot {slot}"))
    }
}

/// A section of `INFO` on `node`.
fn info(node: &RedisServer, section: &str) -> Option<String> {
    let mut con = node.client().get_connection().ok()?;
    redis::cmd("INFO").arg(section).query(&mut con).ok()
}

/// `master` or `slave`, from `INFO replication`.
fn role(node: &RedisServer) -> Option<String> {
    let text = info(node, "replication")?;
    let line = text.lines().find(|l| l.starts_with("role:"))?;
    Some(line.trim_start_matches("role:").trim().to_string())
}

fn cluster_ok(node: &RedisServer) -> bool {
    let Ok(mut con) = node.client().get_connection() else {
        return false;
    };
    let info: redis::RedisResult<String> = redis::cmd("CLUSTER").arg("INFO").query(&mut con);
    info.is_ok_and(|i| i.contains("cluster_state:ok"))
}

/// Messages of one sharded channel (`SSUBSCRIBE`), read on the node that
/// owns it, on a thread of its own.
#[derive(Debug)]
pub struct ShardedSubscription {
    messages: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl ShardedSubscription {
    /// Subscribes to `channel` on `node` and waits until it is active.
    ///
    /// # Panics
    ///
    /// When the subscription fails.
    #[track_caller]
    pub fn new(node: &RedisServer, channel: &str) -> Self {
        let mut con = node
            .client()
            .get_connection()
            .unwrap_or_else(|e| panic!("connect: {e}"));
        let cmd = redis::cmd("SSUBSCRIBE").arg(channel).get_packed_command();
        con.send_packed_command(&cmd)
            .unwrap_or_else(|e| panic!("SSUBSCRIBE: {e}"));
        let _ = con
            .recv_response()
            .unwrap_or_else(|e| panic!("SSUBSCRIBE reply: {e}"));
        let _ = con.set_read_timeout(Some(Duration::from_millis(50)));
        let messages = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let (messages, stop) = (messages.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match con.recv_response() {
                        Ok(redis::Value::Array(parts))
                        | Ok(redis::Value::Push { data: parts, .. }) => {
                            if let Some(redis::Value::BulkString(payload)) = parts.get(2) {
                                messages
                                    .lock()
                                    .unwrap_or_else(PoisonError::into_inner)
                                    .push(String::from_utf8_lossy(payload).into_owned());
                            }
                        }
                        Ok(_) => {}
                        Err(e) if e.is_timeout() => {}
                        Err(_) => break,
                    }
                }
            })
        };
        Self {
            messages,
            stop,
            handle: Some(handle),
        }
    }

    /// Waits until at least `n` messages arrived, or `timeout`; returns them.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self
                .messages
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            if got.len() >= n || Instant::now() >= deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for ShardedSubscription {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}
