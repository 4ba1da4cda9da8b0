//! The facade's behaviour tests that need no process of their own, one
//! binary. `init.rs`, `context_filters.rs` and `axum_service.rs` stay apart:
//! they set the global default subscriber.

/// `examples/custom_sink.rs`, the sink of the guide, tested.
mod custom_sink;
/// The fuzz corpus and regressions, replayed.
mod fuzz_corpus;
/// `spanline::pipe::forwarder` hands the child the context.
#[cfg(unix)]
mod pipe_context;
