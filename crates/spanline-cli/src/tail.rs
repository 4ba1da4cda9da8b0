//! `spanline tail`: follow log lines live from Redis.

use std::io::{self, Write};
use std::process::ExitCode;
use std::time::Duration;

use tracing_subscriber::filter::Targets;

use spanline_redis::read;
use spanline_redis::redis;

use crate::cluster::{Cluster, Feed};
use crate::server::{backoff, Failure, Server};
use spanline_json::read::Level;

use crate::view::ViewArgs;
use crate::Color;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Follow one job's channel, `{prefix}:{ID}`.
    #[arg(long, conflicts_with_all = ["global", "pattern"])]
    job: Option<String>,
    /// Follow the global channel, `{prefix}:global` (the default).
    #[arg(long, conflicts_with = "pattern")]
    global: bool,
    /// Follow every channel matching a Redis glob pattern, e.g. `logs:build_*`.
    #[arg(long)]
    pattern: Option<String>,
    /// The Redis URL (default: SPANLINE_REDIS_URL, else redis://127.0.0.1:6379). Never printed.
    /// With --cluster, some or all of the cluster's nodes, comma-separated.
    #[arg(long)]
    redis: Option<String>,
    /// The Redis is a cluster (default: SPANLINE_REDIS_CLUSTER=true): follow
    /// sharded channels on their shards and the global feed's shards merged.
    #[arg(long)]
    cluster: bool,
    /// How many shards the global feed is spread over on the cluster
    /// (default: what the publisher stored, else 16).
    #[arg(long, requires = "cluster")]
    shards: Option<usize>,
    /// The channel prefix the publisher uses.
    #[arg(long, default_value = "logs")]
    prefix: String,
    /// Read the stream instead (publisher in Streams mode), from an entry
    /// id (`0` replays everything kept, `$` only new lines, `ID-SEQ`) or a
    /// time (`-15m`, `2h`, `2026-12-06T10:00:00Z`: the entries from then
    /// on). Resumes after the last line seen when Redis comes back, so
    /// nothing is missed.
    #[arg(long, value_name = "ID|TIME", value_parser = stream_start, allow_hyphen_values = true)]
    since: Option<Start>,
    /// Print the JSON lines as they are.
    #[arg(long)]
    json: bool,
    /// Show only lines these directives enable, in RUST_LOG syntax (`warn,billing=debug`).
    #[arg(long)]
    filter: Option<String>,
    /// When to colour the output (`auto`: on a terminal, unless NO_COLOR is set).
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    color: Color,
    #[command(flatten)]
    view: ViewArgs,
    /// Stop after this many lines.
    #[arg(long)]
    count: Option<u64>,
}

/// Where `--since` starts reading a stream: the entry id. (A time given
/// becomes the id; the lines are not filtered by their own times, which
/// the stream's order already is.)
#[derive(Debug, Clone)]
struct Start {
    id: String,
}

/// `0`, `$` and `MS-SEQ` are entry ids; anything else is a time, whose
/// entry id is its Unix milliseconds (the ids the publisher's `XADD *` makes).
fn stream_start(text: &str) -> Result<Start, String> {
    let is_id = text == "0"
        || text == "$"
        || text.split_once('-').is_some_and(|(ms, seq)| {
            !ms.is_empty()
                && !seq.is_empty()
                && ms.bytes().chain(seq.bytes()).all(|b| b.is_ascii_digit())
        });
    if is_id {
        return Ok(Start {
            id: text.to_string(),
        });
    }
    let at = crate::when::parse(text)?;
    Ok(Start {
        id: format!("{}-0", at.unix_millis().max(0)),
    })
}

struct Output {
    json: bool,
    view: ViewArgs,
    ansi: bool,
    filter: Option<Targets>,
    left: Option<u64>,
    out: io::Stdout,
}

impl Output {
    fn new(args: &Args) -> io::Result<Self> {
        let filter = match &args.filter {
            Some(f) => Some(
                f.parse::<Targets>()
                    .map_err(|e| io::Error::other(format!("invalid --filter: {e}")))?,
            ),
            None => None,
        };
        Ok(Output {
            json: args.json,
            view: args.view.clone(),
            ansi: args.color.enabled(),
            filter,
            left: args.count,
            out: io::stdout(),
        })
    }

