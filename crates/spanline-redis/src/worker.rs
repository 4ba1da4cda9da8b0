//! The worker thread: batches queued lines into pipelines, reconnects with
//! back-off, accounts for every event, and reports drops in-band.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver, Sender};
use redis::ErrorKind;

use spanline_core::{Channels, Schema};

use crate::link::{Broken, Link, Reply, Target};
use crate::queue::{Control, Item, Queue};
use crate::report::Report;
use crate::stats::add;

/// Where lines go in Redis.
///
/// ```
/// let builder = spanline_redis::RedisLayer::builder("redis://127.0.0.1:6379").mode(spanline_redis::Mode::Both);
/// assert!(format!("{builder:?}").contains("Both"));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mode {
    /// `PUBLISH` to channels: live, at most once, no backlog.
    #[default]
    PubSub,
    /// `XADD` to streams with `MAXLEN ~`: replayable, bounded.
    Streams,
    /// Both.
    Both,
}

/// What the worker needs of the builder's options.
#[derive(Debug)]
pub(crate) struct WorkerConfig {
    pub(crate) channels: Channels,
    /// Lines go to the global channel (and stream) too.
    pub(crate) global: bool,
    /// The global feed's shards (one: `{prefix}:global`); each line goes
    /// to the next in turn.
    pub(crate) global_shards: usize,
    pub(crate) mode: Mode,
    /// SPUBLISH (sharded pub/sub) instead of PUBLISH.
    pub(crate) sharded: bool,
    pub(crate) batch_size: usize,
    pub(crate) batch_bytes: usize,
    pub(crate) connect_timeout: Duration,
    pub(crate) io_timeout: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) global_maxlen: usize,
    pub(crate) job_maxlen: usize,
    pub(crate) job_stream_ttl: Duration,
    /// The drop report is a line of this schema too.
    pub(crate) schema: Schema,
}

const BACKOFF_START: Duration = Duration::from_millis(100);

/// What becomes of an event of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Published,
    Failed,
    Retry,
}
const REPORT_EVERY: Duration = Duration::from_secs(1);

pub(crate) struct Worker {
    shared: Arc<Queue>,
    ctrl: Receiver<Control>,
    cfg: WorkerConfig,
    target: Target,
    con: Option<Link>,
    backoff: Duration,
    rng: u64,
    batch: Vec<Item>,
    /// Per event of the batch, the commands already done (a bit per
    /// command slot, see `slots`): a batch retried after `LOADING` sends
    /// only what is left.
    done: Vec<u8>,
    batch_bytes: usize,
    /// Permanent errors already said on stderr.
    said: Vec<String>,
    /// Connected once, or said that Redis cannot be reached: the first
    /// failure to connect is said once on stderr, never again.
    met: bool,
    /// The batch's commands in the Redis protocol, reused between batches.
    packed: Vec<u8>,
    shutdown: Option<(Instant, Sender<()>)>,
    last_report: Instant,
    reported: u64,
    /// The global feed's channels (and stream keys): one, or its shards.
    globals: Vec<String>,
    /// Per event of the batch, the global shard it goes to.
    turns: Vec<u16>,
    /// The shard the next event taken goes to.
    next_turn: usize,
    report: Report,
}

impl Worker {
    pub(crate) fn new(
        shared: Arc<Queue>,
        ctrl: Receiver<Control>,
        cfg: WorkerConfig,
        target: Target,
    ) -> Self {
        let seed = Instant::now().elapsed().as_nanos() as u64 ^ (Arc::as_ptr(&shared) as u64);
        Self {
            globals: cfg.channels.global_shards(cfg.global_shards),
            turns: Vec::new(),
            next_turn: 0,
            report: Report::new(cfg.schema.clone()),
            shared,
            ctrl,
            cfg,
            target,
            con: None,
            backoff: BACKOFF_START,
            rng: seed | 1,
            batch: Vec::new(),
            done: Vec::new(),
            batch_bytes: 0,
            said: Vec::new(),
            met: false,
            packed: Vec::new(),
            shutdown: None,
            last_report: Instant::now(),
            reported: 0,
        }
    }

