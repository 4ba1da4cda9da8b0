//! Reading a JSON line of any shape into a [`PrettyLine`]: the spanline
//! presets and other producers (pino, bunyan, structlog, ECS, GCP), for
//! the CLI's `spanline pretty` and `spanline tail`. The layer never reads
//! lines; it renders its own events.

use crate::read::{Level, Record};

use super::PrettyLine;

impl PrettyLine {
    /// Reads a JSON line of any spanline preset (flat, structlog, bunyan,
    /// gcp, ecs, nested) or from elsewhere (pino's epoch milliseconds), as
    /// well as it can, keeping the line's key order; nested objects become
    /// dotted pairs (`http.status=200`). `None` when the text is not a JSON
    /// object. The reading is spanline-core's [`Record`]; this only lays
    /// it out.
    ///
    /// ```
    /// let line = spanline_json::PrettyLine::from_json(r#"{"time":"2026-11-21T20:52:49.633Z","level":40,"msg":"slow","name":"svc"}"#).unwrap();
    /// assert_eq!((line.level.as_str(), line.message.as_str()), ("warning", "slow"));
    /// assert!(spanline_json::PrettyLine::from_json("not json").is_none());
    /// ```
    pub fn from_json(text: &str) -> Option<Self> {
        Record::read(text).map(|record| PrettyLine::from_record(&record))
    }

    /// Lays out a line already read.
    ///
    /// ```
    /// let record = spanline_json::read::Record::read(r#"{"level":"INFO","message":"hi","n":1}"#).unwrap();
    /// let line = spanline_json::PrettyLine::from_record(&record);
    /// assert_eq!((line.level.as_str(), line.pairs[0].1.as_str()), ("info", "1"));
    /// ```
    pub fn from_record(record: &Record) -> Self {
        let timestamp = match record.time {
            // The line's own text, cut to the second, keeps its zone.
            Some(_) if record.time_text.contains('-') => human_time(&record.time_text),
            Some(t) => {
                let mut buf = Vec::with_capacity(19);
                t.write_human(&mut buf);
                String::from_utf8_lossy(&buf).into_owned()
            }
            None => human_time(&record.time_text),
        };
        let mut line = PrettyLine {
            timestamp,
            level: record.level.map(level_word).unwrap_or_default(),
            message: record.message.clone(),
            target: record.target.clone(),
            time: record.time,
            errors: record.errors.clone(),
            ..PrettyLine::default()
        };
        for (key, value) in &record.fields {
            push_value(&mut line.pairs, key.clone(), value, 0);
        }
        line
    }
}

/// A pair per scalar: objects become dotted keys (to a depth of 8, then
/// JSON), arrays of scalars `[a,b,3]`, other arrays JSON.
fn push_value(
    pairs: &mut Vec<(String, String)>,
    key: String,
    value: &serde_json::Value,
    depth: usize,
) {
    match value {
        serde_json::Value::Object(map) if !map.is_empty() && depth < 8 => {
            for (k, v) in map {
                push_value(pairs, format!("{key}.{k}"), v, depth + 1);
            }
        }
        serde_json::Value::Array(items)
            if items.iter().all(|v| !v.is_object() && !v.is_array()) =>
        {
            let items: Vec<String> = items.iter().map(text_of).collect();
            pairs.push((key, format!("[{}]", items.join(","))));
        }
        other => pairs.push((key, text_of(other))),
    }
}

/// The console's word for a level: structlog's (`warning`).
fn level_word(level: Level) -> String {
    match level {
        Level::Warn => "warning".to_string(),
        other => other.name().to_string(),
    }
}

/// Strings without quotes, everything else as JSON.
fn text_of(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `2026-11-21T20:52:49.633Z` as `2026-11-21 20:52:49`; anything else as is.
fn human_time(ts: &str) -> String {
    // Only an ASCII date and time is cut: slicing a `str` inside a
    // multi-byte character would panic.
    match (ts.get(..10), ts.get(11..19)) {
        (Some(date), Some(time))
            if ts.as_bytes()[10] == b'T'
                && date.as_bytes()[4] == b'-'
                && time.as_bytes()[2] == b':' =>
        {
            format!("{date} {time}")
        }
        _ => ts.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is a failure report

    use super::*;

    fn keys(line: &PrettyLine) -> Vec<&str> {
        line.pairs.iter().map(|(k, _)| k.as_str()).collect()
    }

    #[test]
    fn pairs_keep_the_line_s_key_order() {
        let line = PrettyLine::from_json(
            r#"{"service":"api","timestamp":"2026-12-02T10:00:00Z","level":"INFO","message":"m","target":"t","a":1,"b":2,"c":3,"request_id":"r"}"#,
        )
        .unwrap();
        assert_eq!(keys(&line), ["service", "a", "b", "c", "request_id"]);
        // The nested preset: the event's fields in their order, then the rest.
        let nested = PrettyLine::from_json(
            r#"{"timestamp":"2026-12-02T10:00:00Z","level":"INFO","fields":{"message":"m","z":1,"y":2},"target":"t","x":3}"#,
        )
        .unwrap();
        assert_eq!(keys(&nested), ["x", "z", "y"]);
    }

    #[test]
    fn nested_objects_are_dotted_pairs_and_arrays_are_readable() {
        let line = PrettyLine::from_json(
            r#"{"level":"INFO","message":"m","http":{"method":"GET","status":200,"headers":{"accept":"*/*"}},"tags":["a","b",3],"matrix":[[1,2]],"empty":{}}"#,
        )
        .unwrap();
        let rendered = line.render(false);
        assert!(
            rendered.contains("http.method=GET http.status=200 http.headers.accept=*/* tags=[a,b,3] matrix=[[1,2]] empty={}"),
            "{rendered}"
        );
    }

    #[test]
    fn epoch_times_show_as_dates() {
        let pino =
            PrettyLine::from_json(r#"{"time":1796216401500,"level":30,"msg":"hi"}"#).unwrap();
        assert_eq!(pino.timestamp, "2026-12-02 13:00:01");
        assert_eq!(pino.level, "info");
    }
}
