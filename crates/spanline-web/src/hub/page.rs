//! A page's task: its start read from the stream, then the live ring, the
//! lines it missed read again (or counted), within its rate.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::response::sse::Event;
use spanline_json::Query;
use spanline_redis::read::{entry_order, Entry};
use tokio::sync::{broadcast, mpsc};

use super::read::MAX_RESUME;
use super::{Feed, Limits, Line, Seat, Shared, Start};
use crate::follow::{Link, Source};

/// Starts the task of a page of `feed`, subscribed as `rx`: its events
/// come out of the returned receiver until it is dropped.
pub(super) fn open(
    feed: Arc<Feed>,
    rx: broadcast::Receiver<Shared>,
    seat: Seat,
    limits: Limits,
    query: Option<Query>,
    start: Start,
) -> mpsc::Receiver<Event> {
    let (out, events) = mpsc::channel(64);
    let n = feed.keys.len();
    let gaps = feed.gaps().0;
    // Lines sent before the page subscribed are not its to miss.
    let next = feed.seq.load(Ordering::Relaxed);
    let page = Page {
        feed,
        rx,
        out,
        query,
        last: vec![None; n],
        // The first live line of each stream is joined to the page's own
        // read by reading what lies between.
        behind: vec![true; n],
        next,
        gaps,
        rate: Rate::new(limits.lines_per_second),
        _seat: seat,
    };
    tokio::spawn(page.run(start));
    events
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
        let state = self.feed.state();
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
                    self.send(gap(&*reason)).await
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
        let on_channel = matches!(self.feed.state(), Some(Link::Live { streams: false }));
        if self.feed.source == Source::PubSub || on_channel {
            return self.resumed_on_pubsub(start.resumed).await;
        }
        let after = start.after.clone();
        let read = self
            .read(move |feed| {
                (0..feed.keys.len())
                    .map(|k| feed.start_of(k, after.as_deref(), start.backlog))
                    .collect::<Vec<_>>()
            })
            .await;
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
            let why = format!(
                "the lines before this may be missing: the stream could not be read ({why})"
            );
            if !self.send(gap(why)).await {
                return false;
            }
        }
        if !any_stream {
            return self.resumed_on_pubsub(start.resumed).await;
        }
        self.show_in_order(entries).await
    }

    /// Runs `f` on the feed's reader off the runtime's threads, one page's
    /// read at a time per feed: pages joining together wait their turn
    /// instead of each taking a thread.
    async fn read<T: Default + Send + 'static>(
        &self,
        f: impl FnOnce(&Feed) -> T + Send + 'static,
    ) -> T {
        let feed = self.feed.clone();
        let _turn = self.feed.turn.lock().await;
        tokio::task::spawn_blocking(move || f(&feed))
            .await
            .unwrap_or_default()
    }

    /// Shows entries read from the streams, in time order (several
    /// streams: a cluster's global shards).
    async fn show_in_order(&mut self, mut entries: Vec<(usize, Entry)>) -> bool {
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
                .send(gap("reconnected: lines published meanwhile are not shown \
                     (pub/sub keeps no backlog)"))
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
                // A stream made since the page's start (it read none): the
                // follower starts at the end of the stream it finds, so
                // read the stream from its start up to this line, or the
                // lines between the two would be lost.
                self.last[k] = Some("0-0".to_owned());
                self.behind[k] = true;
                if !self.catch_up(k, id, missed).await {
                    return false;
                }
                self.last[k] = Some(id.clone());
            }
            // Pub/sub: what was missed is gone; say how much.
            (None, _) => {
                if missed > 0 && !self.send(behind_gap(missed)).await {
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
        let state = self.feed.state();
        let (gaps, last_gap) = self.feed.gaps();
        if let Some(reason) = last_gap.filter(|_| gaps > self.gaps) {
            self.gaps = gaps;
            if !self.send(gap(&*reason)).await {
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
        let read = self
            .read(move |feed| {
                asks.into_iter()
                    .map(|(j, last, until)| (j, feed.between(j, &last, until.as_deref())))
                    .collect::<Vec<_>>()
            })
            .await;
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
                Err(e) => Some(gap(format!(
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
        self.show_in_order(entries).await
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
        self.send(gap(format!(
            "{skipped} lines not shown: more than this page's {limit} lines per second \
             (Limits::lines_per_second, spanline web --max-rate); narrow the search to see them"
        )))
        .await
    }
}

fn line_event(id: Option<&str>, page: &str) -> Event {
    // `live` on pub/sub, so that a browser's reconnect says it had lines.
    Event::default()
        .event("line")
        .id(id.unwrap_or("live"))
        .data(page)
}

fn state_event(link: &Link) -> Event {
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

/// A gap mark: lines may be missing here, and why.
fn gap(why: impl AsRef<str>) -> Event {
    Event::default().event("gap").data(why)
}

/// Lines a page on pub/sub missed: gone, only counted.
fn behind_gap(missed: u64) -> Event {
    gap(format!(
        "{missed} lines not shown: this page fell behind the feed \
         (pub/sub keeps no backlog to read them again)"
    ))
}

fn too_many_gap(skipped: u64) -> Event {
    gap(format!(
        "{skipped} lines not shown: more than {MAX_RESUME} lines since the place asked for; \
         the newest are shown"
    ))
}

fn trimmed_gap() -> Event {
    gap(
        "the stream no longer holds the lines after the last one shown \
         (trimmed, or lost in a Redis restart): some may be missing",
    )
}
