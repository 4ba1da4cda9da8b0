#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod builder;
mod cluster_map;
mod guard;
mod layer;
mod link;
mod problem;
mod queue;
mod report;
mod stats;
mod stream_merge;
mod worker;

pub use builder::{check_url, BuildError, RedisLayerBuilder};
pub use cluster_map::ClusterMap;
pub use guard::{FlushOutcome, RedisGuard, ShutdownOutcome};
pub use layer::RedisLayer;
pub use queue::Overflow;
pub use stats::RedisStats;
pub use stream_merge::{entry_order, StreamMerge};
pub use worker::Mode;
