//! [`Forwarder`]: the parent's side. Spawns a child with a dedicated pipe,
//! reads its records on a thread, and re-emits them here.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use tracing::{field, Dispatch, Span};
use tracing_core::LevelFilter;

use crate::idle::{IdleClock, POLL};
use crate::lines::Lines;
use crate::receiver::{Receiver, TARGET};
use crate::wire::{Spec, ENV_VAR, FD};

/// Runs child processes whose log records come back into this process's
/// subscriber, as if logged here: under this process's `RUST_LOG` and
/// layers, inside a `child` span (target `spanline_pipe`, fields `name`
/// and `pid`) under the span current at spawn.
///
/// ```no_run
/// use std::process::Command;
/// let child = spanline_pipe::Forwarder::new("worker-1").spawn(&mut Command::new("my-worker"))?;
/// let status = child.wait()?; // logs the exit status; returns it
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// The child needs `ForwardLayer::from_env()` in its subscriber (it finds
/// the pipe through the `SPANLINE_FORWARD` variable). The pipe is a
/// dedicated descriptor (3), not stdout, which any dependency may print to;
/// the child's stdio is left as the `Command` says.
///
/// What goes wrong is reported as events under the `child` span, never as a
/// crash: an unparseable record (WARN, with at most 200 bytes of it), a
/// truncated last record (WARN), records the child dropped (WARN), the exit
/// status (INFO on success, ERROR with the code or signal), and descendants
/// that keep the pipe open after the child exits (WARN, after
/// [`leak_timeout`](Self::leak_timeout)). Spans still open at the end are
/// closed.
#[derive(Clone, Debug)]
pub struct Forwarder {
    pub(crate) name: String,
    pub(crate) leak_timeout: Duration,
    pub(crate) env: Option<EnvVars>,
    pub(crate) redact: spanline_core::Redact,
}

/// Computes variables for a child's environment (see
/// [`Forwarder::env_with`]).
pub type EnvVars = fn() -> Vec<(String, String)>;

/// A child started by a [`Forwarder`].
///
/// ```
/// let child = spanline_pipe::Forwarder::new("true").spawn(&mut std::process::Command::new("true"))?;
/// assert!(child.id() > 0);
/// assert!(child.wait()?.success());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
#[must_use = "wait for the child, or its last records and exit status are not reported"]
pub struct ForwardedChild {
    child: Child,
    span: Span,
    eof: mpsc::Receiver<()>,
    reader: Option<JoinHandle<()>>,
    idle: IdleClock,
    leak_timeout: Duration,
}

impl Forwarder {
    /// How long to wait, after the child exits, for descendants that hold
    /// the pipe open, by default (as nextest's leak timeout).
    ///
    /// ```
    /// assert_eq!(spanline_pipe::Forwarder::DEFAULT_LEAK_TIMEOUT.as_millis(), 100);
    /// ```
    pub const DEFAULT_LEAK_TIMEOUT: Duration = Duration::from_millis(100);

