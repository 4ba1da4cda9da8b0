//! Behaviour of the JSON layer: key policy, encoding, filtering, threads,
//! re-entrancy and `log` records. Every line is parsed strictly (duplicate
//! keys are an error).
//!
//! One file: sixty short tests, each a few events through one `JsonLayer`
//! and the strict parser above them, read in the order of the layer's
//! documentation (keys, precedence, numbers, errors, writing); the other
//! behaviours have modules of their own beside it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::fmt;
use std::sync::{Arc, Barrier, OnceLock};

use serde_json::{json, Value};
use spanline_core::{Clock, ContextLayer, NonFinite, NumberPolicy, Preset, ReservedKey, Timestamp};
use spanline_json::JsonLayer;
use spanline_testkit::Capture;
use tracing::{field, info, info_span, warn};
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

use spanline_testkit::{capture_json as capture_lines, json_subscriber as subscriber};

#[test]
fn flat_line_has_reserved_keys_then_fields_then_context() {
    let lines = capture_lines(|| {
        let _req = info_span!("request", request_id = "r-1", route = "/users").entered();
        let _db = info_span!("db", table = "users").entered();
        info!(n = 3, ok = true, "done");
    });
    let keys: Vec<&str> = lines[0].keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "timestamp",
            "level",
            "message",
            "target",
            "n",
            "ok",
            "request_id",
            "route",
            "table"
        ]
    );
    assert_eq!(lines[0]["level"], "INFO");
    assert_eq!(lines[0]["message"], "done");
    assert_eq!(lines[0]["target"], module_path!());
    assert_eq!(lines[0]["n"], 3);
    assert_eq!(lines[0]["table"], "users");
}

#[test]
fn precedence_event_over_nearest_span_over_ancestor() {
    let lines = capture_lines(|| {
        let _root = info_span!("root", a = "root", b = "root", c = "root").entered();
        let _child = info_span!("child", b = "child", c = "child").entered();
        info!(c = "event", "x");
    });
    assert_eq!(lines[0]["a"], "root");
    assert_eq!(lines[0]["b"], "child");
    assert_eq!(lines[0]["c"], "event");
}

#[test]
fn reserved_collisions_are_kept_under_prefix() {
    let lines = capture_lines(|| {
        let _s = info_span!("s", level = "span-level", target = "span-target").entered();
        info!(level = "custom", timestamp = 5, "m");
    });
    let l = &lines[0];
    assert_eq!(l["level"], "INFO");
    assert_eq!(
        l["fields.level"], "custom",
        "the event's value wins the prefixed key"
    );
    assert_eq!(l["fields.timestamp"], 5);
    assert_eq!(l["fields.target"], "span-target");
    assert_eq!(l["target"], module_path!());
}

#[test]
fn a_field_named_like_a_renamed_key_is_not_lost() {
    for order in ["renamed first", "literal first"] {
        let lines = capture_lines(|| {
            if order == "renamed first" {
                info!(level = "custom", "fields.level" = "literal", "m");
            } else {
                info!("fields.level" = "literal", level = "custom", "m");
            }
        });
        let l = &lines[0];
        assert_eq!(l["level"], "INFO");
        let mut values = vec![
            l["fields.level"].as_str().unwrap(),
            l["fields.fields.level"].as_str().unwrap(),
        ];
        values.sort_unstable();
        assert_eq!(values, ["custom", "literal"], "{order}: both kept: {l:?}");
    }
}

#[test]
fn span_names_never_become_keys() {
    let lines = capture_lines(|| {
        let _s = info_span!("request_span", id = 1).entered();
        info!("m");
    });
    assert!(!lines[0].contains_key("request_span"));
    assert!(!lines[0].contains_key("name"));
}

#[test]
fn late_record_on_root_reaches_existing_children_and_threads() {
    let capture = Capture::new();
    tracing::subscriber::with_default(subscriber(&capture), || {
        let root = info_span!("request", request_id = "r-1", user_id = field::Empty);
        let child = info_span!(parent: &root, "child", step = 1);
        let worker = {
            let child = child.clone();
            let dispatch = tracing::dispatcher::get_default(Clone::clone);
            let barrier = Arc::new(Barrier::new(2));
            let b = barrier.clone();
            let handle = std::thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    b.wait(); // the value is recorded after this thread exists
                    b.wait();
                    child.in_scope(|| info!("from thread"));
                })
            });
            barrier.wait();
            root.record("user_id", 42);
            barrier.wait();
            handle
        };
        worker.join().unwrap();
        child.in_scope(|| info!("from child"));
    });
    let lines = capture.json_lines();
    assert_eq!(lines.len(), 2);
    for l in &lines {
        assert_eq!(l["user_id"], 42, "{l:?}");
        assert_eq!(l["request_id"], "r-1");
    }
}

