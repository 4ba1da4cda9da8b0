//! The one mapping of level words and numbers to a level, for every reader.

use std::fmt;

/// A line's level, as every reader orders it: `Trace < Debug < Info < Warn <
/// Error < Critical`.
///
/// The words and numbers of every preset and producer map here, in this one
/// place: tracing's `INFO`, structlog's `warning`, GCP's `NOTICE`, ECS's
/// `error`, bunyan's and pino's `30`, `critical` (spanline's
/// [`CRITICAL_FIELD`](spanline_core::CRITICAL_FIELD)) and `fatal`.
///
/// ```
/// use spanline_json::read::Level;
/// assert_eq!(Level::parse("WARNING"), Some(Level::Warn));
/// assert_eq!(Level::parse("notice"), Some(Level::Info));
/// assert_eq!(Level::from_number(60), Level::Critical);
/// assert!(Level::Warn > Level::Info);
/// assert_eq!(Level::Warn.name(), "warn");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// `trace`, bunyan's 10.
    Trace,
    /// `debug`, bunyan's 20.
    Debug,
    /// `info`, `notice`, GCP's `DEFAULT`, bunyan's 30.
    Info,
    /// `warn`, `warning`, bunyan's 40.
    Warn,
    /// `error`, `err`, bunyan's 50.
    Error,
    /// `critical`, `fatal`, `alert`, `emergency`, bunyan's 60.
    Critical,
}

impl Level {
    /// All levels, from the most verbose.
    pub const ALL: [Level; 6] = [
        Level::Trace,
        Level::Debug,
        Level::Info,
        Level::Warn,
        Level::Error,
        Level::Critical,
    ];

    /// The level a word names, in any case; `None` for a word that is not
    /// a level.
    ///
    /// ```
    /// use spanline_json::read::Level;
    /// assert_eq!(Level::parse("Fatal"), Some(Level::Critical));
    /// assert_eq!(Level::parse("30"), Some(Level::Info), "a number as text");
    /// assert_eq!(Level::parse("loud"), None);
    /// ```
    pub fn parse(word: &str) -> Option<Level> {
        const WORDS: &[(&str, Level)] = &[
            ("trace", Level::Trace),
            ("debug", Level::Debug),
            ("info", Level::Info),
            ("information", Level::Info),
            ("notice", Level::Info),
            ("default", Level::Info),
            ("warn", Level::Warn),
            ("warning", Level::Warn),
            ("error", Level::Error),
            ("err", Level::Error),
            ("critical", Level::Critical),
            ("crit", Level::Critical),
            ("fatal", Level::Critical),
            ("alert", Level::Critical),
            ("emergency", Level::Critical),
            ("panic", Level::Critical),
        ];
        let word = word.trim();
        if let Some((_, level)) = WORDS.iter().find(|(w, _)| w.eq_ignore_ascii_case(word)) {
            return Some(*level);
        }
        word.parse::<u64>().ok().map(Level::from_number)
    }

    /// The level of a bunyan or pino number: 10 trace, 20 debug, 30 info,
    /// 40 warn, 50 error, 60 fatal (critical); numbers between round up.
    ///
    /// ```
    /// use spanline_json::read::Level;
    /// assert_eq!(Level::from_number(30), Level::Info);
    /// assert_eq!(Level::from_number(35), Level::Warn);
    /// ```
    pub fn from_number(n: u64) -> Level {
        match n {
            0..=10 => Level::Trace,
            11..=20 => Level::Debug,
            21..=30 => Level::Info,
            31..=40 => Level::Warn,
            41..=50 => Level::Error,
            _ => Level::Critical,
        }
    }

    /// The level of a JSON value: a word or a number.
    pub(crate) fn of_value(value: &serde_json::Value) -> Option<Level> {
        match value {
            serde_json::Value::String(s) => Level::parse(s),
            serde_json::Value::Number(n) => n.as_u64().map(Level::from_number),
            _ => None,
        }
    }

    /// The level's lowercase name: `trace`, `debug`, `info`, `warn`,
    /// `error`, `critical`.
    pub fn name(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
            Level::Critical => "critical",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl From<tracing_core::Level> for Level {
    fn from(level: tracing_core::Level) -> Self {
        match level {
            tracing_core::Level::TRACE => Level::Trace,
            tracing_core::Level::DEBUG => Level::Debug,
            tracing_core::Level::INFO => Level::Info,
            tracing_core::Level::WARN => Level::Warn,
            _ => Level::Error,
        }
    }
}
