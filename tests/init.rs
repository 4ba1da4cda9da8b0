//! `spanline::init()` in real child processes (this test binary, run again
//! with `SPANLINE_INIT_CHILD` set), for each `SPANLINE_FORMAT`, with and
//! without Redis.
//!
//! One file: `init()` installs a global subscriber, so each test runs this
//! binary again as its child, and the child's modes (`child`, `secrets`,
//! `leaky_child`) are read beside the tests that start them; apart, they
//! would have to agree on the modes' names and arguments across files.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report
#![allow(clippy::disallowed_macros)] // the child reports its init error on stderr, as a program would

use std::process::{Output, Stdio};
use std::time::Duration;

use spanline_testkit::{RedisCluster, RedisServer, ShardedSubscription, Subscription};

#[test]
fn child() {
    let Ok(lines) = std::env::var("SPANLINE_INIT_CHILD") else {
        return;
    };
    // The application's own configuration file, when the test gives one.
    let mut builder = spanline::builder();
    if let Ok(config) = std::env::var("SPANLINE_INIT_CONFIG") {
        builder = builder.config(serde_json::from_str(&config).unwrap());
    }
    // A layer of the application's own, beside spanline's.
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    if std::env::var_os("SPANLINE_INIT_WITH_LAYER").is_some() {
        builder = builder.with_layer(Counter(seen.clone()));
    }
    if let Ok(directives) = std::env::var("SPANLINE_INIT_RELOAD") {
        builder = builder.reload_filter(!directives.is_empty());
    }
    let guard = if std::env::var_os("SPANLINE_INIT_LENIENT").is_some() {
        builder.init()
    } else {
        match builder.try_init() {
            Ok(guard) => guard,
            Err(e) => {
                eprintln!("init failed: {e}");
                std::process::exit(2);
            }
        }
    };
    let stats = guard.redis_stats().cloned();
    // `let _ = spanline::init()`: the guard dropped at once.
    let guard = std::env::var_os("SPANLINE_INIT_DISCARD_GUARD")
        .is_none()
        .then_some(guard);
    let _request =
        tracing::info_span!(target: "spanline::request", "request", request_id = "r-init")
            .entered();
    if std::env::var_os("SPANLINE_INIT_SECRETS").is_some() {
        secrets();
    }
    for i in 0..lines.parse::<u64>().unwrap() {
        tracing::info!(i, "hello");
    }
    let cause = std::io::Error::other("disk full");
    tracing::warn!(error = &cause as &dyn std::error::Error, "a warning");
    log::info!(target: "legacy", "from the log crate");
    if let Ok(directives) = std::env::var("SPANLINE_INIT_RELOAD") {
        let set = guard.as_ref().map(|g| g.set_filter(&directives));
        eprintln!("set_filter: {set:?}");
        tracing::debug!("after the reload");
    }
    // No flush: at exit, spanline publishes what is queued or says what it
    // could not, whatever became of the guard.
    if std::env::var_os("SPANLINE_INIT_EXIT").is_some() {
        std::process::exit(0);
    }
    drop(guard);
    if let Some(stats) = stats {
        eprintln!("redis stats: queue_full={}", stats.dropped_queue_full());
    }
    if std::env::var_os("SPANLINE_INIT_WITH_LAYER").is_some() {
        eprintln!(
            "extra layer saw {} events",
            seen.load(std::sync::atomic::Ordering::SeqCst)
        );
    }
}

/// Plants secrets where they can hide: a nested JSON value, a redacted
/// context key (which a snapshot would carry to a job, a service or a
/// child), and the lines of a child that does not redact.
fn secrets() {
    let _user = tracing::info_span!("user", user_id = "SECRET-UID-1").entered();
    tracing::info!(
        cfg = spanline::json(&serde_json::json!({"db": {"password": "SECRET-NESTED-2"}})),
        "config"
    );
    let snapshot = spanline::context::ContextSnapshot::capture();
    eprintln!("snapshot env: {:?}", snapshot.to_env());
    eprintln!(
        "snapshot payload: {}",
        serde_json::to_string(&snapshot).unwrap()
    );
    eprintln!("snapshot headers: {:?}", snapshot.to_headers());
    eprintln!(
        "capture_env: {:?}",
        spanline::context::ContextSnapshot::capture_env()
    );
    let mut cmd = spanline_testkit::this_test_binary("leaky_child");
    cmd.env("SPANLINE_LEAKY_CHILD", "1")
        .env_remove("SPANLINE_REDACT");
    let status = spanline::pipe::forwarder("leaky")
        .spawn(&mut cmd)
        .unwrap()
        .wait()
        .unwrap();
    assert!(status.success());
}

/// A child that does not redact: it logs secrets, and its environment.
#[test]
fn leaky_child() {
    if std::env::var_os("SPANLINE_LEAKY_CHILD").is_none() {
        return;
    }
    let _guard = spanline::init();
    let env: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
    tracing::info!(
        password = "SECRET-CHILD-3",
        cfg = spanline::json(&serde_json::json!({"token": "SECRET-CHILD-4"})),
        env = env.join(" "),
        "child"
    );
}

