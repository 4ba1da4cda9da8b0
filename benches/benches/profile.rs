//! A fixed workload for profilers (callgrind, perf): W1, W2, W3, a wide
//! event or a long value, for one layer.
//!
//! Run with: `cargo bench -p spanline-benches --bench profile -- LAYER WORKLOAD EVENTS`
//! where WORKLOAD is a span depth (W2), `w1` (the default), `w3`, `wide1`,
//! `wide8`, `wide32`, `long` (a 64 KiB value) or `debug` (W1's spans, one
//! `?Debug` value: what the `Json` handshake costs a plain one); 200000
//! events by default.

#[path = "support.rs"]
mod support;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let layer = args.first().map_or("spanline-flat", String::as_str);
    let workload = args.get(1).map_or("w1", String::as_str);
    let events: u64 = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(200_000);
    let dispatch = support::dispatch(layer);
    let long: String = "abcdefghijklmnopqrstuvwxyz0123456789 "
        .chars()
        .cycle()
        .take(64 << 10)
        .collect();
    tracing::dispatcher::with_default(&dispatch, || match workload {
        "w3" => (0..events).for_each(support::w3),
        "wide1" => (0..events).for_each(|i| support::wide(1, i)),
        "wide8" => (0..events).for_each(|i| support::wide(8, i)),
        "wide32" => (0..events).for_each(|i| support::wide(32, i)),
        "long" => {
            let _spans = support::w1_spans();
            (0..events).for_each(|i| tracing::info!(i, body = long.as_str(), "long"));
        }
        "debug" => {
            let _spans = support::w1_spans();
            let ids = [3u16, 14, 15];
            (0..events).for_each(|i| tracing::info!(i, ids = ?ids, "debug value"));
        }
        other => {
            let _spans: Vec<_> = match other.parse::<usize>() {
                Ok(depth) => support::nest(depth),
                Err(_) => support::w1_spans().into(),
            };
            (0..events).for_each(support::event);
        }
    });
}
