//! A line as the page shows it, read here once by spanline-json's reader
//! (`Record`), so the page holds no mapping of keys or level words of its
//! own: adding a preset changes what the page shows without a line of
//! JavaScript.

use serde_json::{json, Value};
use spanline_json::read::Record;
use spanline_json::Query;

/// The `line` event's data: the line as it came (`raw`), and as read: its
/// time (`ms` since the epoch, and `time` as written), `level` (`TRACE` ...
/// `CRITICAL`, or null), `message`, `target`, `fields` (`[key, value]` in
/// the line's order, without error chains' keys), `errors` (`[key,
/// [message, cause, ...]]`) and `end` (the publisher's mark of a job's end).
/// A line that is not a JSON object is its own message. `None` when
/// `query` does not match the line (a line that is not JSON matches no
/// query).
pub(crate) fn for_page(line: &str, query: Option<&Query>) -> Option<String> {
    let Some(record) = Record::read(line) else {
        return query
            .is_none()
            .then(|| json!({ "raw": line, "message": line }).to_string());
    };
    if query.is_some_and(|q| !q.matches(&record)) {
        return None;
    }
    let ms = record.time.map(|t| t.unix_millis());
    let end = record.target == "spanline::job" && record.get("job_end") == Some(&Value::Bool(true));
    let fields: Vec<&(String, Value)> = record
        .fields
        .iter()
        .filter(|(key, _)| !record.errors.iter().any(|(k, _)| k == key))
        .collect();
    json!({
        "raw": line,
        "ms": ms,
        "time": record.time_text,
        "level": record.level.map(|l| l.name().to_ascii_uppercase()),
        "message": record.message,
        "target": record.target,
        "fields": fields,
        "errors": record.errors,
        "end": end,
    })
    .to_string()
    .into()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is a failure report

    use super::*;

    #[test]
    fn every_shape_reads_the_same_for_the_page() {
        let bunyan = r#"{"v":0,"name":"svc","time":"2026-12-06T10:00:00.250Z","level":40,"msg":"slow","n":1}"#;
        let ecs = r#"{"@timestamp":"2026-12-06T10:00:00.250Z","log.level":"warn","message":"slow","log.logger":"svc","n":1}"#;
        for line in [bunyan, ecs] {
            let page: Value = serde_json::from_str(&for_page(line, None).unwrap()).unwrap();
            assert_eq!(page["level"], "WARN", "{page}");
            assert_eq!(page["message"], "slow");
            assert_eq!(page["ms"], 1_796_551_200_250_i64);
            assert_eq!(page["raw"], line);
            assert!(
                page["fields"]
                    .as_array()
                    .unwrap()
                    .contains(&json!(["n", 1])),
                "{page}"
            );
        }
        let chain = r#"{"level":"ERROR","message":"failed","error":"query failed","error_sources":["timeout"]}"#;
        let page: Value = serde_json::from_str(&for_page(chain, None).unwrap()).unwrap();
        assert_eq!(
            page["errors"],
            json!([["error", ["query failed", "timeout"]]])
        );
        assert_eq!(
            page["fields"],
            json!([]),
            "the chain's keys are not fields too"
        );
        let end = r#"{"level":"INFO","message":"job ended","target":"spanline::job","job_id":"j","job_end":true}"#;
        assert_eq!(
            serde_json::from_str::<Value>(&for_page(end, None).unwrap()).unwrap()["end"],
            true
        );
        let text: Value = serde_json::from_str(&for_page("not json", None).unwrap()).unwrap();
        let query = Query::parse("level>=error").unwrap();
        assert!(for_page(chain, Some(&query)).is_some());
        assert!(
            for_page(bunyan, Some(&query)).is_none(),
            "only matches travel"
        );
        assert!(for_page("not json", Some(&query)).is_none());
        assert_eq!(
            (text["raw"].as_str(), text["message"].as_str()),
            (Some("not json"), Some("not json"))
        );
    }
}
