//! The live console's server side and page, against a private redis-server:
//! - `console_relay`: lines per second one console relays from a job's
//!   stream to a connected event stream (the target: at least 50,000/s, so
//!   a page never falls behind a job logging that fast);
//! - and, printed first: the page's JavaScript heap in headless Chromium
//!   after 1,000,000 lines have streamed through it (bounded: the page
//!   keeps the last 5,000 rows), set by `SPANLINE_BENCH_PAGE_LINES`
//!   (`SPANLINE_BENCH_PAGE_SEARCH=zzz` filters every row out: the cost of
//!   receiving and reading the lines alone).
//!
//! Run with: `cargo bench -p spanline-benches --bench console`

#![allow(clippy::expect_used, clippy::unwrap_used)] // a bench: a failed set-up should stop it loudly

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use spanline_testkit::{Browser, RedisServer};
use spanline_web::{Console, Source};

/// Serves a console for `server` on a free port; returns its base URL.
fn serve(server: &RedisServer, runtime: &tokio::runtime::Runtime) -> String {
    let console = Console::builder(server.url())
        .source(Source::Streams)
        .build()
        .expect("valid options");
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = console.router();
    runtime.spawn(async move { axum::serve(listener, app).await });
    format!("127.0.0.1:{port}")
}

/// Appends `n` lines to `key`, numbered from `from`, in pipelines.
fn fill(server: &RedisServer, key: &str, from: u64, n: u64) {
    let mut con = server.client().get_connection().unwrap();
    let mut i = from;
    while i < from + n {
        let mut pipe = redis::pipe();
        for j in i..(i + 1000).min(from + n) {
            let line = format!(
                r#"{{"timestamp":"2026-12-02T12:00:00.123456Z","level":"INFO","message":"row written","target":"bench","job_id":"bench_1","table":"users","row":{j},"latency_ms":3.25}}"#
            );
            pipe.cmd("XADD")
                .arg(key)
                .arg("*")
                .arg("line")
                .arg(line)
                .ignore();
        }
        pipe.exec(&mut con).unwrap();
        i += 1000;
    }
}

/// Opens the job's event stream resuming after `after` and reads until
/// `n` lines have come.
fn relay(addr: &str, after: &str, n: u64) -> Duration {
    let mut stream = TcpStream::connect(addr).unwrap();
    let start = Instant::now();
    write!(
        stream,
        "GET /jobs/bench_1/events HTTP/1.1\r\nHost: {addr}\r\nLast-Event-ID: {after}\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::with_capacity(1 << 16, stream);
    let mut seen = 0;
    let mut line = String::new();
    while seen < n {
        line.clear();
        if reader.read_line(&mut line).unwrap() == 0 {
            panic!("the stream ended after {seen} lines");
        }
        if line == "event: line\n" {
            seen += 1;
        }
    }
    start.elapsed()
}

fn page_memory(server: &RedisServer, addr: &str) {
    let lines: u64 = std::env::var("SPANLINE_BENCH_PAGE_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let mut browser = Browser::start();
    browser.open(&format!("http://{addr}/jobs/page_1"));
    browser.wait_for(
        "document.getElementById('state').textContent === 'live (streams)'",
        Duration::from_secs(20),
    );
    // With a search that matches nothing, no row is built: the cost of
    // receiving and reading lines alone.
    if let Ok(query) = std::env::var("SPANLINE_BENCH_PAGE_SEARCH") {
        browser.eval(&format!(
            "(() => {{ const e = document.getElementById('search'); e.value = {query:?}; \
             e.dispatchEvent(new Event('input')); }})()"
        ));
    }
    if std::env::var_os("SPANLINE_BENCH_PAGE_NOFOLLOW").is_some() {
        browser.eval("document.getElementById('follow').checked = false");
    }
    let before = browser.heap_used();
    let start = Instant::now();
    fill(server, "logs:page_1", 0, lines);
    let expect = format!(
        "document.getElementById('counts').textContent.startsWith('{} lines')",
        group_thousands(lines)
    );
    browser.wait_for(&expect, Duration::from_secs(3600));
    let took = start.elapsed();
    let after = browser.heap_used();
    let rows = browser.eval("document.querySelectorAll('#lines .row').length");
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "page after {lines} lines: JS heap {:.1} MB (at start {:.1} MB), {rows} rows; \
         {:.0} lines/s through Redis, the console and the page",
        after as f64 / 1e6,
        before as f64 / 1e6,
        lines as f64 / took.as_secs_f64()
    );
}

/// `1000000` as `1,000,000`, as the page's counter shows it.
fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn all(c: &mut Criterion) {
    let server = RedisServer::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let addr = serve(&server, &runtime);
    page_memory(&server, &addr);

    let mut group = c.benchmark_group("console_relay");
    group.throughput(Throughput::Elements(1));
    let mut filled = 0;
    group.bench_function("job_stream_to_event_stream", |b| {
        b.iter_custom(|iters| {
            // The stream holds the lines (untimed); the console relays them
            // from the start, as fast as it can.
            let mut con = server.client().get_connection().unwrap();
            let _: () = redis::cmd("DEL")
                .arg("logs:bench_1")
                .query(&mut con)
                .unwrap();
            fill(&server, "logs:bench_1", filled, iters);
            filled += iters;
            relay(&addr, "0-0", iters)
        });
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5))
        .sample_size(10)
}

criterion_group! { name = benches; config = config(); targets = all }
criterion_main!(benches);
