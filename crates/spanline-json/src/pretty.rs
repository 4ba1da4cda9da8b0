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
/// let subscriber = tracing_subscriber::registry()
///     .with(spanline_core::ContextLayer::new())
///     .with(spanline_json::PrettyLayer::new().with_writer(std::io::stderr));
/// tracing::subscriber::with_default(subscriber, || tracing::info!(user_id = 42, "user logged in"));
/// ```
#[derive(Debug)]
pub struct PrettyLayer<W = fn() -> io::Stdout> {
    make_writer: W,
    ansi: bool,
    clock: Clock,
}

impl PrettyLayer {
    /// Writes to stdout, with colours when stdout is a terminal.
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
    #[must_use]
    pub fn with_ansi(mut self, ansi: bool) -> Self {
        self.ansi = ansi;
        self
    }

    /// Sets the clock (a fixed clock for tests).
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
        let style = Style { on: self.ansi };

        let mut out = String::with_capacity(256);
        let mut ts = Vec::with_capacity(19);
        self.clock.now().write_human(&mut ts);
        style.paint(&mut out, DIM, &String::from_utf8_lossy(&ts));
        let (name, colour) = level_style(*meta.level());
        out.push_str(" [");
        style.paint(&mut out, colour, &format!("{name:<9}"));
        out.push_str("] ");
        let message = format!("{:<30}", neutralize(&fields.message));
        style.paint(&mut out, BOLD, &message);
        out.push_str(" [");
        style.paint(&mut out, KEY, &neutralize(meta.target()));
        out.push(']');

        for (key, value) in &fields.pairs {
            push_pair(&mut out, &style, key, value);
        }
        if let Some(view) = CtxView::of_event(&ctx, event) {
            for (key, value) in view.iter() {
                if fields.pairs.iter().any(|(k, _)| *k == key) {
                    continue;
                }
                push_pair(&mut out, &style, &key, &value.to_string());
            }
        }
        out.push('\n');
        for (key, chain) in &fields.errors {
            let _ = writeln!(out, "    {}: {}", neutralize(key), neutralize(&chain[0]));
            for cause in &chain[1..] {
                let _ = writeln!(out, "      caused by: {}", neutralize(cause));
            }
        }
        // A failed write has nowhere better to go: the console is the sink.
        let _ = self
            .make_writer
            .make_writer_for(event.metadata())
            .write_all(out.as_bytes());
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
        let mut chain = vec![value.to_string()];
        let mut next = value.source();
        while let Some(cause) = next {
            if chain.len() > 32 {
                break;
            }
            chain.push(cause.to_string());
            next = cause.source();
        }
        self.push(field, chain[0].clone());
        self.errors.push((field.name(), chain));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push(field, format!("{value:?}"));
    }
}
