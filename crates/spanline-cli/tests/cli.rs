//! The `spanline` binary, run for real: `pretty` on mixed input, `run` with
//! failing and forwarding children, `tail` against a real redis-server
//! that restarts.
//!
//! One file: every test runs the built binary through the helpers at the
//! top, and cargo links one test binary per file (each one more link of the
//! whole dependency tree on a 2-core machine).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use spanline_testkit::{KillOnDrop, RedisCluster, RedisServer};

const BIN: &str = env!("CARGO_BIN_EXE_spanline");

fn golden(preset: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../spanline-json/tests/data/{preset}.jsonl",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// `spanline pretty --color never` on `input`.
fn pretty(input: &str) -> std::process::Output {
    run_pretty(&["--color", "never"], &[], input)
}

/// `spanline pretty` with `args` on `input`, in the environment `env`.
fn run_pretty(args: &[&str], env: &[(&str, &str)], input: &str) -> std::process::Output {
    let mut child = Command::new(BIN)
        .arg("pretty")
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn pretty_survives_timestamps_cut_inside_a_character() {
    // Byte 19 of a timestamp-like value inside a multi-byte character, raw
    // and through a JSON escape: once a panic that ended every `tail`.
    let input = "{\"timestamp\":\"2026-11-21T20:52:4\u{e9}\",\"message\":\"a\"}\n\
                 {\"time\":\"2026-11-21T20:52:\\u601b49Z\",\"message\":\"b\"}\n\
                 {\"ts\":\"2026-11-\u{e9}1T20:52:49Z\",\"message\":\"c\"}\n";
    let out = pretty(input);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].starts_with("2026-11-21T20:52:4\u{e9} "),
        "as is: {}",
        lines[0]
    );
    assert!(lines[1].contains(" b"), "{}", lines[1]);
    assert!(lines[2].contains(" c"), "{}", lines[2]);
}

#[test]
fn pretty_renders_every_preset_and_marks_malformed_lines() {
    let mut input = String::new();
    for preset in ["flat", "structlog", "bunyan", "gcp", "ecs", "nested"] {
        input.push_str(golden(preset).lines().nth(1).unwrap());
        input.push('\n');
    }
    input.push_str("not json at all \u{1b}[2J\n{\"broken\": \n[1,2,3]\n\n");
    input.push_str("{\"msg\":\"from elsewhere\",\"lvl\":\"warn\",\"extra\":1}\n");
    let out = pretty(&input);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 10, "{text}");
    for line in &lines[..6] {
        assert!(
            line.starts_with("2025-11-21 20:52:49 [info     ] query done"),
            "{line}"
        );
        assert!(line.contains("rows=3"), "{line}");
        // ECS writes the request id as `http.request.id`.
        assert!(
            line.contains(" request_id=r-1") || line.contains(" http.request.id=r-1"),
            "{line}"
        );
    }
    assert!(
        lines[6].starts_with("[unparsed] not json at all \\u{1b}[2J"),
        "{}",
        lines[6]
    );
    assert_eq!(lines[7], "[unparsed] {\"broken\": ");
    assert_eq!(lines[8], "[unparsed] [1,2,3]");
    assert!(
        lines[9].contains("[warning  ] from elsewhere") && lines[9].ends_with("extra=1"),
        "{}",
        lines[9]
    );
    assert!(!text.contains('\u{1b}'));
}