#[test]
fn set_adds_keys_to_the_whole_context_root() {
    let lines = capture_lines(|| {
        let _req = info_span!("request", request_id = "r-1").entered();
        {
            let _auth = info_span!("auth").entered();
            spanline_core::set("user_id", "alice").unwrap();
            info!("inside auth");
        }
        info!(user_id = "event wins", "after auth");
    });
    assert_eq!(lines[0]["user_id"], "alice");
    assert_eq!(lines[1]["user_id"], "event wins");
}

#[test]
fn error_chain_is_kept() {
    #[derive(Debug)]
    struct E(&'static str, Option<Box<E>>);
    impl fmt::Display for E {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for E {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }
    let err = E(
        "top",
        Some(Box::new(E("middle", Some(Box::new(E("root cause", None)))))),
    );
    let lines = capture_lines(|| warn!(error = &err as &dyn std::error::Error, "failed"));
    assert_eq!(lines[0]["error"], "top");
    assert_eq!(lines[0]["error_sources"], json!(["middle", "root cause"]));
}

#[test]
fn numbers_follow_the_policy() {
    let capture = Capture::new();
    let policy = NumberPolicy {
        big_ints_as_strings: true,
        non_finite: NonFinite::String,
    };
    let sub = tracing_subscriber::registry()
        .with(ContextLayer::new().with_number_policy(policy))
        .with(
            JsonLayer::builder()
                .schema(
                    spanline_core::Schema::builder(spanline_core::Preset::Flat)
                        .number_policy(policy),
                )
                .with_writer(capture.clone())
                .build(),
        );
    tracing::subscriber::with_default(sub, || {
        let _s = info_span!("s", span_big = u64::MAX).entered();
        info!(
            big = u64::MAX,
            small = 7u64,
            nan = f64::NAN,
            inf = f64::INFINITY,
            wide = i128::MIN,
            "n"
        );
    });
    let l = &capture.json_lines()[0];
    assert_eq!(l["big"], "18446744073709551615");
    assert_eq!(l["span_big"], "18446744073709551615");
    assert_eq!(l["small"], 7);
    assert_eq!(l["nan"], "NaN");
    assert_eq!(l["inf"], "inf");
    assert_eq!(l["wide"], "-170141183460469231731687303715884105728");

    let lines = capture_lines(|| info!(nan = f64::NAN, big = u64::MAX, "n"));
    assert_eq!(lines[0]["nan"], Value::Null);
    assert_eq!(lines[0]["big"], json!(u64::MAX));
}

#[test]
fn renamed_keys_and_static_fields() {
    let capture = Capture::new();
    let json = JsonLayer::builder()
        .schema(
            spanline_core::Schema::builder(spanline_core::Preset::Flat)
                .rename(ReservedKey::Level, "severity")
                .rename(ReservedKey::Message, "msg")
                .static_field("service", "api")
                .static_field("severity", "never shown: reserved wins")
                .with_pid(),
        )
        .with_writer(capture.clone())
        .build();
    let sub = tracing_subscriber::registry()
        .with(ContextLayer::new())
        .with(json);
    tracing::subscriber::with_default(sub, || {
        let _s = info_span!("s", service = "span wins").entered();
        info!(msg = "user msg", "hello");
    });
    let l = &capture.json_lines()[0];
    assert_eq!(l["severity"], "INFO");
    assert_eq!(l["msg"], "hello");
    assert_eq!(l["fields.msg"], "user msg");
    assert_eq!(l["service"], "span wins");
    assert_eq!(l["pid"], std::process::id());
    assert!(!l.contains_key("level") && !l.contains_key("message"));
}

#[test]
fn per_layer_env_filter_applies() {
    let capture = Capture::new();
    let sub = tracing_subscriber::registry()
        .with(ContextLayer::new())
        .with(
            JsonLayer::builder()
                .with_writer(capture.clone())
                .build()
                .with_filter(EnvFilter::new("warn,json::noisy=debug")),
        );
    tracing::subscriber::with_default(sub, || {
        let _s = info_span!("request", request_id = "r-1").entered();
        info!("hidden");
        warn!("shown");
        tracing::debug!(target: "json::noisy", "shown too");
    });
    let lines = capture.json_lines();
    let messages: Vec<&Value> = lines.iter().map(|l| &l["message"]).collect();
    assert_eq!(messages, ["shown", "shown too"]);
    // The request span is below the layer's level, but its context was
    // stored by the unfiltered ContextLayer and still reaches the lines.
    assert_eq!(lines[0]["request_id"], "r-1");
}

#[test]
fn threads_never_interleave_lines() {
    let capture = Capture::new();
    let dispatch = tracing::Dispatch::new(subscriber(&capture));
    let threads = 8;
    let per_thread = 300;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let dispatch = dispatch.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    let big = "x".repeat(2000 + t * 100);
                    let _s = info_span!("worker", thread = t).entered();
                    barrier.wait();
                    for i in 0..per_thread {
                        info!(i, payload = %big, "tick");
                    }
                })
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let lines = capture.json_lines();
    assert_eq!(lines.len(), threads * per_thread);
    assert_eq!(capture.writes(), lines.len(), "exactly one write per line");
    for t in 0..threads {
        let mine: Vec<_> = lines.iter().filter(|l| l["thread"] == t).collect();
        assert_eq!(mine.len(), per_thread);
        assert!(mine
            .iter()
            .all(|l| l["payload"].as_str().unwrap().len() == 2000 + t * 100));
    }
}

