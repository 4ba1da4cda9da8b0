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

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use axum::response::sse::Event;
use spanline_json::Query;
use spanline_redis::read::{self, entry_order, Entry};
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
struct Seat(Arc<Hub>);

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
        let (out, events) = mpsc::channel(64);
        let n = feed.keys.len();
        let gaps = feed.gaps.lock().unwrap_or_else(PoisonError::into_inner).0;
        // Lines sent before the page subscribed are not its to miss.
        let next = feed.seq.load(Ordering::Relaxed);
        let page = Page {
            feed,
            rx,
            out,
            query,
            last: vec![None; n],
            // The first live line of each stream is joined to the page's
            // own read by reading what lies between.
            behind: vec![true; n],
            next,
            gaps,
            rate: Rate::new(limits.lines_per_second),
            _seat: seat,
        };
        tokio::spawn(page.run(start));
        Ok(events)
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
        // No receiver is not an error: `open` decides.
        let _ = self.feed.tx.send(shared);
        self.open()
    }

    fn open(&self) -> bool {
        if self.feed.tx.receiver_count() > 0 {
            // The follower asks at least every half second.
            self.feed.close_idle_readers();
            return true;
        }
        match self.hub.upgrade() {
            Some(hub) => !hub.retire(&self.feed),
            None => false,
        }
    }
}

/// Lines per second to one page: a bucket of a second's worth.
struct Rate {
    per_second: Option<u32>,
    tokens: f64,
    at: Instant,
    /// Lines not sent since the page was last told.
    skipped: u64,
}

impl Rate {
    fn new(per_second: Option<u32>) -> Self {
        Rate {
            per_second,
            tokens: per_second.map_or(0.0, f64::from),
            at: Instant::now(),
            skipped: 0,
        }
    }

    fn take(&mut self) -> bool {
        let Some(limit) = self.per_second.map(f64::from) else {
            return true;
        };
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * limit).min(limit);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            self.skipped += 1;
            false
        }
    }
}

/// Entries read per request when a page reads a stream itself.
const CHUNK: usize = 500;
/// A reader unused this long is closed.
const READER_IDLE: Duration = Duration::from_secs(5);
/// How often a page with lines held back by its rate says so, when no
/// new line comes to say it.
const TELL_SKIPPED: Duration = Duration::from_secs(1);

/// One page's task.
struct Page {
    feed: Arc<Feed>,
    rx: broadcast::Receiver<Shared>,
    out: mpsc::Sender<Event>,
    query: Option<Query>,
    /// Per key: the last stream entry id shown (`None`: no stream known).
    last: Vec<Option<String>>,
    /// Per key: the page missed lines of this stream, to read again
    /// before its next live line.
    behind: Vec<bool>,
    /// The `seq` the next live line should have: one more means a line
    /// missed.
    next: u64,
    /// The follower's gap marks this page has seen (or that were made
    /// before it came).
    gaps: u64,
    rate: Rate,
    _seat: Seat,
}

impl Page {
    async fn run(mut self, start: Start) {
        let state = self
            .feed
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(link) = state {
            if !self.send(state_event(&link)).await {
                return;
            }
        }
        if !self.join(start).await {
            return;
        }
        loop {
            // A page gone is noticed at once, even when its search or its
            // rate keeps it from sending anything.
            if self.out.is_closed() {
                return;
            }
            let received = tokio::time::timeout(TELL_SKIPPED, self.rx.recv()).await;
            let sent = match received {
                // Quiet: say what the rate held back.
                Err(_) => self.tell_skipped().await,
                Ok(Ok(Shared::Line(line))) => self.live(line).await,
                Ok(Ok(Shared::State(link))) => self.send(state_event(&link)).await,
                Ok(Ok(Shared::Gap(n, reason))) => {
                    self.gaps = n;
                    self.send(Event::default().event("gap").data(&*reason))
                        .await
                }
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => self.lagged().await,
                Ok(Err(broadcast::error::RecvError::Closed)) => false,
            };
            if !sent {
                return;
            }
        }
    }

