//! What `spanline pretty` and `spanline tail` show of each line: filters
//! (a minimum level, `--where key=value`, a time range), which fields, and
//! how times look. Every line is read once, by spanline-json's reader.

use spanline_core::Timestamp;
use spanline_json::read::{Level, Record};
use spanline_json::{neutralize, PrettyLine, Query};

/// The options both viewers share.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct ViewArgs {
    /// Show only lines the query matches: `level>=warn and user_id=42`,
    /// `http.status>=500`, `tenant in (acme, "big co")`, `not "health
    /// check"`, `target=~^app::db` (docs/query.md).
    #[arg(short = 'q', long = "query", value_name = "QUERY", value_parser = parse_query)]
    query: Option<Query>,
    /// Show only lines at this level or above (trace, debug, info, warn,
    /// error, critical).
    #[arg(long, value_parser = parse_level)]
    level: Option<Level>,
    /// Show only lines whose KEY has VALUE (the message, target, level or any
    /// field; dotted keys reach into nested objects). Repeat to require all.
    #[arg(long = "where", value_name = "KEY=VALUE", value_parser = parse_where)]
    wheres: Vec<(String, String)>,
    /// Show only lines logged before this time: `-15m`, `2h` (that long
    /// ago), `2026-12-06`, `2026-12-06T10:00:00Z`.
    #[arg(long, value_name = "TIME", value_parser = crate::when::parse, allow_hyphen_values = true)]
    until: Option<Timestamp>,
    /// Leave these fields out (a key, or the start of dotted keys: `http`
    /// hides `http.status`). Repeat, or separate with commas.
    #[arg(long, value_name = "KEY", value_delimiter = ',')]
    hide: Vec<String>,
    /// Show only these fields (the time, level, message and target always).
    /// Repeat, or separate with commas.
    #[arg(long, value_name = "KEY", value_delimiter = ',')]
    show: Vec<String>,
    /// Show the fixed keys producers write on every line too (bunyan's `v`,
    /// `hostname` and `pid`, ECS's `ecs.version`), which are hidden.
    #[arg(long)]
    all_fields: bool,
    /// How times are shown: `s` (to the second), `ms`, `us`, or `rfc3339`
    /// (as the line wrote it).
    #[arg(long, value_enum, default_value_t = TimeFormat::S)]
    time_format: TimeFormat,
    /// Show times in the local time zone (TZ, else the system's) instead of UTC.
    #[arg(long)]
    local: bool,
    /// The earliest time shown: each command's own `--since`.
    #[arg(skip)]
    since: Option<Timestamp>,
}

/// How a viewer shows times.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum TimeFormat {
    /// `2026-12-06 10:00:00`.
    #[default]
    S,
    /// `2026-12-06 10:00:00.250`.
    Ms,
    /// `2026-12-06 10:00:00.250123`.
    Us,
    /// As the line wrote it.
    Rfc3339,
}

fn parse_query(text: &str) -> Result<Query, String> {
    Query::parse(text).map_err(|e| e.to_string())
}

fn parse_level(text: &str) -> Result<Level, String> {
    Level::parse(text).ok_or_else(|| {
        format!("unknown level {text:?}: trace, debug, info, warn, error or critical")
    })
}

