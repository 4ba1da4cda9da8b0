//! Property test: whatever the values and however the spans nest, every line
//! is exactly one JSON object with unique keys, and the expected value wins
//! each key.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::collections::HashMap;
use std::fmt;

use proptest::prelude::*;
use serde_json::{json, Value};
use spanline_testkit::Capture;
use tracing::{info, info_span, Span};
use tracing_subscriber::prelude::*;

/// A span, one of three shapes whose keys collide with each other, with the
/// event's keys and with reserved keys.
#[derive(Debug, Clone)]
enum SpanSpec {
    A { a: String, b: u64 },
    B { b: String, level: f64 },
    C { a: i64, c: String, message: String },
}

#[derive(Debug, Clone)]
enum EventSpec {
    Strings {
        a: String,
        level: String,
        x: f64,
    },
    Numbers {
        b: u64,
        target: i128,
        c: bool,
        text: String,
    },
    Error {
        chain: Vec<String>,
    },
}

fn num(v: f64) -> Value {
    serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
}

impl SpanSpec {
    fn enter(&self) -> Span {
        match self {
            SpanSpec::A { a, b } => info_span!("a", a = a.as_str(), b = *b),
            SpanSpec::B { b, level } => info_span!("b", b = b.as_str(), level = *level),
            SpanSpec::C { a, c, message } => {
                info_span!("c", a = *a, c = c.as_str(), message = message.as_str())
            }
        }
    }

    /// The keys this span writes, as they appear in the line.
    fn expected(&self) -> Vec<(&'static str, Value)> {
        match self {
            SpanSpec::A { a, b } => vec![("a", json!(a)), ("b", json!(b))],
            SpanSpec::B { b, level } => vec![("b", json!(b)), ("fields.level", num(*level))],
            SpanSpec::C { a, c, message } => vec![
                ("a", json!(a)),
                ("c", json!(c)),
                ("fields.message", json!(message)),
            ],
        }
    }
}

fn emit(event: &EventSpec) -> Vec<(&'static str, Value)> {
    match event {
        EventSpec::Strings { a, level, x } => {
            info!(a = a.as_str(), level = level.as_str(), x = *x, "m");
            vec![
                ("a", json!(a)),
                ("fields.level", json!(level)),
                ("x", num(*x)),
            ]
        }
        EventSpec::Numbers { b, target, c, text } => {
            info!(b = *b, target = *target, c = *c, d = ?text, "m");
            // i128 values beyond u64/i64 parse as floats: compare as text.
            vec![
                ("b", json!(b)),
                ("c", json!(c)),
                ("d", json!(format!("{text:?}"))),
                ("fields.target", json!(target.to_string())),
            ]
        }
        EventSpec::Error { chain } => {
            let top = OwnedChain {
                msgs: chain.clone(),
                at: 0,
            };
            info!(err = &top as &dyn std::error::Error, "m");
            // No sources, no `_sources` key: the absent key reads as null.
            let sources = if chain.len() > 1 {
                json!(chain[1..])
            } else {
                Value::Null
            };
            vec![("err", json!(chain[0])), ("err_sources", sources)]
        }
    }
}

#[derive(Debug)]
struct OwnedChain {
    msgs: Vec<String>,
    at: usize,
}
impl fmt::Display for OwnedChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msgs[self.at])
    }
}
impl std::error::Error for OwnedChain {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // Each link is leaked once per generated case: a test-only shortcut
        // for a 'static chain of arbitrary length.
        (self.at + 1 < self.msgs.len()).then(|| {
            let next: &'static OwnedChain = Box::leak(Box::new(OwnedChain {
                msgs: self.msgs.clone(),
                at: self.at + 1,
            }));
            next as &(dyn std::error::Error + 'static)
        })
    }
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[\"\\\\\\n\\r\\t\\u{0}-\\u{1f}\\u{7f}\\u{80}-\\u{9f}\\u{2028}\\u{202e}a-z]{0,12}",
        Just(String::new()),
    ]
}

fn any_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-0.0)
    ]
}

fn span_spec() -> impl Strategy<Value = SpanSpec> {
    prop_oneof![
        (any_text(), any::<u64>()).prop_map(|(a, b)| SpanSpec::A { a, b }),
        (any_text(), any_f64()).prop_map(|(b, level)| SpanSpec::B { b, level }),
        (any::<i64>(), any_text(), any_text()).prop_map(|(a, c, message)| SpanSpec::C {
            a,
            c,
            message
        }),
    ]
}

