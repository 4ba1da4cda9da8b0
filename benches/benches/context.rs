//! The cost of context with depth: an event, and creating a span, inside a
//! request span (`request_id`, `method`, `route`) and 0 to 5 nested spans of
//! three fields each. spanline's `ContextLayer` + `JsonLayer` (flat) side by
//! side with tracing-subscriber's JSON layer, writing to a sink.
//!
//! `filtered` measures what a span or event that the filter disables costs
//! (a `debug_span!` in a hot loop under `RUST_LOG=info`): with the filter on
//! the `ContextLayer` (how `spanline::init()` composes it), in front of the
//! registry (how it composed it before), and as per-layer filters.
//!
//! Run with: `cargo bench -p spanline-benches --bench context`

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use tracing::{info, info_span};

#[path = "support.rs"]
mod support;

fn nest(depth: usize) -> Vec<tracing::span::EnteredSpan> {
    let mut spans = vec![info_span!(
        "request",
        request_id = "9f1c2e7a",
        method = "GET",
        route = "/users/{id}"
    )
    .entered()];
    for d in 0..depth {
        spans.push(
            info_span!("level", depth = d as u64, step = "span-field", flag = true).entered(),
        );
    }
    spans
}

fn event(c: &mut Criterion) {
    let mut group = c.benchmark_group("context_event");
    for name in ["spanline-flat", "tracing-subscriber"] {
        let dispatch = support::dispatch(name);
        for depth in [0usize, 1, 3, 5] {
            group.bench_with_input(BenchmarkId::new(name, depth), &depth, |b, &depth| {
                tracing::dispatcher::with_default(&dispatch, || {
                    let _spans = nest(depth);
                    b.iter(|| info!(user_count = 7u64, "handled request"));
                });
            });
        }
    }
    group.finish();
}

fn span(c: &mut Criterion) {
    let mut group = c.benchmark_group("context_span");
    for name in ["spanline-flat", "tracing-subscriber"] {
        let dispatch = support::dispatch(name);
        for ancestors in [0usize, 5] {
            group.bench_with_input(
                BenchmarkId::new(name, ancestors),
                &ancestors,
                |b, &ancestors| {
                    tracing::dispatcher::with_default(&dispatch, || {
                        // `nest(n)` is the request span and n more: n + 1 ancestors.
                        let _spans = (ancestors > 0).then(|| nest(ancestors - 1));
                        b.iter(|| {
                            let span =
                                info_span!("work", id = 42u64, kind = "query", cached = false);
                            let _e = span.enter();
                        });
                    });
                },
            );
        }
    }
    group.finish();
}

/// The ways to put `RUST_LOG=info` in a stack, each with the JSON layer.
fn filtered_dispatch(name: &str) -> tracing::Dispatch {
    use spanline_core::ContextLayer;
    use spanline_json::JsonLayer;
    use tracing_subscriber::{prelude::*, EnvFilter};
    let json = || JsonLayer::builder().with_writer(std::io::sink).build();
    let info = || EnvFilter::new("info");
    let registry = tracing_subscriber::registry();
    match name {
        "filter-on-context-layer" => tracing::Dispatch::new(
            registry
                .with(ContextLayer::new().filter(info()))
                .with(json()),
        ),
        "global-filter" => {
            tracing::Dispatch::new(registry.with(info()).with(ContextLayer::new()).with(json()))
        }
        _ => tracing::Dispatch::new(
            registry
                .with(ContextLayer::new())
                .with(json().with_filter(info())),
        ),
    }
}

fn filtered(c: &mut Criterion) {
    let mut group = c.benchmark_group("filtered");
    for name in [
        "filter-on-context-layer",
        "global-filter",
        "per-layer-filter",
    ] {
        let dispatch = filtered_dispatch(name);
        tracing::dispatcher::with_default(&dispatch, || {
            let _request = nest(0);
            group.bench_function(BenchmarkId::new("debug_span", name), |b| {
                b.iter(|| {
                    let span = tracing::debug_span!("hot", i = 1u64, kind = "step");
                    let _e = span.enter();
                })
            });
            group.bench_function(BenchmarkId::new("debug_event", name), |b| {
                b.iter(|| tracing::debug!(i = 1u64, "hot"))
            });
        });
    }
    group.finish();
}

fn config() -> Criterion {
    support::criterion_config(Duration::from_millis(700), Duration::from_secs(2), 40)
}

criterion_group! { name = benches; config = config(); targets = event, span, filtered }
criterion_main!(benches);
