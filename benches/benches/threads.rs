//! CPU time per event at 1, 2, 4 and 8 threads (the speed issue's second
//! goal): when nothing is shared between threads, each event costs the same
//! CPU whatever the number of threads, even when the threads queue for two
//! cores; a shared write (a counter, a lock, a cache line bounced between
//! cores) makes it grow.
//!
//! Each thread enters W1's two spans of its own, waits for the others, logs
//! `EVENTS` W1 events and reads its own CPU time from
//! `/proc/thread-self/schedstat` (nanoseconds on the CPU; Linux only). A row
//! is the sum of the threads' CPU time over all their events, the median of
//! `RUNS` runs, and its ratio to the one-thread row of the same layer.
//!
//! Run with: `cargo bench -p spanline-benches --bench threads -- [EVENTS [RUNS [LAYER..]]]`
//! (200000 events a thread, 5 runs; layers `registry`, `context`,
//! `spanline-flat` and `tracing-flat-json` by default).
#![allow(clippy::disallowed_macros)] // a bench prints its table

#[path = "support.rs"]
mod support;

use std::sync::{Arc, Barrier};

const THREADS: [usize; 4] = [1, 2, 4, 8];

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let events: u64 = args.first().and_then(|n| n.parse().ok()).unwrap_or(200_000);
    let runs: usize = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(5);
    let layers: Vec<&str> = if args.len() > 2 {
        args[2..].iter().map(String::as_str).collect()
    } else {
        vec!["registry", "context", "spanline-flat", "tracing-flat-json"]
    };
    if thread_cpu_ns().is_none() {
        eprintln!("/proc/thread-self/schedstat cannot be read: this bench needs Linux");
        return;
    }
    println!("CPU ns per W1 event; {events} events a thread, median of {runs} runs");
    println!("| layer | 1 thread | 2 threads | 4 threads | 8 threads |");
    println!("|---|---:|---:|---:|---:|");
    for layer in layers {
        let dispatch = support::dispatch(layer);
        let mut row = Vec::new();
        for threads in THREADS {
            let mut samples: Vec<f64> = (0..runs)
                .map(|_| cpu_per_event(&dispatch, threads, events))
                .collect();
            samples.sort_by(f64::total_cmp);
            row.push(samples[samples.len() / 2]);
        }
        let one = row[0];
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, ns)| {
                if i == 0 {
                    format!("{ns:.0}")
                } else {
                    format!("{ns:.0} ({:.2})", ns / one)
                }
            })
            .collect();
        println!("| {layer} | {} |", cells.join(" | "));
    }
}

/// The CPU nanoseconds per event of `threads` threads logging `events`
/// W1 events each through `dispatch`.
fn cpu_per_event(dispatch: &tracing::Dispatch, threads: usize, events: u64) -> f64 {
    let start = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let dispatch = dispatch.clone();
            let start = Arc::clone(&start);
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    let _spans = support::w1_spans();
                    // Warm the thread's caches and buffers first.
                    (0..1_000).for_each(support::event);
                    start.wait();
                    let before = thread_cpu_ns().unwrap_or(0);
                    (0..events).for_each(support::event);
                    thread_cpu_ns().unwrap_or(0).saturating_sub(before)
                })
            })
        })
        .collect();
    let total: u64 = handles.into_iter().map(|h| h.join().unwrap_or(0)).sum();
    total as f64 / (events as f64 * threads as f64)
}

/// This thread's time on a CPU so far, in nanoseconds: the first number of
/// `/proc/thread-self/schedstat`.
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
