//! `Forwarder::spawn_async`: real child processes (this test binary, run
//! again as the child in a role), read by a task of a tokio runtime.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Map, Value};
use spanline_core::ContextLayer;
use spanline_json::JsonLayer;
use spanline_pipe::{ForwardLayer, Forwarder};
use spanline_testkit::Capture;
use tracing::Instrument;
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

const ROLE: &str = "SPANLINE_PIPE_TOKIO_ROLE";
const FLOOD: u64 = 20_000;

/// Runs as the child when `SPANLINE_PIPE_TOKIO_ROLE` is set; a no-op test
/// otherwise.
#[test]
fn child() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    if role == "leak" {
        // No ForwardLayer: descriptor 3 stays inheritable, and a long-lived
        // descendant keeps the pipe open after this process exits.
        let _ = std::process::Command::new("sleep")
            .arg("3")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn();
        return;
    }
    tracing_subscriber::registry()
        .with(ForwardLayer::from_env())
        .init();
    let _job = tracing::info_span!("job", job_id = "j-7").entered();
    match role.as_str() {
        "hello" => {
            tracing::debug!(target: "async_child", "hidden by the parent's filter");
            tracing::info!(target: "async_child", items = 3u64, "hello from the child");
        }
        "flood" => (0..FLOOD).for_each(|i| tracing::info!(i, "flood")),
        "fail" => {
            tracing::error!("giving up");
            std::process::exit(3);
        }
        other => panic!("unknown role {other}"),
    }
}

/// Runs the child in `role` with `spawn_async` under a `launch` span, in a
/// JSON-capturing subscriber filtered by `info`; returns its lines.
async fn run(role: &str) -> (Vec<Map<String, Value>>, std::process::ExitStatus) {
    let capture = Capture::new();
    let dispatch = tracing::Dispatch::new(
        tracing_subscriber::registry()
            .with(EnvFilter::new("info"))
            .with(ContextLayer::new())
            .with(JsonLayer::builder().with_writer(capture.clone()).build()),
    );
    let _guard = tracing::dispatcher::set_default(&dispatch);
    let mut cmd = tokio::process::Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "tokio_spawn::child", "--nocapture", "--quiet"])
        .env(ROLE, role)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let status = async {
        Forwarder::new(role)
            .leak_timeout(Duration::from_millis(300))
            .spawn_async(&mut cmd)
            .unwrap()
            .wait()
            .await
            .unwrap()
    }
    .instrument(tracing::info_span!("launch", worker = role))
    .await;
    (capture.json_lines(), status)
}

fn line<'a>(lines: &'a [Map<String, Value>], message: &str) -> &'a Map<String, Value> {
    lines
        .iter()
        .find(|l| l["message"] == message)
        .unwrap_or_else(|| panic!("no {message:?} in {lines:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_come_back_filtered_inside_the_launching_span() {
    let (lines, status) = run("hello").await;
    assert!(status.success());
    let messages: Vec<&str> = lines
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages, ["hello from the child", "child exited"]);
    let hello = line(&lines, "hello from the child");
    assert_eq!(hello["target"], "async_child");
    assert_eq!(hello["items"], 3);
    // The context of the launching span, the child span and the child's own.
    assert_eq!(hello["worker"], "hello");
    assert_eq!(hello["name"], "hello");
    assert_eq!(hello["job_id"], "j-7");
    assert!(hello["pid"].as_u64().unwrap() > 0);
}

#[tokio::test(flavor = "current_thread")]
async fn a_flood_loses_nothing_on_a_single_threaded_runtime() {
    let (lines, status) = run("flood").await;
    assert!(status.success());
    let flood: Vec<u64> = lines
        .iter()
        .filter(|l| l["message"] == "flood")
        .map(|l| l["i"].as_u64().unwrap())
        .collect();
    assert_eq!(flood.len() as u64, FLOOD);
    assert!(flood.iter().copied().eq(0..FLOOD), "in order, none twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_and_leaks_are_reported() {
    let (lines, status) = run("fail").await;
    assert_eq!(status.code(), Some(3));
    assert_eq!(line(&lines, "giving up")["level"], "ERROR");
    let failed = line(&lines, "child failed");
    assert_eq!(
        (&failed["level"], &failed["code"]),
        (&"ERROR".into(), &3.into())
    );

    let (lines, status) = run("leak").await;
    assert!(status.success());
    let leak = line(
        &lines,
        "the child exited but its descendants still hold the log pipe open",
    );
    assert_eq!(
        (&leak["level"], &leak["waited_ms"]),
        (&"WARN".into(), &300.into())
    );
}

#[test]
fn outside_a_runtime_spawn_async_is_an_error_not_a_panic() {
    let mut cmd = tokio::process::Command::new("true");
    let err = Forwarder::new("t").spawn_async(&mut cmd).unwrap_err();
    assert!(err.to_string().contains("runtime"), "{err}");
}
