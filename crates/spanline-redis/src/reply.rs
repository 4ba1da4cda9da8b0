//! The replies of the Redis protocol (RESP2), read as only what the worker
//! needs of each: done, to try again, or refused with the server's words.
//!
//! redis-rs reads every reply into a `Value` through its general parser:
//! that was 43% of the worker's instructions per published line, for
//! replies that are `:1` (PUBLISH) or a stream entry's id (XADD). Here a
//! reply is read through a buffer of our own and nothing is built but an
//! error's text.

use std::io::{self, Read};

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

/// Read buffer: a pipeline's replies are small (`:1\r\n`, an id of about
/// 20 bytes), so one read takes hundreds.
const BUF: usize = 16 * 1024;

/// Arrays nest no deeper in any reply the worker asks for.
const MAX_DEPTH: usize = 8;

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

    /// The stream it reads from.
    pub(crate) fn stream(&self) -> &S {
        &self.stream
    }

    pub(crate) fn stream_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Bytes of a reply are read already: the next reply may need no read.
    pub(crate) fn buffered(&self) -> bool {
        self.start < self.end
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