#[test]
fn write_errors_are_counted() {
    struct Broken;
    impl std::io::Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk full"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let json = JsonLayer::builder().with_writer(|| Broken).build();
    let stats = json.stats();
    let sub = tracing_subscriber::registry()
        .with(ContextLayer::new())
        .with(json);
    tracing::subscriber::with_default(sub, || {
        info!("a");
        info!("b");
    });
    assert_eq!(stats.write_errors(), 2);
    assert_eq!(stats.lines(), 0);
}

fn init_log_bridge() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        assert!(
            tracing_log::LogTracer::init().is_ok(),
            "no other logger in this test binary"
        )
    });
}

#[test]
fn log_records_are_normalized() {
    init_log_bridge();
    let lines = capture_lines(|| {
        let _s = info_span!("request", request_id = "r-1").entered();
        log::warn!(target: "legacy::db", "slow query");
    });
    let l = &lines[0];
    assert_eq!(l["target"], "legacy::db");
    assert_eq!(l["message"], "slow query");
    assert_eq!(l["level"], "WARN");
    assert_eq!(l["request_id"], "r-1");
    assert!(l.keys().all(|k| !k.starts_with("log.")), "{l:?}");
}

#[test]
fn hostile_strings_stay_valid_json() {
    let hostile =
        "quote\" backslash\\ newline\n nul\u{0} esc\u{1b}[2J del\u{7f} bidi\u{202e} emoji😀";
    let lines = capture_lines(|| {
        let _s = info_span!("s", ctx = hostile).entered();
        info!(v = hostile, d = ?hostile, "{hostile}");
    });
    let l = &lines[0];
    assert_eq!(l["v"], hostile);
    assert_eq!(l["ctx"], hostile);
    assert_eq!(l["message"], hostile);
    assert_eq!(l["d"], format!("{hostile:?}"));
    let raw = Capture::new();
    tracing::subscriber::with_default(subscriber(&raw), || info!(v = hostile, "m"));
    assert_eq!(raw.text().matches('\n').count(), 1, "one physical line");
    assert!(!raw.text().contains('\u{1b}'));
}

#[test]
fn huge_values_are_written_whole_under_a_small_buffer_cap() {
    let big = "y".repeat(1 << 20);
    let capture = Capture::new();
    let sub = tracing_subscriber::registry()
        .with(ContextLayer::new())
        .with(
            JsonLayer::builder()
                .buffer_capacity_limit(4096)
                .with_writer(capture.clone())
                .build(),
        );
    tracing::subscriber::with_default(sub, || {
        info!(big = %big, "large");
        info!("small after large");
    });
    let lines = capture.json_lines();
    assert_eq!(lines[0]["big"].as_str().map(str::len), Some(1 << 20));
    assert_eq!(lines[1]["message"], "small after large");
}

