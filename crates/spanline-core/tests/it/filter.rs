//! The filter on the `ContextLayer`: it decides which lines are written,
//! never what context a written line carries.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::sync::{Arc, Mutex};

use spanline_core::{ContextLayer, CtxView};
use tracing::{debug, debug_span, error, info, info_span, warn};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::Context;
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, Layer};

/// One line: its message and its context, as `(key, JSON value)` pairs.
type Line = (String, Vec<(String, String)>);

/// An output layer: records each event's message and the context it sees.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<Line>>>);

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Lines {
    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                if f.name() == "message" {
                    self.0 = format!("{v:?}");
                }
            }
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        let context = CtxView::of_event(&ctx, event)
            .map(|view| {
                view.iter()
                    .map(|(k, v)| (k.into_owned(), v.as_json().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        self.0.lock().unwrap().push((message.0, context));
    }
}

impl Lines {
    fn take(&self) -> Vec<Line> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
    fn messages(&self) -> Vec<String> {
        self.take().into_iter().map(|(m, _)| m).collect()
    }
}

fn keys(context: &[(String, String)]) -> Vec<&str> {
    context.iter().map(|(k, _)| k.as_str()).collect()
}

fn run<F>(layer: ContextLayer<F>, f: impl FnOnce(&Lines)) -> Lines
where
    F: Layer<tracing_subscriber::Registry> + Send + Sync + 'static,
{
    let lines = Lines::default();
    let subscriber = tracing_subscriber::registry()
        .with(layer)
        .with(lines.clone());
    tracing::subscriber::with_default(subscriber, || f(&lines));
    lines
}

#[test]
fn context_spans_outlive_a_level_filter_and_ordinary_spans_do_not() {
    for level in [LevelFilter::WARN, LevelFilter::ERROR] {
        let lines = run(ContextLayer::new().filter(level), |_| {
            let request = info_span!(
                "request",
                request_id = "r-1",
                route = "/users/{id}",
                user_id = tracing::field::Empty
            );
            let _r = request.enter();
            request.record("user_id", 42);
            let step = debug_span!("step", n = 1);
            assert!(step.is_disabled(), "a debug span follows the filter");
            let _s = step.enter();
            info!("hidden");
            warn!("shown under warn");
            error!("shown under both");
        });
        let got = lines.take();
        let expected = if level == LevelFilter::WARN { 2 } else { 1 };
        assert_eq!(got.len(), expected, "{level}: {got:?}");
        for (message, context) in &got {
            assert_eq!(
                keys(context),
                ["request_id", "route", "user_id"],
                "{level}: {message}: all the context span's fields, the late one too"
            );
            assert_eq!(context[2].1, "42");
        }
    }
}

#[test]
fn spanline_spans_and_spans_at_any_level_with_context_keys_are_kept() {
    let lines = run(ContextLayer::new().filter(LevelFilter::WARN), |_| {
        let _restored =
            tracing::info_span!(target: "spanline::context", parent: None, "restored", task = "t")
                .entered();
        let _job = debug_span!("job", job_id = "build_1").entered();
        let _tenant = tracing::trace_span!("tenant", tenant = "acme").entered();
        warn!("deep");
    });
    let got = lines.take();
    assert_eq!(keys(&got[0].1), ["task", "job_id", "tenant"]);
}

#[test]
fn added_context_keys_keep_their_spans() {
    let plain = run(ContextLayer::new().filter(LevelFilter::WARN), |_| {
        let _launch = debug_span!("launch", batch = "nightly").entered();
        warn!("w");
    });
    assert!(plain.take()[0].1.is_empty());
    let keyed = run(
        ContextLayer::new()
            .context_key("batch")
            .filter(LevelFilter::WARN),
        |_| {
            let _launch = debug_span!("launch", batch = "nightly").entered();
            warn!("w");
        },
    );
    assert_eq!(keyed.take()[0].1, [("batch".into(), "\"nightly\"".into())]);
}

/// A span kept in a struct and entered for each call, as structlog's
/// `bind` / runtime.log's `get_logger(**ctx)`: its fields, and a nested
/// bind's, stay on WARN lines under a WARN filter (spans at INFO and above
/// are context). Failed before: the INFO spans were disabled.
#[test]
fn a_bound_logger_keeps_its_fields_under_a_warn_filter() {
    struct Device {
        log: tracing::Span,
    }
    let lines = run(ContextLayer::new().filter(LevelFilter::WARN), |_| {
        let device = Device {
            log: info_span!("device", device_uid = "dev-1", kind = "smart"),
        };
        warn!(parent: &device.log, "nonexistent device");
        let session = info_span!(parent: &device.log, "session", session = 9);
        warn!(parent: &session, "in a session");
        info!(parent: &session, "hidden");
    });
    let got = lines.take();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(keys(&got[0].1), ["device_uid", "kind"]);
    assert_eq!(keys(&got[1].1), ["device_uid", "kind", "session"]);
    // With the context level off, only context keys keep a span.
    let strict = run(
        ContextLayer::new()
            .context_level(LevelFilter::OFF)
            .filter(LevelFilter::WARN),
        |_| {
            let device = info_span!("device", device_uid = "dev-1");
            warn!(parent: &device, "w");
        },
    );
    assert!(strict.take()[0].1.is_empty());
}

#[test]
fn off_turns_everything_off_context_spans_too() {
    let lines = run(ContextLayer::new().filter(LevelFilter::OFF), |_| {
        let request = info_span!("request", request_id = "r-1");
        assert!(request.is_disabled());
        let _r = request.enter();
        error!("nothing");
    });
    assert!(lines.take().is_empty());
}

#[test]
fn env_filter_directives_pick_the_same_lines_as_a_global_env_filter() {
    const DIRECTIVES: &str = "warn,noisy=error,[request{request_id=r-2}]=debug";
    let work = || {
        for id in ["r-1", "r-2"] {
            let _r = info_span!("request", request_id = id).entered();
            debug!(id, "debug line");
            warn!(target: "noisy", id, "noisy warning");
            error!(target: "noisy", id, "noisy error");
        }
    };
    let ours = run(
        ContextLayer::new().filter(EnvFilter::new(DIRECTIVES)),
        |_| work(),
    );
    let reference = Lines::default();
    let subscriber = tracing_subscriber::registry()
        .with(EnvFilter::new(DIRECTIVES))
        .with(ContextLayer::new())
        .with(reference.clone());
    tracing::subscriber::with_default(subscriber, work);
    let reference: Vec<String> = reference.messages();
    assert!(
        reference.contains(&"debug line".to_string()),
        "{reference:?}"
    );
    assert_eq!(ours.messages(), reference);
}

#[test]
fn a_filtered_out_debug_span_costs_no_span() {
    // Under INFO a debug span with ordinary fields is disabled at its
    // callsite: no span is created, nothing is stored.
    run(ContextLayer::new().filter(LevelFilter::INFO), |_| {
        for i in 0..3 {
            let span = debug_span!("hot", i);
            assert!(span.is_disabled());
        }
        let kept = debug_span!("job", job_id = "j");
        assert!(!kept.is_disabled());
    });
}

#[test]
fn the_filter_level_is_published_for_forwarding_children() {
    run(ContextLayer::new().filter(LevelFilter::WARN), |_| {
        assert_eq!(spanline_core::lines_max_level(), LevelFilter::WARN);
        assert_eq!(
            LevelFilter::current(),
            LevelFilter::TRACE,
            "context spans may have any level"
        );
    });
}
