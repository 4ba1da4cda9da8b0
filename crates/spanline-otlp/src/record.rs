//! One line, read back, as an OpenTelemetry LogRecord: the time, the
//! severity, the message as the body, the trace and span ids, and every
//! other field (context and event alike) as an attribute.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, Severity};
use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry::Key;
use opentelemetry_sdk::logs::{SdkLogRecord, SdkLogger};
use serde_json::Value;
use spanline_json::read::{Level, Record};

/// The record for one line (without its newline). A line that is not a
/// JSON object (never one of spanline's) becomes a record whose body is
/// the text.
pub(crate) fn to_record(line: &[u8], logger: &SdkLogger) -> SdkLogRecord {
    let mut out = logger.create_log_record();
    out.set_observed_timestamp(SystemTime::now());
    let text = String::from_utf8_lossy(line);
    let Some(record) = Record::read(&text) else {
        out.set_body(AnyValue::String(text.into_owned().into()));
        return out;
    };
    if let Some(time) = record.time {
        let since = Duration::new(time.unix_secs().max(0).unsigned_abs(), time.subsec_nanos());
        out.set_timestamp(UNIX_EPOCH + since);
    }
    if let Some(level) = record.level {
        let (number, text) = severity(level);
        out.set_severity_number(number);
        out.set_severity_text(text);
    }
    if !record.message.is_empty() {
        out.set_body(AnyValue::String(record.message.clone().into()));
    }
    if !record.target.is_empty() {
        out.set_target(record.target.clone());
    }
    let ids = ids(&record);
    if let Some((trace_id, span_id)) = ids {
        out.set_trace_context(trace_id, span_id, None);
    }
    for (key, value) in record.fields {
        // The ids are the record's own fields, not attributes too.
        if ids.is_some() && is_id_key(&key) {
            continue;
        }
        if let Some(value) = any_value(value) {
            out.add_attribute(Key::new(key), value);
        }
    }
    // Error chains, taken out of the fields by the reader: the error's
    // message under its key (when the line's own value went with the
    // chain: structlog's `exception`, ECS's `error.stack_trace`) and its
    // causes, outermost first, under `{key}_sources`, as spanline writes
    // them.
    for (key, mut chain) in record.errors {
        if chain.is_empty() {
            continue;
        }
        let causes = chain.split_off(1);
        if !out.attributes_iter().any(|(k, _)| k.as_str() == key) {
            let message = chain.pop().unwrap_or_default();
            out.add_attribute(Key::new(key.clone()), AnyValue::String(message.into()));
        }
        if !causes.is_empty() {
            let causes = causes.into_iter().map(|c| AnyValue::String(c.into()));
            out.add_attribute(
                Key::new(format!("{key}_sources")),
                AnyValue::ListAny(Box::new(causes.collect())),
            );
        }
    }
    out
}

/// OpenTelemetry's severity for a level: the first number of its range.
fn severity(level: Level) -> (Severity, &'static str) {
    match level {
        Level::Trace => (Severity::Trace, "TRACE"),
        Level::Debug => (Severity::Debug, "DEBUG"),
        Level::Info => (Severity::Info, "INFO"),
        Level::Warn => (Severity::Warn, "WARN"),
        Level::Error => (Severity::Error, "ERROR"),
        Level::Critical => (Severity::Fatal, "FATAL"),
    }
}

fn is_id_key(key: &str) -> bool {
    matches!(key, "trace_id" | "span_id" | "trace.id" | "span.id")
}

/// The line's trace and span ids, when both are there and valid (32 and
/// 16 hex digits, not all zero).
fn ids(record: &Record) -> Option<(TraceId, SpanId)> {
    let trace = record.get("trace_id")?.as_str()?;
    let span = record.get("span_id")?.as_str()?;
    if trace.len() != 32 || span.len() != 16 {
        return None;
    }
    let trace = TraceId::from_hex(trace).ok()?;
    let span = SpanId::from_hex(span).ok()?;
    (trace != TraceId::INVALID && span != SpanId::INVALID).then_some((trace, span))
}

