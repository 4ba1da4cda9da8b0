//! Writing records: the event hot path writes an `ev` record straight into
//! a buffer; everything else builds a [`Record`](super::Record) and lets
//! serde write it. Field values go through core's [`JsonFields`], the same
//! writer as every spanline line; a test pins both forms to one reading.

use serde_json::{Map, Value};
use spanline_core::{JsonFields, NonFinite, NumberPolicy};
use tracing_core::{Event, Level};

/// Numbers on the wire: exact integers, and non-finite floats as strings
/// (`"NaN"`, `"inf"`, `"-inf"`): JSON has no NaN, and a `null` could not
/// be told apart from a missing value when the parent re-emits the event.
pub(crate) fn numbers() -> NumberPolicy {
    NumberPolicy {
        non_finite: NonFinite::String,
        ..NumberPolicy::default()
    }
}

/// Writes an `ev` record, as `Record::Ev` would serialize, without building
/// it: the forwarding hot path.
pub(crate) fn encode_event(
    buf: &mut Vec<u8>,
    pid: u32,
    now: spanline_core::Timestamp,
    span: Option<u64>,
    event: &Event<'_>,
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
    event.record(&mut JsonFields::new(buf, numbers()));
    buf.extend_from_slice(b"}}\n");
}

/// Fields recorded by `record`, as a JSON map (the slow path and spans).
pub(crate) fn fields_map(record: impl FnOnce(&mut JsonFields<'_>)) -> Map<String, Value> {
    let mut buf = vec![b'{'];
    record(&mut JsonFields::new(&mut buf, numbers()));
    buf.push(b'}');
    // The writer's output is valid JSON; a map that did not parse would be
    // a bug, and an empty map is the safe rendering of it.
    serde_json::from_slice(&buf).unwrap_or_default()
}

pub(crate) fn level_name(level: &Level) -> String {
    level.as_str().to_string()
}
