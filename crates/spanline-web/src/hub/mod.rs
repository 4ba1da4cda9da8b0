//! The hub: one follower per feed, shared by every page that shows it.
//!
//! A feed (a job's channel, or the global one and its shards) is followed
//! once, by [`Follow`] on a thread of its own, whatever the number of
//! pages: its lines go into a bounded broadcast ring, each read for the
//! page once. Each page is a task (no thread) with a cursor in that ring.
//! A page that falls more than the ring behind is told how many lines it
//! missed, and on a stream those lines are read again from Redis after the
//! last one it showed, so it loses none; Redis never buffers for a page.
//! The follower stops when the last page of its feed leaves.
//!
//! A page's own start (its backlog, or the lines after its browser's
//! `Last-Event-ID`) is read from the stream on the feed's reader
//! connection, then joined to the live ring by entry id: the first live
//! line of each stream is preceded by whatever the stream holds between
//! the two, so nothing falls between them.
//!
//! Here: the limits, the hub and its feeds, and the follower's sink;
//! `page` is a page's task, `read` the pages' own reads of the streams.

mod page;
mod read;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Instant;

use axum::response::sse::Event;
use spanline_json::Query;
use spanline_redis::redis;
use tokio::sync::{broadcast, mpsc};

use crate::follow::{Follow, Item, Link, Redis, Sink, Source};

/// How many pages the console serves, and how fast.
///
/// ```
/// let limits = spanline_web::Limits::default().viewers(200).per_feed(50).lines_per_second(5_000);
/// let console = spanline_web::Console::builder("redis://127.0.0.1:6379").limits(limits);
/// assert!(format!("{console:?}").contains("viewers: 200"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    viewers: usize,
    per_feed: usize,
    lines_per_second: Option<u32>,
    buffer: usize,
}

impl Default for Limits {
    /// 1,000 pages in all, 1,000 on one feed, 20,000 lines per second per
    /// page (more than a browser draws), 4,096 lines of ring per feed.
    fn default() -> Self {
        Limits {
            viewers: 1_000,
            per_feed: 1_000,
            lines_per_second: Some(20_000),
            buffer: 4_096,
        }
    }
}

impl Limits {
    /// At most this many pages open at once (event streams, over every
    /// feed); one more is answered `503 Service Unavailable`.
    #[must_use]
    pub fn viewers(mut self, n: usize) -> Self {
        self.viewers = n;
        self
    }

    /// At most this many pages of one feed (a job, or the global feed).
    #[must_use]
    pub fn per_feed(mut self, n: usize) -> Self {
        self.per_feed = n;
        self
    }

    /// At most this many lines per second to one page; the lines over it
    /// are not sent, and the page is told how many (`0`: no limit).
    #[must_use]
    pub fn lines_per_second(mut self, n: u32) -> Self {
        self.lines_per_second = (n > 0).then_some(n);
        self
    }

    /// Lines a page may fall behind its feed before it misses some (and
    /// reads them again from the stream, or is told how many on pub/sub).
    #[must_use]
    pub fn buffer(mut self, lines: usize) -> Self {
        self.buffer = lines.max(16);
        self
    }
}

/// Why a page was not given an event stream.
#[derive(Debug)]
pub(crate) struct Full(pub(crate) String);

/// A line read once for every page.
#[derive(Debug)]
pub(crate) struct Line {
    /// The feed's count of lines before this one, for a page to count
    /// exactly what it missed.
    seq: u64,
    /// Which of the feed's keys it came from.
    from: usize,
    id: Option<String>,
    raw: String,
    /// The line as the page shows it (`record::for_page`).
    page: Option<String>,
}

#[derive(Clone, Debug)]
enum Shared {
    Line(Arc<Line>),
    State(Link),
    /// The follower's gap mark, and how many it has made so far.
    Gap(u64, Arc<str>),
}

/// One followed feed.
pub(crate) struct Feed {
    keys: Vec<String>,
    tx: broadcast::Sender<Shared>,
    /// The follower's last word on its connection, for a page that joins
    /// (or that fell behind, and may have missed it).
    state: Mutex<Option<Link>>,
    /// The follower's gap marks so far and the last one, for a page that
    /// fell behind past one.
    gaps: Mutex<(u64, Option<Arc<str>>)>,
    /// Lines sent so far.
    seq: AtomicU64,
    /// A connection per key for pages' own reads (backlogs, resumes,
    /// catching up), opened when needed and closed when idle: between
    /// joins, a feed holds one connection to Redis, its follower's.
    readers: Vec<Mutex<Option<(redis::Connection, Instant)>>>,
    /// Taken for each of those reads: one at a time per feed, so pages
    /// joining together wait their turn instead of each taking a thread.
    turn: tokio::sync::Mutex<()>,
    redis: Redis,
    source: Source,
}

