//! The Redis layer against real `redis-server`s (one per test, on a free
//! loopback port), checked with a real subscriber.
//!
//! One file: every test shares the server and subscriber helpers, and each
//! fault (kill, freeze, restart, loading) is one test.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::time::{Duration, Instant};

use spanline_core::ContextLayer;
use spanline_json::JsonLayer;
use spanline_redis::{Mode, Overflow, RedisGuard, RedisLayer, RedisLayerBuilder, RedisStats};
use spanline_testkit::{free_port, Capture, RedisServer, Subscription};
use tracing::{info, info_span};
use tracing_subscriber::prelude::*;

/// A registry with spanline's context, a JSON layer into `capture` and the
/// Redis layer on the same schema (the cluster tests use it too).
pub(crate) struct Setup {
    dispatch: tracing::Dispatch,
    pub(crate) stats: RedisStats,
    pub(crate) guard: Option<RedisGuard>,
    pub(crate) capture: Capture,
}

impl Setup {
    pub(crate) fn new(builder: RedisLayerBuilder) -> Self {
        let capture = Capture::new();
        let json = JsonLayer::builder().with_writer(capture.clone()).build();
        let (redis, guard) = builder.schema(json.schema().clone()).build().unwrap();
        let stats = redis.stats();
        let dispatch = tracing::Dispatch::new(
            tracing_subscriber::registry()
                .with(ContextLayer::new())
                .with(json)
                .with(redis),
        );
        Self {
            dispatch,
            stats,
            guard: Some(guard),
            capture,
        }
    }

    pub(crate) fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        tracing::dispatcher::with_default(&self.dispatch, f)
    }

    pub(crate) fn flush(&self, secs: u64) -> spanline_redis::FlushOutcome {
        self.guard
            .as_ref()
            .unwrap()
            .flush(Duration::from_secs(secs))
    }

    #[track_caller]
    pub(crate) fn assert_accounted(&self) {
        let s = &self.stats;
        assert_eq!(s.in_flight(), 0, "nothing left in flight: {s:?}");
        assert_eq!(
            s.emitted(),
            s.published() + s.dropped() + s.failed(),
            "emitted == published + dropped + failed: {s:?}"
        );
    }
}

fn quick(url: &str) -> RedisLayerBuilder {
    RedisLayer::builder(url)
        .timeouts(Duration::from_millis(300), Duration::from_millis(300))
        .max_backoff(Duration::from_millis(200))
}

#[test]
fn job_lines_reach_their_channel_and_global_byte_identical_and_in_order() {
    let server = RedisServer::start();
    let job = spanline_context::JobId::new("build");
    let job_channel = format!("logs:{job}");
    let sub = Subscription::new(&server.url(), &["logs:global", &job_channel]);
    let setup = Setup::new(quick(&server.url()));
    setup.run(|| {
        info!(n = 0, "before the job");
        let _job = info_span!("job", job_id = %job).entered();
        for n in 1..=3 {
            info!(n, "in the job");
        }
        drop(_job);
        info!(n = 4, "after the job");
    });
    assert!(setup.flush(5).complete);
    let messages = sub.wait_for(10, Duration::from_secs(5));
    let written: Vec<String> = setup.capture.lines();
    let job_lines = sub.payloads(&job_channel);
    assert_eq!(
        job_lines[..3],
        written[1..4],
        "job channel: the job's lines only"
    );
    // Then the job's end, when its span closed: on the job's channel and
    // the global feed, between the job's lines and the next.
    assert_eq!(job_lines.len(), 4, "{job_lines:?}");
    let mut global = written.clone();
    global.insert(4, job_lines[3].clone());
    assert_eq!(
        sub.payloads("logs:global"),
        global,
        "global: every line, in order, the JSON layer's bytes, and the job's end"
    );
    let end: serde_json::Value = serde_json::from_str(&job_lines[3]).unwrap();
    assert_eq!(end["message"], "job ended");
    assert_eq!(end["target"], "spanline::job");
    assert_eq!(end["job_end"], true);
    assert_eq!(end["job_id"], job.as_str());
    assert_eq!(messages.len(), 10);
    setup.assert_accounted();
    assert_eq!(setup.stats.published(), 6);
}

