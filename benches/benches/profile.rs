//! A fixed workload for profilers (callgrind, perf): W1, W2, W3, a wide
//! event or a long value, for one layer.
//!
//! Run with: `cargo bench -p spanline-benches --bench profile -- LAYER WORKLOAD EVENTS`
//! where WORKLOAD is a span depth (W2), `w1` (the default), `w3`, `spans`
//! (W3 without its event: the span lifecycle alone), `wide1`,
//! `wide8`, `wide32`, `long` (a 64 KiB value) or `debug` (W1's spans, one
//! `?Debug` value: what the `Json` handshake costs a plain one), `json`
//! (W1's spans, one `spanline_core::json` object of two levels), `text`
//! (W1's spans, a 200-byte value of accented and typographic text: the
//! escaper's non-ASCII path) or `escape` (`escape_str` alone on that text
//! and on 1 KiB of ASCII, no tracing); 200000 events by default. Layer
//! `spanline-flat-redact` is `spanline-flat` hiding `password` and
//! `*token*`; `spanline-flat-redact-exact` hiding `password` and
//! `authorization`.

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
        "spans" => (0..events).for_each(support::spans),
        "wide1" => (0..events).for_each(|i| support::wide(1, i)),
        "wide8" => (0..events).for_each(|i| support::wide(8, i)),
        "wide32" => (0..events).for_each(|i| support::wide(32, i)),
        "long" => {
            let _spans = support::w1_spans();
            (0..events).for_each(|i| tracing::info!(i, body = long.as_str(), "long"));
        }
        "json" => {
            let _spans = support::w1_spans();
            (0..events).for_each(|i| {
                tracing::info!(
                    i,
                    cfg = spanline_core::json(support::config()),
                    "json value"
                )
            });
        }
        "text" => {
            let _spans = support::w1_spans();
            let text = support::text();
            (0..events).for_each(|i| tracing::info!(i, body = text.as_str(), "text"));
        }
        "escape" => {
            let text = support::text();
            let ascii: String = long.chars().take(1024).collect();
            let mut buf = Vec::with_capacity(4096);
            (0..events).for_each(|_| {
                buf.clear();
                spanline_core::write_str(&mut buf, std::hint::black_box(&text));
                spanline_core::write_str(&mut buf, std::hint::black_box(&ascii));
                std::hint::black_box(&buf);
            });
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
