//! Sinks made of what an application already has: a sink shared through an
//! [`Arc`], boxed (`Box<dyn LineSink>`, chosen at run time) or in a
//! `static`, each forwarding every [`LineSink`] method to the sink it
//! holds; and a closure ([`sink_fn`]), which is `accept`, with the defaults
//! for the rest.

use std::sync::Arc;

use super::{LineEvent, LineSink, Refusal};

/// A shared sink: one sink behind several layers (or kept by the
/// application to read its counters), each call forwarded to `T`.
///
/// ```
/// use std::sync::Arc;
/// use spanline_core::{LineLayer, LineSink, Schema};
/// let sink = Arc::new(spanline_core::sink_fn(|_line: &[u8], _event: &spanline_core::LineEvent<'_>| {}));
/// let a = LineLayer::new(Schema::default(), Arc::clone(&sink));
/// let b = LineLayer::new(Schema::default(), sink);
/// # let _ = (a, b);
/// ```
impl<T: LineSink + ?Sized> LineSink for Arc<T> {
    fn ready(&self, event: &LineEvent<'_>) -> bool {
        (**self).ready(event)
    }
    fn accept(&self, line: &[u8], event: &LineEvent<'_>) {
        (**self).accept(line, event);
    }
    fn max_line(&self) -> usize {
        (**self).max_line()
    }
    fn refused(&self, refusal: Refusal, event: &LineEvent<'_>) {
        (**self).refused(refusal, event);
    }
}

/// A boxed sink, `Box<dyn LineSink>` among them: a sink chosen at run time
/// (by configuration) behind one layer type, each call forwarded to `T`.
///
/// ```
/// use spanline_core::{LineEvent, LineLayer, LineSink, Schema};
/// let quiet = true;
/// let sink: Box<dyn LineSink> = if quiet {
///     Box::new(spanline_core::sink_fn(|_: &[u8], _: &LineEvent<'_>| {}))
/// } else {
///     Box::new(spanline_core::sink_fn(|line: &[u8], _: &LineEvent<'_>| {
///         let _ = std::io::Write::write_all(&mut std::io::stderr(), line);
///     }))
/// };
/// let layer: LineLayer<Box<dyn LineSink>> = LineLayer::new(Schema::default(), sink);
/// # let _ = layer;
/// ```
impl<T: LineSink + ?Sized> LineSink for Box<T> {
    fn ready(&self, event: &LineEvent<'_>) -> bool {
        (**self).ready(event)
    }
    fn accept(&self, line: &[u8], event: &LineEvent<'_>) {
        (**self).accept(line, event);
    }
    fn max_line(&self) -> usize {
        (**self).max_line()
    }
    fn refused(&self, refusal: Refusal, event: &LineEvent<'_>) {
        (**self).refused(refusal, event);
    }
}

/// A sink in a `static` (or leaked), each call forwarded to `T`. Only
/// `&'static T`: a sink is `'static`, since its layer may end up in the
/// global subscriber, which lives until the process exits; share a
/// shorter-lived sink through an [`Arc`].
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use spanline_core::{LineEvent, LineLayer, LineSink, Schema};
///
/// static LINES: Counter = Counter(AtomicUsize::new(0));
/// struct Counter(AtomicUsize);
/// impl LineSink for Counter {
///     fn accept(&self, _line: &[u8], _event: &LineEvent<'_>) {
///         self.0.fetch_add(1, Ordering::Relaxed);
///     }
/// }
/// let layer = LineLayer::new(Schema::default(), &LINES);
/// # let _ = layer;
/// ```
impl<T: LineSink + ?Sized> LineSink for &'static T {
    fn ready(&self, event: &LineEvent<'_>) -> bool {
        (**self).ready(event)
    }
    fn accept(&self, line: &[u8], event: &LineEvent<'_>) {
        (**self).accept(line, event);
    }
    fn max_line(&self) -> usize {
        (**self).max_line()
    }
    fn refused(&self, refusal: Refusal, event: &LineEvent<'_>) {
        (**self).refused(refusal, event);
    }
}

/// A sink made of a closure: `f` is [`LineSink::accept`], called with each
/// line (one JSON object and its `\n`) and its event; the other methods
/// keep their defaults (every event ready, no length limit). For a sink
/// that needs them, implement [`LineSink`] on a type of your own. Named
/// after tower's `service_fn`.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
/// use tracing_subscriber::prelude::*;
/// use spanline_core::{sink_fn, ContextLayer, LineEvent, LineLayer, Schema};
///
/// let errors = Arc::new(AtomicUsize::new(0));
/// let count = Arc::clone(&errors);
/// let sink = sink_fn(move |_line: &[u8], event: &LineEvent<'_>| {
///     if *event.metadata().level() == tracing::Level::ERROR {
///         count.fetch_add(1, Ordering::Relaxed);
///     }
/// });
/// let subscriber = tracing_subscriber::registry()
///     .with(ContextLayer::new())
///     .with(LineLayer::new(Schema::default(), sink));
/// tracing::subscriber::with_default(subscriber, || {
///     tracing::info!("fine");
///     tracing::error!("broken");
/// });
/// assert_eq!(errors.load(Ordering::Relaxed), 1);
/// ```
pub fn sink_fn<F>(f: F) -> SinkFn<F>
where
    F: Fn(&[u8], &LineEvent<'_>) + Send + Sync + 'static,
{
    SinkFn { f }
}

/// The [`LineSink`] made by [`sink_fn`]: the closure is its `accept`.
///
/// ```
/// use spanline_core::{sink_fn, LineEvent, LineLayer, Schema, SinkFn};
/// fn stderr_layer() -> LineLayer<SinkFn<impl Fn(&[u8], &LineEvent<'_>) + Send + Sync>> {
///     LineLayer::new(Schema::default(), sink_fn(|line: &[u8], _: &LineEvent<'_>| {
///         let _ = std::io::Write::write_all(&mut std::io::stderr(), line);
///     }))
/// }
/// # let _ = stderr_layer();
/// ```
#[derive(Clone, Copy)]
pub struct SinkFn<F> {
    f: F,
}

impl<F> std::fmt::Debug for SinkFn<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkFn").finish_non_exhaustive()
    }
}

