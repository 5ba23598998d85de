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
    /// Bytes of a pair's q (and output) slice and of its k (and v) slice.
    pub query_bytes: u64,
    pub key_bytes: u64,
    /// Bytes of a pair's split partial results (0 without splits).
    pub partial_bytes: u64,
    /// The flash (or decode) pass's workgroups per pair, as a fraction
    /// `workgroups_num / workgroups_den` (decode packs several pairs' rows into a
    /// workgroup), and the combine pass's (0 without splits).
    pub workgroups_num: u64,
    pub combine_num: u64,
    pub workgroups_den: u64,
    /// Bytes of one vec4 of the element type: the unit of the kernels' indices.
    pub unit_bytes: u64,
}

impl PairCost {
    fn workgroups(&self, pairs: u64) -> u128 {
        (pairs as u128 * self.workgroups_num as u128).div_ceil(self.workgroups_den as u128)
    }

    fn combine(&self, pairs: u64) -> u128 {
        (pairs as u128 * self.combine_num as u128).div_ceil(self.workgroups_den as u128)
    }
}

/// How a call is cut: `pairs` in all, `per_run` in each run but the last.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Runs {
    pub pairs: u64,
    pub per_run: u64,
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

/// Pairs per run: all of them where the whole tensors fit one binding and one grid (bound
/// from offset 0, as they are); otherwise as many as fit once a window may start up to an
/// alignment before its slice. A pair too large alone is refused, naming its slice.
pub(crate) fn runs(pairs: u64, cost: PairCost, limits: AttentionLimits) -> Result<Runs> {
    let binding = limits.max_binding_bytes;
    let scratch = binding.min(limits.max_buffer_bytes);
    let max_grid = limits.max_workgroups_per_dimension as u128;
    let max_grid = max_grid * max_grid;
    let fits = |n: u64, room: u64| {
        n as u128 * cost.query_bytes as u128 <= room as u128
            && n as u128 * cost.key_bytes as u128 <= room as u128
            && n as u128 * cost.partial_bytes as u128 <= scratch as u128
            && cost.workgroups(n) <= max_grid
            && cost.combine(n) <= max_grid
    };
    let alignment = limits.binding_alignment.max(1);
    let runs = |per_run| Runs {
        pairs,
        per_run,
        cost,
        alignment,
    };
    if fits(pairs, binding) {
        return Ok(runs(pairs.max(1)));
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
    if cost.key_bytes > room {
        return Err(too_large(
            "the keys of one key/value head",
            cost.key_bytes,
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
        let workgroups = cost.workgroups(1).max(cost.combine(1));
        return Err(AlibiError::Attention(AttentionError::Workgroups {
            count: workgroups,
            limit: max_grid as u64,
        }));
    }
    Ok(runs(low))
}

impl Runs {
    /// The runs in order, from `template` (the whole call's uniform).
    pub fn chunks(&self, template: FlashParams, max_workgroups_per_dimension: u32) -> Vec<Chunk> {
        let cost = self.cost;
        let mut chunks = Vec::new();
        let mut pair0 = 0;
        while pair0 < self.pairs {
            let pairs = self.per_run.min(self.pairs - pair0);
            let window = |pair_bytes: u64| {
                let (start, size) = (pair0 * pair_bytes, pairs * pair_bytes);
                if pairs == self.pairs {
                    return Span { offset: 0, size };
                }
                let offset = start - start % self.alignment;
                Span {
                    offset,
                    size: start + size - offset,
                }
            };
            let (query, key) = (window(cost.query_bytes), window(cost.key_bytes));
            // Within the limits `runs` checked for a run at least this long.
            let groups = grid(cost.workgroups(pairs), max_workgroups_per_dimension);
            let combine_groups = (cost.combine_num > 0)
                .then(|| grid(cost.combine(pairs), max_workgroups_per_dimension));
            let params = FlashParams {
                pair0: pair0 as u32,
                pairs: pairs as u32,
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
            key_bytes,
            partial_bytes: 0,
            workgroups_num: 3,
            combine_num: 0,
            workgroups_den: 1,
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
        assert!(refused(cost(16, 3900)).contains("the keys of one key/value head"));
        let crowded = runs(4, cost(16, 16), limits(1 << 20, 1))
            .unwrap_err()
            .to_string();
        assert!(crowded.contains("workgroups"), "{crowded}");
    }
}
