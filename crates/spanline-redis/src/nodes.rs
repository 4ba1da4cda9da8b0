//! The worker's own connections to a Redis Cluster's masters (without
//! TLS): each command goes to the master that owns its key's slot, on the
//! same connection and reply reader as a single server's ([`Wire`]).
//!
//! redis-rs's cluster pipeline built a `Cmd` per command, routed it and
//! read every reply into a `Value`: about 6,000 instructions of the
//! worker's per line on a one-node cluster, five times the single server's.
//! Here the batch's commands are packed per master, sent to every master
//! before any reply is read, and each reply lands back in its command's
//! place.
//!
//! The slot map is asked of the seeds (`CLUSTER SLOTS`, through
//! [`ClusterMap`]) at connection, and again before the next batch when a
//! reply says it moved (`MOVED`, `ASK`) or a master could not be reached
//! or broke: after a failover, commands go to the new master.

use std::io;
use std::time::{Duration, Instant};

use crate::pack::Packer;
use crate::read::{key_slot, ClusterMap, SlotRange, CLUSTER_SLOTS};
use crate::reply::Reply;
use crate::wire::{left, Wire, WireError};

/// A master of the cluster, and the batch's commands for it.
struct Master {
    host: String,
    port: u16,
    wire: Option<Wire>,
    packer: Packer,
    /// Commands packed for it in this batch.
    count: usize,
}

/// Why a master took none of its commands.
enum Unserved {
    /// Not reached, or its connection was closed before any reply: the
    /// commands did not run.
    NotRun(String),
    /// Its connection broke or its time ran out with the commands sent:
    /// they may have run.
    Unknown,
}

pub(crate) struct Nodes {
    map: ClusterMap,
    /// Per slot, the index of its master in `masters`; `None` when no
    /// master owns it now.
    owners: Vec<Option<u16>>,
    masters: Vec<Master>,
    /// Per command of the batch, the master it went to (`None`: its slot
    /// has no master now).
    routes: Vec<Option<u16>>,
    /// The slot map is to be asked again before the next batch.
    stale: bool,
    io_timeout: Duration,
    /// How long connecting to a master may take.
    connect_timeout: Duration,
}

impl Nodes {
    /// The cluster's slot map, from the first seed that gives one. No
    /// master is connected yet; each will be within `connect_timeout`.
    pub(crate) fn connect(map: ClusterMap, connect_timeout: Duration) -> redis::RedisResult<Nodes> {
        let mut nodes = Nodes {
            map,
            owners: Vec::new(),
            masters: Vec::new(),
            routes: Vec::new(),
            stale: true,
            io_timeout: Duration::from_secs(1),
            connect_timeout,
        };
        nodes.refresh()?;
        Ok(nodes)
    }

    /// Asks the seeds for the slot map again; masters that stay keep their
    /// connections.
    fn refresh(&mut self) -> redis::RedisResult<()> {
        let ranges: Vec<SlotRange> = self.map.slot_map()?;
        let mut owners = vec![None; usize::from(CLUSTER_SLOTS)];
        for (first, last, (host, port)) in ranges {
            let at = match self
                .masters
                .iter()
                .position(|m| m.host == host && m.port == port)
            {
                Some(at) => at,
                None => {
                    self.masters.push(Master {
                        host,
                        port,
                        wire: None,
                        packer: Packer::default(),
                        count: 0,
                    });
                    self.masters.len() - 1
                }
            };
            let Ok(at) = u16::try_from(at) else {
                continue;
            };
            for slot in first..=last.min(CLUSTER_SLOTS - 1) {
                owners[usize::from(slot)] = Some(at);
            }
        }
        self.owners = owners;
        self.stale = false;
        Ok(())
    }

    pub(crate) fn set_io_timeout(&mut self, io: Duration) {
        self.io_timeout = io;
        for wire in self.masters.iter().filter_map(|m| m.wire.as_ref()) {
            let _ = wire.set_timeouts(io);
        }
    }

    /// Starts a batch: the slot map asked again if a reply said so (kept
    /// as it was when no seed answers: the commands then wait for one).
    pub(crate) fn begin(&mut self) {
        if self.stale {
            let _ = self.refresh();
        }
        self.routes.clear();
        for master in &mut self.masters {
            master.packer.clear();
            master.count = 0;
        }
    }

    /// Adds one command to the batch: `args[1]` is its key (the channel or
    /// the stream).
    pub(crate) fn push(&mut self, args: &[&[u8]]) {
        let slot = args.get(1).map_or(0, |key| key_slot(key));
        let route = self.owners.get(usize::from(slot)).copied().flatten();
        if let Some(master) = route.and_then(|m| self.masters.get_mut(usize::from(m))) {
            master.packer.push(args);
            master.count += 1;
        }
        self.routes.push(route);
    }

