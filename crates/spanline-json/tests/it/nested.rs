//! `Preset::Nested` against tracing-subscriber's own JSON formatter
//! (`fmt().json()`, default options), on the cases of its test module
//! (`src/fmt/format/json.rs`) and the edge cases of the review: each event
//! runs under both, and the parsed lines (timestamps aside) must be equal,
//! or differ exactly as docs/presets.md says ("Nested against
//! tracing-subscriber").

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use serde_json::{json, Value};
use spanline_core::{Preset, Schema};
use spanline_testkit::Capture;
use tracing::{field, info, info_span};

/// The lines of `case` under tracing-subscriber's JSON formatter, then
/// under spanline's Nested preset; timestamps removed.
fn both(source_location: bool, case: impl Fn()) -> (Vec<Value>, Vec<Value>) {
    let theirs = Capture::new();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_file(source_location)
        .with_line_number(source_location)
        .with_writer(theirs.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, &case);
    (parse(&theirs), spanline_lines(source_location, case))
}

fn spanline_lines(source_location: bool, case: impl Fn()) -> Vec<Value> {
    let schema = Schema::builder(Preset::Nested).with_source_location(source_location);
    spanline_testkit::capture_json_with(schema, case)
        .into_iter()
        .map(without_timestamp)
        .collect()
}

fn without_timestamp(mut line: serde_json::Map<String, Value>) -> Value {
    assert!(line.remove("timestamp").is_some());
    Value::Object(line)
}

fn parse(capture: &Capture) -> Vec<Value> {
    capture
        .json_lines()
        .into_iter()
        .map(without_timestamp)
        .collect()
}

fn same(case: impl Fn()) {
    let (theirs, ours) = both(false, case);
    assert!(!theirs.is_empty());
    assert_eq!(ours, theirs, "ours, then tracing-subscriber's");
}

#[test]
fn tracing_subscribers_json_test() {
    // `json`: bytes in a span are the one difference (see `bytes`).
    let (theirs, ours) = both(false, || {
        let span = info_span!("json_span", answer = 42, number = 3, slice = &b"abc"[..]);
        let _guard = span.enter();
        info!("some json test");
    });
    let (mut theirs, mut ours) = (theirs[0].clone(), ours[0].clone());
    assert_eq!(theirs["span"]["slice"], json!([97, 98, 99]));
    assert_eq!(ours["span"]["slice"], "616263");
    for line in [&mut theirs, &mut ours] {
        line["span"].as_object_mut().unwrap().remove("slice");
        line["spans"][0].as_object_mut().unwrap().remove("slice");
    }
    assert_eq!(ours, theirs);
}

#[test]
fn tracing_subscribers_file_and_line_tests() {
    // `json_filename` and `json_line_number`: with_source_location(true)
    // is with_file(true) and with_line_number(true).
    let (theirs, ours) = both(true, || {
        let _guard = info_span!("json_span", answer = 42, number = 3).entered();
        info!("some json test");
    });
    assert!(theirs[0]["filename"].is_string() && theirs[0]["line_number"].is_u64());
    assert_eq!(ours, theirs);
}

#[test]
fn tracing_subscribers_nested_span_no_span_and_record_tests() {
    // `json_nested_span`
    same(|| {
        let _a = info_span!("json_span", answer = 42, number = 3).entered();
        let _b = info_span!("nested_json_span", answer = 43, number = 4).entered();
        info!("some json test");
    });
    // `json_no_span`
    same(|| info!("some json test"));
    // `record_works` (tracing-subscriber's issue #707)
    same(|| {
        info!("an event outside the span");
        let span = info_span!("the span", na = field::Empty);
        span.record("na", "value");
        let _guard = span.enter();
        info!("an event inside the span");
    });
}

