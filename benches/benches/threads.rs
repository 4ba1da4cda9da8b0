//! CPU time per event at 1, 2, 4 and 8 threads (the speed issue's second
//! goal): when nothing is shared between threads, each event costs the same
//! CPU whatever the number of threads, even when the threads queue for two
//! cores; a shared write (a counter, a lock, a cache line bounced between
//! cores) makes it grow.
//!
//! Each thread enters W1's two spans of its own, waits for the others, logs
//! `EVENTS` W1 events and reads its own CPU time (`CLOCK_THREAD_CPUTIME_ID`,
//! nanoseconds; Linux). A row
//! is the sum of the threads' CPU time over all their events, the least of
//! `RUNS` runs (the VM's noise only adds time: a neighbour, a stolen tick,
//! a migration), and its ratio to the one-thread cell of the same layer.
//! Each run measures every cell once, so noise spreads over all of them.
//!
//! Run with: `cargo bench -p spanline-benches --bench threads -- [EVENTS [RUNS [LAYER..]]]`
//! (200000 events a thread, 5 runs; rows `control` (no tracing: see
//! [`CONTROL`]), `registry` (under a layer that does nothing), `context`,
//! `spanline-flat` and `tracing-flat-json` by default).
#![allow(clippy::disallowed_macros)] // a bench prints its table

#[path = "support.rs"]
mod support;

use std::sync::{Arc, Barrier};

const THREADS: [usize; 4] = [1, 2, 4, 8];

/// The row of work that shares nothing and calls no layer (escaping text
/// into the thread's own buffer, about as long as an event): how much the
/// VM alone makes CPU time grow with threads, which the other rows are
/// read against.
const CONTROL: &str = "control";

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
        vec![
            "control",
            "registry",
            "context",
            "spanline-flat",
            "tracing-flat-json",
        ]
    };
    if thread_cpu_ns().is_none() {
        eprintln!("no CPU clock for threads: this bench needs Linux");
        return;
    }
    println!("CPU ns per W1 event; {events} events a thread, least of {runs} runs");
    println!("| layer | 1 thread | 2 threads | 4 threads | 8 threads |");
    println!("|---|---:|---:|---:|---:|");
    let dispatches: Vec<_> = layers
        .iter()
        .map(|&l| (l != CONTROL).then(|| support::dispatch(l)))
        .collect();
    // samples[layer][threads][run]
    let mut samples = vec![vec![Vec::new(); THREADS.len()]; layers.len()];
    for _ in 0..runs {
        for (dispatch, rows) in dispatches.iter().zip(&mut samples) {
            for (threads, cell) in THREADS.iter().zip(rows.iter_mut()) {
                cell.push(cpu_per_event(dispatch, *threads, events));
            }
        }
    }
    for (layer, rows) in layers.iter().zip(samples) {
        let row: Vec<f64> = rows
            .into_iter()
            .map(|mut cell| {
                cell.sort_by(f64::total_cmp);
                cell[0]
            })
            .collect();
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
/// With no dispatch, the control instead: work that shares nothing.
fn cpu_per_event(dispatch: &Option<tracing::Dispatch>, threads: usize, events: u64) -> f64 {
    let start = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let dispatch = dispatch.clone();
            let start = Arc::clone(&start);
            std::thread::spawn(move || {
                let measure = |work: &dyn Fn(u64)| {
                    // Warm the thread's caches and buffers first.
                    (0..1_000).for_each(work);
                    start.wait();
                    let before = thread_cpu_ns().unwrap_or(0);
                    (0..events).for_each(work);
                    thread_cpu_ns().unwrap_or(0).saturating_sub(before)
                };
                match dispatch {
                    Some(dispatch) => tracing::dispatcher::with_default(&dispatch, || {
                        let _spans = support::w1_spans();
                        measure(&support::event)
                    }),
                    None => {
                        let text = support::text();
                        let buf = std::cell::RefCell::new(Vec::with_capacity(4096));
                        measure(&|_| {
                            let mut buf = buf.borrow_mut();
                            buf.clear();
                            for _ in 0..4 {
                                spanline_core::write_str(&mut buf, std::hint::black_box(&text));
                            }
                            std::hint::black_box(&*buf);
                        })
                    }
                }
            })
        })
        .collect();
    let total: u64 = handles.into_iter().map(|h| h.join().unwrap_or(0)).sum();
    total as f64 / (events as f64 * threads as f64)
}

/// This thread's time on a CPU so far, in nanoseconds
/// (`CLOCK_THREAD_CPUTIME_ID`: exact at the call, where
/// `/proc/thread-self/schedstat` lags by up to a scheduler tick).
#[allow(unsafe_code)] // one libc call, below
fn thread_cpu_ns() -> Option<u64> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec for the call's duration.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    (rc == 0).then(|| now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64)
}
