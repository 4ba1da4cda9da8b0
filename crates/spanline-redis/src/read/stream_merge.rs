//! Several Redis streams read as one, in entry-id order: the global feed
//! spread over a cluster's shards (`logs:global:{n}`), shown by the CLI's
//! `tail --cluster --since` and the console's global page.
//!
//! An entry is held until no stream still being read can hold an older
//! one. A stream is *behind* while its reader has not caught up (its last
//! read returned a full page, or it has not answered yet): it may still
//! hold entries older than its last one read. A caught-up stream, or one
//! that cannot be read, holds nothing back. Ids are the masters' clocks in
//! milliseconds: the order is as true as those clocks agree.

use std::collections::BTreeMap;

/// A stream entry id's order: `(milliseconds, sequence)`; `(0, 0)` for
/// text that is not an id.
///
/// ```
/// assert_eq!(spanline_redis::read::entry_order("1700000000000-3"), (1_700_000_000_000, 3));
/// assert!(spanline_redis::read::entry_order("9-0") < spanline_redis::read::entry_order("10-0"));
/// assert_eq!(spanline_redis::read::entry_order("x"), (0, 0));
/// ```
pub fn entry_order(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

/// Entries of `n` streams, released in entry-id order (see the module
/// docs): push what each stream's reader reads, say when it has caught up
/// (or cannot be read), and take what is ready.
///
/// ```
/// let mut merge = spanline_redis::read::StreamMerge::new(2);
/// merge.push(0, "1-0", "a1");
/// merge.push(0, "4-0", "a4");
/// merge.caught_up(0);
/// assert_eq!(merge.ready(), None, "stream 1 has not answered");
/// merge.push(1, "2-0", "b2"); // a full page: more may come
/// assert_eq!(merge.ready(), Some("a1"));
/// assert_eq!(merge.ready(), Some("b2"));
/// assert_eq!(merge.ready(), None, "stream 1 may hold 3-0");
/// merge.caught_up(1);
/// assert_eq!(merge.ready(), Some("a4"));
/// ```
#[derive(Debug)]
pub struct StreamMerge<T> {
    /// Per stream: the last id read while it is behind; `None` once it has
    /// caught up or cannot be read.
    behind: Vec<Option<(u64, u64)>>,
    /// Held entries by (id, arrival): equal ids keep their arrival order.
    held: BTreeMap<((u64, u64), u64), T>,
    arrivals: u64,
}

impl<T> StreamMerge<T> {
    /// A merge of `streams` streams, each behind until it answers.
    ///
    /// See [`StreamMerge`]'s example.
    pub fn new(streams: usize) -> Self {
        Self {
            behind: vec![Some((0, 0)); streams],
            held: BTreeMap::new(),
            arrivals: 0,
        }
    }

    /// An entry read from `stream`, which is behind at `id` until it says
    /// it has caught up.
    ///
    /// See [`StreamMerge`]'s example.
    pub fn push(&mut self, stream: usize, id: &str, entry: T) {
        let at = entry_order(id);
        if let Some(slot) = self.behind.get_mut(stream) {
            *slot = Some(at);
        }
        self.arrivals += 1;
        self.held.insert((at, self.arrivals), entry);
    }

    /// `stream` holds nothing older than what is held: its last read
    /// returned less than a full page, or it cannot be read (a stream that
    /// is away does not hold the others back).
    ///
    /// See [`StreamMerge`]'s example.
    pub fn caught_up(&mut self, stream: usize) {
        if let Some(slot) = self.behind.get_mut(stream) {
            *slot = None;
        }
    }

    /// The next entry no stream that is behind can precede, if any.
    ///
    /// See [`StreamMerge`]'s example.
    pub fn ready(&mut self) -> Option<T> {
        let bar = self.behind.iter().flatten().min().copied();
        let entry = self.held.first_entry()?;
        if bar.is_some_and(|bar| entry.key().0 > bar) {
            return None;
        }
        Some(entry.remove())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_still_catching_up_holds_back_newer_entries() {
        let mut merge = StreamMerge::new(2);
        let drain = |m: &mut StreamMerge<&'static str>| {
            std::iter::from_fn(|| m.ready()).collect::<Vec<_>>()
        };
        // A's backlog: 1, 4; caught up. B has not answered: nothing yet.
        merge.push(0, "1-0", "1");
        merge.push(0, "4-0", "4");
        merge.caught_up(0);
        assert!(drain(&mut merge).is_empty());
        // B's first page: 2, 3, more to come: only what B cannot precede.
        merge.push(1, "2-0", "2");
        merge.push(1, "3-0", "3");
        assert_eq!(drain(&mut merge), ["1", "2", "3"]);
        // B's next page: 5; caught up: everything, in order.
        merge.push(1, "5-0", "5");
        merge.caught_up(1);
        assert_eq!(drain(&mut merge), ["4", "5"]);
    }

    #[test]
    fn equal_ids_keep_their_arrival_order() {
        let mut merge = StreamMerge::new(1);
        merge.push(0, "7-1", "first");
        merge.push(0, "7-1", "second");
        merge.caught_up(0);
        assert_eq!(merge.ready(), Some("first"));
        assert_eq!(merge.ready(), Some("second"));
    }
}
