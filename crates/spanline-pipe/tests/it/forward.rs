//! Real child processes: this test binary runs itself again as the child
//! (the `forward::child` test, selected by `SPANLINE_PIPE_TEST_ROLE`), with a
//! `ForwardLayer`; the parent forwards with a `Forwarder` into a capturing
//! JSON layer, under various filters.
//!
//! One file: every test here shares the child's roles (the `child` test)
//! and the helpers that run them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report
#![allow(clippy::disallowed_macros)] // the grandchild answers on stdout, by design

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Map, Value};
use spanline_core::ContextLayer;
use spanline_json::JsonLayer;
use spanline_pipe::{ForwardLayer, Forwarder, OnFull, Receiver};
use spanline_testkit::Capture;
use tracing::{debug, debug_span, info, info_span, warn};
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

const ROLE: &str = "SPANLINE_PIPE_TEST_ROLE";

// ==== the child ====

/// Runs as the child when `SPANLINE_PIPE_TEST_ROLE` is set; a no-op test
/// otherwise.
#[test]
fn child() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    if role == "leak" {
        // No ForwardLayer: descriptor 3 stays inheritable, and a long-lived
        // descendant keeps the pipe open after this process exits.
        let _ = Command::new("sleep")
            .arg("3")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn();
        return;
    }
    if role == "short_parent" {
        // A parent that starts a forwarded child and exits at once.
        tracing_subscriber::registry()
            .with(JsonLayer::builder().with_writer(std::io::sink).build())
            .init();
        let mut cmd = child_command("outlive");
        cmd.stdout(Stdio::null());
        let child = Forwarder::new("orphan").spawn(&mut cmd).unwrap();
        std::mem::forget(child);
        std::thread::sleep(Duration::from_millis(100));
        std::process::exit(0);
    }
    let on_full = if ["flood_drop", "few_drop"].contains(&role.as_str()) {
        OnFull::Drop { capacity: 64 }
    } else {
        OnFull::Block
    };
    let forward = ForwardLayer::from_env_with(on_full).map(|forward| {
        if role == "secret" {
            forward.redact(["password", "Authorization"])
        } else {
            forward
        }
    });
    let stats = forward.as_ref().map(ForwardLayer::stats);
    if role == "grandchild" {
        // Inherited SPANLINE_FORWARD, but not the pipe: must run standalone.
        print!(
            "{}",
            if forward.is_some() {
                "FORWARDING"
            } else {
                "STANDALONE"
            }
        );
        return;
    }
    if role == "own_context" {
        // As `spanline::init()` composes a child: its own filter on its
        // ContextLayer, with a context key of its own.
        let context = ContextLayer::new()
            .context_key("shard")
            .filter(EnvFilter::new("info"));
        tracing_subscriber::registry()
            .with(context)
            .with(forward)
            .init();
    } else {
        tracing_subscriber::registry().with(forward).init();
    }
    match role.as_str() {
        "secret" => {
            let _login = info_span!("login", password = "hunter2", user = "ann").entered();
            info!(authorization = "Bearer hunter2", "logged in");
            let cause = std::io::Error::other("hunter2 was wrong");
            tracing::error!(password = &cause as &dyn std::error::Error, "rejected");
        }
        "nested" => {
            let _job = info_span!("job", job_id = "j-1", attempt = 2).entered();
            let _step = debug_span!(target: "child_crate::steps", "step", n = 1).entered();
            debug!(target: "child_crate::db", rows = 10u64, ok = true, t = 1.5, neg = -3i64, "query done");
            info!("step done");
            warn!("careful");
        }
        "garbage" => {
            info!("before garbage");
            let mut raw = std::fs::OpenOptions::new()
                .write(true)
                .open("/proc/self/fd/3")
                .unwrap_or_else(|_| raw_pipe());
            raw.write_all(b"this is not json\n{\"t\":\"ev\",\"broken\n")
                .unwrap();
            info!("after garbage");
        }
        "too_long" => {
            info!("before the long line");
            // Not a record: 100 KiB without a newline, as a foreign writer might.
            let mut long = vec![b'x'; 100 * 1024];
            long.push(b'\n');
            raw_pipe().write_all(&long).unwrap();
            info!("after the long line");
        }
        "abort" => {
            info!("last whole line");
            // A record cut short by a crash (written by hand, as a crash
            // in the middle of a write would leave it).
            raw_pipe()
                .write_all(b"{\"t\":\"ev\",\"pid\":1,\"ts\":[0,0],\"span\":null,\"lev")
                .unwrap();
            std::process::abort();
        }
        "flood" | "flood_drop" => {
            for i in 0..20_000u64 {
                info!(i, "flood");
            }
            // No wait here: the exit flushes the drop-mode queue and
            // reports what it could not send.
        }
        "few_drop" => {
            // Returns from main right away: nothing but the exit flush
            // gets these to the parent.
            for i in 0..50u64 {
                info!(i, "few");
            }
        }
        "threads" => {
            let big = "x".repeat(4096);
            let handles: Vec<_> = (0..8)
                .map(|t| {
                    let big = big.clone();
                    std::thread::spawn(move || {
                        for i in 0..200 {
                            info!(t, i, payload = big.as_str(), "threaded");
                        }
                    })
                })
                .collect();
            handles.into_iter().for_each(|h| h.join().unwrap());
        }
        "spawn_grandchild" => {
            let out = child_command("grandchild").output().unwrap();
            let said = String::from_utf8_lossy(&out.stdout);
            let standalone = said.contains("STANDALONE") && !said.contains("FORWARDING");
            info!(standalone, "grandchild checked");
        }
        "outlive" => {
            // The parent is gone: writes fail with a broken pipe, and this
            // process goes on regardless.
            let marker = std::env::var("MARKER").unwrap();
            for i in 0..2_000u64 {
                info!(i, "after the parent died");
                std::thread::sleep(Duration::from_millis(1));
            }
            let broken = stats.map(|s| s.broken()).unwrap_or_default();
            std::fs::write(marker, if broken { "broken" } else { "not broken" }).unwrap();
        }
        "env_check" => {
            let baggage = std::env::var("BAGGAGE").unwrap_or_default();
            info!(baggage = baggage.as_str(), "environment");
        }
        "own_context" => {
            // INFO with a plain field: enabled by the child's own filter.
            let _batch = info_span!("batch", batch = 7).entered();
            // DEBUG, kept by the child because `shard` is its context key.
            let _shard = debug_span!("shard", shard = "s-3").entered();
            // DEBUG with a plain field: the child's filter disables it.
            let _noise = debug_span!("noise", noise = 1).entered();
            info!("below the parent's level");
            warn!("own context");
        }
        "late_field" => {
            let request = info_span!(
                "request",
                request_id = "r-late",
                user_id = tracing::field::Empty
            );
            let _entered = request.enter();
            warn!("before the record");
            request.record("user_id", 42u64);
            warn!("after the record");
            let _inner = info_span!("step", n = 1).entered();
            warn!("in a child span");
        }
        "fail" => {
            warn!("about to fail");
            std::process::exit(3);
        }
        "many" => {
            for i in 0..2_000u64 {
                info!(i, "many");
            }
        }
        "errors" => {
            let err = spanline_testkit::QueryFailed(spanline_testkit::TimedOut);
            tracing::error!(
                error = &err as &dyn std::error::Error,
                table = "users",
                "small record"
            );
            let big = "x".repeat(5_000);
            // Over one atomic write: the slow path.
            tracing::error!(
                big = big.as_str(),
                error = &err as &dyn std::error::Error,
                "large record"
            );
            warn!(
                error = &spanline_testkit::TimedOut as &dyn std::error::Error,
                "no cause"
            );
        }
        "json_values" => {
            let cart = spanline_core::json(serde_json::json!([{"sku": "a-1", "qty": 2}]));
            let _order = info_span!("order", cart).entered();
            let user = serde_json::json!({"id": 7, "roles": ["admin", "dev"]});
            info!(
                user = spanline_core::json(&user),
                none = spanline_core::json(None::<u8>),
                "small record"
            );
            let big = "x".repeat(5_000);
            // Over one atomic write: the slow path.
            info!(
                big = big.as_str(),
                user = spanline_core::json(&user),
                "large record"
            );
        }
        "broken_fmt" => {
            info!(v = ?Broken, "small record");
            let big = "x".repeat(5_000);
            // Over one atomic write: the slow path, which once used `format!`.
            info!(big = big.as_str(), v = ?Broken, "large record");
        }
        other => panic!("unknown role {other}"),
    }
}

