//! The worker thread: batches queued lines into pipelines, reconnects with
//! back-off, accounts for every event, and reports drops in-band.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver, Sender};
use redis::ErrorKind;

use crate::config::{Mode, RedisLayerBuilder};
use crate::layer::{Item, Shared};
use crate::link::{Link, Target};
use crate::stats::{add, sub};

/// Messages from the guard.
#[derive(Debug)]
pub(crate) enum Control {
    /// A flush is waiting: get out of any idle wait.
    Wake,
    /// Publish what is queued until `deadline`, abandon the rest, then stop.
    Shutdown { deadline: Instant, done: Sender<()> },
}

const BACKOFF_START: Duration = Duration::from_millis(100);
const REPORT_EVERY: Duration = Duration::from_secs(1);

pub(crate) struct Worker {
    shared: Arc<Shared>,
    ctrl: Receiver<Control>,
    cfg: RedisLayerBuilder,
    target: Target,
    con: Option<Link>,
    backoff: Duration,
    rng: u64,
    batch: Vec<Item>,
    batch_bytes: usize,
    /// The batch's commands in the Redis protocol, reused between batches.
    packed: Vec<u8>,
    shutdown: Option<(Instant, Sender<()>)>,
    last_report: Instant,
    reported: u64,
    global_channel: String,
}

