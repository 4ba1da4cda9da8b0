//! The cost of context with depth: an event, and creating a span, inside a
//! request span (`request_id`, `method`, `route`) and 0 to 5 nested spans of
//! three fields each. spanline's `ContextLayer` + `JsonLayer` (flat) side by
//! side with tracing-subscriber's JSON layer, writing to a sink.
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

fn config() -> Criterion {
    support::criterion_config(Duration::from_millis(700), Duration::from_secs(2), 40)
}

criterion_group! { name = benches; config = config(); targets = event, span }
criterion_main!(benches);