    pub(crate) fn run(mut self) {
        // Anything logged on this thread (by redis or by us) goes nowhere:
        // it must never come back into the queue.
        let _silence = tracing_core::dispatcher::set_default(&tracing_core::Dispatch::none());
        loop {
            if self.batch.is_empty() && self.shutdown.is_none() {
                let rx = self.shared.rx.clone();
                select! {
                    recv(rx) -> item => if let Ok(item) = item { self.take(item) },
                    recv(self.ctrl) -> msg => if let Ok(msg) = msg { self.control(msg) },
                    default(Duration::from_millis(250)) => {}
                }
            }
            self.fill();
            if !self.batch.is_empty() {
                self.send_batch();
            }
            self.report_drops();
            if let Some((deadline, _)) = &self.shutdown {
                if (self.batch.is_empty() && self.shared.rx.is_empty())
                    || Instant::now() >= *deadline
                {
                    self.finish();
                    return;
                }
            }
        }
    }

    fn control(&mut self, msg: Control) {
        match msg {
            Control::Wake => {}
            Control::Shutdown { deadline, done } => self.shutdown = Some((deadline, done)),
        }
    }

    /// Moves an event from the queue into the batch.
    fn take(&mut self, item: Item) {
        add(
            &self.shared.stats.inner.dequeued_bytes,
            item.line.len() as u64,
        );
        self.batch_bytes += item.line.len();
        self.batch.push(item);
        self.done.push(0);
        // Round robin: the global feed's shards get the same load.
        self.turns
            .push(u16::try_from(self.next_turn).unwrap_or_default());
        self.next_turn = (self.next_turn + 1) % self.globals.len().max(1);
    }

    /// Takes what is queued, up to the batch limits.
    fn fill(&mut self) {
        while self.batch.len() < self.cfg.batch_size && self.batch_bytes < self.cfg.batch_bytes {
            match self.shared.rx.try_recv() {
                Ok(item) => self.take(item),
                Err(_) => break,
            }
        }
    }

    fn remaining(&self) -> Option<Duration> {
        self.shutdown
            .as_ref()
            .map(|(deadline, _)| deadline.saturating_duration_since(Instant::now()))
    }

    /// A connection, made if needed; `Err(permanent)` when there is none.
    fn connection(&mut self) -> Result<&mut Link, bool> {
        if self.con.is_none() {
            let timeout = self.remaining().map_or(self.cfg.connect_timeout, |r| {
                r.min(self.cfg.connect_timeout)
            });
            match self.target.connect(timeout.max(Duration::from_millis(1))) {
                Ok(mut con) => {
                    self.backoff = BACKOFF_START;
                    if self.globals.len() > 1 {
                        // Consumers learn how many shards to follow here.
                        let _ = con.query(
                            redis::cmd("SET")
                                .arg(self.cfg.channels.global_shards_key())
                                .arg(self.globals.len()),
                        );
                    }
                    self.con = Some(con);
                    self.met = true;
                }
                Err(e) => {
                    add(&self.shared.stats.inner.reconnects, 1);
                    if !self.met {
                        self.met = true;
                        self.say_unreachable(&e);
                    }
                    return Err(!is_transient(&e));
                }
            }
        }
        // Near shutdown, no wait may outlast the deadline.
        let io = self
            .remaining()
            .map_or(self.cfg.io_timeout, |r| r.min(self.cfg.io_timeout))
            .max(Duration::from_millis(10));
        let con = self.con.as_mut().ok_or(false)?;
        con.set_io_timeout(io);
        Ok(con)
    }

    /// Sleeps for the back-off (capped exponential, full jitter), waking
    /// early for a shutdown.
    fn wait_backoff(&mut self) {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let jittered = Duration::from_nanos(self.rng % (self.backoff.as_nanos() as u64).max(1));
        self.backoff = (self.backoff * 2).min(self.cfg.backoff_max);
        let sleep = self.remaining().map_or(jittered, |r| r.min(jittered));
        if let Ok(msg) = self.ctrl.recv_timeout(sleep) {
            self.control(msg);
        }
    }

    /// Counts the whole batch as failed.
    fn fail_batch(&mut self) {
        self.settle_each(&vec![Fate::Failed; self.batch.len()]);
    }

