//! Past the interner's cap, records still arrive, through a generic
//! callsite, with a one-time warning. Its own test binary: the interner is
//! per process, and this test fills it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use spanline_core::ContextLayer;
use spanline_json::JsonLayer;
use spanline_pipe::Receiver;
use spanline_testkit::Capture;
use tracing_subscriber::prelude::*;

#[test]
fn distinct_callsites_past_the_cap_use_a_generic_one() {
    let capture = Capture::new();
    let subscriber = tracing_subscriber::registry()
        .with(ContextLayer::new())
        .with(JsonLayer::builder().writer(capture.clone()).build());
    let total = 4_200;
    tracing::subscriber::with_default(subscriber, || {
        let mut receiver = Receiver::new(tracing::Span::none());
        for i in 0..total {
            let line = format!(
                r#"{{"t":"ev","pid":1,"ts":[0,0],"span":null,"level":"INFO","target":"dyn::t{i}","fields":{{"message":"m{i}","k":{i}}}}}"#
            );
            receiver.feed_line(line.as_bytes());
        }
    });
    let lines = capture.json_lines();
    let warnings = lines
        .iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .unwrap()
                .starts_with("too many distinct callsites")
        })
        .count();
    assert_eq!(warnings, 1, "one warning");
    let forwarded: Vec<_> = lines
        .iter()
        .filter(|l| l["message"].as_str().unwrap().starts_with('m'))
        .collect();
    assert_eq!(forwarded.len(), total, "every record arrived");
    let last = forwarded.last().unwrap();
    assert_eq!(last["message"], format!("m{}", total - 1));
    assert_eq!(
        last["target"], "spanline_pipe::overflow",
        "the generic callsite"
    );
    assert_eq!(
        last["fields.target"],
        format!("dyn::t{}", total - 1),
        "the original target is kept in a field"
    );
    assert_eq!(last["fields"], format!(r#"{{"k":{}}}"#, total - 1));
}
