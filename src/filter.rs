//! `RUST_LOG` the way people write it.
//!
//! Three things about `EnvFilter` surprise people coming from other stacks,
//! and this module takes them away:
//!
//! - level words of other ecosystems are read as *target names*: `warning`
//!   would silently disable every line. Here `warning` means `warn`;
//!   `critical`, `fatal` and Python's `50` and `40` mean `error` (tracing has
//!   no level above ERROR: an alert on "critical" becomes an alert on
//!   `error`); `30`, `20` and `10` mean `warn`, `info` and `debug`. Case does
//!   not matter.
//! - a mistyped level is read as a target too: `RUST_LOG=warnn` logs only
//!   a target named `warnn`, so nothing at all. Here a bare word that is
//!   not a level but looks like one (an upper-case letter, or one or two
//!   edits from a level word: `warnn`, `inf`, `eror`, `DNE`) is refused,
//!   named with the nearest level, and the default used in its place. Other
//!   bare words stay targets (`RUST_LOG=my_crate` logs `my_crate` at every
//!   level); a target spelled like a level is written with its level
//!   (`warp=trace`).
//! - a directive that does not parse makes `EnvFilter::new` ignore it quietly
//!   and `EnvFilter::try_new` refuse them all. [`from_env`] skips it and says
//!   so once on stderr; [`parse`] returns it as an error.
//!
//! One difference from `EnvFilter::new`: span field values in directives
//! (`[request{user=alice}]`) are matched as literal text, never compiled as
//! regular expressions, whose compilation a hostile pattern can make last
//! minutes.

use std::fmt;

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::EnvFilter;

/// Directives that do not parse, with the reasons.
///
/// ```
/// let err = spanline::filter::parse("info,foo===bar").unwrap_err();
/// assert_eq!(err.directives(), ["foo===bar"]);
/// assert!(err.to_string().contains("foo===bar"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterError {
    bad: Vec<(String, String)>,
    /// The filter made of the other directives, when one is used instead.
    kept: Option<String>,
}

impl FilterError {
    pub(crate) fn new(bad: Vec<(String, String)>) -> Self {
        Self { bad, kept: None }
    }

    /// Notes the filter used instead (the other directives, else `info`).
    pub(crate) fn with_kept(mut self, filter: String) -> Self {
        self.kept = Some(filter);
        self
    }

    /// The filter used in place of the refused directives by
    /// [`init`](crate::init), which goes on with the others (or `info`).
    ///
    /// ```
    /// let err = spanline::builder().filter("warnn").try_init().unwrap_err();
    /// let spanline::InitError::Filter(err) = err else { panic!("{err}") };
    /// assert_eq!(err.directives(), ["warnn"]);
    /// assert_eq!(err.kept(), Some("info"));
    /// ```
    pub fn kept(&self) -> Option<&str> {
        self.kept.as_deref()
    }

    /// The directives that were refused, as written.
    ///
    /// ```
    /// let err = spanline::filter::parse("=x").unwrap_err();
    /// assert_eq!(err.directives(), ["=x"]);
    /// ```
    pub fn directives(&self) -> Vec<&str> {
        self.bad.iter().map(|(d, _)| d.as_str()).collect()
    }
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (directive, reason)) in self.bad.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "`{directive}`: {reason}")?;
        }
        Ok(())
    }
}

impl std::error::Error for FilterError {}

/// Parses filter directives in `RUST_LOG` syntax, with the level words of
/// other ecosystems mapped (see the module docs); any directive that does
/// not parse is an error. An empty string means `info`.
///
/// ```
/// use tracing_subscriber::filter::LevelFilter;
/// let filter = spanline::filter::parse("WARNING").unwrap();
/// assert_eq!(filter.max_level_hint(), Some(LevelFilter::WARN));
/// let filter = spanline::filter::parse("info,db=critical").unwrap();
/// assert_eq!(filter.to_string(), "db=error,info");
/// assert!(spanline::filter::parse("info,foo===bar").is_err());
/// ```
pub fn parse(directives: &str) -> Result<EnvFilter, FilterError> {
    let (filter, bad) = parse_lenient(directives);
    if bad.is_empty() {
        Ok(filter)
    } else {
        Err(FilterError::new(bad))
    }
}

