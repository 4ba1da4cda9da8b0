//! The hub: one follower per feed whatever the number of pages, every line
//! to every page or a gap mark that counts what it missed, and limits.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use spanline_redis::Mode;
use spanline_testkit::RedisServer;
use spanline_web::{Console, Limits};

use tracing_subscriber::prelude::*;

use crate::{publish, serve};

/// One server-sent event.
#[derive(Debug)]
struct Sse {
    kind: String,
    data: String,
}

/// An event stream read as it comes.
struct Page {
    reader: BufReader<TcpStream>,
    status: u16,
}

impl Page {
    fn open(url: &str) -> Page {
        let rest = url.strip_prefix("http://").unwrap();
        let (host, path) = rest.split_at(rest.find('/').unwrap());
        let mut stream = TcpStream::connect(host).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
        let mut reader = BufReader::new(stream);
        let mut status_line = String::new();
        reader.read_line(&mut status_line).unwrap();
        let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).unwrap();
            if header == "\r\n" || header.is_empty() {
                break;
            }
        }
        Page { reader, status }
    }

    /// The next event (chunked framing and comments skipped); `None` when
    /// nothing comes for the read timeout.
    fn next(&mut self) -> Option<Sse> {
        let (mut kind, mut data) = (String::new(), String::new());
        loop {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if let Some(k) = line.strip_prefix("event: ") {
                kind = k.to_owned();
            } else if let Some(d) = line.strip_prefix("data: ") {
                data = d.to_owned();
            } else if line.is_empty() && !kind.is_empty() {
                return Some(Sse { kind, data });
            }
        }
    }

    /// Reads until `f` says stop, or nothing comes for the timeout.
    fn until(&mut self, mut f: impl FnMut(&Sse) -> bool) {
        while let Some(event) = self.next() {
            if f(&event) {
                return;
            }
        }
        panic!("the stream went quiet before the end");
    }
}

/// The `i` field of a line event.
fn index(event: &Sse) -> Option<u64> {
    let page: serde_json::Value = serde_json::from_str(&event.data).ok()?;
    let fields = page["fields"].as_array()?;
    fields
        .iter()
        .find(|kv| kv[0] == "i")
        .and_then(|kv| kv[1].as_u64())
}

/// The count a gap mark gives (`N lines not shown: ...`).
fn missed(event: &Sse) -> u64 {
    event
        .data
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a gap mark without a count: {}", event.data))
}

/// The console's connections to this Redis (every client but the one asking).
fn console_clients(redis: &RedisServer) -> usize {
    let mut con = redis.client().get_connection().unwrap();
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut con).unwrap();
    list.lines().count() - 1
}

