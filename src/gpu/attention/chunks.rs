//! One attention call as dispatches the device can bind: runs of (batch item, key/value
//! head) pairs, each run's slice of q, k, v and the output within one storage binding and
//! its workgroups within one dispatch grid. A pair's slices are contiguous in every tensor
//! (q and the output: the rows of its query heads; k and v: its keys), so a run binds each
//! tensor at an aligned offset before its slice, and the kernels subtract the window's start
//! (`q_window`, `kv_window`, in vec4s) from their indices. Most calls are one run, bound
//! whole.

use super::params::{grid, AttentionLimits, FlashParams};
use crate::attention::AttentionError;
use crate::error::{AlibiError, Result};

/// A byte range of a caller's buffer bound for one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub offset: u64,
    pub size: u64,
}

/// One run's dispatches: its uniform, grids and the windows it binds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Chunk {
    pub params: FlashParams,
    pub groups: [u32; 3],
    /// The combine pass's grid, with splits.
    pub combine_groups: Option<[u32; 3]>,
    /// The window of q and of the output.
    pub query: Span,
    /// The window of k and of v.
    pub key: Span,
}

/// What one pair costs, to size the runs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PairCost {
    /// Bytes of a pair's q (and output) slice.
    pub query_bytes: u64,
    /// A pair's keys, and the bytes of one key (of k, and of v).
    pub keys: u64,
    pub key_row_bytes: u64,
    /// Bytes of a pair's split partial results (0 without splits).
    pub partial_bytes: u64,
    /// The flash (or decode) pass's workgroups per pair and split, as a fraction
    /// `per_split_num / workgroups_den` (decode packs several rows' invocations into a
    /// workgroup), and the combine pass's per pair (0 without splits).
    pub per_split_num: u64,
    pub combine_num: u64,
    pub workgroups_den: u64,
    /// The key ranges of each row, and the keys of each.
    pub splits: u64,
    pub keys_per_split: u64,
    /// Bytes of one vec4 of the element type: the unit of the kernels' indices.
    pub unit_bytes: u64,
}

impl PairCost {
    fn key_bytes(&self) -> u64 {
        self.keys * self.key_row_bytes
    }

    fn workgroups(&self, pairs: u64, splits: u64) -> u128 {
        (pairs as u128 * self.per_split_num as u128 * splits as u128)
            .div_ceil(self.workgroups_den as u128)
    }

    fn combine(&self, pairs: u64) -> u128 {
        (pairs as u128 * self.combine_num as u128).div_ceil(self.workgroups_den as u128)
    }
}

/// How a call is cut: `pairs` in all, `per_run` in each run but the last; and, where one
/// pair's keys exceed a binding (a run is then one pair), `splits_per_run` of its key
/// ranges in each run but the last.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Runs {
    pub pairs: u64,
    pub per_run: u64,
    pub splits_per_run: u64,
    pub cost: PairCost,
    pub alignment: u64,
}

fn too_large(name: &'static str, bytes: u64, limit: u64, limit_name: &'static str) -> AlibiError {
    AlibiError::Attention(AttentionError::TooLarge {
        name,
        bytes: bytes.into(),
        limit,
        limit_name,
    })
}

/// Pairs (and key ranges) per run: all of them where the whole tensors fit one binding
/// and one grid (bound from offset 0, as they are); otherwise as many as fit once a window
/// may start up to an alignment before its slice. One pair's keys past a binding run a few
/// key ranges at a time (the plan made the ranges short enough). A pair's query rows or
/// partial results too large alone are refused, naming them.
pub(crate) fn runs(pairs: u64, cost: PairCost, limits: AttentionLimits) -> Result<Runs> {
    let binding = limits.max_binding_bytes;
    let scratch = binding.min(limits.max_buffer_bytes);
    let max_grid = limits.max_workgroups_per_dimension as u128;
    let max_grid = max_grid * max_grid;
    let fits = |n: u64, room: u64| {
        n as u128 * cost.query_bytes as u128 <= room as u128
            && n as u128 * cost.key_bytes() as u128 <= room as u128
            && n as u128 * cost.partial_bytes as u128 <= scratch as u128
            && cost.workgroups(n, cost.splits) <= max_grid
            && cost.combine(n) <= max_grid
    };
    let alignment = limits.binding_alignment.max(1);
    let runs = |per_run, splits_per_run| Runs {
        pairs,
        per_run,
        splits_per_run,
        cost,
        alignment,
    };
    if fits(pairs, binding) {
        return Ok(runs(pairs.max(1), cost.splits));
    }
    let room = binding.saturating_sub(alignment);
    let limit_name = "max_storage_buffer_binding_size less the offset alignment";
    if cost.query_bytes > room {
        return Err(too_large(
            "the q rows of one key/value head",
            cost.query_bytes,
            room,
            limit_name,
        ));
    }
    if cost.partial_bytes > scratch {
        return Err(too_large(
            "the split partial results of one key/value head",
            cost.partial_bytes,
            scratch,
            "max_storage_buffer_binding_size",
        ));
    }
    let crowded = || {
        AlibiError::Attention(AttentionError::Workgroups {
            count: cost.workgroups(1, 1).max(cost.combine(1)),
            limit: max_grid as u64,
        })
    };
    if cost.key_bytes() > room {
        // One pair a run, as many of its key ranges as one binding holds.
        let range_bytes = cost.keys_per_split * cost.key_row_bytes;
        let splits_per_run = (room / range_bytes.max(1)).min(cost.splits);
        if splits_per_run == 0 {
            return Err(too_large(
                "one key range of one key/value head",
                range_bytes,
                room,
                limit_name,
            ));
        }
        if cost.workgroups(1, splits_per_run) > max_grid || cost.combine(1) > max_grid {
            return Err(crowded());
        }
        return Ok(runs(1, splits_per_run));
    }
    // The largest run that fits: every bound is monotone in the pairs.
    let (mut low, mut high) = (1, pairs);
    while low < high {
        let mid = low + (high - low).div_ceil(2);
        if fits(mid, room) {
            low = mid;
        } else {
            high = mid - 1;
        }
    }
    if !fits(low, room) {
        return Err(crowded());
    }
    Ok(runs(low, cost.splits))
}

