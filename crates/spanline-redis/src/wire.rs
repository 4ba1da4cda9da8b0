//! The worker's own connection to a single server over TCP or a Unix
//! socket: it logs in as the URL says, writes the batch's commands, already
//! packed ([`crate::pack`]), and reads the replies ([`crate::reply`]). A TLS
//! connection (`rediss://`) still goes through redis-rs.
//!
//! The connection speaks RESP2 whatever the URL's `protocol`: it never says
//! `HELLO 3`, and it subscribes to nothing, so no push message comes.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use redis::{ConnectionAddr, ConnectionInfo, RedisConnectionInfo};

use crate::pack::write_command;
use crate::reply::{Replies, Reply};

/// How far past its deadline a pipeline's wait for a reply may end: the
/// read timeout is set again only when the time left shrank by more.
pub(crate) const SLACK: Duration = Duration::from_millis(1);

/// The byte stream under the connection.
enum Stream {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(std::os::unix::net::UnixStream),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            #[cfg(unix)]
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            #[cfg(unix)]
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Why a connection could not be made.
#[derive(Debug)]
pub(crate) enum WireError {
    /// Down, unreachable, slow, or cut during the login.
    Io(io::Error),
    /// The server refused the login or the database (its error reply).
    Refused(String),
    /// The server cannot take the login now (`LOADING`, ...).
    Busy(String),
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireError::Io(e) => e.fmt(f),
            WireError::Refused(text) | WireError::Busy(text) => f.write_str(text),
        }
    }
}

/// A connection to one server.
pub(crate) struct Wire {
    replies: Replies<Stream>,
    /// The socket's timeouts as last set: setting one is a system call,
    /// made only when the new one differs by more than a millisecond.
    read_timeout: Cell<Option<Duration>>,
    write_timeout: Cell<Option<Duration>>,
}

/// The time left before `deadline`, at least a millisecond (a timeout
/// of zero is refused by the socket).
pub(crate) fn left(deadline: Instant) -> Duration {
    deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1))
}

/// Sets a timeout to `wanted` with `set` unless what `cell` says is set
/// is within [`SLACK`] of it.
fn set_timeout(
    cell: &Cell<Option<Duration>>,
    wanted: Duration,
    set: impl FnOnce() -> io::Result<()>,
) -> io::Result<()> {
    if cell.get().is_none_or(|now| now.abs_diff(wanted) > SLACK) {
        // Unknown until the call succeeds.
        cell.set(None);
        set()?;
        cell.set(Some(wanted));
    }
    Ok(())
}

impl Wire {
    /// Connects to `info`'s address, logs in and selects the database, all
    /// within `timeout`. `None`: an address this connection does not speak
    /// (TLS), for redis-rs to connect to.
    pub(crate) fn connect(
        info: &ConnectionInfo,
        timeout: Duration,
    ) -> Option<Result<Wire, WireError>> {
        let deadline = Instant::now() + timeout;
        let stream = match info.addr() {
            ConnectionAddr::Tcp(host, port) => tcp(host, *port, timeout).map(Stream::Tcp),
            #[cfg(unix)]
            ConnectionAddr::Unix(path) => {
                std::os::unix::net::UnixStream::connect(path).map(Stream::Unix)
            }
            _ => return None,
        };
        Some(stream.map_err(WireError::Io).and_then(|stream| {
            let mut wire = Wire {
                replies: Replies::new(stream),
                read_timeout: Cell::new(None),
                write_timeout: Cell::new(None),
            };
            wire.login(info.redis_settings(), deadline)?;
            Ok(wire)
        }))
    }

