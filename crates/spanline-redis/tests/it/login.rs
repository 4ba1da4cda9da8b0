//! The worker's own connection to a single server (TCP or a Unix socket,
//! without TLS): it logs in as the URL says, selects the URL's database,
//! and publishes. Each against a real redis-server.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::time::Duration;

use spanline_redis::{Mode, RedisLayer};
use spanline_testkit::{RedisServer, Subscription};
use tracing::info;

use crate::publish::Setup;

/// Three lines logged through a layer on `url` in `mode`, flushed: every
/// one published. The layer, still connected.
fn publish_three(url: &str, mode: Mode) -> Setup {
    let setup = Setup::new(
        RedisLayer::builder(url)
            .mode(mode)
            .timeouts(Duration::from_secs(2), Duration::from_secs(2)),
    );
    setup.run(|| {
        for i in 0..3 {
            info!(i, "through our own connection");
        }
    });
    setup.flush(10);
    assert_eq!(setup.stats.published(), 3, "{:?}", setup.stats);
    assert_eq!(setup.stats.failed(), 0, "{:?}", setup.stats);
    setup.assert_accounted();
    setup
}

/// A stream's length in database `db` of the server at `url`.
fn xlen(url: &str, db: i64, key: &str) -> i64 {
    let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
    redis::cmd("SELECT").arg(db).exec(&mut con).unwrap();
    redis::cmd("XLEN").arg(key).query(&mut con).unwrap()
}

#[test]
fn a_password_and_a_database_in_the_url_are_used() {
    let server = RedisServer::start();
    let mut con = server.client().get_connection().unwrap();
    redis::cmd("CONFIG")
        .arg(&["SET", "requirepass", "s3cret"])
        .exec(&mut con)
        .unwrap();
    let url = format!("redis://:s3cret@127.0.0.1:{}/3", server.port());
    drop(publish_three(&url, Mode::Streams));
    let admin = format!("redis://:s3cret@127.0.0.1:{}", server.port());
    assert_eq!(xlen(&admin, 3, "logs:global"), 3, "in the URL's database");
    assert_eq!(xlen(&admin, 0, "logs:global"), 0, "and not in database 0");
}

#[test]
fn an_acl_user_logs_in_with_its_name_and_password() {
    let server = RedisServer::start();
    let mut con = server.client().get_connection().unwrap();
    redis::cmd("ACL")
        .arg(&["SETUSER", "logger", "on", ">pw", "~*", "&*", "+@all"])
        .exec(&mut con)
        .unwrap();
    let sub = Subscription::new(&server.url(), &["logs:global"]);
    sub.wait_subscribed(1);
    let url = format!("redis://logger:pw@127.0.0.1:{}", server.port());
    let _connected = publish_three(&url, Mode::PubSub);
    assert_eq!(sub.wait_for(3, Duration::from_secs(5)).len(), 3);
    // The connection says whose it is, and what it is, in `CLIENT LIST`.
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut con).unwrap();
    let ours = list
        .lines()
        .find(|l| l.contains("user=logger"))
        .unwrap_or_else(|| panic!("no connection of the user: {list}"));
    // Servers from 7.2 keep a client library's name.
    if ours.contains("lib-name=") {
        assert!(ours.contains("lib-name=spanline-redis"), "{ours}");
    }
    assert_eq!(
        xlen(&server.url(), 0, "logs:global"),
        0,
        "pub/sub: no stream"
    );
}

#[cfg(unix)]
#[test]
fn a_unix_socket_url_publishes() {
    let dir = std::env::temp_dir().join(format!("spanline-login-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("redis.sock");
    let server = RedisServer::start_with(&[
        "--unixsocket",
        socket.to_str().unwrap(),
        "--unixsocketperm",
        "700",
    ]);
    let url = format!("redis+unix://{}?db=2", socket.display());
    drop(publish_three(&url, Mode::Streams));
    assert_eq!(xlen(&server.url(), 2, "logs:global"), 3);
    let _ = std::fs::remove_dir_all(&dir);
}