impl Runs {
    /// The runs in order, from `template` (the whole call's uniform): for each run of
    /// pairs, its key ranges' runs, the combine pass (with splits) after the last.
    pub fn chunks(&self, template: FlashParams, max_workgroups_per_dimension: u32) -> Vec<Chunk> {
        let cost = self.cost;
        let whole = self.per_run == self.pairs && self.splits_per_run == cost.splits;
        let window = |start: u64, end: u64| {
            if whole {
                return Span {
                    offset: 0,
                    size: end,
                };
            }
            let offset = start - start % self.alignment;
            Span {
                offset,
                size: end - offset,
            }
        };
        let mut chunks = Vec::new();
        let mut pair0 = 0;
        while pair0 < self.pairs {
            let pairs = self.per_run.min(self.pairs - pair0);
            let query = window(pair0 * cost.query_bytes, (pair0 + pairs) * cost.query_bytes);
            let mut split0 = 0;
            while split0 < cost.splits {
                let run_splits = self.splits_per_run.min(cost.splits - split0);
                // The run's keys: its pairs' all, or its key ranges of its one pair.
                let key = if self.splits_per_run == cost.splits {
                    window(pair0 * cost.key_bytes(), (pair0 + pairs) * cost.key_bytes())
                } else {
                    let first = split0 * cost.keys_per_split;
                    let end = ((split0 + run_splits) * cost.keys_per_split).min(cost.keys);
                    let base = pair0 * cost.key_bytes();
                    window(
                        base + first * cost.key_row_bytes,
                        base + end * cost.key_row_bytes,
                    )
                };
                // Within the limits `runs` checked for a run at least this long.
                let groups = grid(
                    cost.workgroups(pairs, run_splits),
                    max_workgroups_per_dimension,
                );
                let last = split0 + run_splits == cost.splits;
                let combine_groups = (cost.combine_num > 0 && last)
                    .then(|| grid(cost.combine(pairs), max_workgroups_per_dimension));
                let params = FlashParams {
                    pair0: pair0 as u32,
                    pairs: pairs as u32,
                    split0: split0 as u32,
                    run_splits: run_splits as u32,
                    // The kernels' indices are u32 and wrap: what matters is the difference.
                    q_window: (query.offset / cost.unit_bytes) as u32,
                    kv_window: (key.offset / cost.unit_bytes) as u32,
                    groups_x: groups[0],
                    combine_groups_x: combine_groups.map_or(0, |g| g[0]),
                    ..template
                };
                chunks.push(Chunk {
                    params,
                    groups,
                    combine_groups,
                    query,
                    key,
                });
                split0 += run_splits;
            }
            pair0 += pairs;
        }
        chunks
    }
}

#[cfg(test)]
mod tests {
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
            query_bytes,
            keys: key_bytes,
            key_row_bytes: 1,
            partial_bytes: 0,
            per_split_num: 3,
            combine_num: 0,
            workgroups_den: 1,
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
        assert!(
            refused(cost(5000, 16)).contains("the q rows of one key/value head needs 5000 bytes")
        );
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
            query_bytes: 64,
            keys: 1000,
            key_row_bytes: 4,
            partial_bytes: 10 * 48,
            per_split_num: 1,
            combine_num: 1,
            workgroups_den: 1,
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
}