fn parse_where(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

impl ViewArgs {
    /// These options with the command's `--since`.
    pub(crate) fn since(mut self, since: Option<Timestamp>) -> Self {
        self.since = since;
        self
    }

    /// Whether any filter is set.
    pub(crate) fn filters(&self) -> bool {
        self.query.is_some()
            || self.level.is_some()
            || !self.wheres.is_empty()
            || self.since.is_some()
            || self.until.is_some()
    }

    /// Whether the query drops this line, read only as far as the query
    /// needs (`Query::matches_line`): a filter over a large file reads
    /// most lines no further.
    pub(crate) fn query_drops(&self, line: &str) -> bool {
        self.query
            .as_ref()
            .is_some_and(|q| q.matches_line(line) == Some(false))
    }

    /// Does `record` pass the query, level, time and `--where` filters?
    pub(crate) fn keeps(&self, record: &Record) -> bool {
        if self.query.as_ref().is_some_and(|q| !q.matches(record)) {
            return false;
        }
        if let Some(min) = self.level {
            // A line without a level is shown, as an error would be.
            if record.level.unwrap_or(Level::Error) < min {
                return false;
            }
        }
        if self.since.is_some() || self.until.is_some() {
            // A line without a time cannot be placed in the range.
            let Some(at) = record.time else { return false };
            if self.since.is_some_and(|since| at < since)
                || self.until.is_some_and(|until| at >= until)
            {
                return false;
            }
        }
        self.wheres.iter().all(|(key, value)| match key.as_str() {
            "message" | "msg" => record.message == *value,
            "target" | "logger" => record.target == *value,
            "level" => record.level.is_some() && record.level == Level::parse(value),
            _ => record.text(key).is_some_and(|v| v == *value),
        })
    }

    /// Renders a line, or `None` when a filter drops it. Text that is not a
    /// JSON object is passed through, marked (no filter applies to it).
    pub(crate) fn render(&self, text: &str, ansi: bool) -> Option<String> {
        let Some(record) = Record::read(text) else {
            return (!self.filters()).then(|| format!("[unparsed] {}\n", neutralize(text)));
        };
        self.render_record(&record, ansi)
    }

    /// Renders a line already read, or `None` when a filter drops it.
    pub(crate) fn render_record(&self, record: &Record, ansi: bool) -> Option<String> {
        if !self.keeps(record) {
            return None;
        }
        let mut line = PrettyLine::from_record(record);
        let noise = if self.all_fields {
            &[][..]
        } else {
            noise(record)
        };
        line.pairs.retain(|(key, _)| {
            let under = |k: &String| {
                key == k
                    || key
                        .strip_prefix(k.as_str())
                        .is_some_and(|r| r.starts_with('.'))
            };
            !noise.contains(&key.as_str())
                && !self.hide.iter().any(under)
                && (self.show.is_empty() || self.show.iter().any(under))
        });
        if let Some(at) = record.time {
            line.timestamp = self.time(at, record);
        }
        Some(line.render(ansi))
    }

    /// A line's time as `--time-format` and `--local` say.
    fn time(&self, at: Timestamp, record: &Record) -> String {
        if self.time_format == TimeFormat::Rfc3339 && !record.time_text.is_empty() {
            return record.time_text.clone();
        }
        let mut text = match self.local.then(|| spanline_json::local_time(at)).flatten() {
            Some(local) => local,
            None => {
                let mut buf = Vec::with_capacity(26);
                at.write_human(&mut buf);
                String::from_utf8_lossy(&buf).into_owned()
            }
        };
        match self.time_format {
            TimeFormat::Ms => text.push_str(&format!(".{:03}", at.subsec_nanos() / 1_000_000)),
            TimeFormat::Us => text.push_str(&format!(".{:06}", at.subsec_nanos() / 1_000)),
            TimeFormat::S | TimeFormat::Rfc3339 => {}
        }
        text
    }
}

/// The keys a producer writes on every line, hidden unless asked for:
/// bunyan's `v`, `hostname` and `pid` (a line with `"v":0` beside them),
/// ECS's `ecs.version`.
fn noise(record: &Record) -> &'static [&'static str] {
    let has = |k: &str| record.fields.iter().any(|(key, _)| key == k);
    if record.get("v").is_some_and(|v| v == 0) && has("hostname") && has("pid") {
        &["v", "hostname", "pid"]
    } else if has("ecs.version") {
        &["ecs.version"]
    } else {
        &[]
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is a failure report

    use super::*;

    const LINES: &[&str] = &[
        r#"{"timestamp":"2026-12-02T13:00:00Z","level":"DEBUG","message":"cache miss","user":"ann"}"#,
        r#"{"timestamp":"2026-12-02T13:00:01Z","level":"INFO","message":"login","user":"bob","http":{"status":200}}"#,
        r#"{"timestamp":"2026-12-02T13:00:02.250Z","level":"WARN","message":"slow","user":"ann","http":{"status":503}}"#,
        r#"{"timestamp":"2026-12-02T13:00:03Z","level":"ERROR","message":"failed","user":"cid"}"#,
    ];

    fn shown(view: &ViewArgs) -> Vec<String> {
        LINES
            .iter()
            .filter_map(|l| Record::read(l))
            .filter(|r| view.keeps(r))
            .map(|r| r.message)
            .collect()
    }

    #[test]
    fn a_minimum_level_and_where_filters_choose_lines() {
        let warn = ViewArgs {
            level: Some(parse_level("WARN").unwrap()),
            ..ViewArgs::default()
        };
        assert_eq!(shown(&warn), ["slow", "failed"]);
        let ann = ViewArgs {
            wheres: vec![parse_where("user=ann").unwrap()],
            ..ViewArgs::default()
        };
        assert_eq!(shown(&ann), ["cache miss", "slow"]);
        let both = ViewArgs {
            wheres: vec![
                parse_where("user=ann").unwrap(),
                parse_where("http.status=503").unwrap(),
            ],
            ..ViewArgs::default()
        };
        assert_eq!(shown(&both), ["slow"]);
        let by_level = ViewArgs {
            wheres: vec![parse_where("level=error").unwrap()],
            ..ViewArgs::default()
        };
        assert_eq!(shown(&by_level), ["failed"]);
        assert!(parse_level("loud").is_err());
        assert!(parse_where("novalue").is_err());
        // Filtering drops what cannot be read; plain viewing shows it, marked.
        assert_eq!(warn.render("not json", false), None);
        assert_eq!(
            ViewArgs::default().render("not json", false).unwrap(),
            "[unparsed] not json\n"
        );
        assert!(warn.render(LINES[3], false).unwrap().contains("failed"));
    }

    #[test]
    fn a_query_chooses_lines() {
        let query = ViewArgs {
            query: Some(parse_query("level>=warn and user=ann or http.status=200").unwrap()),
            ..ViewArgs::default()
        };
        assert_eq!(shown(&query), ["login", "slow"]);
        let err = parse_query("level>=").unwrap_err();
        assert!(err.contains("column 8"), "{err}");
    }

    #[test]
    fn a_time_range_keeps_what_falls_in_it() {
        let at = |s: &str| spanline_json::read::parse_time(s).unwrap();
        let range = ViewArgs {
            since: Some(at("2026-12-02T13:00:01Z")),
            until: Some(at("2026-12-02T13:00:03Z")),
            ..ViewArgs::default()
        };
        assert_eq!(
            shown(&range),
            ["login", "slow"],
            "since is in, until is out"
        );
        // A line without a time cannot be placed: dropped when a range is set.
        assert_eq!(
            range.render(r#"{"level":"INFO","message":"when?"}"#, false),
            None
        );
    }

    #[test]
    fn fields_hidden_shown_and_times_to_the_millisecond() {
        let hide = ViewArgs {
            hide: vec!["http".into()],
            time_format: TimeFormat::Ms,
            ..ViewArgs::default()
        };
        let text = hide.render(LINES[2], false).unwrap();
        assert!(
            text.starts_with("2026-12-02 13:00:02.250 [warning"),
            "{text}"
        );
        assert!(
            text.contains("user=ann") && !text.contains("http."),
            "{text}"
        );
        let show = ViewArgs {
            show: vec!["http".into()],
            ..ViewArgs::default()
        };
        let text = show.render(LINES[2], false).unwrap();
        assert!(
            text.contains("http.status=503") && !text.contains("user="),
            "{text}"
        );
        assert!(text.starts_with("2026-12-02 13:00:02 ["), "{text}");
        // A producer's fixed keys are hidden, unless asked for.
        let bunyan = r#"{"v":0,"name":"svc","hostname":"h1","pid":7,"level":30,"msg":"up","time":"2026-12-02T13:00:00.000Z","port":80}"#;
        let text = ViewArgs::default().render(bunyan, false).unwrap();
        assert!(
            text.contains("port=80") && !text.contains("hostname") && !text.contains("pid="),
            "{text}"
        );
        let all = ViewArgs {
            all_fields: true,
            ..ViewArgs::default()
        };
        assert!(all.render(bunyan, false).unwrap().contains("hostname=h1"));
        let ecs = r#"{"@timestamp":"2026-12-02T13:00:00.000Z","log.level":"info","message":"up","ecs.version":"8.11.0"}"#;
        assert!(!ViewArgs::default()
            .render(ecs, false)
            .unwrap()
            .contains("ecs.version"));
    }
}
