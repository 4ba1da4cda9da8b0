//! The custom sink example: a complete LineSink in well under 100 lines.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

#[allow(dead_code)] // the example's `main` is not run here
#[path = "../../examples/custom_sink.rs"]
mod example;

use std::net::UdpSocket;
use std::sync::atomic::Ordering;
use std::time::Duration;

use spanline::{ContextLayer, JsonLayer, LineLayer, Preset, Schema};
use spanline_testkit::Capture;
use tracing_subscriber::prelude::*;

#[test]
fn the_example_sink_gets_the_json_layers_very_line_and_counts_refusals() {
    let collector = UdpSocket::bind("127.0.0.1:0").unwrap();
    collector
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let sink = example::UdpSink::new(collector.local_addr().unwrap()).unwrap();
    let sent = sink.sent.clone();
    let capture = Capture::new();
    let schema = Schema::builder(Preset::Structlog).service("t").build();
    let line = LineLayer::new(schema.clone(), sink);
    let stats = line.stats();
    let subscriber = tracing_subscriber::registry()
        .with(ContextLayer::new())
        .with(
            JsonLayer::builder()
                .schema(schema)
                .with_writer(capture.clone())
                .build(),
        )
        .with(line);
    tracing::subscriber::with_default(subscriber, || {
        let _job = tracing::info_span!("job", job_id = "report_1").entered();
        tracing::info!(rows = 3, "report ready");
        tracing::info!(blob = "x".repeat(70_000), "too long for a datagram");
    });
    let mut buf = [0u8; 65_536];
    let n = collector.recv(&mut buf).unwrap();
    let written = capture.lines();
    assert_eq!(written.len(), 2, "the JSON layer writes both");
    assert_eq!(
        String::from_utf8_lossy(&buf[..n]),
        format!("{}\n", written[0]),
        "the very bytes the JSON layer wrote"
    );
    assert_eq!(sent.load(Ordering::Relaxed), 1);
    assert_eq!(stats.oversize(), 1, "the long line was refused, counted");
    let first: serde_json::Value = serde_json::from_str(&written[0]).unwrap();
    assert_eq!(first["job_id"], "report_1");
    assert_eq!(first["event"], "report ready");
}