    /// Settles each event of the batch as `fates` says; events to retry
    /// stay in the batch.
    fn settle_each(&mut self, fates: &[Fate]) {
        let c = &self.shared.stats.inner;
        let mut kept = 0;
        let (mut published, mut failed) = (0, 0);
        let batch = std::mem::take(&mut self.batch);
        let done = std::mem::take(&mut self.done);
        let turns = std::mem::take(&mut self.turns);
        for (((item, mask), turn), fate) in batch.into_iter().zip(done).zip(turns).zip(fates) {
            match fate {
                Fate::Published => published += 1,
                Fate::Failed => failed += 1,
                Fate::Retry => {
                    kept += item.line.len();
                    self.batch.push(item);
                    self.done.push(mask);
                    self.turns.push(turn);
                }
            }
        }
        add(&c.published, published);
        add(&c.failed, failed);
        self.batch_bytes = kept;
    }

    fn abandon_batch(&mut self) {
        let c = &self.shared.stats.inner;
        let n = self.batch.len() as u64;
        add(&c.shutdown, n);
        self.batch.clear();
        self.done.clear();
        self.turns.clear();
        self.batch_bytes = 0;
    }

    /// Says a permanent refusal once on stderr: a configuration problem
    /// (a key of the wrong type, an ACL without the right), not load.
    #[allow(clippy::disallowed_macros)] // a setup mistake, said once where the operator looks
    fn say_refusal(&mut self, error: &str) {
        let code = error.split(' ').next().unwrap_or_default().to_string();
        if !self.said.contains(&code) {
            eprintln!(
                "spanline-redis: Redis refuses the log lines ({error}); they are counted as failed"
            );
            self.said.push(code);
        }
    }

    /// Says once, on stderr, that Redis cannot be reached at start, and
    /// what happens to lines meanwhile.
    #[allow(clippy::disallowed_macros)] // said once, where the operator looks
    fn say_unreachable(&self, error: &redis::RedisError) {
        let capacity = self.shared.tx.capacity().unwrap_or_default();
        let overflow = match self.shared.overflow {
            crate::Overflow::DropNewest => "new lines are dropped".to_string(),
            crate::Overflow::DropOldest => "the oldest lines are dropped".to_string(),
            crate::Overflow::Block { max_wait } => {
                format!("logging waits up to {max_wait:?} a line, then drops it")
            }
            _ => "logging waits until Redis answers".to_string(),
        };
        eprintln!(
            "spanline-redis: cannot reach Redis at {} ({}); lines wait in the queue \
             (up to {capacity} lines) and are published when it answers; once the queue is \
             full, {overflow} (counted in RedisStats). Retrying in the background.",
            self.target.address(),
            error,
        );
    }

    fn send_batch(&mut self) {
        loop {
            if self.remaining() == Some(Duration::ZERO) {
                return self.abandon_batch();
            }
            match self.connection() {
                Ok(_) => break,
                // Wrong password, ACL: the batch cannot go anywhere.
                Err(true) => {
                    self.fail_batch();
                    return self.wait_backoff();
                }
                // Down or unreachable: keep the batch, try again later.
                Err(false) => self.wait_backoff(),
            }
        }
        let mut packed = std::mem::take(&mut self.packed);
        packed.clear();
        let mut count = 0;
        let mut cmds = Vec::new();
        let cluster = self.con.as_ref().is_some_and(Link::is_cluster);
        // One deadline for the whole batch, within the shutdown's.
        let deadline = Instant::now()
            + self
                .remaining()
                .map_or(self.cfg.io_timeout, |r| r.min(self.cfg.io_timeout))
                .max(Duration::from_millis(10));
        let owners = self.plan(|args| {
            count += 1;
            if cluster {
                let mut cmd = redis::cmd(std::str::from_utf8(args[0]).unwrap_or("PUBLISH"));
                args[1..].iter().for_each(|a| {
                    cmd.arg(*a);
                });
                cmds.push(cmd);
            } else {
                write_resp(&mut packed, args);
            }
        });
        let Some(con) = self.con.as_mut() else { return };
        let sent = if cluster {
            con.run(cmds).map_err(|_| Broken { unsent: false })
        } else {
            con.run_packed(&packed, count, deadline)
        };
        self.packed = packed;
        match sent {
            Ok(replies) => {
                let mut retry = vec![false; self.batch.len()];
                let mut refused: Vec<Option<String>> = vec![None; self.batch.len()];
                for (reply, owner) in replies.into_iter().zip(&owners) {
                    let Some((event, slot)) = *owner else {
                        continue;
                    };
                    match reply {
                        Reply::Ok => self.done[event] |= slot,
                        Reply::Retry => retry[event] = true,
                        Reply::Fail(error) => refused[event] = Some(error),
                    }
                }
                // An event is published when all its commands are done,
                // failed when one was refused, and retried otherwise.
                let fates: Vec<Fate> = (0..self.batch.len())
                    .map(|i| {
                        if refused[i].is_some() {
                            Fate::Failed
                        } else if self.done[i] == self.slots(&self.batch[i]) {
                            Fate::Published
                        } else {
                            Fate::Retry
                        }
                    })
                    .collect();
                if let Some(error) = refused.into_iter().flatten().next() {
                    self.say_refusal(&error);
                }
                self.settle_each(&fates);
                if retry.contains(&true) {
                    // Loading its data set, busy with a script, failing over:
                    // the commands were not run; send them again later.
                    self.wait_backoff();
                }
            }
            Err(Broken { unsent: true }) => {
                // A connection the server had closed (a restart): nothing
                // ran; send the batch again on a new one.
                self.con = None;
                self.wait_backoff();
            }
            Err(Broken { unsent: false }) => {
                // The connection broke, or the batch's deadline passed, with
                // the batch on the wire: Redis may still run part of it. At
                // most once: count as failed, reconnect after back-off.
                self.con = None;
                self.fail_batch();
                self.wait_backoff();
            }
        }
    }

