//! Writing records: the event hot path writes an `ev` record straight into
//! a buffer; everything else builds a [`Record`](super::Record) and lets
//! serde write it. Field values go through core's [`JsonFields`], the same
//! writer as every spanline line; a test pins both forms to one reading.

use serde_json::{Map, Value};
use spanline_core::{JsonFields, NumberPolicy};
use tracing_core::{Event, Level};

/// Numbers on the wire: core's default, as every spanline line writes
/// them: exact integers, and `null` for NaN and the infinities (the parent
/// reads a `null` field as NaN, and writes it under its own policy).
pub(crate) fn numbers() -> NumberPolicy {
    NumberPolicy::default()
}

/// An event's context as the child resolved it, for `Record::Ev`'s `ctx`:
/// the JSON object's pairs (`"key":value,...`, redacted already), written
/// once and copied into the record.
#[derive(Debug, Default)]
pub(crate) struct EventContext(pub(crate) Vec<u8>);

/// Writes an `ev` record, as `Record::Ev` would serialize, without building
/// it: the forwarding hot path.
pub(crate) fn encode_event(
    buf: &mut Vec<u8>,
    (pid, now, span): (u32, spanline_core::Timestamp, Option<u64>),
    event: &Event<'_>,
    context: &EventContext,
    redact: &spanline_core::Redact,
) {
    let meta = event.metadata();
    let mut num = itoa::Buffer::new();
    buf.clear();
    buf.extend_from_slice(b"{\"t\":\"ev\",\"pid\":");
    buf.extend_from_slice(num.format(pid).as_bytes());
    buf.extend_from_slice(b",\"ts\":[");
    buf.extend_from_slice(num.format(now.unix_secs()).as_bytes());
    buf.push(b',');
    buf.extend_from_slice(num.format(now.subsec_nanos()).as_bytes());
    buf.extend_from_slice(b"],\"span\":");
    match span {
        Some(id) => buf.extend_from_slice(num.format(id).as_bytes()),
        None => buf.extend_from_slice(b"null"),
    }
    buf.extend_from_slice(b",\"level\":\"");
    buf.extend_from_slice(meta.level().as_str().as_bytes());
    buf.extend_from_slice(b"\",\"target\":");
    spanline_core::write_str(buf, meta.target());
    if let Some(file) = meta.file() {
        buf.extend_from_slice(b",\"file\":");
        spanline_core::write_str(buf, file);
    }
    if let Some(line) = meta.line() {
        buf.extend_from_slice(b",\"line\":");
        buf.extend_from_slice(num.format(line).as_bytes());
    }
    buf.extend_from_slice(b",\"fields\":{");
    let mut fields = JsonFields::new(buf, numbers())
        .redacting(redact)
        .with_error_types();
    event.record(&mut fields);
    // Only events with errors build the map (the hot path has none).
    let errors = (!fields.error_types().is_empty()).then(|| errors_map(fields.error_types()));
    buf.push(b'}');
    if let Some(errors) = errors {
        buf.extend_from_slice(b",\"errors\":");
        // A map of strings and nulls: serde writes it as the slow path does.
        if serde_json::to_writer(&mut *buf, &errors).is_err() {
            buf.extend_from_slice(b"{}");
        }
    }
    if !context.0.is_empty() {
        buf.extend_from_slice(b",\"ctx\":{");
        buf.extend_from_slice(&context.0);
        buf.push(b'}');
    }
    buf.extend_from_slice(b"}\n");
}

/// `Record::Ev`'s `ctx` (the slow path).
pub(crate) fn context_map(context: &EventContext) -> Map<String, Value> {
    if context.0.is_empty() {
        return Map::new();
    }
    let mut object = Vec::with_capacity(context.0.len() + 2);
    object.push(b'{');
    object.extend_from_slice(&context.0);
    object.push(b'}');
    // Core's JSON is valid; text that did not parse would be a bug, and is
    // left out rather than sent wrong.
    serde_json::from_slice(&object).unwrap_or_default()
}

