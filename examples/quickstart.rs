//! A small instrumented program: JSON lines when stdout is not a terminal,
//! the pretty renderer when it is. `RUST_LOG` is honoured.
//!
//! Run with: `cargo run --example quickstart`
//! (and `cargo run --example quickstart | cat` for JSON lines,
//!  `RUST_LOG=debug cargo run --example quickstart` for more).

use std::fmt;
use std::io::IsTerminal;

use spanline::{ContextLayer, JsonLayer, PrettyLayer};
use tracing::{field, info, info_span, instrument, warn};
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

fn main() {
    // Records from the `log` crate become tracing events.
    let _ = tracing_log::LogTracer::init();

    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let terminal = std::io::stdout().is_terminal();
    tracing_subscriber::registry()
        .with(filter)
        .with(ContextLayer::new()) // first: it stores span fields for the others
        .with(terminal.then(PrettyLayer::new))
        .with((!terminal).then(|| JsonLayer::builder().service("quickstart").build()))
        .init();

    let request = info_span!(
        "request",
        request_id = "9f1c2e7a",
        method = "GET",
        route = "/users/{id}",
        user_id = field::Empty
    );
    let _entered = request.enter();
    info!(ip = "1.2.3.4", "request started");

    // Known only after authentication: recorded late, seen by every line below.
    request.record("user_id", 42);
    let user = load_user(42);
    info!(name = %user, "user loaded");

    if let Err(error) = charge_card(&user) {
        warn!(error = &error as &dyn std::error::Error, "payment failed");
    }
    log::info!(target: "legacy::billing", "a record from the log crate");
    tracing::debug!("only shown with RUST_LOG=debug");
    info!(status = 200, latency_ms = 3.25, "request finished");
}

#[instrument(fields(table = "users"))]
fn load_user(id: u64) -> String {
    info!(rows = 1, "query done");
    format!("user-{id}")
}

#[derive(Debug)]
struct PaymentError {
    source: GatewayError,
}

#[derive(Debug)]
struct GatewayError;

impl fmt::Display for PaymentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("card charge failed")
    }
}

impl fmt::Display for GatewayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("gateway timed out after 3 retries")
    }
}

impl std::error::Error for PaymentError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl std::error::Error for GatewayError {}

#[instrument]
fn charge_card(user: &str) -> Result<(), PaymentError> {
    Err(PaymentError {
        source: GatewayError,
    })
}
