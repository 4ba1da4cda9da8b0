//! Context follows work onto tasks, blocking threads, threads and rayon, and
//! detached work does not keep the request's span open.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::sync::{Arc, Mutex};

use rayon::prelude::*;
use serde_json::{Map, Value};
use spanline_core::ContextLayer;
use spanline_json::JsonLayer;
use spanline_testkit::Capture;
use tracing::{field, info, info_span, Instrument};
use tracing_subscriber::layer::Context;
use tracing_subscriber::prelude::*;
use tracing_subscriber::Layer;

/// Records the names of closed spans, in order.
#[derive(Clone, Default)]
struct Closes(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>> Layer<S>
    for Closes
{
    fn on_close(&self, id: tracing::span::Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(&id) {
            self.0.lock().unwrap().push(span.name().to_string());
        }
    }
}

fn dispatch(capture: &Capture, closes: &Closes) -> tracing::Dispatch {
    tracing::Dispatch::new(
        tracing_subscriber::registry()
            .with(ContextLayer::new())
            .with(JsonLayer::builder().with_writer(capture.clone()).build())
            .with(closes.clone()),
    )
}

fn by_message(lines: &[Map<String, Value>], message: &str) -> Map<String, Value> {
    lines
        .iter()
        .find(|l| l["message"] == message)
        .unwrap_or_else(|| panic!("no line {message:?} in {lines:?}"))
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_blocking_threads_and_rayon_keep_the_context() {
    let capture = Capture::new();
    let closes = Closes::default();
    let dispatch = dispatch(&capture, &closes);
    let _guard = tracing::dispatcher::set_default(&dispatch);

    let request = info_span!("request", request_id = "r-1", user_id = field::Empty);
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
    let (task, blocking, thread) = async {
        // Spawned before user_id is known: the late value must still reach it.
        let task = spanline_context::spawn(async move {
            ready_rx.await.unwrap();
            info!("from task");
        });
        let blocking = spanline_context::spawn_blocking(|| info!("from spawn_blocking"));
        let thread = spanline_context::thread::spawn(|| info!("from thread"));
        spanline_context::set("user_id", 42u64).unwrap();
        ready_tx.send(()).unwrap();
        let captured = spanline_context::capture();
        let rayon_ids: Vec<()> = (0..8)
            .into_par_iter()
            .map(captured.wrap_fn(|i| info!(i, "from rayon")))
            .collect();
        assert_eq!(rayon_ids.len(), 8);
        (task, blocking, thread)
    }
    .instrument(request.clone())
    .await;
    task.await.unwrap();
    blocking.await.unwrap();
    thread.join().unwrap();
    drop(request);

    let lines = capture.json_lines();
    for message in [
        "from task",
        "from spawn_blocking",
        "from thread",
        "from rayon",
    ] {
        let line = by_message(&lines, message);
        assert_eq!(line["request_id"], "r-1", "{message}: {line:?}");
    }
    assert_eq!(
        by_message(&lines, "from task")["user_id"],
        42,
        "late value reaches an already spawned task"
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l["message"] == "from rayon")
            .count(),
        8
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detached_work_does_not_keep_the_request_open() {
    let capture = Capture::new();
    let closes = Closes::default();
    let dispatch = dispatch(&capture, &closes);
    let _guard = tracing::dispatcher::set_default(&dispatch);

    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let handle = {
        let request = info_span!("request", request_id = "r-2");
        let _entered = request.enter();
        spanline_context::spawn_detached(async move {
            go_rx.await.unwrap();
            info!("from detached");
        })
    };
    // The request is over: its span closed although the detached work runs on.
    assert_eq!(*closes.0.lock().unwrap(), ["request"]);
    go_tx.send(()).unwrap();
    handle.await.unwrap();
    let line = by_message(&capture.json_lines(), "from detached");
    assert_eq!(line["request_id"], "r-2");
    assert!(closes.0.lock().unwrap().contains(&"detached".to_string()));
}

#[test]
fn current_and_set_read_and_bind() {
    let capture = Capture::new();
    let closes = Closes::default();
    tracing::dispatcher::with_default(&dispatch(&capture, &closes), || {
        assert!(spanline_context::current().is_empty());
        let _req = info_span!("request", request_id = "r-3").entered();
        assert_eq!(
            spanline_context::current()
                .get("request_id")
                .unwrap()
                .to_string(),
            "r-3"
        );
        spanline_context::set("tenant", "acme").unwrap();
        info!("bound");
    });
    assert_eq!(capture.json_lines()[0]["tenant"], "acme");
}
