//! What a child's spans cost the parent at worst: a chain nested deeper
//! than the bound, then 100,000 spans that never close, each under the
//! deepest one, fed to a `Receiver`. Prints the growth of the resident set.
//!
//! Run with: `cargo bench -p spanline-benches --bench pipe_memory`

#![allow(clippy::disallowed_macros)] // a bench reports on stdout

use spanline_core::ContextLayer;
use spanline_json::JsonLayer;
use spanline_pipe::Receiver;
use tracing_subscriber::prelude::*;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

fn span(id: u64, parent: Option<u64>) -> String {
    let parent = parent.map_or("null".to_string(), |p| p.to_string());
    format!(
        r#"{{"t":"span","pid":1,"id":{id},"parent":{parent},"name":"s","target":"deep","level":"INFO","fields":{{"k":{id},"note":"a value of some length"}}}}"#
    )
}

fn main() {
    let subscriber = tracing_subscriber::registry()
        .with(ContextLayer::new())
        .with(JsonLayer::builder().with_writer(std::io::sink).build());
    tracing::subscriber::with_default(subscriber, || {
        let mut receiver = Receiver::new(tracing::Span::none());
        let before = rss_kib();
        for id in 1..=200u64 {
            receiver.feed_line(span(id, (id > 1).then(|| id - 1)).as_bytes());
        }
        for id in 1_000..101_000u64 {
            receiver.feed_line(span(id, Some(200)).as_bytes());
        }
        let grown = rss_kib().saturating_sub(before);
        println!(
            "200 nested spans, then 100,000 open spans under the deepest: resident set +{} KiB ({:.1} MiB)",
            grown,
            grown as f64 / 1024.0
        );
    });
}
