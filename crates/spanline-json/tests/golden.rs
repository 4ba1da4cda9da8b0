//! Byte-exact lines for each preset, with a fixed clock.
//!
//! The expected lines live in `tests/data/<preset>.jsonl`. After an
//! intended change of format, regenerate them with
//! `UPDATE_GOLDEN=1 cargo test -p spanline-json --test golden` and review
//! the diff.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::fmt;

use spanline_core::{Clock, ContextLayer, Preset, Timestamp};
use spanline_json::JsonLayer;
use spanline_testkit::Capture;
use tracing::{field, info, info_span, warn};
use tracing_subscriber::prelude::*;

#[derive(Debug)]
struct Timeout;
impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("timed out")
    }
}
impl std::error::Error for Timeout {}

#[derive(Debug)]
struct QueryFailed(Timeout);
impl fmt::Display for QueryFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("query failed")
    }
}
impl std::error::Error for QueryFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

fn scenario() {
    let request = info_span!(
        "request",
        request_id = "r-1",
        trace_id = "4bf92f3577b34da6a3ce929d0e0e4736",
        user_id = field::Empty
    );
    let _r = request.enter();
    info!(ip = "1.2.3.4", "request started");
    request.record("user_id", 42);
    let _db = info_span!("db", table = "users", level = "span-level").entered();
    info!(rows = 3, latency_ms = 1.5, level = "custom", "query done");
    let err = QueryFailed(Timeout);
    warn!(
        error = &err as &dyn std::error::Error,
        attempt = 2,
        "retrying"
    );
}

fn render(preset: Preset) -> String {
    let capture = Capture::new();
    let json = JsonLayer::builder()
        .schema(
            spanline_core::Schema::builder(preset)
                .service("golden")
                .hostname("HOST")
                .gcp_project("my-project")
                .clock(Clock::fixed(Timestamp::from_unix(
                    1_763_758_369,
                    633_647_123,
                ))),
        )
        .with_writer(capture.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(ContextLayer::new())
        .with(json);
    tracing::subscriber::with_default(subscriber, scenario);
    // The bunyan preset carries the process id.
    capture
        .text()
        .replace(&format!("\"pid\":{}", std::process::id()), "\"pid\":1")
        .replace(
            &format!("\"process.pid\":{}", std::process::id()),
            "\"process.pid\":1",
        )
}

fn check(preset: Preset, file: &str) {
    let actual = render(preset);
    for line in actual.lines() {
        spanline_testkit::parse_strict(line).unwrap_or_else(|e| panic!("{preset:?}: {e}: {line}"));
    }
    let path = format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    for (i, (a, e)) in actual.lines().zip(expected.lines()).enumerate() {
        assert_eq!(a, e, "{preset:?}, line {}", i + 1);
    }
    assert_eq!(
        actual.lines().count(),
        expected.lines().count(),
        "{preset:?}: line count"
    );
}

#[test]
fn flat() {
    check(Preset::Flat, "flat.jsonl");
}

#[test]
fn structlog() {
    check(Preset::Structlog, "structlog.jsonl");
}

#[test]
fn bunyan() {
    check(Preset::Bunyan, "bunyan.jsonl");
}

#[test]
fn gcp() {
    check(Preset::Gcp, "gcp.jsonl");
}

#[test]
fn ecs() {
    check(Preset::Ecs, "ecs.jsonl");
}

#[test]
fn nested() {
    check(Preset::Nested, "nested.jsonl");
}
