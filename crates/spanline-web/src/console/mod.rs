//! The console: its options, its axum router, and the event streams and
//! the jobs list it serves. `guard` checks who comes in (the token, a
//! trusted proxy) and sets the headers every response carries; `pages`
//! serves the pages and their assets; `history` the lines before a line.

mod guard;
mod history;
mod pages;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use std::collections::HashMap;

use axum::extract::{Path, Query as Params, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use spanline_redis::Channels;

use spanline_redis::read::{self, ClusterMap};
use spanline_redis::redis;

use crate::follow::{is_entry_id, Follow, Link, Redis, Source};
use crate::hub::{Full, Hub, Limits, Start};
use crate::jobs::{Indexer, Jobs, SharedJobs};
use crate::ConsoleError;

/// Lines of backlog a page starts with.
const DEFAULT_BACKLOG: usize = 2_000;
/// Lines of the global stream read to build the jobs list at start.
const INDEX_BACKLOG: usize = 10_000;

/// How often an idle event stream says it is there: also how soon a page
/// that left gives back its place (the write fails).
const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(5);

/// The live log console: a global feed with the list of recent jobs, and a
/// page per job, streamed from Redis.
///
/// Build it with [`Console::builder`], then either nest its
/// [`router`](Console::router) into your own axum app or
/// [`serve`](Console::serve) it alone (what `spanline web` does).
///
/// ```no_run
/// # async fn run() -> Result<(), spanline_web::ConsoleError> {
/// let console = spanline_web::Console::builder("redis://127.0.0.1:6379").build()?;
/// let app = axum::Router::new().nest("/logs", console.router());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// axum::serve(listener, app).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Console {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the client: its connection info holds the password.
        f.debug_struct("Console")
            .field("redis", &self.redis_address())
            .field("prefix", &self.inner.channels.prefix())
            .field("source", &self.inner.source)
            .field("token", &self.inner.token.as_ref().map(|_| "***"))
            .field("hub", &self.inner.hub)
            .finish_non_exhaustive()
    }
}

struct Inner {
    redis: Redis,
    /// The global feed's channels: one, or (on a cluster) its shards,
    /// learned at the first page.
    globals: std::sync::OnceLock<Vec<String>>,
    /// The shards asked for with [`ConsoleBuilder::global_shards`].
    shards: Option<usize>,
    channels: Channels,
    source: Source,
    token: Option<String>,
    proxy: Option<Proxy>,
    backlog: usize,
    jobs: SharedJobs,
    index_started: std::sync::Once,
    /// Every feed followed, shared by its pages.
    hub: Arc<Hub>,
    limits: Limits,
}

/// Options of a [`Console`].
///
/// ```
/// let builder = spanline_web::Console::builder("redis://127.0.0.1:6379")
///     .prefix("logs")
///     .token("s3cret")
///     .backlog(500);
/// assert!(builder.build().is_ok());
/// ```
#[derive(Clone)]
pub struct ConsoleBuilder {
    url: String,
    cluster: bool,
    shards: Option<usize>,
    prefix: String,
    source: Source,
    token: Option<String>,
    proxy: Option<Proxy>,
    backlog: usize,
    limits: Limits,
}

/// An authenticating proxy in front of the console: requests from its
/// addresses that carry its user header are let in as that user.
#[derive(Clone, Debug)]
struct Proxy {
    header: header::HeaderName,
    from: Vec<std::net::IpAddr>,
}

/// The user an authenticating proxy vouched for.
#[derive(Clone, Debug)]
struct User(String);

