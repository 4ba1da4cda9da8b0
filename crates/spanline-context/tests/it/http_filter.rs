//! Under `RUST_LOG=warn`, WARN lines of a request still carry its
//! `request_id` and the user bound late: real HTTP requests through the
//! middleware, with the filter on the `ContextLayer` (the documented
//! composition) and, the older way, a global `EnvFilter` with
//! `add_request_directive`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::time::Duration;

use axum::routing::get;
use axum::Router;
use serde_json::{Map, Value};
use spanline_context::{add_request_directive, RequestContextLayer};
use spanline_core::ContextLayer;
use spanline_json::JsonLayer;
use spanline_testkit::Capture;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

async fn handler() -> &'static str {
    tracing::info!("hidden by RUST_LOG=warn");
    spanline_context::set("user_id", 42u64).unwrap();
    tracing::warn!("slow upstream");
    "ok"
}

/// Serves one request on this thread's runtime (a current-thread runtime,
/// so the thread's default subscriber sees every line) and returns the lines.
async fn one_request(capture: &Capture) -> Vec<Map<String, Value>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/work", get(handler))
        .layer(RequestContextLayer::new());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /work HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&reply).starts_with("HTTP/1.1 200"));
    server.abort();
    capture.json_lines()
}

fn messages(lines: &[Map<String, Value>]) -> Vec<&str> {
    lines
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect()
}

#[track_caller]
fn assert_request_context(line: &Map<String, Value>) {
    assert!(
        line["request_id"].as_str().is_some_and(|id| id.len() == 36),
        "{line:?}"
    );
    assert_eq!(line["route"], "/work");
    assert_eq!(line["user_id"], 42, "bound late, typed: {line:?}");
}

#[tokio::test]
async fn the_filter_on_the_context_layer_keeps_the_request_context() {
    let capture = Capture::new();
    let subscriber = tracing_subscriber::registry()
        .with(ContextLayer::new().filter(EnvFilter::new("warn")))
        .with(JsonLayer::builder().with_writer(capture.clone()).build());
    let _default = tracing::subscriber::set_default(subscriber);
    let lines = one_request(&capture).await;
    // RUST_LOG decides the lines: the INFO ones, "request finished" too, are
    // not written; the WARN line has the request's context.
    assert_eq!(messages(&lines), ["slow upstream"]);
    assert_request_context(&lines[0]);
}

#[tokio::test]
async fn a_global_env_filter_with_the_request_directive_keeps_it_too() {
    let capture = Capture::new();
    let subscriber = tracing_subscriber::registry()
        .with(add_request_directive(EnvFilter::new("warn")))
        .with(ContextLayer::new())
        .with(JsonLayer::builder().with_writer(capture.clone()).build());
    let _default = tracing::subscriber::set_default(subscriber);
    let lines = one_request(&capture).await;
    assert_eq!(messages(&lines), ["slow upstream", "request finished"]);
    assert_request_context(&lines[0]);
    assert_eq!(lines[0]["request_id"], lines[1]["request_id"]);
}
