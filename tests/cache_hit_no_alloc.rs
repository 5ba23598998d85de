//! A cache hit allocates nothing and generates nothing (no miss is counted): checked with a
//! counting global allocator, which is why this test has a binary of its own.
// Native only: the browser has its own suite, tests/web.rs.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use alibi_wgpu::{AlibiConfig, AlibiPositionalBias};

struct CountingAllocator;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; it only counts.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

#[test]
fn cache_hits_allocate_nothing() {
    let Some(gpu) = common::gpu() else { return };
    let mut alibi =
        AlibiPositionalBias::on_device(gpu, AlibiConfig::new(8).total_heads(12)).unwrap();
    alibi.forward(64, 64).unwrap();
    let misses = alibi.cache_stats().misses;

    // A hit polls the device at most once per millisecond, to learn of a device loss, and
    // wgpu's poll may allocate (its GL backend does). Rounds of hits take microseconds, so
    // only a round the thread was descheduled in can contain that poll: most rounds show
    // what a hit costs, which must be nothing.
    let rounds: Vec<usize> = (0..50)
        .map(|_| {
            let before = ALLOCATIONS.load(Ordering::Relaxed);
            for (i, j) in [(64, 64), (1, 64), (3, 17), (64, 1), (64, 64)] {
                let bias = alibi.forward(i, j).unwrap();
                assert_eq!(bias.shape(), [12, i, j]);
            }
            ALLOCATIONS.load(Ordering::Relaxed) - before
        })
        .collect();
    assert!(
        rounds.iter().filter(|&&n| n == 0).count() >= 40,
        "cache hits allocated: {rounds:?} allocations in 50 rounds of five hits"
    );
    assert_eq!(
        alibi.cache_stats().misses,
        misses,
        "every request was inside (64, 64)"
    );
}
