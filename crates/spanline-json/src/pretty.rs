//! [`PrettyLayer`]: a readable console renderer for development, in the
//! style of structlog's `ConsoleRenderer`.

use std::error::Error;
use std::fmt::{self, Write as _};
use std::io::{self, IsTerminal, Write};

use spanline_core::{debug_string, display_string, Clock, CtxView};
use tracing_core::field::{Field, Visit};
use tracing_core::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// Renders events for a human at a terminal:
///
/// ```text
/// 2026-11-21 20:52:49 [info     ] user logged in                 [app] ip=1.2.3.4 user_id=42 request_id=r-1
///     error: connection refused
///       caused by: timed out
/// ```
///
/// The timestamp is UTC. The level is padded inside brackets, the message to
/// 30 columns, then the target, the event's fields in callsite order and the
/// span context (a key the event defines is not repeated). An error recorded
/// with `record_error` prints its chain of sources under the line.
///
/// Colours are used only when asked for with [`PrettyLayer::with_ansi`], and
/// by default only when writing to stdout and stdout is a terminal.
///
/// Values are neutralised: control characters (C0, DEL, C1), bidirectional
/// overrides and line separators are shown escaped (`\n`, `\u{1b}`), so a
/// logged string cannot move the cursor, clear the screen or forge a line.
///
/// ```
/// use tracing_subscriber::prelude::*;
/// use spanline_core::{Clock, Timestamp};
/// let out = spanline_testkit::Capture::new();
/// let pretty = spanline_json::PrettyLayer::new()
///     .with_writer(out.clone()) // any MakeWriter; default stdout
///     .with_ansi(false)         // default: colours when stdout is a terminal
///     .with_clock(Clock::fixed(Timestamp::from_unix(1_763_758_369, 0)));
/// let subscriber = tracing_subscriber::registry().with(spanline_core::ContextLayer::new()).with(pretty);
/// tracing::subscriber::with_default(subscriber, || {
///     let _req = tracing::info_span!("request", request_id = "r-1").entered();
///     tracing::info!(user_id = 42, "user logged in");
/// });
/// assert_eq!(out.text(), "2025-11-21 20:52:49 [info     ] user logged in                 [rust_out] user_id=42 request_id=r-1\n");
/// ```
#[derive(Debug)]
pub struct PrettyLayer<W = fn() -> io::Stdout> {
    make_writer: W,
    ansi: bool,
    clock: Clock,
}

impl PrettyLayer {
    /// Writes to stdout, with colours when stdout is a terminal.
    ///
    /// See [`PrettyLayer`]'s example.
    pub fn new() -> Self {
        Self {
            make_writer: io::stdout,
            ansi: io::stdout().is_terminal(),
            clock: Clock::system(),
        }
    }
}

impl Default for PrettyLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<W> PrettyLayer<W> {
    /// Sets where lines go. Colours are turned off; turn them back on with
    /// [`PrettyLayer::with_ansi`] if the writer is a terminal.
    ///
    /// See [`PrettyLayer`]'s example.
    pub fn with_writer<W2>(self, make_writer: W2) -> PrettyLayer<W2>
    where
        W2: for<'a> MakeWriter<'a> + 'static,
    {
        PrettyLayer {
            make_writer,
            ansi: false,
            clock: self.clock,
        }
    }

    /// Turns ANSI colours on or off.
    ///
    /// See [`PrettyLayer`]'s example.
    #[must_use]
    pub fn with_ansi(mut self, ansi: bool) -> Self {
        self.ansi = ansi;
        self
    }

    /// Sets the clock (a fixed clock for tests).
    ///
    /// See [`PrettyLayer`]'s example.
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }
}

/// Colours, as structlog's defaults.
struct Style {
    on: bool,
}

impl Style {
    fn paint(&self, out: &mut String, code: &str, text: &str) {
        if self.on {
            let _ = write!(out, "\x1b[{code}m{text}\x1b[0m");
        } else {
            out.push_str(text);
        }
    }
}

const DIM: &str = "2";
const BOLD: &str = "1";
const KEY: &str = "36";
const VALUE: &str = "35";

fn level_style(level: Level) -> (&'static str, &'static str) {
    match level {
        Level::TRACE => ("trace", "34"),
        Level::DEBUG => ("debug", "32"),
        Level::INFO => ("info", "32;1"),
        Level::WARN => ("warning", "33;1"),
        _ => ("error", "31;1"),
    }
}

