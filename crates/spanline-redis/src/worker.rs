//! The worker thread: batches queued lines into pipelines, reconnects with
//! back-off, accounts for every event, and reports drops in-band.
//!
//! Why one file: it is one thread's state, the `Worker`, and every method
//! reads and writes the same private fields (the batch with its per-event
//! `done` bits and shard `turns`, the connection, the back-off, what was
//! already said on stderr). Together they keep one account: each event
//! taken from the queue is counted once, as published, failed or abandoned
//! at shutdown (or by the guard once it took over), under the `held` lock
//! shared with the guard; split, that discipline would be spread over
//! modules that each open the worker's fields.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Select};

use spanline_core::Schema;

use crate::Channels;

use crate::link::{Broken, ConnectError, Link, Target};
use crate::pack::Packer;
use crate::problem::Misconfig;
use crate::queue::{later, Control, Item, Phase, Queue};
use crate::reply::Reply;
use crate::report::{self, Report};
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
    /// How often, at most, lines lost without a report on Redis are
    /// counted on stderr.
    pub(crate) stderr_every: Duration,
    /// The drop report is a line of this schema too.
    pub(crate) schema: Schema,
}

const BACKOFF_START: Duration = Duration::from_millis(100);

/// What becomes of an event of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Published,
    Failed,
    /// Failed, the outcome unknown: the batch was on the wire.
    Unknown,
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
    /// Configuration problems already said on stderr.
    said: Vec<String>,
    /// Connected once, or said that Redis cannot be reached: the first
    /// failure to connect is said once on stderr, never again.
    met: bool,
    /// The batch's commands in the Redis protocol, reused between batches.
    packed: Packer,
    last_report: Instant,
    /// Drops reported on Redis (the in-band WARN line), in all.
    reported: u64,
    /// A configuration problem stands until then (a refused login, no such
    /// database, not a cluster): batches fail at once, without a
    /// connection attempt.
    refused_until: Option<Instant>,
    /// Why lines do not reach Redis now, for the periodic stderr line.
    trouble: Option<String>,
    /// The periodic stderr line: when it was last said, and the drops and
    /// failures in all then.
    said_at: Instant,
    said_dropped: u64,
    said_failed: u64,
    /// The global feed's channels (and stream keys): one, or its shards.
    globals: Vec<String>,
    /// Per event of the batch, the global shard it goes to.
    turns: Vec<u16>,
    /// The shard the next event taken goes to.
    next_turn: usize,
    report: Report,
}

