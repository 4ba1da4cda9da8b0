//! `spanline web`: serve the live log console alone.

use std::net::SocketAddr;
use std::process::ExitCode;

use spanline_web::{Console, Source};

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
    /// Open the console once with `?token=...`; a cookie keeps it.
    #[arg(long)]
    token: Option<String>,
    /// Read streams, pub/sub, or decide per feed (streams when they exist).
    #[arg(long, value_enum, default_value_t = SourceArg::Auto)]
    source: SourceArg,
    /// Lines of backlog a page starts with (streams).
    #[arg(long, default_value_t = 2000)]
    backlog: usize,
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
    let mut builder = Console::builder(url)
        .cluster(cluster)
        .prefix(args.prefix)
        .backlog(args.backlog)
        .source(match args.source {
            SourceArg::Auto => Source::Auto,
            SourceArg::Streams => Source::Streams,
            SourceArg::Pubsub => Source::PubSub,
        });
    if let Some(n) = args.shards {
        builder = builder.global_shards(n);
    }
    if let Some(token) = args
        .token
        .or_else(|| std::env::var("SPANLINE_WEB_TOKEN").ok())
    {
        builder = builder.token(token);
    }
    let console = builder.build().map_err(std::io::Error::other)?;
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
