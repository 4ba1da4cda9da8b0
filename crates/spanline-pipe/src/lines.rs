//! Cutting the pipe's byte stream into records, for the sync and the async
//! reader alike: reads land in one fixed buffer, and each complete line is
//! handed to the [`Receiver`] in place, without a copy.

use crate::receiver::Receiver;
use crate::wire::MAX_LINE;

/// A line buffer between reads of the pipe and the [`Receiver`].
pub(crate) struct Lines {
    buf: Box<[u8]>,
    /// Bytes read and not yet handed on: the start of an unfinished line.
    filled: usize,
    /// Inside a line already reported as too long: skip up to its newline.
    skipping: bool,
}

impl Lines {
    pub(crate) fn new() -> Self {
        Self {
            buf: vec![0; MAX_LINE].into_boxed_slice(),
            filled: 0,
            skipping: false,
        }
    }

    /// Where the next read goes; never empty.
    pub(crate) fn spare(&mut self) -> &mut [u8] {
        &mut self.buf[self.filled..]
    }

    /// Takes `n` bytes just read into [`spare`](Self::spare), and hands each
    /// line they complete to `receiver`.
    pub(crate) fn commit(&mut self, n: usize, receiver: &mut Receiver) {
        self.filled = (self.filled + n).min(self.buf.len());
        let mut start = 0;
        while let Some(end) = memchr::memchr(b'\n', &self.buf[start..self.filled]) {
            let line = &self.buf[start..start + end];
            if self.skipping {
                // The end of a line reported as too long.
                self.skipping = false;
            } else {
                receiver.feed_line(line);
            }
            start += end + 1;
        }
        self.buf.copy_within(start..self.filled, 0);
        self.filled -= start;
        if self.filled == self.buf.len() {
            if !self.skipping {
                receiver.too_long(&self.buf);
            }
            self.skipping = true;
            self.filled = 0;
        }
    }

    /// Ends the stream: what follows the last newline is a truncated record.
    pub(crate) fn finish(self, receiver: &mut Receiver) {
        let tail = if self.skipping {
            &[][..]
        } else {
            &self.buf[..self.filled]
        };
        receiver.finish(tail);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `chunks` as successive reads; returns (records, bad records).
    fn feed(chunks: &[&[u8]]) -> (u64, u64) {
        let mut receiver = Receiver::new(tracing::Span::none());
        let mut lines = Lines::new();
        for chunk in chunks {
            let mut rest = *chunk;
            while !rest.is_empty() {
                let spare = lines.spare();
                let n = spare.len().min(rest.len());
                spare[..n].copy_from_slice(&rest[..n]);
                lines.commit(n, &mut receiver);
                rest = &rest[n..];
            }
        }
        lines.finish(&mut receiver);
        (receiver.records(), receiver.bad_records())
    }

    const HELLO: &[u8] = b"{\"t\":\"hello\",\"v\":1,\"pid\":1}\n";

    #[test]
    fn lines_split_across_reads_are_joined() {
        let (a, b) = HELLO.split_at(10);
        assert_eq!(feed(&[a, b, HELLO]), (2, 0));
        let bytes: Vec<&[u8]> = HELLO.chunks(1).collect();
        assert_eq!(feed(&bytes), (1, 0));
    }

    #[test]
    fn a_line_longer_than_the_buffer_is_reported_once_and_skipped() {
        let long = vec![b'x'; MAX_LINE * 3 + 7];
        assert_eq!(feed(&[HELLO, &long, b"\n", HELLO]), (2, 1));
        // Exactly one buffer's worth, then its newline in the next read.
        let full = vec![b'y'; MAX_LINE];
        assert_eq!(feed(&[&full, b"\n", HELLO]), (1, 1));
        // Still unfinished at EOF: reported once, not again as truncated.
        assert_eq!(feed(&[HELLO, &long]), (1, 1));
    }

    #[test]
    fn the_longest_line_kept_is_one_byte_short_of_the_buffer() {
        let mut line = vec![b' '; MAX_LINE - 1 - HELLO.len()];
        line.extend_from_slice(HELLO); // whitespace before JSON is valid
        assert_eq!(line.len(), MAX_LINE - 1);
        assert_eq!(feed(&[&line, HELLO]), (2, 0));
    }
}