    /// The command slots an event needs: bit 0 publish global, 1 publish to
    /// its job, 2 append to the global stream, 3 to its job's stream.
    fn slots(&self, item: &Item) -> u8 {
        let pubsub = matches!(self.cfg.mode, Mode::PubSub | Mode::Both);
        let streams = matches!(self.cfg.mode, Mode::Streams | Mode::Both);
        let job = item.job.is_some();
        let global = self.cfg.global && !item.job_only;
        u8::from(pubsub && global)
            | u8::from(pubsub && job) << 1
            | u8::from(streams && global) << 2
            | u8::from(streams && job) << 3
    }

    /// Calls `emit` with the arguments of every command of the batch still
    /// to do, and returns, per command, the event and slot it serves (the
    /// job streams' `EXPIRE`s come last and serve none).
    fn plan(&self, mut emit: impl FnMut(&[&[u8]])) -> Vec<Option<(usize, u8)>> {
        let publish: &[u8] = if self.cfg.sharded {
            b"SPUBLISH"
        } else {
            b"PUBLISH"
        };
        let pubsub = matches!(self.cfg.mode, Mode::PubSub | Mode::Both);
        let streams = matches!(self.cfg.mode, Mode::Streams | Mode::Both);
        // The global length limit is the whole feed's: each shard keeps its part.
        let (global_maxlen, job_maxlen) = (
            self.cfg
                .global_maxlen
                .div_ceil(self.globals.len().max(1))
                .to_string(),
            self.cfg.job_maxlen.to_string(),
        );
        let mut owners = Vec::with_capacity(self.batch.len() * 2);
        let mut jobs: Vec<&str> = Vec::new();
        for (event, item) in self.batch.iter().enumerate() {
            // The producer built the job's channel name: `{prefix}:{job_id}`.
            let job = item.job.as_deref();
            let line = &*item.line;
            let turn = usize::from(self.turns.get(event).copied().unwrap_or(0));
            let global = self.globals.get(turn).map_or(&b""[..], |g| g.as_bytes());
            let done = self.done.get(event).copied().unwrap_or(0);
            let mut emit_for = |slot: u8, args: &[&[u8]]| {
                if done & slot == 0 {
                    emit(args);
                    owners.push(Some((event, slot)));
                }
            };
            let global_too = self.cfg.global && !item.job_only;
            if pubsub {
                if global_too {
                    emit_for(1, &[publish, global, line]);
                }
                if let Some(channel) = job {
                    emit_for(2, &[publish, channel.as_bytes(), line]);
                }
            }
            if streams {
                if global_too {
                    emit_for(
                        4,
                        &[
                            b"XADD",
                            global,
                            b"MAXLEN",
                            b"~",
                            global_maxlen.as_bytes(),
                            b"*",
                            b"line",
                            line,
                        ],
                    );
                }
                if let Some(key) = job {
                    emit_for(
                        8,
                        &[
                            b"XADD",
                            key.as_bytes(),
                            b"MAXLEN",
                            b"~",
                            job_maxlen.as_bytes(),
                            b"*",
                            b"line",
                            line,
                        ],
                    );
                    if !jobs.contains(&key) {
                        jobs.push(key);
                    }
                }
            }
        }
        let ttl = self.cfg.job_stream_ttl.as_secs().max(1).to_string();
        for key in jobs {
            emit(&[b"EXPIRE", key.as_bytes(), ttl.as_bytes()]);
            owners.push(None);
        }
        owners
    }