    /// Sends an event; false when the page is gone.
    async fn send(&self, event: Event) -> bool {
        self.out.send(event).await.is_ok()
    }

    /// The page's start, read from the streams: the backlog, or what came
    /// after the browser's last line.
    async fn join(&mut self, start: Start) -> bool {
        // A feed followed on its channel: its lines come without ids, so
        // a backlog from a stream beside it could not be told from them.
        let on_channel = matches!(
            *self
                .feed
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
            Some(Link::Live { streams: false })
        );
        if self.feed.source == Source::PubSub || on_channel {
            return self.resumed_on_pubsub(start.resumed).await;
        }
        let feed = self.feed.clone();
        let after = start.after.clone();
        let read = {
            let _turn = self.feed.turn.lock().await;
            tokio::task::spawn_blocking(move || {
                (0..feed.keys.len())
                    .map(|k| feed.start_of(k, after.as_deref(), start.backlog))
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default()
        };
        let mut entries = Vec::new();
        let mut trimmed = false;
        let mut skipped = 0;
        let mut any_stream = false;
        let mut unread = None;
        for (k, result) in read.into_iter().enumerate() {
            // Unreadable now: the live lines come when the follower can
            // read again; the page marks that the start may be missing.
            let joined = match result {
                Ok(joined) => joined,
                Err(e) => {
                    unread = Some(self.feed.redis.scrub(&e));
                    continue;
                }
            };
            trimmed |= joined.trimmed;
            skipped += joined.skipped;
            if let Some(last) = joined.last {
                any_stream = true;
                self.last[k] = Some(last);
            }
            entries.extend(joined.entries.into_iter().map(|e| (k, e)));
        }
        if trimmed && !start.since && !self.send(trimmed_gap()).await {
            return false;
        }
        if skipped > 0 && !self.send(too_many_gap(skipped)).await {
            return false;
        }
        if let Some(why) = unread {
            let gap = format!(
                "the lines before this may be missing: the stream could not be read ({why})"
            );
            if !self.send(Event::default().event("gap").data(gap)).await {
                return false;
            }
        }
        if !any_stream {
            return self.resumed_on_pubsub(start.resumed).await;
        }
        // Several streams: in time order.
        entries.sort_by_key(|(_, e)| entry_order(&e.id));
        for (k, entry) in entries {
            if !self.stored(k, entry).await {
                return false;
            }
        }
        true
    }

    async fn resumed_on_pubsub(&self, resumed: bool) -> bool {
        !resumed
            || self
                .send(Event::default().event("gap").data(
                    "reconnected: lines published meanwhile are not shown \
                     (pub/sub keeps no backlog)",
                ))
                .await
    }

    /// A line read from a stream by this page.
    async fn stored(&mut self, k: usize, entry: Entry) -> bool {
        let raw = String::from_utf8_lossy(&entry.line);
        let page = crate::record::for_page(&raw, self.query.as_ref());
        self.last[k] = Some(entry.id.clone());
        match page {
            Some(page) => self.emit(Some(&entry.id), &page).await,
            None => true,
        }
    }

    /// A line from the ring.
    async fn live(&mut self, line: Arc<Line>) -> bool {
        let missed = line.seq.saturating_sub(self.next);
        self.next = self.next.max(line.seq + 1);
        let k = line.from.min(self.last.len().saturating_sub(1));
        match (&line.id, self.last[k].clone()) {
            (Some(id), Some(last)) => {
                if entry_order(id) <= entry_order(&last) {
                    return true; // this page read it already
                }
                // The first live line since the page's own read, or since
                // it fell behind: read what lies between on every stream
                // behind (this one up to this line, the others to their end).
                if self.behind[k] && !self.catch_up(k, id, missed).await {
                    return false;
                }
                self.last[k] = Some(id.clone());
            }
            (Some(id), None) => {
                // A stream this page did not know at its start.
                if missed > 0 && !self.send(behind_gap(missed, false)).await {
                    return false;
                }
                self.last[k] = Some(id.clone());
            }
            // Pub/sub: what was missed is gone; say how much.
            (None, _) => {
                if missed > 0 && !self.send(behind_gap(missed, true)).await {
                    return false;
                }
            }
        }
        let page = match &self.query {
            None => line.page.as_deref(),
            Some(query) => match query.matches_line(&line.raw) {
                Some(true) => line.page.as_deref(),
                _ => None,
            },
        };
        match page {
            Some(page) => self.emit(line.id.as_deref(), page).await,
            None => true,
        }
    }

    /// The ring moved on without this page: the current state (states may
    /// be among what it missed), and every stream to be read again before
    /// its next live line.
    async fn lagged(&mut self) -> bool {
        self.behind.iter_mut().for_each(|b| *b = true);
        let state = self
            .feed
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let (gaps, last_gap) = self
            .feed
            .gaps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(reason) = last_gap.filter(|_| gaps > self.gaps) {
            self.gaps = gaps;
            if !self
                .send(Event::default().event("gap").data(&*reason))
                .await
            {
                return false;
            }
        }
        match state {
            Some(link) => self.send(state_event(&link)).await,
            None => true,
        }
    }

    /// Shows, in time order, the entries of every stream behind after
    /// the last one shown: on stream `k` those before `until` (its live
    /// line), on the others up to their end (their next live lines are
    /// then known by id). A stream that cannot be read is marked.
    async fn catch_up(&mut self, k: usize, until: &str, missed: u64) -> bool {
        let asks: Vec<(usize, String, Option<String>)> = (0..self.last.len())
            .filter(|&j| std::mem::take(&mut self.behind[j]))
            .filter_map(|j| {
                let last = self.last[j].clone()?;
                Some((j, last, (j == k).then(|| until.to_owned())))
            })
            .collect();
        let feed = self.feed.clone();
        let read = {
            let _turn = self.feed.turn.lock().await;
            tokio::task::spawn_blocking(move || {
                asks.into_iter()
                    .map(|(j, last, until)| (j, feed.between(j, &last, until.as_deref())))
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default()
        };
        let mut entries = Vec::new();
        for (j, between) in read {
            let gap = match between {
                Ok(between) => {
                    entries.extend(between.entries.into_iter().map(|e| (j, e)));
                    match (between.trimmed, between.skipped) {
                        (_, n) if n > 0 => Some(too_many_gap(n)),
                        (true, _) => Some(trimmed_gap()),
                        _ => None,
                    }
                }
                Err(e) => Some(Event::default().event("gap").data(format!(
                    "lines may be missing here ({missed} at least): the stream could not be read ({})",
                    self.feed.redis.scrub(&e)
                ))),
            };
            if let Some(gap) = gap {
                if !self.send(gap).await {
                    return false;
                }
            }
        }
        entries.sort_by_key(|(_, e)| entry_order(&e.id));
        for (j, entry) in entries {
            if !self.stored(j, entry).await {
                return false;
            }
        }
        true
    }

    /// Sends a line, within the page's rate; first says how many lines
    /// the rate held back, if any.
    async fn emit(&mut self, id: Option<&str>, page: &str) -> bool {
        if !self.rate.take() {
            return true;
        }
        self.tell_skipped().await && self.send(line_event(id, page)).await
    }

    async fn tell_skipped(&mut self) -> bool {
        let skipped = std::mem::take(&mut self.rate.skipped);
        if skipped == 0 {
            return true;
        }
        let limit = self.rate.per_second.unwrap_or(0);
        self.send(Event::default().event("gap").data(format!(
            "{skipped} lines not shown: more than this page's {limit} lines per second \
             (Limits::lines_per_second, spanline web --max-rate); narrow the search to see them"
        )))
        .await
    }
}

/// What a page's own read of one stream found.
struct Joined {
    entries: Vec<Entry>,
    /// The last entry id the stream holds at this point (`None`: no stream).
    last: Option<String>,
    /// The stream no longer holds some lines after the browser's last one.
    trimmed: bool,
    /// Lines after the browser's last one not shown: more than
    /// [`MAX_RESUME`] (the oldest of them).
    skipped: u64,
}

/// Resumes longer than this many lines show the newest ones, after a gap
/// mark that counts the others: a browser away for a day does not replay
/// the day.
const MAX_RESUME: usize = 100_000;

impl Feed {
    /// Runs `f` on the reader connection of key `k`, connecting first if
    /// needed; an error drops the connection (the next read reconnects).
    fn with_reader<T>(
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
    fn close_idle_readers(&self) {
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
    /// entry after `after`.
    fn start_of(
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
            Some(after) => {
                let Some(first) = read::first_id(con, key)? else {
                    return Ok(Joined {
                        entries: Vec::new(),
                        last: None,
                        trimmed: false,
                        skipped: 0,
                    });
                };
                let trimmed = after != "0-0" && entry_order(&first) > entry_order(after);
                let mut entries = std::collections::VecDeque::new();
                let mut skipped = 0;
                let mut from = after.to_owned();
                loop {
                    let chunk = read::read_stream(con, key, &from, CHUNK, None)?;
                    let done = chunk.len() < CHUNK;
                    if let Some(e) = chunk.last() {
                        from = e.id.clone();
                    }
                    entries.extend(chunk);
                    while entries.len() > MAX_RESUME {
                        entries.pop_front();
                        skipped += 1;
                    }
                    if done {
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
        })
    }

    /// The entries of stream `k` after `last` and before `until` (to its
    /// end without one): the newest [`MAX_RESUME`] of them, the others
    /// counted.
    fn between(&self, k: usize, last: &str, until: Option<&str>) -> redis::RedisResult<Joined> {
        let until = until.map_or((u64::MAX, u64::MAX), entry_order);
        self.with_reader(k, |con, key| {
            let trimmed = read::first_id(con, key)?
                .is_some_and(|first| entry_order(&first) > entry_order(last));
            let mut entries = std::collections::VecDeque::new();
            let mut skipped = 0;
            let mut from = last.to_owned();
            loop {
                let chunk = read::read_stream(con, key, &from, CHUNK, None)?;
                let done = chunk.len() < CHUNK;
                if let Some(e) = chunk.last() {
                    from = e.id.clone();
                }
                let mut reached = false;
                for entry in chunk {
                    if entry_order(&entry.id) >= until {
                        reached = true;
                        break;
                    }
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
                last: None,
                trimmed,
                skipped,
            })
        })
    }
}

fn line_event(id: Option<&str>, page: &str) -> Event {
    // `live` on pub/sub, so that a browser's reconnect says it had lines.
    Event::default()
        .event("line")
        .id(id.unwrap_or("live"))
        .data(page)
}

pub(crate) fn state_event(link: &Link) -> Event {
    let state = match link {
        Link::Live { streams } => serde_json::json!({
            "state": "live",
            "source": if *streams { "streams" } else { "pubsub" },
        }),
        Link::Unavailable(reason) => serde_json::json!({
            "state": "unavailable",
            "reason": reason,
        }),
    };
    Event::default().event("state").data(state.to_string())
}

fn behind_gap(missed: u64, pubsub: bool) -> Event {
    let why = if pubsub {
        " (pub/sub keeps no backlog to read them again)"
    } else {
        ""
    };
    Event::default().event("gap").data(format!(
        "{missed} lines not shown: this page fell behind the feed{why}"
    ))
}

fn too_many_gap(skipped: u64) -> Event {
    Event::default().event("gap").data(format!(
        "{skipped} lines not shown: more than {MAX_RESUME} lines since the place asked for; \
         the newest are shown"
    ))
}

fn trimmed_gap() -> Event {
    Event::default().event("gap").data(
        "the stream no longer holds the lines after the last one shown \
         (trimmed, or lost in a Redis restart): some may be missing",
    )
}
