//! [`PrettyLayer`]: a readable console renderer for development, in the
//! style of structlog's `ConsoleRenderer`.

use std::error::Error;
use std::fmt::{self, Write as _};
use std::io::{self, IsTerminal, Write};

use spanline_core::{Clock, CtxView};
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
    /// Pairs shown on every line, after the line's own (a service name).
    fields: Vec<(String, String)>,
    /// Keys whose values are shown as `[redacted]`.
    redact: spanline_core::Redact,
    /// Show the thread's name (`thread=`) and id (`thread_id=`).
    thread_names: bool,
    thread_ids: bool,
    /// Times in the local zone instead of UTC (feature `local-time`).
    local_time: bool,
}

impl PrettyLayer {
    /// Writes to stdout, with colours when stdout is a terminal.
    ///
    /// See [`PrettyLayer`]'s example.
    pub fn new() -> Self {
        Self {
            make_writer: io::stdout,
            // https://no-color.org: NO_COLOR set and not empty turns colours off.
            ansi: io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
            clock: Clock::system(),
            fields: Vec::new(),
            redact: spanline_core::Redact::default(),
            thread_names: false,
            thread_ids: false,
            local_time: false,
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
            fields: self.fields,
            redact: self.redact,
            thread_names: self.thread_names,
            thread_ids: self.thread_ids,
            local_time: self.local_time,
        }
    }

    /// Shows the name of the thread that logged (`thread=worker-1`, or
    /// `thread=<unnamed>`) on every line.
    ///
    /// ```
    /// use tracing_subscriber::prelude::*;
    /// let out = spanline_testkit::Capture::new();
    /// let writer = out.clone();
    /// std::thread::Builder::new().name("worker-1".into()).spawn(move || {
    ///     let pretty = spanline_json::PrettyLayer::new().with_writer(writer).with_thread_names(true).with_thread_ids(true);
    ///     tracing::subscriber::with_default(tracing_subscriber::registry().with(pretty), || tracing::info!("hi"));
    /// }).unwrap().join().unwrap();
    /// assert!(out.text().contains("thread=worker-1 thread_id="), "{}", out.text());
    /// ```
    #[must_use]
    pub fn with_thread_names(mut self, on: bool) -> Self {
        self.thread_names = on;
        self
    }

    /// Shows the id of the thread that logged (`thread_id=3`) on every line.
    ///
    /// See [`with_thread_names`](Self::with_thread_names)' example.
    #[must_use]
    pub fn with_thread_ids(mut self, on: bool) -> Self {
        self.thread_ids = on;
        self
    }

    /// Shows times in the local zone (`TZ`, else the system's) instead of
    /// UTC (feature `local-time`).
    ///
    /// ```
    /// let _pretty = spanline_json::PrettyLayer::new().with_local_time(true);
    /// ```
    #[cfg(feature = "local-time")]
    #[must_use]
    pub fn with_local_time(mut self, on: bool) -> Self {
        self.local_time = on;
        self
    }

