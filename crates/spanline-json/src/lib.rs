#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod json;
mod pretty;

pub use json::{JsonLayer, JsonLayerBuilder, JsonStats};
pub use pretty::{local_time, neutralize, PrettyLayer, PrettyLine};