impl<F> LineSink for SinkFn<F>
where
    F: Fn(&[u8], &LineEvent<'_>) + Send + Sync + 'static,
{
    fn accept(&self, line: &[u8], event: &LineEvent<'_>) {
        (self.f)(line, event);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    use tracing_subscriber::prelude::*;

    use super::*;
    use crate::{ContextLayer, LineLayer, Schema};

    /// Counts what it is asked and offered; `max` is its longest line.
    #[derive(Debug, Default)]
    struct Counting {
        ready: AtomicUsize,
        accepted: AtomicUsize,
        refused: Mutex<Vec<Refusal>>,
        max: usize,
    }

    impl Counting {
        fn max(max: usize) -> Self {
            Self {
                max,
                ..Self::default()
            }
        }
        fn accepted(&self) -> usize {
            self.accepted.load(Ordering::Relaxed)
        }
    }

    impl LineSink for Counting {
        fn ready(&self, _event: &LineEvent<'_>) -> bool {
            self.ready.fetch_add(1, Ordering::Relaxed);
            true
        }
        fn accept(&self, _line: &[u8], _event: &LineEvent<'_>) {
            self.accepted.fetch_add(1, Ordering::Relaxed);
        }
        fn max_line(&self) -> usize {
            self.max
        }
        fn refused(&self, refusal: Refusal, _event: &LineEvent<'_>) {
            self.refused.lock().unwrap().push(refusal);
        }
    }

    /// Logs a short line and one of 200 bytes and more through `layer`.
    fn log_short_and_long<K: LineSink>(layer: LineLayer<K>) {
        let subscriber = tracing_subscriber::registry()
            .with(ContextLayer::new())
            .with(layer);
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("short");
            tracing::info!(blob = "x".repeat(200), "long");
        });
    }

    #[test]
    fn an_arc_shares_one_sink_between_two_layers_and_forwards_every_method() {
        let sink = Arc::new(Counting::max(150));
        let schema = Schema::default();
        let first = LineLayer::new(schema.clone(), Arc::clone(&sink));
        let second = LineLayer::new(schema, Arc::clone(&sink));
        let (first_stats, second_stats) = (first.stats(), second.stats());
        let subscriber = tracing_subscriber::registry()
            .with(ContextLayer::new())
            .with(first)
            .with(second);
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("short");
            tracing::info!(blob = "x".repeat(200), "long");
        });
        assert_eq!(sink.ready.load(Ordering::Relaxed), 4, "2 events x 2 layers");
        assert_eq!(sink.accepted(), 2, "the short line, once per layer");
        assert_eq!(first_stats.oversize() + second_stats.oversize(), 2);
        let refused = sink.refused.lock().unwrap();
        assert_eq!(refused.len(), 2, "the long line, refused by each layer");
        assert!(refused
            .iter()
            .all(|r| matches!(r, Refusal::Oversize { len } if *len > 150)));
    }

    #[test]
    fn a_boxed_dyn_sink_forwards_every_method() {
        let counting: &'static Counting = Box::leak(Box::new(Counting::max(150)));
        let sink: Box<dyn LineSink> = Box::new(counting);
        let layer: LineLayer<Box<dyn LineSink>> = LineLayer::new(Schema::default(), sink);
        let stats = layer.stats();
        log_short_and_long(layer);
        assert_eq!(counting.ready.load(Ordering::Relaxed), 2);
        assert_eq!(counting.accepted(), 1);
        assert_eq!(stats.oversize(), 1);
        assert_eq!(counting.refused.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_static_reference_and_a_box_of_a_sized_sink_are_sinks() {
        static STATIC: Counting = Counting {
            ready: AtomicUsize::new(0),
            accepted: AtomicUsize::new(0),
            refused: Mutex::new(Vec::new()),
            max: usize::MAX,
        };
        log_short_and_long(LineLayer::new(Schema::default(), &STATIC));
        assert_eq!(STATIC.accepted(), 2);
        let shared = Arc::new(Counting::max(150));
        let layer = LineLayer::new(Schema::default(), Box::new(Arc::clone(&shared)));
        let stats = layer.stats();
        log_short_and_long(layer);
        assert_eq!((shared.accepted(), stats.oversize()), (1, 1));
    }

    #[test]
    fn a_closure_counts_lines_with_the_defaults_for_the_rest() {
        let lines = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&lines);
        let bytes = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&bytes);
        let sink = sink_fn(move |line, event| {
            count.fetch_add(1, Ordering::Relaxed);
            assert_eq!(line.last(), Some(&b'\n'));
            assert_eq!(*event.metadata().level(), tracing::Level::INFO);
            seen.lock().unwrap().extend_from_slice(line);
        });
        assert_eq!(sink.max_line(), usize::MAX, "no limit");
        let layer = LineLayer::new(Schema::default(), sink);
        let stats = layer.stats();
        log_short_and_long(layer);
        assert_eq!(
            lines.load(Ordering::Relaxed),
            2,
            "every line, long ones too"
        );
        assert_eq!(stats.oversize(), 0);
        let text = String::from_utf8(bytes.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(text.contains("short") && text.contains(&"x".repeat(200)));
        assert!(format!("{:?}", sink_fn(|_, _| {})).starts_with("SinkFn"));
    }
}
