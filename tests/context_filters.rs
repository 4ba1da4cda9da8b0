//! Context that no filter strips, in real processes (this test binary, run
//! again with `SPANLINE_SCENARIO` set) under `RUST_LOG=warn` and `error`:
//! with `spanline::init()` and with the documented manual composition; a job
//! captured in a request, pushed through a real Redis list and restored in a
//! separate worker process; detached work; `set` outside a span; inherited
//! `BAGGAGE`; bad directives and foreign level words; a missing ContextLayer.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report
#![allow(clippy::disallowed_macros)] // the children report on stdout, as programs would

use std::process::{Output, Stdio};

use serde_json::{Map, Value};
use spanline::{ContextLayer, JsonLayer};
use spanline_testkit::RedisServer;
use tracing::{error, info, info_span, warn};
use tracing_subscriber::prelude::*;

// ==== the child side ====

#[test]
fn child() {
    let Ok(scenario) = std::env::var("SPANLINE_SCENARIO") else {
        return;
    };
    match scenario.as_str() {
        "request_init" => {
            let _guard = spanline::init();
            request();
        }
        "request_manual" => {
            // The composition README.md and docs/guide.md show.
            tracing_subscriber::registry()
                .with(ContextLayer::new().filter(spanline::filter::from_env()))
                .with(JsonLayer::new())
                .init();
            request();
        }
        "produce" => produce(),
        "work" => work(),
        "detached" => detached(),
        "set_outside" => set_outside(),
        "levels" => {
            let _guard = spanline::init();
            info!("an info line");
            warn!("a warn line");
            error!("an error line");
        }
        "try_init_bad_filter" => match spanline::try_init() {
            Ok(_) => println!("unexpected: try_init accepted the filter"),
            Err(e) => println!("try_init error: {e}"),
        },
        "no_context_layer" => {
            tracing_subscriber::registry().with(JsonLayer::new()).init();
            for _ in 0..3 {
                let _r = info_span!("request", request_id = "r-lost").entered();
                warn!("no context here");
            }
        }
        other => panic!("unknown scenario {other}"),
    }
}

/// A request whose user is known late, with an ordinary span inside.
fn request() {
    let request = info_span!(
        "request",
        request_id = "r-1",
        route = "/pay",
        user_id = tracing::field::Empty
    );
    let _r = request.enter();
    info!("request started");
    spanline::set("user_id", 42u64).unwrap();
    let _charge = info_span!("charge", attempt = 1).entered();
    warn!("payment slow");
    error!("payment failed");
}

/// The web process: captures the request's context into a job payload and
/// pushes it onto a real Redis list.
fn produce() {
    let _guard = spanline::init();
    let url = std::env::var("JOB_REDIS_URL").unwrap();
    let _r = info_span!(
        "request",
        request_id = "r-job",
        user_id = 7u64,
        tenant = "acme",
        route = "/reports"
    )
    .entered();
    let snapshot = spanline::context::ContextSnapshot::capture_with(&["route"]);
    let payload = serde_json::json!({ "report": 12, "ctx": snapshot }).to_string();
    let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
    redis::cmd("LPUSH")
        .arg("jobs")
        .arg(payload)
        .exec(&mut con)
        .unwrap();
    warn!("report queued");
}

/// The worker process: pops the job and restores its context.
fn work() {
    let _guard = spanline::init();
    let url = std::env::var("JOB_REDIS_URL").unwrap();
    let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
    let (_, payload): (String, String) = redis::cmd("BRPOP")
        .arg("jobs")
        .arg(10)
        .query(&mut con)
        .unwrap();
    let job: Value = serde_json::from_str(&payload).unwrap();
    let snapshot: spanline::context::ContextSnapshot =
        serde_json::from_value(job["ctx"].clone()).unwrap();
    let _job = snapshot.restore("build_report").entered();
    let job_id = spanline::context::JobId::new("report");
    spanline::set("job_id", &job_id).unwrap();
    info!("hidden under warn");
    warn!(report = job["report"].as_u64(), "report is late");
    error!("report failed");
}

fn detached() {
    let _guard = spanline::init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let handle = {
            let _r = info_span!("request", request_id = "r-detached").entered();
            spanline::context::spawn_detached(async {
                tokio::task::yield_now().await;
                warn!("sending the e-mail failed");
            })
        };
        handle.await.unwrap();
    });
}

fn set_outside() {
    let _guard = spanline::init();
    let in_thread = std::thread::spawn(|| spanline::set("job_id", "j-1"))
        .join()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let in_task = runtime.block_on(async {
        tokio::spawn(async { spanline::set("job_id", "j-1") })
            .await
            .unwrap()
    });
    let inside = {
        let _job = info_span!("job").entered();
        spanline::set("job_id", "j-1")
    };
    println!("RESULT thread={in_thread:?} task={in_task:?} inside={inside:?}");
}

// ==== the parent side ====

fn run(scenario: &str, env: &[(&str, &str)]) -> Output {
    let mut cmd = spanline_testkit::this_test_binary("child");
    cmd.env("SPANLINE_SCENARIO", scenario)
        .env("SPANLINE_FORMAT", "json")
        .env_remove("RUST_LOG")
        .env_remove("SPANLINE_REDIS_URL")
        .env_remove("SPANLINE_PRESET")
        .env_remove("BAGGAGE")
        .env_remove("TRACEPARENT")
        .env_remove("SPANLINE_FORWARD")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{scenario} {env:?}: {out:?}");
    out
}

fn lines(out: &Output) -> Vec<Map<String, Value>> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| spanline_testkit::parse_strict(l).unwrap())
        .collect()
}

fn messages(lines: &[Map<String, Value>]) -> Vec<&str> {
    lines
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect()
}

