//! The bodies of the fuzz targets: each takes any bytes, as untrusted input
//! arrives, and must neither panic nor write invalid output. Shared by the
//! cargo-fuzz targets (`fuzz/fuzz_targets/`) and by `tests/fuzz_corpus.rs`,
//! which replays every input of `fuzz/corpus/` in `cargo test`.

#![allow(dead_code)] // each user takes the targets it needs

use spanline::context::{ContextSnapshot, TraceParent};
use spanline::json::PrettyLine;
use tracing_subscriber::prelude::*;

/// A target: takes any bytes, panics on a finding.
pub(crate) type Target = fn(&[u8]);

/// Every target by name (the name of its corpus folder).
pub(crate) const ALL: &[(&str, Target)] = &[
    ("pipe_record", pipe_record),
    ("pretty_line", pretty_line),
    ("snapshot", snapshot),
    ("traceparent", traceparent),
    ("filter", filter),
];

/// A child's pipe, as the parent reads it: records re-dispatched into a
/// subscriber with the context and JSON layers, whose every line must be
/// one valid JSON object.
pub(crate) fn pipe_record(data: &[u8]) {
    let out = spanline_testkit::Capture::new();
    let subscriber = tracing_subscriber::registry()
        .with(spanline::ContextLayer::new())
        .with(
            spanline::JsonLayer::builder()
                .with_writer(out.clone())
                .build(),
        );
    tracing::subscriber::with_default(subscriber, || {
        let mut receiver = spanline::pipe::Receiver::new(tracing::Span::none());
        let mut rest = data;
        while let Some(at) = rest.iter().position(|&b| b == b'\n') {
            receiver.feed_line(&rest[..at]);
            rest = &rest[at + 1..];
        }
        receiver.finish(rest);
    });
    for line in out.lines() {
        if let Err(e) = spanline_testkit::parse_strict(&line) {
            panic!("invalid JSON line {line:?}: {e}");
        }
    }
}

/// A line from Redis or stdin, as `spanline tail` and `spanline pretty`
/// render it: never a panic, never a raw control character.
pub(crate) fn pretty_line(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Some(line) = PrettyLine::from_json(&text) {
        let rendered = line.render(false);
        let body = rendered.strip_suffix('\n').unwrap_or(&rendered);
        // The error chain goes on lines of its own; nothing else may break
        // or drive the terminal.
        for c in body.chars() {
            assert!(
                c == '\n' || !(c.is_control() || ('\u{202a}'..='\u{202e}').contains(&c)),
                "raw {c:?} in {rendered:?}"
            );
        }
    }
}

/// Outside context: a job payload (serde), `BAGGAGE`, incoming headers.
pub(crate) fn snapshot(data: &[u8]) {
    if let Ok(snap) = serde_json::from_slice::<ContextSnapshot>(data) {
        // What is accepted round-trips.
        let again = serde_json::to_vec(&snap).expect("a snapshot serializes");
        let back: ContextSnapshot = serde_json::from_slice(&again).expect("and reads back");
        assert_eq!(back, snap);
    }
    let text = String::from_utf8_lossy(data);
    let snap = ContextSnapshot::from_env_vars(|name| match name {
        "BAGGAGE" => Some(text.to_string()),
        "TRACEPARENT" => text.split(',').next().map(str::to_string),
        _ => None,
    });
    assert!(snap.len() <= ContextSnapshot::MAX_ENTRIES);
    assert!(snap.to_baggage().len() <= ContextSnapshot::MAX_BYTES);
    let mut headers = http::HeaderMap::new();
    if let Ok(value) = http::HeaderValue::from_bytes(data) {
        headers.insert("baggage", value.clone());
        headers.insert("traceparent", value);
    }
    let _ = ContextSnapshot::from_headers(&headers).to_headers();
    let _ = ContextSnapshot::from_baggage(&text).to_env();
}

/// A `traceparent` header: what parses prints back the same.
pub(crate) fn traceparent(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(tp) = text.parse::<TraceParent>() {
        let printed = tp.to_string();
        assert_eq!(printed.parse::<TraceParent>().ok(), Some(tp));
        let _ = tp.child();
    }
}

/// `RUST_LOG` as people write it.
pub(crate) fn filter(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = spanline::filter::parse(&text);
}
