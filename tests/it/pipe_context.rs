//! `spanline::pipe::forwarder` hands the child the current context.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::process::Command;

use spanline::ContextLayer;
use tracing_subscriber::prelude::*;

#[test]
fn forwarder_passes_the_current_context_to_the_child() {
    let subscriber = tracing_subscriber::registry().with(ContextLayer::new());
    let status = tracing::subscriber::with_default(subscriber, || {
        let _request = tracing::info_span!("request", request_id = "r-fwd").entered();
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            r#"case "$BAGGAGE" in *request_id=r-fwd*) exit 0;; *) exit 3;; esac"#,
        ]);
        spanline::pipe::forwarder("env")
            .spawn(&mut cmd)
            .and_then(|child| child.wait())
    });
    assert!(status.unwrap().success(), "BAGGAGE lacked request_id=r-fwd");
}

#[test]
fn a_bare_forwarder_adds_no_context() {
    let subscriber = tracing_subscriber::registry().with(ContextLayer::new());
    let status = tracing::subscriber::with_default(subscriber, || {
        let _request = tracing::info_span!("request", request_id = "r-fwd").entered();
        let mut cmd = Command::new("sh");
        cmd.env_remove("BAGGAGE")
            .args(["-c", r#"test -z "$BAGGAGE""#]);
        spanline::pipe::Forwarder::new("env")
            .spawn(&mut cmd)
            .and_then(|child| child.wait())
    });
    assert!(status.unwrap().success());
}
