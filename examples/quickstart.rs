//! A small instrumented program: JSON lines when stdout is not a terminal,
//! the pretty renderer when it is. `RUST_LOG`, `SPANLINE_FORMAT`,
//! `SPANLINE_PRESET` and the other variables of `spanline::init()` apply.
//!
//! Run with: `cargo run --example quickstart`
//! (and `cargo run --example quickstart | cat` for JSON lines,
//!  `RUST_LOG=debug cargo run --example quickstart` for more,
//!  `RUST_LOG=warn cargo run --example quickstart` for the one WARN line,
//!  which still carries the request's context).

use std::fmt;

use tracing::{field, info, info_span, instrument, warn};

fn main() {
    // The whole stack from the environment; records of the `log` crate
    // become events too. Keep the guard until the end of main.
    let _guard = spanline::builder().service("quickstart").init();

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
