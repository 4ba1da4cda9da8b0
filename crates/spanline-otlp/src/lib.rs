#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod builder;
mod export;
mod guard;
mod layer;
mod record;
mod shared;
mod stats;
mod worker;

pub use builder::OtlpLayerBuilder;
pub use export::{BuildError, Protocol};
pub use guard::{OtlpGuard, ShutdownOutcome};
pub use layer::OtlpLayer;
pub use stats::OtlpStats;