impl std::fmt::Debug for ConsoleBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Neither the URL (it may hold a password) nor the token.
        f.debug_struct("ConsoleBuilder")
            .field("prefix", &self.prefix)
            .field("source", &self.source)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("backlog", &self.backlog)
            .field("cluster", &self.cluster)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Console {
    /// Options for a console reading the Redis at `url` (`redis://`,
    /// `rediss://` with the publisher's `tls` feature, `unix://`).
    pub fn builder(url: impl Into<String>) -> ConsoleBuilder {
        ConsoleBuilder {
            url: url.into(),
            cluster: false,
            shards: None,
            prefix: Channels::DEFAULT_PREFIX.into(),
            source: Source::Auto,
            token: None,
            proxy: None,
            backlog: DEFAULT_BACKLOG,
            limits: Limits::default(),
        }
    }

    /// The console's routes, to serve alone or nest under a path of your
    /// app (`Router::nest("/logs", console.router())`): `/` the global
    /// feed and recent jobs, `/jobs/{job_id}` one job, `/api/jobs` the jobs
    /// list as JSON, `/events` and `/jobs/{job_id}/events` the server-sent
    /// event streams (`?q=QUERY`: only the lines the query matches, see
    /// docs/query.md), `/api/query?q=` a query checked (`{"highlights":
    /// [...]}`, or 400 with `{"error": ...}`), `/assets/*` the page's script
    /// and style.
    ///
    /// With a token set, every route (the event streams too) answers 401
    /// without it: `?token=` (which also sets a cookie for the page's
    /// later requests), the cookie, or `Authorization: Bearer`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/", get(pages::global_page))
            .route("/jobs/{job_id}", get(pages::job_page))
            .route("/api/jobs", get(jobs_list))
            .route("/api/query", get(check_query))
            .route("/api/history", get(history::global_history))
            .route("/jobs/{job_id}/history", get(history::job_history))
            .route("/split", get(pages::split_page))
            .route("/events", get(global_events))
            .route("/jobs/{job_id}/events", get(job_events))
            .route("/assets/console.js", get(pages::script))
            .route("/assets/console.css", get(pages::style))
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                guard::guard,
            ))
            .with_state(self.clone())
    }

    /// Serves the console alone on `listen` until the task is dropped.
    ///
    /// # Errors
    /// [`ConsoleError::TokenRequired`] when `listen` is not a loopback
    /// address and no token is set; [`ConsoleError::Io`] when the address
    /// cannot be bound.
    pub async fn serve(&self, listen: SocketAddr) -> Result<(), ConsoleError> {
        if !listen.ip().is_loopback() && self.inner.token.is_none() && self.inner.proxy.is_none() {
            return Err(ConsoleError::TokenRequired(listen));
        }
        let listener = tokio::net::TcpListener::bind(listen).await?;
        // As a made service (served directly, axum would rebuild the
        // router's route table for every connection, 5 kB a page), with
        // each request's peer address for `trust_proxy`.
        let service = self
            .router()
            .into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, service).await?;
        Ok(())
    }

    /// Where the console reads Redis, without the password, for a log line
    /// or a banner.
    pub fn redis_address(&self) -> String {
        self.inner.redis.address()
    }

    /// The global feed's channels: `{prefix}:global`, or on a cluster its
    /// shards (as many as the builder says, else as the publisher stored
    /// in `{prefix}:global:shards`, else the default).
    fn globals(&self) -> &[String] {
        self.inner.globals.get_or_init(|| {
            let channels = &self.inner.channels;
            let Redis::Cluster(map) = &self.inner.redis else {
                return vec![channels.global()];
            };
            let n = self.inner.shards.unwrap_or_else(|| {
                map.stored_global_shards(channels)
                    .unwrap_or(read::DEFAULT_GLOBAL_SHARDS)
            });
            read::global_shards(channels, n)
        })
    }

    /// A follower of `key`, the `index`th of the keys followed together.
    fn follow(&self, key: String, index: usize) -> Follow {
        Follow {
            redis: self.inner.redis.clone(),
            global_key: self.globals().first().cloned().unwrap_or_default(),
            key,
            source: self.inner.source,
            after: None,
            backlog: self.inner.backlog,
            resumed: false,
            index,
        }
    }

    /// Starts following the global feed for the jobs list, once.
    fn index(&self) {
        self.inner.index_started.call_once(|| {
            for (index, global) in self.globals().iter().enumerate() {
                let mut follow = self.follow(global.clone(), index);
                follow.backlog = INDEX_BACKLOG;
                follow.spawn(Indexer(Arc::downgrade(&self.inner.jobs)));
            }
        });
    }

    /// An event stream of `key`, resuming after the browser's
    /// `Last-Event-ID`.
    fn events(
        &self,
        keys: Vec<String>,
        headers: &HeaderMap,
        params: &HashMap<String, String>,
    ) -> Response {
        let query = match history::query_of(params) {
            Ok(query) => query,
            Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
        };
        let last = headers
            .get("last-event-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // `since`: the lines from that time on (milliseconds since the
        // epoch), as a resume after the last entry id before it.
        let since = match params.get("since").filter(|s| !s.is_empty()) {
            None => None,
            Some(ms) => match ms.parse::<u64>() {
                Ok(ms) => Some(format!("{}-{}", ms.saturating_sub(1), u64::MAX)),
                Err(_) => {
                    return (
                        StatusCode::BAD_REQUEST,
                        "since: milliseconds since the Unix epoch",
                    )
                        .into_response()
                }
            },
        };
        let resume = last.clone().filter(|id| is_entry_id(id));
        let start = Start {
            since: resume.is_none() && since.is_some(),
            after: resume.or(since),
            resumed: last.is_some(),
            backlog: self.inner.backlog,
        };
        // One follower per feed, shared by its pages (see hub.rs).
        let viewed = self.inner.hub.view(
            keys,
            self.inner.limits,
            |key, index| self.follow(key, index),
            start,
            query,
        );
        let rx = match viewed {
            Ok(rx) => rx,
            Err(Full(why)) => {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(header::RETRY_AFTER, "10")],
                    why,
                )
                    .into_response()
            }
        };
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            let event = rx.recv().await?;
            Some((Ok::<_, Infallible>(event), rx))
        });
        let mut response = Sse::new(stream)
            .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
            .into_response();
        // No proxy may hold the stream back.
        response
            .headers_mut()
            .insert("x-accel-buffering", HeaderValue::from_static("no"));
        response
    }
}

