#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

/// The redis crate, version 1: part of this crate's public API, on
/// purpose. Connections ([`redis::Connection`]), errors
/// ([`redis::RedisError`], [`redis::RedisResult`]) and URLs appear in
/// [`read`] and [`BuildError`]; a major version of redis that changes them
/// is a major version of spanline-redis. Use this re-export rather than a
/// redis dependency of your own, so the versions always match.
pub use redis;

mod builder;
mod channels;
mod guard;
mod layer;
mod link;
#[cfg(feature = "cluster")]
mod nodes;
mod pack;
mod problem;
mod queue;
pub mod read;
mod reply;
mod report;
mod stats;
mod wire;
mod worker;

pub use builder::{check_url, BuildError, RedisLayerBuilder};
pub use channels::Channels;
pub use guard::{FlushOutcome, RedisGuard, ShutdownOutcome};
pub use layer::RedisLayer;
pub use queue::Overflow;
/// Why a job id or a channel prefix is refused (spanline-core's, where the
/// job id syntax lives).
pub use spanline_core::JobIdError;
pub use stats::RedisStats;
pub use worker::Mode;