impl<S, W> Layer<S> for PrettyLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'a> MakeWriter<'a> + 'static,
{
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let mut fields = PrettyVisitor {
            is_log: normalized.is_some(),
            ..PrettyVisitor::default()
        };
        event.record(&mut fields);
        let mut ts = Vec::with_capacity(19);
        self.clock.now().write_human(&mut ts);
        let (level, _) = level_style(*meta.level());
        let mut line = PrettyLine {
            timestamp: String::from_utf8_lossy(&ts).into_owned(),
            level: level.to_string(),
            message: fields.message,
            target: meta.target().to_string(),
            pairs: fields
                .pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            errors: fields
                .errors
                .into_iter()
                .map(|(k, chain)| (k.to_string(), chain))
                .collect(),
        };
        if let Some(view) = CtxView::of_event(&ctx, event) {
            for (key, value) in view.iter() {
                if !line.pairs.iter().any(|(k, _)| *k == key) {
                    line.pairs.push((key.into_owned(), value.to_string()));
                }
            }
        }
        // A failed write has nowhere better to go: the console is the sink.
        let _ = self
            .make_writer
            .make_writer_for(event.metadata())
            .write_all(line.render(self.ansi).as_bytes());
    }
}

/// One line of the console renderer, before rendering: what
/// [`PrettyLayer`] writes for an event, and what [`PrettyLine::from_json`]
/// makes of a JSON line (for `spanline pretty` and `spanline tail`).
///
/// ```
/// let line = spanline_json::PrettyLine::from_json(
///     r#"{"timestamp":"2026-11-21T20:52:49.633647Z","level":"INFO","message":"user logged in","target":"app","user_id":42}"#,
/// )
/// .unwrap();
/// assert_eq!(
///     line.render(false),
///     "2026-11-21 20:52:49 [info     ] user logged in                 [app] user_id=42\n"
/// );
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PrettyLine {
    /// `YYYY-MM-DD HH:MM:SS`, or whatever the line had.
    pub timestamp: String,
    /// `trace`, `debug`, `info`, `warning` or `error` (or another word).
    pub level: String,
    /// The message.
    pub message: String,
    /// The target (logger).
    pub target: String,
    /// The other keys, in order, as text.
    pub pairs: Vec<(String, String)>,
    /// Error chains: the key, the message, then each cause.
    pub errors: Vec<(String, Vec<String>)>,
}

const TIMESTAMP_KEYS: &[&str] = &["timestamp", "time", "@timestamp", "ts"];
const LEVEL_KEYS: &[&str] = &["level", "severity", "log.level", "lvl"];
const LEVEL_WORDS: &[&str] = &[
    "trace", "debug", "info", "warn", "warning", "error", "critical", "fatal", "notice", "default",
];
const MESSAGE_KEYS: &[&str] = &["message", "msg", "event"];
const TARGET_KEYS: &[&str] = &["target", "logger", "log.logger", "name"];

