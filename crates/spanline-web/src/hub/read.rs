//! A feed's reader: the pages' own reads of the streams (a start, a
//! resume, what a page missed), on one connection per stream, closed when
//! idle.

use std::sync::PoisonError;
use std::time::{Duration, Instant};

use spanline_redis::read::{self, entry_order, Entry};
use spanline_redis::redis;

use super::Feed;

/// Entries read per request.
const CHUNK: usize = 500;
/// A reader unused this long is closed.
const READER_IDLE: Duration = Duration::from_secs(5);

/// What a page's own read of one stream found.
pub(super) struct Joined {
    pub(super) entries: Vec<Entry>,
    /// The last entry id the stream holds at this point (`None`: no stream).
    pub(super) last: Option<String>,
    /// The stream no longer holds some lines after the browser's last one.
    pub(super) trimmed: bool,
    /// Lines after the browser's last one not shown: more than
    /// [`MAX_RESUME`] (the oldest of them).
    pub(super) skipped: u64,
}

/// Resumes longer than this many lines show the newest ones, after a gap
/// mark that counts the others: a browser away for a day does not replay
/// the day.
pub(super) const MAX_RESUME: usize = 100_000;

impl Feed {
    /// Runs `f` on the reader connection of key `k`, connecting first if
    /// needed; an error drops the connection (the next read reconnects).
    pub(super) fn with_reader<T>(
        &self,
        k: usize,
        f: impl FnOnce(&mut redis::Connection, &str) -> redis::RedisResult<T>,
    ) -> redis::RedisResult<T> {
        let key = &self.keys[k];
        let mut reader = self.readers[k]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (con, used) = match reader.as_mut() {
            Some(open) => open,
            None => {
                let con = self.redis.connect(key)?;
                con.set_read_timeout(Some(Duration::from_secs(2)))?;
                reader.insert((con, Instant::now()))
            }
        };
        *used = Instant::now();
        let result = f(con, key);
        if result.is_err() {
            *reader = None;
        }
        result
    }

    /// Closes the readers no page has used for [`READER_IDLE`]; a reader
    /// busy now is left alone.
    pub(super) fn close_idle_readers(&self) {
        for reader in &self.readers {
            if let Ok(mut reader) = reader.try_lock() {
                if reader
                    .as_ref()
                    .is_some_and(|(_, used)| used.elapsed() >= READER_IDLE)
                {
                    *reader = None;
                }
            }
        }
    }

    /// A page's start on stream `k`: its last `backlog` entries, or every
    /// entry after `after` (the newest [`MAX_RESUME`], the others counted).
    pub(super) fn start_of(
        &self,
        k: usize,
        after: Option<&str>,
        backlog: usize,
    ) -> redis::RedisResult<Joined> {
        self.with_reader(k, |con, key| match after {
            None => {
                let entries = read::last_entries(con, key, backlog.max(1))?;
                let last = entries.last().map(|e| e.id.clone());
                Ok(Joined {
                    entries,
                    last,
                    trimmed: false,
                    skipped: 0,
                })
            }
            // No stream (yet): `last` says so.
            Some(_) if read::first_id(con, key)?.is_none() => Ok(Joined {
                entries: Vec::new(),
                last: None,
                trimmed: false,
                skipped: 0,
            }),
            Some(after) => read_after(con, key, after, None),
        })
    }

    /// The entries of stream `k` after `last` and before `until` (to its
    /// end without one): the newest [`MAX_RESUME`] of them, the others
    /// counted.
    pub(super) fn between(
        &self,
        k: usize,
        last: &str,
        until: Option<&str>,
    ) -> redis::RedisResult<Joined> {
        self.with_reader(k, |con, key| read_after(con, key, last, until))
    }
}

/// The entries of stream `key` after `after` and before `until` (to its
/// end without one), in chunks: the newest [`MAX_RESUME`] of them, the
/// others counted; `trimmed` when the stream no longer starts at or before
/// `after`; `last`, the last entry id read (or `after`).
fn read_after(
    con: &mut redis::Connection,
    key: &str,
    after: &str,
    until: Option<&str>,
) -> redis::RedisResult<Joined> {
    let until = until.map_or((u64::MAX, u64::MAX), entry_order);
    let trimmed = after != "0-0"
        && read::first_id(con, key)?.is_some_and(|first| entry_order(&first) > entry_order(after));
    let mut entries = std::collections::VecDeque::new();
    let mut skipped = 0;
    let mut from = after.to_owned();
    loop {
        let chunk = read::read_stream(con, key, &from, CHUNK, None)?;
        let done = chunk.len() < CHUNK;
        let mut reached = false;
        for entry in chunk {
            if entry_order(&entry.id) >= until {
                reached = true;
                break;
            }
            from.clone_from(&entry.id);
            entries.push_back(entry);
        }
        while entries.len() > MAX_RESUME {
            entries.pop_front();
            skipped += 1;
        }
        if done || reached {
            break;
        }
    }
    Ok(Joined {
        entries: entries.into(),
        last: Some(from),
        trimmed,
        skipped,
    })
}