/// The filter from `RUST_LOG` (`info` when it is unset or empty), with the
/// level words of other ecosystems mapped; a directive that does not parse
/// is skipped and named once on stderr, so a typo never stops a service.
///
/// ```
/// use spanline::{ContextLayer, JsonLayer};
/// use tracing_subscriber::prelude::*;
/// let _subscriber = tracing_subscriber::registry()
///     .with(ContextLayer::new().filter(spanline::filter::from_env()))
///     .with(JsonLayer::new());
/// ```
#[allow(clippy::disallowed_macros)] // a setup mistake, said once where the operator looks
pub fn from_env() -> EnvFilter {
    let directives = std::env::var("RUST_LOG").unwrap_or_default();
    let (filter, bad) = parse_lenient(&directives);
    if !bad.is_empty() {
        eprintln!(
            "spanline: RUST_LOG: skipping {} (using the rest: `{filter}`)",
            FilterError::new(bad)
        );
    }
    filter
}

/// Parses what parses; returns the rest with the reasons.
///
/// Span field values in directives (`[request{user=alice}]`) are matched
/// literally, not as regular expressions: compiling a hostile pattern can
/// take minutes (found by the `filter` fuzz target), and a typo in
/// `RUST_LOG` must never hang a service at boot.
pub(crate) fn parse_lenient(directives: &str) -> (EnvFilter, Vec<(String, String)>) {
    let builder = || EnvFilter::builder().with_regex(false);
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for directive in directives
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        // No target, span or field name holds a control character; such a
        // directive is noise, and can trip tracing-subscriber's ordering
        // assertions in debug builds (found by the `filter` fuzz target).
        if directive.chars().any(char::is_control) {
            bad.push((
                directive.escape_debug().to_string(),
                "a control character".into(),
            ));
            continue;
        }
        if let Some(reason) = mistyped_level(directive) {
            bad.push((directive.to_string(), reason));
            continue;
        }
        let mapped = map_level_word(directive);
        match builder().parse(&mapped) {
            Ok(parsed) => {
                // The same selector twice (`[req{user=a}]=debug,[req{user=a}]=trace`):
                // the later one wins, and tracing-subscriber never sees both
                // (its ordering assertion fails on equal literal field
                // matchers in debug builds; found by the `filter` fuzz target).
                // Compared in tracing-subscriber's own spelling of it.
                let canonical = parsed.to_string();
                let selector = split_level(&canonical).0.to_string();
                good.retain(|kept: &String| split_level(kept).0 != selector);
                good.push(canonical);
            }
            Err(e) => bad.push((directive.to_string(), e.to_string())),
        }
    }
    let filter = if good.is_empty() {
        builder()
            .with_default_directive(LevelFilter::INFO.into())
            .parse_lossy("")
    } else {
        builder().parse_lossy(good.join(","))
    };
    (filter, bad)
}

/// A directive's selector (with its `=`) and its level: split after the
/// last `=` outside `[...]`; a directive without one is all level (or all
/// target).
fn split_level(directive: &str) -> (&str, &str) {
    let mut depth = 0usize;
    let mut level_at = 0;
    for (i, c) in directive.char_indices() {
        match c {
            '[' | '{' => depth += 1,
            ']' | '}' => depth = depth.saturating_sub(1),
            '=' if depth == 0 => level_at = i + 1,
            _ => {}
        }
    }
    directive.split_at(level_at)
}

/// The level words a directive may end in (tracing's, and those
/// [`map_level_word`] maps).
const LEVEL_WORDS: [&str; 9] = [
    "trace", "debug", "info", "warn", "error", "off", "warning", "critical", "fatal",
];

/// Why `directive` is taken for a mistyped level rather than a target:
/// `EnvFilter` reads a bare word as a target, so `warnn` would log only the
/// lines of a target named `warnn` (none) and look like logging is off.
///
/// A bare word (no `=`, `[` or `::`) that is not a level word is a
/// mistyped level when it has an upper-case letter (targets are module
/// paths, lower case) or is one or two edits away from a level word
/// (`warnn`, `inf`, `eror`); any other bare word stays a target
/// (`my_crate`). A target spelled like a level is written with its level:
/// `errors=trace`.
fn mistyped_level(directive: &str) -> Option<String> {
    let word = directive.trim();
    if word.contains(['=', '[', '{', ':']) || word.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let lower = word.to_ascii_lowercase();
    if LEVEL_WORDS.contains(&lower.as_str()) {
        return None;
    }
    let nearest = LEVEL_WORDS
        .iter()
        .map(|level| (edit_distance(&lower, level), *level))
        .min()
        .filter(|(distance, _)| *distance <= 2 && *distance < lower.len());
    let upper = word.bytes().any(|b| b.is_ascii_uppercase());
    if nearest.is_none() && !upper {
        return None;
    }
    let hint = match nearest {
        Some((_, level)) => format!("did you mean `{level}`? "),
        None => String::new(),
    };
    Some(format!(
        "not a level ({hint}levels: trace, debug, info, warn, error, off; \
         a target is written with its level, `{word}=trace`)"
    ))
}

