//! `spanline run`: a command with log forwarding, its records rendered here.
//!
//! The command's spanline logs come back through the forwarding pipe; what
//! it prints to stdout and stderr (a command that knows nothing of
//! spanline) becomes lines of this process too, so the output stays one
//! stream of JSON lines (or of pretty lines).
//!
//! With `SPANLINE_REDACT` set, this process masks what it re-emits itself,
//! whatever the command did: the values of those keys in its forwarded
//! records (nested keys too), and in the JSON lines it prints.

use std::io::{self, Read};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use spanline_core::{ContextLayer, Preset, Redact, Schema};
use spanline_json::{JsonLayer, PrettyLayer};
use spanline_pipe::wire::Record;
use spanline_pipe::{ForwardLayer, ForwardedChild, Forwarder, Receiver};
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

use crate::Color;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The name of the child span the command's records go under.
    #[arg(long)]
    name: Option<String>,
    /// Write JSON lines instead of the pretty renderer.
    #[arg(long)]
    json: bool,
    /// When to colour the pretty output.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    color: Color,
    /// The command and its arguments.
    #[arg(required = true, last = true)]
    command: Vec<String>,
}

/// The variable naming the keys whose values are masked, comma-separated,
/// as `spanline::init()` reads it.
const REDACT_VAR: &str = "SPANLINE_REDACT";

/// The keys `SPANLINE_REDACT` names (comma-separated, blanks ignored).
fn redact_keys(var: Option<&str>) -> Vec<String> {
    var.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_string)
        .collect()
}

pub(crate) fn main(args: Args) -> io::Result<ExitCode> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Masked here, whatever the command does itself: a program in another
    // language, or one that runs without the variable, does not redact.
    let redact = redact_keys(std::env::var(REDACT_VAR).ok().as_deref());
    // Run by another `spanline run` (or a Forwarder): pass everything up,
    // and print nothing here, or every line would show twice.
    let forward = ForwardLayer::from_env().map(|forward| forward.redact(&redact));
    let local = forward.is_none();
    // The filter on the ContextLayer: the child's context spans (and the
    // `child` span) are kept whatever RUST_LOG says.
    tracing_subscriber::registry()
        .with(ContextLayer::new().filter(filter))
        .with((local && !args.json).then(|| {
            PrettyLayer::new()
                .with_ansi(args.color.enabled())
                .redact(&redact)
        }))
        .with((local && args.json).then(|| {
            JsonLayer::builder()
                .schema(Schema::builder(Preset::Flat).redact(&redact))
                .build()
        }))
        .with(forward)
        .try_init()
        .map_err(io::Error::other)?;
    let (program, rest) = args
        .command
        .split_first()
        .ok_or_else(|| io::Error::other("no command given"))?;
    let name = args.name.clone().unwrap_or_else(|| program.clone());
    let mut cmd = Command::new(program);
    cmd.args(rest);
    // The command's stdout and stderr come here, line by line: its text
    // never lands raw in this process's stream of lines.
    let (stdout, stdout_write) = io::pipe()?;
    let (stderr, stderr_write) = io::pipe()?;
    cmd.stdout(stdout_write).stderr(stderr_write);
    let spawned = Forwarder::new(name)
        .redact(&redact)
        // The context this process runs in (TRACEPARENT, BAGGAGE), passed
        // on whatever features the CLI was built with.
        .env_with(spanline_context::ContextSnapshot::capture_env)
        .spawn(&mut cmd);
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            eprintln!("spanline: {}", cannot_start(program, &e));
            return Ok(not_started(&e));
        }
    };
    // Our copies of the write ends: EOF comes when the command (and its
    // descendants) close theirs.
    drop(cmd);
    let target = command_name(program);
    let output = Output::start(
        &child,
        &target,
        &Redact::new(&redact),
        [(stdout, Stream::Stdout), (stderr, Stream::Stderr)],
    )?;
    output.drain(&mut child)?;
    let status = child.wait()?;
    Ok(exit_code(&status))
}

/// Why `program` could not be started, naming it: "cannot start
/// `/nonexistent`: No such file or directory".
fn cannot_start(program: &str, e: &io::Error) -> String {
    // Control characters in the name are shown escaped, never sent to the
    // terminal.
    let shown = program.escape_debug();
    if e.kind() == io::ErrorKind::NotFound && !program.contains('/') {
        return format!("cannot start `{shown}`: command not found (searched PATH)");
    }
    let text = e.to_string();
    let cause = match e.raw_os_error() {
        Some(code) => text
            .strip_suffix(&format!(" (os error {code})"))
            .unwrap_or(&text),
        None => &text,
    };
    format!("cannot start `{shown}`: {cause}")
}