#[test]
fn json_values_are_published_as_json_on_the_job_channel() {
    let server = RedisServer::start();
    let job = spanline_context::JobId::new("report");
    let job_channel = format!("logs:{job}");
    let sub = Subscription::new(&server.url(), &[&job_channel]);
    let setup = Setup::new(quick(&server.url()));
    let rows = serde_json::json!([{"id": 1, "total": 9.5}, {"id": 2, "total": null}]);
    setup.run(|| {
        let _job =
            info_span!("job", job_id = %job, filters = spanline_core::json(["paid"])).entered();
        info!(rows = spanline_core::json(&rows), "report rows");
    });
    assert!(setup.flush(5).complete);
    sub.wait_for(2, Duration::from_secs(5));
    let line: serde_json::Value = serde_json::from_str(&sub.payloads(&job_channel)[0]).unwrap();
    assert_eq!(line["rows"], rows, "{line}");
    assert_eq!(line["filters"], serde_json::json!(["paid"]), "{line}");
    setup.assert_accounted();
}

#[test]
fn a_job_ends_once_when_its_root_span_closes_whatever_spans_it_has_inside() {
    let server = RedisServer::start();
    let job = spanline_context::JobId::new("nested");
    let job_channel = format!("logs:{job}");
    let sub = Subscription::new(&server.url(), &[&job_channel]);
    let setup = Setup::new(quick(&server.url()));
    setup.run(|| {
        let root = info_span!("job", job_id = %job);
        root.in_scope(|| {
            // Inner spans, one repeating the same job_id: not the root.
            info_span!("step", n = 1).in_scope(|| info!("one"));
            info_span!("again", job_id = %job).in_scope(|| info!("two"));
        });
        // A clone of the root's handle: the job ends when the last closes.
        let handle = root.clone();
        drop(root);
        handle.in_scope(|| info!("three"));
    });
    assert!(setup.flush(5).complete);
    sub.wait_for(4, Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(200));
    let lines: Vec<String> = sub.payloads(&job_channel);
    assert_eq!(lines.len(), 4, "{lines:?}");
    let ends = lines
        .iter()
        .filter(|l| l.contains(r#""job_end":true"#))
        .count();
    assert_eq!(ends, 1, "{lines:?}");
    assert!(
        lines.last().unwrap().contains(r#""job_end":true"#),
        "{lines:?}"
    );
    setup.assert_accounted();
}

/// The job's end lines on its channel, and every message there.
fn job_channel_messages(sub: &Subscription, channel: &str) -> (usize, Vec<String>) {
    let lines = sub.payloads(channel);
    let messages = lines
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["message"].as_str().unwrap_or_default().to_string()
        })
        .collect::<Vec<_>>();
    let ends = messages.iter().filter(|m| *m == "job ended").count();
    (ends, messages)
}

/// The request that enqueues a job carries its id, and hands it on with a
/// snapshot: the job ends once, when the worker that restored it is done,
/// not when the request closes. Failed before: "job ended" came right after
/// "job enqueued", and again at the real end.
#[test]
fn a_job_handed_to_a_worker_ends_once_at_the_workers_end() {
    let server = RedisServer::start();
    let job = spanline_context::JobId::new("report");
    let job_channel = format!("logs:{job}");
    let sub = Subscription::new(&server.url(), &[&job_channel]);
    let setup = Setup::new(quick(&server.url()));
    setup.run(|| {
        let payload = {
            let _request = info_span!("request", request_id = "r-1", job_id = %job).entered();
            info!("job enqueued");
            serde_json::to_string(&spanline_context::ContextSnapshot::capture()).unwrap()
        };
        let snapshot: spanline_context::ContextSnapshot = serde_json::from_str(&payload).unwrap();
        let worker = spanline_context::capture().wrap(move || {
            let _job = snapshot.restore("build_report").entered();
            info!("working");
            info!("report ready");
        });
        std::thread::spawn(worker).join().unwrap();
    });
    assert!(setup.flush(5).complete);
    sub.wait_for(4, Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(200));
    let (ends, messages) = job_channel_messages(&sub, &job_channel);
    assert_eq!(ends, 1, "{messages:?}");
    assert_eq!(
        messages,
        ["job enqueued", "working", "report ready", "job ended"]
    );
    setup.assert_accounted();
}

/// A Redis layer behind a per-layer WARN filter sees none of the job's
/// INFO spans, and still publishes the job's end (the context layer tells
/// it). Failed before: no "job ended" at all.
#[test]
fn a_redis_layer_behind_a_warn_filter_still_publishes_the_jobs_end() {
    let server = RedisServer::start();
    let job = spanline_context::JobId::new("quiet");
    let job_channel = format!("logs:{job}");
    let sub = Subscription::new(&server.url(), &[&job_channel, "logs:global"]);
    let (redis, guard) = quick(&server.url()).build().unwrap();
    let stats = redis.stats();
    let dispatch = tracing::Dispatch::new(
        tracing_subscriber::registry()
            .with(ContextLayer::new())
            .with(redis.with_filter(tracing_subscriber::filter::LevelFilter::WARN)),
    );
    tracing::dispatcher::with_default(&dispatch, || {
        let _job = info_span!("job", job_id = %job).entered();
        info!("hidden from redis");
        tracing::warn!("a warning in the job");
    });
    assert!(guard.flush(Duration::from_secs(5)).complete);
    sub.wait_for(4, Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(200));
    let (ends, messages) = job_channel_messages(&sub, &job_channel);
    assert_eq!(messages, ["a warning in the job", "job ended"]);
    assert_eq!(ends, 1);
    let (global_ends, _) = job_channel_messages(&sub, "logs:global");
    assert_eq!(global_ends, 1, "the end is on the global feed too");
    assert_eq!(stats.dropped(), 0);
}

#[test]
fn hostile_job_ids_never_make_a_channel_outside_the_rule() {
    let server = RedisServer::start();
    let sub = Subscription::new(&server.url(), &["*"]);
    let setup = Setup::new(quick(&server.url()));
    let long = "x".repeat(200);
    let hostile = [
        "*",
        "{x}",
        "a\nb",
        long.as_str(),
        "global",
        "logs:*",
        "",
        "a b",
    ];
    setup.run(|| {
        for id in hostile {
            let _job = info_span!("job", job_id = id).entered();
            info!("hostile");
        }
        let _num = info_span!("job", job_id = 42).entered();
        info!("numeric id is valid");
    });
    assert!(setup.flush(5).complete);
    let messages = sub.wait_for(hostile.len() + 2, Duration::from_secs(5));
    let channels: std::collections::BTreeSet<&str> =
        messages.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(channels, ["logs:42", "logs:global"].into_iter().collect());
    assert_eq!(setup.stats.invalid_job_ids(), hostile.len() as u64);
    assert_eq!(
        sub.payloads("logs:global").len(),
        hostile.len() + 2,
        "invalid ids still reach the global channel (and job 42's end)"
    );
    setup.assert_accounted();
}

#[test]
fn redis_down_at_start_does_not_block_and_lines_flow_once_up() {
    let port = free_port();
    let setup = Setup::new(quick(&format!("redis://127.0.0.1:{port}")));
    setup.run(|| {
        for n in 0..100 {
            info!(n, "while down");
        }
    });
    assert_eq!(setup.stats.emitted(), 100);
    let outcome = setup.flush(0);
    assert!(!outcome.complete);

    let server = RedisServer::start_on(port, &[]);
    let sub = Subscription::new(&server.url(), &["logs:global"]);
    assert!(
        setup.flush(10).complete,
        "the worker reconnects: {:?}",
        setup.stats
    );
    setup.run(|| {
        for n in 0..10 {
            info!(n, "once up");
        }
    });
    assert!(setup.flush(5).complete);
    let deadline = Instant::now() + Duration::from_secs(5);
    while sub
        .payloads("logs:global")
        .iter()
        .filter(|p| p.contains("once up"))
        .count()
        < 10
    {
        assert!(
            Instant::now() < deadline,
            "the lines logged once Redis was up did not all arrive"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(setup.stats.reconnects() > 0);
    setup.assert_accounted();
    assert_eq!(
        setup.stats.published(),
        110,
        "the queue rode out the outage: {:?}",
        setup.stats
    );
}

#[test]
fn killed_and_restarted_mid_stream_accounts_for_every_event() {
    let mut server = RedisServer::start();
    let sub = Subscription::new(&server.url(), &["logs:global"]);
    let setup = Setup::new(quick(&server.url()));
    setup.run(|| {
        for n in 0..25_000 {
            info!(n, phase = 1, "before the restart");
        }
    });
    server.stop();
    setup.run(|| {
        for n in 25_000..50_000 {
            info!(n, phase = 1, "while down");
        }
    });
    server.restart();
    sub.wait_subscribed(2);
    assert!(setup.flush(20).complete, "{:?}", setup.stats);
    let published_before = setup.stats.published();
    setup.run(|| {
        for n in 50_000..100_000 {
            info!(n, phase = 2, "after the restart");
        }
    });
    assert!(setup.flush(20).complete, "{:?}", setup.stats);
    setup.assert_accounted();
    assert_eq!(setup.stats.emitted(), 100_000);
    let published_after = setup.stats.published() - published_before;
    assert!(published_after > 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    let phase2 = loop {
        let n = sub
            .payloads("logs:global")
            .iter()
            .filter(|p| p.contains("\"phase\":2"))
            .count() as u64;
        if n >= published_after || Instant::now() > deadline {
            break n;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        phase2, published_after,
        "every line published after the restart arrived"
    );
}

#[test]
fn a_frozen_server_blocks_nobody_and_the_worker_recovers() {
    let server = RedisServer::start();
    let sub = Subscription::new(&server.url(), &["logs:global"]);
    let setup = Setup::new(quick(&server.url()));
    setup.run(|| info!("warm up"));
    assert!(setup.flush(5).complete);
    server.freeze();
    setup.run(|| {
        for n in 0..20_000 {
            info!(n, "while frozen");
        }
    });
    assert_eq!(
        setup.stats.emitted(),
        20_001,
        "every call returned while the server was frozen"
    );
    server.thaw();
    // The queue filled up while frozen: let the worker drain it first.
    assert!(setup.flush(15).complete, "{:?}", setup.stats);
    setup.run(|| info!("after thaw"));
    assert!(setup.flush(15).complete, "{:?}", setup.stats);
    setup.assert_accounted();
    let got = sub.wait_for(1, Duration::from_secs(5));
    assert!(!got.is_empty());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !sub
        .payloads("logs:global")
        .iter()
        .any(|p| p.contains("after thaw"))
    {
        assert!(Instant::now() < deadline, "no line after thaw arrived");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn lines_logged_while_redis_loads_its_data_are_retried_not_failed() {
    let mut server = RedisServer::start_with(&[
        "--key-load-delay",
        "100",
        "--loading-process-events-interval-bytes",
        "1024",
    ]);
    // A data set that takes a second or two to load (100 us a key).
    let mut con = server.client().get_connection().unwrap();
    let mut pipe = redis::pipe();
    for i in 0..10_000 {
        pipe.cmd("SET").arg(format!("k{i}")).arg(i).ignore();
    }
    pipe.exec(&mut con).unwrap();
    redis::cmd("SAVE").exec(&mut con).unwrap();
    drop(con);
    let setup = Setup::new(quick(&server.url()).mode(Mode::Streams));
    setup.run(|| info!("warm up"));
    assert!(setup.flush(5).complete);
    server.restart_loading();
    assert!(
        server.is_loading(),
        "the test needs a server that is loading"
    );
    setup.run(|| (0..20).for_each(|i| info!(i, "while loading")));
    assert!(setup.flush(30).complete, "{:?}", setup.stats);
    assert!(
        !server.is_loading(),
        "published only once the load was over"
    );
    setup.assert_accounted();
    assert_eq!(
        setup.stats.failed(),
        0,
        "LOADING is retried: {:?}",
        setup.stats
    );
    assert_eq!(
        stream_indices(&server),
        (0..20).collect::<Vec<_>>(),
        "every line logged during the load is in the stream, once, in order"
    );
}

#[test]
fn dropping_the_guard_with_redis_frozen_accounts_for_every_line() {
    let server = RedisServer::start();
    let mut setup = Setup::new(
        quick(&server.url())
            .timeouts(Duration::from_millis(300), Duration::from_secs(1))
            .shutdown_timeout(Duration::from_secs(2)),
    );
    setup.run(|| info!("warm up"));
    assert!(setup.flush(5).complete);
    server.freeze();
    setup.run(|| (0..5_000).for_each(|i| info!(i, "at exit")));
    let started = Instant::now();
    drop(setup.guard.take());
    let took = started.elapsed();
    server.thaw();
    assert!(
        took < Duration::from_secs(10),
        "the guard returned after {took:?}"
    );
    // Every line is settled when the guard returns: nothing left in
    // flight, the loss counted.
    setup.assert_accounted();
    assert!(setup.stats.dropped_shutdown() > 0, "{:?}", setup.stats);
}

fn indices(payloads: &[String]) -> Vec<u64> {
    payloads
        .iter()
        .filter_map(|p| serde_json::from_str::<serde_json::Value>(p).ok())
        .filter_map(|v| v.get("i").and_then(serde_json::Value::as_u64))
        .collect()
}

/// The lines a stream holds, as their `i` fields: streams keep what was
/// published, so which lines a policy kept is read back without racing a
/// subscriber.
fn stream_indices(server: &RedisServer) -> Vec<u64> {
    indices(&stream_lines(server))
}

/// Every line the global stream holds, oldest first.
fn stream_lines(server: &RedisServer) -> Vec<String> {
    let mut con = server.client().get_connection().unwrap();
    let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg("logs:global")
        .arg("-")
        .arg("+")
        .query(&mut con)
        .unwrap();
    entries
        .into_iter()
        .map(|(_, fields)| fields[0].1.clone())
        .collect()
}

fn policy_setup(port: u16, overflow: Overflow) -> Setup {
    Setup::new(
        quick(&format!("redis://127.0.0.1:{port}"))
            .capacity(10, 1 << 20)
            .batch(1, 1 << 20)
            .overflow(overflow)
            .mode(Mode::Streams),
    )
}

#[test]
fn queue_full_drop_newest_keeps_the_oldest_with_exact_counts() {
    let port = free_port();
    let setup = policy_setup(port, Overflow::DropNewest);
    setup.run(|| (0..25).for_each(|i| info!(i, "x")));
    let s = &setup.stats;
    assert_eq!(s.emitted(), 25);
    assert_eq!(s.dropped_queue_full() + s.in_flight(), 25, "{s:?}");
    assert!(
        (10..=11).contains(&s.in_flight()),
        "a queue of 10, and at most one line in the worker's batch: {s:?}"
    );
    let server = RedisServer::start_on(port, &[]);
    assert!(setup.flush(10).complete);
    setup.assert_accounted();
    let kept = s.published();
    assert_eq!(kept, 25 - s.dropped_queue_full());
    // DropNewest's guarantee, whatever the schedule: the first ten lines
    // found room (the queue was empty), a later line only when the worker
    // had taken one out, and the kept lines arrive in the order logged.
    let got = stream_indices(&server);
    assert_eq!(got.len() as u64, kept, "{got:?}");
    assert_eq!(got[..10], (0..10).collect::<Vec<_>>()[..], "{got:?}");
    assert!(got.windows(2).all(|w| w[0] < w[1]), "in order: {got:?}");
}

#[test]
fn queue_full_drop_oldest_keeps_the_newest() {
    let port = free_port();
    let setup = policy_setup(port, Overflow::DropOldest);
    setup.run(|| (0..25).for_each(|i| info!(i, "x")));
    let s = &setup.stats;
    assert_eq!(s.dropped_evicted() + s.in_flight(), 25, "{s:?}");
    assert_eq!(s.dropped_queue_full(), 0);
    let server = RedisServer::start_on(port, &[]);
    assert!(setup.flush(10).complete);
    setup.assert_accounted();
    let got = stream_indices(&server);
    assert_eq!(got.len() as u64, s.published());
    // DropOldest's guarantee, whatever the schedule: the worker may hold one
    // line it took out of the queue at any moment of the burst; the queue
    // itself always ends with the ten newest, and order is kept.
    assert_eq!(
        got[got.len() - 10..],
        (15..25).collect::<Vec<_>>()[..],
        "{got:?}"
    );
    assert!(got.windows(2).all(|w| w[0] < w[1]), "in order: {got:?}");
}

#[test]
fn block_waits_at_most_its_maximum_then_drops() {
    let port = free_port();
    let max_wait = Duration::from_millis(50);
    let setup = Setup::new(
        quick(&format!("redis://127.0.0.1:{port}"))
            .capacity(5, 1 << 20)
            .batch(1, 1 << 20)
            .overflow(Overflow::Block { max_wait }),
    );
    let started = Instant::now();
    setup.run(|| (0..15).for_each(|i| info!(i, "x")));
    let elapsed = started.elapsed();
    let s = &setup.stats;
    assert_eq!(s.dropped_block_timeout() + s.in_flight(), 15, "{s:?}");
    let timeouts = s.dropped_block_timeout() as u32;
    assert!(timeouts >= 9, "{s:?}");
    assert!(
        elapsed >= max_wait * timeouts,
        "each timed-out call waited its maximum: {elapsed:?}"
    );
    assert!(
        elapsed < (max_wait + Duration::from_millis(500)) * timeouts,
        "and not much longer: {elapsed:?}"
    );
}

#[test]
fn dropping_the_guard_delivers_every_line_emitted_before() {
    let server = RedisServer::start();
    let sub = Subscription::new(&server.url(), &["logs:global"]);
    let mut setup = Setup::new(quick(&server.url()).capacity(100_000, 64 << 20));
    setup.run(|| (0..20_000).for_each(|i| info!(i, "before exit")));
    drop(setup.guard.take());
    setup.assert_accounted();
    assert_eq!(setup.stats.published(), 20_000);
    assert_eq!(sub.wait_for(20_000, Duration::from_secs(10)).len(), 20_000);
    // After the guard: counted, never queued.
    setup.run(|| info!("too late"));
    assert_eq!(setup.stats.dropped_shutdown(), 1);
    setup.assert_accounted();
}

#[test]
fn shutdown_with_redis_down_abandons_within_the_timeout_and_counts_it() {
    let port = free_port();
    let mut setup = Setup::new(
        quick(&format!("redis://127.0.0.1:{port}")).shutdown_timeout(Duration::from_millis(300)),
    );
    setup.run(|| (0..500).for_each(|i| info!(i, "never delivered")));
    let started = Instant::now();
    drop(setup.guard.take());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the guard's drop is bounded: {:?}",
        started.elapsed()
    );
    setup.assert_accounted();
    assert_eq!(setup.stats.dropped_shutdown(), 500);
}

#[test]
fn oversize_lines_are_dropped_and_counted() {
    let server = RedisServer::start();
    let setup = Setup::new(quick(&server.url()).max_payload(200));
    setup.run(|| {
        info!(big = %"y".repeat(500), "too big");
        info!("fits");
    });
    assert!(setup.flush(5).complete);
    assert_eq!(setup.stats.dropped_oversize(), 1);
    assert_eq!(setup.stats.published(), 1);
    setup.assert_accounted();
}

#[test]
fn drops_are_reported_in_band_on_the_global_channel() {
    let server = RedisServer::start();
    let sub = Subscription::new(&server.url(), &["logs:global"]);
    let setup = Setup::new(quick(&server.url()).max_payload(100));
    setup.run(|| {
        for _ in 0..3 {
            info!(big = %"z".repeat(300), "oversize");
        }
        info!("normal");
    });
    assert!(setup.flush(5).complete);
    let deadline = Instant::now() + Duration::from_secs(5);
    let report = loop {
        if let Some(p) = sub
            .payloads("logs:global")
            .into_iter()
            .find(|p| p.contains("dropped log lines"))
        {
            break p;
        }
        assert!(Instant::now() < deadline, "no drop report within 5 s");
        std::thread::sleep(Duration::from_millis(20));
    };
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["level"], "WARN");
    assert_eq!(report["dropped"], 3);
    assert_eq!(report["oversize"], 3);
    assert_eq!(report["failed"], 0, "failures are in the report too");
}

#[test]
fn in_streams_mode_the_drop_report_is_in_the_stream() {
    let server = RedisServer::start();
    let setup = Setup::new(quick(&server.url()).max_payload(100).mode(Mode::Streams));
    setup.run(|| {
        info!(big = %"z".repeat(300), "oversize");
        info!("normal");
    });
    assert!(setup.flush(5).complete);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let lines = stream_lines(&server);
        if let Some(report) = lines.iter().find(|l| l.contains("dropped log lines")) {
            let report: serde_json::Value = serde_json::from_str(report).unwrap();
            assert_eq!(report["dropped"], 1);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no report in the stream: {lines:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn streams_keep_a_bounded_replayable_log() {
    let server = RedisServer::start();
    let job = spanline_context::JobId::new("replay");
    let setup = Setup::new(quick(&server.url()).mode(Mode::Streams).stream_limits(
        100,
        50,
        Duration::from_secs(60),
    ));
    setup.run(|| {
        let _job = info_span!("job", job_id = %job).entered();
        (0..1000).for_each(|i| info!(i, "streamed"));
    });
    assert!(setup.flush(10).complete);
    setup.assert_accounted();
    let mut con = server.client().get_connection().unwrap();
    let len: usize = redis::cmd("XLEN")
        .arg("logs:global")
        .query(&mut con)
        .unwrap();
    assert!(
        (100..=300).contains(&len),
        "MAXLEN ~ 100 bounds the stream: {len}"
    );
    let last: Vec<(String, Vec<(String, String)>)> = redis::cmd("XREVRANGE")
        .arg("logs:global")
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(2)
        .query(&mut con)
        .unwrap();
    // The newest entry is the job's end; the one before, the last line.
    assert!(last[0].1[0].1.contains(r#""job_end":true"#), "{last:?}");
    assert_eq!(last[1].1[0].0, "line");
    assert_eq!(last[1].1[0].1, setup.capture.lines()[999]);
    let job_key = format!("logs:{job}");
    let job_len: usize = redis::cmd("XLEN").arg(&job_key).query(&mut con).unwrap();
    assert!((50..=200).contains(&job_len), "{job_len}");
    let ttl: i64 = redis::cmd("TTL").arg(&job_key).query(&mut con).unwrap();
    assert!(ttl > 0 && ttl <= 60, "a job stream expires: {ttl}");
}

#[test]
fn acl_user_limited_to_logs_channels_and_a_wrong_password_fail_cleanly() {
    let server = RedisServer::start_with(&[
        "--user",
        "logger",
        "on",
        ">s3cret",
        "resetchannels",
        "&logs:*",
        "+@all",
    ]);
    let port = server.port();
    let ok_url = format!("redis://logger:s3cret@127.0.0.1:{port}");
    let sub = Subscription::new(&server.url(), &["logs:global"]);
    let setup = Setup::new(quick(&ok_url));
    setup.run(|| info!("allowed"));
    assert!(setup.flush(5).complete);
    assert_eq!(setup.stats.published(), 1);
    assert_eq!(sub.wait_for(1, Duration::from_secs(5)).len(), 1);

    // A channel outside the user's pattern: NOPERM, counted as failed.
    let denied = Setup::new(quick(&ok_url).prefix("other"));
    denied.run(|| info!("denied"));
    assert!(denied.flush(5).complete);
    assert_eq!((denied.stats.published(), denied.stats.failed()), (0, 1));

    // A wrong password: failures, not a crash, and never the password in
    // the builder's Debug output.
    let bad_url = format!("redis://logger:wrong@127.0.0.1:{port}");
    let builder = quick(&bad_url);
    assert!(!format!("{builder:?}").contains("wrong"));
    let wrong = Setup::new(builder);
    wrong.run(|| (0..5).for_each(|i| info!(i, "rejected")));
    assert!(wrong.flush(5).complete, "{:?}", wrong.stats);
    assert_eq!(wrong.stats.failed(), 5);
    wrong.assert_accounted();
}

#[test]
fn build_never_connects_and_rejects_bad_options() {
    let started = Instant::now();
    let (_layer, guard) = RedisLayer::builder("redis://10.255.255.1:6379")
        .build()
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "build does not connect"
    );
    drop(guard);
    assert!(RedisLayer::builder("not a url").build().is_err());
    assert!(RedisLayer::builder("redis://127.0.0.1")
        .prefix("bad prefix")
        .build()
        .is_err());
    let err = RedisLayer::builder("http://user:topsecret@host")
        .build()
        .unwrap_err()
        .to_string();
    assert!(!err.contains("topsecret"), "{err}");
}

#[test]
fn redacted_values_are_not_published() {
    let server = RedisServer::start();
    let sub = Subscription::new(&server.url(), &["logs:global"]);
    let (layer, guard) = quick(&server.url())
        .schema(
            spanline_core::Schema::builder(spanline_core::Preset::Flat)
                .redact(["password", "token"]),
        )
        .build()
        .unwrap();
    let subscriber = tracing_subscriber::registry()
        .with(ContextLayer::new())
        .with(layer);
    tracing::subscriber::with_default(subscriber, || {
        let _login = info_span!("login", token = "tok-hunter2").entered();
        info!(password = "hunter2", user = "ann", "logged in");
    });
    assert!(guard.flush(Duration::from_secs(5)).complete);
    let got = sub.wait_for(1, Duration::from_secs(5));
    let line: serde_json::Value = serde_json::from_str(&got[0].1).unwrap();
    assert_eq!(line["password"], "[redacted]");
    assert_eq!(line["token"], "[redacted]");
    assert_eq!(line["user"], "ann");
    assert!(!got[0].1.contains("hunter2"), "{got:?}");
}
