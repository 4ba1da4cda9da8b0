#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg(unix)]

mod callsite;
mod child;
mod lines;
mod parent;
mod receiver;
mod sys;
pub mod wire;

pub use child::{ForwardLayer, ForwardStats, OnFull, ENV_VAR, FD};
pub use parent::{ForwardedChild, Forwarder};
pub use receiver::{Receiver, TARGET};