/// Our status when the command could not be started, as `env`, `nice` or
/// a shell say it: 127 when it is not found, 126 when it cannot be run (not
/// executable, …). Distinct from any status of the command's own.
fn not_started(e: &io::Error) -> ExitCode {
    if e.kind() == io::ErrorKind::NotFound {
        ExitCode::from(127)
    } else {
        ExitCode::from(126)
    }
}

/// The child's status as ours: its code, or 128 + the signal, as shells do.
fn exit_code(status: &std::process::ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        (None, Some(signal)) => ExitCode::from(u8::try_from(128 + signal).unwrap_or(1)),
        (None, None) => ExitCode::from(1),
    }
}

/// The target of the command's text lines: its program's file name
/// (`sh` for `/bin/sh`), so `RUST_LOG=warn,sh=info` picks them out.
fn command_name(program: &str) -> String {
    std::path::Path::new(program)
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| program.to_string())
}

/// Which of the command's streams a line came from.
#[derive(Clone, Copy, Debug)]
enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    /// The level of its lines: stdout is the command's ordinary output;
    /// stderr is where programs report trouble (and where a panic or a
    /// crash says why), so its lines stay visible under `RUST_LOG=warn`.
    fn level(self) -> &'static str {
        match self {
            Stream::Stdout => "INFO",
            Stream::Stderr => "WARN",
        }
    }
}

/// How long, after the command exits, its output may stay open and silent
/// before we stop waiting for it (descendants that inherited it): as the
/// forwarding pipe's leak timeout.
const LEAK_TIMEOUT: Duration = Forwarder::DEFAULT_LEAK_TIMEOUT;

/// How often the command's exit is checked while its output is read.
const POLL: Duration = Duration::from_millis(10);

/// The longest text line; a longer one is cut into lines of this size, so
/// output without newlines never grows this process's memory.
const MAX_LINE: usize = 16 * 1024;

/// The longest text line under redaction: a JSON line is masked whole, so
/// it is cut only past this size; the rest of a JSON line longer than that
/// is withheld (said in a WARN line), not shown unmasked.
const MAX_REDACTED_LINE: usize = 1024 * 1024;

/// The threads that turn the command's stdout and stderr into lines.
struct Output {
    /// One message per stream when it reaches EOF.
    done: mpsc::Receiver<()>,
    /// Per stream: true while its thread waits on an empty pipe.
    waiting: Vec<Arc<AtomicBool>>,
}

impl Output {
    fn start(
        child: &ForwardedChild,
        target: &str,
        redact: &Redact,
        streams: [(io::PipeReader, Stream); 2],
    ) -> io::Result<Self> {
        let (done_tx, done) = mpsc::channel();
        let mut waiting = Vec::new();
        for (read, stream) in streams {
            let idle = Arc::new(AtomicBool::new(false));
            waiting.push(idle.clone());
            let done_tx = done_tx.clone();
            let lines = TextLines {
                receiver: Receiver::new(child.span().clone()).redact(redact.keys()),
                span: child.span().clone(),
                pid: child.id(),
                target: target.to_string(),
                stream,
                redact: redact.clone(),
                withheld: None,
            };
            std::thread::Builder::new()
                .name(format!("spanline-run-{}", stream.name()))
                .spawn(move || {
                    read_lines(read, &idle, lines);
                    let _ = done_tx.send(());
                })?;
        }
        Ok(Self { done, waiting })
    }

