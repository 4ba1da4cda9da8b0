//! The console's hub under a team's load. This program runs itself again
//! as the console (a process of its own, so the memory and threads
//! measured are the console's alone), against a private redis-server:
//!
//! 1. 1,000 pages open on one job: the console's Redis connections, its
//!    threads and its memory, before and after;
//! 2. 100 pages of a job while it logs 2,000 lines a second for 10 s
//!    (streams);
//! 3. 2 pages of a job while it logs 50,000 lines a second for 4 s
//!    (pub/sub).
//!
//! Each page must receive every line, or gap marks that count exactly the
//! lines it did not receive; the program says which, page by page, and
//! fails otherwise.
//!
//! Run with: `cargo bench -p spanline-benches --bench console_hub`
//! (`SPANLINE_HUB_PAGES=100` for a quicker first scenario).

#![allow(clippy::expect_used, clippy::unwrap_used)] // a bench: a failed set-up should stop it loudly
#![allow(clippy::disallowed_macros)] // a bench reports on stdout

use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use spanline_core::ContextLayer;
use spanline_json::JsonLayer;
use spanline_redis::{Mode, Overflow, RedisLayer};
use spanline_testkit::RedisServer;
use spanline_web::{Console, Limits};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tracing_subscriber::prelude::*;

const SERVE: &str = "SPANLINE_HUB_SERVE";

fn main() {
    if let Ok(url) = std::env::var(SERVE) {
        return serve(&url);
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this too:
    // only a bench run does the work.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let redis = RedisServer::start();
    let port = spanline_testkit::free_port();
    let console = Console_::start(&redis, port);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let base = format!("127.0.0.1:{port}");
    let pages: usize = std::env::var("SPANLINE_HUB_PAGES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000);

    let at_start = console.usage();
    println!("the console at start: {at_start}");

    // 1. Many pages, one job.
    let (lines, counts) = runtime.block_on(scenario(
        &base,
        "idle",
        pages,
        {
            let url = redis.url();
            move || publish(url, Mode::Streams, "idle", 200, 2_000)
        },
        |_| {
            println!(
                "{pages} pages open on one job: {}; the console's Redis connections: {}",
                console.usage(),
                console_clients(&redis)
            );
            // The pages' reader closes when idle.
            std::thread::sleep(Duration::from_secs(6));
            println!(
                "6 s later: the console's Redis connections: {}",
                console_clients(&redis)
            );
        },
    ));
    report(
        &format!("{pages} pages, one job, 200 lines"),
        lines,
        &counts,
    );

    // 2. A team on a busy job.
    let (lines, counts) = runtime.block_on(scenario(
        &base,
        "team",
        100,
        {
            let url = redis.url();
            move || publish(url, Mode::Streams, "team", 20_000, 2_000)
        },
        |_| {},
    ));
    println!("after 100 pages at 2,000 lines/s: {}", console.usage());
    report(
        "100 pages, 2,000 lines/s for 10 s (streams)",
        lines,
        &counts,
    );

    // 3. A flood, on pub/sub: a Redis and a console of its own (with
    // `--source auto`, a console reads a feed's stream when the global
    // stream exists, and the scenarios above wrote one).
    drop(console);
    let redis = RedisServer::start();
    let port = spanline_testkit::free_port();
    let console = Console_::start(&redis, port);
    let base = format!("127.0.0.1:{port}");
    let (lines, counts) = runtime.block_on(scenario(
        &base,
        "fast",
        2,
        {
            let url = redis.url();
            move || publish(url, Mode::PubSub, "fast", 200_000, 50_000)
        },
        |_| {},
    ));
    println!("after 2 pages at 50,000 lines/s: {}", console.usage());
    report("2 pages, 50,000 lines/s for 4 s (pub/sub)", lines, &counts);
}

/// The console, served by this program run again.
struct Console_ {
    child: Child,
}

impl Console_ {
    fn start(redis: &RedisServer, port: u16) -> Self {
        let child = Command::new(std::env::current_exe().unwrap())
            .env(SERVE, redis.url())
            .env("SPANLINE_HUB_PORT", port.to_string())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the console did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Console_ { child }
    }

    /// Its threads and resident memory, from /proc.
    fn usage(&self) -> String {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_owned())
                .unwrap_or_default()
        };
        format!(
            "{} threads, {} resident (peak {})",
            field("Threads:"),
            field("VmRSS:"),
            field("VmHWM:")
        )
    }
}

