//! `spanline web`: serve the live log console alone.

use std::net::SocketAddr;
use std::process::ExitCode;

use spanline_web::{Console, ConsoleError, Limits, Source};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The Redis URL (default: SPANLINE_REDIS_URL, else redis://127.0.0.1:6379). Never shown.
    /// With --cluster, some or all of the cluster's nodes, comma-separated.
    #[arg(long)]
    redis: Option<String>,
    /// The Redis is a cluster (default: SPANLINE_REDIS_CLUSTER=true).
    #[arg(long)]
    cluster: bool,
    /// On a cluster, how many shards the global feed has (default: what the
    /// publisher stored, else 16).
    #[arg(long, requires = "cluster")]
    shards: Option<usize>,
    /// Where to listen. Off loopback, a token is required.
    #[arg(long, default_value = "127.0.0.1:7070")]
    listen: SocketAddr,
    /// The channel prefix the publisher uses.
    #[arg(long, default_value = "logs")]
    prefix: String,
    /// Require this token on every request (default: SPANLINE_WEB_TOKEN).
    /// Open the console once with `?token=...`; a cookie keeps it. An empty
    /// or blank (only spaces) token counts as none.
    #[arg(long)]
    token: Option<String>,
    /// Read streams, pub/sub, or decide per feed (streams when they exist).
    #[arg(long, value_enum, default_value_t = SourceArg::Auto)]
    source: SourceArg,
    /// Lines of backlog a page starts with (streams).
    #[arg(long, default_value_t = 2000)]
    backlog: usize,
    /// At most this many pages open at once; one more is answered 503.
    #[arg(long, default_value_t = 1000)]
    max_viewers: usize,
    /// At most this many pages of one feed (a job, or the global feed).
    #[arg(long, default_value_t = 1000)]
    max_viewers_per_feed: usize,
    /// At most this many lines per second to one page; the page is told
    /// how many it was not sent (0: no limit).
    #[arg(long, default_value_t = 20000)]
    max_rate: u32,
    /// Let in, as the user it names, a request from a --proxy-from address
    /// carrying this header (e.g. Remote-User): an authenticating proxy in
    /// front of the console. Without a token, only the proxy lets anyone in.
    #[arg(long, requires = "proxy_from")]
    proxy_user_header: Option<String>,
    /// The authenticating proxy's addresses (comma-separated).
    #[arg(long, value_delimiter = ',', requires = "proxy_user_header")]
    proxy_from: Vec<std::net::IpAddr>,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum SourceArg {
    Auto,
    Streams,
    Pubsub,
}

pub(crate) fn main(args: Args) -> std::io::Result<ExitCode> {
    let url = args
        .redis
        .or_else(|| std::env::var("SPANLINE_REDIS_URL").ok())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let cluster = args.cluster || crate::env_flag("SPANLINE_REDIS_CLUSTER");
    // Everything that can refuse is checked before the banner: no URL is
    // printed for a console that does not start.
    let given = args
        .token
        .or_else(|| std::env::var("SPANLINE_WEB_TOKEN").ok());
    // A token of only spaces protects nothing: it counts as none, like an
    // empty one.
    let (token, blank) = match given {
        Some(t) if t.trim().is_empty() => (None, true),
        given => (given, false),
    };
    if token.is_none() && args.proxy_user_header.is_none() && !args.listen.ip().is_loopback() {
        let refusal = ConsoleError::TokenRequired(args.listen);
        return Err(std::io::Error::other(if blank {
            format!("{refusal} (the token given is empty or only spaces: that counts as none)")
        } else {
            refusal.to_string()
        }));
    }
    if cluster {
        crate::server::check_cluster_urls(&url)?;
    } else {
        crate::server::check_url(&url)?;
    }
    let mut builder = Console::builder(url)
        .cluster(cluster)
        .prefix(args.prefix)
        .backlog(args.backlog)
        .limits(
            Limits::default()
                .viewers(args.max_viewers)
                .per_feed(args.max_viewers_per_feed)
                .lines_per_second(args.max_rate),
        )
        .source(match args.source {
            SourceArg::Auto => Source::Auto,
            SourceArg::Streams => Source::Streams,
            SourceArg::Pubsub => Source::PubSub,
        });
    if let Some(n) = args.shards {
        builder = builder.global_shards(n);
    }
    if let Some(token) = token {
        builder = builder.token(token);
    }
    if let Some(header) = &args.proxy_user_header {
        builder = builder
            .trust_proxy(header, args.proxy_from)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    }
    let console = builder.build().map_err(std::io::Error::other)?;
    // The address taken, or in use: said before the banner too. (Freed at
    // once; the console binds it again below.)
    drop(std::net::TcpListener::bind(args.listen).map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot listen on {}: {e}", args.listen))
    })?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    eprintln!(
        "spanline web: http://{} (Redis at {})",
        args.listen,
        console.redis_address()
    );
    runtime
        .block_on(console.serve(args.listen))
        .map_err(std::io::Error::other)?;
    Ok(ExitCode::SUCCESS)
}