/// Levenshtein distance, for short words (a directive, an option's key).
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// `target=warning` -> `target=warn`, `CRITICAL` -> `error`: the level part
/// of a directive in the words of other ecosystems.
fn map_level_word(directive: &str) -> String {
    let (head, level) = split_level(directive);
    let mapped = match level.trim().to_ascii_lowercase().as_str() {
        "warning" | "30" => "warn",
        "critical" | "fatal" | "40" | "50" => "error",
        "20" => "info",
        "10" => "debug",
        _ => return directive.to_string(),
    };
    format!("{head}{mapped}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_words_map_to_tracing_levels() {
        for (written, meant) in [
            ("warning", "warn"),
            ("WARNING", "warn"),
            ("Critical", "error"),
            ("fatal", "error"),
            ("40", "error"),
            ("50", "error"),
            ("30", "warn"),
            ("20", "info"),
            ("10", "debug"),
            ("app=warning", "app=warn"),
            (
                "app[req{user=warning}]=critical",
                "app[req{user=warning}]=error",
            ),
            ("warn", "warn"),
            ("my_crate", "my_crate"),
            ("2", "2"),
        ] {
            assert_eq!(map_level_word(written), meant, "{written}");
        }
    }

    #[test]
    fn a_mistyped_level_is_refused_and_named_a_target_is_kept() {
        for (written, nearest) in [
            ("warnn", Some("warn")),
            ("inf", Some("info")),
            ("eror", Some("error")),
            ("INFOO", Some("info")),
            ("Debg", Some("debug")),
            ("DNE", None),
            ("Verbose", None),
        ] {
            let reason = mistyped_level(written).unwrap_or_else(|| panic!("{written} kept"));
            match nearest {
                Some(level) => assert!(reason.contains(&format!("`{level}`?")), "{reason}"),
                None => assert!(!reason.contains("did you mean"), "{reason}"),
            }
            assert!(reason.contains(&format!("`{written}=trace`")), "{reason}");
            let (filter, bad) = parse_lenient(written);
            assert_eq!(bad.len(), 1, "{written}");
            assert_eq!(
                filter.max_level_hint(),
                Some(LevelFilter::INFO),
                "{written}"
            );
        }
        for kept in [
            "my_crate",
            "hyper",
            "sqlx",
            "app::db",
            "my_crate=debug",
            "app[req]=warn",
            "WARN",
            "Info",
            "warning",
            "10",
            "off",
        ] {
            assert_eq!(mistyped_level(kept), None, "{kept}");
            assert!(parse(kept).is_ok(), "{kept}");
        }
        let err = parse("info,warnn").unwrap_err();
        assert_eq!(err.directives(), ["warnn"]);
        assert!(err.to_string().contains("did you mean `warn`?"), "{err}");
    }

    #[test]
    fn field_values_are_literal_so_a_hostile_pattern_cannot_hang_the_start() {
        // Found by the `filter` fuzz target: as a regular expression, this
        // value's automaton takes tens of seconds to build.
        let hostile = include_bytes!("../fuzz/regressions/filter/regex-blowup");
        let started = std::time::Instant::now();
        let _ = parse_lenient(&String::from_utf8_lossy(hostile));
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "took {:?}",
            started.elapsed()
        );
        let filter = parse("warn,[request{user=a.*}]=debug").unwrap();
        assert!(filter.to_string().contains("user=a.*"));
    }

    #[test]
    fn the_same_selector_twice_keeps_the_later_one() {
        let (filter, bad) = parse_lenient("[req{user=a}]=debug,warn,[req{user=a}]=trace");
        assert!(bad.is_empty());
        assert_eq!(filter.to_string(), "warn,[req{user=a}]=trace");
    }

    #[test]
    fn bad_directives_are_named_and_the_rest_kept() {
        let (filter, bad) = parse_lenient("warn,foo===bar,app=debug,=x");
        assert_eq!(
            bad.iter().map(|(d, _)| d.as_str()).collect::<Vec<_>>(),
            ["foo===bar", "=x"]
        );
        assert_eq!(filter.to_string(), "app=debug,warn");
        let (filter, bad) = parse_lenient("");
        assert!(bad.is_empty());
        assert_eq!(filter.max_level_hint(), Some(LevelFilter::INFO));
        let (filter, bad) = parse_lenient("foo===bar");
        assert_eq!(bad.len(), 1);
        assert_eq!(
            filter.max_level_hint(),
            Some(LevelFilter::INFO),
            "nothing usable: the default"
        );
    }
}
