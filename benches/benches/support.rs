//! Shared set-up for the benches: the layers under test, side by side.

use std::io;

use spanline_core::{ContextLayer, Preset};
use spanline_json::JsonLayer;
use tracing::Dispatch;
use tracing_subscriber::prelude::*;

/// Every JSON layer in the comparison, writing to a sink that discards bytes.
#[allow(dead_code)] // not every bench uses the full list
pub(crate) const LAYERS: &[&str] = &[
    "spanline-flat",
    "spanline-structlog",
    "tracing-subscriber",
    "json-subscriber",
    "bunyan",
];

#[allow(clippy::expect_used)] // a bench set-up: failing loudly is right
pub(crate) fn dispatch(name: &str) -> Dispatch {
    let registry = tracing_subscriber::registry();
    match name {
        "spanline-flat" => Dispatch::new(
            registry
                .with(ContextLayer::new())
                .with(JsonLayer::builder().writer(io::sink).build()),
        ),
        "spanline-structlog" => Dispatch::new(
            registry.with(ContextLayer::new()).with(
                JsonLayer::builder()
                    .preset(Preset::Structlog)
                    .writer(io::sink)
                    .build(),
            ),
        ),
        "tracing-subscriber" => Dispatch::new(
            registry.with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(io::sink),
            ),
        ),
        "json-subscriber" => {
            Dispatch::new(registry.with(json_subscriber::layer().with_writer(io::sink)))
        }
        "bunyan" => Dispatch::new(
            registry
                .with(tracing_bunyan_formatter::JsonStorageLayer)
                .with(tracing_bunyan_formatter::BunyanFormattingLayer::new(
                    "bench".into(),
                    io::sink,
                )),
        ),
        // The Redis layer alone, queueing (nothing drains it: port 1): the
        // caller's side of `on_event`, for profiling.
        "redis-queue" => Dispatch::new(
            registry.with(ContextLayer::new()).with(
                spanline_redis::RedisLayer::builder("redis://127.0.0.1:1")
                    .capacity(1 << 22, 1 << 31)
                    .build()
                    .map(|(layer, guard)| {
                        std::mem::forget(guard);
                        layer
                    })
                    .expect("valid options"),
            ),
        ),
        other => panic!("unknown layer {other}"),
    }
}