    /// At most once a second, a WARN line with the drop counts on the global
    /// channel, so a live view shows that lines are missing.
    fn report_drops(&mut self) {
        if self.last_report.elapsed() < REPORT_EVERY {
            return;
        }
        self.last_report = Instant::now();
        let stats = self.shared.stats.clone();
        let total = stats.dropped();
        if total <= self.reported || self.con.is_none() {
            return;
        }
        let line = self.report.drops(&stats, self.reported);
        let mut cmd = redis::cmd(if self.cfg.sharded {
            "SPUBLISH"
        } else {
            "PUBLISH"
        });
        // Any shard: consumers of the global feed follow them all.
        let global = self.globals.first().cloned().unwrap_or_default();
        cmd.arg(&global).arg(&line);
        // Stream readers see the gap too: the report goes where the lines go.
        let streams = matches!(self.cfg.mode, Mode::Streams | Mode::Both);
        let pubsub = matches!(self.cfg.mode, Mode::PubSub | Mode::Both);
        let mut xadd = redis::cmd("XADD");
        xadd.arg(&global)
            .arg("MAXLEN")
            .arg("~")
            .arg(self.cfg.global_maxlen.div_ceil(self.globals.len().max(1)))
            .arg("*")
            .arg("line")
            .arg(&line);
        if let Some(con) = self.con.as_mut() {
            let published = !pubsub || con.query(&cmd).is_ok();
            let appended = !streams || con.query(&xadd).is_ok();
            if published && appended {
                self.reported = total;
            }
        }
    }

    /// Abandons what is left, counted, and tells the guard.
    fn finish(&mut self) {
        self.abandon_batch();
        self.shared.abandon_queued();
        self.report_drops_now();
        self.say_unreported_loss();
        if let Some((_, done)) = self.shutdown.take() {
            let _ = done.send(());
        }
    }

    /// At exit, drops that Redis could not be told about go to stderr: the
    /// loss is never silent.
    #[allow(clippy::disallowed_macros)] // the last place left to say it
    fn say_unreported_loss(&self) {
        let stats = &self.shared.stats;
        let unreported = stats.dropped().saturating_sub(self.reported);
        if unreported > 0 || stats.failed() > 0 {
            eprintln!(
                "spanline-redis: at exit, {unreported} log lines were dropped without a report \
                 on Redis ({} abandoned at shutdown, {} dropped in all) and {} failed; \
                 published {} of {}",
                stats.dropped_shutdown(),
                stats.dropped(),
                stats.failed(),
                stats.published(),
                stats.emitted(),
            );
        }
    }

    fn report_drops_now(&mut self) {
        self.last_report = Instant::now() - REPORT_EVERY;
        self.report_drops();
    }
}

/// Appends one command in the Redis protocol (RESP): one buffer for the
/// whole batch, no per-command allocation.
fn write_resp(buf: &mut Vec<u8>, args: &[&[u8]]) {
    let mut num = itoa::Buffer::new();
    buf.push(b'*');
    buf.extend_from_slice(num.format(args.len()).as_bytes());
    buf.extend_from_slice(b"\r\n");
    for arg in args {
        buf.push(b'$');
        buf.extend_from_slice(num.format(arg.len()).as_bytes());
        buf.extend_from_slice(b"\r\n");
        buf.extend_from_slice(arg);
        buf.extend_from_slice(b"\r\n");
    }
}

/// Errors worth retrying: anything but a refused login or a bad config
/// (down, unreachable, slow, loading).
fn is_transient(e: &redis::RedisError) -> bool {
    let refused = matches!(
        e.kind(),
        ErrorKind::AuthenticationFailed | ErrorKind::InvalidClientConfig
    ) || e
        .code()
        .is_some_and(|code| matches!(code, "NOAUTH" | "WRONGPASS" | "NOPERM"));
    !refused
}
