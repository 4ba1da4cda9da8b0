//! The guard at exit, seen from outside: 4,000 lines, then the guard
//! dropped (or shut down from an at-exit hook) with Redis up, killed or
//! frozen; the counters right after it returned, and the child's stderr.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report
#![allow(clippy::disallowed_macros)] // the measured figures, shown with --nocapture

use std::time::{Duration, Instant};

use serde_json::Value;
use spanline_redis::RedisLayer;
use spanline_testkit::{free_port, RedisServer};
use tracing::info;

use crate::child::Child;

/// The shutdown's stderr line, which must be said exactly once.
#[track_caller]
fn exit_line(stderr: &str) -> &str {
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("spanline-redis: at exit,"))
        .collect();
    assert_eq!(lines.len(), 1, "one exit report: {stderr}");
    lines[0]
}

/// The report comes before the guard returned.
#[track_caller]
fn said_before_return(stderr: &str) {
    let said = stderr.find("spanline-redis: at exit,");
    let returned = stderr.find("CHILD returned");
    assert!(
        said.is_some() && returned.is_some() && said < returned,
        "the report before the return: {stderr}"
    );
}

/// Every line settled: nothing in flight, and the sums hold.
#[track_caller]
fn accounted(r: &Value) {
    let n = |k: &str| r[k].as_u64().unwrap();
    assert_eq!(n("in_flight"), 0, "{r}");
    assert_eq!(
        n("published") + n("failed") + n("dropped"),
        n("emitted"),
        "published + failed + dropped == emitted: {r}"
    );
}

/// The exit line says exactly what was lost.
#[track_caller]
fn says_the_loss(stderr: &str, r: &Value) {
    let n = |k: &str| r[k].as_u64().unwrap();
    let lost = n("emitted") - n("published");
    let line = exit_line(stderr);
    assert!(
        line.contains(&format!(
            "at exit, {lost} of {} log lines were not published",
            n("emitted")
        )),
        "{line} / {r}"
    );
    assert!(
        line.contains(&format!("{} failed", n("failed"))),
        "{line} / {r}"
    );
}

#[test]
fn with_redis_up_the_guard_at_exit_publishes_every_line() {
    let server = RedisServer::start();
    let mut child = Child::start("exit", &[("URL", &server.url()), ("MODE", "streams")]);
    child.wait_for("READY");
    child.go();
    let r = child.result();
    let stderr = child.finish();
    accounted(&r);
    assert_eq!(r["emitted"], 4_001, "{r}");
    assert_eq!(r["published"], 4_001, "{r}");
    let mut con = server.client().get_connection().unwrap();
    let len: u64 = redis::cmd("XLEN")
        .arg("logs:global")
        .query(&mut con)
        .unwrap();
    assert_eq!(len, 4_001, "every line is in the stream");
    assert!(
        !stderr.contains("spanline-redis"),
        "nothing to say: {stderr}"
    );
}

#[test]
fn with_redis_killed_the_guard_at_exit_says_exactly_how_many_lines_were_lost() {
    let mut server = RedisServer::start();
    let mut child = Child::start(
        "exit",
        &[
            ("URL", &server.url()),
            ("MODE", "streams"),
            ("SHUTDOWN_MS", "1000"),
        ],
    );
    child.wait_for("READY");
    server.stop();
    child.go();
    let r = child.result();
    let stderr = child.finish();
    accounted(&r);
    assert_eq!(r["emitted"], 4_001, "{r}");
    assert_eq!(r["published"], 1, "only the line before the kill: {r}");
    says_the_loss(&stderr, &r);
    assert!(
        exit_line(&stderr).contains("at exit, 4000 of 4001 log lines were not published"),
        "{stderr}"
    );
    said_before_return(&stderr);
    assert!(
        r["took_ms"].as_f64().unwrap() < 1_600.0,
        "the drop is bounded by its timeout: {r}"
    );
}

/// Redis frozen (SIGSTOP) at exit, the shutdown timeout 1 s. With a 3 s
/// I/O timeout, the batch on the wire outlives the shutdown's deadline:
/// the guard settles it itself; with 300 ms, the worker settles it and the
/// rest are abandoned when time runs out. Either way the drop returns
/// within the timeout and its 0.1 s of grace (plus scheduling, on a loaded
/// machine), with every line settled and the loss said before it returns.
#[test]
fn with_redis_frozen_the_guard_at_exit_returns_in_time_with_every_line_settled() {
    for io in ["3000", "300"] {
        let server = RedisServer::start();
        let mut child = Child::start(
            "exit",
            &[
                ("URL", &server.url()),
                ("SHUTDOWN_MS", "1000"),
                ("IO_MS", io),
            ],
        );
        child.wait_for("READY");
        server.freeze();
        child.go();
        let r = child.result();
        let stderr = child.finish();
        server.thaw();
        println!("frozen, I/O timeout {io} ms: {r}");
        let took = r["took_ms"].as_f64().unwrap();
        assert!(
            (950.0..1_600.0).contains(&took),
            "I/O {io} ms: the drop took {took} ms: {r}"
        );
        accounted(&r);
        assert!(
            r["failed_unknown"].as_u64().unwrap() > 0,
            "the batch on the wire: {r}"
        );
        assert!(r["dropped_shutdown"].as_u64().unwrap() > 0, "{r}");
        says_the_loss(&stderr, &r);
        said_before_return(&stderr);
    }
}

