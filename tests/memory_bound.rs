//! Bounded memory: with a budget of B bytes, 20,000 random calls never leave the module
//! holding more than B bytes of cached and recycled buffers (and at most B of readback
//! staging), and `cache_stats()` reports that peak. Views the caller keeps are read back
//! again much later: a buffer the caller holds is never recycled under it.
// Native only: the browser has its own suite, tests/web.rs.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::Rng;

use std::io::Write as _;

use alibi_wgpu::{reference, AlibiBias, AlibiConfig, CacheStats, HostBias};

const CALLS: u64 = 20_000;
const BUDGET: u64 = 1 << 20;
/// Views kept by the caller at any time, each replaced now and then.
const HELD_VIEWS: usize = 6;

fn assert_within_budget(stats: &CacheStats, budget: u64, context: &str) {
    assert!(
        stats.bytes + stats.recycled_bytes <= budget,
        "{context}: cached {} + recycled {} > budget {budget}",
        stats.bytes,
        stats.recycled_bytes
    );
    assert!(stats.peak_bytes <= budget, "{context}: {stats:?}");
    assert!(stats.staging_bytes <= budget, "{context}: {stats:?}");
    assert_eq!(stats.budget_bytes, budget, "{context}");
}

/// The module's byte counts are what its buffers really hold: a miss that adds an entry
/// and evicts nothing adds exactly its buffer's size (a reused buffer may be up to twice
/// the tensor), and a hit changes nothing.
fn assert_counts_real_sizes(
    before: &CacheStats,
    after: &CacheStats,
    view: &AlibiBias,
    context: &str,
) {
    let size = view.buffer().expect("a non-empty view").size();
    if after.misses == before.misses {
        assert_eq!(after.bytes, before.bytes, "{context}: a hit");
    } else if after.evictions == before.evictions && after.entries == before.entries + 1 {
        assert_eq!(after.bytes, before.bytes + size, "{context}: a kept miss");
    }
}

#[test]
fn a_reused_larger_buffer_is_counted_at_its_size() {
    let Some(gpu) = common::gpu() else { return };
    let mut alibi = common::module(gpu, AlibiConfig::new(4).cache_budget_bytes(BUDGET));
    let large = alibi.forward(4, 2000).expect("forward");
    let large_size = large.buffer().unwrap().size();
    drop(large);
    alibi.clear_cache();
    assert_eq!(alibi.cache_stats().recycled_bytes, large_size);
    // 4 x 4 x 1100 f32 is more than half the recycled buffer: it takes that buffer.
    let view = alibi.forward(4, 1100).expect("forward");
    assert_eq!(
        view.buffer().unwrap().size(),
        large_size,
        "the recycled buffer was reused"
    );
    let stats = alibi.cache_stats();
    assert_eq!(
        (stats.bytes, stats.recycled_bytes),
        (large_size, 0),
        "{stats:?}"
    );
    common::assert_same(
        &common::read(&alibi, &view),
        &common::expected(&alibi, 4, 1100),
        "in a reused buffer",
    );
}

#[test]
fn twenty_thousand_calls_stay_within_the_budget() {
    let Some(gpu) = common::gpu() else { return };
    let mut alibi = common::module(
        gpu,
        AlibiConfig::new(3)
            .total_heads(4)
            .cache_budget_bytes(BUDGET),
    );
    let slopes = alibi.slopes().to_vec();
    let expected = |i: usize, j: usize| -> HostBias {
        reference::forward(&slopes, 4, i, j).expect("the oracle accepts every shape here")
    };
    let mut rng = Rng::seeded(0x5EED_1234_ABCD_0001);
    let mut held: Vec<(AlibiBias, usize, usize)> = Vec::new();
    let mut largest_result = 0u64;
    let mut checked = 0;
    for call in 0..CALLS {
        // 4 heads x up to 64 x 2,048 f32: up to 2 MiB, so some results exceed the budget
        // (returned, not kept), most fit, and the cache churns through evictions.
        let i = 1 + rng.below(64);
        let j = 1 + rng.below(2048);
        let context = format!("call {call}: forward({i}, {j})");
        let view = match rng.below(100) {
            0 => {
                alibi.clear_cache();
                None
            }
            1..=9 => {
                let host = pollster::block_on(alibi.forward_to_host(i, j))
                    .unwrap_or_else(|e| panic!("{context}: {e}"));
                if call % 16 == 0 {
                    common::assert_same(&host, &expected(i, j), &context);
                    checked += 1;
                }
                None
            }
            _ => {
                let before = alibi.cache_stats();
                let view = alibi
                    .forward(i, j)
                    .unwrap_or_else(|e| panic!("{context}: {e}"));
                assert_counts_real_sizes(&before, &alibi.cache_stats(), &view, &context);
                Some(view)
            }
        };
        assert_within_budget(&alibi.cache_stats(), BUDGET, &context);
        if let Some(view) = view {
            largest_result = largest_result.max((4 * i * j.next_multiple_of(4) * 4) as u64);
            if rng.below(8) == 0 {
                let slot = rng.below(HELD_VIEWS as u64);
                if slot < held.len() {
                    // The view it replaces is read back first: it was held through every
                    // call since, evictions and recycling included.
                    let (old, oi, oj) = std::mem::replace(&mut held[slot], (view, i, j));
                    common::assert_same(
                        &common::read(&alibi, &old),
                        &expected(oi, oj),
                        &format!("{context}: a view of ({oi}, {oj}) held since earlier"),
                    );
                    checked += 1;
                } else {
                    held.push((view, i, j));
                }
            }
        }
    }
    for (view, i, j) in &held {
        common::assert_same(
            &common::read(&alibi, view),
            &expected(*i, *j),
            "a view held to the end",
        );
    }
    let stats = alibi.cache_stats();
    assert!(largest_result > BUDGET, "some results exceed the budget");
    assert!(stats.evictions > 1000 && stats.hits > 1000, "{stats:?}");
    // Past libtest's capture: the figures of this run, for the logs.
    let _ = writeln!(
        std::io::stderr(),
        "memory bound: {CALLS} calls on {:?}, budget {BUDGET} bytes, peak {} bytes \
         (cached + recycled), staging {} bytes, largest result {largest_result} bytes, \
         {checked} results checked against the oracle; {stats:?}",
        alibi.generation_path(),
        stats.peak_bytes,
        stats.staging_bytes,
    );
}

#[test]
fn lowering_the_budget_drops_what_no_longer_fits() {
    let Some(gpu) = common::gpu() else { return };
    let mut alibi = common::module(gpu, AlibiConfig::new(2).cache_budget_bytes(BUDGET));
    for j in [100, 300, 700, 1500] {
        let view = alibi.forward(8, j).expect("forward");
        common::read(&alibi, &view);
    }
    alibi.clear_cache();
    let before = alibi.cache_stats();
    assert!(
        before.recycled_bytes > 0 && before.staging_bytes > 0,
        "{before:?}"
    );
    for budget in [BUDGET / 2, 4096, 0] {
        alibi.set_cache_budget(budget);
        let stats = alibi.cache_stats();
        assert!(stats.bytes + stats.recycled_bytes <= budget, "{stats:?}");
        assert!(stats.staging_bytes <= budget, "{stats:?}");
    }
    // Nothing kept: every call still gives the right values.
    let host = pollster::block_on(alibi.forward_to_host(3, 9)).expect("forward_to_host");
    common::assert_same(&host, &common::expected(&alibi, 3, 9), "with a zero budget");
    let stats = alibi.cache_stats();
    assert_eq!(
        (stats.bytes, stats.recycled_bytes, stats.staging_bytes),
        (0, 0, 0)
    );
}
