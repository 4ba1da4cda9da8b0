//! One page fed by several streams (a cluster's global shards), in time
//! order, through [`spanline_redis::read::StreamMerge`]: lines are held until no
//! stream still being read can hold an older one, then released by entry
//! id. Each stream's follower says when it is caught up (its last read
//! returned less than a full chunk); states and gaps pass through at once.

use std::sync::{Arc, Mutex, PoisonError};

use spanline_redis::read::StreamMerge;

use crate::follow::{Item, Link, Sink};

struct State<S> {
    sink: S,
    merge: StreamMerge<Item>,
    open: bool,
}

/// The sink of stream `index` of a merge; see the module docs.
pub(crate) struct Merged<S> {
    state: Arc<Mutex<State<S>>>,
    index: usize,
}

/// Sinks for `n` streams, merged into `sink`.
pub(crate) fn merged<S: Sink>(sink: S, n: usize) -> Vec<Merged<S>> {
    let state = Arc::new(Mutex::new(State {
        sink,
        merge: StreamMerge::new(n),
        open: true,
    }));
    (0..n)
        .map(|index| Merged {
            state: state.clone(),
            index,
        })
        .collect()
}

impl<S: Sink> State<S> {
    /// Sends every held line no stream still catching up can precede.
    fn release(&mut self) -> bool {
        while let Some(item) = self.merge.ready() {
            if !self.sink.send(item) {
                self.open = false;
                return false;
            }
        }
        true
    }
}

impl<S: Sink> Sink for Merged<S> {
    fn send(&mut self, item: Item) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if !state.open {
            return false;
        }
        match item {
            Item::Line {
                from,
                id: Some(id),
                line,
            } => {
                let index = self.index;
                let entry = Item::Line {
                    from,
                    id: Some(id.clone()),
                    line,
                };
                state.merge.push(index, &id, entry);
                true
            }
            other => {
                // A stream that cannot be read holds nothing back: the
                // others' lines keep coming while it is away.
                let away = matches!(other, Item::State(Link::Unavailable(_)));
                let open = state.sink.send(other);
                state.open &= open;
                if away {
                    state.merge.caught_up(self.index);
                    return open && state.release();
                }
                open
            }
        }
    }

    fn caught_up(&mut self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.merge.caught_up(self.index);
        state.release()
    }

    fn open(&self) -> bool {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.open && state.sink.open()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Memory(Vec<String>);
    impl Sink for Memory {
        fn send(&mut self, item: Item) -> bool {
            if let Item::Line { id: Some(id), .. } = item {
                self.0.push(id);
            }
            true
        }
        fn open(&self) -> bool {
            true
        }
    }

    fn line(id: &str) -> Item {
        Item::Line {
            from: 0,
            id: Some(id.into()),
            line: String::new(),
        }
    }

    #[test]
    fn a_stream_still_catching_up_holds_back_newer_lines() {
        let mut sinks = merged(Memory::default(), 2);
        let (mut a, mut b) = (sinks.remove(0), sinks.remove(0));
        // A's backlog: 1, 4; caught up. B has not answered: nothing yet.
        assert!(a.send(line("1-0")) && a.send(line("4-0")) && a.caught_up());
        assert!(a.state.lock().unwrap().sink.0.is_empty());
        // B's first page: 2, 3, more to come: only what B cannot precede.
        assert!(b.send(line("2-0")) && b.send(line("3-0")));
        assert!(a.caught_up());
        assert_eq!(a.state.lock().unwrap().sink.0, ["1-0", "2-0", "3-0"]);
        // B's next page: 5; caught up: everything, in order.
        assert!(b.send(line("5-0")) && b.caught_up());
        assert_eq!(
            a.state.lock().unwrap().sink.0,
            ["1-0", "2-0", "3-0", "4-0", "5-0"]
        );
    }

    #[test]
    fn a_stream_that_cannot_be_read_holds_nothing_back() {
        let mut sinks = merged(Memory::default(), 2);
        let (mut a, mut b) = (sinks.remove(0), sinks.remove(0));
        assert!(a.send(line("1-0")) && a.caught_up());
        assert!(
            a.state.lock().unwrap().sink.0.is_empty(),
            "b has not answered yet"
        );
        assert!(b.send(Item::State(Link::Unavailable("down".into()))));
        assert_eq!(a.state.lock().unwrap().sink.0, ["1-0"]);
    }
}
