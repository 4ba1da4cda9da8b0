//! Waiting for a forwarded child from async code.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::process::{Command, Stdio};

use spanline_core::ContextLayer;
use spanline_json::JsonLayer;
use spanline_pipe::{ForwardLayer, Forwarder};
use spanline_testkit::Capture;
use tracing_subscriber::prelude::*;

#[test]
fn child() {
    if std::env::var("SPANLINE_PIPE_TOKIO_CHILD").is_ok() {
        tracing_subscriber::registry()
            .with(ForwardLayer::from_env())
            .init();
        tracing::info!(target: "async_child", "hello from the child");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_async_reports_the_child() {
    let capture = Capture::new();
    let dispatch = tracing::Dispatch::new(
        tracing_subscriber::registry()
            .with(ContextLayer::new())
            .with(JsonLayer::builder().writer(capture.clone()).build()),
    );
    let _guard = tracing::dispatcher::set_default(&dispatch);
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "child", "--nocapture", "--quiet"])
        .env("SPANLINE_PIPE_TOKIO_CHILD", "1")
        .stdout(Stdio::null());
    let status = Forwarder::new("async")
        .spawn(&mut cmd)
        .unwrap()
        .wait_async()
        .await
        .unwrap();
    assert!(status.success());
    let messages: Vec<String> = capture
        .json_lines()
        .iter()
        .map(|l| l["message"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(messages, ["hello from the child", "child exited"]);
}