    /// Prints one payload if the filter lets it through; false once `--count` is reached.
    fn line(&mut self, payload: &[u8]) -> io::Result<bool> {
        let text = String::from_utf8_lossy(payload);
        let record = spanline_json::read::Record::read(&text);
        if self.view.filters() && !record.as_ref().is_some_and(|r| self.view.keeps(r)) {
            return Ok(true);
        }
        if let (Some(filter), Some(record)) = (&self.filter, &record) {
            // A line without a level passes as an error would.
            let level = match record.level {
                Some(Level::Trace) => tracing::Level::TRACE,
                Some(Level::Debug) => tracing::Level::DEBUG,
                Some(Level::Info) => tracing::Level::INFO,
                Some(Level::Warn) => tracing::Level::WARN,
                _ => tracing::Level::ERROR,
            };
            if !filter.would_enable(&record.target, &level) {
                return Ok(true);
            }
        }
        let rendered = if self.json {
            format!("{}\n", spanline_json::neutralize(&text))
        } else {
            let rendered = match &record {
                Some(record) => self.view.render_record(record, self.ansi),
                None => self.view.render(&text, self.ansi),
            };
            match rendered {
                Some(rendered) => rendered,
                None => return Ok(true),
            }
        };
        let mut out = self.out.lock();
        out.write_all(rendered.as_bytes())?;
        out.flush()?;
        if let Some(left) = &mut self.left {
            *left = left.saturating_sub(1);
            return Ok(*left > 0);
        }
        Ok(true)
    }
}

pub(crate) fn main(args: Args) -> io::Result<ExitCode> {
    let url = args
        .redis
        .clone()
        .or_else(|| std::env::var("SPANLINE_REDIS_URL").ok())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let cluster = args.cluster || crate::env_flag("SPANLINE_REDIS_CLUSTER");
    let channels = spanline_redis::Channels::new(&args.prefix)
        .map_err(|e| io::Error::other(format!("invalid --prefix: {e}")))?;
    if cluster {
        return follow_cluster(&args, &url, &channels);
    }
    let server = Server::open(&url)?;
    let (channel, pattern) = match (&args.job, &args.pattern) {
        (Some(job), _) => match channels.job(job) {
            Ok(channel) => (channel, false),
            Err(e) => return Err(io::Error::other(format!("invalid --job {job:?}: {e}"))),
        },
        (None, Some(pattern)) => (pattern.clone(), true),
        (None, None) => (channels.global(), false),
    };
    let mut out = Output::new(&args)?;
    if args.count == Some(0) {
        return Ok(ExitCode::SUCCESS);
    }
    match &args.since {
        Some(_) if pattern => Err(io::Error::other(
            "--since reads one stream: use it with --job or --global",
        )),
        Some(since) => follow_stream(&server, &channel, &since.id, &mut out),
        None => follow_channel(&server, &channel, pattern, &mut out),
    }
}

/// `tail --cluster`: the job's channel or the global feed's shards, live
/// or from their streams.
fn follow_cluster(
    args: &Args,
    urls: &str,
    channels: &spanline_redis::Channels,
) -> io::Result<ExitCode> {
    if args.pattern.is_some() {
        return Err(io::Error::other(
            "--pattern is not available on a cluster: sharded pub/sub has no patterns; \
             use --job or --global",
        ));
    }
    let cluster = Cluster::new(urls)?;
    let feed = match &args.job {
        Some(job) => {
            let name = channels
                .job(job)
                .map_err(|e| io::Error::other(format!("invalid --job {job:?}: {e}")))?;
            Feed {
                channels: vec![name.clone()],
                name,
            }
        }
        None => {
            let n = match args.shards {
                Some(n) if (1..=read::MAX_GLOBAL_SHARDS).contains(&n) => n,
                Some(n) => {
                    return Err(io::Error::other(format!(
                        "--shards {n}: 1 to {}",
                        read::MAX_GLOBAL_SHARDS
                    )))
                }
                None => cluster.global_shards(channels),
            };
            Feed {
                name: channels.global(),
                channels: read::global_shards(channels, n),
            }
        }
    };
    let mut out = Output::new(args)?;
    if args.count == Some(0) {
        return Ok(ExitCode::SUCCESS);
    }
    match &args.since {
        Some(since) => {
            crate::cluster::follow_streams(&cluster, &feed.channels, &since.id, |l| out.line(l))
        }
        None => crate::cluster::follow_channels(&cluster, &feed, |l| out.line(l)),
    }
}

/// A connection, retrying with back-off for as long as it takes; says on
/// stderr where Redis is and why it cannot be used, once per cause. Before
/// `tail` has ever read from it (`started` false), a cause that retrying
/// cannot cure (the login refused, no such database) ends `tail` instead.
fn connect(
    server: &Server,
    attempt: &mut u32,
    said: &mut Option<String>,
    started: bool,
) -> io::Result<redis::Connection> {
    loop {
        match server.connect() {
            Ok(con) => return Ok(con),
            Err(failure) => retry_or_stop(failure, attempt, said, started)?,
        }
    }
}

