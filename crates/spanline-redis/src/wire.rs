//! The worker's own connection to a single server over TCP or a Unix
//! socket: it writes the batch's commands, already in the Redis protocol,
//! and reads each reply as only what the worker needs of it (done, to try
//! again, or refused with the server's words), without building a value.
//!
//! redis-rs reads every reply into a `Value` through its general parser:
//! that was 43% of the worker's instructions per published line, for
//! replies that are `:1` (PUBLISH) or a stream entry's id (XADD). A TLS
//! connection (`rediss://`) still goes through redis-rs.
//!
//! The connection speaks RESP2 whatever the URL's `protocol`: it never says
//! `HELLO 3`, and it subscribes to nothing, so no push message comes.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use redis::{ConnectionAddr, ConnectionInfo, RedisConnectionInfo};

/// What became of one command of a pipeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    Ok,
    /// The server cannot run it now but will (`LOADING`, `BUSY`,
    /// `TRYAGAIN`, `MASTERDOWN`, `CLUSTERDOWN`): try again after back-off.
    /// The error's text.
    Retry(String),
    /// Refused for good (`NOPERM`, `WRONGTYPE`, ...): the error's text.
    Fail(String),
    /// Sent, and the connection broke or its time ran out before the
    /// reply: the server may have run it.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    Lost,
}

impl Reply {
    /// An error reply's text, `CODE details`.
    pub(crate) fn of_error(text: &str) -> Self {
        let code = text.split(' ').next().unwrap_or_default();
        if matches!(
            code,
            "LOADING" | "BUSY" | "TRYAGAIN" | "MASTERDOWN" | "CLUSTERDOWN"
        ) {
            Reply::Retry(text.to_string())
        } else {
            Reply::Fail(text.to_string())
        }
    }
}

/// How far past its deadline a pipeline's wait for a reply may end: the
/// read timeout is set again only when the time left shrank by more.
pub(crate) const SLACK: Duration = Duration::from_millis(1);

/// Read buffer: a pipeline's replies are small (`:1\r\n`, an id of about
/// 20 bytes), so one read takes hundreds.
const BUF: usize = 16 * 1024;

