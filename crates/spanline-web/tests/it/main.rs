//! spanline-web's tests: the console over real HTTP and in a real headless
//! Chromium, against real redis-servers, with lines published by the real
//! Redis layer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

/// The pages in Chromium: backlog, live lines, restarts, filters, floods.
mod browser;
/// On a Redis Cluster: sharded channels, the global feed's shards.
mod cluster;
/// The HTTP surface: tokens, headers, errors, secrets.
mod http;
/// One follower per feed for any number of pages; gaps counted; limits.
mod hub;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use spanline_core::ContextLayer;
use spanline_json::JsonLayer;
use spanline_redis::{Mode, Overflow, RedisLayer};
use spanline_testkit::RedisServer;
use spanline_web::{Console, ConsoleBuilder};
use tracing_subscriber::prelude::*;

/// A console served on a free loopback port, nested at `/logs` as an app
/// embeds it.
pub(crate) struct Served {
    pub(crate) base: String,
    _runtime: tokio::runtime::Runtime,
}

pub(crate) fn serve(builder: ConsoleBuilder) -> Served {
    let console: Console = builder.build().expect("valid options");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let app = axum::Router::new()
        .route("/", axum::routing::get(|| async { "the app" }))
        .nest("/logs", console.router());
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    runtime.spawn(async move { axum::serve(listener, app).await });
    Served {
        base: format!("http://127.0.0.1:{port}/logs"),
        _runtime: runtime,
    }
}

/// Publishes through the Redis layer: `f` logs, inside a span with
/// `job_id` when given; returns when every line is in Redis.
pub(crate) fn publish(redis: &RedisServer, mode: Mode, job: Option<&str>, f: impl FnOnce()) {
    let json = JsonLayer::builder().with_writer(std::io::sink).build();
    let (layer, guard) = RedisLayer::builder(&redis.url())
        .mode(mode)
        .overflow(Overflow::BlockForever)
        .schema(json.schema().clone())
        .build()
        .unwrap();
    let stats = layer.stats();
    let subscriber = tracing_subscriber::registry()
        .with(ContextLayer::new())
        .with(layer);
    tracing::subscriber::with_default(subscriber, || match job {
        Some(job_id) => tracing::info_span!("job", job_id).in_scope(f),
        None => f(),
    });
    assert!(guard.flush(Duration::from_secs(10)).complete);
    assert_eq!(stats.published(), stats.emitted(), "{stats:?}");
}

/// A response read whole (or until `done` says the body has what the test
/// needs, for an event stream).
pub(crate) fn get(url: &str, headers: &[(&str, &str)], done: impl Fn(&str) -> bool) -> String {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut stream = TcpStream::connect(host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        request += &format!("{k}: {v}\r\n");
    }
    request += "\r\n";
    stream.write_all(request.as_bytes()).unwrap();
    let mut got = Vec::new();
    let started = Instant::now();
    let mut buf = [0u8; 8192];
    while started.elapsed() < Duration::from_secs(15) {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
        if done(&String::from_utf8_lossy(&got)) {
            break;
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// A console served alone (as `spanline web`), on a free loopback port.
pub(crate) fn serve_alone(console: Console) -> (String, tokio::runtime::Runtime) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let port = spanline_testkit::free_port();
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    runtime.spawn(async move { console.serve(addr).await });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the console did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    (format!("http://{addr}"), runtime)
}
