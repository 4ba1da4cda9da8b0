//! An OTLP logs receiver for scripts: `otlp-receiver grpc|http` prints its
//! endpoint on the first line, then each record it receives as one JSON
//! line (`body`, `severity_text`, `severity_number`, `trace_id`,
//! `span_id`, `service`, `scope`, `attrs`), until it is killed. CI runs
//! the `otlp` example against it.

#![allow(clippy::disallowed_macros)] // its output is the point

use std::io::Write as _;
use std::time::Duration;

use serde_json::{json, Map, Value};
use spanline_testkit::{any_text, OtlpReceiver};

fn main() {
    let receiver = match std::env::args().nth(1).as_deref() {
        Some("grpc") => OtlpReceiver::grpc(),
        Some("http") => OtlpReceiver::http(),
        _ => {
            eprintln!("usage: otlp-receiver grpc|http");
            std::process::exit(2);
        }
    };
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{}", receiver.endpoint());
    let _ = out.flush();
    let mut shown = 0;
    loop {
        let records = receiver.records();
        for received in &records[shown..] {
            let attrs: Map<String, Value> = received
                .record
                .attributes
                .iter()
                .map(|kv| {
                    let text = kv.value.as_ref().map(any_text).unwrap_or_default();
                    (kv.key.clone(), Value::String(text))
                })
                .collect();
            let line = json!({
                "body": received.body(),
                "severity_text": received.record.severity_text,
                "severity_number": received.record.severity_number,
                "trace_id": received.trace_id(),
                "span_id": received.span_id(),
                "service": received.resource_attr("service.name"),
                "scope": received.scope,
                "attrs": attrs,
            });
            let _ = writeln!(out, "{line}");
        }
        let _ = out.flush();
        shown = records.len();
        std::thread::sleep(Duration::from_millis(20));
    }
}
