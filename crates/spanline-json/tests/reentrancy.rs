//! Logging from inside the formatting of a log line.
//!
//! tracing blocks re-entrant dispatch through *scoped* dispatchers, so this
//! runs under the global default, where a `Debug` impl that logs really
//! re-enters the layer. One test function: the global default is set once.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::fmt;

use serde_json::Value;
use spanline_core::ContextLayer;
use spanline_json::JsonLayer;
use spanline_testkit::Capture;
use tracing::{field, info, info_span};
use tracing_subscriber::prelude::*;

struct Chatty;

impl fmt::Debug for Chatty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        info!("logged from Debug");
        // Recording on the current span needs the span's lock for writing:
        // the layer must not hold it while formatting fields.
        tracing::Span::current().record("late", "from Debug");
        f.write_str("chatty")
    }
}

struct Recursive;

impl fmt::Debug for Recursive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        info!(again = ?Recursive, "deeper");
        f.write_str("r")
    }
}

#[test]
fn logging_while_formatting_is_safe() {
    let capture = Capture::new();
    let json = JsonLayer::builder().with_writer(capture.clone()).build();
    let stats = json.stats();
    tracing_subscriber::registry()
        .with(ContextLayer::new())
        .with(json)
        .init();

    // A Debug impl that logs and records: no panic, no deadlock, both lines.
    {
        let _s = info_span!("s", late = field::Empty).entered();
        info!(value = ?Chatty, "outer");
        info!("after");
    }
    let lines = capture.json_lines();
    let messages: Vec<&Value> = lines.iter().map(|l| &l["message"]).collect();
    assert_eq!(messages, ["logged from Debug", "outer", "after"]);
    assert_eq!(lines[1]["value"], "chatty");
    assert_eq!(
        lines[2]["late"], "from Debug",
        "the record made while formatting took effect"
    );
    assert_eq!(stats.reentrant_drops(), 0);

    // Unbounded recursion stops at the re-entrancy limit, counted.
    capture.clear();
    info!(value = ?Recursive, "top");
    assert_eq!(stats.reentrant_drops(), 1);
    assert_eq!(
        capture.json_lines().len(),
        usize::from(JsonLayer::MAX_REENTRANCY)
    );
}
