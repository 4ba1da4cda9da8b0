//! A parent that runs a worker process and shows the worker's log lines
//! inside its own launch span, under its own `RUST_LOG`.
//!
//! Run with: `cargo run --example child_process`
//! (`RUST_LOG=info,worker=debug` shows the worker's DEBUG lines too.)
//!
//! The same binary is the worker when started with `--worker`: it
//! registers `ForwardLayer::from_env()`, which finds the pipe its parent
//! made; started on its own, it simply has no forwarding.

use std::process::Command;

use spanline_pipe::ForwardLayer;
use tracing::{debug, info, info_span, instrument, warn};
use tracing_subscriber::prelude::*;

fn main() -> std::io::Result<()> {
    if std::env::args().any(|a| a == "--worker") {
        worker();
        return Ok(());
    }
    // `batch` is context in this program: the launch span keeps it on every
    // line inside, the worker's too, whatever RUST_LOG says.
    let _guard = spanline::builder()
        .service("child_process")
        .context_key("batch")
        .init();

    let _launch = info_span!("launch", batch = "nightly").entered();
    info!("starting the worker");
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("--worker");
    let status = spanline::pipe::forwarder("worker-1")
        .spawn(&mut cmd)?
        .wait()?;
    info!(success = status.success(), "worker done");
    Ok(())
}

/// The worker: logs in nested spans, with its own target (`worker`).
fn worker() {
    tracing_subscriber::registry()
        .with(ForwardLayer::from_env())
        .init();
    let _job = info_span!(target: "worker", "job", job_id = "report_42").entered();
    for table in ["users", "orders"] {
        export(table);
    }
    warn!(target: "worker", skipped = 1, "one row had no id");
}

#[instrument(target = "worker")]
fn export(table: &str) {
    debug!(target: "worker", "reading rows");
    info!(target: "worker", rows = 120, "exported");
}