#[test]
fn the_reviews_cases_that_match() {
    // Deep spans, a span without fields, late and overwritten records.
    same(|| {
        let _a = info_span!("a", n = 1, s = "x", f = 1.5, b = true).entered();
        let _e = info_span!("empty").entered();
        let c = info_span!("c", late = field::Empty, v = 1);
        let _c = c.enter();
        c.record("late", 2);
        c.record("v", "now a string");
        info!("deep");
    });
    // An event without a message, an empty message, a non-string one.
    same(|| {
        info!(a = 1, b = "two");
        info!("");
        info!(message = 42);
    });
    // Debug and Display values, numbers at the edges, escapes, raw names.
    same(|| {
        let _s = info_span!("s", v = ?vec![1, 2], d = %std::net::Ipv4Addr::LOCALHOST).entered();
        info!(
            big = u64::MAX,
            small = i64::MIN,
            nan = f64::NAN,
            one = 1.0,
            q = "\"\\\n\t\u{1}é🎉",
            r#type = "raw",
            v = ?Some("x"),
            "edges"
        );
    });
    // Fields named like the line's own keys stay inside `fields`.
    same(|| {
        info!(
            level = "l",
            target = "t",
            timestamp = "ts",
            span = "s",
            "reserved"
        )
    });
}

/// The differences docs/presets.md lists, each pinned here.
#[test]
fn the_documented_differences() {
    // An error: spanline adds its causes as `error_sources`.
    #[derive(Debug)]
    struct E(Option<Box<E>>);
    impl std::fmt::Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(if self.0.is_some() {
                "query failed"
            } else {
                "timed out"
            })
        }
    }
    impl std::error::Error for E {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.0.as_deref().map(|e| e as _)
        }
    }
    let (theirs, ours) = both(false, || {
        let err = E(Some(Box::new(E(None))));
        info!(error = &err as &dyn std::error::Error, "failed");
    });
    assert_eq!(theirs[0]["fields"]["error"], ours[0]["fields"]["error"]);
    assert!(theirs[0]["fields"].get("error_sources").is_none());
    assert_eq!(ours[0]["fields"]["error_sources"], json!(["timed out"]));

    // Bytes in an event: tracing-subscriber writes their Debug text
    // (`[61 62 63]`, but `[97,98,99]` in a span); spanline hex in both.
    let (theirs, ours) = both(false, || info!(slice = &b"abc"[..], "bytes"));
    assert_eq!(theirs[0]["fields"]["slice"], "[61 62 63]");
    assert_eq!(ours[0]["fields"]["slice"], "616263");

    // A span field called `name`: tracing-subscriber writes `name` twice
    // in the span's object; spanline keeps the field as `fields.name`.
    let theirs = Capture::new();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(theirs.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let _s = info_span!("real", name = "field").entered();
        info!("named");
    });
    assert_eq!(
        theirs.text().matches("\"name\":").count(),
        4,
        "{}",
        theirs.text()
    );
    let ours = spanline_lines(false, || {
        let _s = info_span!("real", name = "field").entered();
        info!("named");
    });
    assert_eq!(
        ours[0]["span"],
        json!({"fields.name": "field", "name": "real"})
    );

    // Explicit parents: spanline's `spans` is the event's own scope;
    // tracing-subscriber's is the entered one's.
    let (theirs, ours) = both(false, || {
        let a = info_span!("a", x = 1);
        let b = info_span!("b", y = 2);
        info!(parent: &b, "explicit, nothing entered");
        let _a = a.enter();
        info!(parent: &b, "explicit, a entered");
        info!(parent: None, "root, a entered");
    });
    let names = |l: &Value| -> Vec<String> {
        l.get("spans")
            .and_then(Value::as_array)
            .map(|s| {
                s.iter()
                    .map(|s| s["name"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(
        [names(&theirs[0]), names(&theirs[1]), names(&theirs[2])],
        [vec![], vec!["a".to_string()], vec!["a".to_string()]]
    );
    assert_eq!(
        [names(&ours[0]), names(&ours[1]), names(&ours[2])],
        [vec!["b".to_string()], vec!["b".to_string()], vec![]]
    );
    assert_eq!(theirs[1]["span"]["name"], "b");
    assert_eq!(
        theirs[2]["span"]["name"], "a",
        "tracing-subscriber ignores parent: None"
    );
    assert!(ours[2].get("span").is_none());
}