impl PrettyLine {
    /// Reads a JSON line of any spanline preset (flat, structlog, bunyan,
    /// gcp, ecs, nested) or from elsewhere, as well as it can. `None` when
    /// the text is not a JSON object.
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
        if let Some(serde_json::Value::Object(fields)) = map.remove("fields") {
            for (k, v) in fields {
                map.entry(k).or_insert(v);
            }
        }
        // Its span context: the nearest span's fields win, the event's over all.
        map.remove("span");
        if let Some(serde_json::Value::Array(spans)) = map.remove("spans") {
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
        let mut take = |keys: &[&str]| keys.iter().find_map(|k| map.remove(*k));
        let timestamp = take(TIMESTAMP_KEYS)
            .map(|v| human_time(&text_of(&v)))
            .unwrap_or_default();
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
            ..PrettyLine::default()
        };
        for (key, value) in &map {
            if let (Some(base), serde_json::Value::Array(causes)) =
                (key.strip_suffix(".sources"), value)
            {
                let mut chain = vec![map.get(base).map(text_of).unwrap_or_default()];
                chain.extend(causes.iter().map(text_of));
                line.errors.push((base.to_string(), chain));
                continue;
            }
            line.pairs.push((key.clone(), text_of(value)));
        }
        Some(line)
    }

    /// The rendered line (and error chains under it), ending with `\n`.
    /// Every value is [`neutralize`]d.
    ///
    /// ```
    /// let line = spanline_json::PrettyLine { level: "info".into(), message: "hi".into(), ..Default::default() };
    /// assert!(line.render(false).contains("[info     ] hi"));
    /// ```
    pub fn render(&self, ansi: bool) -> String {
        let style = Style { on: ansi };
        let mut out = String::with_capacity(256);
        style.paint(&mut out, DIM, &neutralize(&self.timestamp));
        out.push_str(" [");
        let colour = match self.level.as_str() {
            "trace" => "34",
            "debug" => "32",
            "info" => "32;1",
            "warning" | "warn" => "33;1",
            _ => "31;1",
        };
        style.paint(&mut out, colour, &format!("{:<9}", neutralize(&self.level)));
        out.push_str("] ");
        style.paint(
            &mut out,
            BOLD,
            &format!("{:<30}", neutralize(&self.message)),
        );
        if !self.target.is_empty() {
            out.push_str(" [");
            style.paint(&mut out, KEY, &neutralize(&self.target));
            out.push(']');
        }
        for (key, value) in &self.pairs {
            push_pair(&mut out, &style, key, value);
        }
        out.push('\n');
        for (key, chain) in &self.errors {
            let _ = writeln!(
                out,
                "    {}: {}",
                neutralize(key),
                neutralize(chain.first().map_or("", String::as_str))
            );
            for cause in chain.iter().skip(1) {
                let _ = writeln!(out, "      caused by: {}", neutralize(cause));
            }
        }
        out
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

/// Levels in any preset's form: `INFO`, `info`, `WARNING`, bunyan's 30.
fn level_word(v: &serde_json::Value) -> String {
    if let Some(n) = v.as_u64() {
        return match n {
            0..=10 => "trace",
            11..=20 => "debug",
            21..=30 => "info",
            31..=40 => "warning",
            _ => "error",
        }
        .to_string();
    }
    match text_of(v).to_ascii_lowercase().as_str() {
        "warn" | "warning" => "warning".to_string(),
        "critical" | "fatal" | "emergency" | "alert" => "error".to_string(),
        other => other.to_string(),
    }
}

fn push_pair(out: &mut String, style: &Style, key: &str, value: &str) {
    out.push(' ');
    style.paint(out, KEY, &neutralize(key));
    out.push('=');
    let value = neutralize(value);
    let quoted = value.is_empty() || value.contains([' ', '"', '=']);
    if quoted {
        style.paint(out, VALUE, &format!("\"{}\"", value.replace('"', "\\\"")));
    } else {
        style.paint(out, VALUE, &value);
    }
}

/// Escapes everything a terminal would act on, keeping readable text as is.
///
/// ```
/// assert_eq!(spanline_json::neutralize("a\nb\u{1b}[2J"), "a\\nb\\u{1b}[2J");
/// assert_eq!(spanline_json::neutralize("café ✓"), "café ✓");
/// ```
pub fn neutralize(s: &str) -> std::borrow::Cow<'_, str> {
    fn dangerous(c: char) -> bool {
        c.is_control() // C0, DEL, C1
            || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
    }
    if !s.chars().any(dangerous) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if dangerous(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

#[derive(Default)]
struct PrettyVisitor {
    is_log: bool,
    message: String,
    pairs: Vec<(&'static str, String)>,
    errors: Vec<(&'static str, Vec<String>)>,
}

impl PrettyVisitor {
    fn push(&mut self, field: &Field, value: String) {
        let name = field.name();
        let hidden = self.is_log && name.starts_with("log.");
        if name == "message" {
            self.message = value;
        } else if !hidden && !self.pairs.iter().any(|(k, _)| *k == name) {
            self.pairs.push((name, value));
        }
    }
}

impl Visit for PrettyVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, value.to_string());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn Error + 'static)) {
        // User impls may fail: never `to_string`/`format!`, which panic then.
        let chain: Vec<String> = std::iter::once(value)
            .chain(spanline_core::sources(value))
            .map(|e| display_string(&e))
            .collect();
        self.push(field, chain[0].clone());
        self.errors.push((field.name(), chain));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push(field, debug_string(value));
    }
}