#[test]
fn run_passes_the_exit_status_through() {
    let out = Command::new(BIN)
        .args(["run", "--json", "--", "sh", "-c", "exit 3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("\"message\":\"child failed\"") && stdout.contains("\"code\":3"),
        "{stdout}"
    );

    let out = Command::new(BIN)
        .args(["run", "--", "sh", "-c", "kill -9 $$"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(128 + 9));
}

#[test]
fn run_forwards_a_spanline_child() {
    // The inner `spanline run` logs through its ForwardLayer: its
    // "child failed" event comes back to the outer one, under its span.
    let out = Command::new(BIN)
        .args([
            "run", "--json", "--name", "outer", "--", BIN, "run", "--json", "--name", "inner",
            "--", "sh", "-c", "exit 4",
        ])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let forwarded: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &serde_json::Value| v["message"] == "child failed")
        .collect();
    assert_eq!(forwarded.len(), 2, "{stdout}");
    assert!(
        forwarded.iter().any(|v| v["name"] == "inner"),
        "the inner child's line came through: {stdout}"
    );
}

#[test]
fn run_makes_a_plain_childs_output_json_lines() {
    // A child that knows nothing of spanline: colours, a tab, a bell, and
    // a last line without its newline, on stdout and stderr.
    let script = r#"printf '\033[31mred\033[0m text\n'; printf 'to\tstderr\a\n' >&2; printf '\033]0;title\007no newline'"#;
    let out = Command::new(BIN)
        .args([
            "run", "--json", "--name", "painter", "--", "sh", "-c", script,
        ])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect();
    let find = |message: &str| {
        lines
            .iter()
            .find(|v| v["message"] == message)
            .unwrap_or_else(|| panic!("no {message:?} in {stdout}"))
    };
    let red = find("red text");
    assert_eq!(red["level"], "INFO");
    assert_eq!(red["target"], "sh", "the command's name");
    assert_eq!(red["stream"], "stdout");
    // The parent's context: the `child` span.
    assert_eq!(red["name"], "painter");
    assert!(red["pid"].as_u64().is_some(), "{red}");
    let err = find("to stderr");
    assert_eq!(err["level"], "WARN");
    assert_eq!(err["stream"], "stderr");
    assert_eq!(find("no newline")["target"], "sh");
    assert!(!stdout.contains('\u{1b}'), "{stdout}");
    assert_eq!(find("child exited")["code"], 0);
}

#[test]
fn run_without_a_command_is_a_usage_error() {
    let out = Command::new(BIN).arg("run").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage"));
}

#[test]
fn help_has_examples_on_every_command() {
    for cmd in ["tail", "pretty", "run"] {
        let out = Command::new(BIN).args([cmd, "--help"]).output().unwrap();
        assert!(out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Examples:"),
            "{cmd}"
        );
    }
}

fn subscribers(server: &RedisServer, channel: &str) -> i64 {
    let Ok(mut con) = server.client().get_connection() else {
        return 0;
    };
    let counts: Vec<(String, i64)> = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(channel)
        .query(&mut con)
        .unwrap_or_default();
    counts.first().map_or(0, |(_, n)| *n)
}

