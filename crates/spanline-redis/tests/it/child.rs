//! Scenarios that must be seen from outside the process (its real stderr,
//! its exit): this test binary runs again as a child, picks the scenario
//! named in `SPANLINE_REDIS_TEST_CHILD`, and talks to the test over its
//! stdin and stdout (`CHILD READY`, `go`, `CHILD RESULT {json}`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report
#![allow(clippy::disallowed_macros)] // the child's stderr is what the test reads

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{ChildStdin, ChildStdout, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use spanline_core::ContextLayer;
use spanline_redis::{Mode, RedisGuard, RedisLayer, RedisLayerBuilder, RedisStats};
use tracing::info;
use tracing_subscriber::prelude::*;

const SCENARIO: &str = "SPANLINE_REDIS_TEST_CHILD";

/// The scenario's options, from the child's environment.
fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_default()
}

fn millis(name: &str, default: u64) -> Duration {
    Duration::from_millis(var(name).parse().unwrap_or(default))
}

/// The child's side. In a normal test run (no scenario named) it does
/// nothing.
#[test]
fn run() {
    let scenario = var(SCENARIO);
    match scenario.as_str() {
        "" => {}
        "exit" => exit(false),
        "exit-at-exit" => exit(true),
        "misconfig" => misconfig(),
        "periodic" => periodic(),
        other => panic!("unknown scenario {other}"),
    }
}

/// The builder the parent described: `URL` (or `NODES`, a cluster's,
/// comma-separated), `MODE`, `IO_MS`, `SHUTDOWN_MS`.
fn builder() -> RedisLayerBuilder {
    let nodes = var("NODES");
    let builder = if nodes.is_empty() {
        RedisLayer::builder(&var("URL"))
    } else {
        let nodes: Vec<&str> = nodes.split(',').collect();
        RedisLayer::builder_cluster(&nodes)
    };
    let mode = match var("MODE").as_str() {
        "streams" => Mode::Streams,
        _ => Mode::PubSub,
    };
    builder
        .mode(mode)
        .capacity(100_000, 64 << 20)
        .stream_limits(1_000_000, 1_000_000, Duration::from_secs(3600))
        .timeouts(Duration::from_millis(300), millis("IO_MS", 300))
        .max_backoff(Duration::from_millis(200))
        .shutdown_timeout(millis("SHUTDOWN_MS", 2_000))
}

/// The counters as JSON, and how long the call measured took.
fn result(stats: &RedisStats, took: Duration) -> String {
    serde_json::json!({
        "took_ms": took.as_secs_f64() * 1e3,
        "emitted": stats.emitted(),
        "published": stats.published(),
        "failed": stats.failed(),
        "failed_unknown": stats.failed_unknown(),
        "dropped": stats.dropped(),
        "dropped_shutdown": stats.dropped_shutdown(),
        "dropped_queue_full": stats.dropped_queue_full(),
        "in_flight": stats.in_flight(),
    })
    .to_string()
}

/// Tells the parent, on stdout.
fn tell(what: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "CHILD {what}").unwrap();
    out.flush().unwrap();
}

/// Waits for the parent's `go`.
fn wait_go() {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
}

static GUARD: OnceLock<RedisGuard> = OnceLock::new();
static STATS: OnceLock<RedisStats> = OnceLock::new();

/// A warm line, `READY`, the parent's `go` (it kills or freezes Redis
/// meanwhile), `LINES` lines, then the guard's drop (or, `at_exit`, the
/// guard kept in a static and shut down from a C `atexit` hook, as
/// `spanline::init` does), timed; the counters right after it returned.
/// On stderr, `CHILD returned` marks the return.
fn exit(at_exit: bool) {
    let (layer, guard) = builder().build().unwrap();
    let stats = layer.stats();
    let dispatch = tracing::Dispatch::new(
        tracing_subscriber::registry()
            .with(ContextLayer::new())
            .with(layer),
    );
    tracing::dispatcher::with_default(&dispatch, || info!("warm up"));
    assert!(guard.flush(Duration::from_secs(5)).complete);
    tell("READY");
    wait_go();
    let lines: u64 = var("LINES").parse().unwrap_or(4_000);
    tracing::dispatcher::with_default(&dispatch, || {
        (0..lines).for_each(|i| info!(i, "line before exit"));
    });
    if at_exit {
        let _ = STATS.set(stats);
        let _ = GUARD.set(guard);
        register_at_exit();
        // The test returns; libtest exits; the hook shuts down.
        return;
    }
    let started = Instant::now();
    drop(guard);
    let took = started.elapsed();
    let result = result(&stats, took);
    eprintln!("CHILD returned");
    tell(&format!("RESULT {result}"));
}

/// Registers [`shut_down_at_exit`] with the C library's `atexit`.
fn register_at_exit() {
    extern "C" {
        fn atexit(hook: extern "C" fn()) -> std::os::raw::c_int;
    }
    // SAFETY: `atexit` stores a function pointer; `shut_down_at_exit`
    // never unwinds (it neither panics nor calls anything that may).
    #[allow(unsafe_code)]
    let registered = unsafe { atexit(shut_down_at_exit) };
    assert_eq!(registered, 0);
}