    /// Sends the batch, every master's part before reading any reply, and
    /// returns each command's reply in order, all by `deadline`.
    pub(crate) fn run(&mut self, deadline: &dyn Fn() -> Instant) -> Vec<Reply> {
        let connect_timeout = self.connect_timeout;
        let mut unserved: Vec<Option<Unserved>> = Vec::with_capacity(self.masters.len());
        for master in &mut self.masters {
            unserved.push(master.send(&self.map, deadline, connect_timeout, self.io_timeout));
        }
        let mut answers: Vec<std::vec::IntoIter<Reply>> = Vec::with_capacity(self.masters.len());
        for (master, unserved) in self.masters.iter_mut().zip(&mut unserved) {
            let mut replies = Vec::with_capacity(master.count);
            if master.count == 0 {
                answers.push(replies.into_iter());
                continue;
            }
            if unserved.is_none() {
                if let Err(e) = master.read(master.count, deadline, &mut replies) {
                    *unserved = Some(if replies.is_empty() && dropped_unsent(&e) {
                        Unserved::NotRun(e.to_string())
                    } else {
                        Unserved::Unknown
                    });
                    master.wire = None;
                }
            }
            if let Some(why) = unserved {
                let left = master.count - replies.len();
                replies.extend(std::iter::repeat_n(
                    match why {
                        Unserved::NotRun(text) => {
                            Reply::Retry(format!("{}:{} {text}", master.host, master.port))
                        }
                        Unserved::Unknown => Reply::Lost,
                    },
                    left,
                ));
                self.stale = true;
            }
            answers.push(replies.into_iter());
        }
        let mut replies = Vec::with_capacity(self.routes.len());
        for route in &self.routes {
            let reply = match route {
                Some(m) => answers
                    .get_mut(usize::from(*m))
                    .and_then(Iterator::next)
                    .unwrap_or(Reply::Lost),
                None => {
                    self.stale = true;
                    Reply::Retry("CLUSTERDOWN no master owns the slot".to_string())
                }
            };
            replies.push(match reply {
                // The slot is elsewhere now: the command goes again once
                // the map is asked again.
                Reply::Fail(text) if text.starts_with("MOVED ") || text.starts_with("ASK ") => {
                    self.stale = true;
                    Reply::Retry(text)
                }
                other => other,
            });
        }
        replies
    }

    /// Runs one command on its key's master: `true` when it was done.
    pub(crate) fn ask(&mut self, args: &[&[u8]]) -> bool {
        self.begin();
        self.push(args);
        let deadline = Instant::now() + self.io_timeout;
        matches!(self.run(&|| deadline).first(), Some(Reply::Ok))
    }
}

impl Master {
    /// Connects if need be and sends the batch's commands for this master.
    fn send(
        &mut self,
        map: &ClusterMap,
        deadline: &dyn Fn() -> Instant,
        connect_timeout: Duration,
        io_timeout: Duration,
    ) -> Option<Unserved> {
        if self.count == 0 {
            return None;
        }
        if self.wire.is_none() {
            let info = map.node(&self.host, self.port, false);
            let timeout = connect_timeout.min(left(deadline()));
            match Wire::connect(&info, timeout) {
                Some(Ok(wire)) => {
                    let _ = wire.set_timeouts(io_timeout);
                    self.wire = Some(wire);
                }
                Some(Err(e)) => return Some(Unserved::NotRun(not_reached(&e))),
                None => return Some(Unserved::NotRun("needs TLS".to_string())),
            }
        }
        let wire = self.wire.as_mut()?;
        let sent = wire
            .set_timeouts(left(deadline()))
            .and_then(|()| wire.send(self.packer.bytes()));
        match sent {
            Ok(()) => None,
            Err(e) => {
                self.wire = None;
                Some(if dropped_unsent(&e) {
                    Unserved::NotRun(e.to_string())
                } else {
                    Unserved::Unknown
                })
            }
        }
    }

    /// Reads `count` replies by `deadline`, as a single server's are read.
    fn read(
        &mut self,
        count: usize,
        deadline: &dyn Fn() -> Instant,
        replies: &mut Vec<Reply>,
    ) -> io::Result<()> {
        match self.wire.as_mut() {
            Some(wire) => wire.read_replies(count, deadline, replies),
            None => Err(io::ErrorKind::NotConnected.into()),
        }
    }
}

/// The connection was closed under us (a restart, a killed master), not
/// timed out: what was written did not run.
fn dropped_unsent(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::NotConnected
            | io::ErrorKind::UnexpectedEof
    )
}

fn not_reached(e: &WireError) -> String {
    format!("unreachable: {e}")
}