fn publish(server: &RedisServer, channel: &str, payload: &str) {
    let mut con = server.client().get_connection().unwrap();
    let _: i64 = redis::cmd("PUBLISH")
        .arg(channel)
        .arg(payload)
        .query(&mut con)
        .unwrap();
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn tail_since_backs_off_and_says_what_the_error_is() {
    let server = RedisServer::start();
    let mut con = server.client().get_connection().unwrap();
    redis::cmd("SET")
        .arg("logs:global")
        .arg("not a stream")
        .exec(&mut con)
        .unwrap();
    let connections = |con: &mut redis::Connection| -> u64 {
        let info: String = redis::cmd("INFO").arg("stats").query(con).unwrap();
        info.lines()
            .find_map(|l| l.strip_prefix("total_connections_received:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let before = connections(&mut con);
    let mut tail = KillOnDrop(
        Command::new(BIN)
            .args(["tail", "--redis", &server.url(), "--global", "--since", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Wait until it has retried several times (observed, not slept on).
    wait_until("a few retries", || connections(&mut con) >= before + 4);
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let during = connections(&mut con) - before;
    let _ = tail.kill();
    let _ = tail.wait();
    let mut stderr = String::new();
    tail.stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    // Back-off doubles to 2 s: a handful of connections, never thousands.
    assert!(
        during < 15,
        "{during} connections in {:?}",
        started.elapsed()
    );
    assert_eq!(
        stderr.matches("WRONGTYPE").count(),
        1,
        "the error is named, once: {stderr}"
    );
}

#[test]
fn tail_follows_a_job_across_a_redis_restart_with_a_filter() {
    let mut server = RedisServer::start();
    let mut tail = KillOnDrop(
        Command::new(BIN)
            .args([
                "tail",
                "--redis",
                &server.url(),
                "--job",
                "build_1",
                "--json",
                "--count",
                "3",
                "--filter",
                "info,noisy=off",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    wait_until("the tail's subscription", || {
        subscribers(&server, "logs:build_1") == 1
    });
    let line = |msg: &str, target: &str| {
        format!(r#"{{"level":"INFO","message":"{msg}","target":"{target}"}}"#)
    };
    publish(&server, "logs:build_1", &line("one", "app"));
    publish(&server, "logs:build_1", &line("filtered out", "noisy"));
    server.restart();
    wait_until("the tail's resubscription", || {
        subscribers(&server, "logs:build_1") == 1
    });
    publish(&server, "logs:build_1", &line("two", "app"));
    publish(&server, "logs:build_1", &line("three", "app"));
    let status = tail.wait().unwrap();
    assert!(status.success());
    let mut stdout = String::new();
    tail.stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let mut stderr = String::new();
    tail.stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let messages: Vec<String> = stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["message"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(messages, ["one", "two", "three"]);
    assert!(stderr.contains("reconnected"), "it says so: {stderr}");
}

#[test]
fn tail_replays_a_stream_from_an_id() {
    let server = RedisServer::start();
    let mut con = server.client().get_connection().unwrap();
    for i in 0..3 {
        let _: String = redis::cmd("XADD")
            .arg("logs:global")
            .arg("*")
            .arg("line")
            .arg(format!(
                r#"{{"level":"INFO","message":"m{i}","target":"app"}}"#
            ))
            .query(&mut con)
            .unwrap();
    }
    let out = Command::new(BIN)
        .args([
            "tail",
            "--redis",
            &server.url(),
            "--global",
            "--since",
            "0",
            "--count",
            "3",
            "--color",
            "never",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].contains("[info     ] m0") && lines[2].contains("m2"),
        "{text}"
    );
}

#[test]
fn tail_rejects_a_hostile_job_id() {
    let out = Command::new(BIN)
        .args(["tail", "--job", "logs:*", "--redis", "redis://127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("job id"));
}

/// What `spanline pretty` with `args` prints, having succeeded.
fn pretty_with(args: &[&str], env: &[(&str, &str)], input: &str) -> String {
    let out = run_pretty(args, env, input);
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn pretty_keeps_key_order_filters_and_shows_local_and_epoch_times() {
    let input = concat!(
        r#"{"service":"api","timestamp":"2026-12-02T13:00:01Z","level":"INFO","message":"login","target":"app","user":"bob","http":{"method":"GET","status":200}}"#,
        "\n",
        r#"{"time":1796216402000,"level":40,"msg":"slow","name":"pino-app","user":"ann"}"#,
        "\n",
        r#"{"timestamp":"2026-12-02T13:00:03Z","level":"ERROR","message":"failed","user":"ann"}"#,
        "\n",
    );
    let all = pretty_with(&["--color", "always"], &[("TZ", "UTC")], input);
    let lines: Vec<&str> = all.lines().collect();
    // The line's own order: service first, then the event's fields; nested
    // objects as dotted pairs.
    let plain = pretty_with(&[], &[], input);
    assert!(
        plain
            .lines()
            .next()
            .unwrap()
            .ends_with("[app] service=api user=bob http.method=GET http.status=200"),
        "{plain}"
    );
    // pino's epoch milliseconds.
    assert!(
        plain
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("2026-12-02 13:00:02 [warning"),
        "{plain}"
    );
    assert!(
        lines[0].contains("\u{1b}["),
        "--color always colours: {all}"
    );
    // NO_COLOR is for `auto`; `always` is asked for.
    let no_color = pretty_with(&["--color", "auto"], &[("NO_COLOR", "1")], input);
    assert!(!no_color.contains('\u{1b}'), "{no_color}");
    // A minimum level and a field filter.
    let warn_ann = pretty_with(&["--level", "warn", "--where", "user=ann"], &[], input);
    let messages: Vec<&str> = warn_ann
        .lines()
        .map(|l| {
            if l.contains("slow") {
                "slow"
            } else if l.contains("failed") {
                "failed"
            } else {
                l
            }
        })
        .collect();
    assert_eq!(messages, ["slow", "failed"], "{warn_ann}");
    let nested = pretty_with(&["--where", "http.status=200"], &[], input);
    assert_eq!(nested.lines().count(), 1, "{nested}");
    // Local times, in the zone TZ names (a POSIX rule: no tz database needed).
    let local = pretty_with(&["--local"], &[("TZ", "XYZ-2")], input);
    assert!(local.starts_with("2026-12-02 15:00:01 "), "{local}");
    // A bad level is a clear error.
    let bad = Command::new(BIN)
        .args(["pretty", "--level", "loud"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown level"));
}

#[test]
fn web_refuses_to_listen_off_loopback_without_a_token_and_serves_on_loopback() {
    let refused = Command::new(BIN)
        .args(["web", "--listen", "0.0.0.0:0"])
        .env_remove("SPANLINE_WEB_TOKEN")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("without a token"), "{said}");

    let redis = RedisServer::start();
    let port = spanline_testkit::free_port();
    let _web = KillOnDrop(
        Command::new(BIN)
            .args(["web", "--redis", &redis.url(), "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    let page = loop {
        if let Ok(mut con) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            write!(
                con,
                "GET /jobs/job_1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            let mut page = String::new();
            con.read_to_string(&mut page).unwrap();
            break page;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "spanline web did not listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains(r#"data-job="job_1""#), "{page}");
}

// ==== on a Redis Cluster ====

/// Subscribers of the sharded `channel` on the node that owns it.
fn shard_subscribers(cluster: &RedisCluster, channel: &str) -> i64 {
    let Ok(mut con) = cluster.node_for(channel).client().get_connection() else {
        return 0;
    };
    let counts: Vec<(String, i64)> = redis::cmd("PUBSUB")
        .arg("SHARDNUMSUB")
        .arg(channel)
        .query(&mut con)
        .unwrap_or_default();
    counts.first().map_or(0, |(_, n)| *n)
}

fn spublish(cluster: &RedisCluster, channel: &str, payload: &str) {
    let mut con = cluster.node_for(channel).client().get_connection().unwrap();
    let _: i64 = redis::cmd("SPUBLISH")
        .arg(channel)
        .arg(payload)
        .query(&mut con)
        .unwrap();
}

fn tail_cluster(cluster: &RedisCluster, args: &[&str]) -> KillOnDrop {
    KillOnDrop(
        Command::new(BIN)
            .args([
                "tail",
                "--cluster",
                "--redis",
                &cluster.urls().join(","),
                "--json",
            ])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

/// Waits for the tail to end; its stdout's messages and its stderr.
fn finished(mut tail: KillOnDrop) -> (Vec<String>, String) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while tail.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "tail did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (mut stdout, mut stderr) = (String::new(), String::new());
    tail.stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    tail.stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let messages = stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["message"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    (messages, stderr)
}

fn line(msg: &str) -> String {
    format!(r#"{{"level":"INFO","message":"{msg}","target":"app"}}"#)
}

#[test]
fn tail_cluster_follows_a_job_and_the_sharded_global_feed() {
    let cluster = RedisCluster::start(3);
    let channels = spanline_redis::Channels::default();
    let shards = spanline_redis::read::global_shards(&channels, 3);
    // The publisher's count of shards: the tail finds all three from it.
    let key = spanline_redis::read::global_shards_key(&channels);
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg(3)
        .query(&mut cluster.node_for(&key).client().get_connection().unwrap())
        .unwrap();
    let global = tail_cluster(&cluster, &["--global", "--count", "9"]);
    let job = tail_cluster(&cluster, &["--job", "build_1", "--count", "2"]);
    wait_until("the tail's subscriptions", || {
        shards.iter().all(|s| shard_subscribers(&cluster, s) == 1)
            && shard_subscribers(&cluster, "logs:build_1") == 1
    });
    for i in 0..9 {
        spublish(&cluster, &shards[i % 3], &line(&format!("g{i}")));
    }
    spublish(&cluster, "logs:build_1", &line("j0"));
    spublish(&cluster, "logs:build_1", &line("j1"));
    let (mut messages, _) = finished(global);
    messages.sort();
    assert_eq!(
        messages,
        (0..9).map(|i| format!("g{i}")).collect::<Vec<_>>()
    );
    assert_eq!(finished(job).0, ["j0", "j1"]);
    // No patterns on a cluster: said, not silently empty.
    let (_, stderr) = finished(tail_cluster(&cluster, &["--pattern", "logs:*"]));
    assert!(stderr.contains("no patterns"), "{stderr}");
}

#[test]
fn tail_cluster_merges_the_global_streams_in_time_order() {
    let cluster = RedisCluster::start(3);
    let shards = spanline_redis::read::global_shards(&spanline_redis::Channels::default(), 2);
    // 1,200 entries over two shards: the first 600 on one, the rest on the
    // other, more than a page (512) each: a merge that showed each page as
    // read would print the second shard's first page before the first
    // shard's last 88 entries.
    for i in 0..1_200u64 {
        let key = &shards[usize::from(i >= 600)];
        let _: String = redis::cmd("XADD")
            .arg(key)
            .arg(format!("{}-0", i + 1))
            .arg("line")
            .arg(line(&format!("m{i}")))
            .query(&mut cluster.node_for(key).client().get_connection().unwrap())
            .unwrap();
    }
    let (messages, stderr) = finished(tail_cluster(
        &cluster,
        &[
            "--global", "--shards", "2", "--since", "0", "--count", "1200",
        ],
    ));
    assert_eq!(
        messages,
        (0..1_200).map(|i| format!("m{i}")).collect::<Vec<_>>(),
        "in time order: {stderr}"
    );
}

#[test]
fn tail_cluster_survives_a_master_failover_and_says_what_may_be_missing() {
    let mut cluster = RedisCluster::start_with_replicas(3, 1);
    let channel = "logs:build_7";
    let tail = tail_cluster(&cluster, &["--job", "build_7", "--count", "2"]);
    wait_until("the tail's subscription", || {
        shard_subscribers(&cluster, channel) == 1
    });
    spublish(&cluster, channel, &line("before"));
    let killed = cluster.kill_master_of(channel);
    let promoted = cluster.wait_served(channel, Duration::from_secs(30));
    assert_ne!(promoted, killed);
    wait_until("the tail's subscription on the new master", || {
        shard_subscribers(&cluster, channel) == 1
    });
    spublish(&cluster, channel, &line("after"));
    let (messages, stderr) = finished(tail);
    assert_eq!(messages, ["before", "after"]);
    assert!(
        stderr.contains("lost a node") && stderr.contains("missing"),
        "{stderr}"
    );
}

#[test]
fn tail_cluster_streams_resume_after_a_failover_with_nothing_missing_or_twice() {
    let mut cluster = RedisCluster::start_with_replicas(3, 1);
    let key = "logs:build_8";
    let add = |cluster: &RedisCluster, msg: &str| {
        let mut con = cluster.node_for(key).client().get_connection().unwrap();
        let _: String = redis::cmd("XADD")
            .arg(key)
            .arg("*")
            .arg("line")
            .arg(line(msg))
            .query(&mut con)
            .unwrap();
        // On the replica before we go on: the promise is about what it holds.
        let _: i64 = redis::cmd("WAIT").arg(1).arg(5000).query(&mut con).unwrap();
    };
    for i in 0..3 {
        add(&cluster, &format!("s{i}"));
    }
    let mut tail = tail_cluster(
        &cluster,
        &["--job", "build_8", "--since", "0", "--count", "6"],
    );
    // The first three shown before the master dies.
    let mut reader = std::io::BufReader::new(tail.stdout.take().unwrap());
    let mut shown = Vec::new();
    for _ in 0..3 {
        let mut l = String::new();
        std::io::BufRead::read_line(&mut reader, &mut l).unwrap();
        shown.push(l);
    }
    let killed = cluster.kill_master_of(key);
    assert_ne!(cluster.wait_served(key, Duration::from_secs(30)), killed);
    for i in 3..6 {
        add(&cluster, &format!("s{i}"));
    }
    let mut rest = String::new();
    reader.read_to_string(&mut rest).unwrap();
    assert!(tail.wait().unwrap().success());
    let messages: Vec<String> = shown
        .iter()
        .map(String::as_str)
        .chain(rest.lines())
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["message"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(messages, ["s0", "s1", "s2", "s3", "s4", "s5"]);
}

// ==== what the errors say ====

/// Arguments and environment variables of one run.
type Run<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>);

/// `spanline` with `args` in a clean environment plus `env`.
fn spanline_cmd(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("SPANLINE_REDIS_URL")
        .env_remove("SPANLINE_REDIS_CLUSTER")
        .env_remove("SPANLINE_WEB_TOKEN")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs `spanline` with `args` to its end (a failure after 20 s): its exit
/// code, stdout and stderr.
fn spanline(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut child = KillOnDrop(spanline_cmd(args, env).spawn().unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "spanline {args:?} did not end");
        std::thread::sleep(Duration::from_millis(20));
    };
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status.code(), stdout, stderr)
}

/// The first line `spanline` with `args` writes on stderr (within 20 s),
/// and whether it was still running after it: then it is killed.
fn first_stderr_line(args: &[&str]) -> (String, bool) {
    let mut child = KillOnDrop(spanline_cmd(args, &[]).spawn().unwrap());
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(stderr), &mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("spanline {args:?} said nothing on stderr"));
    // Still retrying a moment later?
    std::thread::sleep(Duration::from_millis(300));
    let running = child.try_wait().unwrap().is_none();
    (line.trim_end().to_string(), running)
}

#[test]
fn bad_redis_urls_are_explained_without_the_password() {
    for (url, said) in [
        (
            "127.0.0.1:6379",
            "invalid Redis URL: no scheme (`redis://`); expected redis://",
        ),
        (
            "http://127.0.0.1:1",
            "invalid Redis URL: unknown scheme `http`",
        ),
        (
            "redis://:s3cret-pw@127.0.0.1:63a9",
            "invalid Redis URL: the port is not a number from 0 to 65535",
        ),
        (
            "redis://:s3cret-pw@127.0.0.1:1/first",
            "invalid Redis URL: the database (after the `/`) is not a number",
        ),
        (
            "redis://:s3cret-pw@0.0.0.0:1",
            "invalid Redis URL: Cannot connect to a wildcard address",
        ),
    ] {
        let runs: [Run<'_>; 4] = [
            (vec!["tail", "--redis", url], vec![]),
            (vec!["tail", "--global"], vec![("SPANLINE_REDIS_URL", url)]),
            (
                vec!["tail", "--cluster", "--redis", url, "--global"],
                vec![],
            ),
            (vec!["web", "--redis", url], vec![]),
        ];
        for (args, env) in runs {
            let (code, stdout, stderr) = spanline(&args, &env);
            assert_eq!(code, Some(2), "{args:?}: {stderr}");
            assert!(stderr.starts_with("spanline: "), "{args:?}: {stderr}");
            assert!(stderr.contains(said), "{args:?}: {stderr}");
            assert!(
                !stderr.contains("s3cret") && !stderr.contains("InvalidClientConfig"),
                "{args:?}: {stderr}"
            );
            assert!(!stderr.contains("spanline web:"), "no banner: {stderr}");
            assert_eq!(stdout, "", "{args:?}");
        }
    }
    // Of a cluster's nodes, the one at fault.
    let (code, _, stderr) = spanline(
        &[
            "tail",
            "--cluster",
            "--redis",
            "redis://127.0.0.1:1,redis://:s3cret-pw@127.0.0.1:x",
        ],
        &[],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("node 2 of 2: invalid Redis URL: the port is not a number"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");
}

#[test]
fn tail_names_the_server_and_the_cause_when_it_cannot_reach_redis() {
    // Nobody listens on this port.
    let port = spanline_testkit::free_port();
    let url = format!("redis://:s3cret-pw@127.0.0.1:{port}");
    for extra in [&["--global"][..], &["--global", "--since", "0"]] {
        let args: Vec<&str> = ["tail", "--redis", &url]
            .iter()
            .chain(extra)
            .copied()
            .collect();
        let (said, running) = first_stderr_line(&args);
        assert_eq!(
            said,
            format!(
                "spanline: cannot reach Redis at 127.0.0.1:{port}: connection refused; retrying"
            ),
            "{args:?}"
        );
        assert!(running, "a server that is down may come up: it retries");
    }
    // A frozen server accepts the connection and never answers.
    let server = RedisServer::start();
    server.freeze();
    let (said, running) = first_stderr_line(&["tail", "--redis", &server.url(), "--job", "job_1"]);
    server.thaw();
    assert_eq!(
        said,
        format!(
            "spanline: cannot reach Redis at 127.0.0.1:{}: timed out: no answer within 2 s; \
             retrying",
            server.port()
        )
    );
    assert!(running);
}

#[test]
fn tail_stops_when_redis_refuses_the_login_or_has_no_such_database() {
    let server =
        RedisServer::start_with(&["--user", "logger", "on", ">right-pw", "~*", "&*", "+@all"]);
    let at = format!("127.0.0.1:{}", server.port());
    let login = "refused the login: wrong user or password";
    for (url, said) in [
        (format!("redis://logger:wrong-pw@{at}"), login),
        (format!("redis://nobody:wrong-pw@{at}"), login),
        // The default user has no password.
        (format!("redis://:wrong-pw@{at}"), login),
        (
            format!("redis://{at}/99"),
            "has no database 99: DB index is out of range",
        ),
    ] {
        for extra in [&["--global"][..], &["--job", "job_1", "--since", "0"]] {
            let args: Vec<&str> = ["tail", "--redis", &url]
                .iter()
                .chain(extra)
                .copied()
                .collect();
            let (code, _, stderr) = spanline(&args, &[]);
            assert_eq!(code, Some(2), "{args:?}: {stderr}");
            assert!(
                stderr.starts_with(&format!("spanline: Redis at {at} {said}")),
                "{args:?}: {stderr}"
            );
            assert!(!stderr.contains("wrong-pw"), "{stderr}");
            assert!(!stderr.contains("retrying"), "{stderr}");
        }
    }
    // The URL has no password, the server wants one.
    let mut con = server.client().get_connection().unwrap();
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("right-pw")
        .exec(&mut con)
        .unwrap();
    let url = format!("redis://{at}");
    for extra in [
        &["--global"][..],
        &["--pattern", "logs:*"],
        &["--global", "--since", "0"],
    ] {
        let args: Vec<&str> = ["tail", "--redis", &url]
            .iter()
            .chain(extra)
            .copied()
            .collect();
        let (code, _, stderr) = spanline(&args, &[]);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with(&format!(
                "spanline: Redis at {at} requires a login: give the user and password in the URL"
            )),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn run_names_a_command_that_cannot_start_and_why() {
    let not_executable = std::env::temp_dir().join(format!(
        "spanline-cli-not-executable-{}",
        std::process::id()
    ));
    std::fs::write(&not_executable, "#!/bin/sh\necho hi\n").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&not_executable, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let not_executable = not_executable.to_str().unwrap().to_string();
    for (command, code, said) in [
        (
            "/nonexistent",
            127,
            "spanline: cannot start `/nonexistent`: No such file or directory\n".to_string(),
        ),
        (
            "spanline-no-such-command",
            127,
            "spanline: cannot start `spanline-no-such-command`: command not found (searched PATH)\n"
                .to_string(),
        ),
        (
            not_executable.as_str(),
            126,
            format!("spanline: cannot start `{not_executable}`: Permission denied\n"),
        ),
    ] {
        for json in [&[][..], &["--json"]] {
            let args: Vec<&str> = ["run"]
                .iter()
                .chain(json)
                .chain(&["--", command, "--flag"])
                .copied()
                .collect();
            let (got, stdout, stderr) = spanline(&args, &[]);
            assert_eq!(got, Some(code), "{args:?}: {stderr}");
            assert_eq!(stderr, said, "{args:?}");
            assert_eq!(stdout, "", "{args:?}");
        }
    }
    let _ = std::fs::remove_file(&not_executable);
}

#[test]
fn web_refuses_before_printing_any_url() {
    // Never the shared Redis: nothing connects, but nothing could.
    let redis = format!("redis://127.0.0.1:{}", spanline_testkit::free_port());
    let without = "refusing to serve the console on";
    let blank = "(the token given is empty or only spaces: that counts as none)";
    let runs: [(Run<'_>, &str); 6] = [
        ((vec!["--listen", "0.0.0.0:0"], vec![]), without),
        (
            (vec!["--listen", "0.0.0.0:0", "--token", ""], vec![]),
            blank,
        ),
        (
            (vec!["--listen", "0.0.0.0:0", "--token", " "], vec![]),
            blank,
        ),
        (
            (vec!["--listen", "[::]:0", "--token", " \t "], vec![]),
            blank,
        ),
        (
            (
                vec!["--listen", "0.0.0.0:0"],
                vec![("SPANLINE_WEB_TOKEN", "   ")],
            ),
            blank,
        ),
        (
            (
                vec!["--listen", "[::ffff:127.0.0.1]:0", "--token", " "],
                vec![],
            ),
            blank,
        ),
    ];
    for ((args, env), said) in runs {
        let args: Vec<&str> = ["web", "--redis", redis.as_str()]
            .into_iter()
            .chain(args)
            .collect();
        let (code, stdout, stderr) = spanline(&args, &env);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.starts_with("spanline: "), "{args:?}: {stderr}");
        assert!(
            stderr.contains(said) && stderr.contains("(not loopback) without a token"),
            "{args:?}: {stderr}"
        );
        assert!(
            !stdout.contains("http://") && !stderr.contains("http://"),
            "{args:?}: {stdout}{stderr}"
        );
    }
    // An address already taken: said before the banner too.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = taken.local_addr().unwrap().to_string();
    let (code, stdout, stderr) = spanline(&["web", "--redis", &redis, "--listen", &listen], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "spanline: cannot listen on {listen}: Address already in use"
        )),
        "{stderr}"
    );
    assert!(
        !stdout.contains("http://") && !stderr.contains("http://"),
        "{stderr}"
    );
}