#[test]
fn fixed_clock_and_presets_level_names() {
    let at = Timestamp::from_unix(1_700_000_000, 123_456_789);
    let cases = [
        (
            Preset::Flat,
            "level",
            json!("WARN"),
            "timestamp",
            "2023-11-14T22:13:20.123456Z",
        ),
        (
            Preset::Structlog,
            "level",
            json!("warning"),
            "timestamp",
            "2023-11-14T22:13:20.123456Z",
        ),
        (
            Preset::Bunyan,
            "level",
            json!(40),
            "time",
            "2023-11-14T22:13:20.123Z",
        ),
        (
            Preset::Gcp,
            "severity",
            json!("WARNING"),
            "time",
            "2023-11-14T22:13:20.123456Z",
        ),
        (
            Preset::Ecs,
            "log.level",
            json!("warn"),
            "@timestamp",
            "2023-11-14T22:13:20.123Z",
        ),
        (
            Preset::Nested,
            "level",
            json!("WARN"),
            "timestamp",
            "2023-11-14T22:13:20.123456Z",
        ),
    ];
    for (preset, level_key, level, ts_key, ts) in cases {
        let capture = Capture::new();
        let json = JsonLayer::builder()
            .schema(spanline_core::Schema::builder(preset).clock(Clock::fixed(at)))
            .with_writer(capture.clone())
            .build();
        let sub = tracing_subscriber::registry()
            .with(ContextLayer::new())
            .with(json);
        tracing::subscriber::with_default(sub, || warn!("w"));
        let l = &capture.json_lines()[0];
        assert_eq!(l[level_key], level, "{preset:?}");
        assert_eq!(l[ts_key], ts, "{preset:?}");
    }
}

#[test]
fn an_event_without_a_message_has_no_message_key() {
    for preset in [Preset::Flat, Preset::Structlog, Preset::Nested] {
        let capture = Capture::new();
        let json = JsonLayer::builder()
            .schema(preset)
            .with_writer(capture.clone())
            .build();
        let subscriber = tracing_subscriber::registry()
            .with(ContextLayer::new())
            .with(json);
        tracing::subscriber::with_default(subscriber, || {
            info!(rows = 3, ok = true);
            info!(rows = 4, message = "late", ok = false);
        });
        let lines = capture.json_lines();
        let fields = |l: &serde_json::Map<String, Value>| match preset {
            Preset::Nested => l["fields"].as_object().unwrap().clone(),
            _ => l.clone(),
        };
        let (first, second) = (fields(&lines[0]), fields(&lines[1]));
        let message = if preset == Preset::Structlog {
            "event"
        } else {
            "message"
        };
        assert!(!first.contains_key(message), "{preset:?}: {first:?}");
        assert_eq!(first["rows"], 3);
        assert_eq!(second[message], "late", "{preset:?}");
        assert_eq!(second["ok"], false);
    }
}

#[test]
fn a_wide_object_keeps_every_key_once() {
    let lines = capture_lines(|| {
        let _s = info_span!(
            "wide",
            f0 = 0,
            f1 = 1,
            f2 = 2,
            f3 = 3,
            f4 = 4,
            f5 = 5,
            f6 = 6,
            f7 = 7,
            f8 = 8,
            f9 = 9,
            f10 = 10,
            f11 = 11,
            f12 = 12,
            f13 = 13,
            f14 = 14,
            f15 = 15,
            f16 = 16,
            f17 = 17,
            f18 = 18,
            f19 = 19,
            f20 = 20
        )
        .entered();
        info!(
            f0 = "e0",
            f1 = "e1",
            f2 = "e2",
            f3 = "e3",
            f4 = "e4",
            f5 = "e5",
            f6 = "e6",
            f7 = "e7",
            f8 = "e8",
            f9 = "e9",
            f10 = "e10",
            f11 = "e11",
            f12 = "e12",
            f13 = "e13",
            f14 = "e14",
            f15 = "e15",
            f16 = "e16",
            f17 = "e17",
            f18 = "e18",
            f19 = "e19",
            f30 = "e30",
            level = "mine",
            message = "wide"
        );
    });
    // parse_strict (in capture_lines) rejects a duplicate key: each key once.
    let l = &lines[0];
    assert_eq!(l["f3"], "e3", "the event wins over the span");
    assert_eq!(l["f20"], 20, "a span key the event lacks");
    assert_eq!(l["f30"], "e30");
    assert_eq!(l["fields.level"], "mine");
    assert_eq!(l["level"], "INFO");
}

