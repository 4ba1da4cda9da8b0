//! Misconfigurations, each against a real redis-server: said once on
//! stderr at start, in words an operator can act on (never the password),
//! with what becomes of the lines; and the lines counted as failed at once,
//! not queued nor retried for ever.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report
#![allow(clippy::disallowed_macros)] // the measured figures, shown with --nocapture

use serde_json::Value;
use spanline_testkit::RedisServer;

use crate::child::Child;

/// 20 lines through a child's layer built from `env`, flushed: the
/// counters (the flush timed) and the child's stderr.
fn misconfigured(env: &[(&str, &str)]) -> (Value, String) {
    let mut child = Child::start("misconfig", env);
    let r = child.result();
    let stderr = child.finish();
    (r, stderr)
}

/// Every line failed, at once: no line published, queued or dropped.
#[track_caller]
fn all_failed(r: &Value, stderr: &str) {
    assert_eq!(r["failed"], 20, "{r}\n{stderr}");
    assert_eq!(r["published"], 0, "{r}");
    assert_eq!(r["dropped"], 0, "{r}");
    assert_eq!(r["in_flight"], 0, "{r}");
    let took = r["took_ms"].as_f64().unwrap();
    assert!(
        took < 3_000.0,
        "counted failed at once, not queued: {took} ms"
    );
    assert!(
        stderr.contains(
            "at exit, 20 of 20 log lines were not published to Redis: 0 dropped, 20 failed"
        ),
        "{stderr}"
    );
}

/// `phrase` said exactly once, and never a misleading "cannot reach".
#[track_caller]
fn said_once(stderr: &str, phrase: &str) {
    assert_eq!(
        stderr.matches(phrase).count(),
        1,
        "{phrase:?} once: {stderr}"
    );
    assert!(!stderr.contains("cannot reach"), "{stderr}");
    assert!(!stderr.contains("published when it answers"), "{stderr}");
    assert!(stderr.contains("counted as failed"), "{stderr}");
}

#[test]
fn a_refused_login_says_login_refused_and_its_lines_fail() {
    let server =
        RedisServer::start_with(&["--user", "logger", "on", ">s3cret-PW", "~*", "&*", "+@all"]);
    let port = server.port();
    let mut cases = vec![
        (
            "an ACL user's wrong password",
            format!("redis://logger:wrong-PW-1@127.0.0.1:{port}"),
        ),
        (
            "an unknown ACL user",
            format!("redis://ghost:ghost-PW-2@127.0.0.1:{port}"),
        ),
    ];
    let mut con = server.client().get_connection().unwrap();
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("hunter2-PW")
        .exec(&mut con)
        .unwrap();
    cases.push((
        "no password, requirepass set",
        format!("redis://127.0.0.1:{port}"),
    ));
    cases.push((
        "a wrong password, requirepass set",
        format!("redis://:wrong-PW-3@127.0.0.1:{port}"),
    ));
    for (case, url) in cases {
        let (r, stderr) = misconfigured(&[("URL", &url)]);
        println!("{case}: {r}\n{stderr}");
        said_once(&stderr, "login refused by Redis at 127.0.0.1:");
        all_failed(&r, &stderr);
        assert!(!stderr.contains("PW"), "{case}: a password shown: {stderr}");
    }
}

#[test]
fn a_database_out_of_range_is_said_once_and_its_lines_fail() {
    let server = RedisServer::start();
    let url = format!("redis://127.0.0.1:{}/99", server.port());
    let (r, stderr) = misconfigured(&[("URL", &url)]);
    println!("{r}\n{stderr}");
    said_once(&stderr, "has no database 99 (DB index is out of range)");
    all_failed(&r, &stderr);
}

#[cfg(feature = "cluster")]
#[test]
fn the_cluster_mode_on_a_plain_redis_says_it_is_not_a_cluster() {
    let server = RedisServer::start();
    let (r, stderr) = misconfigured(&[("NODES", &server.url())]);
    println!("{r}\n{stderr}");
    said_once(
        &stderr,
        "is not a cluster (ERR This instance has cluster support disabled): use a plain URL",
    );
    assert!(stderr.contains("unset SPANLINE_REDIS_CLUSTER"), "{stderr}");
    all_failed(&r, &stderr);
}

#[cfg(feature = "cluster")]
#[test]
fn a_plain_url_on_a_cluster_node_says_to_use_the_cluster_mode() {
    let cluster = spanline_testkit::RedisCluster::start(3);
    // A node that does not hold the global stream: every line's XADD moves.
    let owner = format!(":{}", cluster.node_for("logs:global").port());
    let url = cluster
        .urls()
        .into_iter()
        .find(|u| !u.ends_with(&owner))
        .unwrap();
    let (r, stderr) = misconfigured(&[("URL", &url), ("MODE", "streams")]);
    println!("{r}\n{stderr}");
    said_once(&stderr, "this server is part of a Redis Cluster");
    assert!(stderr.contains("MOVED"), "{stderr}");
    assert!(stderr.contains("use the cluster mode"), "{stderr}");
    all_failed(&r, &stderr);
}
