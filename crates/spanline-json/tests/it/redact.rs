//! Redaction at any depth (issue 30): the keys a sink hides are masked
//! inside JSON values (`spanline_core::json`, `valuable`), in event fields,
//! span fields and `set` values, in every preset, in the pretty layer, in a
//! `LineLayer` sink of its own (the Redis layer's encoder) and in
//! `JsonFields` (the child-process pipe's); keys given as `*` patterns too.
//! And U+2028 / U+2029 never raw in a line.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::sync::{Arc, Mutex};

use serde_json::{json, Map, Value};
use spanline_core::{ContextLayer, LineEvent, LineLayer, LineSink, Preset, Schema};
use spanline_json::{JsonLayer, PrettyLayer};
use spanline_testkit::Capture;
use tracing::{info, info_span};
use tracing_subscriber::prelude::*;

/// What is hidden: whole keys and the three pattern forms.
const HIDDEN: [&str; 4] = ["password", "*token*", "*_secret", "api_*"];

/// Every secret below starts with this; none may reach a byte of output.
const LEAK: &str = "LEAK-";

/// Logs a secret in every kind of value the brief names: a nested object
/// and an array of objects in an event field, a span field holding a JSON
/// value, and a `set` with a JSON value; each beside a value that stays.
fn log_nested_secrets() {
    let cfg = json!({
        "password": "LEAK-p0",
        "db": {"host": "db.internal", "password": "LEAK-p1", "Password": {"deep": "LEAK-p2"}},
        "list": [{"token": "LEAK-t1", "name": "first"}, {"refresh_token": ["LEAK-t2"]}],
        "client_secret": 123,
        "api_key": null,
        "keep": "visible-1"
    });
    let span_cfg = json!({"conn": {"ACCESS_TOKEN": "LEAK-s1", "port": 5432}});
    let _span = info_span!("request", cfg = spanline_core::json(&span_cfg)).entered();
    spanline_core::set(
        "bound",
        spanline_core::Json(json!([{"x_token": "LEAK-b1", "keep": "visible-2"}])),
    )
    .unwrap();
    info!(
        event_cfg = spanline_core::json(&cfg),
        list = spanline_core::json([json!({"db_secret": "LEAK-a1"}), json!({"ok": 1})]),
        "nested secrets"
    );
}

/// The line's fields, wherever the preset puts them: the event's fields
/// (inside `fields` for Nested) and the span's (`span` for Nested).
fn parts(preset: Preset, line: &Map<String, Value>) -> (Value, Value, Value) {
    match preset {
        Preset::Nested => (
            line["fields"].clone(),
            line["span"].clone(),
            Value::Object(line.clone()),
        ),
        _ => (
            Value::Object(line.clone()),
            Value::Object(line.clone()),
            Value::Object(line.clone()),
        ),
    }
}

fn assert_masked(preset: impl std::fmt::Debug, fields: &Value, span: &Value, line: &Value) {
    let cfg = &fields["event_cfg"];
    assert_eq!(cfg["password"], "[redacted]", "{preset:?}: {cfg}");
    assert_eq!(cfg["db"]["password"], "[redacted]", "{preset:?}: {cfg}");
    assert_eq!(cfg["db"]["Password"], "[redacted]", "{preset:?}: {cfg}");
    assert_eq!(cfg["db"]["host"], "db.internal", "{preset:?}: {cfg}");
    assert_eq!(cfg["list"][0]["token"], "[redacted]", "{preset:?}: {cfg}");
    assert_eq!(cfg["list"][0]["name"], "first", "{preset:?}: {cfg}");
    assert_eq!(cfg["list"][1]["refresh_token"], "[redacted]", "{preset:?}");
    assert_eq!(cfg["client_secret"], "[redacted]", "{preset:?}");
    assert_eq!(cfg["api_key"], "[redacted]", "{preset:?}");
    assert_eq!(cfg["keep"], "visible-1", "{preset:?}");
    assert_eq!(
        fields["list"],
        json!([{"db_secret": "[redacted]"}, {"ok": 1}]),
        "{preset:?}"
    );
    assert_eq!(
        span["cfg"],
        json!({"conn": {"ACCESS_TOKEN": "[redacted]", "port": 5432}}),
        "{preset:?}"
    );
    assert_eq!(
        line["bound"],
        json!([{"x_token": "[redacted]", "keep": "visible-2"}]),
        "{preset:?}: {line}"
    );
}

