//! spanline-apalis's behaviour tests, one binary (one link on a small machine).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

/// A job's run ends once, whether it succeeds, fails or panics.
mod ends;
/// A request enqueues jobs in apalis's Redis storage; the worker's lines
/// carry the request's context, reach the job's channel, end once.
mod queue;
