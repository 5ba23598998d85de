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
    /// A pair's query rows (of its query heads), the bytes of one (of q, and of the
    /// output), and the rows of one workgroup's tile (0 for decode, whose rows never exceed
    /// a binding).
    pub rows: u64,
    pub query_row_bytes: u64,
    pub rows_per_tile: u64,
    /// A pair's keys, and the bytes of one key (of k, and of v).
    pub keys: u64,
    pub key_row_bytes: u64,
    /// Bytes of a pair's split partial results (0 without splits).
    pub partial_bytes: u64,
    /// The flash (or decode) pass's workgroups per pair and split, as a fraction
    /// `per_split_num / workgroups_den` (decode packs several rows' invocations into a
    /// workgroup; flash's are its row tiles), and the combine pass's per pair (0 without
    /// splits).
    pub per_split_num: u64,
    pub combine_num: u64,
    pub workgroups_den: u64,
    /// The combine pass's invocations per workgroup: always the lanes of one.
    pub combine_den: u64,
    /// The key ranges of each row, and the keys of each.
    pub splits: u64,
    pub keys_per_split: u64,
    /// Bytes of one vec4 of the element type: the unit of the kernels' indices.
    pub unit_bytes: u64,
}

impl PairCost {
    fn query_bytes(&self) -> u64 {
        self.rows * self.query_row_bytes
    }

    fn key_bytes(&self) -> u64 {
        self.keys * self.key_row_bytes
    }

    fn row_tiles(&self) -> u64 {
        self.per_split_num
    }

    fn workgroups(&self, pairs: u64, splits: u64) -> u128 {
        (pairs as u128 * self.per_split_num as u128 * splits as u128)
            .div_ceil(self.workgroups_den as u128)
    }

    fn combine(&self, pairs: u64) -> u128 {
        (pairs as u128 * self.combine_num as u128).div_ceil(self.combine_den as u128)
    }
}

/// How a call is cut: `pairs` in all, `per_run` in each run but the last; where one pair's
/// query rows exceed a binding (a run is then one pair), `tiles_per_run` of its row tiles in
/// each run but the last; where its keys do, `splits_per_run` of its key ranges.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Runs {
    pub pairs: u64,
    pub per_run: u64,
    pub tiles_per_run: u64,
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
        n as u128 * cost.query_bytes() as u128 <= room as u128
            && n as u128 * cost.key_bytes() as u128 <= room as u128
            && n as u128 * cost.partial_bytes as u128 <= scratch as u128
            && cost.workgroups(n, cost.splits) <= max_grid
            && cost.combine(n) <= max_grid
    };
    let alignment = limits.binding_alignment.max(1);
    let runs = |per_run, tiles_per_run, splits_per_run| Runs {
        pairs,
        per_run,
        tiles_per_run,
        splits_per_run,
        cost,
        alignment,
    };
    if fits(pairs, binding) {
        return Ok(runs(pairs.max(1), cost.row_tiles(), cost.splits));
    }
    let room = binding.saturating_sub(alignment);
    let limit_name = "max_storage_buffer_binding_size less the offset alignment";
    let tile_bytes = cost.rows_per_tile * cost.query_row_bytes;
    if cost.query_bytes() > room {
        // One pair a run, as many of its row tiles as one binding holds: without key
        // splits (whose partial results would be as large as the rows).
        let tiles_per_run = (room / tile_bytes.max(1)).min(max_grid as u64);
        let tiled = cost.rows_per_tile > 0;
        if !tiled || cost.splits > 1 || cost.key_bytes() > room || tiles_per_run == 0 {
            return Err(too_large(
                "the q rows of one key/value head",
                cost.query_bytes(),
                room,
                limit_name,
            ));
        }
        return Ok(runs(1, tiles_per_run, 1));
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
        return Ok(runs(1, cost.row_tiles(), splits_per_run));
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
    Ok(runs(low, cost.row_tiles(), cost.splits))
}

impl Runs {
    /// The runs in order, from `template` (the whole call's uniform): for each run of
    /// pairs, its key ranges' runs, the combine pass (with splits) after the last.
    pub fn chunks(&self, template: FlashParams, max_workgroups_per_dimension: u32) -> Vec<Chunk> {
        let cost = self.cost;
        let mut chunks = Vec::new();
        let mut pair0 = 0;
        while pair0 < self.pairs {
            let pairs = self.per_run.min(self.pairs - pair0);
            let mut tile0 = 0;
            while tile0 < cost.row_tiles() {
                let run_tiles = self.tiles_per_run.min(cost.row_tiles() - tile0);
                // The run's rows: its pairs' all, or its row tiles of its one pair.
                let tiles = (run_tiles < cost.row_tiles()).then(|| {
                    let rows = cost.rows_per_tile;
                    (tile0 * rows, (tile0 + run_tiles) * rows)
                });
                let query = self.window(pair0, pairs, (cost.rows, cost.query_row_bytes), tiles);
                let mut split0 = 0;
                while split0 < cost.splits {
                    let run_splits = self.splits_per_run.min(cost.splits - split0);
                    // Its keys: its pairs' all, or its key ranges of its one pair.
                    let ranges = (run_splits < cost.splits).then(|| {
                        let keys = cost.keys_per_split;
                        (split0 * keys, (split0 + run_splits) * keys)
                    });
                    let key = self.window(pair0, pairs, (cost.keys, cost.key_row_bytes), ranges);
                    // Within the limits `runs` checked for a run at least this long.
                    let workgroups = if run_tiles == cost.row_tiles() {
                        cost.workgroups(pairs, run_splits)
                    } else {
                        (run_tiles * run_splits) as u128
                    };
                    let groups = grid(workgroups, max_workgroups_per_dimension);
                    let last = split0 + run_splits == cost.splits;
                    let combine_groups = (cost.combine_num > 0 && last)
                        .then(|| grid(cost.combine(pairs), max_workgroups_per_dimension));
                    let params = FlashParams {
                        pair0: pair0 as u32,
                        pairs: pairs as u32,
                        tile0: tile0 as u32,
                        run_tiles: run_tiles as u32,
                        split0: split0 as u32,
                        run_splits: run_splits as u32,
                        // The kernels' indices are u32 and wrap: what matters is the
                        // difference.
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
                tile0 += run_tiles;
            }
            pair0 += pairs;
        }
        chunks
    }

    /// The window a run binds of a tensor whose pairs hold `rows` rows of `row_bytes`:
    /// its pairs' slices, or rows `part` of its one pair's; from byte 0 to the end when the
    /// call is one run (the tensor bound as it is), else from an aligned offset at most an
    /// alignment before the slice.
    fn window(
        &self,
        pair0: u64,
        pairs: u64,
        (rows, row_bytes): (u64, u64),
        part: Option<(u64, u64)>,
    ) -> Span {
        let pair_bytes = rows * row_bytes;
        let (start, end) = match part {
            None => (pair0 * pair_bytes, (pair0 + pairs) * pair_bytes),
            Some((first, end)) => (
                pair0 * pair_bytes + first * row_bytes,
                pair0 * pair_bytes + end.min(rows) * row_bytes,
            ),
        };
        let whole = self.per_run == self.pairs
            && self.tiles_per_run == self.cost.row_tiles()
            && self.splits_per_run == self.cost.splits;
        let offset = if whole {
            0
        } else {
            start - start % self.alignment
        };
        Span {
            offset,
            size: end - offset,
        }
    }
}

#[cfg(test)]
mod tests;