    /// Re-emits the command's output until both streams end, or until the
    /// command has exited and its output stayed open and empty for
    /// [`LEAK_TIMEOUT`] (held by descendants: they go on in the
    /// background, and this process reports the exit without them).
    fn drain(self, child: &mut ForwardedChild) -> io::Result<()> {
        let mut open = self.waiting.len();
        let mut idle_since: Option<Instant> = None;
        let mut exited = false;
        while open > 0 {
            match self.done.recv_timeout(POLL) {
                Ok(()) => {
                    open -= 1;
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            exited = exited || child.try_wait()?.is_some();
            if !exited {
                continue;
            }
            // Only time spent waiting on empty, still open pipes counts.
            if self.waiting.iter().all(|w| w.load(Ordering::Acquire)) {
                let since = *idle_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= LEAK_TIMEOUT {
                    tracing::warn!(
                        target: spanline_pipe::TARGET,
                        parent: child.span(),
                        waited_ms = LEAK_TIMEOUT.as_millis() as u64,
                        "the child exited but its descendants still hold its stdout or stderr open"
                    );
                    break;
                }
            } else {
                idle_since = None;
            }
        }
        Ok(())
    }
}

/// Turns one stream's text lines into events under the `child` span.
struct TextLines {
    receiver: Receiver,
    /// The `child` span, for this process's own word on the output.
    span: tracing::Span,
    pid: u32,
    target: String,
    stream: Stream,
    /// Keys whose values are masked in the text (JSON the command prints).
    redact: Redact,
    /// Bytes withheld so far of a JSON line too long to redact whole;
    /// `None` outside one.
    withheld: Option<usize>,
}

impl TextLines {
    /// The longest line re-emitted whole (longer ones are cut).
    fn max_line(&self) -> usize {
        if self.redact.is_empty() {
            MAX_LINE
        } else {
            MAX_REDACTED_LINE
        }
    }

    /// Takes one piece of a line: all of it or its end (`last`), or the
    /// first [`max_line`](Self::max_line) bytes of a longer one, or of its
    /// rest. Under redaction, what follows the first piece of a JSON line
    /// is withheld: masking needs the whole of it.
    fn piece(&mut self, part: &[u8], last: bool) {
        if let Some(withheld) = self.withheld.as_mut() {
            *withheld += part.len();
        } else {
            if !last && !self.redact.is_empty() && starts_json(part) {
                self.withheld = Some(0);
            }
            self.emit(part);
        }
        if last {
            self.end_of_withheld();
        }
    }

    /// Says how much of a JSON line was withheld, once it ended.
    fn end_of_withheld(&mut self) {
        if let Some(withheld_bytes) = self.withheld.take() {
            tracing::warn!(
                target: spanline_pipe::TARGET,
                parent: &self.span,
                stream = self.stream.name(),
                withheld_bytes,
                limit = MAX_REDACTED_LINE,
                "a JSON line of the child's is too long to redact; the rest of it is withheld"
            );
        }
    }

    /// Re-emits one line (without its newline) as an event of the
    /// command's, through the receiver: the parent's filter applies to the
    /// command's name as a target, as to a forwarded record's. A JSON
    /// line (an object or an array, cut or not) has the value of every
    /// hidden key masked, at any depth (`Redact::scrub_json`).
    fn emit(&mut self, raw: &[u8]) {
        let message = plain_text(&String::from_utf8_lossy(raw));
        let message = match self.redact.scrub_json(&message) {
            std::borrow::Cow::Borrowed(_) => message,
            std::borrow::Cow::Owned(masked) => masked,
        };
        // A line with nothing to read (blank, or only escapes) is no line.
        if message.trim().is_empty() {
            return;
        }
        let now = spanline_core::Timestamp::now();
        let mut fields = Map::new();
        fields.insert("message".into(), Value::String(message));
        fields.insert("stream".into(), Value::from(self.stream.name()));
        let record = Record::Ev {
            pid: self.pid,
            ts: (now.unix_secs(), now.subsec_nanos()),
            span: None,
            level: self.stream.level().into(),
            target: self.target.clone(),
            file: None,
            line: None,
            fields,
            errors: Map::new(),
            context: Map::new(),
        };
        // No size limit: the record goes to the receiver, not to a pipe.
        let (line, _) = record.encode(usize::MAX);
        self.receiver
            .feed_line(line.strip_suffix(b"\n").unwrap_or(&line));
    }
}

/// Reads `read` to its end, handing each line to `lines`; `waiting` is set
/// while the read waits on an empty pipe.
fn read_lines(mut read: impl Read, waiting: &AtomicBool, mut lines: TextLines) {
    let max_line = lines.max_line();
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 8 * 1024];
    loop {
        waiting.store(true, Ordering::Release);
        let got = read.read(&mut chunk);
        waiting.store(false, Ordering::Release);
        let n = match got {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        // `pending` holds no newline before what was just read.
        let scanned = pending.len();
        pending.extend_from_slice(chunk.get(..n).unwrap_or_default());
        let mut start = 0;
        let mut from = scanned;
        while let Some(at) = pending.get(from..).and_then(find_newline) {
            let end = from + at;
            lines.piece(pending.get(start..end).unwrap_or_default(), true);
            start = end + 1;
            from = start;
        }
        while pending.len() - start >= max_line {
            lines.piece(
                pending.get(start..start + max_line).unwrap_or_default(),
                false,
            );
            start += max_line;
        }
        pending.drain(..start);
    }
    // A last line without its newline, or the end of a cut one.
    if pending.is_empty() {
        lines.end_of_withheld();
    } else {
        lines.piece(&pending, true);
    }
}

/// Where the first newline of `bytes` is.
fn find_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

/// Whether `bytes` starts as JSON that may hold keys: an object or an
/// array, after any whitespace.
fn starts_json(bytes: &[u8]) -> bool {
    matches!(
        bytes.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{' | b'[')
    )
}

/// `text` as a reader sees it, without a terminal's controls: ANSI escape
/// sequences (CSI such as colours and cursor moves, OSC such as window
/// titles and links, DCS and the like, two-byte escapes) and every other
/// control character removed, except that a tab becomes a space (it
/// separates words).
fn plain_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                // CSI: parameters and intermediates, then a final byte.
                Some('[') => skip_csi(&mut chars),
                // OSC, DCS, SOS, PM, APC: up to BEL or ST (ESC \).
                Some(']' | 'P' | 'X' | '^' | '_') => skip_string(&mut chars),
                // Intermediates, then a final character (`ESC ( B`).
                Some(' '..='/') => {
                    while chars.next_if(|c| (' '..='/').contains(c)).is_some() {}
                    chars.next();
                }
                // A two-byte escape (`ESC 7`, `ESC c`), or a lone ESC.
                _ => {}
            },
            '\u{9b}' => skip_csi(&mut chars),
            '\u{9d}' | '\u{90}' | '\u{98}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
            '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Skips the rest of a CSI sequence: up to and with its final byte.
fn skip_csi(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    for c in chars.by_ref() {
        if ('\u{40}'..='\u{7e}').contains(&c) {
            break;
        }
    }
}

/// Skips the rest of a control string: up to and with BEL or ST.
fn skip_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(c) = chars.next() {
        match c {
            '\u{7}' | '\u{9c}' => break,
            '\u{1b}' if chars.peek() == Some(&'\\') => {
                chars.next();
                break;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_has_no_escapes_or_controls() {
        for (raw, plain) in [
            ("\u{1b}[31mred\u{1b}[0m text", "red text"),
            ("\u{1b}[1;38;5;208mbold orange\u{1b}[m", "bold orange"),
            ("\u{1b}]0;title\u{7}after title", "after title"),
            (
                "\u{1b}]8;;https://x.example\u{1b}\\link\u{1b}]8;;\u{1b}\\",
                "link",
            ),
            ("\u{1b}(Bcharset \u{1b}7saved", "charset saved"),
            ("a\tb\r\u{7}\u{0}c", "a bc"),
            ("50%\r100%", "50%100%"),
            ("\u{9b}32mC1\u{9b}0m", "C1"),
            ("unicode é 😀 stays", "unicode é 😀 stays"),
            ("lone escape at the end \u{1b}", "lone escape at the end "),
            ("\u{1b}[12;", ""),
        ] {
            assert_eq!(plain_text(raw), plain, "{raw:?}");
        }
    }

    #[test]
    fn a_command_that_cannot_start_is_named_with_the_cause() {
        let missing = io::Error::from_raw_os_error(2);
        assert_eq!(
            cannot_start("/nonexistent", &missing),
            "cannot start `/nonexistent`: No such file or directory"
        );
        assert_eq!(
            cannot_start("no-such-command", &missing),
            "cannot start `no-such-command`: command not found (searched PATH)"
        );
        assert_eq!(
            cannot_start("./x\u{1b}[2J", &io::Error::from_raw_os_error(13)),
            "cannot start `./x\\u{1b}[2J`: Permission denied"
        );
        assert_eq!(
            cannot_start("./x", &io::Error::other("no pipe")),
            "cannot start `./x`: no pipe"
        );
    }

    #[test]
    fn redact_keys_are_read_as_spanline_init_reads_them() {
        assert_eq!(
            redact_keys(Some(" password, token ,,*secret*")),
            ["password", "token", "*secret*"]
        );
        assert!(redact_keys(Some(" , ")).is_empty());
        assert!(redact_keys(None).is_empty());
    }

    #[test]
    fn a_command_is_named_by_its_file_name() {
        assert_eq!(command_name("/bin/sh"), "sh");
        assert_eq!(command_name("./target/debug/worker"), "worker");
        assert_eq!(command_name("cargo"), "cargo");
        assert_eq!(command_name("/"), "/");
    }
}
