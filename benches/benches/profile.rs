//! A fixed workload for profilers (callgrind, perf): W1 or W2 for one layer.
//!
//! Run with: `cargo bench -p spanline-benches --bench profile -- LAYER DEPTH EVENTS`
//! (defaults: spanline-flat, W1's two spans, 200000 events).

#[path = "support.rs"]
mod support;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let layer = args.first().map_or("spanline-flat", String::as_str);
    let depth: Option<usize> = args.get(1).and_then(|d| d.parse().ok());
    let events: u64 = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(200_000);
    let dispatch = support::dispatch(layer);
    tracing::dispatcher::with_default(&dispatch, || {
        let _spans: Vec<_> = match depth {
            Some(depth) => support::nest(depth),
            None => support::w1_spans().into(),
        };
        for i in 0..events {
            support::event(i);
        }
    });
}