    /// A forwarder whose children are named `name` in the `child` span.
    ///
    /// See [`Forwarder`]'s example.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            leak_timeout: Self::DEFAULT_LEAK_TIMEOUT,
            env: None,
            redact: spanline_core::Redact::default(),
        }
    }

    /// Writes the values of these keys as `"[redacted]"` in every line
    /// re-emitted from the children, whatever they did themselves (a child
    /// without redaction, or run without `SPANLINE_REDACT`): event and
    /// span fields, fields recorded later, the event's context, keys nested
    /// in JSON values or in JSON text a string holds, the excerpt of a bad
    /// record (see [`Receiver::redact`]).
    ///
    /// ```
    /// let child = spanline_pipe::Forwarder::new("worker")
    ///     .redact(["password", "token"])
    ///     .spawn(&mut std::process::Command::new("true"))?;
    /// child.wait()?;
    /// # Ok::<(), std::io::Error>(())
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

    /// A receiver for one child, under `root`, with this forwarder's
    /// redaction.
    pub(crate) fn receiver(&self, root: Span) -> Receiver {
        Receiver::new(root).redacting(self.redact.clone())
    }

    /// Variables for each child's environment, computed at every spawn:
    /// for the context a child should continue. `spanline::pipe::forwarder`
    /// (the facade) passes the current context this way (`TRACEPARENT`,
    /// `TRACESTATE`, `BAGGAGE`, from spanline-context's `ContextSnapshot`).
    ///
    /// ```
    /// fn deployment() -> Vec<(String, String)> {
    ///     vec![("DEPLOYMENT".into(), "blue".into())]
    /// }
    /// let child = spanline_pipe::Forwarder::new("env").env_with(deployment)
    ///     .spawn(std::process::Command::new("sh").args(["-c", "test \"$DEPLOYMENT\" = blue"]))?;
    /// assert!(child.wait()?.success());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn env_with(mut self, vars: EnvVars) -> Self {
        self.env = Some(vars);
        self
    }

    /// Sets the leak timeout (see the type's docs).
    ///
    /// See [`Forwarder`]'s example.
    #[must_use]
    pub fn leak_timeout(mut self, timeout: Duration) -> Self {
        self.leak_timeout = timeout;
        self
    }

    /// Spawns `cmd` like [`spawn`](Self::spawn), but hands back the pipe's
    /// read end instead of reading it: for a custom reader (another thread
    /// model, a benchmark), which feeds each line to a [`Receiver`].
    ///
    /// ```
    /// use std::io::BufRead;
    /// let (mut child, read) = spanline_pipe::Forwarder::new("raw").spawn_with_reader(&mut std::process::Command::new("true"))?;
    /// let mut receiver = spanline_pipe::Receiver::new(tracing::Span::none());
    /// for line in std::io::BufReader::new(read).split(b'\n') {
    ///     receiver.feed_line(&line?);
    /// }
    /// receiver.finish(&[]);
    /// child.wait()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn spawn_with_reader(
        &self,
        cmd: &mut Command,
    ) -> io::Result<(std::process::Child, io::PipeReader)> {
        let (read, write) = prepare(cmd, self.env)?;
        let child = cmd.spawn()?;
        // Only the child holds the write end now: EOF comes when it (and
        // any descendant it passed the pipe to) is done.
        drop(write);
        Ok((child, read))
    }

    /// Spawns `cmd` with the forwarding pipe as descriptor 3 and
    /// `SPANLINE_FORWARD` set (with this process's maximum level, so the
    /// child does not encode what would be discarded here), and starts
    /// reading its records, with the variables of [`env_with`](Self::env_with).
    ///
    /// ```
    /// let child = spanline_pipe::Forwarder::new("lister").spawn(std::process::Command::new("ls").arg("/"))?;
    /// let status = child.wait()?;
    /// assert!(status.success());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn spawn(&self, cmd: &mut Command) -> io::Result<ForwardedChild> {
        let span = child_span(&self.name);
        let (child, read) = self.spawn_with_reader(cmd)?;
        span.record("pid", child.id());

        let (eof_tx, eof) = mpsc::channel();
        let dispatch = tracing::dispatcher::get_default(Dispatch::clone);
        let receiver = self.receiver(span.clone());
        let idle = IdleClock::default();
        let reader_idle = idle.clone();
        let reader = std::thread::Builder::new()
            .name("spanline-pipe-reader".into())
            .spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    read_records(read, receiver, &reader_idle)
                });
                let _ = eof_tx.send(());
            })?;
        Ok(ForwardedChild {
            child,
            span,
            eof,
            reader: Some(reader),
            idle,
            leak_timeout: self.leak_timeout,
        })
    }
}

/// Creates the pipe and sets `cmd` up to get its write end as descriptor
/// [`FD`], with `SPANLINE_FORWARD` (and the forwarder's own variables) in
/// its environment. The caller drops the returned write end once the child
/// is spawned.
pub(crate) fn prepare(
    cmd: &mut Command,
    env: Option<EnvVars>,
) -> io::Result<(io::PipeReader, File)> {
    let (read, write) = io::pipe()?;
    let write = File::from(OwnedFd::from(write));
    let spec = Spec {
        fd: FD,
        ino: write.metadata()?.ino(),
        // The most verbose line this process writes: the child sends no
        // event above it (its spans go through regardless).
        max_level: LevelFilter::current().min(spanline_core::lines_max_level()),
    };
    crate::sys::pass_fd(cmd, write.as_raw_fd(), FD);
    cmd.env(ENV_VAR, spec.render());
    if let Some(vars) = env {
        cmd.envs(vars());
    }
    Ok((read, write))
}

