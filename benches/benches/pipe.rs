//! Child-process forwarding, end to end: a child emits events inside two
//! nested spans through `ForwardLayer`; the parent reads them, side by side:
//! - `raw`: the parent counts lines without parsing (the pipe's line rate);
//! - `registry + EnvFilter`: parsed and re-dispatched, no output layer;
//! - `+ ContextLayer + JsonLayer → sink`: spanline's JSON layer in the parent;
//! - parent alone: up to 200,000 of the child's records read into memory
//!   first, then fed to a `Receiver` (Registry + EnvFilter): the parent's
//!   own ceiling, without the pipe or the child on the other core.
//!
//! Run with: `cargo bench -p spanline-benches --bench pipe [-- EVENTS [RUNS]]`
//! (default 1,000,000 events, 5 runs). Each run measures the three parents
//! one after the other; the table gives each row's median over the runs, so
//! a noisy moment of the VM moves all rows alike or none. Prints Markdown.

#![allow(clippy::disallowed_macros, clippy::expect_used)] // a bench: its table goes to stdout

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

use spanline_core::ContextLayer;
use spanline_json::JsonLayer;
use spanline_pipe::{ForwardLayer, Forwarder, Receiver};

use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

#[path = "support.rs"]
mod support;

fn child(events: u64) {
    tracing_subscriber::registry()
        .with(ForwardLayer::from_env())
        .init();
    let _spans = support::w1_spans();
    for i in 0..events {
        support::event(i);
    }
}

fn command(events: u64) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("own path"));
    cmd.arg("--child")
        .arg(events.to_string())
        .stdout(Stdio::null());
    cmd
}

fn raw(events: u64) -> (f64, u64) {
    // The child encodes what the parent's level allows: set one, as for the others.
    let dispatch =
        tracing::Dispatch::new(tracing_subscriber::registry().with(EnvFilter::new("info")));
    let _guard = tracing::dispatcher::set_default(&dispatch);
    let start = Instant::now();
    let (mut child, read) = Forwarder::new("bench")
        .spawn_with_reader(&mut command(events))
        .expect("spawn");
    let mut lines = 0u64;
    let mut reader = BufReader::with_capacity(64 * 1024, read);
    let mut buf = Vec::with_capacity(4096);
    while reader
        .read_until(b'\n', &mut buf)
        .map(|n| n > 0)
        .unwrap_or(false)
    {
        lines += 1;
        buf.clear();
    }
    let _ = child.wait();
    (start.elapsed().as_secs_f64(), lines)
}

/// The parent's own cost: a child's records read into memory first, then
/// fed to a `Receiver` under `dispatch`, timed without the pipe or the child.
fn from_memory(events: u64, dispatch: tracing::Dispatch) -> f64 {
    let (mut child, mut read) = Forwarder::new("bench")
        .spawn_with_reader(&mut command(events))
        .expect("spawn");
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut read, &mut bytes).expect("read the records");
    let _ = child.wait();
    tracing::dispatcher::with_default(&dispatch, || {
        let mut receiver = Receiver::new(tracing::Span::none());
        let start = Instant::now();
        for line in bytes.split(|&b| b == b'\n') {
            receiver.feed_line(line);
        }
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(receiver.records(), events + 5);
        events as f64 / secs
    })
}

fn forwarded(events: u64, dispatch: tracing::Dispatch) -> f64 {
    tracing::dispatcher::with_default(&dispatch, || {
        let start = Instant::now();
        let child = Forwarder::new("bench")
            .spawn(&mut command(events))
            .expect("spawn");
        let _ = child.wait();
        start.elapsed().as_secs_f64()
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(
            args.get(i + 1)
                .and_then(|n| n.parse().ok())
                .unwrap_or(1_000_000),
        );
        return;
    }
    let mut numbers = args.iter().skip(1).filter_map(|a| a.parse::<u64>().ok());
    let events = numbers.next().unwrap_or(1_000_000);
    let runs = numbers.next().unwrap_or(5).max(1);
    let registry =
        || tracing::Dispatch::new(tracing_subscriber::registry().with(EnvFilter::new("info")));
    let json = || {
        tracing::Dispatch::new(
            tracing_subscriber::registry()
                .with(EnvFilter::new("info"))
                .with(ContextLayer::new())
                .with(JsonLayer::builder().with_writer(std::io::sink).build()),
        )
    };
    let (mut raw_rates, mut registry_rates, mut json_rates) = (vec![], vec![], vec![]);
    let mut memory_rates = vec![];
    for run in 1..=runs {
        let (raw_secs, lines) = raw(events);
        assert_eq!(lines, events + 5, "hello, 2 spans, events, 2 closes");
        raw_rates.push(lines as f64 / raw_secs);
        registry_rates.push(events as f64 / forwarded(events, registry()));
        json_rates.push(events as f64 / forwarded(events, json()));
        memory_rates.push(from_memory(events.min(200_000), registry()));
        eprintln!(
            "run {run}/{runs}: raw {:.0}, registry {:.0}, json {:.0}, parent alone {:.0}",
            raw_rates[run as usize - 1],
            registry_rates[run as usize - 1],
            json_rates[run as usize - 1],
            memory_rates[run as usize - 1]
        );
    }
    let (raw_rate, registry_rate, json_rate) = (
        median(&mut raw_rates),
        median(&mut registry_rates),
        median(&mut json_rates),
    );
    println!("| parent ({events} events, median of {runs} runs) | records/s | vs raw |");
    println!("|---|---:|---:|");
    println!("| raw line count, no parsing | {raw_rate:.0} | 1.00 |");
    println!(
        "| Registry + EnvFilter | {registry_rate:.0} | {:.2} |",
        registry_rate / raw_rate
    );
    println!(
        "| + ContextLayer + JsonLayer → sink | {json_rate:.0} | {:.2} |",
        json_rate / raw_rate
    );
    println!(
        "| Registry + EnvFilter, parent alone (records fed from memory) | {:.0} | |",
        median(&mut memory_rates)
    );
}

fn median(rates: &mut [f64]) -> f64 {
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}
