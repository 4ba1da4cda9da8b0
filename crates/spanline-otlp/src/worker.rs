//! The worker: a thread of its own with a one-thread tokio runtime, that
//! takes lines off the queue, reads each back as a LogRecord, and exports
//! them in batches. The application's threads only queue bytes.

use std::io::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use opentelemetry::logs::LoggerProvider as _;
use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::logs::{LogBatch, LogExporter as _, SdkLogRecord, SdkLoggerProvider};
use opentelemetry_sdk::Resource;

use crate::export::{exporter, BuildError, Protocol};
use crate::record::to_record;
use crate::shared::{Control, Settled, Shared};
use crate::stats::OtlpStats;

/// A batch is sent before it holds more bytes of lines than this: OTLP/gRPC
/// servers refuse messages over 4 MiB by default.
const MAX_BATCH_BYTES: usize = 3 << 20;

/// How often, at most, the worker says on stderr what it could not export.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// What the worker is started with.
pub(crate) struct Settings {
    pub(crate) protocol: Protocol,
    pub(crate) endpoint: Option<String>,
    pub(crate) timeout: Duration,
    pub(crate) service_name: Option<String>,
    pub(crate) capacity: usize,
    pub(crate) batch_size: usize,
    pub(crate) batch_delay: Duration,
}

/// What the layer and the guard hold of a started worker.
pub(crate) struct Started {
    pub(crate) shared: Arc<Shared>,
    pub(crate) control: Sender<Control>,
    pub(crate) handle: JoinHandle<()>,
}

/// Starts the worker; returns once its exporter is built (or refused).
pub(crate) fn start(settings: Settings) -> Result<Started, BuildError> {
    let Settings {
        protocol,
        endpoint,
        timeout,
        service_name,
        capacity,
        batch_size,
        batch_delay,
    } = settings;
    let (lines, queue) = crossbeam_channel::bounded(capacity);
    let (ctrl, control) = crossbeam_channel::unbounded();
    let shared = Arc::new(Shared::new(lines));
    let (ready, built) = std::sync::mpsc::channel();
    let worker_shared = shared.clone();
    let resource = resource(service_name.as_deref());
    let where_to = endpoint
        .clone()
        .unwrap_or_else(|| "the default endpoint".into());
    let handle = std::thread::Builder::new()
        .name("spanline-otlp".into())
        .spawn(move || {
            // Nothing logged on this thread (by tonic, hyper, the SDK)
            // comes back to the layer: no loop, no feedback.
            let _silence = tracing_core::dispatcher::set_default(&tracing_core::Dispatch::none());
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => return drop(ready.send(Err(BuildError::Thread(e.to_string())))),
            };
            // tonic's channel is bound to the runtime it is made in.
            let exporter = runtime.block_on(async { exporter(protocol, endpoint, timeout) });
            let mut exporter = match exporter {
                Ok(exporter) => exporter,
                Err(e) => return drop(ready.send(Err(e))),
            };
            exporter.set_resource(&resource);
            if ready.send(Ok(())).is_err() {
                return;
            }
            Worker {
                queue,
                control,
                shared: worker_shared,
                exporter,
                runtime,
                provider: SdkLoggerProvider::builder().build(),
                scope: InstrumentationScope::builder("spanline").build(),
                batch_size,
                batch_delay,
                // The exporter has its own timeout; this one bounds the
                // worker whatever the transport does.
                timeout: timeout.saturating_add(Duration::from_secs(1)),
                where_to,
                report: Report::default(),
            }
            .run();
        })
        .map_err(|e| BuildError::Thread(e.to_string()))?;
    match built.recv() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        Err(_) => {
            return Err(BuildError::Thread(
                "the worker stopped while starting".into(),
            ))
        }
    }
    Ok(Started {
        shared,
        control: ctrl,
        handle,
    })
}

/// The resource: the SDK's (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
/// the SDK's own), with the builder's service name over them.
fn resource(service_name: Option<&str>) -> Resource {
    let builder = Resource::builder();
    match service_name {
        Some(name) => builder.with_service_name(name.to_string()).build(),
        None => builder.build(),
    }
}

struct Worker {
    queue: Receiver<Box<[u8]>>,
    control: Receiver<Control>,
    shared: Arc<Shared>,
    exporter: opentelemetry_otlp::LogExporter,
    runtime: tokio::runtime::Runtime,
    /// Makes the records (an SDK provider with no processor of its own).
    provider: SdkLoggerProvider,
    scope: InstrumentationScope,
    batch_size: usize,
    batch_delay: Duration,
    timeout: Duration,
    where_to: String,
    report: Report,
}

/// The lines of the batch being filled.
#[derive(Default)]
struct Batch {
    lines: Vec<Box<[u8]>>,
    bytes: usize,
    /// When the oldest line's wait is over.
    due: Option<Instant>,
}

/// How long the worker's last drain waits for logging threads that hold
/// a line (between the layer's room check and the queue) to let go of it.
const LAST_DRAIN: Duration = Duration::from_millis(200);