#[test]
fn keys_inside_json_values_are_masked_in_every_preset() {
    for preset in Preset::ALL {
        let capture = Capture::new();
        let json = JsonLayer::builder()
            .schema(Schema::builder(preset).redact(HIDDEN))
            .with_writer(capture.clone())
            .build();
        let subscriber = tracing_subscriber::registry()
            .with(ContextLayer::new())
            .with(json);
        tracing::subscriber::with_default(subscriber, log_nested_secrets);
        let text = capture.text();
        assert!(!text.contains(LEAK), "{preset:?}: {text}");
        let lines = capture.json_lines();
        let (fields, span, line) = parts(preset, &lines[0]);
        assert_masked(preset, &fields, &span, &line);
    }
}

#[test]
fn with_nothing_hidden_json_values_are_written_as_they_are() {
    let lines = spanline_testkit::capture_json_with(Preset::Flat, log_nested_secrets);
    let line = &lines[0];
    assert_eq!(line["event_cfg"]["db"]["password"], "LEAK-p1");
    assert_eq!(line["list"][0]["db_secret"], "LEAK-a1");
    assert_eq!(line["cfg"]["conn"]["ACCESS_TOKEN"], "LEAK-s1");
    assert_eq!(line["bound"][0]["x_token"], "LEAK-b1");
}

/// A sink of its own on `LineLayer`: the path the Redis layer takes (its
/// lines are the schema's, encoded once by `LineLayer`).
#[derive(Clone, Default)]
struct Memory(Arc<Mutex<Vec<u8>>>);

impl LineSink for Memory {
    fn accept(&self, line: &[u8], _event: &LineEvent<'_>) {
        self.0.lock().unwrap().extend_from_slice(line);
    }
}

#[test]
fn a_line_sink_of_its_own_gets_the_masked_line() {
    for preset in [Preset::Flat, Preset::Nested, Preset::Ecs] {
        let memory = Memory::default();
        let subscriber = tracing_subscriber::registry()
            .with(ContextLayer::new())
            .with(LineLayer::new(
                Schema::builder(preset).redact(HIDDEN).build(),
                memory.clone(),
            ));
        tracing::subscriber::with_default(subscriber, log_nested_secrets);
        let bytes = memory.0.lock().unwrap().clone();
        let text = String::from_utf8(bytes).unwrap();
        assert!(!text.contains(LEAK), "{preset:?}: {text}");
        let line: Map<String, Value> = serde_json::from_str(&text).unwrap();
        let (fields, span, line) = parts(preset, &line);
        assert_masked(preset, &fields, &span, &line);
    }
}

/// `JsonFields::redacting`: what the child-process pipe writes an event's
/// fields with, before a byte goes to the parent.
#[test]
fn json_fields_mask_inside_json_values() {
    struct Fields(spanline_core::Redact, Arc<Mutex<Vec<u8>>>);
    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Fields {
        fn on_event(
            &self,
            event: &tracing::Event<'_>,
            _ctx: tracing_subscriber::layer::Context<'_, S>,
        ) {
            let mut buf = self.1.lock().unwrap();
            buf.push(b'{');
            event.record(
                &mut spanline_core::JsonFields::new(&mut buf, Default::default())
                    .redacting(&self.0),
            );
            buf.push(b'}');
        }
    }
    let out = Arc::new(Mutex::new(Vec::new()));
    let subscriber = tracing_subscriber::registry()
        .with(Fields(spanline_core::Redact::new(HIDDEN), out.clone()));
    tracing::subscriber::with_default(subscriber, || {
        info!(
            cfg = spanline_core::json(json!({"db": {"password": "LEAK-1"}, "n": 1})),
            rows = spanline_core::json(json!([{"api_token": "LEAK-2"}])),
            "fields"
        );
    });
    let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
    assert_eq!(
        text,
        r#"{"message":"fields","cfg":{"db":{"password":"[redacted]"},"n":1},"rows":[{"api_token":"[redacted]"}]}"#
    );
}