/// A `Debug` that writes half, then fails (`format!` panics on it).
struct Broken;

impl std::fmt::Debug for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("half")?;
        Err(std::fmt::Error)
    }
}

/// This test binary, run again as the child in `role`.
fn child_command(role: &str) -> Command {
    let mut cmd = spanline_testkit::this_test_binary("forward::child");
    cmd.env(ROLE, role);
    cmd
}

fn raw_pipe() -> std::fs::File {
    std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/self/fd/3")
        .unwrap()
}

// ==== the parent ====

/// The parent under a global filter (in front of the registry).
fn run(role: &str, filter: &str) -> (Vec<Map<String, Value>>, std::process::ExitStatus) {
    let capture = Capture::new();
    let subscriber = tracing_subscriber::registry()
        .with(EnvFilter::new(filter))
        .with(ContextLayer::new())
        .with(JsonLayer::builder().with_writer(capture.clone()).build());
    run_under(subscriber, role, capture)
}

/// The parent with the filter on its ContextLayer, as `spanline::init()`
/// composes it.
fn run_gated(role: &str, filter: &str) -> (Vec<Map<String, Value>>, std::process::ExitStatus) {
    let capture = Capture::new();
    let subscriber = tracing_subscriber::registry()
        .with(ContextLayer::new().filter(EnvFilter::new(filter)))
        .with(JsonLayer::builder().with_writer(capture.clone()).build());
    run_under(subscriber, role, capture)
}