/// After `failure`: stops (`Err`) when it is permanent and nothing was read
/// yet; else says it (unless it was the last thing said) and backs off.
fn retry_or_stop(
    failure: Failure,
    attempt: &mut u32,
    said: &mut Option<String>,
    started: bool,
) -> io::Result<()> {
    if failure.permanent && !started {
        return Err(io::Error::other(failure.text));
    }
    if said.as_deref() != Some(failure.text.as_str()) {
        eprintln!("spanline: {}; retrying", failure.text);
        *said = Some(failure.text);
    }
    backoff(attempt);
    Ok(())
}

fn follow_channel(
    server: &Server,
    channel: &str,
    pattern: bool,
    out: &mut Output,
) -> io::Result<ExitCode> {
    let mut attempt = 0;
    let mut said = None;
    let mut connected_before = false;
    loop {
        let mut con = connect(server, &mut attempt, &mut said, connected_before)?;
        let mut pubsub = con.as_pubsub();
        let subscribed = if pattern {
            pubsub.psubscribe(channel)
        } else {
            pubsub.subscribe(channel)
        }
        .and_then(|()| pubsub.set_read_timeout(Some(Duration::from_millis(500))));
        if let Err(e) = subscribed {
            // The connection lost meanwhile. (A refusal of the
            // subscription itself, NOPERM for an ACL without the channel,
            // is not reported by the redis crate's PubSub.)
            retry_or_stop(
                server.failure(&e),
                &mut attempt,
                &mut said,
                connected_before,
            )?;
            continue;
        }
        attempt = 0;
        said = None;
        // Said once subscribed (the server confirmed): a line published
        // from now on is shown.
        let what = if pattern {
            format!("the channels matching {channel}")
        } else {
            channel.to_string()
        };
        if connected_before {
            eprintln!(
                "spanline: reconnected to Redis; following {what} again (live); lines published \
                 while disconnected are missing"
            );
        } else {
            eprintln!("spanline: following {what} (live)");
        }
        connected_before = true;
        loop {
            match pubsub.get_message() {
                Ok(msg) => {
                    if !out.line(msg.get_payload_bytes())? {
                        return Ok(ExitCode::SUCCESS);
                    }
                }
                Err(e) if e.is_timeout() => {}
                Err(e) => {
                    eprintln!(
                        "spanline: lost the connection to Redis at {} ({}); reconnecting",
                        server.address(),
                        server.scrub(&e)
                    );
                    break;
                }
            }
        }
    }
}

fn follow_stream(
    server: &Server,
    key: &str,
    since: &str,
    out: &mut Output,
) -> io::Result<ExitCode> {
    let mut last = since.to_string();
    let mut attempt = 0;
    // The last error said, so a lasting one (a key of the wrong type) is
    // said once, not once per retry.
    let mut said: Option<String> = None;
    // Whether a read ever worked: until then, a lasting refusal (the
    // login, the database, a missing right) ends `tail`.
    let mut started = false;
    loop {
        let mut con = connect(server, &mut attempt, &mut said, started)?;
        loop {
            // Entries after `last`: a reconnection resumes where it stopped.
            let reply = read::read_stream(&mut con, key, &last, 512, Some(Duration::from_secs(1)));
            if reply.is_ok() {
                attempt = 0;
                said = None;
                started = true;
            }
            match reply {
                Ok(entries) => {
                    for entry in entries {
                        last = entry.id;
                        if !out.line(&entry.line)? {
                            return Ok(ExitCode::SUCCESS);
                        }
                    }
                }
                Err(e) => {
                    // An error reply (WRONGTYPE, NOPERM, LOADING) or a lost
                    // connection: say what it was, back off, resume after
                    // the last entry shown.
                    let failure = server.failure(&e);
                    if failure.permanent && !started {
                        return Err(io::Error::other(failure.text));
                    }
                    let what = server.scrub(&e);
                    if said.as_deref() != Some(what.as_str()) {
                        eprintln!("spanline: reading {key} failed ({what}); retrying after {last}");
                    }
                    said = Some(what);
                    backoff(&mut attempt);
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is a failure report

    use super::*;

    #[test]
    fn since_takes_an_entry_id_or_a_time() {
        for id in ["0", "$", "1796551200000-0", "1796551200000-12"] {
            assert_eq!(stream_start(id).unwrap().id, id);
        }
        let start = stream_start("2026-12-06T10:00:00.250Z").unwrap();
        assert_eq!(start.id, "1796551200250-0");
        assert!(stream_start("-15m").unwrap().id.ends_with("-0"));
        assert!(stream_start("soon").is_err());
    }
}