#[test]
fn lines_from_many_threads_are_all_counted() {
    let capture = Capture::new();
    let json = JsonLayer::builder().with_writer(capture.clone()).build();
    let stats = json.stats();
    let dispatch = tracing::Dispatch::new(
        tracing_subscriber::registry()
            .with(ContextLayer::new())
            .with(json),
    );
    std::thread::scope(|s| {
        for t in 0..20 {
            let dispatch = dispatch.clone();
            s.spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    for i in 0..50 {
                        info!(t, i, "counted");
                    }
                });
            });
        }
    });
    assert_eq!(
        stats.lines(),
        1_000,
        "20 threads (more than the shards), 50 lines each"
    );
    assert_eq!(capture.lines().len(), 1_000);
}

/// Every place a secret can be, in one request: a span field, a field
/// recorded late, a key bound with `set`, an event field, an error with a
/// cause, any letter case.
fn log_secrets() {
    let req = info_span!(
        "request",
        request_id = "r-1",
        password = "hunter2",
        token = field::Empty
    )
    .entered();
    req.record("token", "tok-hunter2");
    spanline_core::set("Authorization", "Bearer hunter2").unwrap();
    let _inner = info_span!("inner", step = 1).entered();
    let cause = std::io::Error::other("hunter2 leaked in a cause");
    let wrapped = std::io::Error::other(Wrapped(cause));
    tracing::error!(
        PASSWORD = "hunter2",
        secret = &wrapped as &dyn std::error::Error,
        user = "ann",
        "login failed"
    );
}