/// As `spanline::init` does: the guard in a `static`, shut down from a C
/// `atexit` hook (after the main thread's thread-locals are gone), Redis
/// frozen. The hook's shutdown returns in time with every line settled and
/// the loss said; a second call returns `None` at once.
#[test]
fn a_guard_in_a_static_shut_down_from_an_at_exit_hook_settles_and_says_the_loss() {
    let server = RedisServer::start();
    let mut child = Child::start(
        "exit-at-exit",
        &[
            ("URL", &server.url()),
            ("SHUTDOWN_MS", "1000"),
            ("IO_MS", "3000"),
        ],
    );
    child.wait_for("READY");
    server.freeze();
    child.go();
    let stderr = child.finish();
    server.thaw();
    let result = stderr
        .lines()
        .find_map(|l| l.strip_prefix("CHILD RESULT "))
        .unwrap_or_else(|| panic!("no result: {stderr}"));
    let r: Value = serde_json::from_str(result).unwrap();
    println!("at exit, frozen: {r}");
    accounted(&r);
    assert_eq!(r["emitted"], 4_001, "{r}");
    let took = r["took_ms"].as_f64().unwrap();
    assert!(took < 1_600.0, "took {took} ms");
    says_the_loss(&stderr, &r);
    said_before_return(&stderr);
    assert!(stderr.contains("CHILD first Some("), "{stderr}");
    let second: u64 = stderr
        .split("CHILD second None in ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("no second call: {stderr}"));
    assert!(second < 50, "a second call returns at once: {second} ms");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn shutdown_takes_a_shared_reference_and_runs_once() {
    let server = RedisServer::start();
    let (layer, guard) = RedisLayer::builder(&server.url()).build().unwrap();
    let stats = layer.stats();
    let subscriber =
        tracing_subscriber::layer::SubscriberExt::with(tracing_subscriber::registry(), layer);
    let dispatch = tracing::Dispatch::new(subscriber);
    tracing::dispatcher::with_default(&dispatch, || (0..10).for_each(|i| info!(i, "line")));
    let guard = &guard;
    let first = guard.shutdown(Duration::from_secs(5)).unwrap();
    assert!(first.complete && first.abandoned == 0, "{first:?}");
    assert_eq!((stats.published(), stats.in_flight()), (10, 0));
    let started = Instant::now();
    assert_eq!(guard.shutdown(Duration::from_secs(5)), None);
    assert!(started.elapsed() < Duration::from_millis(50));
    // After the shutdown: counted, never queued.
    tracing::dispatcher::with_default(&dispatch, || info!("too late"));
    assert_eq!((stats.dropped_shutdown(), stats.in_flight()), (1, 0));
}

/// Redis down all along: the loss is said on stderr while it lasts, at
/// most once per period (1 s here), each time with the counts since the
/// last, which add up to every drop.
#[test]
fn while_redis_is_down_the_loss_is_said_periodically() {
    let url = format!("redis://127.0.0.1:{}", free_port());
    let mut child = Child::start(
        "periodic",
        &[("URL", &url), ("EVERY_MS", "1000"), ("PAUSE_MS", "1500")],
    );
    let r = child.result();
    let stderr = child.finish();
    let before_exit = &stderr[..stderr.find("CHILD dropping").unwrap()];
    let counts: Vec<u64> = before_exit
        .lines()
        .filter(|l| l.contains("log lines dropped and 0 failed in the last"))
        .map(|l| {
            l.trim_start_matches("spanline-redis: ")
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    println!("periodic reports: {counts:?}, {r}");
    let elapsed_s = r["took_ms"].as_f64().unwrap() / 1e3;
    assert!(
        counts.len() >= 2 && counts.len() as f64 <= elapsed_s + 1.0,
        "said periodically, at most once a second: {counts:?} in {elapsed_s} s: {stderr}"
    );
    assert!(counts.iter().all(|&n| n > 0), "{counts:?}");
    assert_eq!(
        counts.iter().sum::<u64>(),
        r["dropped_queue_full"].as_u64().unwrap(),
        "the counts since the last report add up: {stderr}"
    );
    assert_eq!(
        stderr.matches("cannot reach Redis at 127.0.0.1:").count(),
        1,
        "{stderr}"
    );
    assert!(
        before_exit.contains("cannot reach Redis at 127.0.0.1:"),
        "{stderr}"
    );
}
