//! The middleware's options over real HTTP requests: skipped paths, the
//! request-id header's name, the finish line's level; and tower-http's
//! `TraceLayer` composed as docs/context.md recommends.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::time::Duration;

use axum::routing::get;
use axum::Router;
use serde_json::{Map, Value};
use spanline_context::RequestContextLayer;
use spanline_core::ContextLayer;
use spanline_json::JsonLayer;
use spanline_testkit::Capture;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing_subscriber::prelude::*;

async fn handler() -> &'static str {
    tracing::info!("working");
    "ok"
}

/// Sends `request` (the head of an HTTP/1.1 request) to `app` served on
/// this thread's runtime; returns the response and the lines logged.
async fn send(app: Router, request: &str, capture: &Capture) -> (String, Vec<Map<String, Value>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut reply))
        .await
        .unwrap()
        .unwrap();
    server.abort();
    (
        String::from_utf8_lossy(&reply).into_owned(),
        capture.json_lines(),
    )
}

fn capture_subscriber(capture: &Capture, filter: &str) -> impl tracing::Subscriber + Send + Sync {
    tracing_subscriber::registry()
        .with(ContextLayer::new().filter(tracing_subscriber::EnvFilter::new(filter)))
        .with(JsonLayer::builder().with_writer(capture.clone()).build())
}

#[tokio::test(flavor = "current_thread")]
async fn skipped_paths_get_no_context_and_no_line() {
    let capture = Capture::new();
    let _default = tracing::subscriber::set_default(capture_subscriber(&capture, "info"));
    let app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/internal/metrics", get(|| async { "ok" }))
        .route("/work", get(handler))
        .layer(
            RequestContextLayer::new()
                .skip_path("/health")
                .skip_path("/internal/*"),
        );
    for path in ["/health", "/internal/metrics"] {
        let (reply, lines) = send(
            app.clone(),
            &format!("GET {path} HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n"),
            &capture,
        )
        .await;
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        assert!(
            !reply.to_ascii_lowercase().contains("x-request-id"),
            "{reply}"
        );
        assert!(lines.is_empty(), "{path}: {lines:?}");
    }
    let (reply, lines) = send(
        app,
        "GET /work HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n",
        &capture,
    )
    .await;
    assert!(
        reply.to_ascii_lowercase().contains("x-request-id"),
        "{reply}"
    );
    let messages: Vec<&str> = lines
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages, ["working", "request finished"]);
}

#[tokio::test(flavor = "current_thread")]
async fn the_request_id_header_and_the_finish_level_are_options() {
    let capture = Capture::new();
    let _default = tracing::subscriber::set_default(capture_subscriber(&capture, "debug"));
    let app = Router::new().route("/work", get(handler)).layer(
        RequestContextLayer::new()
            .trust_incoming_request_id(true)
            .request_id_header(http::HeaderName::from_static("x-correlation-id"))
            .finish_level(tracing::Level::DEBUG),
    );
    let (reply, lines) = send(
        app,
        "GET /work HTTP/1.1\r\nhost: t\r\nx-correlation-id: corr-42\r\nx-request-id: other\r\nconnection: close\r\n\r\n",
        &capture,
    )
    .await;
    assert!(reply.contains("x-correlation-id: corr-42"), "{reply}");
    assert!(!reply.contains("x-request-id"), "{reply}");
    let finished = lines
        .iter()
        .find(|l| l["message"] == "request finished")
        .unwrap();
    assert_eq!(finished["level"], "DEBUG");
    assert_eq!(finished["request_id"], "corr-42");
}

#[tokio::test(flavor = "current_thread")]
async fn tower_http_trace_layer_lines_keep_the_request_id_and_no_query_string() {
    use tower_http::trace::TraceLayer;
    let capture = Capture::new();
    let _default = tracing::subscriber::set_default(capture_subscriber(&capture, "debug"));
    // As docs/context.md recommends: TraceLayer inside RequestContextLayer
    // (added before it), with a span that names the path, not the URI.
    let app = Router::new()
        .route("/work", get(handler))
        .layer(TraceLayer::new_for_http().make_span_with(
            |req: &http::Request<axum::body::Body>| {
                tracing::debug_span!("http", method = %req.method(), path = %req.uri().path())
            },
        ))
        .layer(RequestContextLayer::new());
    let (_reply, lines) = send(
        app,
        "GET /work?token=s3cret&page=2 HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n",
        &capture,
    )
    .await;
    let text = serde_json::to_string(&lines).unwrap();
    assert!(
        !text.contains("s3cret") && !text.contains("page=2"),
        "{text}"
    );
    let trace_lines: Vec<_> = lines
        .iter()
        .filter(|l| l["target"].as_str().unwrap_or("").starts_with("tower_http"))
        .collect();
    assert!(trace_lines.len() >= 2, "started and finished: {lines:?}");
    let request_id = lines
        .iter()
        .find(|l| l["message"] == "request finished")
        .unwrap()["request_id"]
        .clone();
    for line in trace_lines {
        assert_eq!(line["request_id"], request_id, "{line:?}");
        assert_eq!(line["path"], "/work", "{line:?}");
    }
}
