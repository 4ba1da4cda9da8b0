//! Span-close lines (opt-in): one line when a span closes, with how long it
//! lived, what tracing-subscriber's `FmtSpan::CLOSE` gives.
//!
//! The [`ContextLayer`](crate::ContextLayer) times each span (created,
//! entered, exited) and, when the span closes, dispatches one event through
//! the whole subscriber: an ordinary event to every layer, so every sink
//! writes it as it writes any line. The event is the span's child, has the span's level and target
//! (so it follows `RUST_LOG` like the span's own lines) and these fields:
//!
//! | key | value |
//! |---|---|
//! | `message` | `"span closed"` |
//! | `span` | the span's name |
//! | `duration_ms` | from creation to close, in milliseconds (`FmtSpan`'s `time.busy` + `time.idle`) |
//! | `busy_ms` | the time the span was entered on some thread (`time.busy`) |
//! | `idle_ms` | the rest (`time.idle`) |
//!
//! Times are wall-clock milliseconds with microsecond precision.

use std::time::{Duration, Instant};

use tracing_core::field::{FieldSet, Value};
use tracing_core::span::Id;
use tracing_core::{Dispatch, Event, Metadata};

/// The fields of a span-close line, in order.
pub(crate) const FIELDS: &[&str] = &["message", "span", "duration_ms", "busy_ms", "idle_ms"];

/// The message of a span-close line.
pub(crate) const MESSAGE: &str = "span closed";

/// How long a span has lived and been entered, kept in its extensions.
#[derive(Debug)]
pub(crate) struct Timing {
    opened: Instant,
    busy: Duration,
    /// Entries not yet exited (a span may be entered on several threads).
    entered: u32,
    since: Instant,
}

impl Timing {
    pub(crate) fn new() -> Self {
        let now = Instant::now();
        Self {
            opened: now,
            busy: Duration::ZERO,
            entered: 0,
            since: now,
        }
    }

    pub(crate) fn enter(&mut self) {
        if self.entered == 0 {
            self.since = Instant::now();
        }
        self.entered = self.entered.saturating_add(1);
    }

    pub(crate) fn exit(&mut self) {
        self.entered = self.entered.saturating_sub(1);
        if self.entered == 0 {
            self.busy += self.since.elapsed();
        }
    }

    /// (duration, busy, idle) at close.
    fn at_close(&self) -> (Duration, Duration, Duration) {
        let duration = self.opened.elapsed();
        let mut busy = self.busy;
        if self.entered > 0 {
            busy += self.since.elapsed();
        }
        let busy = busy.min(duration);
        (duration, busy, duration - busy)
    }
}

/// Milliseconds with microsecond precision.
fn millis(d: Duration) -> f64 {
    // Exact below 2^53 µs (285 years).
    d.as_micros() as f64 / 1000.0
}

/// Dispatches the close line of span `id` (with `meta`) through `dispatch`,
/// when the subscriber's filters let a line of its level and target through.
/// The span must still exist: called from the layer's `on_close`.
pub(crate) fn emit(
    dispatch: &Dispatch,
    id: &Id,
    meta: &'static Metadata<'static>,
    timing: &Timing,
) {
    // A span may exist below a filter in front of the registry (a forwarded
    // child's spans are recreated whatever the parent's filter says): its
    // close line is a line like any other, which that filter decides on.
    if !dispatch.enabled(meta) {
        return;
    }
    let (duration, busy, idle) = timing.at_close();
    // A field set of our names on the span's callsite, as tracing-subscriber
    // builds its span events: the event has the span's level and target.
    let fields = FieldSet::new(FIELDS, meta.callsite());
    let (duration, busy, idle) = (millis(duration), millis(busy), millis(idle));
    let name = meta.name();
    let values: [Option<&dyn Value>; 5] = [
        Some(&MESSAGE),
        Some(&name),
        Some(&duration),
        Some(&busy),
        Some(&idle),
    ];
    let values = fields.value_set_all(&values);
    dispatch.event(&Event::new_child_of(id.clone(), meta, &values));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_entries_count_once_and_idle_is_the_rest() {
        let mut t = Timing::new();
        t.enter();
        t.enter(); // entered on a second thread at once
        std::thread::sleep(Duration::from_millis(5));
        t.exit();
        t.exit();
        std::thread::sleep(Duration::from_millis(5));
        let (duration, busy, idle) = t.at_close();
        assert!(busy >= Duration::from_millis(5), "{busy:?}");
        assert!(idle >= Duration::from_millis(5), "{idle:?}");
        assert_eq!(duration, busy + idle);
    }

    #[test]
    fn millis_keep_microseconds() {
        assert_eq!(millis(Duration::from_micros(1_234_567)), 1234.567);
    }
}