    /// `AUTH` when the URL has a password, `SELECT` when its database is
    /// not 0, and the library's name for `CLIENT LIST` (refused by servers
    /// before 7.2: ignored).
    fn login(&mut self, redis: &RedisConnectionInfo, deadline: Instant) -> Result<(), WireError> {
        let time_left = || left(deadline);
        self.set_timeouts(time_left()).map_err(WireError::Io)?;
        if let Some(password) = redis.password() {
            let said = self.ask(&auth(redis.username(), password))?;
            // A server before 6.0 knows no users: log in with the password
            // alone, as redis-rs does.
            if let (Reply::Fail(text), Some(_)) = (&said, redis.username()) {
                if text.contains("wrong number of arguments") {
                    self.set_timeouts(time_left()).map_err(WireError::Io)?;
                    check(self.ask(&auth(None, password))?)?;
                } else {
                    check(said)?;
                }
            } else {
                check(said)?;
            }
        }
        if redis.db() != 0 {
            self.set_timeouts(time_left()).map_err(WireError::Io)?;
            let db = redis.db().to_string();
            check(self.ask(&[b"SELECT", db.as_bytes()])?)?;
        }
        self.set_timeouts(time_left()).map_err(WireError::Io)?;
        let mut packed = Vec::new();
        write_command(
            &mut packed,
            &[b"CLIENT", b"SETINFO", b"LIB-NAME", b"spanline-redis"],
        );
        write_command(
            &mut packed,
            &[
                b"CLIENT",
                b"SETINFO",
                b"LIB-VER",
                env!("CARGO_PKG_VERSION").as_bytes(),
            ],
        );
        self.send(&packed).map_err(WireError::Io)?;
        for _ in 0..2 {
            self.reply().map_err(WireError::Io)?;
        }
        Ok(())
    }

    /// One command, and its reply.
    fn ask(&mut self, args: &[&[u8]]) -> Result<Reply, WireError> {
        let mut packed = Vec::new();
        write_command(&mut packed, args);
        self.send(&packed).map_err(WireError::Io)?;
        self.reply().map_err(WireError::Io)
    }

    /// Sets both timeouts (within a millisecond of `io`).
    pub(crate) fn set_timeouts(&self, io: Duration) -> io::Result<()> {
        self.set_read_timeout(io)?;
        set_timeout(&self.write_timeout, io, || {
            self.socket().set_write_timeout(Some(io))
        })
    }

    /// Sets the read timeout (within a millisecond of `io`).
    fn set_read_timeout(&self, io: Duration) -> io::Result<()> {
        set_timeout(&self.read_timeout, io, || {
            self.socket().set_read_timeout(Some(io))
        })
    }

    fn socket(&self) -> socket2::SockRef<'_> {
        match self.replies.stream() {
            Stream::Tcp(s) => socket2::SockRef::from(s),
            #[cfg(unix)]
            Stream::Unix(s) => socket2::SockRef::from(s),
        }
    }

    /// Writes commands already in the Redis protocol.
    pub(crate) fn send(&mut self, packed: &[u8]) -> io::Result<()> {
        self.replies.stream_mut().write_all(packed)
    }

    /// The next reply.
    pub(crate) fn reply(&mut self) -> io::Result<Reply> {
        self.replies.next()
    }

    /// Reads `count` replies into `replies`, all by `deadline` (asked again
    /// before each read: a shutdown can bring it forward). A wait ends at
    /// most [`SLACK`] past it.
    pub(crate) fn read_replies(
        &mut self,
        count: usize,
        deadline: &dyn Fn() -> Instant,
        replies: &mut Vec<Reply>,
    ) -> io::Result<()> {
        for _ in 0..count {
            // The clock is asked only before a read: a reply already read
            // takes microseconds.
            if !self.replies.buffered() {
                let deadline = deadline();
                if Instant::now() >= deadline {
                    return Err(io::ErrorKind::TimedOut.into());
                }
                self.set_read_timeout(left(deadline))?;
            }
            replies.push(self.reply()?);
        }
        Ok(())
    }
}

/// `AUTH [user] password`.
fn auth<'a>(user: Option<&'a str>, password: &'a str) -> Vec<&'a [u8]> {
    let mut args: Vec<&[u8]> = vec![b"AUTH"];
    args.extend(user.map(str::as_bytes));
    args.push(password.as_bytes());
    args
}

/// The login's reply: refused, busy, or done.
fn check(reply: Reply) -> Result<(), WireError> {
    match reply {
        Reply::Ok => Ok(()),
        Reply::Retry(text) => Err(WireError::Busy(text)),
        Reply::Lost => Err(WireError::Io(io::ErrorKind::TimedOut.into())),
        Reply::Fail(text) => Err(WireError::Refused(text)),
    }
}

/// The first of `host`'s addresses that answers, with no Nagle delay on
/// small pipelines and TCP keepalive (a connection silently cut by a
/// middlebox is noticed), as the redis-rs connection had.
fn tcp(host: &str, port: u16, timeout: Duration) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{host}: no address"));
    for addr in (host, port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => {
                stream.set_nodelay(true)?;
                let keepalive = socket2::TcpKeepalive::new().with_time(Duration::from_secs(30));
                socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive)?;
                return Ok(stream);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}
