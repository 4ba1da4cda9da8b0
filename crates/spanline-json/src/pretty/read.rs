//! Reading a JSON line of any shape into a [`PrettyLine`]: the spanline
//! presets and other producers (pino, bunyan, structlog, ECS, GCP), for
//! the CLI's `spanline pretty` and `spanline tail`. The layer never reads
//! lines; it renders its own events.

use super::PrettyLine;

const TIMESTAMP_KEYS: &[&str] = &["timestamp", "time", "@timestamp", "ts"];
const LEVEL_KEYS: &[&str] = &["level", "severity", "log.level", "lvl"];
const LEVEL_WORDS: &[&str] = &[
    "trace", "debug", "info", "warn", "warning", "error", "critical", "fatal", "notice", "default",
];
const MESSAGE_KEYS: &[&str] = &["message", "msg", "event"];
const TARGET_KEYS: &[&str] = &["target", "logger", "log.logger", "name"];

impl PrettyLine {
    /// Reads a JSON line of any spanline preset (flat, structlog, bunyan,
    /// gcp, ecs, nested) or from elsewhere (pino's epoch milliseconds), as
    /// well as it can, keeping the line's key order; nested objects become
    /// dotted pairs (`http.status=200`). `None` when the text is not a JSON
    /// object.
    ///
    /// ```
    /// let line = spanline_json::PrettyLine::from_json(r#"{"time":"2026-11-21T20:52:49.633Z","level":40,"msg":"slow","name":"svc"}"#).unwrap();
    /// assert_eq!((line.level.as_str(), line.message.as_str()), ("warning", "slow"));
    /// assert!(spanline_json::PrettyLine::from_json("not json").is_none());
    /// ```
    pub fn from_json(text: &str) -> Option<Self> {
        let serde_json::Value::Object(mut map) =
            serde_json::from_str::<serde_json::Value>(text.trim()).ok()?
        else {
            return None;
        };
        // Nested (tracing-subscriber's shape): the event's fields are inside.
        if let Some(serde_json::Value::Object(fields)) = map.shift_remove("fields") {
            for (k, v) in fields {
                map.entry(k).or_insert(v);
            }
        }
        // Its span context: the nearest span's fields win, the event's over all.
        map.shift_remove("span");
        if let Some(serde_json::Value::Array(spans)) = map.shift_remove("spans") {
            for span in spans.iter().rev() {
                for (k, v) in span
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(k, _)| *k != "name")
                {
                    map.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        }
        // A user field may be named like another preset's level key (GCP's
        // `severity` beside a user's `level`): take the first that holds a level.
        let is_level = |v: &serde_json::Value| {
            v.is_u64()
                || v.as_str()
                    .is_some_and(|s| LEVEL_WORDS.contains(&s.to_ascii_lowercase().as_str()))
        };
        let level_key = LEVEL_KEYS
            .iter()
            .find(|k| map.get(**k).is_some_and(is_level))
            .copied();
        let mut take = |keys: &[&str]| keys.iter().find_map(|k| map.shift_remove(*k));
        let time_value = take(TIMESTAMP_KEYS);
        let time = time_value.as_ref().and_then(read_time);
        let timestamp = match (&time_value, time) {
            // A number is only a time when it reads as one.
            (Some(serde_json::Value::Number(_)), Some(t)) => {
                let mut buf = Vec::with_capacity(19);
                t.write_human(&mut buf);
                String::from_utf8_lossy(&buf).into_owned()
            }
            (Some(v), _) => human_time(&text_of(v)),
            (None, _) => String::new(),
        };
        let level = level_key
            .and_then(|k| take(&[k]))
            .map(|v| level_word(&v))
            .unwrap_or_default();
        let message = take(MESSAGE_KEYS).map(|v| text_of(&v)).unwrap_or_default();
        let target = take(TARGET_KEYS).map(|v| text_of(&v)).unwrap_or_default();
        let mut line = PrettyLine {
            timestamp,
            level,
            message,
            target,
            time,
            ..PrettyLine::default()
        };
        for (key, value) in &map {
            if let (Some(base), serde_json::Value::Array(causes)) =
                // `_sources`; `.sources` from spanline before 0.1's release.
                (
                    key.strip_suffix("_sources")
                        .or_else(|| key.strip_suffix(".sources")),
                    value,
                )
            {
                let mut chain = vec![map.get(base).map(text_of).unwrap_or_default()];
                chain.extend(causes.iter().map(text_of));
                line.errors.push((base.to_string(), chain));
                continue;
            }
            if let Some(chain) = written_chain(key, value) {
                line.errors.push((key.clone(), chain));
                continue;
            }
            push_value(&mut line.pairs, key.clone(), value, 0);
        }
        Some(line)
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

/// A time from RFC 3339 text (`Z` or an offset, any fraction) or from an
/// epoch number (milliseconds past 10^11, else seconds).
fn read_time(v: &serde_json::Value) -> Option<spanline_core::Timestamp> {
    use spanline_core::Timestamp;
    match v {
        serde_json::Value::Number(n) => {
            let x = n.as_f64()?;
            if !(0.0..1e17).contains(&x) {
                return None;
            }
            let secs = if x >= 1e11 { x / 1000.0 } else { x };
            // Below 10^8 seconds (1973) a number is not a time.
            if secs < 1e8 {
                return None;
            }
            let whole = secs.floor();
            Some(Timestamp::from_unix(
                whole as i64,
                ((secs - whole) * 1e9).round().min(999_999_999.0) as u32,
            ))
        }
        serde_json::Value::String(s) => parse_rfc3339(s),
        _ => None,
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
fn parse_rfc3339(s: &str) -> Option<spanline_core::Timestamp> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = s.get(from..from + len)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut at = 19;
    let mut nanos: u32 = 0;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            if at - start < 9 {
                nanos = nanos * 10 + u32::from(b[at] - b'0');
            }
            at += 1;
        }
        let digits = (at - start).min(9) as u32;
        if digits == 0 {
            return None;
        }
        nanos *= 10u32.pow(9 - digits);
    }
    let offset = match b.get(at)? {
        b'Z' | b'z' if at + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if at + 6 == b.len() && b[at + 3] == b':' => {
            let minutes = num(at + 1, 2)? * 60 + num(at + 4, 2)?;
            if *sign == b'+' {
                minutes * 60
            } else {
                -minutes * 60
            }
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Some(spanline_core::Timestamp::from_unix(secs, nanos))
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

/// An error chain written by the other error styles, outermost first:
/// structlog's `exception` (`format_exc_info`'s text, deepest cause first,
/// or `dict_tracebacks`' list) and ECS's `error.stack_trace` (`Caused by:`
/// lines).
fn written_chain(key: &str, value: &serde_json::Value) -> Option<Vec<String>> {
    const DIRECT_CAUSE: &str =
        "\n\nThe above exception was the direct cause of the following exception:\n\n";
    match (key, value) {
        ("exception", serde_json::Value::String(text)) => {
            Some(text.rsplit(DIRECT_CAUSE).map(str::to_string).collect())
        }
        ("exception", serde_json::Value::Array(links)) => links
            .iter()
            .map(|link| {
                let value = text_of(link.get("exc_value")?);
                Some(match link.get("exc_type").and_then(|t| t.as_str()) {
                    Some(ty) => format!("{ty}: {value}"),
                    None => value,
                })
            })
            .collect(),
        ("error.stack_trace", serde_json::Value::String(text)) => {
            Some(text.split("\nCaused by: ").map(str::to_string).collect())
        }
        _ => None,
    }
}

/// Levels in any preset's form: `INFO`, `info`, `WARNING`, bunyan's 30.
fn level_word(v: &serde_json::Value) -> String {
    if let Some(n) = v.as_u64() {
        return match n {
            0..=10 => "trace",
            11..=20 => "debug",
            21..=30 => "info",
            31..=40 => "warning",
            41..=50 => "error",
            _ => "critical",
        }
        .to_string();
    }
    match text_of(v).to_ascii_lowercase().as_str() {
        "warn" | "warning" => "warning".to_string(),
        "critical" | "fatal" | "emergency" | "alert" => "critical".to_string(),
        other => other.to_string(),
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
    fn times_are_read_from_rfc3339_and_epoch_numbers() {
        let at = |v: &str| {
            read_time(&serde_json::from_str(v).unwrap()).map(|t| (t.unix_secs(), t.subsec_nanos()))
        };
        assert_eq!(at(r#""1970-01-01T00:00:00Z""#), Some((0, 0)));
        assert_eq!(
            at(r#""2026-12-02T13:00:01.5Z""#),
            Some((1_796_216_401, 500_000_000))
        );
        assert_eq!(
            at(r#""2026-12-02T14:00:01.123456789+01:00""#),
            Some((1_796_216_401, 123_456_789))
        );
        assert_eq!(
            at(r#""2026-12-02T08:00:01-05:00""#),
            Some((1_796_216_401, 0))
        );
        // pino's epoch milliseconds, structlog's float seconds.
        assert_eq!(at("1796216401500"), Some((1_796_216_401, 500_000_000)));
        assert_eq!(at("1796216401.25"), Some((1_796_216_401, 250_000_000)));
        for not_a_time in [
            "42",
            "-1",
            r#""yesterday""#,
            r#""2026-13-02T00:00:00Z""#,
            r#""2026-12-02T00:00:00""#,
            r#""2026-12-02T00:00:00.Z""#,
        ] {
            assert_eq!(at(not_a_time), None, "{not_a_time}");
        }
        let pino =
            PrettyLine::from_json(r#"{"time":1796216401500,"level":30,"msg":"hi"}"#).unwrap();
        assert_eq!(pino.timestamp, "2026-12-02 13:00:01");
        assert_eq!(pino.level, "info");
    }
}