/// `Record::Ev`'s `errors`: each error field's type names.
fn errors_map(types: &[spanline_core::ErrorTypes]) -> Map<String, Value> {
    types
        .iter()
        .map(|(name, names)| (name.to_string(), Value::from(names.clone())))
        .collect()
}

/// An event's fields and its errors' type names, as JSON maps (the slow
/// path).
pub(crate) fn event_fields_map(
    redact: &spanline_core::Redact,
    event: &Event<'_>,
) -> (Map<String, Value>, Map<String, Value>) {
    let mut buf = vec![b'{'];
    let mut fields = JsonFields::new(&mut buf, numbers())
        .redacting(redact)
        .with_error_types();
    event.record(&mut fields);
    let errors = errors_map(fields.error_types());
    buf.push(b'}');
    // The writer's output is valid JSON; a map that did not parse would be
    // a bug, and an empty map is the safe rendering of it.
    (serde_json::from_slice(&buf).unwrap_or_default(), errors)
}

/// Fields recorded by `record`, as a JSON map (spans).
pub(crate) fn fields_map(
    redact: &spanline_core::Redact,
    record: impl FnOnce(&mut JsonFields<'_>),
) -> Map<String, Value> {
    let mut buf = vec![b'{'];
    record(&mut JsonFields::new(&mut buf, numbers()).redacting(redact));
    buf.push(b'}');
    // The writer's output is valid JSON; a map that did not parse would be
    // a bug, and an empty map is the safe rendering of it.
    serde_json::from_slice(&buf).unwrap_or_default()
}

pub(crate) fn level_name(level: &Level) -> String {
    level.as_str().to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is a failure report

    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
    use tracing_subscriber::registry::LookupSpan;

    use super::*;
    use crate::wire::decode::{FastEvent, FastValue};
    use crate::wire::Record;

    type Pairs = Arc<Mutex<Vec<(Vec<u8>, Vec<u8>)>>>;

    /// Encodes each event both ways: the hot path's bytes and serde's.
    struct Both(Pairs);

    impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Both {
        fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
            let now = spanline_core::Timestamp::from_unix(1_700_000_000, 5);
            let context = ctx
                .event_span(event)
                .map(|s| crate::child::event_context(&ctx, &s.id(), event, &Default::default()))
                .unwrap_or_default();
            let mut fast = Vec::new();
            let head = (7, now, Some(3));
            encode_event(&mut fast, head, event, &context, &Default::default());
            let meta = event.metadata();
            let record = Record::Ev {
                pid: 7,
                ts: (now.unix_secs(), now.subsec_nanos()),
                span: Some(3),
                level: level_name(meta.level()),
                target: meta.target().into(),
                file: meta.file().map(Into::into),
                line: meta.line(),
                fields: event_fields_map(&Default::default(), event).0,
                errors: event_fields_map(&Default::default(), event).1,
                context: context_map(&context),
            };
            let (slow, _) = record.encode(usize::MAX);
            self.0.lock().unwrap().push((fast, slow));
        }
    }

    #[derive(Debug)]
    struct Cause;
    impl std::fmt::Display for Cause {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("disk \"full\"")
        }
    }
    impl std::error::Error for Cause {}

    #[derive(Debug)]
    struct Failed;
    impl std::fmt::Display for Failed {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("write failed")
        }
    }
    impl std::error::Error for Failed {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&Cause)
        }
    }

    /// The fast writer and serde agree, for every kind of field value: both
    /// parse to one `Record`, and the receiver's borrowed reading sees the
    /// same values.
    #[test]
    fn fast_and_serde_records_are_one_record() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry()
            .with(spanline_core::ContextLayer::new())
            .with(Both(seen.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let _job = tracing::info_span!("job", tenant = "acme").entered();
            spanline_core::set("user_id", 42u64).unwrap();
            spanline_core::set("retry", true).unwrap();
            spanline_core::set("note", "a \"quoted\" é\n").unwrap();
            spanline_core::set("tenant", "below the span's").unwrap();
            let error: &(dyn std::error::Error + 'static) = &Failed;
            tracing::info!(
                s = "quote \" backslash \\ newline \n bidi \u{202e} é 😀",
                i = -42i64,
                u = u64::MAX,
                big = u128::MAX,
                neg = i128::MIN,
                f = 1.5f64,
                nan = f64::NAN,
                inf = f64::INFINITY,
                ninf = f64::NEG_INFINITY,
                b = true,
                d = ?vec![1, 2],
                bytes = &b"\x00\xff"[..],
                error,
                "message with \t tab"
            );
            tracing::warn!(only = 1, user_id = "the event's own");
            tracing::error!("");
        });
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 3);
        for (fast, slow) in seen.iter() {
            let a: Record = serde_json::from_slice(fast).unwrap();
            let b: Record = serde_json::from_slice(slow).unwrap();
            assert_eq!(
                a,
                b,
                "\n{}\n{}",
                String::from_utf8_lossy(fast),
                String::from_utf8_lossy(slow)
            );
            // The receiver's fast reading: every field, with its JSON type.
            let event: FastEvent<'_> = serde_json::from_slice(fast).unwrap();
            let Record::Ev {
                fields, context, ..
            } = b
            else {
                unreachable!()
            };
            let read_context: Vec<(&str, Value)> = event
                .context
                .as_pairs()
                .into_iter()
                .map(|(k, v)| (k, serde_json::from_str(v).unwrap()))
                .collect();
            let context: Vec<(&str, Value)> = context
                .iter()
                .map(|(k, v)| (k.as_str(), v.clone()))
                .collect();
            assert_eq!(read_context, context);
            assert_eq!(event.fields.0.len(), fields.len());
            for ((key, raw), (name, value)) in event.fields.0.iter().zip(&fields) {
                assert_eq!(key, name);
                let read = match FastValue::parse(raw.get()) {
                    FastValue::Str(s) => Value::from(s),
                    FastValue::String(s) => Value::from(s),
                    FastValue::I64(n) => Value::from(n),
                    FastValue::U64(n) => Value::from(n),
                    FastValue::F64(n) => Value::from(n),
                    FastValue::Bool(b) => Value::from(b),
                    FastValue::Json(json) => {
                        let text = format!("{json:?}");
                        serde_json::from_str(&text).unwrap()
                    }
                    // Made by the receiver's error rebuilding, never by parse.
                    FastValue::Error(_) | FastValue::Raw(_) => {
                        serde_json::from_str(raw.get()).unwrap()
                    }
                };
                assert_eq!(&read, value, "{name}");
            }
        }
        let first: serde_json::Value = serde_json::from_slice(&seen[0].0).unwrap();
        let fields = &first["fields"];
        assert_eq!(fields["nan"], serde_json::Value::Null);
        assert_eq!(fields["inf"], serde_json::Value::Null);
        assert_eq!(fields["ninf"], serde_json::Value::Null);
        assert_eq!(fields["bytes"], "00ff");
        assert_eq!(fields["error"], "write failed");
        assert_eq!(
            fields["error_sources"],
            serde_json::json!(["disk \"full\""])
        );
        // The type names, beside the fields, so that the parent writes the
        // error in its style.
        assert_eq!(
            first["errors"]["error"],
            serde_json::json!(["Failed", "Cause"])
        );
        assert!(fields.get("error_types").is_none());
        assert_eq!(fields["message"], "message with \t tab");
        // The event's whole context, typed: the span's keys and the bound
        // ones (a bound key a span has a value for shows the span's).
        assert_eq!(
            first["ctx"],
            serde_json::json!({"tenant": "acme", "user_id": 42, "retry": true, "note": "a \"quoted\" é\n"})
        );
        // A key the event has a field of too: the parent writes the field.
        let second: serde_json::Value = serde_json::from_slice(&seen[1].0).unwrap();
        assert_eq!(second["ctx"]["retry"], true);
    }
}