impl Worker {
    pub(crate) fn new(
        shared: Arc<Shared>,
        ctrl: Receiver<Control>,
        cfg: RedisLayerBuilder,
        target: Target,
    ) -> Self {
        let seed = Instant::now().elapsed().as_nanos() as u64 ^ (Arc::as_ptr(&shared) as u64);
        Self {
            global_channel: format!("{}:global", cfg.prefix),
            shared,
            ctrl,
            cfg,
            target,
            con: None,
            backoff: BACKOFF_START,
            rng: seed | 1,
            batch: Vec::new(),
            batch_bytes: 0,
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
        sub(
            &self.shared.stats.inner.queued_bytes,
            item.line.len() as u64,
        );
        self.batch_bytes += item.line.len();
        self.batch.push(item);
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
                Ok(con) => {
                    self.backoff = BACKOFF_START;
                    self.con = Some(con);
                }
                Err(e) => {
                    add(&self.shared.stats.inner.reconnects, 1);
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

    fn settle(&mut self, outcome: impl Fn(usize) -> bool) {
        let c = &self.shared.stats.inner;
        let n = self.batch.len();
        let ok = (0..n).filter(|&i| outcome(i)).count() as u64;
        add(&c.published, ok);
        add(&c.failed, n as u64 - ok);
        sub(&c.in_flight, n as u64);
        self.batch.clear();
        self.batch_bytes = 0;
    }

    fn abandon_batch(&mut self) {
        let c = &self.shared.stats.inner;
        let n = self.batch.len() as u64;
        add(&c.shutdown, n);
        sub(&c.in_flight, n);
        self.batch.clear();
        self.batch_bytes = 0;
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
                    self.settle(|_| false);
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
        let per_event = self.plan(|args| {
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
            con.run(cmds)
        } else {
            con.run_packed(&packed, count)
        };
        self.packed = packed;
        match sent {
            Ok(results) => {
                // Each event owns a run of commands; it is published only if
                // all of them succeeded.
                let mut ok = Vec::with_capacity(per_event.len());
                let mut at = 0;
                for n in &per_event {
                    ok.push(
                        results
                            .get(at..at + n)
                            .is_some_and(|cmds| cmds.iter().all(|&c| c)),
                    );
                    at += n;
                }
                self.settle(|i| ok[i]);
            }
            Err(_) => {
                // The connection broke with the batch on the wire: an
                // unknown part was delivered. At most once: count as failed.
                self.con = None;
                self.settle(|_| false);
            }
        }
    }

    /// Calls `emit` with the arguments of every command of the batch, and
    /// returns how many commands belong to each event (the job streams'
    /// `EXPIRE`s come last and belong to none).
    fn plan(&self, mut emit: impl FnMut(&[&[u8]])) -> Vec<usize> {
        let publish: &[u8] = if self.cfg.sharded {
            b"SPUBLISH"
        } else {
            b"PUBLISH"
        };
        let pubsub = matches!(self.cfg.mode, Mode::PubSub | Mode::Both);
        let streams = matches!(self.cfg.mode, Mode::Streams | Mode::Both);
        let global = self.global_channel.as_bytes();
        let (global_maxlen, job_maxlen) = (
            self.cfg.global_maxlen.to_string(),
            self.cfg.job_maxlen.to_string(),
        );
        let mut per_event = Vec::with_capacity(self.batch.len());
        let mut jobs: Vec<&str> = Vec::new();
        for item in &self.batch {
            // The producer built the job's channel name: `{prefix}:{job_id}`.
            let job = item.job.as_deref();
            let line = &*item.line;
            let mut n = 0;
            if pubsub {
                if self.cfg.global {
                    emit(&[publish, global, line]);
                    n += 1;
                }
                if let Some(channel) = job {
                    emit(&[publish, channel.as_bytes(), line]);
                    n += 1;
                }
            }
            if streams {
                if self.cfg.global {
                    emit(&[
                        b"XADD",
                        global,
                        b"MAXLEN",
                        b"~",
                        global_maxlen.as_bytes(),
                        b"*",
                        b"line",
                        line,
                    ]);
                    n += 1;
                }
                if let Some(key) = job {
                    emit(&[
                        b"XADD",
                        key.as_bytes(),
                        b"MAXLEN",
                        b"~",
                        job_maxlen.as_bytes(),
                        b"*",
                        b"line",
                        line,
                    ]);
                    n += 1;
                    if !jobs.contains(&key) {
                        jobs.push(key);
                    }
                }
            }
            per_event.push(n);
        }
        let ttl = self.cfg.job_stream_ttl.as_secs().max(1).to_string();
        for key in jobs {
            emit(&[b"EXPIRE", key.as_bytes(), ttl.as_bytes()]);
        }
        per_event
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
        let mut line = Vec::with_capacity(256);
        line.extend_from_slice(b"{\"timestamp\":\"");
        spanline_core::Timestamp::now().write_rfc3339(&mut line, spanline_core::Precision::Micros);
        line.extend_from_slice(b"\",\"level\":\"WARN\",\"message\":\"spanline-redis dropped log lines\",\"target\":\"spanline_redis\"");
        let fields = [
            ("dropped", total - self.reported),
            ("dropped_total", total),
            ("queue_full", stats.dropped_queue_full()),
            ("evicted", stats.dropped_evicted()),
            ("block_timeout", stats.dropped_block_timeout()),
            ("oversize", stats.dropped_oversize()),
            ("shutdown", stats.dropped_shutdown()),
        ];
        for (key, value) in fields {
            line.extend_from_slice(format!(",\"{key}\":{value}").as_bytes());
        }
        line.push(b'}');
        let mut cmd = redis::cmd(if self.cfg.sharded {
            "SPUBLISH"
        } else {
            "PUBLISH"
        });
        cmd.arg(&self.global_channel).arg(&line);
        if let Some(con) = self.con.as_mut() {
            if con.query(&cmd).is_ok() {
                self.reported = total;
            }
        }
    }

    /// Abandons what is left, counted, and tells the guard.
    fn finish(&mut self) {
        self.abandon_batch();
        let c = &self.shared.stats.inner;
        while let Ok(item) = self.shared.rx.try_recv() {
            sub(&c.queued_bytes, item.line.len() as u64);
            sub(&c.in_flight, 1);
            add(&c.shutdown, 1);
        }
        self.report_drops_now();
        if let Some((_, done)) = self.shutdown.take() {
            let _ = done.send(());
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