impl ConsoleBuilder {
    /// The channel and stream prefix the publisher uses (default `logs`:
    /// `logs:global`, `logs:{job_id}`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Streams, pub/sub, or decided per connection (the default).
    pub fn source(mut self, source: Source) -> Self {
        self.source = source;
        self
    }

    /// Requires this token on every request. [`Console::serve`] refuses to
    /// listen off loopback without one. An empty token, or one of only
    /// blanks, protects nothing: it counts as none.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into()).filter(|t: &String| !t.trim().is_empty());
        self
    }

    /// Lets in, as that user, requests that an authenticating proxy (an
    /// OAuth2 proxy, Authelia, a load balancer's sign-in) sends from one of
    /// the addresses `from` with the user's name in `header` (for example
    /// `Remote-User`, `X-Forwarded-User`); the pages show who is signed in.
    /// Requests from anywhere else need the token; with no token, only the
    /// proxy lets anyone in, and [`Console::serve`] may listen off loopback.
    ///
    /// The proxy's address is the connection's: [`Console::serve`] knows
    /// it; an app that nests [`Console::router`] must serve with
    /// `into_make_service_with_connect_info::<SocketAddr>()`, or no request
    /// counts as the proxy's.
    ///
    /// # Errors
    /// [`ConsoleError::Header`] when `header` is not a valid header name.
    ///
    /// ```
    /// let proxy: std::net::IpAddr = "10.0.0.2".parse().unwrap();
    /// let builder = spanline_web::Console::builder("redis://127.0.0.1:6379")
    ///     .trust_proxy("Remote-User", [proxy])
    ///     .unwrap();
    /// assert!(builder.build().is_ok());
    /// ```
    pub fn trust_proxy(
        mut self,
        header: &str,
        from: impl IntoIterator<Item = std::net::IpAddr>,
    ) -> Result<Self, ConsoleError> {
        let header = header::HeaderName::from_bytes(header.as_bytes())
            .map_err(|_| ConsoleError::Header(header.to_owned()))?;
        self.proxy = Some(Proxy {
            header,
            from: from.into_iter().collect(),
        });
        Ok(self)
    }

    /// The URL given to [`Console::builder`] holds a Redis Cluster's nodes,
    /// comma-separated (some or all): each feed is read on the master that
    /// owns it, channels with `SSUBSCRIBE`, and the global feed from all
    /// its shards (see docs/scale.md).
    ///
    /// ```
    /// let builder = spanline_web::Console::builder("redis://10.0.0.1:6379,redis://10.0.0.2:6379").cluster(true);
    /// assert!(format!("{builder:?}").contains("cluster: true"));
    /// assert!(builder.build().is_ok());
    /// ```
    pub fn cluster(mut self, on: bool) -> Self {
        self.cluster = on;
        self
    }

    /// On a cluster, how many shards the global feed is spread over
    /// (default: what the publisher stored in `{prefix}:global:shards`,
    /// else 16).
    ///
    /// ```
    /// let builder = spanline_web::Console::builder("redis://10.0.0.1:6379").cluster(true).global_shards(3);
    /// assert!(builder.build().is_ok());
    /// ```
    pub fn global_shards(mut self, n: usize) -> Self {
        self.shards = Some(n.clamp(1, read::MAX_GLOBAL_SHARDS));
        self
    }

    /// How many pages at once, per feed, and lines per second per page
    /// (see [`Limits`] for the defaults). Each feed is followed once
    /// whatever the number of its pages.
    ///
    /// ```
    /// use spanline_web::{Console, Limits};
    /// let builder = Console::builder("redis://127.0.0.1:6379").limits(Limits::default().viewers(50));
    /// assert!(builder.build().is_ok());
    /// ```
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Lines of backlog a page starts with when the feed is a stream
    /// (default 2,000).
    pub fn backlog(mut self, lines: usize) -> Self {
        self.backlog = lines.max(1);
        self
    }

    /// The console; nothing connects until a page asks.
    ///
    /// # Errors
    /// [`ConsoleError::Redis`] for a URL that does not parse,
    /// [`ConsoleError::Prefix`] for an invalid prefix.
    pub fn build(self) -> Result<Console, ConsoleError> {
        let redis = if self.cluster {
            Redis::Cluster(ClusterMap::new(&self.url).map_err(ConsoleError::Redis)?)
        } else {
            Redis::Single(Box::new(
                redis::Client::open(self.url.as_str()).map_err(ConsoleError::Redis)?,
            ))
        };
        let channels = Channels::new(&self.prefix).map_err(ConsoleError::Prefix)?;
        Ok(Console {
            inner: Arc::new(Inner {
                redis,
                globals: std::sync::OnceLock::new(),
                shards: self.shards,
                channels,
                source: self.source,
                token: self.token,
                proxy: self.proxy,
                backlog: self.backlog,
                jobs: Arc::new(Mutex::new(Jobs::default())),
                index_started: std::sync::Once::new(),
                hub: Arc::new(Hub::default()),
                limits: self.limits,
            }),
        })
    }
}