/// Why there is no connection now.
enum NoLink {
    /// Down, unreachable, slow: keep the lines and try again.
    Transient,
    /// A configuration problem: the lines fail.
    Refused,
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
            globals: crate::read::global_shards(&cfg.channels, cfg.global_shards),
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
            packed: Packer::default(),
            last_report: Instant::now(),
            reported: 0,
            refused_until: None,
            trouble: None,
            said_at: Instant::now(),
            said_dropped: 0,
            said_failed: 0,
        }
    }

    pub(crate) fn run(mut self) {
        // Anything logged on this thread (by redis or by us) goes nowhere:
        // it must never come back into the queue.
        let _silence = tracing_core::dispatcher::set_default(&tracing_core::Dispatch::none());
        loop {
            if self.shared.exit.held().phase != Phase::Running {
                // The guard settled our lines at its deadline.
                return;
            }
            if self.batch.is_empty() && !self.stopping() {
                self.idle();
            }
            self.fill();
            if !self.batch.is_empty() {
                self.send_batch();
            }
            self.report_drops(false);
            self.say_lost();
            if self.stopping()
                && ((self.batch.is_empty() && self.shared.rx.is_empty())
                    || self.remaining() == Some(Duration::ZERO))
            {
                self.finish();
                return;
            }
        }
    }

    /// Waits for a line or a message from the guard (at most 250 ms),
    /// without taking the line: lines leave the queue only in `fill`.
    fn idle(&mut self) {
        let mut select = Select::new();
        select.recv(&self.shared.rx);
        let ctrl = select.recv(&self.ctrl);
        let woken = select.ready_timeout(Duration::from_millis(250));
        drop(select);
        if woken == Ok(ctrl) {
            self.drain_control();
        }
    }

    /// Messages from the guard only wake the worker: the shutdown's
    /// deadline is in the shared state.
    fn drain_control(&mut self) {
        while self.ctrl.try_recv().is_ok() {}
    }

    /// Shutdown was asked.
    fn stopping(&self) -> bool {
        self.shared.exit.deadline().is_some()
    }

    /// Moves an event from the queue into the batch; returns its bytes.
    fn take(&mut self, item: Item) -> usize {
        let len = item.line.len();
        self.batch_bytes += len;
        self.batch.push(item);
        self.done.push(0);
        // Round robin: the global feed's shards get the same load.
        self.turns
            .push(u16::try_from(self.next_turn).unwrap_or_default());
        self.next_turn += 1;
        if self.next_turn >= self.globals.len() {
            self.next_turn = 0;
        }
        len
    }

    /// Takes what is queued, up to the batch limits. Under the lock on the
    /// held lines: a line is always either queued or held, for the guard.
    fn fill(&mut self) {
        let shared = self.shared.clone();
        let mut held = shared.exit.held();
        if held.phase != Phase::Running {
            return;
        }
        let mut taken = 0;
        while self.batch.len() < self.cfg.batch_size && self.batch_bytes < self.cfg.batch_bytes {
            match self.shared.rx.try_recv() {
                Ok(item) => taken += self.take(item),
                Err(_) => break,
            }
        }
        // Still under the lock: the guard sees the lines held, and their
        // bytes out of the queue, at once.
        add(&self.shared.stats.inner.dequeued_bytes, taken as u64);
        held.batch = self.batch.len() as u64;
    }

    /// Time left before the shutdown's deadline, once asked.
    fn remaining(&self) -> Option<Duration> {
        self.shared
            .exit
            .deadline()
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }

    /// A wait of `d` at most, bounded by the shutdown's deadline.
    fn bounded(&self, d: Duration) -> Duration {
        self.remaining().map_or(d, |r| r.min(d))
    }

    /// A connection, made if needed.
    fn connection(&mut self) -> Result<(), NoLink> {
        if self.con.is_none() {
            let timeout = self
                .bounded(self.cfg.connect_timeout)
                .max(Duration::from_millis(1));
            match self.target.connect(timeout) {
                Ok(mut con) => {
                    self.backoff = BACKOFF_START;
                    self.refused_until = None;
                    self.trouble = None;
                    // redis-rs leaves a new connection without timeouts.
                    con.set_io_timeout(self.io_timeout());
                    if self.globals.len() > 1 {
                        // Consumers learn how many shards to follow here.
                        con.ask(
                            redis::cmd("SET")
                                .arg(crate::read::global_shards_key(&self.cfg.channels))
                                .arg(self.globals.len()),
                        );
                    }
                    self.con = Some(con);
                    self.met = true;
                }
                Err(e) => {
                    add(&self.shared.stats.inner.reconnects, 1);
                    return Err(self.no_connection(&e));
                }
            }
        }
        // Near shutdown, no wait may outlast the deadline.
        let io = self.io_timeout();
        if let Some(con) = self.con.as_mut() {
            con.set_io_timeout(io);
        }
        Ok(())
    }

    /// The I/O timeout now: the configured one, bounded by the shutdown.
    fn io_timeout(&self) -> Duration {
        self.bounded(self.cfg.io_timeout)
            .max(Duration::from_millis(10))
    }

    /// Sorts a failed connection attempt: a configuration problem is said
    /// once and blocks lines until the next attempt, after `max_backoff`;
    /// anything else is retried with back-off.
    fn no_connection(&mut self, e: &ConnectError) -> NoLink {
        match e.misconfig() {
            Some(problem) => {
                self.met = true;
                self.refuse(&problem);
                NoLink::Refused
            }
            _ => {
                if !self.met {
                    self.met = true;
                    self.say_unreachable(e);
                }
                self.trouble = Some(format!(
                    "Redis at {} unreachable: {e}",
                    self.target.address()
                ));
                NoLink::Transient
            }
        }
    }

    /// A configuration problem that no line gets past: said once, and no
    /// connection is tried again before `max_backoff`.
    fn refuse(&mut self, problem: &Misconfig) {
        self.say_problem(problem);
        self.trouble = Some(problem.short());
        self.con = None;
        self.refused_until = Some(later(self.cfg.backoff_max.max(BACKOFF_START)));
    }

    /// Sleeps for the back-off (capped exponential, full jitter), waking
    /// early for a shutdown.
    fn wait_backoff(&mut self) {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let jittered = Duration::from_nanos(self.rng % (self.backoff.as_nanos() as u64).max(1));
        self.backoff = self.backoff.saturating_mul(2).min(self.cfg.backoff_max);
        let sleep = self.bounded(jittered);
        if self.ctrl.recv_timeout(sleep).is_ok() {
            self.drain_control();
        }
    }

    /// Counts the whole batch as failed; `unknown`: it was on the wire.
    fn fail_batch(&mut self, unknown: bool) {
        if unknown {
            self.settle_each(&vec![Fate::Unknown; self.batch.len()]);
        } else {
            self.settle_each(&vec![Fate::Failed; self.batch.len()]);
        }
    }

    /// Empties the batch.
    fn clear_batch(&mut self) {
        self.batch.clear();
        self.done.clear();
        self.turns.clear();
        self.batch_bytes = 0;
    }

    /// Settles each event of the batch as `fates` says; events to retry
    /// stay in the batch. Counts nothing once the guard took over.
    fn settle_each(&mut self, fates: &[Fate]) {
        let shared = self.shared.clone();
        let mut held = shared.exit.held();
        held.sending = false;
        if held.phase != Phase::Running {
            held.batch = 0;
            return self.clear_batch();
        }
        let c = &shared.stats.inner;
        let mut kept = 0;
        let (mut published, mut failed, mut unknown) = (0, 0, 0);
        let batch = std::mem::take(&mut self.batch);
        let done = std::mem::take(&mut self.done);
        let turns = std::mem::take(&mut self.turns);
        for (((item, mask), turn), fate) in batch.into_iter().zip(done).zip(turns).zip(fates) {
            match fate {
                Fate::Published => published += 1,
                Fate::Failed => failed += 1,
                Fate::Unknown => unknown += 1,
                Fate::Retry => {
                    kept += item.line.len();
                    self.batch.push(item);
                    self.done.push(mask);
                    self.turns.push(turn);
                }
            }
        }
        add(&c.published, published);
        add(&c.failed, failed + unknown);
        add(&c.unknown, unknown);
        self.batch_bytes = kept;
        held.batch = self.batch.len() as u64;
    }

    /// The shutdown's deadline passed before the batch could be sent:
    /// counted abandoned at shutdown.
    fn abandon_batch(&mut self) {
        let shared = self.shared.clone();
        let mut held = shared.exit.held();
        if held.phase == Phase::Running {
            let n = self.batch.len() as u64;
            add(&shared.stats.inner.shutdown, n);
            add(&shared.exit.abandoned, n);
        }
        held.batch = 0;
        held.sending = false;
        self.clear_batch();
    }

    /// Says a configuration problem once on stderr.
    fn say_problem(&mut self, problem: &Misconfig) {
        let key = problem.key();
        if !self.said.contains(&key) {
            report::say(&problem.message(
                &self.target.address(),
                self.target.db(),
                self.cfg.backoff_max.max(BACKOFF_START),
            ));
            self.said.push(key);
        }
    }

    /// Says once, on stderr, that Redis cannot be reached at start, and
    /// what happens to lines meanwhile.
    fn say_unreachable(&self, error: &ConnectError) {
        let capacity = self.shared.tx.capacity().unwrap_or_default();
        let overflow = match self.shared.overflow {
            crate::Overflow::DropNewest => "new lines are dropped".to_string(),
            crate::Overflow::DropOldest => "the oldest lines are dropped".to_string(),
            crate::Overflow::Block { max_wait } => {
                format!("logging waits up to {max_wait:?} a line, then drops it")
            }
            _ => "logging waits until Redis answers".to_string(),
        };
        report::say(&format!(
            "spanline-redis: cannot reach Redis at {} ({error}); lines wait in the queue \
             (up to {capacity} lines) and are published when it answers; once the queue is \
             full, {overflow} (counted in RedisStats). Retrying in the background.",
            self.target.address(),
        ));
    }

    /// Marks the batch as on the wire; false when the guard took over.
    fn mark_sending(&self) -> bool {
        let mut held = self.shared.exit.held();
        held.sending = held.phase == Phase::Running;
        held.sending
    }

    fn send_batch(&mut self) {
        loop {
            if self.remaining() == Some(Duration::ZERO) {
                return self.abandon_batch();
            }
            if self.refused_until.is_some_and(|t| Instant::now() < t) {
                // A configuration problem stands: the lines cannot go anywhere.
                return self.fail_batch(false);
            }
            match self.connection() {
                Ok(()) => break,
                Err(NoLink::Refused) => return self.fail_batch(false),
                // Down or unreachable: keep the batch, try again later.
                Err(NoLink::Transient) => {
                    self.say_lost();
                    self.wait_backoff();
                }
            }
        }
        let Some(mut con) = self.con.take() else {
            return;
        };
        let mut packed = std::mem::take(&mut self.packed);
        packed.clear();
        let mut count = 0;
        con.begin();
        // One deadline for the whole batch, within the shutdown's (asked
        // again before each reply: a shutdown asked meanwhile brings it
        // forward).
        let batch_deadline = later(self.io_timeout());
        let owners = self.plan(|args| {
            count += 1;
            con.push(args, &mut packed);
        });
        if !self.mark_sending() {
            self.packed = packed;
            self.con = Some(con);
            return self.clear_batch();
        }
        let shared = self.shared.clone();
        let deadline = move || {
            shared
                .exit
                .deadline()
                .map_or(batch_deadline, |d| d.min(batch_deadline))
        };
        let sent = con.send(packed.bytes(), count, &deadline);
        self.packed = packed;
        self.con = Some(con);
        match sent {
            Ok(replies) => self.sort_replies(replies, &owners),
            Err(Broken { unsent: true }) => {
                // A connection the server had closed (a restart): nothing
                // ran; send the batch again on a new one.
                self.con = None;
                self.shared.exit.held().sending = false;
                self.wait_backoff();
            }
            Err(Broken { unsent: false }) => {
                // The connection broke, or the batch's deadline passed, with
                // the batch on the wire: Redis may still run part of it. At
                // most once: count as failed, reconnect after back-off.
                self.con = None;
                self.fail_batch(true);
                self.wait_backoff();
            }
        }
    }

    /// Settles the batch from its commands' replies.
    fn sort_replies(&mut self, replies: Vec<Reply>, owners: &[Option<(usize, u8)>]) {
        let mut retry = vec![false; self.batch.len()];
        let mut lost = vec![false; self.batch.len()];
        let mut refused: Vec<Option<String>> = vec![None; self.batch.len()];
        for (reply, owner) in replies.into_iter().zip(owners) {
            let Some((event, slot)) = *owner else {
                continue;
            };
            match reply {
                Reply::Ok => self.done[event] |= slot,
                Reply::Retry(_) => retry[event] = true,
                Reply::Lost => lost[event] = true,
                Reply::Fail(error) => refused[event] = Some(error),
            }
        }
        // An event is published when all its commands are done, failed
        // when one was refused, and retried otherwise.
        let fates: Vec<Fate> = (0..self.batch.len())
            .map(|i| {
                if refused[i].is_some() {
                    Fate::Failed
                } else if lost[i] {
                    Fate::Unknown
                } else if self.done[i] == self.slots(&self.batch[i]) {
                    Fate::Published
                } else {
                    Fate::Retry
                }
            })
            .collect();
        let mut problems: Vec<Misconfig> = Vec::new();
        for error in refused.into_iter().flatten() {
            let problem = Misconfig::of_reply(&error);
            if !problems.iter().any(|p| p.key() == problem.key()) {
                problems.push(problem);
            }
        }
        for problem in &problems {
            if problem.blocks_all() {
                // `NOAUTH`: the server wants a login this URL does not give.
                self.refuse(problem);
            } else {
                self.say_problem(problem);
                self.trouble = Some(problem.short());
            }
        }
        if problems.is_empty() && !retry.contains(&true) {
            self.trouble = None;
        }
        self.settle_each(&fates);
        if retry.contains(&true) {
            // Loading its data set, busy with a script, failing over:
            // the commands were not run; send them again later.
            self.wait_backoff();
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
    /// `now`: whatever the time since the last.
    fn report_drops(&mut self, now: bool) {
        if !now && self.last_report.elapsed() < REPORT_EVERY {
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
        let io = self.io_timeout();
        if let Some(con) = self.con.as_mut() {
            con.set_io_timeout(io);
            let published = !pubsub || con.ask(&cmd);
            let appended = !streams || con.ask(&xadd);
            if published && appended {
                self.reported = total;
            }
        }
    }

    /// At most every `stderr_every`, says on stderr the lines dropped or
    /// failed since it last did that no report on Redis covered (Redis
    /// down, a refused login, ...): a loss is never silent until exit.
    fn say_lost(&mut self) {
        if self.stopping() || self.said_at.elapsed() < self.cfg.stderr_every {
            return;
        }
        let stats = self.shared.stats.clone();
        let (dropped, failed) = (stats.dropped(), stats.failed());
        let new_dropped = dropped.saturating_sub(self.said_dropped.max(self.reported));
        let new_failed = failed.saturating_sub(self.said_failed);
        if new_dropped + new_failed == 0 {
            return;
        }
        let why = self
            .trouble
            .clone()
            .unwrap_or_else(|| "the report on Redis could not be published".to_string());
        report::say(&report::meanwhile(
            &stats,
            new_dropped,
            new_failed,
            self.said_at.elapsed(),
            &why,
        ));
        self.said_at = Instant::now();
        self.said_dropped = dropped;
        self.said_failed = failed;
    }

    /// Settles what is left (counted abandoned at shutdown) and tells the
    /// guard, which says the loss on stderr.
    fn finish(&mut self) {
        // The last report on Redis, if there is time for it.
        if self.batch.is_empty()
            && self
                .remaining()
                .is_some_and(|r| r > Duration::from_millis(20))
        {
            self.report_drops(true);
        }
        let shared = self.shared.clone();
        let mut held = shared.exit.held();
        if held.phase != Phase::Running {
            return;
        }
        let n = self.batch.len() as u64;
        add(&shared.stats.inner.shutdown, n);
        self.clear_batch();
        let queued = shared.abandon_queued();
        add(&shared.exit.abandoned, n + queued);
        held.batch = 0;
        held.sending = false;
        held.phase = Phase::Done;
        shared.exit.notify();
    }
}
