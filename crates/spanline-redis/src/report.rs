//! The drop report: a WARN line encoded with the layer's own schema, so a
//! live view reads it like any other line (structlog keys under the
//! structlog preset, ECS keys under ECS, the service and static fields).
//!
//! The line is a real `tracing` event, dispatched on the worker's thread to
//! a private subscriber that encodes it and nothing else.

use std::sync::{Arc, Mutex};

use spanline_core::Schema;
use tracing_core::subscriber::Interest;
use tracing_core::{Dispatch, Event, LevelFilter, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

use crate::RedisStats;

/// The drop report's target.
pub(crate) const TARGET: &str = "spanline::redis";

/// Encodes drop reports.
pub(crate) struct Report {
    dispatch: Dispatch,
    line: Arc<Mutex<Vec<u8>>>,
}

impl std::fmt::Debug for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Report").finish_non_exhaustive()
    }
}

/// The private subscriber's one layer: keeps the encoded line.
struct Encode {
    schema: Schema,
    line: Arc<Mutex<Vec<u8>>>,
}

impl<S> Layer<S> for Encode
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    // Only the report's own callsite, and nothing below WARN: this
    // subscriber must not lower the application's level ceiling or make any
    // other callsite more expensive.
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if meta.target() == TARGET {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, meta: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        meta.target() == TARGET
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::WARN)
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if let Ok(mut line) = self.line.lock() {
            line.clear();
            let at = self.schema.clock().now();
            self.schema.encode_event(event, &ctx, at, &mut line);
        }
    }
}

impl Report {
    pub(crate) fn new(schema: Schema) -> Self {
        let line = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry().with(Encode {
            schema,
            line: line.clone(),
        });
        Self {
            dispatch: Dispatch::new(subscriber),
            line,
        }
    }

    /// The report line (without its newline): `dropped` since the last
    /// report (`dropped_total` minus `reported`), and the counts by reason.
    pub(crate) fn drops(&self, stats: &RedisStats, reported: u64) -> Vec<u8> {
        let total = stats.dropped();
        tracing_core::dispatcher::with_default(&self.dispatch, || {
            tracing::warn!(
                target: "spanline::redis",
                dropped = total.saturating_sub(reported),
                dropped_total = total,
                queue_full = stats.dropped_queue_full(),
                evicted = stats.dropped_evicted(),
                block_timeout = stats.dropped_block_timeout(),
                oversize = stats.dropped_oversize(),
                shutdown = stats.dropped_shutdown(),
                reentrant = stats.dropped_reentrant(),
                failed = stats.failed(),
                "spanline-redis dropped log lines"
            );
        });
        let mut line = self
            .line
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default();
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        line
    }
}
