//! `spanline::init()` in real child processes (this test binary, run again
//! with `SPANLINE_INIT_CHILD` set), for each `SPANLINE_FORMAT`, with and
//! without Redis.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report
#![allow(clippy::disallowed_macros)] // the child reports its init error on stderr, as a program would

use std::process::{Output, Stdio};
use std::time::Duration;

use spanline_testkit::{RedisServer, Subscription};

#[test]
fn child() {
    let Ok(lines) = std::env::var("SPANLINE_INIT_CHILD") else {
        return;
    };
    let guard = match spanline::try_init() {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("init failed: {e}");
            std::process::exit(2);
        }
    };
    let _request =
        tracing::info_span!(target: "spanline::request", "request", request_id = "r-init")
            .entered();
    for i in 0..lines.parse::<u64>().unwrap() {
        tracing::info!(i, "hello");
    }
    tracing::warn!("a warning");
    log::info!(target: "legacy", "from the log crate");
    drop(guard); // flushes Redis before the process exits
}

fn run_child(lines: u64, env: &[(&str, &str)]) -> Output {
    let mut cmd = spanline_testkit::this_test_binary("child");
    cmd.env("SPANLINE_INIT_CHILD", lines.to_string())
        .env_remove("RUST_LOG")
        .env_remove("SPANLINE_FORMAT")
        .env_remove("SPANLINE_REDIS_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// The child's log lines (libtest's own output filtered out).
fn log_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('{') || l.contains("[info") || l.contains("[warn"))
        .map(str::to_string)
        .collect()
}

#[test]
fn json_format_writes_json_lines_with_context() {
    for format in ["json", "auto"] {
        let out = run_child(2, &[("SPANLINE_FORMAT", format)]);
        assert!(out.status.success(), "{out:?}");
        let lines = log_lines(&out);
        assert_eq!(lines.len(), 4, "{format}: {lines:?}");
        for line in &lines {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["request_id"], "r-init", "{line}");
        }
        assert!(
            lines[3].contains("\"target\":\"legacy\""),
            "the log crate is bridged: {}",
            lines[3]
        );
    }
}

#[test]
fn pretty_format_renders_for_people() {
    let out = run_child(1, &[("SPANLINE_FORMAT", "pretty")]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("[info     ] hello"), "{text}");
    assert!(text.contains("request_id=r-init"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "no colours when stdout is not a terminal"
    );
}

#[test]
fn rust_log_warn_keeps_the_request_context() {
    let out = run_child(2, &[("SPANLINE_FORMAT", "json"), ("RUST_LOG", "warn")]);
    let lines = log_lines(&out);
    let warn: Vec<_> = lines.iter().filter(|l| l.contains("a warning")).collect();
    assert_eq!(warn.len(), 1, "{lines:?}");
    assert!(warn[0].contains("\"request_id\":\"r-init\""));
    assert!(
        !lines.iter().any(|l| l.contains("\"message\":\"hello\"")),
        "INFO of the app is filtered"
    );
}

#[test]
fn misconfiguration_is_a_clear_error() {
    for (key, value, expected) in [
        (
            "SPANLINE_FORMAT",
            "yaml",
            "SPANLINE_FORMAT=\"yaml\" is not one of json, pretty, auto",
        ),
        ("SPANLINE_PRESET", "xml", "SPANLINE_PRESET=\"xml\""),
        ("RUST_LOG", "info,[=", "invalid log filter"),
        ("SPANLINE_REDIS_URL", "not a url", "the Redis layer"),
    ] {
        let out = run_child(1, &[(key, value)]);
        assert_eq!(out.status.code(), Some(2), "{key}={value}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expected), "{key}={value}: {err}");
    }
}

#[test]
fn the_guard_flushes_every_line_to_redis_before_exit() {
    let server = RedisServer::start();
    let sub = Subscription::new(&server.url(), &["logs:global"]);
    let out = run_child(
        2_000,
        &[
            ("SPANLINE_FORMAT", "json"),
            ("SPANLINE_REDIS_URL", &server.url()),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let got = sub.wait_for(2_002, Duration::from_secs(10));
    assert_eq!(got.len(), 2_002, "every line, the last ones included");
    let stdout_lines = log_lines(&out);
    assert_eq!(
        got.last().unwrap().1,
        *stdout_lines.last().unwrap(),
        "the same bytes as stdout"
    );
}

#[test]
fn context_from_the_parent_environment_is_on_every_line() {
    let out = run_child(
        1,
        &[
            ("SPANLINE_FORMAT", "json"),
            ("BAGGAGE", "request_id=from-parent,tenant=acme"),
            (
                "TRACEPARENT",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
        ],
    );
    assert!(out.status.success());
    for line in log_lines(&out) {
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["tenant"], "acme", "{line}");
        assert_eq!(v["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736", "{line}");
        // The process's own span wins over the inherited value.
        assert_eq!(v["request_id"], "r-init", "{line}");
    }
}