/// The `child` span a child's records are re-emitted under.
pub(crate) fn child_span(name: &str) -> Span {
    tracing::info_span!(target: TARGET, "child", name = %name, pid = field::Empty)
}

/// Logs that descendants of the exited child still hold the pipe open.
pub(crate) fn report_leak(span: &Span, waited: Duration) {
    let waited_ms = waited.as_millis() as u64;
    tracing::warn!(
        target: TARGET,
        parent: span,
        waited_ms,
        "the child exited but its descendants still hold the log pipe open"
    );
}

/// Logs the child's exit status: INFO on success, ERROR otherwise.
pub(crate) fn report_exit(span: &Span, status: ExitStatus) {
    match (status.code(), status.signal()) {
        (Some(0), _) => tracing::info!(target: TARGET, parent: span, code = 0, "child exited"),
        (Some(code), _) => tracing::error!(target: TARGET, parent: span, code, "child failed"),
        (None, Some(signal)) => {
            tracing::error!(target: TARGET, parent: span, signal, "child killed by a signal")
        }
        (None, None) => {
            tracing::error!(target: TARGET, parent: span, "child ended without a status")
        }
    }
}

/// Reads the pipe until EOF; each complete line is a record.
fn read_records(mut read: io::PipeReader, mut receiver: Receiver, idle: &IdleClock) {
    let mut lines = Lines::new();
    loop {
        idle.start();
        let got = read.read(lines.spare());
        idle.stop();
        match got {
            Ok(0) => break,
            Ok(n) => lines.commit(n, &mut receiver),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                receiver.read_failed(&e);
                break;
            }
        }
    }
    lines.finish(&mut receiver);
}

impl ForwardedChild {
    /// The child's process id.
    ///
    /// ```
    /// let child = spanline_pipe::Forwarder::new("t").spawn(&mut std::process::Command::new("true"))?;
    /// assert!(child.id() > 0);
    /// child.wait()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The `child` span its records are re-emitted under.
    ///
    /// ```
    /// let child = spanline_pipe::Forwarder::new("t").spawn(&mut std::process::Command::new("true"))?;
    /// let _span = child.span().clone();
    /// child.wait()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn span(&self) -> &Span {
        &self.span
    }

    /// The child's exit status if it has exited, without waiting; `None`
    /// while it runs. Its last records may still be on their way:
    /// [`wait`](Self::wait) for them, which also logs the status.
    ///
    /// ```
    /// let mut child = spanline_pipe::Forwarder::new("t").spawn(&mut std::process::Command::new("true"))?;
    /// while child.try_wait()?.is_none() {
    ///     std::thread::sleep(std::time::Duration::from_millis(5));
    /// }
    /// assert!(child.wait()?.success());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.child.try_wait()
    }

    /// Waits for the child to exit and for its last records, then logs the
    /// exit status and returns it.
    ///
    /// ```
    /// let child = spanline_pipe::Forwarder::new("t").spawn(&mut std::process::Command::new("false"))?;
    /// assert_eq!(child.wait()?.code(), Some(1)); // and an ERROR "child failed" is logged
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait(mut self) -> io::Result<ExitStatus> {
        let status = self.child.wait()?;
        // Every record the child wrote is in the pipe now: wait as long as
        // the reader works through them; only time it spends waiting on an
        // empty pipe that is not closed means descendants hold it.
        let idle_at_exit = self.idle.waited();
        loop {
            match self.eof.recv_timeout(POLL) {
                Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                    if let Some(reader) = self.reader.take() {
                        let _ = reader.join();
                    }
                    break;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if self.idle.waited().saturating_sub(idle_at_exit) >= self.leak_timeout {
                        // The reader goes on in the background until they close it.
                        report_leak(&self.span, self.leak_timeout);
                        break;
                    }
                }
            }
        }
        report_exit(&self.span, status);
        Ok(status)
    }
}
