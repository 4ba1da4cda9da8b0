//! The custom sink example: a complete LineSink in well under 100 lines,
//! and the short forms: a closure (`spanline::sink_fn`), a sink shared
//! through an `Arc`, a `Box<dyn LineSink>` chosen at run time.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

#[allow(dead_code)] // the example's `main` is not run here
#[path = "../../examples/custom_sink.rs"]
mod example;

use std::net::UdpSocket;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use spanline::{ContextLayer, JsonLayer, LineEvent, LineLayer, LineSink, Preset, Schema};
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

/// A collector that waits at most 5 s for a datagram.
fn collector() -> UdpSocket {
    let collector = UdpSocket::bind("127.0.0.1:0").unwrap();
    collector
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    collector
}

#[test]
fn the_examples_closure_counts_warnings_and_takes_every_line() {
    let warnings = Arc::new(AtomicU64::new(0));
    let layer = LineLayer::new(
        Schema::default(),
        example::warning_counter(warnings.clone()),
    );
    let stats = layer.stats();
    let subscriber = tracing_subscriber::registry()
        .with(ContextLayer::new())
        .with(layer);
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!("fine");
        tracing::warn!("late");
        tracing::error!(blob = "x".repeat(70_000), "long and broken");
    });
    assert_eq!(warnings.load(Ordering::Relaxed), 2);
    assert_eq!(stats.oversize(), 0, "a closure sink has no length limit");
}

#[test]
fn a_closure_sink_counts_the_json_layers_very_lines() {
    let count = Arc::new(AtomicU64::new(0));
    let lines = Arc::new(Mutex::new(String::new()));
    let (counted, kept) = (count.clone(), lines.clone());
    let sink = spanline::sink_fn(move |line, event| {
        counted.fetch_add(1, Ordering::Relaxed);
        let _ = event.job_id();
        kept.lock()
            .unwrap()
            .push_str(std::str::from_utf8(line).unwrap());
    });
    let capture = Capture::new();
    let schema = Schema::builder(Preset::Structlog).service("t").build();
    let subscriber = tracing_subscriber::registry()
        .with(ContextLayer::new())
        .with(
            JsonLayer::builder()
                .schema(schema.clone())
                .with_writer(capture.clone())
                .build(),
        )
        .with(LineLayer::new(schema, sink));
    tracing::subscriber::with_default(subscriber, || {
        let _job = tracing::info_span!("job", job_id = "report_1").entered();
        tracing::info!(rows = 3, "report ready");
        tracing::info!("report sent");
    });
    assert_eq!(count.load(Ordering::Relaxed), 2);
    let written: String = capture.lines().iter().map(|l| format!("{l}\n")).collect();
    assert_eq!(*lines.lock().unwrap(), written, "the very bytes, each once");
}

#[test]
fn an_arc_shares_the_example_sink_between_two_layers() {
    let collector = collector();
    let sink = Arc::new(example::UdpSink::new(collector.local_addr().unwrap()).unwrap());
    let structlog = LineLayer::new(Schema::from(Preset::Structlog), Arc::clone(&sink));
    let flat = LineLayer::new(Schema::from(Preset::Flat), Arc::clone(&sink));
    let (structlog_stats, flat_stats) = (structlog.stats(), flat.stats());
    let subscriber = tracing_subscriber::registry()
        .with(ContextLayer::new())
        .with(structlog)
        .with(flat);
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!(rows = 3, "report ready");
        tracing::info!(blob = "x".repeat(70_000), "too long for a datagram");
    });
    let mut buf = [0u8; 65_536];
    let mut got = Vec::new();
    for _ in 0..2 {
        let n = collector.recv(&mut buf).unwrap();
        got.push(serde_json::from_slice::<serde_json::Value>(&buf[..n]).unwrap());
    }
    assert_eq!(sink.sent.load(Ordering::Relaxed), 2, "one line per layer");
    assert_ne!(got[0], got[1], "two schemas, two shapes of one event");
    assert!(got
        .iter()
        .all(|line| line.to_string().contains("report ready")));
    assert_eq!(
        (structlog_stats.oversize(), flat_stats.oversize()),
        (1, 1),
        "the example's max_line, through the Arc"
    );
}

#[test]
fn a_boxed_dyn_sink_is_chosen_at_run_time() {
    let collector = collector();
    let count = Arc::new(AtomicU64::new(0));
    for to_collector in [true, false] {
        let sink: Box<dyn LineSink> = if to_collector {
            Box::new(example::UdpSink::new(collector.local_addr().unwrap()).unwrap())
        } else {
            let count = count.clone();
            Box::new(spanline::sink_fn(move |_: &[u8], _: &LineEvent<'_>| {
                count.fetch_add(1, Ordering::Relaxed);
            }))
        };
        let layer: LineLayer<Box<dyn LineSink>> = LineLayer::new(Schema::default(), sink);
        let stats = layer.stats();
        let subscriber = tracing_subscriber::registry()
            .with(ContextLayer::new())
            .with(layer);
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("chosen");
            tracing::info!(blob = "x".repeat(70_000), "long");
        });
        let oversize = if to_collector { 1 } else { 0 };
        assert_eq!(stats.oversize(), oversize, "max_line through the box");
    }
    let mut buf = [0u8; 65_536];
    let n = collector.recv(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("chosen"));
    assert_eq!(
        count.load(Ordering::Relaxed),
        2,
        "the closure took both lines"
    );
}