/// Runs after `main` returned, on the main thread, whose thread-locals
/// are gone: the guard's shutdown, timed, then a second call.
extern "C" fn shut_down_at_exit() {
    let (Some(guard), Some(stats)) = (GUARD.get(), STATS.get()) else {
        return;
    };
    let started = Instant::now();
    let first = guard.shutdown(millis("SHUTDOWN_MS", 2_000));
    let took = started.elapsed();
    let result = result(stats, took);
    let again = Instant::now();
    let second = guard.shutdown(Duration::from_secs(5));
    let second_took = again.elapsed();
    let text = format!(
        "CHILD returned\nCHILD RESULT {result}\nCHILD first {first:?}\nCHILD second {second:?} in {} ms\n",
        second_took.as_millis()
    );
    // No `eprintln!` here: it panics when stderr fails, and this must not.
    let _ = std::io::stderr().write_all(text.as_bytes());
}

/// `LINES` lines against a misconfigured Redis, a flush (timed), the
/// counters; then the guard's drop.
fn misconfig() {
    let (layer, guard) = builder().build().unwrap();
    let stats = layer.stats();
    let dispatch = tracing::Dispatch::new(
        tracing_subscriber::registry()
            .with(ContextLayer::new())
            .with(layer),
    );
    let lines: u64 = var("LINES").parse().unwrap_or(20);
    tracing::dispatcher::with_default(&dispatch, || {
        (0..lines).for_each(|i| info!(i, "line"));
    });
    let started = Instant::now();
    let flushed = guard.flush(Duration::from_secs(10));
    let took = started.elapsed();
    assert!(flushed.complete, "{flushed:?}");
    tell(&format!("RESULT {}", result(&stats, took)));
    drop(guard);
}

/// Redis down, a small queue, lines in three bursts `PAUSE_MS` apart,
/// with the stderr report every `EVERY_MS`; `CHILD dropping` on stderr
/// before the guard's drop.
fn periodic() {
    let (layer, guard) = RedisLayer::builder(&var("URL"))
        .capacity(10, 1 << 20)
        .timeouts(Duration::from_millis(100), Duration::from_millis(100))
        .max_backoff(Duration::from_millis(100))
        .shutdown_timeout(Duration::from_millis(300))
        .stderr_report_every(millis("EVERY_MS", 1_000))
        .build()
        .unwrap();
    let stats = layer.stats();
    let dispatch = tracing::Dispatch::new(
        tracing_subscriber::registry()
            .with(ContextLayer::new())
            .with(layer),
    );
    let pause = millis("PAUSE_MS", 1_500);
    let started = Instant::now();
    for burst in 0..3 {
        tracing::dispatcher::with_default(&dispatch, || {
            (0..500).for_each(|i| info!(burst, i, "line"));
        });
        std::thread::sleep(pause);
    }
    // Time for the last burst's report, on a loaded machine too.
    std::thread::sleep(Duration::from_secs(1));
    eprintln!("CHILD dropping");
    tell(&format!("RESULT {}", result(&stats, started.elapsed())));
    drop(guard);
}

/// The parent's side: a child running `scenario`.
pub(crate) struct Child {
    process: std::process::Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    stderr: Option<std::thread::JoinHandle<String>>,
    said: Vec<String>,
}

impl Child {
    /// Starts this test binary as a child running `scenario`, with `env`.
    pub(crate) fn start(scenario: &str, env: &[(&str, &str)]) -> Self {
        let mut cmd = spanline_testkit::this_test_binary("child::run");
        cmd.env(SCENARIO, scenario)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut process = cmd.spawn().unwrap();
        let stdin = process.stdin.take();
        let stdout = BufReader::new(process.stdout.take().unwrap());
        let mut err = process.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        });
        Self {
            process,
            stdin,
            stdout,
            stderr: Some(stderr),
            said: Vec::new(),
        }
    }

    /// Reads the child's stdout until `CHILD {what}`; returns the rest of
    /// that line. Panics when the child ends first.
    pub(crate) fn wait_for(&mut self, what: &str) -> String {
        let prefix = format!("CHILD {what}");
        loop {
            let mut line = String::new();
            let n = self.stdout.read_line(&mut line).unwrap();
            assert!(n > 0, "the child ended before {what:?}: {:?}", self.said);
            let line = line.trim_end().to_string();
            if let Some(rest) = line.strip_prefix(&prefix) {
                return rest.trim().to_string();
            }
            self.said.push(line);
        }
    }

    /// Lets the child go on.
    pub(crate) fn go(&mut self) {
        if let Some(stdin) = self.stdin.as_mut() {
            stdin.write_all(b"go\n").unwrap();
            stdin.flush().unwrap();
        }
    }

    /// Waits for the child's `RESULT` line, as JSON.
    pub(crate) fn result(&mut self) -> serde_json::Value {
        serde_json::from_str(&self.wait_for("RESULT")).unwrap()
    }

    /// Waits for the child to end; its whole stderr. Panics when it failed.
    pub(crate) fn finish(mut self) -> String {
        drop(self.stdin.take());
        let mut rest = String::new();
        let _ = self.stdout.read_to_string(&mut rest);
        let status = self.process.wait().unwrap();
        let stderr = self
            .stderr
            .take()
            .map(|h| h.join().unwrap())
            .unwrap_or_default();
        assert!(
            status.success(),
            "the child failed ({status}): stdout {:?} {rest}\nstderr {stderr}",
            self.said
        );
        stderr
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}
