#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg(unix)]

#[cfg(feature = "tokio")]
mod async_child;
mod callsite;
mod child;
mod forwarded;
mod hash;
mod idle;
mod lines;
mod parent;
mod receiver;
mod redact;
mod sys;
pub mod wire;

#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub use async_child::AsyncForwardedChild;
pub use child::{ForwardLayer, ForwardStats, OnFull};
pub use parent::{EnvVars, ForwardedChild, Forwarder};
pub use receiver::{Receiver, TARGET};
pub use wire::{ENV_VAR, FD};