impl Worker {
    fn run(mut self) {
        let mut batch = Batch::default();
        loop {
            let wait = batch.due.map_or(Duration::from_secs(1), |due| {
                due.saturating_duration_since(Instant::now())
            });
            crossbeam_channel::select! {
                recv(self.queue) -> line => {
                    // The layer holds a sender as long as the worker runs.
                    let Ok(line) = line else { break };
                    self.push(&mut batch, line);
                }
                recv(self.control) -> control => match control {
                    Ok(Control::Flush) => self.drain(&mut batch),
                    Ok(Control::Stop) | Err(_) => {
                        self.drain(&mut batch);
                        break;
                    }
                },
                default(wait) => {
                    if batch.due.is_some_and(|due| due <= Instant::now()) {
                        self.send(&mut batch);
                    }
                }
            }
            if self.shared.cancelled.load(Ordering::SeqCst) {
                break;
            }
            self.report
                .now_and_then(&self.shared.stats, &self.where_to, false);
        }
        self.last_drain(batch);
        let _ = self
            .exporter
            .shutdown_with_timeout(Duration::from_millis(500));
        let _ = self.provider.shutdown();
        // A guard that gave up says the totals itself.
        if !self.shared.given_up() {
            self.report
                .now_and_then(&self.shared.stats, &self.where_to, true);
        }
    }

    /// Settles what is left once the worker stops: the batch and the
    /// queue, and the lines of logging threads that took an event before
    /// the shutdown began and put it on the queue after.
    fn last_drain(&self, batch: Batch) {
        let abandoned = |n: usize| self.shared.settle(n as u64, Settled::Abandoned);
        abandoned(batch.lines.len());
        let until = Instant::now() + LAST_DRAIN;
        loop {
            let mut n = 0;
            while self.queue.try_recv().is_ok() {
                n += 1;
            }
            abandoned(n);
            let held = self.shared.holding.load(Ordering::SeqCst);
            if (held == 0 && self.queue.is_empty()) || Instant::now() >= until {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn push(&mut self, batch: &mut Batch, line: Box<[u8]>) {
        batch.bytes += line.len();
        batch.lines.push(line);
        if batch.due.is_none() {
            // A delay too long to add up is no time limit: size and
            // flushes send the batch.
            batch.due = Instant::now().checked_add(self.batch_delay);
        }
        if batch.lines.len() >= self.batch_size || batch.bytes >= MAX_BATCH_BYTES {
            self.send(batch);
        }
    }

    /// Sends everything queued now.
    fn drain(&mut self, batch: &mut Batch) {
        while !self.shared.cancelled.load(Ordering::SeqCst) {
            let Ok(line) = self.queue.try_recv() else {
                break;
            };
            self.push(batch, line);
        }
        self.send(batch);
    }

    /// Exports the batch and settles its records; a shutdown whose time
    /// ran out cuts the export short.
    fn send(&mut self, batch: &mut Batch) {
        if self.shared.cancelled.load(Ordering::SeqCst) {
            return; // the last drain settles the batch
        }
        let lines = std::mem::take(&mut batch.lines);
        batch.bytes = 0;
        batch.due = None;
        if lines.is_empty() {
            return;
        }
        let logger = self.provider.logger("spanline");
        let records: Vec<SdkLogRecord> = lines.iter().map(|l| to_record(l, &logger)).collect();
        let refs: Vec<(&SdkLogRecord, &InstrumentationScope)> =
            records.iter().map(|r| (r, &self.scope)).collect();
        let (exporter, shared) = (&self.exporter, &*self.shared);
        let outcome = self.runtime.block_on(async {
            tokio::select! {
                done = tokio::time::timeout(self.timeout, exporter.export(LogBatch::new(&refs))) => Some(done),
                () = shared.cancel.notified() => None,
            }
        });
        let n = records.len() as u64;
        match outcome {
            Some(Ok(Ok(()))) => shared.settle(n, Settled::Exported),
            Some(Ok(Err(e))) => {
                shared.settle(n, Settled::Failed);
                self.report.failure(e.to_string());
            }
            Some(Err(_)) => {
                shared.settle(n, Settled::Failed);
                self.report
                    .failure(format!("no answer within {:?}", self.timeout));
            }
            None => shared.settle(n, Settled::Abandoned),
        }
    }
}

/// What the worker said last on stderr, so it says each loss once.
#[derive(Default)]
struct Report {
    said_at: Option<Instant>,
    said_failed: u64,
    said_dropped: u64,
    last_error: Option<String>,
}

impl Report {
    fn failure(&mut self, error: String) {
        self.last_error = Some(error);
    }

    /// Says on stderr what was lost since the last report: at once the
    /// first time, then at most every [`REPORT_EVERY`], and at the end.
    #[allow(clippy::cast_precision_loss)]
    fn now_and_then(&mut self, stats: &OtlpStats, where_to: &str, last: bool) {
        let (failed, dropped) = (stats.failed(), stats.dropped());
        if failed == self.said_failed && dropped == self.said_dropped {
            return;
        }
        let due = self.said_at.is_none_or(|at| at.elapsed() >= REPORT_EVERY);
        if !(due || last) {
            return;
        }
        let mut text = format!(
            "spanline-otlp: {} records not exported to {where_to}",
            (failed - self.said_failed) + (dropped - self.said_dropped)
        );
        if failed > self.said_failed {
            let why = self.last_error.take().unwrap_or_default();
            text.push_str(&format!("; {} failed: {why}", failed - self.said_failed));
        }
        if dropped > self.said_dropped {
            text.push_str(&format!(
                "; {} dropped (in all: {} for a full queue, {} oversize, {} at shutdown)",
                dropped - self.said_dropped,
                stats.dropped_queue_full(),
                stats.dropped_oversize(),
                stats.dropped_shutdown(),
            ));
        }
        let _ = writeln!(std::io::stderr(), "{text}");
        self.said_at = Some(Instant::now());
        self.said_failed = failed;
        self.said_dropped = dropped;
    }
}
