//! A live log console for spanline: every job's lines in the browser,
//! streamed from the Redis that `spanline-redis` publishes to.
//!
//! The console has two pages: the global feed with the list of recent jobs
//! (newest first, with the time and level of each job's last line), and one
//! job's page at `jobs/{job_id}`. When the publisher writes streams
//! (`Mode::Streams` or `Mode::Both`), a page shows the backlog, then follows
//! live; every line carries its stream entry id, so a browser that
//! reconnects resumes exactly after the last line it showed, across a Redis
//! restart too. On pub/sub alone a page follows live and marks where lines
//! may be missing after a reconnect. Reconnecting never runs anything.
//!
//! Lines are shown as the console renderer shows them (time in the
//! viewer's zone, level, message, `key=value` fields, the error chain),
//! with each line's raw JSON a click away, a level filter, text search,
//! pause and follow, a bounded number of rows, and the state of the
//! connection to Redis.
//!
//! A feed is followed once whatever the number of its pages (one Redis
//! connection and one thread per feed, each page a task), each page within
//! [`Limits`]; a page that falls behind reads what it missed from the
//! stream, or on pub/sub is told how many lines it missed.
//!
//! Safe by default: [`Console::serve`] refuses to listen off loopback
//! without a token, a token is checked on every request, every value from
//! a log line is shown as text (never markup), every response has a
//! Content-Security-Policy that lets the page run only its own script, and
//! the Redis password is never shown.
//!
//! # Embed it
//!
//! ```no_run
//! # async fn run() -> Result<(), spanline_web::ConsoleError> {
//! use spanline_web::Console;
//!
//! let console = Console::builder("redis://127.0.0.1:6379").build()?;
//! let app = axum::Router::new()
//!     .route("/", axum::routing::get(|| async { "my app" }))
//!     .nest("/logs", console.router());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! # Run it alone
//!
//! `spanline web --redis redis://127.0.0.1:6379` serves it on
//! <http://127.0.0.1:7070/>; `--listen 0.0.0.0:7070 --token T` off
//! loopback. See docs/console.md.

use spanline_redis::redis;

mod console;
mod follow;
mod hub;
mod jobs;
mod merge;
mod record;

pub use console::{Console, ConsoleBuilder};
pub use follow::Source;
pub use hub::Limits;

/// Why a console could not be built or served.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConsoleError {
    /// The Redis URL does not parse.
    Redis(redis::RedisError),
    /// The channel prefix is not valid.
    Prefix(spanline_core::JobIdError),
    /// Asked to listen off loopback without a token (or a trusted proxy).
    TokenRequired(std::net::SocketAddr),
    /// Not a valid HTTP header name (for [`ConsoleBuilder::trust_proxy`]).
    Header(String),
    /// The address could not be bound, or serving failed.
    Io(std::io::Error),
}

impl std::fmt::Display for ConsoleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConsoleError::Redis(e) => write!(f, "invalid Redis URL: {e}"),
            ConsoleError::Prefix(e) => write!(f, "invalid channel prefix: {e}"),
            ConsoleError::TokenRequired(addr) => write!(
                f,
                "refusing to serve the console on {addr} (not loopback) without a token: \
                 set one (--token or SPANLINE_WEB_TOKEN), or listen on 127.0.0.1"
            ),
            ConsoleError::Header(name) => write!(f, "not a valid HTTP header name: {name:?}"),
            ConsoleError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ConsoleError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConsoleError::Redis(e) => Some(e),
            ConsoleError::Prefix(e) => Some(e),
            ConsoleError::Io(e) => Some(e),
            ConsoleError::TokenRequired(_) | ConsoleError::Header(_) => None,
        }
    }
}

impl From<std::io::Error> for ConsoleError {
    fn from(e: std::io::Error) -> Self {
        ConsoleError::Io(e)
    }
}
