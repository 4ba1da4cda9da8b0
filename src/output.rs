//! Where [`init`](crate::init) writes lines: stdout, stderr or a file,
//! from the logging thread or through a writer thread.
//!
//! Written from the logging thread (the default), a line is on its way
//! when the log call returns, and a reader of stdout that stalls stalls
//! every logging thread with it: nothing is lost, the program waits.
//! Through the writer thread (`non_blocking`), a log call only queues the
//! line; when the queue (128,000 lines) is full, the line is dropped and
//! counted, and every loss is said on stderr at exit.

use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tracing_appender::non_blocking::{ErrorCounter, NonBlocking, WorkerGuard};
use tracing_appender::rolling::{RollingFileAppender, RollingWriter};
use tracing_subscriber::fmt::MakeWriter;

use crate::error::InitError;

/// How lines are written to stdout.
///
/// ```
/// let format: spanline::Format = "pretty".parse().unwrap();
/// assert_eq!(format, spanline::Format::Pretty);
/// assert!("yaml".parse::<spanline::Format>().is_err());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// JSON lines ([`JsonLayer`](crate::JsonLayer)).
    Json,
    /// The readable console renderer ([`PrettyLayer`](crate::PrettyLayer)).
    Pretty,
    /// Pretty when stdout is a terminal, JSON otherwise (the default).
    #[default]
    Auto,
}

impl std::str::FromStr for Format {
    type Err = InitError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "json" => Ok(Format::Json),
            "pretty" => Ok(Format::Pretty),
            "auto" | "" => Ok(Format::Auto),
            other => Err(InitError::UnknownFormat(other.to_string())),
        }
    }
}

/// Where lines are written.
///
/// ```
/// let output: spanline::Output = "stderr".parse().unwrap();
/// assert_eq!(output, spanline::Output::Stderr);
/// assert!("syslog".parse::<spanline::Output>().is_err());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output {
    /// Standard output (the default).
    #[default]
    Stdout,
    /// Standard error: stdout stays the program's own.
    Stderr,
}

impl std::str::FromStr for Output {
    type Err = InitError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "stdout" | "" => Ok(Output::Stdout),
            "stderr" => Ok(Output::Stderr),
            other => Err(InitError::Invalid {
                name: "SPANLINE_OUTPUT",
                value: other.to_string(),
                expected: "stdout, stderr",
            }),
        }
    }
}

impl Output {
    pub(crate) fn is_terminal(self) -> bool {
        match self {
            Output::Stdout => io::stdout().is_terminal(),
            Output::Stderr => io::stderr().is_terminal(),
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Output::Stdout => "stdout",
            Output::Stderr => "stderr",
        }
    }
}

/// When a log file starts anew (see [`Builder::file`](crate::Builder::file)):
/// the file `app.log` becomes `app.log.2026-12-06` (daily),
/// `app.log.2026-12-06-14` (hourly) or `app.log.2026-12-06-14-05`
/// (minutely).
///
/// ```
/// let rotation: spanline::Rotation = "daily".parse().unwrap();
/// assert_eq!(rotation, spanline::Rotation::Daily);
/// assert!("weekly!".parse::<spanline::Rotation>().is_err());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rotation {
    /// One file, appended to (the default).
    #[default]
    Never,
    /// A new file every day (UTC).
    Daily,
    /// A new file every hour.
    Hourly,
    /// A new file every minute.
    Minutely,
}

impl std::str::FromStr for Rotation {
    type Err = InitError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "never" | "" => Ok(Rotation::Never),
            "daily" => Ok(Rotation::Daily),
            "hourly" => Ok(Rotation::Hourly),
            "minutely" => Ok(Rotation::Minutely),
            other => Err(InitError::Invalid {
                name: "SPANLINE_ROTATION",
                value: other.to_string(),
                expected: "never, daily, hourly, minutely",
            }),
        }
    }
}

impl Rotation {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Rotation::Never => "never",
            Rotation::Daily => "daily",
            Rotation::Hourly => "hourly",
            Rotation::Minutely => "minutely",
        }
    }
}