#[derive(Debug)]
struct Wrapped(std::io::Error);
impl fmt::Display for Wrapped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "wrapped: {}", self.0)
    }
}
impl std::error::Error for Wrapped {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

const SECRET_KEYS: [&str; 4] = ["password", "token", "authorization", "secret"];

/// What the JSON layer writes of `log_secrets` with `preset`, hiding
/// `SECRET_KEYS`.
fn redacted_lines(preset: Preset) -> Capture {
    let capture = Capture::new();
    let json = JsonLayer::builder()
        .schema(spanline_core::Schema::builder(preset).redact(SECRET_KEYS))
        .with_writer(capture.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(ContextLayer::new())
        .with(json);
    tracing::subscriber::with_default(subscriber, log_secrets);
    capture
}

#[test]
fn redacted_keys_never_reach_a_line_in_any_preset() {
    for preset in [Preset::Flat, Preset::Structlog, Preset::Nested, Preset::Ecs] {
        let text = redacted_lines(preset).text();
        assert!(!text.contains("hunter2"), "{preset:?}: {text}");
        assert!(text.contains("[redacted]"), "{preset:?}: {text}");
        assert!(
            text.contains("\"ann\""),
            "{preset:?}: other values stay: {text}"
        );
        assert!(
            !text.contains("sources\":[\""),
            "{preset:?}: no cause chain: {text}"
        );
    }
    // Flat: each key is there, masked.
    let line = &redacted_lines(Preset::Flat).json_lines()[0];
    for key in ["PASSWORD", "secret", "password", "token", "Authorization"] {
        assert_eq!(line[key], "[redacted]", "{key}: {line:?}");
    }
}

#[test]
fn the_pretty_layer_redacts_too() {
    let capture = Capture::new();
    let pretty = spanline_json::PrettyLayer::new()
        .with_writer(capture.clone())
        .redact(SECRET_KEYS);
    let subscriber = tracing_subscriber::registry()
        .with(ContextLayer::new())
        .with(pretty);
    tracing::subscriber::with_default(subscriber, log_secrets);
    let text = capture.text();
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("PASSWORD=[redacted]"), "{text}");
    assert!(text.contains("Authorization=[redacted]"), "{text}");
    assert!(text.contains("user=ann"), "{text}");
}

/// Lines of `preset` (a Cloud Logging project set, source locations on).
fn preset_lines(preset: Preset, f: impl FnOnce()) -> Vec<serde_json::Map<String, Value>> {
    let schema = spanline_core::Schema::builder(preset)
        .gcp_project("proj")
        .with_source_location(true);
    spanline_testkit::capture_json_with(schema, f)
}

#[test]
fn a_critical_error_has_each_presets_critical_level_and_no_marker_field() {
    for (preset, key, word) in [
        (Preset::Flat, "level", json!("CRITICAL")),
        (Preset::Structlog, "level", json!("critical")),
        (Preset::Bunyan, "level", json!(60)),
        (Preset::Gcp, "severity", json!("CRITICAL")),
        (Preset::Ecs, "log.level", json!("critical")),
    ] {
        let lines = preset_lines(preset, || {
            tracing::error!(critical = true, rss_mb = 4096, "out of memory");
            tracing::error!(critical = false, "an error, not critical");
            tracing::warn!(critical = true, "a warning stays a warning");
        });
        assert_eq!(lines[0][key], word, "{preset:?}: {:?}", lines[0]);
        assert!(
            lines[0].get("critical").is_none(),
            "{preset:?}: {:?}",
            lines[0]
        );
        assert_eq!(lines[0]["rss_mb"], 4096);
        assert_ne!(lines[1][key], word, "{preset:?}");
        assert_eq!(lines[1]["critical"], false);
        assert_ne!(lines[2][key], word, "{preset:?}");
        assert_eq!(lines[2]["critical"], true);
    }
    // tracing-subscriber's shape keeps tracing's level and the field.
    let nested = preset_lines(Preset::Nested, || tracing::error!(critical = true, "oom"));
    assert_eq!(nested[0]["level"], "ERROR");
    assert_eq!(nested[0]["fields"]["critical"], true);
}

#[test]
fn cloud_logging_gets_a_severity_for_every_level_and_its_source_location() {
    let lines = preset_lines(Preset::Gcp, || {
        tracing::trace!("t");
        tracing::debug!("d");
        tracing::info!("i");
        tracing::warn!("w");
        tracing::error!("e");
        tracing::error!(critical = true, "c");
    });
    let severities: Vec<&str> = lines
        .iter()
        .map(|l| l["severity"].as_str().unwrap())
        .collect();
    assert_eq!(
        severities,
        ["DEBUG", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
    );
    let location = &lines[2]["logging.googleapis.com/sourceLocation"];
    assert_eq!(location["file"], file!());
    // A number, as Google's own StructuredLogHandler writes it.
    assert!(location["line"].as_u64().unwrap() > 0, "{location}");
    assert_eq!(location["function"], module_path!());
    assert!(lines[2].get("file").is_none() && lines[2].get("line").is_none());
}

#[test]
fn json_values_are_objects_and_arrays_in_every_preset() {
    let user = json!({"id": 7, "roles": ["admin", "dev"], "manager": null});
    for preset in Preset::ALL {
        let lines = spanline_testkit::capture_json_with(preset, || {
            let _order = info_span!("order", cart = spanline_core::json(["a-1", "b-2"])).entered();
            spanline_core::set("prefs", spanline_core::Json(json!({"theme": "dark"}))).unwrap();
            info!(user = spanline_core::json(&user), tags = ?spanline_core::Json(["x"]), "payload");
        });
        let line = &lines[0];
        let (fields, span) = match preset {
            Preset::Nested => (
                line["fields"].as_object().unwrap(),
                line["span"].as_object().unwrap(),
            ),
            _ => (line, line),
        };
        assert_eq!(fields["user"], user, "{preset:?}: {line:?}");
        assert_eq!(fields["tags"], json!(["x"]), "{preset:?}");
        assert_eq!(span["cart"], json!(["a-1", "b-2"]), "{preset:?}: {line:?}");
        if preset != Preset::Nested {
            assert_eq!(line["prefs"], json!({"theme": "dark"}), "{preset:?}");
        }
    }
}

/// tracing's `valuable` values, which tracing passes only when built with
/// `RUSTFLAGS="--cfg tracing_unstable"` (`.ci/run` runs this test so).
#[cfg(all(tracing_unstable, feature = "valuable"))]
#[test]
fn valuable_values_are_objects_and_arrays() {
    #[derive(valuable::Valuable)]
    struct User {
        id: u32,
        roles: Vec<&'static str>,
        manager: Option<u32>,
    }
    let user = User {
        id: 7,
        roles: vec!["admin", "dev"],
        manager: None,
    };
    for preset in Preset::ALL {
        let lines = spanline_testkit::capture_json_with(preset, || {
            let _span = info_span!("order", user = tracing::field::valuable(&user)).entered();
            info!(user = tracing::field::valuable(&user), "payload");
        });
        let line = &lines[0];
        let (fields, span) = match preset {
            Preset::Nested => (
                line["fields"].as_object().unwrap(),
                line["span"].as_object().unwrap(),
            ),
            _ => (line, line),
        };
        let expected = json!({"id": 7, "roles": ["admin", "dev"], "manager": null});
        assert_eq!(fields["user"], expected, "{preset:?}: {line:?}");
        assert_eq!(span["user"], expected, "{preset:?}: {line:?}");
    }
    // And hidden keys inside them are masked, in every preset and the
    // pretty layer.
    crate::redact::keys_inside_valuable_values_are_masked();
}

#[test]
fn every_error_style_works_in_any_preset() {
    use spanline_core::{ErrorStyle, Schema};
    use spanline_testkit::{QueryFailed, TimedOut};
    let cause = "timed out after 5s";
    for style in [
        ErrorStyle::Chain,
        ErrorStyle::Ecs,
        ErrorStyle::Traceback,
        ErrorStyle::Dicts,
    ] {
        for preset in [Preset::Flat, Preset::Structlog, Preset::Ecs, Preset::Nested] {
            let schema = Schema::builder(preset).errors(style);
            let lines = spanline_testkit::capture_json_with(schema, || {
                let err = QueryFailed(TimedOut);
                tracing::error!(
                    error = &err as &dyn std::error::Error,
                    other = &err as &dyn std::error::Error,
                    "failed"
                );
            });
            let line = &lines[0];
            let fields = match preset {
                Preset::Nested => line["fields"].as_object().unwrap(),
                _ => line,
            };
            let at = |key: &str| {
                fields
                    .get(key)
                    .unwrap_or_else(|| panic!("{style:?} {preset:?}: no {key} in {line:?}"))
            };
            match style {
                ErrorStyle::Chain => {
                    assert_eq!(
                        at(if preset == Preset::Ecs {
                            "error.message"
                        } else {
                            "error"
                        }),
                        "query failed"
                    );
                    assert_eq!(at("error_sources"), &json!([cause]));
                }
                ErrorStyle::Ecs => {
                    assert_eq!(at("error.message"), "query failed");
                    assert_eq!(at("error.type"), "QueryFailed");
                    assert_eq!(
                        at("error.stack_trace").as_str().unwrap(),
                        format!("QueryFailed: query failed\nCaused by: TimedOut: {cause}")
                    );
                }
                ErrorStyle::Traceback => {
                    let text = format!("TimedOut: {cause}\n\nThe above exception was the direct cause of the following exception:\n\nQueryFailed: query failed");
                    assert_eq!(at("exception").as_str().unwrap(), text);
                    assert_eq!(
                        at("other").as_str().unwrap(),
                        text,
                        "other error fields keep their name"
                    );
                }
                ErrorStyle::Dicts => {
                    assert_eq!(at("exception")[1]["exc_value"], cause);
                    assert_eq!(at("other")[0]["exc_type"], "QueryFailed");
                }
                _ => unreachable!(),
            }
            if style != ErrorStyle::Traceback && style != ErrorStyle::Dicts {
                assert_eq!(at("other"), "query failed");
                assert_eq!(at("other_sources"), &json!([cause]), "{style:?} {preset:?}");
            }
        }
    }
}

#[test]
fn errors_recorded_on_spans_keep_the_chain_shape() {
    use spanline_testkit::{QueryFailed, TimedOut};
    let err = QueryFailed(TimedOut);
    let in_span = || {
        let _job = info_span!("job", error = &err as &dyn std::error::Error).entered();
        info!("retrying");
    };
    let ecs = spanline_testkit::capture_json_with(Preset::Ecs, in_span);
    assert_eq!(ecs[0]["error.message"], "query failed");
    assert_eq!(ecs[0]["error_sources"], json!(["timed out after 5s"]));
    let structlog = spanline_testkit::capture_json_with(Preset::Structlog, in_span);
    assert_eq!(structlog[0]["error"], "query failed");
    assert_eq!(structlog[0]["error_sources"], json!(["timed out after 5s"]));
}
