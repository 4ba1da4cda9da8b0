//! `spanline run`: a command with log forwarding, its records rendered here.

use std::io;
use std::process::{Command, ExitCode};

use spanline_core::ContextLayer;
use spanline_json::{JsonLayer, PrettyLayer};
use spanline_pipe::{ForwardLayer, Forwarder};
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

use crate::Color;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The name of the child span the command's records go under.
    #[arg(long)]
    name: Option<String>,
    /// Write JSON lines instead of the pretty renderer.
    #[arg(long)]
    json: bool,
    /// When to colour the pretty output.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    color: Color,
    /// The command and its arguments.
    #[arg(required = true, last = true)]
    command: Vec<String>,
}

pub(crate) fn main(args: Args) -> io::Result<ExitCode> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Run by another `spanline run` (or a Forwarder): pass everything up,
    // and print nothing here, or every line would show twice.
    let forward = ForwardLayer::from_env();
    let local = forward.is_none();
    // The filter on the ContextLayer: the child's context spans (and the
    // `child` span) are kept whatever RUST_LOG says.
    tracing_subscriber::registry()
        .with(ContextLayer::new().filter(filter))
        .with((local && !args.json).then(|| PrettyLayer::new().with_ansi(args.color.enabled())))
        .with((local && args.json).then(JsonLayer::new))
        .with(forward)
        .try_init()
        .map_err(io::Error::other)?;
    let (program, rest) = args
        .command
        .split_first()
        .ok_or_else(|| io::Error::other("no command given"))?;
    let name = args.name.clone().unwrap_or_else(|| program.clone());
    let mut cmd = Command::new(program);
    cmd.args(rest);
    let status = Forwarder::new(name)
        // The context this process runs in (TRACEPARENT, BAGGAGE), passed
        // on whatever features the CLI was built with.
        .env_with(spanline_context::ContextSnapshot::capture_env)
        .spawn(&mut cmd)?
        .wait()?;
    Ok(exit_code(&status))
}

/// The child's status as ours: its code, or 128 + the signal, as shells do.
fn exit_code(status: &std::process::ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        (None, Some(signal)) => ExitCode::from(u8::try_from(128 + signal).unwrap_or(1)),
        (None, None) => ExitCode::from(1),
    }
}