#[test]
fn the_pretty_layer_masks_inside_json_values() {
    let capture = Capture::new();
    let pretty = PrettyLayer::new()
        .with_writer(capture.clone())
        .redact(HIDDEN);
    let subscriber = tracing_subscriber::registry()
        .with(ContextLayer::new())
        .with(pretty);
    tracing::subscriber::with_default(subscriber, log_nested_secrets);
    let text = capture.text();
    assert!(!text.contains(LEAK), "{text}");
    // The console quotes a value with quotes in it, escaping them.
    assert!(text.contains(r#"\"password\":\"[redacted]\""#), "{text}");
    assert!(
        text.contains("visible-1") && text.contains("visible-2"),
        "{text}"
    );
    assert!(
        text.contains(r#"cfg="{\"conn\":{\"ACCESS_TOKEN\":\"[redacted]\",\"port\":5432}}""#),
        "{text}"
    );
}

/// tracing's `valuable` values, which tracing passes only when built with
/// `RUSTFLAGS="--cfg tracing_unstable"`: called by
/// `json::valuable_values_are_objects_and_arrays`, the one test `.ci/run`
/// builds so.
#[cfg(all(tracing_unstable, feature = "valuable"))]
pub(crate) fn keys_inside_valuable_values_are_masked() {
    #[derive(valuable::Valuable)]
    struct Db {
        host: &'static str,
        password: &'static str,
    }
    #[derive(valuable::Valuable)]
    struct Config {
        db: Db,
        tokens: Vec<&'static str>,
        api_key: &'static str,
    }
    let cfg = Config {
        db: Db {
            host: "db.internal",
            password: "LEAK-v1",
        },
        tokens: vec!["LEAK-v2"],
        api_key: "LEAK-v3",
    };
    let log = || {
        let _span = info_span!("request", cfg = tracing::field::valuable(&cfg)).entered();
        info!(event_cfg = tracing::field::valuable(&cfg), "valuable");
    };
    let expected = json!({"db": {"host": "db.internal", "password": "[redacted]"}, "tokens": "[redacted]", "api_key": "[redacted]"});
    for preset in Preset::ALL {
        let capture = Capture::new();
        let json = JsonLayer::builder()
            .schema(Schema::builder(preset).redact(HIDDEN))
            .with_writer(capture.clone())
            .build();
        let subscriber = tracing_subscriber::registry()
            .with(ContextLayer::new())
            .with(json);
        tracing::subscriber::with_default(subscriber, log);
        assert!(
            !capture.text().contains(LEAK),
            "{preset:?}: {}",
            capture.text()
        );
        let (fields, span, _) = parts(preset, &capture.json_lines()[0]);
        assert_eq!(fields["event_cfg"], expected, "{preset:?}");
        assert_eq!(span["cfg"], expected, "{preset:?}");
    }
    let capture = Capture::new();
    let pretty = PrettyLayer::new()
        .with_writer(capture.clone())
        .redact(HIDDEN);
    let subscriber = tracing_subscriber::registry()
        .with(ContextLayer::new())
        .with(pretty);
    tracing::subscriber::with_default(subscriber, log);
    let text = capture.text();
    assert!(!text.contains(LEAK), "{text}");
    assert!(
        text.contains(
            r#"event_cfg="{\"db\":{\"host\":\"db.internal\",\"password\":\"[redacted]\"}"#
        ),
        "{text}"
    );
}

// ==== U+2028 and U+2029 ====

/// The raw UTF-8 of U+2028 and U+2029.
fn has_raw_separator(bytes: &[u8]) -> bool {
    bytes
        .windows(3)
        .any(|w| w == [0xe2, 0x80, 0xa8] || w == [0xe2, 0x80, 0xa9])
}

#[test]
fn line_and_paragraph_separators_are_escaped_everywhere_in_a_line() {
    const LS: &str = "a\u{2028}b\u{2029}c";
    for preset in Preset::ALL {
        let capture = Capture::new();
        let subscriber = tracing_subscriber::registry()
            .with(ContextLayer::new())
            .with(
                JsonLayer::builder()
                    .schema(Schema::builder(preset).static_field("svc", LS))
                    .with_writer(capture.clone())
                    .build(),
            );
        tracing::subscriber::with_default(subscriber, || {
            let _span = info_span!(
                "request",
                span_str = LS,
                span_json = spanline_core::json(json!({ (LS): [LS] }))
            )
            .entered();
            spanline_core::set(LS, LS).unwrap();
            spanline_core::set("raw", spanline_core::RawJson(&format!("\"{LS}\""))).unwrap();
            spanline_core::with_event_context(&[("overlay", &format!("[\"{LS}\"]"))], || {
                info!(
                    value = LS,
                    debug = ?LS,
                    json = spanline_core::json(json!({ (LS): {"k": LS}})),
                    text = ?spanline_core::JsonText::new(&format!("{{\"{LS}\":\"{LS}\"}}")).unwrap(),
                    "message {LS}"
                );
            });
        });
        let bytes = capture.text().into_bytes();
        assert!(!has_raw_separator(&bytes), "{preset:?}: {}", capture.text());
        let text = capture.text();
        assert!(text.contains(r"a\u2028b\u2029c"), "{preset:?}: {text}");
        // Escaped, the same characters: the line reads back as they were.
        let line = &capture.json_lines()[0];
        let all = Value::Object(line.clone()).to_string();
        assert!(all.contains(LS), "{preset:?}: {all}");
    }
}
