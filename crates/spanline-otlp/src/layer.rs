//! [`OtlpLayer`]: the caller's side, a [`LineSink`] that queues each line's
//! bytes for the worker; it never touches the network.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crossbeam_channel::TrySendError;
use spanline_core::{LineEvent, LineLayer, LineSink, Refusal, Schema};
use tracing_core::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::shared::Shared;
use crate::stats::add;
use crate::stats::OtlpStats;

/// Sends every event as an OpenTelemetry LogRecord over OTLP, gRPC or
/// HTTP/protobuf, through opentelemetry-otlp's exporter.
///
/// Each record has:
/// - the event's time, and its level as the severity (number and text);
/// - the message as the body, the target as the instrumentation scope;
/// - the trace and span ids of the line (tracing-opentelemetry's, with
///   spanline's `opentelemetry` feature, or an incoming `traceparent`'s);
/// - every other key of the line as an attribute: the context
///   (`request_id`, `user_id`, `job_id`, …) and the event's fields, with
///   the [`schema`](crate::OtlpLayerBuilder::schema)'s redaction applied;
/// - the resource's `service.name`.
///
/// `on_event` encodes the line (or reuses the JSON layer's) and puts its
/// bytes on a bounded queue; a worker thread reads them back as records
/// and exports them in batches. The application never waits on the
/// network and never fails because of the collector: a full queue drops
/// the new record, an export that fails or times out fails its batch, and
/// [`OtlpStats`] counts each; the worker says the losses on stderr, at
/// most every 10 s, and [`OtlpGuard`](crate::OtlpGuard) says at exit what
/// it could not send.
///
/// ```no_run
/// use tracing_subscriber::prelude::*;
/// use spanline_core::ContextLayer;
/// use spanline_json::JsonLayer;
/// use spanline_otlp::OtlpLayer;
///
/// let json = JsonLayer::new();
/// let (otlp, guard) = OtlpLayer::builder()
///     .endpoint("http://127.0.0.1:4318")
///     .service_name("billing")
///     .schema(json.schema().clone()) // the line is encoded once for both
///     .build()?;
/// tracing_subscriber::registry().with(ContextLayer::new()).with(json).with(otlp).init();
///
/// let _request = tracing::info_span!("request", request_id = "r-1").entered();
/// tracing::warn!(attempt = 2, "slow upstream"); // a WARN record with request_id and attempt
/// drop(guard); // exports what is queued, up to the shutdown timeout
/// # Ok::<(), spanline_otlp::BuildError>(())
/// ```
#[derive(Debug)]
pub struct OtlpLayer {
    line: LineLayer<OtlpSink>,
}

impl OtlpLayer {
    /// The layer's counters.
    ///
    /// ```
    /// let (layer, _guard) = spanline_otlp::OtlpLayer::builder().endpoint("http://127.0.0.1:1").build()?;
    /// let stats = layer.stats(); // keep it: the layer moves into the subscriber
    /// assert_eq!(stats.emitted(), 0);
    /// # Ok::<(), spanline_otlp::BuildError>(())
    /// ```
    pub fn stats(&self) -> OtlpStats {
        self.line.sink().shared.stats.clone()
    }

    /// The schema lines are encoded with.
    ///
    /// ```
    /// let (layer, _guard) = spanline_otlp::OtlpLayer::builder().endpoint("http://127.0.0.1:1").build()?;
    /// assert_eq!(layer.schema().preset(), spanline_core::Preset::Flat);
    /// # Ok::<(), spanline_otlp::BuildError>(())
    /// ```
    pub fn schema(&self) -> &Schema {
        self.line.schema()
    }

    pub(crate) fn new(schema: Schema, shared: Arc<Shared>, max_line: usize) -> Self {
        Self {
            line: LineLayer::new(schema, OtlpSink { shared, max_line }),
        }
    }
}

/// Queues lines for the worker.
#[derive(Debug)]
struct OtlpSink {
    shared: Arc<Shared>,
    max_line: usize,
}

impl LineSink for OtlpSink {
    fn ready(&self, _event: &LineEvent<'_>) -> bool {
        let shared = &*self.shared;
        let c = &shared.stats.inner;
        add(&c.emitted, 1);
        // Held before `closed` is read: once the worker has seen `closed`
        // and nothing held, no line can reach the queue any more.
        add(&shared.holding, 1);
        if shared.closed.load(Ordering::SeqCst) {
            shared.drop_held(&c.shutdown);
            return false;
        }
        // Before the encoding: a full queue costs nothing more.
        if shared.lines.is_full() {
            shared.drop_held(&c.queue_full);
            return false;
        }
        true
    }

    fn accept(&self, line: &[u8], _event: &LineEvent<'_>) {
        let shared = &*self.shared;
        let c = &shared.stats.inner;
        if shared.closed.load(Ordering::SeqCst) {
            return shared.drop_held(&c.shutdown);
        }
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        match shared.lines.try_send(line.into()) {
            Ok(()) => {
                // The worker's now: it settles the line.
                add(&shared.queued, 1);
                shared.holding.fetch_sub(1, Ordering::SeqCst);
            }
            Err(TrySendError::Full(_)) => shared.drop_held(&c.queue_full),
            Err(TrySendError::Disconnected(_)) => shared.drop_held(&c.shutdown),
        }
    }

    fn max_line(&self) -> usize {
        self.max_line
    }

    fn refused(&self, refusal: Refusal, _event: &LineEvent<'_>) {
        // `ready` took the event: settle its fate.
        let shared = &*self.shared;
        let c = &shared.stats.inner;
        match refusal {
            Refusal::Oversize { .. } => shared.drop_held(&c.oversize),
            _ => shared.drop_held(&c.reentrant),
        }
    }
}

impl<S> Layer<S> for OtlpLayer
where
    S: Subscriber + for<'a> LookupSpan<'a> + 'static,
{
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        self.line.on_event(event, ctx);
    }
}