/// Arrays nest no deeper in any reply the worker asks for.
const MAX_DEPTH: usize = 8;

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
        let left = || {
            deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1))
        };
        self.set_timeouts(left()).map_err(WireError::Io)?;
        if let Some(password) = redis.password() {
            let said = self.ask(&auth(redis.username(), password))?;
            // A server before 6.0 knows no users: log in with the password
            // alone, as redis-rs does.
            if let (Reply::Fail(text), Some(_)) = (&said, redis.username()) {
                if text.contains("wrong number of arguments") {
                    self.set_timeouts(left()).map_err(WireError::Io)?;
                    check(self.ask(&auth(None, password))?)?;
                } else {
                    check(said)?;
                }
            } else {
                check(said)?;
            }
        }
        if redis.db() != 0 {
            self.set_timeouts(left()).map_err(WireError::Io)?;
            let db = redis.db().to_string();
            check(self.ask(&[b"SELECT", db.as_bytes()])?)?;
        }
        self.set_timeouts(left()).map_err(WireError::Io)?;
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
    pub(crate) fn set_read_timeout(&self, io: Duration) -> io::Result<()> {
        set_timeout(&self.read_timeout, io, || {
            self.socket().set_read_timeout(Some(io))
        })
    }

    fn socket(&self) -> socket2::SockRef<'_> {
        match &self.replies.stream {
            Stream::Tcp(s) => socket2::SockRef::from(s),
            #[cfg(unix)]
            Stream::Unix(s) => socket2::SockRef::from(s),
        }
    }

    /// Writes commands already in the Redis protocol.
    pub(crate) fn send(&mut self, packed: &[u8]) -> io::Result<()> {
        self.replies.stream.write_all(packed)
    }

    /// The next reply.
    pub(crate) fn reply(&mut self) -> io::Result<Reply> {
        self.replies.next()
    }

    /// Bytes of a reply are read already: the next reply may need no read.
    pub(crate) fn buffered(&self) -> bool {
        self.replies.start < self.replies.end
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

/// A command in the Redis protocol: an array of bulk strings.
pub(crate) fn write_command(buf: &mut Vec<u8>, args: &[&[u8]]) {
    write_header(buf, b'*', args.len());
    for arg in args {
        write_bulk(buf, arg);
    }
}

fn write_header(buf: &mut Vec<u8>, kind: u8, n: usize) {
    let mut num = itoa::Buffer::new();
    buf.push(kind);
    buf.extend_from_slice(num.format(n).as_bytes());
    buf.extend_from_slice(b"\r\n");
}

fn write_bulk(buf: &mut Vec<u8>, arg: &[u8]) {
    buf.reserve(arg.len() + 16);
    write_header(buf, b'$', arg.len());
    buf.extend_from_slice(arg);
    buf.extend_from_slice(b"\r\n");
}

/// A batch's commands packed into one buffer. All arguments but the last
/// (the command's name, its channel or stream, the stream's options)
/// repeat from one command to the next, so the packed bytes of the last
/// few such heads are kept and copied: only the line is packed anew.
#[derive(Debug, Default)]
pub(crate) struct Packer {
    /// The batch's commands.
    bytes: Vec<u8>,
    /// Heads seen lately: an event's commands go to the global channel and
    /// its job's, to channels and streams.
    heads: Vec<Head>,
    /// The head a new one replaces.
    next: usize,
}

/// How many heads a packer keeps.
const HEADS: usize = 4;

/// A command's arguments but its last.
#[derive(Debug, Default)]
struct Head {
    /// Packed, with the array's header.
    packed: Vec<u8>,
    /// The arguments end to end, and each one's length.
    args: Vec<u8>,
    lens: Vec<usize>,
}

impl Head {
    fn is(&self, head: &[&[u8]]) -> bool {
        if head.len() != self.lens.len() {
            return false;
        }
        let mut at = 0;
        head.iter().zip(&self.lens).all(|(arg, &len)| {
            let same = arg.len() == len && self.args.get(at..at + len) == Some(*arg);
            at += len;
            same
        })
    }

    fn set(&mut self, head: &[&[u8]]) {
        self.packed.clear();
        self.args.clear();
        self.lens.clear();
        write_header(&mut self.packed, b'*', head.len() + 1);
        for arg in head {
            write_bulk(&mut self.packed, arg);
            self.args.extend_from_slice(arg);
            self.lens.push(arg.len());
        }
    }
}

impl Packer {
    /// The commands packed since the last `clear`.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
    }

    /// Packs one command.
    pub(crate) fn push(&mut self, args: &[&[u8]]) {
        let Some((last, head)) = args.split_last() else {
            return;
        };
        let known = match self.heads.iter().position(|h| h.is(head)) {
            Some(i) => i,
            None => {
                let i = if self.heads.len() < HEADS {
                    self.heads.push(Head::default());
                    self.heads.len() - 1
                } else {
                    self.next = (self.next + 1) % HEADS;
                    self.next
                };
                self.heads[i].set(head);
                i
            }
        };
        self.bytes.extend_from_slice(&self.heads[known].packed);
        write_bulk(&mut self.bytes, last);
    }
}

/// RESP2 replies read from a byte stream through a buffer of our own.
pub(crate) struct Replies<S> {
    stream: S,
    buf: Box<[u8]>,
    /// The unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
}

fn bad(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("not a Redis reply: {what}"),
    )
}

