//! spanline-pipe's behaviour tests, one binary (one link on a small
//! machine). Real child processes: the binary runs itself again as the
//! child, the `child` test of a module selected (`forward::child`,
//! `parent_redact::child`, …).
#![cfg(unix)]

/// A parent that closes the pipe early: every record not forwarded counted.
mod broken_pipe;
/// A long-lived parent: callsites released when a child exits.
mod callsite_recovery;
/// Forwarding end to end: filters, spans, faults, modes, exit.
mod forward;
/// The receiver's bounds: callsites, span depth and count.
mod interner_cap;
/// The parent redacts what it re-emits, whatever the child did.
mod parent_redact;
/// `Forwarder::spawn_async` on tokio (feature `tokio`).
#[cfg(feature = "tokio")]
mod tokio_spawn;