async fn jobs_list(State(console): State<Console>) -> Response {
    console.index();
    let Ok(jobs) = console.inner.jobs.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let state = match &jobs.link {
        Some(Link::Live { .. }) => serde_json::json!({"state": "live"}),
        Some(Link::Unavailable(reason)) => {
            serde_json::json!({"state": "unavailable", "reason": reason})
        }
        None => serde_json::json!({"state": "connecting"}),
    };
    Json(serde_json::json!({ "jobs": jobs.list(), "redis": state })).into_response()
}

async fn global_events(
    State(console): State<Console>,
    headers: HeaderMap,
    Params(params): Params<HashMap<String, String>>,
) -> Response {
    console.index();
    console.events(console.globals().to_vec(), &headers, &params)
}

/// A query checked for the page: what to mark in the lines, or where it
/// is wrong.
async fn check_query(Params(params): Params<HashMap<String, String>>) -> Response {
    let q = params.get("q").map_or("", |q| q.trim());
    if q.is_empty() {
        return Json(serde_json::json!({ "highlights": [] })).into_response();
    }
    match spanline_json::Query::parse(q) {
        Ok(query) => Json(serde_json::json!({ "highlights": query.highlights() })).into_response(),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({ "error": e.to_string() })),
        )
            .into_response(),
    }
}

async fn job_events(
    State(console): State<Console>,
    Path(job_id): Path<String>,
    headers: HeaderMap,
    Params(params): Params<HashMap<String, String>>,
) -> Response {
    match console.inner.channels.job(&job_id) {
        Ok(key) => console.events(vec![key], &headers, &params),
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_debug_form_hides_the_url_and_token() {
        let builder = Console::builder("redis://:hunter2@127.0.0.1:6379").token("s3cret");
        let shown = format!("{builder:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("s3cret"),
            "{shown}"
        );
        let console = builder.build().unwrap_or_else(|e| panic!("{e}"));
        assert!(!format!("{console:?}").contains("hunter2"));
        assert!(!console.redis_address().contains("hunter2"));
    }
}