fn run_under(
    subscriber: impl tracing::Subscriber + Send + Sync + 'static,
    role: &str,
    capture: Capture,
) -> (Vec<Map<String, Value>>, std::process::ExitStatus) {
    run_launched(subscriber, role, capture, || {
        info_span!("launch", worker = role)
    })
}

/// Like [`run_under`], the child spawned inside the span `launch` makes.
fn run_launched(
    subscriber: impl tracing::Subscriber + Send + Sync + 'static,
    role: &str,
    capture: Capture,
    launch: impl FnOnce() -> tracing::Span,
) -> (Vec<Map<String, Value>>, std::process::ExitStatus) {
    let status = tracing::subscriber::with_default(subscriber, || {
        let _launch = launch().entered();
        let mut cmd = child_command(role);
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        Forwarder::new(role)
            .leak_timeout(Duration::from_millis(300))
            .spawn(&mut cmd)
            .unwrap()
            .wait()
            .unwrap()
    });
    (capture.json_lines(), status)
}

fn messages(lines: &[Map<String, Value>]) -> Vec<String> {
    lines
        .iter()
        .map(|l| l["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn line<'a>(lines: &'a [Map<String, Value>], message: &str) -> &'a Map<String, Value> {
    lines
        .iter()
        .find(|l| l["message"] == message)
        .unwrap_or_else(|| panic!("no {message:?} in {lines:#?}"))
}

#[test]
fn the_parents_filter_applies_to_the_childs_targets() {
    let (lines, status) = run("nested", "warn,child_crate=debug");
    assert!(status.success());
    let got = messages(&lines);
    assert!(got.contains(&"query done".to_string()), "{got:?}");
    assert!(got.contains(&"careful".to_string()));
    assert!(
        !got.contains(&"step done".to_string()),
        "INFO of another target is below warn: {got:?}"
    );

    let (lines, _) = run("nested", "info");
    let got = messages(&lines);
    assert!(
        !got.contains(&"query done".to_string()),
        "DEBUG is hidden under info: {got:?}"
    );
    assert!(got.contains(&"step done".to_string()));
}

#[test]
fn blocking_mode_delivers_every_record_to_a_slow_reader() {
    // The child is done long before the parent has re-emitted its last
    // records (each write of the parent takes 1 ms): `wait` must wait for
    // them, and must not take the slow reader for a leaked pipe.
    let capture = Capture::slow(Duration::from_millis(1));
    let subscriber = spanline_testkit::json_subscriber(&capture);
    let (lines, status) = run_under(subscriber, "many", capture);
    assert!(status.success());
    let indices: Vec<u64> = lines
        .iter()
        .filter(|l| l["message"] == "many")
        .map(|l| l["i"].as_u64().unwrap())
        .collect();
    assert_eq!(indices.len(), 2_000, "every record");
    assert!(indices.iter().copied().eq(0..2_000), "in order");
    assert!(
        !messages(&lines).iter().any(|m| m.contains("descendants")),
        "no false leak report"
    );
    assert_eq!(messages(&lines).last().unwrap(), "child exited");
}

/// The parent under `preset`, as `spanline::init()` would set it up.
fn run_preset(role: &str, preset: spanline_core::Preset) -> Vec<Map<String, Value>> {
    let capture = Capture::new();
    let subscriber = tracing_subscriber::registry()
        .with(ContextLayer::new())
        .with(
            JsonLayer::builder()
                .schema(preset)
                .with_writer(capture.clone())
                .build(),
        );
    let (lines, status) = run_under(subscriber, role, capture);
    assert!(status.success());
    lines
}

#[test]
fn the_childs_errors_are_written_in_the_parents_style() {
    use spanline_core::Preset;
    let chain = "TimedOut: timed out after 5s\n\nThe above exception was the direct cause of the following exception:\n\nQueryFailed: query failed";
    let lines = run_preset("errors", Preset::Structlog);
    let event = |lines: &[Map<String, Value>], message: &str| {
        lines
            .iter()
            .find(|l| l.get("event").or(l.get("message")) == Some(&Value::from(message)))
            .unwrap_or_else(|| panic!("no {message:?} in {lines:#?}"))
            .clone()
    };
    for message in ["small record", "large record"] {
        let line = event(&lines, message);
        assert_eq!(line["exception"], chain, "{message}: {line:?}");
        assert!(
            line.get("error_sources").is_none() && line.get("error_types").is_none(),
            "{line:?}"
        );
    }
    assert_eq!(
        event(&lines, "no cause")["exception"],
        "TimedOut: timed out after 5s"
    );

    let lines = run_preset("errors", Preset::Ecs);
    let line = event(&lines, "small record");
    assert_eq!(line["error.message"], "query failed");
    assert_eq!(line["error.type"], "QueryFailed");
    assert_eq!(
        line["error.stack_trace"],
        "QueryFailed: query failed\nCaused by: TimedOut: timed out after 5s"
    );

    // The flat preset: as the child wrote it, without the type names.
    let lines = run_preset("errors", Preset::Flat);
    for message in ["small record", "large record"] {
        let line = event(&lines, message);
        assert_eq!(line["error"], "query failed");
        assert_eq!(
            line["error_sources"],
            serde_json::json!(["timed out after 5s"])
        );
        assert!(line.get("error_types").is_none(), "{line:?}");
    }
    let line = event(&lines, "no cause");
    assert_eq!(line["error"], "timed out after 5s");
    assert!(
        line.get("error_sources").is_none() && line.get("error_types").is_none(),
        "{line:?}"
    );
}

#[test]
fn the_childs_json_values_stay_json_in_the_parent() {
    let (lines, status) = run("json_values", "info");
    assert!(status.success());
    let user = serde_json::json!({"id": 7, "roles": ["admin", "dev"]});
    let cart = serde_json::json!([{"sku": "a-1", "qty": 2}]);
    for message in ["small record", "large record"] {
        let line = line(&lines, message);
        assert_eq!(line["user"], user, "{message}: {line:?}");
        assert_eq!(line["cart"], cart, "the span's field, {message}: {line:?}");
    }
    // `None` is JSON's null on the wire, which the parent reads as a number
    // that is not finite, also written null.
    assert!(line(&lines, "small record")["none"].is_null());
}

/// What the child may send is this subscriber's filter, not the last one
/// made in the process: another subscriber with a WARN filter, made while
/// this one runs (a test beside it, a scoped subscriber), does not hold the
/// child's INFO lines back. It did once, through a process-wide value, and
/// this test binary lost a child's lines now and then.
#[test]
fn another_subscribers_filter_does_not_reach_this_child() {
    let capture = Capture::new();
    let subscriber = tracing_subscriber::registry()
        .with(ContextLayer::new().filter(EnvFilter::new("info")))
        .with(JsonLayer::builder().with_writer(capture.clone()).build());
    let (lines, status) = run_launched(subscriber, "json_values", capture, || {
        let other =
            tracing_subscriber::registry().with(ContextLayer::new().filter(EnvFilter::new("warn")));
        drop(tracing::Dispatch::new(other));
        info_span!("launch", worker = "json_values")
    });
    assert!(status.success());
    for message in ["small record", "large record"] {
        assert!(
            messages(&lines).iter().any(|m| m == message),
            "{message} is lost: {lines:?}"
        );
    }
}

#[test]
fn a_failing_debug_impl_in_the_child_is_marked_never_a_panic() {
    let (lines, status) = run("broken_fmt", "info");
    assert!(status.success(), "the child did not panic");
    for message in ["small record", "large record"] {
        assert_eq!(line(&lines, message)["v"], "half[fmt error]", "{message}");
    }
}

#[test]
fn the_childs_context_spans_survive_the_parents_warn_filter() {
    for level in ["warn", "error"] {
        let (lines, status) = run_gated("nested", level);
        assert!(status.success());
        let expected: &[&str] = if level == "warn" { &["careful"] } else { &[] };
        assert_eq!(messages(&lines), expected, "{level}");
    }
    let (lines, _) = run_gated("nested", "warn");
    let careful = line(&lines, "careful");
    // The child's INFO job span carries job_id: kept whole, across the pipe.
    assert_eq!(careful["job_id"], "j-1", "{careful:?}");
    assert_eq!(careful["attempt"], 2);
    // The parent's `child` span is spanline's own: kept.
    assert_eq!(careful["name"], "nested");
    assert!(careful["pid"].as_u64().is_some());
    // The child has no filter of its own: its DEBUG `step` span is enabled
    // there, so it comes along whatever the parent's filter says.
    assert_eq!(careful["n"], 1, "{careful:?}");
    // The parent's launching span is at INFO: context under any filter.
    assert_eq!(careful["worker"], "nested", "{careful:?}");
}

#[test]
fn the_childs_own_span_fields_survive_the_parents_warn_filter() {
    // The filter on the parent's ContextLayer (as `spanline::init()` has
    // it), under a launching span that carries context.
    let capture = Capture::new();
    let subscriber = tracing_subscriber::registry()
        .with(ContextLayer::new().filter(EnvFilter::new("warn")))
        .with(JsonLayer::builder().with_writer(capture.clone()).build());
    let (lines, status) = run_launched(subscriber, "own_context", capture, || {
        info_span!("launch", request_id = "r-launch", worker = "own")
    });
    assert!(status.success());
    assert_eq!(
        messages(&lines),
        ["own context"],
        "events still follow the parent's level"
    );
    let own = line(&lines, "own context");
    // The child's INFO span with a plain field, and its DEBUG span with a
    // key the child made a context key: the child enabled both.
    assert_eq!(own["batch"], 7, "{own:?}");
    assert_eq!(own["shard"], "s-3", "{own:?}");
    assert!(own.get("noise").is_none(), "the child's filter disabled it");
    // The parent's launching context and its `child` span.
    assert_eq!(own["request_id"], "r-launch", "{own:?}");
    assert_eq!(own["worker"], "own");
    assert_eq!(own["name"], "own_context");

    // A global filter in front of the parent's registry: the child's spans
    // are recreated all the same.
    let (lines, status) = run("own_context", "warn");
    assert!(status.success());
    assert_eq!(messages(&lines), ["own context"]);
    let own = line(&lines, "own context");
    assert_eq!(own["batch"], 7, "{own:?}");
    assert_eq!(own["shard"], "s-3", "{own:?}");
}

#[test]
fn spans_kept_for_context_write_no_line_the_parents_filter_rejects() {
    // Close lines of the recreated INFO spans are INFO lines: not written
    // under warn, whether the filter is on the ContextLayer or global.
    let capture = Capture::new();
    let gated = tracing_subscriber::registry()
        .with(
            ContextLayer::new()
                .span_close_lines(true)
                .filter(EnvFilter::new("warn")),
        )
        .with(JsonLayer::builder().with_writer(capture.clone()).build());
    let (lines, _) = run_under(gated, "own_context", capture);
    assert_eq!(messages(&lines), ["own context"], "{lines:#?}");

    let capture = Capture::new();
    let global = tracing_subscriber::registry()
        .with(EnvFilter::new("warn"))
        .with(ContextLayer::new().span_close_lines(true))
        .with(JsonLayer::builder().with_writer(capture.clone()).build());
    let (lines, _) = run_under(global, "own_context", capture);
    assert_eq!(messages(&lines), ["own context"], "{lines:#?}");
    assert_eq!(line(&lines, "own context")["batch"], 7);

    // Under debug they are written, with the child's span names.
    let capture = Capture::new();
    let debug = tracing_subscriber::registry()
        .with(
            ContextLayer::new()
                .span_close_lines(true)
                .filter(EnvFilter::new("debug")),
        )
        .with(JsonLayer::builder().with_writer(capture.clone()).build());
    let (lines, _) = run_under(debug, "own_context", capture);
    let closed: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "span closed")
        .map(|l| &l["span"])
        .collect();
    assert!(
        closed.contains(&&Value::from("batch")) && closed.contains(&&Value::from("shard")),
        "{closed:?}"
    );
}

#[test]
fn a_span_field_recorded_later_reaches_the_lines_after_it() {
    for (filter, gated) in [("trace", false), ("warn", true)] {
        let (lines, status) = if gated {
            run_gated("late_field", filter)
        } else {
            run("late_field", filter)
        };
        assert!(status.success());
        let before = line(&lines, "before the record");
        assert_eq!(before["request_id"], "r-late", "{filter}");
        assert!(before.get("user_id").is_none(), "{filter}: {before:?}");
        let after = line(&lines, "after the record");
        assert_eq!(after["user_id"], 42, "{filter}: {after:?}");
        let inner = line(&lines, "in a child span");
        assert_eq!(inner["user_id"], 42, "{filter}: {inner:?}");
        assert_eq!(inner["n"], 1, "{filter}: {inner:?}");
    }
}

#[test]
fn child_spans_are_recreated_under_the_launching_span_with_typed_fields() {
    let (lines, _) = run("nested", "debug");
    let query = line(&lines, "query done");
    assert_eq!(query["target"], "child_crate::db");
    assert_eq!(query["level"], "DEBUG");
    assert_eq!(query["rows"], 10);
    assert_eq!(query["ok"], true);
    assert_eq!(query["t"], 1.5);
    assert_eq!(query["neg"], -3);
    // Context from the child's spans, the child span and the launch span.
    assert_eq!(query["job_id"], "j-1");
    assert_eq!(query["attempt"], 2);
    assert_eq!(query["n"], 1);
    assert_eq!(query["worker"], "nested");
    assert_eq!(query["name"], "nested");
    assert!(query["pid"].as_u64().is_some());
    let exit = line(&lines, "child exited");
    assert_eq!(exit["code"], 0);
    assert_eq!(exit["level"], "INFO");
}

#[test]
fn the_parents_filter_does_not_strip_the_childs_spans() {
    // The DEBUG `step` span is below the parent's info, but the child
    // enabled it: lines inside it carry its field, as in one process
    // whose spans the child's filter decides.
    let (lines, _) = run("nested", "info");
    let done = line(&lines, "step done");
    assert_eq!(done["job_id"], "j-1");
    assert_eq!(done["n"], 1, "{done:?}");
    assert!(
        !messages(&lines).contains(&"query done".to_string()),
        "the DEBUG event is still filtered"
    );
}

#[test]
fn span_scoped_directives_apply_to_child_spans() {
    let (lines, _) = run("nested", "warn,[job]=debug");
    let got = messages(&lines);
    assert!(got.contains(&"query done".to_string()), "{got:?}");
    assert!(got.contains(&"step done".to_string()), "{got:?}");
}

#[test]
fn garbage_and_truncated_records_are_reported_not_fatal() {
    let (lines, _) = run("garbage", "info");
    let got = messages(&lines);
    assert!(
        got.contains(&"before garbage".to_string()) && got.contains(&"after garbage".to_string()),
        "{got:?}"
    );
    let bad: Vec<_> = lines
        .iter()
        .filter(|l| l["message"] == "unparseable record from the child")
        .collect();
    assert_eq!(bad.len(), 2);
    assert_eq!(bad[0]["record"], "this is not json");
    assert_eq!(bad[0]["level"], "WARN");

    let (lines, status) = run("abort", "info");
    assert!(!status.success());
    assert!(messages(&lines).contains(&"last whole line".to_string()));
    let tail = line(&lines, "truncated record at the end of the child's stream");
    assert!(tail["record"]
        .as_str()
        .unwrap()
        .starts_with("{\"t\":\"ev\""));
    let killed = line(&lines, "child killed by a signal");
    assert_eq!(killed["level"], "ERROR");
    assert_eq!(killed["signal"], 6);
}

#[test]
fn a_line_too_long_to_be_a_record_is_reported_and_skipped() {
    let (lines, status) = run("too_long", "info");
    assert!(status.success());
    let got = messages(&lines);
    let long = line(&lines, "record from the child too long; skipped");
    assert_eq!(long["level"], "WARN");
    assert_eq!(long["limit"], 65536);
    assert_eq!(long["record"], "x".repeat(200));
    let at = |m: &str| got.iter().position(|g| g == m).unwrap();
    assert!(at("before the long line") < at("record from the child too long; skipped"));
    assert!(at("record from the child too long; skipped") < at("after the long line"));
    assert!(!got.iter().any(|g| g.starts_with("unparseable")), "{got:?}");
}

#[test]
fn exit_codes_are_reported_and_returned() {
    let (lines, status) = run("fail", "info");
    assert_eq!(status.code(), Some(3));
    assert_eq!(line(&lines, "child failed")["code"], 3);
    assert_eq!(line(&lines, "child failed")["level"], "ERROR");
    assert!(messages(&lines).contains(&"about to fail".to_string()));
}

#[test]
fn blocking_mode_loses_nothing() {
    let (lines, _) = run("flood", "info");
    let flood: Vec<u64> = lines
        .iter()
        .filter(|l| l["message"] == "flood")
        .map(|l| l["i"].as_u64().unwrap())
        .collect();
    assert_eq!(flood, (0..20_000).collect::<Vec<_>>());
}

#[test]
fn drop_mode_counts_exactly_what_it_drops() {
    let (lines, _) = run("flood_drop", "info");
    let received = lines.iter().filter(|l| l["message"] == "flood").count() as u64;
    let reported: u64 = lines
        .iter()
        .filter(|l| l["message"] == "the child dropped log records")
        .map(|l| l["dropped"].as_u64().unwrap())
        .sum();
    assert_eq!(
        received + reported,
        20_000,
        "every record arrived or was reported dropped"
    );
    let order: Vec<u64> = lines
        .iter()
        .filter(|l| l["message"] == "flood")
        .map(|l| l["i"].as_u64().unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "in order");
}

#[test]
fn drop_mode_flushes_its_queue_when_the_child_exits() {
    for _ in 0..5 {
        let (lines, status) = run("few_drop", "info");
        assert!(status.success());
        let got: Vec<u64> = lines
            .iter()
            .filter(|l| l["message"] == "few")
            .map(|l| l["i"].as_u64().unwrap())
            .collect();
        assert!(got.iter().copied().eq(0..50), "all 50, in order: {got:?}");
    }
}

#[test]
fn drop_mode_exit_is_bounded_when_the_parent_stopped_reading() {
    // The parent never reads: the pipe fills, the writer thread blocks in a
    // write, and the exit flush must give up after its bound, not hang.
    let mut cmd = child_command("flood_drop");
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let (mut child, read) = Forwarder::new("stuck").spawn_with_reader(&mut cmd).unwrap();
    let started = std::time::Instant::now();
    let deadline = started + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the child hangs at exit"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
    assert!(
        started.elapsed() < ForwardLayer::EXIT_FLUSH + Duration::from_secs(10),
        "exit took {:?}",
        started.elapsed()
    );
    drop(read);
}

#[test]
fn threads_writing_big_records_never_tear_a_line() {
    let (lines, _) = run("threads", "info");
    let threaded: Vec<_> = lines
        .iter()
        .filter(|l| l["message"] == "threaded")
        .collect();
    assert_eq!(threaded.len(), 1600);
    assert!(threaded
        .iter()
        .all(|l| l["payload"].as_str().unwrap().ends_with("…[truncated]")));
    assert!(!messages(&lines).contains(&"unparseable record from the child".to_string()));
}

#[test]
fn a_grandchild_that_inherits_the_environment_does_not_write_into_the_pipe() {
    let (lines, status) = run("spawn_grandchild", "info");
    assert!(status.success());
    assert_eq!(line(&lines, "grandchild checked")["standalone"], true);
}

#[test]
fn descendants_holding_the_pipe_are_reported() {
    let (lines, status) = run("leak", "info");
    assert!(status.success());
    let leak = line(
        &lines,
        "the child exited but its descendants still hold the log pipe open",
    );
    assert_eq!(leak["level"], "WARN");
}

#[test]
fn a_child_whose_parent_dies_keeps_running() {
    let marker = std::env::temp_dir().join(format!("spanline-pipe-outlive-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let status = child_command("short_parent")
        .env("MARKER", &marker)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let text = loop {
        if let Ok(text) = std::fs::read_to_string(&marker) {
            break text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the orphaned child did not finish"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(text, "broken", "the child saw the broken pipe and went on");
    let _ = std::fs::remove_file(&marker);
}

#[test]
fn the_childs_timestamp_is_kept() {
    let lines = spanline_testkit::capture_json(|| {
        let mut receiver = Receiver::new(tracing::Span::current());
        receiver.feed_line(br#"{"t":"ev","pid":9,"ts":[0,5000],"span":null,"level":"INFO","target":"old","fields":{"message":"from 1970"}}"#);
        receiver.finish(&[]);
    });
    assert_eq!(lines[0]["timestamp"], "1970-01-01T00:00:00.000005Z");
    assert_eq!(lines[0]["target"], "old");
}

#[test]
fn hostile_error_names_are_re_emitted_as_plain_fields() {
    let lines = spanline_testkit::capture_json_with(spanline_core::Preset::Structlog, || {
        let mut receiver = Receiver::new(tracing::Span::current());
        for record in [
            // Too many type names for the chain: not an error.
            r#"{"t":"ev","pid":9,"ts":[0,0],"span":null,"level":"ERROR","target":"c","fields":{"message":"a","error":"boom"},"errors":{"error":["A","B"]}}"#,
            // A type name that is no name, a message that is no string.
            r#"{"t":"ev","pid":9,"ts":[0,0],"span":null,"level":"ERROR","target":"c","fields":{"message":"b","error":"boom","n":1},"errors":{"error":["</a> Not a Type!"],"n":["N"],"missing":["M"]}}"#,
            // `errors` that is not a map: a bad record, counted.
            r#"{"t":"ev","pid":9,"ts":[0,0],"span":null,"level":"ERROR","target":"c","fields":{"message":"c"},"errors":"x"}"#,
        ] {
            receiver.feed_line(record.as_bytes());
        }
        assert_eq!(receiver.bad_records(), 1);
        receiver.finish(&[]);
    });
    let line = |event: &str| lines.iter().find(|l| l["event"] == event).unwrap().clone();
    assert_eq!(line("a")["error"], "boom");
    assert_eq!(
        line("b")["exception"],
        "boom",
        "an error, with no type: {:?}",
        line("b")
    );
    assert_eq!(line("b")["n"], 1);
}

#[test]
fn per_layer_filters_apply_to_child_records() {
    let capture = Capture::new();
    let json = JsonLayer::builder()
        .with_writer(capture.clone())
        .build()
        .with_filter(EnvFilter::new("warn,child_crate=debug"));
    let subscriber = tracing_subscriber::registry()
        .with(ContextLayer::new())
        .with(json);
    tracing::subscriber::with_default(subscriber, || {
        let mut cmd = child_command("nested");
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        Forwarder::new("per-layer")
            .spawn(&mut cmd)
            .unwrap()
            .wait()
            .unwrap();
    });
    let lines = capture.json_lines();
    let got = messages(&lines);
    assert!(got.contains(&"query done".to_string()), "{got:?}");
    assert!(got.contains(&"careful".to_string()));
    assert!(!got.contains(&"step done".to_string()), "{got:?}");
    // The `job` span is rejected by the JSON layer's filter, not by the
    // ContextLayer: it still gives its fields to the lines inside it.
    assert_eq!(line(&lines, "query done")["job_id"], "j-1");
}

#[test]
fn env_with_adds_variables_at_spawn() {
    let lines = spanline_testkit::capture_json(|| {
        let _request = info_span!("request", request_id = "r-fwd").entered();
        let mut cmd = child_command("env_check");
        cmd.stdout(Stdio::null());
        // The facade's `spanline::pipe::forwarder` passes ContextSnapshot's
        // variables this way (tests/pipe_context.rs at the workspace root).
        Forwarder::new("env")
            .env_with(|| vec![("BAGGAGE".into(), "request_id=r-fwd".into())])
            .spawn(&mut cmd)
            .unwrap()
            .wait()
            .unwrap();
    });
    assert!(
        line(&lines, "environment")["baggage"]
            .as_str()
            .unwrap()
            .contains("request_id=r-fwd"),
        "{lines:?}"
    );
}

#[test]
fn a_child_of_another_wire_version_is_named_once() {
    let capture = Capture::new();
    let subscriber = spanline_testkit::json_subscriber(&capture);
    let version = spanline_pipe::wire::VERSION;
    tracing::subscriber::with_default(subscriber, || {
        let mut receiver = Receiver::new(tracing::Span::current());
        receiver.feed_line(format!(r#"{{"t":"hello","v":{version},"pid":9}}"#).as_bytes());
        receiver.feed_line(format!(r#"{{"t":"hello","v":{},"pid":9}}"#, version + 1).as_bytes());
        receiver.finish(&[]);
    });
    let lines = capture.json_lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["level"], "WARN");
    assert_eq!(lines[0]["child_version"], version + 1);
    assert!(lines[0]["message"]
        .as_str()
        .unwrap()
        .contains("another version of the wire format"));
}

#[test]
fn a_childs_non_finite_float_is_written_as_the_parent_writes_one() {
    let capture = Capture::new();
    let version = spanline_pipe::wire::VERSION;
    tracing::subscriber::with_default(spanline_testkit::json_subscriber(&capture), || {
        let mut receiver = Receiver::new(tracing::Span::current());
        receiver.feed_line(format!(r#"{{"t":"hello","v":{version},"pid":9}}"#).as_bytes());
        receiver.feed_line(br#"{"t":"ev","pid":9,"ts":[0,0],"span":null,"level":"INFO","target":"child","fields":{"message":"ratio","ratio":null}}"#);
        receiver.finish(&[]);
        info!(ratio = f64::NAN, "ratio");
    });
    let lines = capture.json_lines();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["ratio"], Value::Null, "the child's");
    assert_eq!(lines[1]["ratio"], Value::Null, "the parent's own");
}

#[test]
fn redacted_values_never_cross_the_pipe() {
    let (lines, status) = run_gated("secret", "info");
    assert!(status.success());
    let text = serde_json::to_string(&lines).unwrap();
    assert!(!text.contains("hunter2"), "{text}");
    let logged_in = line(&lines, "logged in");
    assert_eq!(logged_in["authorization"], "[redacted]");
    assert_eq!(logged_in["password"], "[redacted]", "the span's field");
    assert_eq!(logged_in["user"], "ann");
    let rejected = line(&lines, "rejected");
    assert_eq!(rejected["password"], "[redacted]");
    assert!(rejected.get("password_sources").is_none(), "{rejected:?}");
}

#[test]
fn a_record_that_is_not_utf8_is_counted_and_text_that_is_passes() {
    let lines = spanline_testkit::capture_json(|| {
        let mut receiver = Receiver::new(tracing::Span::current());
        let good = r#"{"t":"ev","pid":9,"ts":[0,0],"span":null,"level":"INFO","target":"c","fields":{"message":"café ✓","n":1}}"#;
        receiver.feed_line(good.as_bytes());
        // The same record with a byte that is no UTF-8 in a string, in a
        // key, and after the JSON: each one bad record, none re-emitted.
        for (from, to) in [
            ("café", "caf\u{0}"),
            ("\"n\"", "\"\u{0}\""),
            ("}}", "}}\u{0}"),
        ] {
            let mut bad = good.replacen(from, to, 1).into_bytes();
            let at = bad.iter().position(|&b| b == 0).unwrap();
            bad[at] = 0xff;
            receiver.feed_line(&bad);
        }
        assert_eq!((receiver.records(), receiver.bad_records()), (1, 3));
        receiver.finish(&[]);
    });
    let events: Vec<_> = lines
        .iter()
        .filter(|l| l.get("target").is_some_and(|t| t == "c"))
        .collect();
    assert_eq!(events.len(), 1, "{lines:?}");
    assert_eq!(events[0]["message"], "café ✓");
}
