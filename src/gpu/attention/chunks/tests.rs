//! Cutting a call into runs: every pair, row tile and key range once, each window within
//! one binding, aligned, and covering what its run reads and writes.
use super::*;
use bytemuck::Zeroable as _;

fn limits(binding: u64, grid: u32) -> AttentionLimits {
    AttentionLimits {
        max_binding_bytes: binding,
        max_buffer_bytes: 1 << 40,
        max_workgroups_per_dimension: grid,
        binding_alignment: 256,
        workgroup_storage_bytes: 16384,
        busy_workgroups: 64,
        cpu: false,
    }
}

fn cost(query_bytes: u64, key_bytes: u64) -> PairCost {
    PairCost {
        rows: query_bytes,
        query_row_bytes: 1,
        rows_per_tile: 0,
        keys: key_bytes,
        key_row_bytes: 1,
        partial_bytes: 0,
        per_split_num: 3,
        combine_num: 0,
        workgroups_den: 1,
        combine_den: 1,
        splits: 1,
        keys_per_split: key_bytes,
        unit_bytes: 16,
    }
}

#[test]
fn a_call_that_fits_is_one_run_bound_whole() {
    let runs = runs(12, cost(1000, 2000), limits(1 << 20, 65535)).unwrap();
    let chunks = runs.chunks(FlashParams::zeroed(), 65535);
    assert_eq!(chunks.len(), 1);
    let only = chunks[0];
    assert_eq!((only.params.pair0, only.params.pairs), (0, 12));
    assert_eq!(
        only.query,
        Span {
            offset: 0,
            size: 12_000
        }
    );
    assert_eq!(
        only.key,
        Span {
            offset: 0,
            size: 24_000
        }
    );
    assert_eq!((only.params.q_window, only.params.kv_window), (0, 0));
    assert_eq!(only.groups, [36, 1, 1]);
}

#[test]
fn runs_cover_every_pair_once_within_one_binding() {
    let binding = 10_000;
    let runs = runs(13, cost(1000, 2400), limits(binding, 65535)).unwrap();
    let chunks = runs.chunks(FlashParams::zeroed(), 65535);
    assert!(chunks.len() > 1);
    let mut next = 0;
    for chunk in &chunks {
        let p = chunk.params;
        assert_eq!(p.pair0, next);
        next += p.pairs;
        for (span, pair_bytes, window) in [
            (chunk.query, 1000, p.q_window),
            (chunk.key, 2400, p.kv_window),
        ] {
            assert_eq!(span.offset % 256, 0, "{chunk:?}");
            assert!(span.size <= binding, "{chunk:?}");
            // The window starts at or before the run's slice and ends at its end.
            let start = u64::from(p.pair0) * pair_bytes;
            assert!(span.offset <= start && start - span.offset < 256);
            assert_eq!(
                span.offset + span.size,
                start + u64::from(p.pairs) * pair_bytes
            );
            assert_eq!(u64::from(window) * 16, span.offset);
        }
        assert_eq!(chunk.groups[0], p.pairs * 3);
    }
    assert_eq!(next, 13);
}

#[test]
fn runs_keep_within_the_grid() {
    let runs = runs(100, cost(16, 16), limits(1 << 20, 4)).unwrap();
    for chunk in runs.chunks(FlashParams::zeroed(), 4) {
        assert!(chunk.groups.iter().all(|&g| g <= 4), "{chunk:?}");
        assert!(chunk.groups[0] * chunk.groups[1] >= chunk.params.pairs * 3);
    }
}

#[test]
fn a_pair_too_large_alone_is_refused_by_name() {
    let refused = |cost| runs(4, cost, limits(4096, 65535)).unwrap_err().to_string();
    assert!(refused(cost(5000, 16)).contains("the q rows of one key/value head needs 5000 bytes"));
    assert!(refused(cost(16, 3900)).contains("one key range of one key/value head"));
    let crowded = runs(4, cost(16, 16), limits(1 << 20, 1))
        .unwrap_err()
        .to_string();
    assert!(crowded.contains("workgroups"), "{crowded}");
}

#[test]
fn keys_past_one_binding_run_a_few_key_ranges_at_a_time() {
    // 1,000 keys of 4 bytes in 10 ranges (4,000 bytes a pair), a 2 KiB binding.
    let split = PairCost {
        rows: 4,
        query_row_bytes: 16,
        rows_per_tile: 0,
        keys: 1000,
        key_row_bytes: 4,
        partial_bytes: 10 * 48,
        per_split_num: 1,
        combine_num: 1,
        workgroups_den: 1,
        combine_den: 1,
        splits: 10,
        keys_per_split: 100,
        unit_bytes: 16,
    };
    let runs = runs(2, split, limits(2048, 65535)).unwrap();
    assert_eq!((runs.per_run, runs.splits_per_run), (1, 4));
    let chunks = runs.chunks(FlashParams::zeroed(), 65535);
    let seen: Vec<_> = chunks
        .iter()
        .map(|c| {
            let p = c.params;
            (p.pair0, p.split0, p.run_splits, c.combine_groups.is_some())
        })
        .collect();
    assert_eq!(
        seen,
        [
            (0, 0, 4, false),
            (0, 4, 4, false),
            (0, 8, 2, true),
            (1, 0, 4, false),
            (1, 4, 4, false),
            (1, 8, 2, true)
        ]
    );
    for chunk in &chunks {
        let p = chunk.params;
        let first = u64::from(p.pair0) * 4000 + u64::from(p.split0) * 400;
        let end = (u64::from(p.pair0) * 4000 + u64::from(p.split0 + p.run_splits) * 400)
            .min(u64::from(p.pair0 + 1) * 4000);
        assert_eq!(chunk.key.offset % 256, 0);
        assert!(chunk.key.offset <= first && first - chunk.key.offset < 256);
        assert_eq!(chunk.key.offset + chunk.key.size, end);
        assert!(chunk.key.size <= 2048, "{chunk:?}");
        assert_eq!(chunk.groups[0], p.run_splits);
    }
}
