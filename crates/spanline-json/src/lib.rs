#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod json;
mod pretty;
#[cfg(feature = "query")]
mod query;
pub mod read;

pub use json::{JsonLayer, JsonLayerBuilder, JsonStats};
pub use pretty::{local_time, neutralize, PrettyLayer, PrettyLine};
#[cfg(feature = "query")]
pub use query::{Query, QueryError};
