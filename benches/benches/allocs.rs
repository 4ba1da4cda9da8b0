//! Heap allocations per event, counted with a counting global allocator,
//! after warm-up, for every layer side by side: W1 (an event in two spans),
//! W3 (per iteration: two spans created, entered, closed, one event) and a
//! message-less event of 32 fields (see `json.rs`).
//!
//! Run with: `cargo bench -p spanline-benches --bench allocs`

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

#[path = "support.rs"]
mod support;

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations and bytes per call of `f` (after 1,000 warm-up calls).
fn per_call(dispatch: &tracing::Dispatch, f: impl Fn(u64)) -> (f64, f64) {
    const CALLS: u64 = 100_000;
    tracing::dispatcher::with_default(dispatch, || {
        for i in 0..1_000u64 {
            f(i);
        }
        let (a0, b0) = (
            ALLOCS.load(Ordering::Relaxed),
            BYTES.load(Ordering::Relaxed),
        );
        for i in 0..CALLS {
            f(i);
        }
        (
            (ALLOCS.load(Ordering::Relaxed) - a0) as f64 / CALLS as f64,
            (BYTES.load(Ordering::Relaxed) - b0) as f64 / CALLS as f64,
        )
    })
}

fn main() {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "| layer | W1 allocations per event | bytes | W3 allocations per iteration | bytes | span pair alone, allocations | bytes | 32 fields, allocations per event | bytes | 64 KiB value, allocations per event | bytes |"
    );
    let _ = writeln!(
        out,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let long: String = "abcdefghijklmnopqrstuvwxyz0123456789 "
        .chars()
        .cycle()
        .take(64 << 10)
        .collect();
    for name in support::LAYERS {
        let dispatch = support::dispatch(name);
        let w1 = tracing::dispatcher::with_default(&dispatch, || {
            let _spans = support::w1_spans();
            per_call(&dispatch, support::event)
        });
        let w3 = per_call(&dispatch, support::w3);
        let spans = per_call(&dispatch, support::spans);
        let wide = per_call(&dispatch, |i| support::wide(32, i));
        let big = per_call(&dispatch, |i| {
            tracing::info!(i, body = long.as_str(), "long")
        });
        let _ = writeln!(
            out,
            "| {name} | {:.2} | {:.0} | {:.2} | {:.0} | {:.2} | {:.0} | {:.2} | {:.0} | {:.2} | {:.0} |",
            w1.0, w1.1, w3.0, w3.1, spans.0, spans.1, wide.0, wide.1, big.0, big.1
        );
    }
}