#[test]
fn forty_pages_of_a_feed_share_one_follower_and_each_gets_every_line() {
    let redis = RedisServer::start();
    let served = serve(Console::builder(redis.url()));
    let url = format!("{}/jobs/shared/events", served.base);
    let mut pages: Vec<Page> = (0..40).map(|_| Page::open(&url)).collect();
    publish(&redis, Mode::Streams, Some("shared"), || {
        for i in 0..500u64 {
            tracing::info!(i, "line {i}");
        }
    });
    for (n, page) in pages.iter_mut().enumerate() {
        assert_eq!(page.status, 200);
        let mut seen = Vec::new();
        page.until(|event| {
            assert_ne!(event.kind, "gap", "page {n}: {}", event.data);
            if event.kind == "line" {
                match index(event) {
                    Some(i) => seen.push(i),
                    None => return event.data.contains(r#""end":true"#),
                }
            }
            false
        });
        assert_eq!(seen, (0..500).collect::<Vec<_>>(), "page {n}");
    }
    // While the forty pages are open: the feed's follower and one reader
    // for the pages' own reads, whatever the number of pages; the reader
    // closes when idle, leaving the follower's.
    let clients = console_clients(&redis);
    assert!(clients <= 2, "{clients} connections for 40 pages");
    let deadline = Instant::now() + Duration::from_secs(30);
    while console_clients(&redis) > 1 {
        assert!(Instant::now() < deadline, "the idle reader stays open");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Every page gone: the follower stops, and lets go of its connection.
    drop(pages);
    let deadline = Instant::now() + Duration::from_secs(30);
    while console_clients(&redis) > 0 {
        assert!(Instant::now() < deadline, "the follower outlived its pages");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Publishes `n` lines of `size` bytes or so (twice that as the page gets
/// them): far more than the sockets between the console and a page that
/// does not read can hold.
fn flood(redis: &RedisServer, mode: Mode, n: u64, size: usize) {
    let pad = "x".repeat(size);
    publish(redis, mode, Some("flood"), || {
        for i in 0..n {
            tracing::info!(i, pad, "line {i}");
        }
    });
}

#[test]
fn a_page_that_falls_behind_on_a_stream_reads_what_it_missed_from_the_stream() {
    let redis = RedisServer::start();
    let served = serve(
        Console::builder(redis.url()).limits(Limits::default().buffer(16).lines_per_second(0)),
    );
    let url = format!("{}/jobs/flood/events", served.base);
    let mut slow = Page::open(&url);
    // It reads nothing while 9,000 lines go by (a job's stream keeps 10,000).
    flood(&redis, Mode::Streams, 9_000, 3_000);
    let mut seen = Vec::new();
    slow.until(|event| {
        assert_ne!(event.kind, "gap", "nothing is missing: {}", event.data);
        if event.kind == "line" {
            match index(event) {
                Some(i) => seen.push(i),
                None => return event.data.contains(r#""end":true"#),
            }
        }
        false
    });
    assert_eq!(
        seen,
        (0..9_000).collect::<Vec<_>>(),
        "every line, once, in order"
    );
}

#[test]
fn a_page_that_falls_behind_on_pub_sub_is_told_exactly_how_many_lines_it_missed() {
    let redis = RedisServer::start();
    let served = serve(
        Console::builder(redis.url()).limits(Limits::default().buffer(16).lines_per_second(0)),
    );
    let url = format!("{}/jobs/flood/events", served.base);
    let mut slow = Page::open(&url);
    // Subscribed (pub/sub has no backlog: lines before this are not its).
    slow.until(|event| event.kind == "state" && event.data.contains("live"));
    // Lines of a kilobyte: the follower keeps up (Redis would drop a
    // subscriber that does not), the page does not.
    flood(&redis, Mode::PubSub, 30_000, 1_000);
    let (mut shown, mut told) = (0u64, 0u64);
    slow.until(|event| {
        match event.kind.as_str() {
            "gap" => told += missed(event),
            "line" if event.data.contains(r#""end":true"#) => return true,
            "line" => shown += 1,
            _ => {}
        }
        false
    });
    assert!(told > 0, "the page fell behind: {shown} shown");
    assert_eq!(shown + told, 30_000, "{shown} shown, {told} told missing");
}

#[test]
fn a_page_over_its_rate_is_told_how_many_lines_were_held_back() {
    let redis = RedisServer::start();
    let served =
        serve(Console::builder(redis.url()).limits(Limits::default().lines_per_second(100)));
    let url = format!("{}/jobs/fast/events", served.base);
    let mut page = Page::open(&url);
    page.until(|event| event.kind == "state" && event.data.contains("live"));
    publish(&redis, Mode::Streams, Some("fast"), || {
        for i in 0..2_000u64 {
            tracing::info!(i, "line {i}");
        }
    });
    let (mut shown, mut told) = (0u64, 0u64);
    // The last word is the count of what the rate held back, said within
    // a second when no line follows to carry it.
    while shown + told < 2_001 {
        let event = page.next().expect("lines or a count of them");
        match event.kind.as_str() {
            "gap" => {
                assert!(
                    event.data.contains("100 lines per second"),
                    "{}",
                    event.data
                );
                told += missed(&event);
            }
            "line" => shown += 1,
            _ => {}
        }
    }
    assert!(told > 0 && shown > 0, "{shown} shown, {told} held back");
    assert_eq!(
        shown + told,
        2_001,
        "every line shown or counted, the end too"
    );
}

#[test]
fn beyond_the_limits_a_page_is_refused_with_the_reason() {
    let redis = RedisServer::start();
    let served =
        serve(Console::builder(redis.url()).limits(Limits::default().viewers(2).per_feed(1)));
    let job = |id: &str| format!("{}/jobs/{id}/events", served.base);
    let first = Page::open(&job("a"));
    assert_eq!(first.status, 200);
    let refused = crate::get(&job("a"), &[], |got| got.contains("try again"));
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(refused.contains("retry-after: 10"), "{refused}");
    assert!(refused.contains("Limits::per_feed"), "{refused}");
    let second = Page::open(&job("b"));
    assert_eq!(second.status, 200);
    let refused = crate::get(&job("c"), &[], |got| got.contains("try again"));
    assert!(refused.contains("at most 2 pages"), "{refused}");
    // A page that leaves gives its place back.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let page = Page::open(&job("a"));
        if page.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the place was never given back");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn a_page_that_leaves_a_busy_feed_gives_its_place_back_even_when_its_search_sends_nothing() {
    let redis = RedisServer::start();
    let served = serve(Console::builder(redis.url()).limits(Limits::default().per_feed(1)));
    let url = format!("{}/jobs/busy/events", served.base);
    // The stream exists: the follower has nothing new to say once the page
    // is open, so only a line could tell the page it is gone.
    publish(&redis, Mode::Streams, Some("busy"), || {
        tracing::info!("first")
    });
    let mut page = Page::open(&format!("{url}?q=nothing_matches_this"));
    page.until(|event| event.kind == "state" && event.data.contains("streams"));
    // The job logs all along, every line filtered out for that page.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let logging = {
        let (stop, redis_url) = (stop.clone(), redis.url());
        std::thread::spawn(move || {
            let json = spanline_json::JsonLayer::builder()
                .with_writer(std::io::sink)
                .build();
            let (layer, guard) = spanline_redis::RedisLayer::builder(&redis_url)
                .mode(Mode::Streams)
                .schema(json.schema().clone())
                .build()
                .unwrap();
            let subscriber = tracing_subscriber::registry()
                .with(spanline_core::ContextLayer::new())
                .with(layer);
            tracing::subscriber::with_default(subscriber, || {
                let _job = tracing::info_span!("job", job_id = "busy").entered();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    tracing::info!("busy");
                    std::thread::sleep(Duration::from_millis(5));
                }
            });
            guard.flush(Duration::from_secs(5));
        })
    };
    assert_eq!(
        Page::open(&url).status,
        503,
        "the feed's one place is taken"
    );
    drop(page);
    let deadline = Instant::now() + Duration::from_secs(30);
    while Page::open(&url).status != 200 {
        assert!(Instant::now() < deadline, "the place was never given back");
        std::thread::sleep(Duration::from_millis(500));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    logging.join().unwrap();
}