#[test]
fn request_context_survives_warn_and_error_with_init_and_the_manual_composition() {
    for scenario in ["request_init", "request_manual"] {
        for (level, expected) in [
            ("warn", vec!["payment slow", "payment failed"]),
            ("error", vec!["payment failed"]),
        ] {
            let out = run(scenario, &[("RUST_LOG", level)]);
            let lines = lines(&out);
            assert_eq!(messages(&lines), expected, "{scenario} {level}");
            for line in &lines {
                assert_eq!(line["request_id"], "r-1", "{scenario} {level}: {line:?}");
                assert_eq!(line["route"], "/pay");
                assert_eq!(line["user_id"], 42, "bound late, typed: {line:?}");
                assert_eq!(
                    line["attempt"], 1,
                    "an INFO span's fields are context under any filter: {line:?}"
                );
            }
        }
    }
}

#[test]
fn without_rust_log_the_manual_composition_writes_info_lines() {
    let out = run("request_manual", &[]);
    let lines = lines(&out);
    assert_eq!(
        messages(&lines),
        ["request started", "payment slow", "payment failed"]
    );
    assert_eq!(lines[1]["attempt"], 1);
}

#[test]
fn a_job_restored_in_another_process_keeps_the_request_context_and_its_types() {
    let server = RedisServer::start();
    for level in ["warn", "error"] {
        let env = [("RUST_LOG", level), ("JOB_REDIS_URL", &*server.url())];
        let web = run("produce", &env);
        let web_lines = lines(&web);
        let queued: &[&str] = if level == "warn" {
            &["report queued"]
        } else {
            &[]
        };
        assert_eq!(messages(&web_lines), queued, "{level}");
        for line in &web_lines {
            assert_eq!(line["user_id"], 7);
        }
        let worker = run("work", &env);
        let lines = lines(&worker);
        let expected = if level == "warn" {
            vec!["report is late", "report failed"]
        } else {
            vec!["report failed"]
        };
        assert_eq!(messages(&lines), expected, "{level}");
        for line in &lines {
            assert_eq!(line["request_id"], "r-job", "{line:?}");
            assert_eq!(line["user_id"], 7, "a number stays a number: {line:?}");
            assert_eq!(line["tenant"], "acme");
            assert_eq!(line["route"], "/reports", "capture_with adds keys");
            assert_eq!(line["task"], "build_report");
            assert!(
                line["job_id"]
                    .as_str()
                    .is_some_and(|id| id.starts_with("report_")),
                "set with a JobId: {line:?}"
            );
        }
    }
}

#[test]
fn detached_work_keeps_the_request_context_under_warn() {
    let out = run("detached", &[("RUST_LOG", "warn")]);
    let lines = lines(&out);
    assert_eq!(messages(&lines), ["sending the e-mail failed"]);
    assert_eq!(lines[0]["request_id"], "r-detached");
}

#[test]
fn set_outside_a_span_says_so_in_a_thread_and_in_a_task() {
    let out = run("set_outside", &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("RESULT thread=Err(NoSpan) task=Err(NoSpan) inside=Ok(())"),
        "{stdout}"
    );
}

#[test]
fn inherited_baggage_is_allow_listed() {
    let out = run(
        "levels",
        &[(
            "BAGGAGE",
            "request_id=from-parent,secret=hunter2,tenant=acme,batch_id=b-1",
        )],
    );
    let lines = lines(&out);
    assert_eq!(lines.len(), 3);
    for line in &lines {
        assert_eq!(line["request_id"], "from-parent");
        assert_eq!(line["tenant"], "acme");
        assert!(line.get("secret").is_none(), "{line:?}");
        assert!(line.get("batch_id").is_none(), "{line:?}");
    }
    // A key the application makes a context key is inherited too.
    let out = run(
        "levels",
        &[
            ("BAGGAGE", "batch_id=b-7,secret=hunter2"),
            ("SPANLINE_CONTEXT_KEYS", "batch_id"),
        ],
    );
    let inherited = self::lines(&out);
    assert_eq!(inherited.len(), 3);
    for line in &inherited {
        assert_eq!(line["batch_id"], "b-7", "{line:?}");
        assert!(line.get("secret").is_none(), "{line:?}");
    }
}

#[test]
fn a_bad_directive_is_skipped_and_named_once() {
    let out = run("levels", &[("RUST_LOG", "warn,foo===bar")]);
    assert_eq!(messages(&lines(&out)), ["a warn line", "an error line"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("foo===bar").count(), 1, "{stderr}");

    let out = run("try_init_bad_filter", &[("RUST_LOG", "info,foo===bar")]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("try_init error: invalid log filter (RUST_LOG): `foo===bar`"),
        "{stdout}"
    );
}

#[test]
fn foreign_level_words_mean_what_their_users_mean() {
    for (word, expected) in [
        ("warning", vec!["a warn line", "an error line"]),
        ("WARNING", vec!["a warn line", "an error line"]),
        ("30", vec!["a warn line", "an error line"]),
        ("critical", vec!["an error line"]),
        ("CRITICAL", vec!["an error line"]),
        ("fatal", vec!["an error line"]),
        ("40", vec!["an error line"]),
        ("20", vec!["an info line", "a warn line", "an error line"]),
    ] {
        let out = run("levels", &[("RUST_LOG", word)]);
        assert_eq!(messages(&lines(&out)), expected, "RUST_LOG={word}");
        assert!(out.stderr.is_empty(), "{word}: {out:?}");
    }
}

#[test]
fn a_missing_context_layer_is_said_once() {
    let out = run("no_context_layer", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("a span has no spanline context").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("ContextLayer"), "names the fix: {stderr}");
    assert_eq!(lines(&out).len(), 3, "the lines are still written");
}