/// Opens `path` for appending lines, rotated as asked; creates its folder.
pub(crate) fn open_file(path: &str, rotation: Rotation) -> Result<RollingFileAppender, String> {
    let path = Path::new(path);
    let name = path
        .file_name()
        .ok_or_else(|| format!("{} names no file", path.display()))?;
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let rotation = match rotation {
        Rotation::Never => tracing_appender::rolling::Rotation::NEVER,
        Rotation::Daily => tracing_appender::rolling::Rotation::DAILY,
        Rotation::Hourly => tracing_appender::rolling::Rotation::HOURLY,
        Rotation::Minutely => tracing_appender::rolling::Rotation::MINUTELY,
    };
    RollingFileAppender::builder()
        .rotation(rotation)
        .filename_prefix(name.to_string_lossy())
        .build(folder)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))
}

/// The one `MakeWriter` of the layers `init()` installs.
#[derive(Clone, Debug)]
pub(crate) enum Destination {
    /// stdout or stderr, from the logging thread.
    Std(Output),
    /// A file, from the logging thread.
    File(Arc<RollingFileAppender>),
    /// Through the writer thread.
    Queued(NonBlocking, Arc<QueueCounts>),
}

/// What went through the writer thread, to tell at exit what was lost.
#[derive(Debug)]
pub(crate) struct QueueCounts {
    /// Lines handed to the queue (dropped ones included).
    sent: AtomicU64,
    /// Lines the writer thread wrote.
    written: Arc<AtomicU64>,
    /// Lines dropped because the queue was full.
    dropped: ErrorCounter,
}

impl QueueCounts {
    /// Lines dropped because the queue was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.dropped_lines() as u64
    }

    /// Lines queued but not written (yet, or ever if the process ends).
    pub(crate) fn unwritten(&self) -> u64 {
        let sent = self.sent.load(Ordering::Acquire);
        sent.saturating_sub(self.dropped() + self.written.load(Ordering::Acquire))
    }
}

/// The writer thread: its guard (dropped, it drains the queue, up to a
/// second) and its counts.
#[derive(Debug)]
pub(crate) struct Writer {
    pub(crate) guard: WorkerGuard,
    pub(crate) counts: Arc<QueueCounts>,
}

/// Puts `destination` behind a writer thread.
pub(crate) fn queued(destination: Destination) -> (Destination, Writer) {
    let written = Arc::new(AtomicU64::new(0));
    let writer = Counted {
        inner: destination,
        written: written.clone(),
    };
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .thread_name("spanline-writer")
        .finish(writer);
    let counts = Arc::new(QueueCounts {
        sent: AtomicU64::new(0),
        written,
        dropped: writer.error_counter(),
    });
    (
        Destination::Queued(writer, counts.clone()),
        Writer { guard, counts },
    )
}

/// The writer thread's writer: counts the lines it writes.
struct Counted {
    inner: Destination,
    written: Arc<AtomicU64>,
}

impl Write for Counted {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf).map(|()| buf.len())
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        // The writer thread hands over one line per call; a line counts
        // once it is written whole.
        self.inner.make_writer().write_all(buf)?;
        self.written.fetch_add(1, Ordering::Release);
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.make_writer().flush()
    }
}

/// The writer of one line.
pub(crate) enum LineWriter<'a> {
    Out(io::Stdout),
    Err(io::Stderr),
    File(RollingWriter<'a>),
    Queued(NonBlocking, &'a QueueCounts),
}

impl Write for LineWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            LineWriter::Out(w) => w.write(buf),
            LineWriter::Err(w) => w.write(buf),
            LineWriter::File(w) => w.write(buf),
            LineWriter::Queued(w, counts) => {
                counts.sent.fetch_add(1, Ordering::Release);
                w.write(buf)
            }
        }
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            LineWriter::Out(w) => w.write_all(buf),
            LineWriter::Err(w) => w.write_all(buf),
            LineWriter::File(w) => w.write_all(buf),
            // One line, one message: `write` queues it whole.
            LineWriter::Queued(..) => self.write(buf).map(drop),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            LineWriter::Out(w) => w.flush(),
            LineWriter::Err(w) => w.flush(),
            LineWriter::File(w) => w.flush(),
            LineWriter::Queued(w, _) => w.flush(),
        }
    }
}

impl<'a> MakeWriter<'a> for Destination {
    type Writer = LineWriter<'a>;
    fn make_writer(&'a self) -> LineWriter<'a> {
        match self {
            Destination::Std(Output::Stdout) => LineWriter::Out(io::stdout()),
            Destination::Std(Output::Stderr) => LineWriter::Err(io::stderr()),
            Destination::File(file) => LineWriter::File(file.make_writer()),
            Destination::Queued(queue, counts) => LineWriter::Queued(queue.clone(), counts),
        }
    }
}
