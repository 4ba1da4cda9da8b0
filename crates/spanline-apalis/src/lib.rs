#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod carry;
mod restore;

pub use carry::{task, JobContext, JobContextError, WithContext, METADATA_KEY};
pub use restore::{JobContextLayer, JobContextService, TARGET};
