//! Heap allocations per event, counted with a counting global allocator,
//! for W1 (see `json.rs`) after warm-up, for every layer side by side.
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

fn main() {
    const EVENTS: u64 = 100_000;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "| layer | allocations per event | bytes allocated per event |"
    );
    let _ = writeln!(out, "|---|---:|---:|");
    for name in support::LAYERS {
        let dispatch = support::dispatch(name);
        let (allocs, bytes) = tracing::dispatcher::with_default(&dispatch, || {
            let _spans = support::w1_spans();
            for i in 0..1_000u64 {
                support::event(i);
            }
            let (a0, b0) = (
                ALLOCS.load(Ordering::Relaxed),
                BYTES.load(Ordering::Relaxed),
            );
            for i in 0..EVENTS {
                support::event(i);
            }
            (
                ALLOCS.load(Ordering::Relaxed) - a0,
                BYTES.load(Ordering::Relaxed) - b0,
            )
        });
        let _ = writeln!(
            out,
            "| {name} | {:.2} | {:.0} |",
            allocs as f64 / EVENTS as f64,
            bytes as f64 / EVENTS as f64
        );
    }
}