impl Drop for Console_ {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// The console process: `spanline web` as its defaults set it, with room
/// for the pages of the first scenario and no rate limit (the figures are
/// the console's own).
fn serve(url: &str) {
    let port: u16 = std::env::var("SPANLINE_HUB_PORT").unwrap().parse().unwrap();
    let console = Console::builder(url)
        .limits(
            Limits::default()
                .viewers(5_000)
                .per_feed(5_000)
                .lines_per_second(0),
        )
        .build()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(console.serve(([127, 0, 0, 1], port).into()))
        .unwrap();
}

/// What one page received.
#[derive(Clone, Copy, Debug, Default)]
struct Count {
    lines: u64,
    /// Lines the gap marks said were not sent.
    told: u64,
    /// Gap marks without a count (a lost Redis connection, a trimmed stream).
    uncounted: u64,
}

/// Opens `pages` pages of `job`, waits until each is live, runs `while_open`
/// then `publish` (which returns the number of lines), and reads every page
/// to the job's end.
async fn scenario(
    base: &str,
    job: &str,
    pages: usize,
    publish: impl FnOnce() -> u64 + Send + 'static,
    while_open: impl FnOnce(()),
) -> (u64, Vec<Count>) {
    let live = Arc::new(tokio::sync::Semaphore::new(0));
    let mut tasks = Vec::new();
    for _ in 0..pages {
        let (base, job, live) = (base.to_owned(), job.to_owned(), live.clone());
        tasks.push(tokio::spawn(async move { page(&base, &job, &live).await }));
    }
    let ready = live
        .acquire_many(u32::try_from(pages).unwrap())
        .await
        .unwrap();
    ready.forget();
    while_open(());
    let lines = tokio::task::spawn_blocking(publish).await.unwrap();
    let mut counts = Vec::new();
    for task in tasks {
        counts.push(task.await.unwrap());
    }
    (lines, counts)
}

/// One page: reads its event stream until the job's end.
async fn page(base: &str, job: &str, live: &tokio::sync::Semaphore) -> Count {
    let mut stream = tokio::net::TcpStream::connect(base).await.unwrap();
    stream
        .write_all(format!("GET /jobs/{job}/events HTTP/1.1\r\nHost: {base}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut reader = BufReader::with_capacity(1 << 16, stream);
    let mut count = Count::default();
    let (mut kind, mut said_live) = (String::new(), false);
    let mut line = String::new();
    loop {
        line.clear();
        let read = tokio::time::timeout(Duration::from_secs(60), reader.read_line(&mut line)).await;
        match read {
            Ok(Ok(n)) if n > 0 => {}
            _ => panic!("a page of {job} stopped hearing: {count:?}"),
        }
        let text = line.trim_end();
        if let Some(k) = text.strip_prefix("event: ") {
            kind = k.to_owned();
        } else if let Some(data) = text.strip_prefix("data: ") {
            match kind.as_str() {
                "state" if !said_live && data.contains("live") => {
                    said_live = true;
                    live.add_permits(1);
                }
                "line" if data.contains(r#""end":true"#) => return count,
                "line" => count.lines += 1,
                "gap" => match data.split(' ').next().and_then(|n| n.parse::<u64>().ok()) {
                    Some(n) => count.told += n,
                    None => count.uncounted += 1,
                },
                _ => {}
            }
        }
    }
}

/// Publishes `n` lines in job `job` at `rate` lines a second, through the
/// Redis layer; returns `n` once every line is in Redis.
fn publish(url: String, mode: Mode, job: &str, n: u64, rate: u64) -> u64 {
    let json = JsonLayer::builder().with_writer(std::io::sink).build();
    let (layer, guard) = RedisLayer::builder(&url)
        .mode(mode)
        .overflow(Overflow::BlockForever)
        .schema(json.schema().clone())
        .build()
        .unwrap();
    let stats = layer.stats();
    let subscriber = tracing_subscriber::registry()
        .with(ContextLayer::new())
        .with(layer);
    let started = Instant::now();
    tracing::subscriber::with_default(subscriber, || {
        let _job = tracing::info_span!("job", job_id = job).entered();
        for i in 0..n {
            // On schedule: line i at i / rate seconds.
            let due = Duration::from_secs_f64(i as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                if wait > Duration::from_millis(1) {
                    std::thread::sleep(wait);
                }
            }
            tracing::info!(i, table = "users", latency_ms = 3.25, "row written");
        }
    });
    assert!(guard.flush(Duration::from_secs(60)).complete);
    assert_eq!(stats.published(), stats.emitted(), "{stats:?}");
    println!(
        "published {n} lines in {:.1} s ({:.0} lines/s)",
        started.elapsed().as_secs_f64(),
        n as f64 / started.elapsed().as_secs_f64()
    );
    n
}

fn console_clients(redis: &RedisServer) -> usize {
    let mut con = redis.client().get_connection().unwrap();
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut con).unwrap();
    list.lines().count() - 1
}

/// Prints what the pages received, and fails unless each received every
/// line or was told exactly how many it did not.
fn report(name: &str, lines: u64, counts: &[Count]) {
    let every = counts.iter().filter(|c| c.lines == lines).count();
    let exact = counts
        .iter()
        .filter(|c| c.lines < lines && c.lines + c.told == lines && c.uncounted == 0)
        .count();
    let shown: u64 = counts.iter().map(|c| c.lines).sum();
    println!(
        "{name}: {} pages; {every} received all {lines} lines, {exact} were told exactly what they missed; \
         {:.1}% of the lines shown",
        counts.len(),
        100.0 * shown as f64 / (lines as f64 * counts.len() as f64)
    );
    let wrong: Vec<&Count> = counts
        .iter()
        .filter(|c| c.lines + c.told != lines || c.uncounted > 0)
        .collect();
    assert!(
        wrong.is_empty(),
        "pages that lost lines silently: {wrong:?}"
    );
}