fn event_spec() -> impl Strategy<Value = EventSpec> {
    prop_oneof![
        (any_text(), any_text(), any_f64()).prop_map(|(a, level, x)| EventSpec::Strings {
            a,
            level,
            x
        }),
        (any::<u64>(), any::<i128>(), any::<bool>(), any_text())
            .prop_map(|(b, target, c, text)| EventSpec::Numbers { b, target, c, text }),
        prop::collection::vec(any_text(), 1..5).prop_map(|chain| EventSpec::Error { chain }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_line_is_one_object_with_unique_keys_and_the_right_winner(
        spans in prop::collection::vec(span_spec(), 0..10),
        event in event_spec(),
    ) {
        let capture = Capture::new();
        let subscriber = spanline_testkit::json_subscriber(&capture);
        let event_keys = tracing::subscriber::with_default(subscriber, || {
            let entered: Vec<_> = spans.iter().map(|s| s.enter().entered()).collect();
            let keys = emit(&event);
            drop(entered);
            keys
        });
        let text = capture.text();
        prop_assert_eq!(text.matches('\n').count(), 1, "one physical line: {}", text);
        let line = spanline_testkit::parse_strict(text.trim_end()).map_err(TestCaseError::fail)?;

        // The model: event fields first, then spans from the nearest out.
        let mut expected: HashMap<&str, Value> = HashMap::new();
        for (k, v) in event_keys {
            expected.entry(k).or_insert(v);
        }
        for span in spans.iter().rev() {
            for (k, v) in span.expected() {
                expected.entry(k).or_insert(v);
            }
        }
        for (key, want) in &expected {
            let got = line.get(*key).cloned().unwrap_or(Value::Null);
            if *key == "fields.target" {
                // A 128-bit integer parses as a float: compare its digits.
                let digits = format!("\"fields.target\":{}", want.as_str().unwrap_or_default());
                prop_assert!(text.contains(&digits), "{} not in {}", digits, text);
            } else {
                prop_assert_eq!(&got, want, "key {} in {}", key, text);
            }
        }
        prop_assert_eq!(&line["message"], "m");
        prop_assert_eq!(&line["level"], "INFO");
    }
}

/// Text rich in what a JSON line must not carry raw: U+2028, U+2029 (the
/// line and paragraph separators), bidi overrides, C1 and C0 controls.
fn separator_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[\\u{2028}\\u{2029}\\u{2027}\\u{202a}-\\u{202f}\\u{85}\"\\\\\\na-zé—]{0,16}",
    ]
}

/// The raw UTF-8 of U+2028 or U+2029.
fn has_raw_separator(bytes: &[u8]) -> bool {
    bytes
        .windows(3)
        .any(|w| w == [0xe2, 0x80, 0xa8] || w == [0xe2, 0x80, 0xa9])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Whatever the text, in the message, a string value, a span field, a
    /// key and value bound with `set`, and the keys and strings of a JSON
    /// value: no raw U+2028 or U+2029 in any preset's line, and the line
    /// reads back to the same text.
    #[test]
    fn no_line_carries_a_raw_line_or_paragraph_separator(
        message in separator_text(),
        value in separator_text(),
        key in separator_text(),
        inner in separator_text(),
        preset in prop::sample::select(spanline_core::Preset::ALL.to_vec()),
    ) {
        let capture = Capture::new();
        let subscriber = tracing_subscriber::registry()
            .with(spanline_core::ContextLayer::new())
            .with(
                spanline_json::JsonLayer::builder()
                    .schema(preset)
                    .with_writer(capture.clone())
                    .build(),
            );
        let bound = format!("k{key}");
        tracing::subscriber::with_default(subscriber, || {
            let _span = info_span!("s", span_value = value.as_str()).entered();
            spanline_core::set(&bound, inner.as_str()).unwrap();
            info!(
                value = value.as_str(),
                cfg = spanline_core::json(json!({ (key.clone()): [inner.clone(), {"x": value.clone()}] })),
                "{message}"
            );
        });
        let text = capture.text();
        prop_assert!(!has_raw_separator(text.as_bytes()), "{:?}", text);
        let line = spanline_testkit::parse_strict(text.trim_end()).map_err(TestCaseError::fail)?;
        let fields = match preset {
            spanline_core::Preset::Nested => line["fields"].as_object().cloned().unwrap_or_default(),
            _ => line.clone(),
        };
        prop_assert_eq!(&fields["cfg"], &json!({ (key.clone()): [inner.clone(), {"x": value.clone()}] }));
        prop_assert_eq!(&fields["value"], &json!(value));
        // The message, under whatever key the preset gives it.
        let message = serde_json::to_string(&message).unwrap();
        prop_assert!(Value::Object(line).to_string().contains(&message), "{}", text);
    }
}