/// A JSON value as an attribute value; `null` has none.
fn any_value(value: Value) -> Option<AnyValue> {
    Some(match value {
        Value::Null => return None,
        Value::Bool(b) => AnyValue::Boolean(b),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => AnyValue::Int(i),
            // Beyond i64: as written, rather than rounded.
            _ if n.is_u64() => AnyValue::String(n.to_string().into()),
            (None, Some(f)) => AnyValue::Double(f),
            (None, None) => AnyValue::String(n.to_string().into()),
        },
        Value::String(s) => AnyValue::String(s.into()),
        Value::Array(items) => {
            AnyValue::ListAny(Box::new(items.into_iter().filter_map(any_value).collect()))
        }
        Value::Object(map) => AnyValue::Map(Box::new(
            map.into_iter()
                .filter_map(|(k, v)| Some((Key::new(k), any_value(v)?)))
                .collect(),
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::logs::LoggerProvider as _;
    use opentelemetry_sdk::logs::SdkLoggerProvider;

    fn read(line: &str) -> SdkLogRecord {
        let provider = SdkLoggerProvider::builder().build();
        to_record(line.as_bytes(), &provider.logger("test"))
    }

    fn attr(record: &SdkLogRecord, key: &str) -> Option<AnyValue> {
        record
            .attributes_iter()
            .find(|(k, _)| k.as_str() == key)
            .map(|(_, v)| v.clone())
    }

    #[test]
    fn a_line_becomes_a_record_with_its_severity_body_ids_and_fields() {
        let record = read(concat!(
            r#"{"timestamp":"2026-12-07T10:00:00.250Z","level":"warn","message":"slow","target":"app::db","#,
            r#""request_id":"r-1","n":3,"ok":true,"ratio":0.5,"tags":["a",1],"user":{"id":7},"gone":null,"#,
            r#""trace_id":"0af7651916cd43dd8448eb211c80319c","span_id":"b7ad6b7169203331"}"#
        ));
        assert_eq!(record.severity_number(), Some(Severity::Warn));
        assert_eq!(record.severity_text(), Some("WARN"));
        assert_eq!(record.body(), Some(&AnyValue::String("slow".into())));
        assert_eq!(record.target().map(|t| t.as_ref()), Some("app::db"));
        let since = record
            .timestamp()
            .unwrap()
            .duration_since(UNIX_EPOCH)
            .unwrap();
        assert_eq!(since.subsec_millis(), 250);
        let ids = record.trace_context().unwrap();
        assert_eq!(ids.trace_id.to_string(), "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(ids.span_id.to_string(), "b7ad6b7169203331");
        assert_eq!(
            attr(&record, "request_id"),
            Some(AnyValue::String("r-1".into()))
        );
        assert_eq!(attr(&record, "n"), Some(AnyValue::Int(3)));
        assert_eq!(attr(&record, "ok"), Some(AnyValue::Boolean(true)));
        assert_eq!(attr(&record, "ratio"), Some(AnyValue::Double(0.5)));
        assert!(matches!(attr(&record, "tags"), Some(AnyValue::ListAny(l)) if l.len() == 2));
        assert!(matches!(attr(&record, "user"), Some(AnyValue::Map(m)) if m.len() == 1));
        assert_eq!(attr(&record, "gone"), None, "null has no attribute value");
        assert_eq!(
            attr(&record, "trace_id"),
            None,
            "the ids are the record's own"
        );
        assert_eq!(attr(&record, "level"), None);
    }

    #[test]
    fn invalid_ids_stay_attributes_and_other_shapes_are_read() {
        let record = read(
            r#"{"event":"boom","level":"error","logger":"svc","trace_id":"xyz","span_id":"00"}"#,
        );
        assert!(record.trace_context().is_none());
        assert_eq!(
            attr(&record, "trace_id"),
            Some(AnyValue::String("xyz".into()))
        );
        assert_eq!(record.severity_number(), Some(Severity::Error));
        assert_eq!(
            record.body(),
            Some(&AnyValue::String("boom".into())),
            "structlog's event"
        );
        let big = read(r#"{"message":"m","n":18446744073709551615}"#);
        assert_eq!(
            attr(&big, "n"),
            Some(AnyValue::String("18446744073709551615".into()))
        );
    }

    #[test]
    fn error_causes_and_lines_that_are_not_json() {
        let record =
            read(r#"{"message":"failed","error":"outer","error_sources":["middle","root"]}"#);
        assert_eq!(
            attr(&record, "error"),
            Some(AnyValue::String("outer".into()))
        );
        let Some(AnyValue::ListAny(causes)) = attr(&record, "error_sources") else {
            panic!("no causes")
        };
        assert_eq!(causes.len(), 2);
        let structlog = read(concat!(
            r#"{"event":"failed","level":"error","#,
            r#""exception":"Traceback (most recent call last):\nValueError: boom"}"#
        ));
        assert!(
            attr(&structlog, "exception").is_some(),
            "the error's own key stays"
        );
        let ecs = read(concat!(
            r#"{"message":"failed","log.level":"error","error.message":"outer","#,
            r#""error.stack_trace":"outer\n\nCaused by:\n    root"}"#
        ));
        assert_eq!(
            attr(&ecs, "error.message"),
            Some(AnyValue::String("outer".into()))
        );
        assert!(
            attr(&ecs, "error.stack_trace").is_some(),
            "{:?}",
            ecs.attributes_iter().collect::<Vec<_>>()
        );
        let raw = read("not json \u{1b}[31m");
        assert_eq!(
            raw.body(),
            Some(&AnyValue::String("not json \u{1b}[31m".into()))
        );
    }
}
