//! spanline-pipe's behaviour tests, one binary (one link on a small
//! machine). Real child processes: the binary runs itself again as the
//! child, its `forward::child` or `tokio_spawn::child` test selected.
#![cfg(unix)]

/// Forwarding end to end: filters, spans, faults, modes, exit.
mod forward;
/// The receiver's bounds: callsites, span depth and count.
mod interner_cap;
/// `Forwarder::spawn_async` on tokio (feature `tokio`).
#[cfg(feature = "tokio")]
mod tokio_spawn;
