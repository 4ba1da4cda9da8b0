//! What `spanline pretty` and `spanline tail` show of each line: a minimum
//! level, `--where key=value` filters, and the time in the local zone.

use spanline_core::read::Level;
use spanline_json::{neutralize, PrettyLine};

/// The options both viewers share.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct ViewArgs {
    /// Show only lines at this level or above (trace, debug, info, warn, error).
    #[arg(long, value_parser = parse_level)]
    level: Option<Level>,
    /// Show only lines whose KEY has VALUE (the message, target, level or any
    /// field; dotted keys reach into nested objects). Repeat to require all.
    #[arg(long = "where", value_name = "KEY=VALUE", value_parser = parse_where)]
    wheres: Vec<(String, String)>,
    /// Show times in the local time zone (TZ, else the system's) instead of UTC.
    #[arg(long)]
    local: bool,
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
    /// Whether any filter is set.
    pub(crate) fn filters(&self) -> bool {
        self.level.is_some() || !self.wheres.is_empty()
    }

    /// Does `line` pass the level and `--where` filters?
    pub(crate) fn keeps(&self, line: &PrettyLine) -> bool {
        if let Some(min) = self.level {
            // A word that is not a level is shown, as an error would be.
            if Level::parse(&line.level).unwrap_or(Level::Error) < min {
                return false;
            }
        }
        self.wheres.iter().all(|(key, value)| match key.as_str() {
            "message" | "msg" => line.message == *value,
            "target" | "logger" => line.target == *value,
            "level" => {
                line.level.eq_ignore_ascii_case(value)
                    || Level::parse(&line.level).is_some_and(|l| Level::parse(value) == Some(l))
            }
            _ => line.pairs.iter().any(|(k, v)| k == key && v == value),
        })
    }

    /// Renders a line, or `None` when a filter drops it. Text that is not a
    /// JSON object is passed through, marked (no filter applies to it).
    pub(crate) fn render(&self, text: &str, ansi: bool) -> Option<String> {
        let Some(mut line) = PrettyLine::from_json(text) else {
            return (!self.filters()).then(|| format!("[unparsed] {}\n", neutralize(text)));
        };
        if !self.keeps(&line) {
            return None;
        }
        if self.local {
            if let Some(local) = line.time.and_then(spanline_json::local_time) {
                line.timestamp = local;
            }
        }
        Some(line.render(ansi))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is a failure report

    use super::*;

    const LINES: &[&str] = &[
        r#"{"timestamp":"2026-12-02T13:00:00Z","level":"DEBUG","message":"cache miss","user":"ann"}"#,
        r#"{"timestamp":"2026-12-02T13:00:01Z","level":"INFO","message":"login","user":"bob","http":{"status":200}}"#,
        r#"{"timestamp":"2026-12-02T13:00:02Z","level":"WARN","message":"slow","user":"ann","http":{"status":503}}"#,
        r#"{"timestamp":"2026-12-02T13:00:03Z","level":"ERROR","message":"failed","user":"cid"}"#,
    ];

    fn shown(view: &ViewArgs) -> Vec<String> {
        LINES
            .iter()
            .filter_map(|l| PrettyLine::from_json(l))
            .filter(|l| view.keeps(l))
            .map(|l| l.message)
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
}
