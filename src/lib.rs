#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod filter;
mod init;

pub use init::{builder, init, try_init, Builder, Format, Guard, InitError};
pub use spanline_core::{
    set, ContextKeys, ContextLayer, CtxView, FieldValue, NumberPolicy, Schema, SetError,
    SharedLine, Timestamp,
};
pub use spanline_json::{JsonLayer, JsonStats, Preset, PrettyLayer, ReservedKey};

/// The field model shared by all layers (re-export of `spanline-core`).
pub mod core {
    pub use spanline_core::*;
}

/// Context across tasks, threads, jobs, processes and HTTP (re-export of
/// `spanline-context`).
pub mod context {
    pub use spanline_context::*;
}

/// Publishing lines to Redis (re-export of `spanline-redis`, feature `redis`).
#[cfg(feature = "redis")]
pub mod redis {
    pub use spanline_redis::*;
}

/// Child-process forwarding (re-export of `spanline-pipe`, feature `pipe`).
#[cfg(all(feature = "pipe", unix))]
pub mod pipe {
    pub use spanline_pipe::*;
}

/// JSON and console output layers (re-export of `spanline-json`).
pub mod json {
    pub use spanline_json::*;
}