    /// Shows the values of these keys (whole keys, or patterns with `*`) as
    /// `[redacted]`: event fields, span fields and context alike, and keys
    /// at any depth inside JSON values (see [`Redact`](spanline_core::Redact)).
    ///
    /// ```
    /// use tracing_subscriber::prelude::*;
    /// let out = spanline_testkit::Capture::new();
    /// let pretty = spanline_json::PrettyLayer::new().with_writer(out.clone()).redact(["password"]);
    /// tracing::subscriber::with_default(tracing_subscriber::registry().with(pretty), || tracing::info!(password = "hunter2", "login"));
    /// assert!(out.text().contains("password=[redacted]") && !out.text().contains("hunter2"));
    /// ```
    #[must_use]
    pub fn redact<I, T>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        self.redact = spanline_core::Redact::new(keys);
        self
    }

    /// Shows `key=value` on every line, after the line's own fields and
    /// context (the JSON layer's static fields, such as the service name).
    ///
    /// ```
    /// use tracing_subscriber::prelude::*;
    /// let out = spanline_testkit::Capture::new();
    /// let pretty = spanline_json::PrettyLayer::new().with_writer(out.clone()).with_field("service", "billing");
    /// tracing::subscriber::with_default(tracing_subscriber::registry().with(pretty), || tracing::info!(n = 1, "hi"));
    /// assert!(out.text().ends_with("n=1 service=billing\n"), "{}", out.text());
    /// ```
    #[must_use]
    pub fn with_field(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.fields.push((key.into(), value.into()));
        self
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

/// `t` as `YYYY-MM-DD HH:MM:SS` in the local zone (`TZ`, else the
/// system's); `None` without the `local-time` feature or for a time out of
/// range.
///
/// ```
/// let t = spanline_core::Timestamp::from_unix(0, 0);
/// assert_eq!(spanline_json::local_time(t).is_some(), cfg!(feature = "local-time"));
/// ```
pub fn local_time(t: spanline_core::Timestamp) -> Option<String> {
    #[cfg(feature = "local-time")]
    {
        let at = jiff::Timestamp::new(t.unix_secs(), t.subsec_nanos() as i32).ok()?;
        Some(
            at.to_zoned(jiff::tz::TimeZone::system())
                .strftime("%Y-%m-%d %H:%M:%S")
                .to_string(),
        )
    }
    #[cfg(not(feature = "local-time"))]
    {
        let _ = t;
        None
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
            redact: self.redact.clone(),
            ..PrettyVisitor::default()
        };
        event.record(&mut fields);
        let now = self.clock.now();
        let mut ts = Vec::with_capacity(19);
        match self.local_time.then(|| local_time(now)).flatten() {
            Some(local) => ts.extend_from_slice(local.as_bytes()),
            None => now.write_human(&mut ts),
        }
        let (level, _) = level_style(*meta.level());
        // An ERROR event marked critical reads as structlog's console shows it.
        let level = if fields.critical && *meta.level() == Level::ERROR {
            "critical"
        } else {
            level
        };
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
            time: Some(now),
        };
        if let Some(view) = CtxView::of_event(&ctx, event) {
            for (key, value) in view.iter() {
                if !line.pairs.iter().any(|(k, _)| *k == key) {
                    // An object or array: hidden keys inside it masked.
                    let text = match value.as_str() {
                        Some(text) => text.into_owned(),
                        None => self.redact.scrub_json(value.as_json()).into_owned(),
                    };
                    line.pairs.push((key.into_owned(), text));
                }
            }
        }
        for (key, value) in &self.fields {
            if !line.pairs.iter().any(|(k, _)| k == key) {
                line.pairs.push((key.clone(), value.clone()));
            }
        }
        if self.thread_names || self.thread_ids {
            let thread = std::thread::current();
            if self.thread_names {
                let name = thread.name().unwrap_or("<unnamed>").to_string();
                line.pairs.push(("thread".into(), name));
            }
            if self.thread_ids {
                // `ThreadId(3)` as `3`.
                let id = format!("{:?}", thread.id());
                let id = id.trim_start_matches("ThreadId(").trim_end_matches(')');
                line.pairs.push(("thread_id".into(), id.to_string()));
            }
        }
        if !self.redact.is_empty() {
            for (key, value) in &mut line.pairs {
                if self.redact.hides(key) {
                    *value = spanline_core::Redact::MASK.to_string();
                }
            }
            for (key, chain) in &mut line.errors {
                if self.redact.hides(key) {
                    *chain = vec![spanline_core::Redact::MASK.to_string()];
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
    /// The line's time, when it could be read (RFC 3339, or epoch seconds
    /// or milliseconds): for showing it in another zone.
    pub time: Option<spanline_core::Timestamp>,
}

mod read;

impl PrettyLine {
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
    /// The layer's hidden keys, masked inside JSON values (hidden fields
    /// are masked whole after the visit).
    redact: spanline_core::Redact,
    /// `critical = true` (`spanline::critical!`): shown as the level.
    critical: bool,
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

/// The text of a user's `Display` or `Debug`, which may fail: `to_string`
/// and `format!` panic then; this keeps what was written and marks it.
fn never_panics(args: fmt::Arguments<'_>) -> String {
    let mut out = String::new();
    if out.write_fmt(args).is_err() {
        out.push_str("[fmt error]");
    }
    out
}

impl Visit for PrettyVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, value.to_string());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn Error + 'static)) {
        // User impls may fail: never `to_string`/`format!`, which panic then.
        let chain: Vec<String> = std::iter::once(value)
            .chain(spanline_core::sources(value))
            .map(|e| never_panics(format_args!("{e}")))
            .collect();
        self.push(field, chain[0].clone());
        self.errors.push((field.name(), chain));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = never_panics(format_args!("{value:?}"));
        // A `spanline::json` value (or a map's `Debug`) reads as JSON: its
        // hidden keys are masked at any depth.
        let text = match self.redact.scrub_json(&text) {
            std::borrow::Cow::Borrowed(_) => text,
            std::borrow::Cow::Owned(scrubbed) => scrubbed,
        };
        self.push(field, text);
    }

    /// A `valuable` value: shown as JSON, as the JSON lines write it, with
    /// hidden keys masked at any depth.
    #[cfg(all(tracing_unstable, feature = "valuable"))]
    fn record_value(&mut self, field: &Field, value: valuable::Value<'_>) {
        let mut buf = Vec::new();
        let mut fields = spanline_core::JsonFields::new(&mut buf, Default::default());
        if !self.redact.is_empty() {
            fields = fields.redacting(&self.redact);
        }
        fields.record_value(field, value);
        // `"name":value`: the value after the key.
        let mut key = Vec::new();
        spanline_core::write_str(&mut key, field.name());
        key.push(b':');
        let json = buf.strip_prefix(&key[..]).unwrap_or(&buf[..]);
        self.push(field, String::from_utf8_lossy(json).into_owned());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if value && field.name() == spanline_core::CRITICAL_FIELD {
            self.critical = true;
        } else {
            self.push(field, value.to_string());
        }
    }
}
