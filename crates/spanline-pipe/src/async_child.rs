//! The tokio variant of [`Forwarder::spawn`]: the child is a
//! `tokio::process::Child`, its pipe is read by a task, and waiting on it
//! holds no thread (feature `tokio`).

use std::io;
use std::os::fd::OwnedFd;
use std::process::ExitStatus;
use std::time::Duration;

use tokio::net::unix::pipe;
use tokio::task::JoinHandle;
use tracing::{Dispatch, Span};

use crate::idle::{IdleClock, POLL};
use crate::lines::Lines;
use crate::parent::{child_span, prepare, report_exit, report_leak};
use crate::{Forwarder, Receiver};

/// A child started by [`Forwarder::spawn_async`].
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
/// let child = spanline_pipe::Forwarder::new("worker")
///     .spawn_async(&mut tokio::process::Command::new("my-worker"))?;
/// let status = child.wait().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "wait for the child, or its last records and exit status are not reported"]
pub struct AsyncForwardedChild {
    child: tokio::process::Child,
    span: Span,
    reader: JoinHandle<()>,
    idle: IdleClock,
    leak_timeout: Duration,
}

impl Forwarder {
    /// Like [`spawn`](Self::spawn), for tokio (feature `tokio`): spawns
    /// `cmd` as a `tokio::process::Child` and reads its records on a task
    /// of the current runtime, so no thread is held while the child runs.
    /// The records are re-emitted into the dispatcher current here.
    ///
    /// Needs a tokio runtime with I/O and time enabled (as `#[tokio::main]`
    /// builds); outside any runtime it returns an error.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let child = spanline_pipe::Forwarder::new("lister")
    ///     .spawn_async(tokio::process::Command::new("ls").arg("/"))?;
    /// assert!(child.wait().await?.success());
    /// # Ok(()) }
    /// ```
    pub fn spawn_async(
        &self,
        cmd: &mut tokio::process::Command,
    ) -> io::Result<AsyncForwardedChild> {
        let runtime = tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
        let span = child_span(&self.name);
        let (read, write) = prepare(cmd.as_std_mut(), self.env)?;
        let child = cmd.spawn()?;
        drop(write);
        span.record("pid", child.id());
        let pipe = pipe::Receiver::from_owned_fd(OwnedFd::from(read))?;
        let dispatch = tracing::dispatcher::get_default(Dispatch::clone);
        let idle = IdleClock::default();
        let reader = runtime.spawn(read_records(
            pipe,
            self.receiver(span.clone()),
            dispatch,
            idle.clone(),
        ));
        Ok(AsyncForwardedChild {
            child,
            span,
            reader,
            idle,
            leak_timeout: self.leak_timeout,
        })
    }
}

/// Reads the pipe until EOF, re-emitting each record into `dispatch`.
async fn read_records(
    pipe: pipe::Receiver,
    mut receiver: Receiver,
    dispatch: Dispatch,
    idle: IdleClock,
) {
    let mut lines = Lines::new();
    loop {
        idle.start();
        let readable = pipe.readable().await;
        idle.stop();
        if let Err(e) = readable {
            tracing::dispatcher::with_default(&dispatch, || receiver.read_failed(&e));
            break;
        }
        match pipe.try_read(lines.spare()) {
            Ok(0) => break,
            // A whole read's lines are re-emitted in one go, synchronously:
            // the recreated spans are never held entered across an await.
            Ok(n) => {
                tracing::dispatcher::with_default(&dispatch, || lines.commit(n, &mut receiver))
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => {
                tracing::dispatcher::with_default(&dispatch, || receiver.read_failed(&e));
                break;
            }
        }
    }
    tracing::dispatcher::with_default(&dispatch, || lines.finish(&mut receiver));
}

impl AsyncForwardedChild {
    /// The child's process id, while it runs.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let child = spanline_pipe::Forwarder::new("t").spawn_async(&mut tokio::process::Command::new("true"))?;
    /// assert!(child.id().is_some());
    /// child.wait().await?;
    /// # Ok(()) }
    /// ```
    pub fn id(&self) -> Option<u32> {
        self.child.id()
    }

    /// The `child` span its records are re-emitted under.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let child = spanline_pipe::Forwarder::new("t").spawn_async(&mut tokio::process::Command::new("true"))?;
    /// let _span = child.span().clone();
    /// child.wait().await?;
    /// # Ok(()) }
    /// ```
    pub fn span(&self) -> &Span {
        &self.span
    }

    /// Waits for the child to exit and for its last records, then logs the
    /// exit status and returns it, as [`ForwardedChild::wait`](crate::ForwardedChild::wait)
    /// does (the leak timeout included).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let child = spanline_pipe::Forwarder::new("t").spawn_async(&mut tokio::process::Command::new("false"))?;
    /// assert_eq!(child.wait().await?.code(), Some(1)); // and an ERROR "child failed" is logged
    /// # Ok(()) }
    /// ```
    pub async fn wait(mut self) -> io::Result<ExitStatus> {
        let status = self.child.wait().await?;
        // As the sync `wait`: all the time the reader needs, and the leak
        // timeout only for time spent waiting on an empty, open pipe. Past
        // it the reader task goes on until the descendants close the pipe.
        let idle_at_exit = self.idle.waited();
        loop {
            if tokio::time::timeout(POLL, &mut self.reader).await.is_ok() {
                break;
            }
            if self.idle.waited().saturating_sub(idle_at_exit) >= self.leak_timeout {
                report_leak(&self.span, self.leak_timeout);
                break;
            }
        }
        report_exit(&self.span, status);
        Ok(status)
    }
}
