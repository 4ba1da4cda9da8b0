//! Real HTTP requests against the example service's router
//! (`examples/axum_service.rs`), on a loopback port.
//!
//! Lines from every thread of the runtime are captured by a global
//! subscriber; each test picks its own request's lines by `request_id`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

#[path = "../examples/axum_service.rs"]
mod example;

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use spanline::context::RequestContextLayer;

use spanline_testkit::Capture;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing_subscriber::prelude::*;

fn capture() -> &'static Capture {
    static CAPTURE: OnceLock<Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let capture = Capture::new();
        spanline_testkit::json_subscriber(&capture).init();
        capture
    })
}

async fn serve(middleware: RequestContextLayer) -> SocketAddr {
    capture();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = example::app(middleware);
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

struct Reply {
    status: u16,
    head: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// Sends `head` (the request line and headers, raw bytes) and reads the reply.
async fn send(addr: SocketAddr, head: &[u8]) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(head).await.unwrap();
    stream
        .write_all(b"connection: close\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let head = text
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_string();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Reply { status, head }
}

/// The captured lines of one request, once its job's line has arrived.
async fn lines_of(request_id: &str, until: &str) -> Vec<Map<String, Value>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let lines: Vec<_> = capture()
            .json_lines()
            .into_iter()
            .filter(|l| l.get("request_id").and_then(Value::as_str) == Some(request_id))
            .collect();
        if lines.iter().any(|l| l["message"] == until) || Instant::now() > deadline {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn message<'a>(lines: &'a [Map<String, Value>], text: &str) -> &'a Map<String, Value> {
    lines
        .iter()
        .find(|l| l["message"] == text)
        .unwrap_or_else(|| panic!("no line {text:?} in {lines:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_line_of_a_request_carries_its_request_id() {
    let addr = serve(RequestContextLayer::new()).await;
    let reply = send(
        addr,
        b"GET /users/7?token=secret123 HTTP/1.1\r\nhost: test\r\n",
    )
    .await;
    assert_eq!(reply.status, 200);
    let request_id = reply
        .header("x-request-id")
        .expect("x-request-id on the response");
    assert_eq!(
        uuid_version(&request_id),
        Some('7'),
        "server-made UUID v7: {request_id}"
    );

    let lines = lines_of(&request_id, "welcome email sent").await;
    for text in [
        "loading user",
        "query done",
        "audit record written",
        "password hash checked",
        "cache warmed",
        "welcome email enqueued",
        "request finished",
        "welcome email sent",
    ] {
        let line = message(&lines, text);
        assert_eq!(line["request_id"], request_id.as_str(), "{text}");
    }
    // The route template, never the path's values or the query string.
    assert!(lines
        .iter()
        .all(|l| !l.values().any(|v| v.to_string().contains("secret123"))));
    assert_eq!(message(&lines, "loading user")["route"], "/users/{id}");
    assert_eq!(message(&lines, "loading user")["method"], "GET");
    // user_id is set after authentication: not before, on every line after.
    assert!(message(&lines, "loading user").get("user_id").is_none());
    assert_eq!(message(&lines, "audit record written")["user_id"], 7);
    assert_eq!(message(&lines, "query done")["table"], "users");
    // The job runs outside the request, under its restored snapshot.
    let job = message(&lines, "welcome email sent");
    assert_eq!(job["task"], "send_welcome_email");
    assert!(job["job_id"].as_str().unwrap().starts_with("welcome_"));
    let finished = message(&lines, "request finished");
    assert_eq!(finished["status"], 200);
    assert!(finished["latency_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(finished["target"], "spanline::request");
}

fn uuid_version(id: &str) -> Option<char> {
    (id.len() == 36).then(|| id.chars().nth(14)).flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incoming_ids_are_kept_apart_unless_trusted() {
    let untrusted = serve(RequestContextLayer::new()).await;
    let reply = send(
        untrusted,
        b"GET /health HTTP/1.1\r\nhost: t\r\nx-request-id: client-abc.1\r\n",
    )
    .await;
    let request_id = reply.header("x-request-id").unwrap();
    assert_ne!(request_id, "client-abc.1");
    let lines = lines_of(&request_id, "request finished").await;
    assert_eq!(
        message(&lines, "request finished")["client_request_id"],
        "client-abc.1"
    );

    let trusted = serve(RequestContextLayer::new().trust_incoming_request_id(true)).await;
    let reply = send(
        trusted,
        b"GET /health HTTP/1.1\r\nhost: t\r\nx-request-id: client-xyz\r\n",
    )
    .await;
    assert_eq!(reply.header("x-request-id").as_deref(), Some("client-xyz"));
    let lines = lines_of("client-xyz", "request finished").await;
    assert_eq!(message(&lines, "request finished")["route"], "/health");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_headers_are_ignored_and_counted() {
    let layer = RequestContextLayer::new().trust_incoming_request_id(true);
    let stats = layer.stats();
    let addr = serve(layer).await;

    let long = format!(
        "GET /health HTTP/1.1\r\nhost: t\r\nx-request-id: {}\r\n",
        "a".repeat(4096)
    );
    let non_ascii = b"GET /health HTTP/1.1\r\nhost: t\r\nx-request-id: caf\xc3\xa9\r\n".to_vec();
    let bad_chars = b"GET /health HTTP/1.1\r\nhost: t\r\nx-request-id: a b{}\"\r\n".to_vec();
    let zero_trace =
        b"GET /health HTTP/1.1\r\nhost: t\r\ntraceparent: 00-00000000000000000000000000000000-00f067aa0ba902b7-01\r\n".to_vec();
    for head in [long.into_bytes(), non_ascii, bad_chars, zero_trace] {
        let reply = send(addr, &head).await;
        assert_eq!(reply.status, 200);
        let id = reply.header("x-request-id").unwrap();
        assert_eq!(
            uuid_version(&id),
            Some('7'),
            "a hostile id is never adopted: {id}"
        );
        let lines = lines_of(&id, "request finished").await;
        let line = message(&lines, "request finished");
        assert!(line.get("client_request_id").is_none());
        assert!(line.get("trace_id").is_none());
    }
    assert_eq!(stats.invalid_request_ids(), 3);
    assert_eq!(stats.invalid_traceparents(), 1);

    // A bare CR inside a header value: the HTTP parser refuses the request,
    // and nothing of it reaches a log line.
    let reply = send(
        addr,
        b"GET /health HTTP/1.1\r\nhost: t\r\nx-request-id: abc\rinjected\r\n",
    )
    .await;
    assert_eq!(reply.status, 400);
    assert!(!capture().text().contains("injected"));

    // A valid traceparent gives the trace id.
    let reply = send(addr, b"GET /health HTTP/1.1\r\nhost: t\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n").await;
    let lines = lines_of(&reply.header("x-request-id").unwrap(), "request finished").await;
    assert_eq!(
        message(&lines, "request finished")["trace_id"],
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
}