/// Counts the events it sees.
struct Counter(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Counter {
    fn on_event(&self, _: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

fn run_child(lines: u64, env: &[(&str, &str)]) -> Output {
    let mut cmd = spanline_testkit::this_test_binary("child");
    cmd.env("SPANLINE_INIT_CHILD", lines.to_string())
        .env_remove("RUST_LOG")
        .env_remove("SPANLINE_FORMAT")
        .env_remove("SPANLINE_REDIS_URL")
        .env_remove("SPANLINE_SERVICE")
        .env_remove("SPANLINE_OUTPUT")
        .env_remove("NO_COLOR")
        .env_remove("SPANLINE_TIME")
        .env_remove("SPANLINE_THREADS")
        .env_remove("SPANLINE_SPAN_CLOSE")
        .env_remove("SPANLINE_DOTTED_TARGETS")
        .env_remove("SPANLINE_ERRORS")
        .env_remove("SPANLINE_SOURCE_LOCATION")
        .env_remove("SPANLINE_REDIS_CLUSTER")
        .env_remove("SPANLINE_REDIS_GLOBAL_SHARDS")
        .env_remove("SPANLINE_FILE")
        .env_remove("SPANLINE_ROTATION")
        .env_remove("SPANLINE_NON_BLOCKING")
        .env_remove("SPANLINE_DEBUG_CONFIG")
        .env_remove("SPANLINE_REDACT")
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
        .filter(|l| !l.contains("span closed"))
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
        (
            "SPANLINE_OUTPUT",
            "syslog",
            "SPANLINE_OUTPUT=\"syslog\": expected stdout, stderr",
        ),
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

#[test]
fn dropping_the_guard_at_once_does_not_stop_publishing() {
    let server = RedisServer::start();
    let sub = Subscription::new(&server.url(), &["logs:global"]);
    let out = run_child(
        100,
        &[
            ("SPANLINE_FORMAT", "json"),
            ("SPANLINE_REDIS_URL", &server.url()),
            ("SPANLINE_INIT_DISCARD_GUARD", "1"),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(sub.wait_for(102, Duration::from_secs(10)).len(), 102);
}

#[test]
fn output_service_and_redis_options_come_from_the_environment() {
    // stderr: nothing on stdout but the test harness's own lines.
    let out = run_child(
        1,
        &[("SPANLINE_FORMAT", "json"), ("SPANLINE_OUTPUT", "stderr")],
    );
    assert!(out.status.success(), "{out:?}");
    assert!(log_lines(&out).is_empty(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("\"message\":\"hello\"").count(), 1, "{err}");
    // The service, in the pretty format too.
    let out = run_child(
        1,
        &[
            ("SPANLINE_FORMAT", "pretty"),
            ("SPANLINE_SERVICE", "billing"),
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("service=billing"), "{text}");
    // Streams, from SPANLINE_REDIS_MODE.
    let server = RedisServer::start();
    let out = run_child(
        5,
        &[
            ("SPANLINE_FORMAT", "json"),
            ("SPANLINE_REDIS_URL", &server.url()),
            ("SPANLINE_REDIS_MODE", "streams"),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let mut con = server.client().get_connection().unwrap();
    let len: usize = redis::cmd("XLEN")
        .arg("logs:global")
        .query(&mut con)
        .unwrap();
    assert_eq!(len, 7);
    // A small queue, Redis unreachable: said once, and the overflow counted.
    // The worker holds at most one batch (256) besides the queue's 10, so
    // of 2,002 lines at least 1,736 are dropped, however fast it drains.
    let closed = format!("redis://127.0.0.1:{}", spanline_testkit::free_port());
    let out = run_child(
        2_000,
        &[
            ("SPANLINE_FORMAT", "json"),
            ("SPANLINE_REDIS_URL", &closed),
            ("SPANLINE_REDIS_CAPACITY", "10"),
            ("SPANLINE_REDIS_OVERFLOW", "drop-newest"),
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.matches("cannot reach Redis at 127.0.0.1:").count(),
        1,
        "{err}"
    );
    assert!(err.contains("up to 10 lines"), "{err}");
    let dropped: u64 = err
        .split("queue_full=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no stats: {err}"));
    assert!(dropped >= 1_736, "{err}");
    for (key, value) in [
        ("SPANLINE_REDIS_MODE", "sometimes"),
        ("SPANLINE_REDIS_OVERFLOW", "maybe"),
        ("SPANLINE_REDIS_CAPACITY", "lots"),
    ] {
        let out = run_child(1, &[("SPANLINE_REDIS_URL", &closed), (key, value)]);
        assert_eq!(out.status.code(), Some(2), "{key}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(key), "{key}: {err}");
    }
}

#[test]
fn a_configuration_file_sets_options_and_the_environment_overrides_it() {
    let config = r#"{"format": "json", "service": "from-file", "preset": "structlog", "context_keys": ["tenant"]}"#;
    let out = run_child(1, &[("SPANLINE_INIT_CONFIG", config)]);
    assert!(out.status.success(), "{out:?}");
    let lines = log_lines(&out);
    let first: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(first["service"], "from-file", "{first}");
    assert_eq!(first["event"], "hello", "structlog from the file: {first}");
    let out = run_child(
        1,
        &[
            ("SPANLINE_INIT_CONFIG", config),
            ("SPANLINE_SERVICE", "from-env"),
        ],
    );
    let first: serde_json::Value = serde_json::from_str(&log_lines(&out)[0]).unwrap();
    assert_eq!(first["service"], "from-env", "{first}");
}

#[test]
fn redaction_from_the_environment_and_the_file_covers_json_and_pretty() {
    let out = run_child(
        1,
        &[
            ("SPANLINE_FORMAT", "json"),
            ("SPANLINE_REDACT", "request_id, i"),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    for line in log_lines(&out) {
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["request_id"], "[redacted]", "{line}");
    }
    let first: serde_json::Value = serde_json::from_str(&log_lines(&out)[0]).unwrap();
    assert_eq!(first["i"], "[redacted]", "{first}");
    let out = run_child(
        1,
        &[
            ("SPANLINE_FORMAT", "pretty"),
            ("SPANLINE_INIT_CONFIG", r#"{"redact": ["request_id"]}"#),
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("request_id=[redacted]"), "{text}");
    assert!(!text.contains("r-init"), "{text}");
}

#[test]
fn pretty_lines_show_the_thread_and_local_time_when_asked() {
    let out = run_child(
        1,
        &[("SPANLINE_FORMAT", "pretty"), ("SPANLINE_THREADS", "both")],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(" thread=") && text.contains(" thread_id="),
        "{text}"
    );
    // The same second in UTC and two hours east (a POSIX TZ rule: no tz
    // database needed).
    let minutes = |env: &[(&str, &str)]| -> i64 {
        let out = run_child(1, env);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let line = text
            .lines()
            .find(|l| l.contains("hello"))
            .unwrap()
            .to_string();
        let (h, m): (i64, i64) = (line[11..13].parse().unwrap(), line[14..16].parse().unwrap());
        h * 60 + m
    };
    let utc = minutes(&[("SPANLINE_FORMAT", "pretty"), ("TZ", "XYZ-2")]);
    let local = minutes(&[
        ("SPANLINE_FORMAT", "pretty"),
        ("SPANLINE_TIME", "local"),
        ("TZ", "XYZ-2"),
    ]);
    let shift = (local - utc).rem_euclid(24 * 60);
    assert!((119..=121).contains(&shift), "local {local} utc {utc}");
    let bad = run_child(1, &[("SPANLINE_TIME", "martian")]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("SPANLINE_TIME"));
}

/// The lines of closed spans in the child's output.
fn close_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("span closed"))
        .map(str::to_string)
        .collect()
}

#[test]
fn span_close_lines_from_the_environment_the_file_and_in_every_format() {
    // JSON: the request span's close line, with its context and duration.
    let out = run_child(
        1,
        &[("SPANLINE_FORMAT", "json"), ("SPANLINE_SPAN_CLOSE", "true")],
    );
    assert!(out.status.success(), "{out:?}");
    let closed = close_lines(&out);
    assert_eq!(closed.len(), 1, "{closed:?}");
    let line: serde_json::Value = serde_json::from_str(&closed[0]).unwrap();
    assert_eq!(line["span"], "request");
    assert_eq!(line["request_id"], "r-init");
    assert_eq!(line["target"], "spanline::request");
    assert!(line["duration_ms"].as_f64().unwrap() >= line["busy_ms"].as_f64().unwrap());
    // Pretty: the same line, readable.
    let out = run_child(
        1,
        &[("SPANLINE_FORMAT", "pretty"), ("SPANLINE_SPAN_CLOSE", "1")],
    );
    let closed = close_lines(&out);
    assert_eq!(closed.len(), 1, "{out:?}");
    assert!(
        closed[0].contains("duration_ms=") && closed[0].contains("span=request"),
        "{closed:?}"
    );
    // The configuration file's key, and the environment overriding it.
    let config = r#"{"format": "json", "span_close": true}"#;
    assert_eq!(
        close_lines(&run_child(1, &[("SPANLINE_INIT_CONFIG", config)])).len(),
        1
    );
    let off = run_child(
        1,
        &[
            ("SPANLINE_INIT_CONFIG", config),
            ("SPANLINE_SPAN_CLOSE", "false"),
        ],
    );
    assert!(close_lines(&off).is_empty(), "{off:?}");
    // Off by default.
    assert!(close_lines(&run_child(1, &[("SPANLINE_FORMAT", "json")])).is_empty());
    // RUST_LOG=warn: the INFO request span keeps its context, writes no close line.
    let warn = run_child(
        1,
        &[
            ("SPANLINE_FORMAT", "json"),
            ("SPANLINE_SPAN_CLOSE", "true"),
            ("RUST_LOG", "warn"),
        ],
    );
    assert!(close_lines(&warn).is_empty(), "{warn:?}");
    assert!(String::from_utf8_lossy(&warn.stdout).contains("r-init"));
    // A value that is not a boolean is an error that names the variable.
    let bad = run_child(1, &[("SPANLINE_SPAN_CLOSE", "sometimes")]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("SPANLINE_SPAN_CLOSE"));
}

#[test]
fn a_layer_given_to_the_builder_sees_what_rust_log_keeps() {
    let out = run_child(
        3,
        &[
            ("SPANLINE_FORMAT", "json"),
            ("SPANLINE_INIT_WITH_LAYER", "1"),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        log_lines(&out).len(),
        5,
        "spanline's lines are all there: {out:?}"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("extra layer saw 5 events"), "{err}");
    let warn = run_child(
        3,
        &[
            ("SPANLINE_FORMAT", "json"),
            ("SPANLINE_INIT_WITH_LAYER", "1"),
            ("RUST_LOG", "warn"),
        ],
    );
    let err = String::from_utf8_lossy(&warn.stderr);
    assert!(err.contains("extra layer saw 1 events"), "{err}");
}

/// `SPANLINE_REDIS_CLUSTER=true` with the nodes in `SPANLINE_REDIS_URL`:
/// every line on the global feed's shards (here 3, from the environment),
/// spread over the masters; from the configuration file too.
#[test]
fn a_cluster_from_the_environment_and_the_file() {
    let cluster = RedisCluster::start(3);
    let channels = spanline::redis::Channels::default();
    let follow = || -> Vec<ShardedSubscription> {
        spanline::redis::read::global_shards(&channels, 3)
            .iter()
            .map(|shard| ShardedSubscription::new(cluster.node_for(shard), shard))
            .collect()
    };
    let urls = cluster.urls().join(",");
    let shards = follow();
    let out = run_child(
        300,
        &[
            ("SPANLINE_FORMAT", "json"),
            ("SPANLINE_REDIS_CLUSTER", "true"),
            ("SPANLINE_REDIS_URL", &urls),
            ("SPANLINE_REDIS_GLOBAL_SHARDS", "3"),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let got: Vec<usize> = shards
        .iter()
        .map(|s| s.wait_for(100, Duration::from_secs(10)).len())
        .collect();
    assert_eq!(got.iter().sum::<usize>(), 302, "every line once: {got:?}");
    assert!(
        got.iter().all(|&n| (100..=101).contains(&n)),
        "one line in three each: {got:?}"
    );
    // The same from the application's configuration file.
    let shards = follow();
    let config = format!(
        r#"{{"format": "json", "redis_url": "{urls}", "redis_cluster": true, "redis_global_shards": 3}}"#
    );
    let out = run_child(30, &[("SPANLINE_INIT_CONFIG", &config)]);
    assert!(out.status.success(), "{out:?}");
    let got: usize = shards
        .iter()
        .map(|s| s.wait_for(10, Duration::from_secs(10)).len())
        .sum();
    assert_eq!(got, 32);
    // Several URLs without saying it is a cluster: a clear error.
    let bad = run_child(1, &[("SPANLINE_REDIS_URL", &urls)]);
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("SPANLINE_REDIS_CLUSTER=true"));
}

#[test]
fn dotted_targets_from_the_environment_and_the_file() {
    // The request span's close line has a target with `::`.
    let target = |out: &Output| -> String {
        let closed = close_lines(out);
        let v: serde_json::Value = serde_json::from_str(&closed[0]).unwrap();
        v["logger"].as_str().unwrap().to_string()
    };
    let env = [
        ("SPANLINE_FORMAT", "json"),
        ("SPANLINE_PRESET", "structlog"),
        ("SPANLINE_SPAN_CLOSE", "true"),
    ];
    assert_eq!(target(&run_child(1, &env)), "spanline::request");
    let on = [env[0], env[1], env[2], ("SPANLINE_DOTTED_TARGETS", "true")];
    assert_eq!(target(&run_child(1, &on)), "spanline.request");
    let config =
        r#"{"format": "json", "preset": "structlog", "span_close": true, "dotted_targets": true}"#;
    assert_eq!(
        target(&run_child(1, &[("SPANLINE_INIT_CONFIG", config)])),
        "spanline.request"
    );
}

#[test]
fn error_style_and_source_location_from_the_environment_and_the_file() {
    let warning = |out: &Output| -> serde_json::Value {
        assert!(out.status.success(), "{out:?}");
        let line = log_lines(out)
            .into_iter()
            .find(|l| l.contains("a warning"))
            .unwrap();
        serde_json::from_str(&line).unwrap()
    };
    let env = [
        ("SPANLINE_FORMAT", "json"),
        ("SPANLINE_PRESET", "structlog"),
    ];
    // structlog's default: format_exc_info's text.
    let line = warning(&run_child(1, &env));
    assert_eq!(line["exception"], "std::io::Error: disk full");
    assert!(line.get("filename").is_none());
    let dicts = [
        env[0],
        env[1],
        ("SPANLINE_ERRORS", "dicts"),
        ("SPANLINE_SOURCE_LOCATION", "true"),
    ];
    let line = warning(&run_child(1, &dicts));
    assert_eq!(line["exception"][0]["exc_value"], "disk full");
    assert_eq!(line["exception"][0]["is_cause"], false);
    assert_eq!(line["filename"], "tests/init.rs");
    assert!(line["lineno"].as_u64().unwrap() > 0);
    let config =
        r#"{"format": "json", "preset": "ecs", "errors": "chain", "source_location": true}"#;
    let line = warning(&run_child(1, &[("SPANLINE_INIT_CONFIG", config)]));
    assert_eq!(line["error.message"], "disk full");
    assert!(line.get("error.type").is_none(), "chain style: {line}");
    assert_eq!(line["log.origin.file.name"], "tests/init.rs");
    // A style that does not exist: a clear error.
    let bad = run_child(1, &[env[0], ("SPANLINE_ERRORS", "frames")]);
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains(r#"SPANLINE_ERRORS="frames": expected chain, ecs, traceback, dicts"#),
        "{stderr}"
    );
}

/// `spanline::init()` in a child that a parent forwards: its context and
/// its Redis publishing, as the parent writes them.
#[cfg(all(feature = "pipe", unix))]
mod forwarded {
    use std::process::Stdio;
    use std::time::Duration;

    use serde_json::{Map, Value};
    use spanline::context::ContextSnapshot;
    use spanline::{ContextLayer, JsonLayer};
    use spanline_testkit::{Capture, RedisServer, Subscription};
    use tracing_subscriber::prelude::*;
    use tracing_subscriber::EnvFilter;

    const ROLE: &str = "SPANLINE_FORWARDED_CHILD";

    /// Runs as the child when `SPANLINE_FORWARDED_CHILD` is set.
    #[test]
    fn child() {
        let Ok(role) = std::env::var(ROLE) else {
            return;
        };
        let guard = spanline::init();
        match role.as_str() {
            "bound" => {
                // A job's context, as a worker restores it from its payload.
                let snapshot: ContextSnapshot = serde_json::from_str(
                    r#"{"v":2,"fields":{"request_id":"r-7","tenant":"acme","job_id":"job_1"}}"#,
                )
                .unwrap();
                let _task = snapshot.restore("nightly").entered();
                spanline::set("user_id", 42u64).unwrap();
                spanline::set("retry", true).unwrap();
                tracing::info!("below warn");
                tracing::warn!("bound keys");
                let _step = tracing::info_span!("step", tenant = "from-span").entered();
                tracing::warn!(retry = "the event's own", "in a span");
            }
            "redis" => {
                let _request = tracing::info_span!("request", request_id = "r-redis").entered();
                for i in 0..50u64 {
                    tracing::info!(i, "hello");
                }
                tracing::warn!(ok = true, "done");
            }
            other => panic!("unknown role {other}"),
        }
        drop(guard); // flushes Redis, when the child publishes itself
    }

    /// The child in `role`, with the environment of a parent whose
    /// `RUST_LOG` is `filter`.
    fn child_command(role: &str, filter: &str) -> std::process::Command {
        let mut cmd = spanline_testkit::this_test_binary("forwarded::child");
        cmd.env(ROLE, role)
            .env("RUST_LOG", filter)
            .env("SPANLINE_FORMAT", "json")
            .env_remove("SPANLINE_REDIS_URL")
            .env_remove("SPANLINE_REDIS_CLUSTER")
            .env_remove("SPANLINE_SPAN_CLOSE")
            .env_remove("BAGGAGE")
            .env_remove("TRACEPARENT")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    }

    /// The parent, its filter on its ContextLayer as `init()` puts it,
    /// running the child in `role` inside a launching span.
    fn run_parent(role: &str, filter: &str) -> Vec<Map<String, Value>> {
        let capture = Capture::new();
        let subscriber = tracing_subscriber::registry()
            .with(ContextLayer::new().filter(EnvFilter::new(filter)))
            .with(JsonLayer::builder().with_writer(capture.clone()).build());
        let status = tracing::subscriber::with_default(subscriber, || {
            let _launch = tracing::info_span!("launch", batch = "nightly").entered();
            spanline::pipe::forwarder("worker")
                .spawn(&mut child_command(role, filter))
                .unwrap()
                .wait()
                .unwrap()
        });
        assert!(status.success(), "{role} under {filter}");
        capture.json_lines()
    }

    fn line<'a>(lines: &'a [Map<String, Value>], message: &str) -> &'a Map<String, Value> {
        lines
            .iter()
            .find(|l| l["message"] == message)
            .unwrap_or_else(|| panic!("no {message:?} in {lines:#?}"))
    }

    #[test]
    fn keys_the_child_bound_reach_the_parents_lines_typed() {
        for filter in ["trace", "warn"] {
            let lines = run_parent("bound", filter);
            let bound = line(&lines, "bound keys");
            // Restored from the snapshot, and bound with `set`: typed.
            assert_eq!(bound["request_id"], "r-7", "{filter}: {bound:?}");
            assert_eq!(bound["tenant"], "acme", "{filter}");
            assert_eq!(bound["job_id"], "job_1", "{filter}");
            assert_eq!(bound["user_id"], 42, "{filter}");
            assert_eq!(bound["retry"], true, "{filter}");
            // The parent's launching context, and its `child` span.
            assert_eq!(bound["batch"], "nightly", "{filter}");
            assert_eq!(bound["name"], "worker", "{filter}");
            // A span's value beats a bound key, an event's field beats both.
            let in_span = line(&lines, "in a span");
            assert_eq!(in_span["tenant"], "from-span", "{filter}: {in_span:?}");
            assert_eq!(in_span["retry"], "the event's own", "{filter}");
            assert_eq!(in_span["user_id"], 42, "{filter}");
            assert_eq!(in_span["job_id"], "job_1", "{filter}");
            let info = lines.iter().any(|l| l["message"] == "below warn");
            assert_eq!(info, filter == "trace", "{filter}: the parent's level");
        }
    }

    #[test]
    fn a_forwarded_child_with_redis_set_publishes_each_line_once() {
        let server = RedisServer::start();
        let sub = Subscription::new(&server.url(), &["logs:global"]);
        let (redis, guard) = spanline::redis::RedisLayer::builder(&server.url())
            .build()
            .unwrap();
        let subscriber = tracing_subscriber::registry()
            .with(ContextLayer::new())
            .with(redis);
        let status = tracing::subscriber::with_default(subscriber, || {
            let mut cmd = child_command("redis", "info");
            // The same Redis in the child's environment.
            cmd.env("SPANLINE_REDIS_URL", server.url());
            spanline::pipe::forwarder("publisher")
                .spawn(&mut cmd)
                .unwrap()
                .wait()
                .unwrap()
        });
        assert!(status.success());
        assert!(guard.flush(Duration::from_secs(10)).complete);
        // Published after everything else: once it arrives, so has the rest.
        let mut conn = server.client().get_connection().unwrap();
        let _: i64 = redis::cmd("PUBLISH")
            .arg("logs:global")
            .arg("end")
            .query(&mut conn)
            .unwrap();
        let mut got = sub.wait_for(1, Duration::from_secs(10));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !got.iter().any(|(_, p)| p == "end") && std::time::Instant::now() < deadline {
            got = sub.wait_for(got.len() + 1, Duration::from_secs(1));
        }
        let lines: Vec<Value> = got
            .iter()
            .filter(|(_, p)| p != "end")
            .map(|(_, p)| serde_json::from_str(p).unwrap())
            .collect();
        let hello: Vec<u64> = lines
            .iter()
            .filter(|l| l["message"] == "hello")
            .map(|l| l["i"].as_u64().expect("typed as the child wrote it"))
            .collect();
        assert_eq!(hello, (0..50).collect::<Vec<_>>(), "each line once");
        let done: Vec<&Value> = lines.iter().filter(|l| l["message"] == "done").collect();
        assert_eq!(done.len(), 1, "{done:?}");
        assert_eq!(done[0]["ok"], true);
        assert_eq!(done[0]["request_id"], "r-redis");
        assert_eq!(done[0]["name"], "publisher", "the parent's context");
    }
}

/// A mistyped level never turns logging off quietly: `init()` names the
/// word and the nearest level on stderr and logs at the default level;
/// `try_init()` refuses it.
#[test]
fn a_mistyped_level_is_named_and_the_default_used() {
    for (word, nearest) in [
        ("warnn", Some("warn")),
        ("inf", Some("info")),
        ("eror", Some("error")),
        ("DNE", None),
    ] {
        let out = run_child(
            3,
            &[
                ("SPANLINE_FORMAT", "json"),
                ("RUST_LOG", word),
                ("SPANLINE_INIT_LENIENT", "1"),
            ],
        );
        assert!(out.status.success(), "{word}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("`{word}`: not a level")),
            "{word}: {err}"
        );
        if let Some(level) = nearest {
            assert!(
                err.contains(&format!("did you mean `{level}`?")),
                "{word}: {err}"
            );
        }
        assert!(err.contains("logging with `info`"), "{word}: {err}");
        assert_eq!(
            log_lines(&out).len(),
            5,
            "{word}: the default level's lines: {out:?}"
        );

        let out = run_child(3, &[("SPANLINE_FORMAT", "json"), ("RUST_LOG", word)]);
        assert_eq!(out.status.code(), Some(2), "{word}: try_init refuses it");
    }
    // A bare word that is a target stays a target: only its lines.
    let out = run_child(3, &[("SPANLINE_FORMAT", "json"), ("RUST_LOG", "legacy")]);
    assert!(out.status.success(), "{out:?}");
    let lines = log_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("from the log crate"), "{lines:?}");
}

/// `SPANLINE_FILE`: every line in the file, none on stdout; with daily
/// rotation, the file is named for the day.
#[test]
fn file_output_with_rotation() {
    let dir = std::env::temp_dir().join(format!("spanline-init-file-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("logs/app.log");
    let out = run_child(50, &[("SPANLINE_FILE", path.to_str().unwrap())]);
    assert!(out.status.success(), "{out:?}");
    assert!(log_lines(&out).is_empty(), "nothing on stdout: {out:?}");
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 52, "JSON by default in a file");
    assert!(lines.iter().all(|l| l["message"].is_string()));

    let out = run_child(
        5,
        &[
            ("SPANLINE_FILE", path.to_str().unwrap()),
            ("SPANLINE_ROTATION", "daily"),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let rotated: Vec<_> = std::fs::read_dir(dir.join("logs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with("app.log."))
        .collect();
    assert_eq!(rotated.len(), 1, "{rotated:?}");
    let day = &rotated[0]["app.log.".len()..];
    assert!(
        day.len() == 10 && day.as_bytes()[4] == b'-',
        "named for the day: {rotated:?}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("logs").join(&rotated[0]))
            .unwrap()
            .lines()
            .count(),
        7
    );

    // A file that cannot be opened: said, and lines go to stdout instead.
    let out = run_child(
        1,
        &[
            ("SPANLINE_FILE", "/proc/spanline/app.log"),
            ("SPANLINE_FORMAT", "json"),
            ("SPANLINE_INIT_LENIENT", "1"),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the log file (SPANLINE_FILE)"),
        "{out:?}"
    );
    assert_eq!(log_lines(&out).len(), 3);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `SPANLINE_NON_BLOCKING`: with stdout's reader stalled for the whole
/// run (a pipe nobody reads), the program still finishes: every line is
/// either on stdout or counted, on stderr, as dropped or unwritten. The
/// same program writing from the logging thread would wait forever.
#[test]
fn a_stalled_reader_never_blocks_the_non_blocking_writer() {
    let total = 200_000u64;
    let mut cmd = spanline_testkit::this_test_binary("child");
    cmd.env("SPANLINE_INIT_CHILD", (total - 2).to_string())
        .env("SPANLINE_FORMAT", "json")
        .env("SPANLINE_NON_BLOCKING", "true")
        // Out before the test harness prints its verdict to the stalled stdout.
        .env("SPANLINE_INIT_EXIT", "1")
        .env_remove("RUST_LOG")
        .env_remove("SPANLINE_REDIS_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    // Nobody reads stdout until the child is gone: its pipe (64 KiB) fills
    // at once. A generous bound: it fails only if the child hangs.
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the child hangs on its stalled stdout"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    assert!(status.success(), "{out:?}");
    let written = log_lines(&out)
        .iter()
        .filter(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
        .count() as u64;
    let err = String::from_utf8_lossy(&out.stderr);
    let report = err
        .lines()
        .find(|l| l.contains("log lines were not written"))
        .unwrap_or_else(|| panic!("no report: {err}"));
    let number = |after: &str| -> u64 {
        let at = report.find(after).unwrap() + after.len();
        report[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let (dropped, unwritten) = (
        number("were not written: "),
        number("full (its reader was slower than the program), "),
    );
    assert!(dropped > 0, "{report}");
    assert_eq!(
        written + dropped + unwritten,
        total,
        "every line written or counted: {report}"
    );
}

/// `Guard::set_filter` changes the filter while running.
#[test]
fn the_filter_changes_while_running() {
    let out = run_child(
        1,
        &[
            ("SPANLINE_FORMAT", "json"),
            ("SPANLINE_INIT_RELOAD", "debug"),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("set_filter: Some(Ok(()))"),
        "{out:?}"
    );
    let lines = log_lines(&out);
    assert!(
        lines.last().unwrap().contains("after the reload"),
        "{lines:?}"
    );
    // Without reload_filter, set_filter says why it cannot.
    let out = run_child(
        1,
        &[("SPANLINE_FORMAT", "json"), ("SPANLINE_INIT_RELOAD", "")],
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("set_filter: Some(Err(NotReloadable))"),
        "{out:?}"
    );
    assert!(!log_lines(&out)
        .iter()
        .any(|l| l.contains("after the reload")));
}

/// `SPANLINE_DEBUG_CONFIG=1` prints every option and where it came from;
/// the builder beats the environment, which beats the file (the old
/// `SPANLINE_REDIS_CAPACITY` bug: the environment won over the file and
/// the builder alike).
#[test]
fn the_options_in_effect_and_where_they_came_from() {
    let out = run_child(
        1,
        &[
            ("SPANLINE_DEBUG_CONFIG", "1"),
            ("SPANLINE_FORMAT", "json"),
            ("SPANLINE_REDIS_CAPACITY", "500"),
            (
                "SPANLINE_INIT_CONFIG",
                r#"{"redis_capacity": 900, "service": "from-file", "format": "pretty"}"#,
            ),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("redis_capacity = \"500\" (from the environment)"),
        "{err}"
    );
    assert!(
        err.contains("service = \"from-file\" (from the configuration file)"),
        "{err}"
    );
    assert!(
        err.contains("format = \"json\" (from the environment)"),
        "{err}"
    );
    assert!(err.contains("preset = flat (the default)"), "{err}");
    let line: serde_json::Value = serde_json::from_str(&log_lines(&out)[0]).unwrap();
    assert_eq!(line["service"], "from-file");
}

/// The number of lines the Redis publisher's exit report says it could not
/// publish, and of how many: `at exit, N of M log lines were not published`.
fn exit_report(stderr: &str) -> Option<(u64, u64)> {
    let line = stderr
        .lines()
        .find(|l| l.contains("at exit,") && l.contains("not published"))?;
    let mut numbers = line
        .split("at exit, ")
        .nth(1)?
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .map(|w| w.parse::<u64>().unwrap());
    Some((numbers.next()?, numbers.next()?))
}

/// 4,000 lines, then the process ends in each way a program ends: every
/// line is published, or the shortfall is said on stderr, exactly, before
/// the process is gone; the guard kept or not.
#[test]
fn nothing_is_lost_at_exit_without_a_word() {
    const LINES: u64 = 4_000;
    let total = LINES + 2; // and a warning, and a line of the log crate
    for (how, env) in [
        ("the guard kept to the end of main", None),
        (
            "let _ = spanline::init()",
            Some(("SPANLINE_INIT_DISCARD_GUARD", "1")),
        ),
        ("std::process::exit", Some(("SPANLINE_INIT_EXIT", "1"))),
    ] {
        let server = RedisServer::start();
        let sub = Subscription::new(&server.url(), &["logs:global"]);
        let url = server.url();
        let mut vars = vec![
            ("SPANLINE_FORMAT", "json"),
            ("SPANLINE_REDIS_URL", url.as_str()),
            ("SPANLINE_REDIS_CAPACITY", "10000"),
        ];
        vars.extend(env);
        let out = run_child(LINES, &vars);
        assert!(out.status.success(), "{how}: {out:?}");
        let got = sub.wait_for(total as usize, Duration::from_secs(20));
        assert_eq!(got.len() as u64, total, "{how}: every line published");
        assert_eq!(
            exit_report(&String::from_utf8_lossy(&out.stderr)),
            None,
            "{how}: {out:?}"
        );
    }

    // Redis down the whole time, and frozen (it takes the connection and
    // never answers): every line is counted and said, before the exit.
    let mut down = RedisServer::start();
    let url = down.url();
    down.stop();
    let out = run_child(
        LINES,
        &[
            ("SPANLINE_FORMAT", "json"),
            ("SPANLINE_REDIS_URL", &url),
            ("SPANLINE_REDIS_CAPACITY", "10000"),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    let (lost, of) = exit_report(&err).unwrap_or_else(|| panic!("Redis down: no report: {err}"));
    assert!(
        of >= total && lost == of,
        "Redis down: {lost} of {of}: {err}"
    );

    let frozen = RedisServer::start();
    frozen.freeze();
    let out = run_child(
        LINES,
        &[
            ("SPANLINE_FORMAT", "json"),
            ("SPANLINE_REDIS_URL", &frozen.url()),
            ("SPANLINE_REDIS_CAPACITY", "10000"),
        ],
    );
    frozen.thaw();
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    let (lost, of) = exit_report(&err).unwrap_or_else(|| panic!("Redis frozen: no report: {err}"));
    assert!(
        of >= total && lost == of,
        "Redis frozen: {lost} of {of}: {err}"
    );
}

/// A secret planted in a nested JSON value, in a redacted context key and
/// in the lines of a child that does not redact appears in no output: not
/// stdout, not Redis, not a snapshot's environment, payload or headers,
/// not the child's environment.
#[test]
fn secrets_stay_secret_in_every_output() {
    let server = RedisServer::start();
    let sub = Subscription::new(&server.url(), &["logs:global"]);
    let out = run_child(
        0,
        &[
            ("SPANLINE_FORMAT", "json"),
            ("SPANLINE_REDIS_URL", &server.url()),
            ("SPANLINE_REDACT", "user_id,*password*,token"),
            ("SPANLINE_INIT_SECRETS", "1"),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines = log_lines(&out);
    let published = sub.wait_for(lines.len(), Duration::from_secs(10));
    assert_eq!(published.len(), lines.len(), "{stdout}");
    let redis: Vec<&str> = published.iter().map(|(_, p)| p.as_str()).collect();
    // The lines are there, and say what they hid.
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"message\":\"config\"") && l.contains("[redacted]")),
        "{stdout}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"message\":\"child\"") && l.contains("[redacted]")),
        "{stdout}"
    );
    assert!(stderr.contains("snapshot payload: {"), "{stderr}");
    for secret in [
        "SECRET-UID-1",
        "SECRET-NESTED-2",
        "SECRET-CHILD-3",
        "SECRET-CHILD-4",
    ] {
        assert!(!stdout.contains(secret), "{secret} on stdout: {stdout}");
        assert!(!stderr.contains(secret), "{secret} on stderr: {stderr}");
        assert!(
            !redis.iter().any(|p| p.contains(secret)),
            "{secret} on Redis: {redis:?}"
        );
    }
}
