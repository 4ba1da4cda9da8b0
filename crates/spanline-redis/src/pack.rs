//! Commands in the Redis protocol, packed for a pipeline: one buffer a
//! batch, no allocation per command, and the repeated head of a command
//! (its name, channel or stream and options) packed once.

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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is a failure report

    use super::*;
    use proptest::prelude::*;

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
}
