//! The reader against the writer: for every preset, random events written
//! through a `LineLayer` read back (spanline-core's `Record::read`) as the
//! same record: time to the preset's precision, level, message, target,
//! context and event fields (by their own names, whatever the preset calls
//! them), and the error chain.

#![allow(clippy::unwrap_used)] // test code: a panic is a failure report

use std::sync::{Arc, Mutex};

use proptest::prelude::*;
use serde_json::{json, Value};
use spanline_core::{sink_fn, Clock, ContextLayer, LineLayer, Preset, Schema, Timestamp};
use spanline_json::read::{Level, Record};
use tracing_subscriber::prelude::*;

#[derive(Debug)]
struct Failure {
    message: String,
    cause: Option<Box<Failure>>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause.as_deref().map(|c| c as _)
    }
}

#[derive(Clone, Debug)]
struct Written {
    level: tracing::Level,
    message: String,
    note: String,
    n: i64,
    ok: bool,
    request_id: String,
    user_id: u64,
    error: Option<(String, String)>,
    secs: i64,
    nanos: u32,
}

fn written() -> impl Strategy<Value = Written> {
    (
        prop_oneof![
            Just(tracing::Level::TRACE),
            Just(tracing::Level::DEBUG),
            Just(tracing::Level::INFO),
            Just(tracing::Level::WARN),
            Just(tracing::Level::ERROR),
        ],
        "\\PC{0,40}",
        "\\PC{0,40}",
        any::<i64>().prop_map(|n| n % (1 << 53)),
        any::<bool>(),
        "[a-z0-9-]{1,20}",
        0..(1u64 << 53),
        proptest::option::of(("[a-z][a-z ]{0,20}", "[a-z][a-z ]{0,20}")),
        1_000_000_000i64..4_000_000_000,
        0u32..1_000_000_000,
    )
        .prop_map(
            |(level, message, note, n, ok, request_id, user_id, error, secs, nanos)| Written {
                level,
                message,
                note,
                n,
                ok,
                request_id,
                user_id,
                error,
                secs,
                nanos,
            },
        )
}

/// Writes `w` as one line of `preset`.
fn write(preset: Preset, w: &Written) -> String {
    let at = Timestamp::from_unix(w.secs, w.nanos);
    let schema = Schema::builder(preset).clock(Clock::fixed(at)).build();
    let lines = Arc::new(Mutex::new(Vec::<u8>::new()));
    let sink = {
        let lines = lines.clone();
        sink_fn(move |line, _| lines.lock().unwrap().extend_from_slice(line))
    };
    let subscriber = tracing_subscriber::registry()
        .with(ContextLayer::new())
        .with(LineLayer::new(schema, sink));
    let error = w.error.as_ref().map(|(message, cause)| Failure {
        message: message.clone(),
        cause: Some(Box::new(Failure {
            message: cause.clone(),
            cause: None,
        })),
    });
    tracing::subscriber::with_default(subscriber, || {
        let _request = tracing::info_span!(
            "request",
            request_id = w.request_id.as_str(),
            user_id = w.user_id
        )
        .entered();
        let error = error.as_ref().map(|e| e as &dyn std::error::Error);
        macro_rules! at_level {
            ($level:expr) => {
                tracing::event!(
                    $level,
                    note = w.note.as_str(),
                    n = w.n,
                    ok = w.ok,
                    error,
                    "{}",
                    w.message
                )
            };
        }
        match w.level {
            tracing::Level::TRACE => at_level!(tracing::Level::TRACE),
            tracing::Level::DEBUG => at_level!(tracing::Level::DEBUG),
            tracing::Level::INFO => at_level!(tracing::Level::INFO),
            tracing::Level::WARN => at_level!(tracing::Level::WARN),
            _ => at_level!(tracing::Level::ERROR),
        }
    });
    let lines = lines.lock().unwrap();
    String::from_utf8(lines.clone()).unwrap()
}

fn check(preset: Preset, w: &Written) -> Result<(), TestCaseError> {
    let line = write(preset, w);
    let record =
        Record::read(&line).ok_or_else(|| TestCaseError::fail(format!("unread: {line}")))?;
    let whole = |r: &Record, key: &str| r.get(key).cloned();
    // structlog and Cloud Logging have no TRACE: their writers say DEBUG.
    let level = match (preset, Level::from(w.level)) {
        (Preset::Structlog | Preset::Gcp, Level::Trace) => Level::Debug,
        (_, level) => level,
    };
    prop_assert_eq!(record.level, Some(level), "{}", line);
    prop_assert_eq!(&record.message, &w.message, "{}", line);
    prop_assert_eq!(&record.target, module_path!(), "{}", line);
    // Time, to the preset's precision (milliseconds or microseconds).
    let time = record
        .time
        .ok_or_else(|| TestCaseError::fail(format!("no time: {line}")))?;
    prop_assert_eq!(time.unix_secs(), w.secs, "{}", line);
    let precision = match preset {
        Preset::Bunyan | Preset::Ecs => 1_000_000,
        _ => 1_000,
    };
    prop_assert_eq!(
        time.subsec_nanos(),
        w.nanos / precision * precision,
        "{}",
        line
    );
    // Event and context fields, by their own names.
    prop_assert_eq!(whole(&record, "note"), Some(json!(w.note)), "{}", line);
    prop_assert_eq!(whole(&record, "n"), Some(json!(w.n)), "{}", line);
    prop_assert_eq!(whole(&record, "ok"), Some(json!(w.ok)), "{}", line);
    prop_assert_eq!(
        whole(&record, "request_id"),
        Some(json!(w.request_id)),
        "{}",
        line
    );
    prop_assert_eq!(
        whole(&record, "user_id"),
        Some(json!(w.user_id)),
        "{}",
        line
    );
    // The error chain: one, with the error and its cause in it.
    match &w.error {
        Some((message, cause)) => {
            prop_assert_eq!(record.errors.len(), 1, "{}", line);
            let chain = record.errors[0].1.join("\n");
            prop_assert!(
                chain.contains(message.as_str()) && chain.contains(cause.as_str()),
                "{}",
                line
            );
        }
        None => prop_assert!(record.errors.is_empty(), "{}", line),
    }
    // No key is read twice: the reserved keys are not fields too. (A
    // string field written with the message's text may hold it.)
    let same_text = |key: &str| match key {
        "note" => w.note == w.message,
        "request_id" => w.request_id == w.message,
        _ => false,
    };
    for (key, value) in &record.fields {
        prop_assert!(
            value != &Value::String(w.message.clone()) || same_text(key),
            "{} in {}",
            key,
            line
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_preset_reads_back_as_written(w in written()) {
        for preset in Preset::ALL {
            check(preset, &w)?;
        }
    }
}
