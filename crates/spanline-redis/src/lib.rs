#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod config;
mod guard;
mod layer;
mod link;
mod stats;
mod worker;

pub use config::{BuildError, Mode, Overflow, RedisLayerBuilder};
pub use guard::{FlushOutcome, RedisGuard};
pub use layer::RedisLayer;
pub use stats::RedisStats;
