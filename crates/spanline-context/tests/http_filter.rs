//! Under `RUST_LOG=warn`, WARN lines of a request still carry its
//! `request_id` once `add_request_directive` is applied: real HTTP requests
//! through the middleware, a global `EnvFilter`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::time::Duration;

use axum::routing::get;
use axum::Router;
use spanline_context::{add_request_directive, RequestContextLayer};
use spanline_core::ContextLayer;
use spanline_json::JsonLayer;
use spanline_testkit::Capture;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

async fn handler() -> &'static str {
    tracing::info!("hidden by RUST_LOG=warn");
    tracing::warn!("slow upstream");
    "ok"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warn_lines_keep_request_id_under_rust_log_warn() {
    let capture = Capture::new();
    tracing_subscriber::registry()
        .with(add_request_directive(EnvFilter::new("warn")))
        .with(ContextLayer::new())
        .with(JsonLayer::builder().writer(capture.clone()).build())
        .init();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/work", get(handler))
        .layer(RequestContextLayer::new());
    tokio::spawn(async move { axum::serve(listener, app).await });

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

    let lines = capture.json_lines();
    let messages: Vec<&str> = lines
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages, ["slow upstream", "request finished"]);
    assert!(
        lines[0]["request_id"]
            .as_str()
            .is_some_and(|id| id.len() == 36),
        "{:?}",
        lines[0]
    );
    assert_eq!(lines[0]["route"], "/work");
    assert_eq!(lines[0]["request_id"], lines[1]["request_id"]);
}
