//! The `spanline` command: `tail`, `pretty`, `run` and `web`.

// A command-line tool: stdout and stderr are its interface.
#![allow(clippy::disallowed_macros)]

mod cluster;
mod pretty;
mod run;
mod server;
mod tail;
mod view;
#[cfg(feature = "web")]
mod web;
mod when;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Watch and render spanline logs.
#[derive(Debug, Parser)]
#[command(name = "spanline", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Follow log lines live from Redis: a job's channel, the global channel, or a pattern.
    #[command(after_help = "Examples:\n  \
        spanline tail --job report_0193a5f0e8c47b3d9f1a2e6c5d4b3a21\n  \
        spanline tail --global --filter 'warn,billing=debug'\n  \
        spanline tail --pattern 'logs:build_*' --json\n  \
        spanline tail --global --since 0          # replay the global stream, then follow\n  \
        spanline tail --cluster --redis redis://10.0.0.1:6379,redis://10.0.0.2:6379 --global\n\n\
        The Redis URL comes from --redis, else SPANLINE_REDIS_URL, else redis://127.0.0.1:6379.")]
    Tail(tail::Args),
    /// Render JSON log lines from stdin or files for people; malformed lines pass through, marked.
    #[command(after_help = "Examples:\n  \
        my-service | spanline pretty\n  \
        spanline pretty api.log worker.log.gz --since -15m      # merged by time\n  \
        spanline pretty -F api.log --level warn --hide http     # follow\n  \
        kubectl logs deploy/api | spanline pretty --color always")]
    Pretty(pretty::Args),
    /// Run a command with log forwarding and render its records; exit with its status.
    #[command(after_help = "Examples:\n  \
        spanline run -- ./target/debug/worker --batch 7\n  \
        RUST_LOG=info,worker=debug spanline run --name nightly -- worker\n\n\
        The command's own spanline logs (ForwardLayer::from_env(), or spanline::init()) come back\n\
        through a pipe and are filtered by RUST_LOG here. What it prints becomes lines too:\n\
        stdout at INFO, stderr at WARN, target = the command's name, escape codes removed.\n\
        Exits with the command's status (128 + the signal when killed); 127 when the command\n\
        is not found, 126 when it cannot be started.")]
    Run(run::Args),
    /// Serve the live log console: every job's lines in the browser, from Redis.
    #[cfg(feature = "web")]
    #[command(after_help = "Examples:\n  \
        spanline web                                   # http://127.0.0.1:7070/\n  \
        spanline web --redis redis://10.0.0.5:6379 --prefix logs\n  \
        spanline web --listen 0.0.0.0:7070 --token \"$(openssl rand -hex 16)\"\n\n\
        Off loopback a token is required; open the console once with ?token=..., a cookie keeps it.")]
    Web(web::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Tail(args) => tail::main(args),
        Command::Pretty(args) => pretty::main(args),
        Command::Run(args) => run::main(args),
        #[cfg(feature = "web")]
        Command::Web(args) => web::main(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("spanline: {e}");
            ExitCode::from(2)
        }
    }
}

/// A yes/no environment variable: `1`, `true`, `yes` or `on`.
pub(crate) fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    })
}

/// When to colour output.
#[derive(Clone, Copy, Debug, Default, clap::ValueEnum)]
pub(crate) enum Color {
    /// When stdout is a terminal, unless NO_COLOR is set.
    #[default]
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

impl Color {
    pub(crate) fn enabled(self) -> bool {
        use std::io::IsTerminal;
        match self {
            // https://no-color.org: set and not empty turns colour off.
            Color::Auto => {
                std::io::stdout().is_terminal()
                    && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            }
            Color::Always => true,
            Color::Never => false,
        }
    }
}