impl Feed {
    /// The follower's gap marks so far, and the last one.
    fn gaps(&self) -> (u64, Option<Arc<str>>) {
        self.gaps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The follower's last word on its connection.
    fn state(&self) -> Option<Link> {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed").field("keys", &self.keys).finish()
    }
}

/// Every feed followed, by its keys.
#[derive(Default)]
pub(crate) struct Hub {
    feeds: Mutex<HashMap<Vec<String>, Arc<Feed>>>,
    viewers: AtomicUsize,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("viewers", &self.viewers.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// A page's place, given back when it leaves.
pub(super) struct Seat(Arc<Hub>);

impl Drop for Seat {
    fn drop(&mut self) {
        self.0.viewers.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Where a page starts.
pub(crate) struct Start {
    /// `after` is a time asked for (`?since=`), not a line the browser
    /// showed: a stream that starts later is no gap.
    pub(crate) since: bool,
    /// The browser's last entry id: resume after it.
    pub(crate) after: Option<String>,
    /// The browser had followed before (on pub/sub, lines may be missing).
    pub(crate) resumed: bool,
    pub(crate) backlog: usize,
}

impl Hub {
    /// A page of the feed of `keys`: a task that sends its events to the
    /// returned receiver until it is dropped. `follow(key, index)` is how
    /// the feed's follower of `key` is made, when the feed is new.
    pub(crate) fn view(
        self: &Arc<Self>,
        keys: Vec<String>,
        limits: Limits,
        follow: impl Fn(String, usize) -> Follow,
        start: Start,
        query: Option<Query>,
    ) -> Result<mpsc::Receiver<Event>, Full> {
        if keys.is_empty() {
            return Err(Full("no feed to follow".into()));
        }
        if self.viewers.fetch_add(1, Ordering::Relaxed) >= limits.viewers {
            self.viewers.fetch_sub(1, Ordering::Relaxed);
            return Err(Full(format!(
                "this console serves at most {} pages at once (Limits::viewers, \
                 spanline web --max-viewers); try again later",
                limits.viewers
            )));
        }
        let seat = Seat(self.clone());
        let (feed, rx) = {
            let mut feeds = self.feeds.lock().unwrap_or_else(PoisonError::into_inner);
            let feed = match feeds.get(&keys) {
                Some(feed) => feed.clone(),
                None => {
                    let feed = self.start(keys.clone(), limits, &follow);
                    feeds.insert(keys, feed.clone());
                    feed
                }
            };
            if feed.tx.receiver_count() >= limits.per_feed {
                return Err(Full(format!(
                    "this feed has {} pages open, the most allowed (Limits::per_feed, \
                     spanline web --max-viewers-per-feed); try again later",
                    limits.per_feed
                )));
            }
            let rx = feed.tx.subscribe();
            (feed, rx)
        };
        Ok(page::open(feed, rx, seat, limits, query, start))
    }

    /// A new feed and its follower(s): one thread per key, merged in time
    /// order when there are several (a cluster's global shards).
    fn start(
        self: &Arc<Self>,
        keys: Vec<String>,
        limits: Limits,
        follow: &impl Fn(String, usize) -> Follow,
    ) -> Arc<Feed> {
        let followers: Vec<Follow> = keys
            .iter()
            .enumerate()
            .map(|(index, key)| {
                // The follower starts at the stream's end: each page reads
                // its own start.
                let mut f = follow(key.clone(), index);
                f.after = None;
                f.backlog = 1;
                f.resumed = false;
                f
            })
            .collect();
        let (tx, _) = broadcast::channel(limits.buffer);
        let feed = Arc::new(Feed {
            readers: keys.iter().map(|_| Mutex::new(None)).collect(),
            keys,
            tx,
            state: Mutex::new(None),
            gaps: Mutex::new((0, None)),
            seq: AtomicU64::new(0),
            turn: tokio::sync::Mutex::new(()),
            redis: followers[0].redis.clone(),
            source: followers[0].source,
        });
        let feeder = Feeder {
            feed: feed.clone(),
            hub: Arc::downgrade(self),
        };
        if followers.len() == 1 {
            if let Some(only) = followers.into_iter().next() {
                only.spawn(feeder);
            }
        } else {
            let sinks = crate::merge::merged(feeder, followers.len());
            for (f, sink) in followers.into_iter().zip(sinks) {
                f.spawn(sink);
            }
        }
        feed
    }

    /// Stops following `feed` when no page reads it: true when it is gone
    /// (decided under the map's lock, so a page joining now starts a new
    /// feed instead of joining one whose follower is stopping).
    fn retire(&self, feed: &Arc<Feed>) -> bool {
        let mut feeds = self.feeds.lock().unwrap_or_else(PoisonError::into_inner);
        if feed.tx.receiver_count() > 0 {
            return false;
        }
        if feeds.get(&feed.keys).is_some_and(|f| Arc::ptr_eq(f, feed)) {
            feeds.remove(&feed.keys);
        }
        true
    }
}

/// The follower's sink: into the ring, each line read for the page once.
struct Feeder {
    feed: Arc<Feed>,
    hub: Weak<Hub>,
}

impl Sink for Feeder {
    fn send(&mut self, item: Item) -> bool {
        let shared = match item {
            Item::Line { from, id, line } => Shared::Line(Arc::new(Line {
                seq: self.feed.seq.fetch_add(1, Ordering::Relaxed),
                from,
                id,
                page: crate::record::for_page(&line, None),
                raw: line,
            })),
            Item::State(link) => {
                *self
                    .feed
                    .state
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(link.clone());
                Shared::State(link)
            }
            Item::Gap(reason) => {
                let reason: Arc<str> = reason.into();
                let mut gaps = self
                    .feed
                    .gaps
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                *gaps = (gaps.0 + 1, Some(reason.clone()));
                Shared::Gap(gaps.0, reason)
            }
        };
        // No receiver is not an error: whether the feed is still read decides.
        let _ = self.feed.tx.send(shared);
        self.read()
    }

    fn open(&self) -> bool {
        // Asked between reads, at least every half second: not on every
        // line sent.
        self.feed.close_idle_readers();
        self.read()
    }
}

impl Feeder {
    /// A page still reads the feed; else it is retired.
    fn read(&self) -> bool {
        if self.feed.tx.receiver_count() > 0 {
            return true;
        }
        match self.hub.upgrade() {
            Some(hub) => !hub.retire(&self.feed),
            None => false,
        }
    }
}