impl<S: Read> Replies<S> {
    pub(crate) fn new(stream: S) -> Self {
        Self {
            stream,
            buf: vec![0; BUF].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// The next reply: an error's words, or done (any other type, whole
    /// arrays included, unless an element is an error).
    pub(crate) fn next(&mut self) -> io::Result<Reply> {
        self.value(0)
    }

    fn value(&mut self, depth: usize) -> io::Result<Reply> {
        let (from, to) = self.line()?;
        let line = &self.buf[from..to];
        match line.first() {
            Some(b'+' | b':') => Ok(Reply::Ok),
            Some(b'-') => Ok(Reply::of_error(&String::from_utf8_lossy(&line[1..]))),
            Some(b'$') => {
                if let Some(len) = length(&line[1..])? {
                    // The payload and its CRLF.
                    self.skip(len + 2)?;
                }
                Ok(Reply::Ok)
            }
            Some(b'*') => {
                let Some(n) = length(&line[1..])? else {
                    return Ok(Reply::Ok);
                };
                if depth >= MAX_DEPTH {
                    return Err(bad("arrays nested too deep"));
                }
                let mut reply = Reply::Ok;
                for _ in 0..n {
                    let element = self.value(depth + 1)?;
                    if reply == Reply::Ok {
                        reply = element;
                    }
                }
                Ok(reply)
            }
            _ => Err(bad("unknown type")),
        }
    }

    /// The next line's bytes (without its CRLF), as a range of `buf`.
    fn line(&mut self) -> io::Result<(usize, usize)> {
        let mut scanned = self.start;
        loop {
            if let Some(at) = self.buf[scanned..self.end].iter().position(|&b| b == b'\n') {
                let nl = scanned + at;
                if nl == self.start || self.buf[nl - 1] != b'\r' {
                    return Err(bad("a line without CRLF"));
                }
                let from = self.start;
                self.start = nl + 1;
                return Ok((from, nl - 1));
            }
            scanned = self.end;
            if self.start == 0 && self.end == self.buf.len() {
                return Err(bad("a line longer than the buffer"));
            }
            let kept = self.start;
            self.fill()?;
            scanned -= kept - self.start;
        }
    }

    /// Skips `n` bytes.
    fn skip(&mut self, mut n: usize) -> io::Result<()> {
        loop {
            let here = n.min(self.end - self.start);
            self.start += here;
            n -= here;
            if n == 0 {
                return Ok(());
            }
            self.fill()?;
        }
    }

    /// Reads more, after moving what is unread to the front.
    fn fill(&mut self) -> io::Result<()> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        loop {
            match self.stream.read(&mut self.buf[self.end..]) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

/// A bulk string's or an array's length; `None` for `-1` (nil).
fn length(digits: &[u8]) -> io::Result<Option<usize>> {
    if digits == b"-1" {
        return Ok(None);
    }
    // 512 MiB is Redis's own limit of a bulk string.
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(bad("a bad length"));
    }
    let n = digits
        .iter()
        .fold(0usize, |n, d| n * 10 + usize::from(d - b'0'));
    if n > 512 * 1024 * 1024 {
        return Err(bad("a length over 512 MiB"));
    }
    Ok(Some(n))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is a failure report

    use super::*;
    use proptest::prelude::*;

    /// A stream that hands out its bytes in the given chunk sizes.
    struct Chunked {
        bytes: Vec<u8>,
        at: usize,
        sizes: Vec<usize>,
        turn: usize,
    }

    impl Read for Chunked {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let size = self.sizes[self.turn % self.sizes.len()].max(1);
            self.turn += 1;
            let n = size.min(buf.len()).min(self.bytes.len() - self.at);
            buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    /// A reply as the model knows it, and its bytes.
    #[derive(Clone, Debug)]
    enum Model {
        Simple(String),
        Int(i64),
        Error(String),
        Bulk(Option<Vec<u8>>),
        Array(Option<Vec<Model>>),
    }

    impl Model {
        fn write(&self, out: &mut Vec<u8>) {
            match self {
                Model::Simple(s) => out.extend_from_slice(format!("+{s}\r\n").as_bytes()),
                Model::Int(n) => out.extend_from_slice(format!(":{n}\r\n").as_bytes()),
                Model::Error(s) => out.extend_from_slice(format!("-{s}\r\n").as_bytes()),
                Model::Bulk(None) => out.extend_from_slice(b"$-1\r\n"),
                Model::Bulk(Some(b)) => {
                    out.extend_from_slice(format!("${}\r\n", b.len()).as_bytes());
                    out.extend_from_slice(b);
                    out.extend_from_slice(b"\r\n");
                }
                Model::Array(None) => out.extend_from_slice(b"*-1\r\n"),
                Model::Array(Some(items)) => {
                    out.extend_from_slice(format!("*{}\r\n", items.len()).as_bytes());
                    items.iter().for_each(|i| i.write(out));
                }
            }
        }

        /// What the reader should make of it: its first error, else done.
        fn expected(&self) -> Reply {
            match self {
                Model::Error(s) => Reply::of_error(s),
                Model::Array(Some(items)) => items
                    .iter()
                    .map(Model::expected)
                    .find(|r| *r != Reply::Ok)
                    .unwrap_or(Reply::Ok),
                _ => Reply::Ok,
            }
        }
    }

    fn words() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("LOADING Redis is loading the dataset in memory".to_string()),
            Just("WRONGTYPE Operation against a key holding the wrong kind of value".to_string()),
            Just("NOPERM this user has no permissions".to_string()),
            "[A-Z]{1,8}( [ -~]{0,40})?",
        ]
    }

    fn model() -> impl Strategy<Value = Model> {
        let leaf = prop_oneof![
            "[ -~]{0,20}".prop_map(Model::Simple),
            any::<i64>().prop_map(Model::Int),
            words().prop_map(Model::Error),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300))
                .prop_map(Model::Bulk),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            proptest::option::of(proptest::collection::vec(inner, 0..4)).prop_map(Model::Array)
        })
    }

    proptest! {
        /// Any sequence of replies, cut into reads anywhere, reads back as
        /// the model says, and the next one starts where the last ended.
        #[test]
        fn replies_read_as_the_model_says(
            replies in proptest::collection::vec(model(), 1..40),
            sizes in proptest::collection::vec(1usize..64, 1..8),
        ) {
            let mut bytes = Vec::new();
            replies.iter().for_each(|r| r.write(&mut bytes));
            let mut reader = Replies::new(Chunked { bytes, at: 0, sizes, turn: 0 });
            for reply in &replies {
                prop_assert_eq!(reader.next().unwrap(), reply.expected());
            }
            // Nothing more: the stream's end.
            prop_assert_eq!(reader.next().unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        }

        /// Hostile bytes give an error or a reply, never a panic or a hang.
        #[test]
        fn any_bytes_end_in_an_error_or_a_reply(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut reader = Replies::new(Chunked { bytes, at: 0, sizes: vec![7], turn: 0 });
            for _ in 0..300 {
                if reader.next().is_err() {
                    break;
                }
            }
        }
    }

    proptest! {
        /// The packer's bytes are each command packed on its own, whatever
        /// repeats from one command to the next.
        #[test]
        fn packed_commands_are_each_command_packed(
            commands in proptest::collection::vec(
                proptest::collection::vec(
                    prop_oneof![
                        Just(b"PUBLISH".to_vec()),
                        Just(b"logs:global".to_vec()),
                        Just(b"logs:glob".to_vec()),
                        Just(b"logs:job-1".to_vec()),
                        Just(b"logs:job-2".to_vec()),
                        Just(b"XADD".to_vec()),
                        proptest::collection::vec(any::<u8>(), 0..12),
                    ],
                    1..5,
                ),
                0..30,
            ),
        ) {
            let mut packer = Packer::default();
            let mut expected = Vec::new();
            for (i, command) in commands.iter().enumerate() {
                if i == commands.len() / 2 {
                    // A new batch keeps what it knows of the last command.
                    packer.clear();
                    expected.clear();
                }
                let args: Vec<&[u8]> = command.iter().map(Vec::as_slice).collect();
                packer.push(&args);
                write_command(&mut expected, &args);
            }
            prop_assert_eq!(packer.bytes(), &expected[..]);
        }
    }

    #[test]
    fn a_command_packs_as_redis_rs_packs_it() {
        let mut packed = Vec::new();
        write_command(&mut packed, &[b"PUBLISH", b"logs:global", b"{\"msg\":1}"]);
        let theirs = redis::cmd("PUBLISH")
            .arg("logs:global")
            .arg("{\"msg\":1}")
            .get_packed_command();
        assert_eq!(packed, theirs);
    }

    #[test]
    fn errors_are_sorted_into_retry_and_refused() {
        let bytes = b"-LOADING Redis is loading\r\n-WRONGTYPE wrong kind\r\n:1\r\n".to_vec();
        let mut reader = Replies::new(Chunked {
            bytes,
            at: 0,
            sizes: vec![5],
            turn: 0,
        });
        assert!(matches!(reader.next().unwrap(), Reply::Retry(_)));
        assert_eq!(
            reader.next().unwrap(),
            Reply::Fail("WRONGTYPE wrong kind".to_string())
        );
        assert_eq!(reader.next().unwrap(), Reply::Ok);
    }

    #[test]
    fn a_line_without_its_end_fills_the_buffer_then_fails() {
        let bytes = vec![b'+'; BUF * 2];
        let mut reader = Replies::new(Chunked {
            bytes,
            at: 0,
            sizes: vec![4096],
            turn: 0,
        });
        assert_eq!(
            reader.next().unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }
}
