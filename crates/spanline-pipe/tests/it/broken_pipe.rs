//! A parent that closes the pipe early: the child goes on, and
//! `ForwardStats::dropped` counts every record it did not forward, exactly.
//! The parent and the child are this test binary again (`broken_pipe::parent`
//! and `broken_pipe::child`); the child learns on stdin that the parent
//! closed the pipe, and answers its counters on stdout.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::io::{BufRead, BufReader, Read, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use spanline_pipe::{ForwardLayer, Forwarder, OnFull};
use tracing::{info, info_span};
use tracing_subscriber::prelude::*;

const ROLE: &str = "SPANLINE_PIPE_BROKEN_ROLE";
const PARENT: &str = "SPANLINE_PIPE_BROKEN_PARENT";

/// Events the child logs while the parent reads.
const BEFORE: u64 = 10;
/// Rounds the child logs after the parent closed the pipe.
const ROUNDS: u64 = 200;
/// Records per round: a span, a field recorded on it, two events, its close.
const PER_ROUND: u64 = 5;

/// The child: `BEFORE` events, then (told on stdin that the pipe is closed)
/// `ROUNDS` rounds of records; prints its counters.
#[test]
fn child() {
    let Ok(mode) = std::env::var(ROLE) else {
        return;
    };
    let on_full = if mode == "drop" {
        OnFull::Drop { capacity: 1_024 }
    } else {
        OnFull::Block
    };
    let forward = ForwardLayer::from_env_with(on_full).unwrap();
    let stats = forward.stats();
    tracing_subscriber::registry().with(forward).init();
    for i in 0..BEFORE {
        info!(i, "before");
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    for i in 0..ROUNDS {
        let span = info_span!("after_span", i, late = tracing::field::Empty);
        span.record("late", 1);
        let _entered = span.enter();
        info!(i, "after");
        info!("after, again");
    }
    // Drop mode: the writer thread counts what it fails to write; wait
    // for it (what would come past the expected count shows as well).
    let expected = 1 + BEFORE + ROUNDS * PER_ROUND;
    let deadline = Instant::now() + Duration::from_secs(10);
    while stats.written() + stats.dropped() < expected && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(50));
    let said = serde_json::json!({
        "written": stats.written(),
        "dropped": stats.dropped(),
        "broken": stats.broken(),
    });
    std::io::stdout()
        .write_all(format!("{said}\n").as_bytes())
        .unwrap();
}

/// The parent, itself a process of its own (`broken_pipe::parent`, its
/// mode in `SPANLINE_PIPE_BROKEN_PARENT`), so that no other test forks
/// while the pipe is closed (a fork holds a copy of the read end until it
/// execs, and a write would then succeed): runs the child, reads its
/// `BEFORE` events, closes the pipe, lets it log on, and prints its
/// counters.
#[test]
fn parent() {
    let Ok(mode) = std::env::var(PARENT) else {
        return;
    };
    // A subscriber at INFO while spawning: the child is told to send INFO.
    let capture = spanline_testkit::Capture::new();
    let (child, read) =
        tracing::subscriber::with_default(spanline_testkit::json_subscriber(&capture), || {
            let mut cmd = spanline_testkit::this_test_binary("broken_pipe::child");
            cmd.env(ROLE, &mode)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null());
            Forwarder::new("short-lived parent")
                .spawn_with_reader(&mut cmd)
                .unwrap()
        });
    let mut child = spanline_testkit::KillOnDrop(child);
    let mut records = BufReader::new(read);
    let mut before = 0;
    let mut line = Vec::new();
    while before < BEFORE {
        line.clear();
        assert!(records.read_until(b'\n', &mut line).unwrap() > 0, "EOF");
        let record: Value = serde_json::from_slice(&line).unwrap();
        if record["t"] == "ev" && record["fields"]["message"] == "before" {
            before += 1;
        }
    }
    // Every record so far was read: nothing is left in the pipe.
    drop(records);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"closed\n").unwrap();
    drop(stdin);
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(child.wait().unwrap().success(), "{out}");
    let said = out
        .lines()
        .find(|l| l.contains("\"dropped\""))
        .unwrap_or_else(|| panic!("no counters in {out:?}"));
    std::io::stdout()
        .write_all(format!("COUNTERS {said}\n").as_bytes())
        .unwrap();
}

/// Runs the parent in `mode`; returns the child's counters.
fn counters_after_the_parent_closed(mode: &str) -> Value {
    let out = spanline_testkit::this_test_binary("broken_pipe::parent")
        .env(PARENT, mode)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    text.lines()
        .find_map(|l| l.strip_prefix("COUNTERS "))
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no counters in {text:?}"))
}

#[test]
fn blocking_mode_counts_every_record_after_the_pipe_broke() {
    let said = counters_after_the_parent_closed("block");
    assert_eq!(said["broken"], true, "{said}");
    assert_eq!(
        said["written"],
        1 + BEFORE,
        "the hello and the events read: {said}"
    );
    assert_eq!(said["dropped"], ROUNDS * PER_ROUND, "{said}");
}

#[test]
fn drop_mode_counts_every_record_after_the_pipe_broke() {
    let said = counters_after_the_parent_closed("drop");
    assert_eq!(said["broken"], true, "{said}");
    assert_eq!(said["written"], 1 + BEFORE, "{said}");
    assert_eq!(said["dropped"], ROUNDS * PER_ROUND, "{said}");
}
