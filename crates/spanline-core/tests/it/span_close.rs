//! Span-close lines (`ContextLayer::span_close_lines`): one line per closed
//! span, with its duration, its context and its level and target, filtered
//! like the span's other lines; off by default.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value};
use spanline_core::{ContextLayer, LineEvent, LineLayer, LineSink, Preset, Schema};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;

#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<Map<String, Value>>>>);

impl LineSink for Lines {
    fn accept(&self, line: &[u8], _event: &LineEvent<'_>) {
        let parsed: Map<String, Value> = serde_json::from_slice(line).expect("one JSON object");
        self.0.lock().unwrap().push(parsed);
    }
}

fn run(context: ContextLayer<LevelFilter>, f: impl FnOnce()) -> Vec<Map<String, Value>> {
    let lines = Lines::default();
    let subscriber = tracing_subscriber::registry()
        .with(context)
        .with(LineLayer::new(Schema::from(Preset::Flat), lines.clone()));
    tracing::subscriber::with_default(subscriber, f);
    let out = lines.0.lock().unwrap().clone();
    out
}

fn closes(lines: &[Map<String, Value>]) -> Vec<&Map<String, Value>> {
    lines
        .iter()
        .filter(|l| l["message"] == "span closed")
        .collect()
}

fn ms(line: &Map<String, Value>, key: &str) -> f64 {
    line[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is a number: {line:?}"))
}

#[test]
fn off_by_default() {
    let lines = run(ContextLayer::new().filter(LevelFilter::TRACE), || {
        let _s = tracing::info_span!("work", request_id = "r-1").entered();
        tracing::info!("inside");
    });
    assert_eq!(lines.len(), 1, "{lines:?}");
}

#[test]
fn each_span_closes_with_its_name_context_level_and_times() {
    let on = ContextLayer::new()
        .span_close_lines(true)
        .filter(LevelFilter::TRACE);
    let lines = run(on, || {
        let request = tracing::info_span!("request", request_id = "r-1");
        let _request = request.enter();
        {
            let query = tracing::debug_span!("query", table = "users");
            query.in_scope(|| std::thread::sleep(Duration::from_millis(20)));
            // Idle: alive but not entered.
            std::thread::sleep(Duration::from_millis(20));
        }
        tracing::info!("after the query");
    });
    let closed = closes(&lines);
    assert_eq!(closed.len(), 2, "{lines:?}");
    // The inner span closes first; its line carries its own and its parent's fields.
    let query = closed[0];
    assert_eq!(query["span"], "query");
    assert_eq!(query["level"], "DEBUG");
    assert_eq!(query["target"], module_path!());
    assert_eq!(query["table"], "users");
    assert_eq!(query["request_id"], "r-1");
    assert!(ms(query, "busy_ms") >= 20.0, "{query:?}");
    assert!(ms(query, "idle_ms") >= 20.0, "{query:?}");
    let sum = ms(query, "busy_ms") + ms(query, "idle_ms");
    assert!((ms(query, "duration_ms") - sum).abs() < 0.002, "{query:?}");
    let request = closed[1];
    assert_eq!(request["span"], "request");
    assert_eq!(request["level"], "INFO");
    assert!(ms(request, "duration_ms") >= ms(query, "duration_ms"));
    assert!(!request.contains_key("table"), "{request:?}");
    // In order: the query's close line comes before the event after it.
    let order: Vec<_> = lines
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["span closed", "after the query", "span closed"]);
}

#[test]
fn a_context_span_below_the_filter_keeps_its_context_but_writes_no_close_line() {
    let on = ContextLayer::new()
        .span_close_lines(true)
        .filter(LevelFilter::WARN);
    let lines = run(on, || {
        let _request = tracing::info_span!("request", request_id = "r-2").entered();
        let _slow = tracing::warn_span!("slow_call", attempt = 2).entered();
        tracing::warn!("upstream slow");
    });
    let closed = closes(&lines);
    assert_eq!(closed.len(), 1, "{lines:?}");
    assert_eq!(closed[0]["span"], "slow_call");
    assert_eq!(closed[0]["request_id"], "r-2");
    assert_eq!(lines.len(), 2, "{lines:?}");
}

#[test]
fn a_span_entered_on_several_threads_is_busy_while_any_holds_it() {
    let on = ContextLayer::new()
        .span_close_lines(true)
        .filter(LevelFilter::TRACE);
    let lines = run(on, || {
        let span = tracing::info_span!("shared", job_id = "j-1");
        let dispatch = tracing::dispatcher::get_default(Clone::clone);
        std::thread::scope(|s| {
            for _ in 0..2 {
                let (span, dispatch) = (span.clone(), dispatch.clone());
                s.spawn(move || {
                    tracing::dispatcher::with_default(&dispatch, || {
                        span.in_scope(|| std::thread::sleep(Duration::from_millis(20)));
                    });
                });
            }
        });
    });
    let closed = closes(&lines);
    assert_eq!(
        closed.len(),
        1,
        "one line for the span, not one per handle: {lines:?}"
    );
    assert!(ms(closed[0], "busy_ms") >= 20.0, "{lines:?}");
    assert!(ms(closed[0], "busy_ms") <= ms(closed[0], "duration_ms"));
    assert_eq!(closed[0]["job_id"], "j-1");
}

#[test]
fn a_deep_tree_closes_every_span_once() {
    let on = ContextLayer::new()
        .span_close_lines(true)
        .filter(LevelFilter::TRACE);
    let lines = run(on, || {
        fn nest(depth: usize) {
            if depth == 0 {
                return tracing::info!("leaf");
            }
            let _s = tracing::info_span!("level", depth).entered();
            nest(depth - 1);
        }
        nest(64);
    });
    let closed = closes(&lines);
    assert_eq!(closed.len(), 64);
    let depths: Vec<_> = closed
        .iter()
        .map(|l| l["depth"].as_u64().unwrap())
        .collect();
    assert_eq!(
        depths,
        (1..=64).collect::<Vec<_>>(),
        "innermost first, each with its own depth"
    );
}
