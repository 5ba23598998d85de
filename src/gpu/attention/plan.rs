//! Planning one attention call: the checks (each a typed refusal), the kernel's tile sizes,
//! the key splits of flash-decoding, the dispatch grid, and the uniform `FlashParams`
//! (`Params` in shaders/attention/flash.wgsl).

use super::chunks::{runs, Chunk, PairCost, Runs};
pub(crate) use super::params::{AttentionLimits, FlashParams};
use crate::attention::{AttentionError, AttentionShape};
use crate::dtype::BiasDtype;
use crate::error::{AlibiError, Result};
use crate::validation::check_sequence;

/// Query rows per workgroup (`ROWS_PER_GROUP`): invocations times their rows.
pub(crate) const ROWS_PER_GROUP: u32 = 64;
/// The largest head dimension the kernel keeps in registers (the models ALiBi serves use
/// 64 to 128; a larger row would spill on GPUs, and takes a CPU adapter's compiler a
/// minute per pipeline).
pub(crate) const MAX_HEAD_DIM: usize = 128;
/// The most keys one tile of workgroup memory holds.
const MAX_KEYS_PER_TILE: u32 = 32;
/// Keys per invocation of the decode kernel (`decode.wgsl`).
const DECODE_KEYS_PER_SPLIT: u64 = 64;

/// Query rows per invocation: on CPU adapters, where every read of workgroup memory is a
/// gather lane by lane, as many as keep `rows * head_dim <= 256` (each key and value read
/// then serves them all; more would make the compiler spill and take seconds per pipeline),
/// a power of two up to 4; on GPUs 1 (their registers hold one row of up to 256).
pub(crate) fn rows_per_invocation(head_dim: u32, cpu: bool) -> u32 {
    if !cpu {
        return 1;
    }
    match 256 / head_dim {
        0..=1 => 1,
        2..=3 => 2,
        _ => 4,
    }
}

/// What the kernel's source is built for: one pipeline each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FlashVariant {
    pub head_dim: u32,
    pub keys_per_tile: u32,
    pub causal: bool,
    /// `BIAS_MODE`: 0 none, 1 ALiBi, 2 a tensor.
    pub bias_mode: u32,
    pub split: bool,
    pub dtype: BiasDtype,
    /// Query rows per invocation, 1 to 4 (`ROWS_PER_INVOCATION`).
    pub rows_per_invocation: u32,
    /// The decode kernel (`decode.wgsl`: an invocation per row and key range) rather
    /// than `flash.wgsl`'s tiles of rows.
    pub decode: bool,
}

impl FlashVariant {
    /// Invocations per workgroup (`LANES`).
    pub fn lanes(&self) -> u32 {
        ROWS_PER_GROUP / self.rows_per_invocation
    }
}

/// One planned call.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FlashPlan {
    /// The whole call's uniform; each run sets its own pairs, windows and grids.
    pub params: FlashParams,
    pub variant: FlashVariant,
    /// The runs the call is cut into (one, unless a tensor exceeds one binding).
    pub runs: Runs,
    /// Bytes of the partial results of the longest run, with splits.
    pub partial_bytes: u64,
    /// Bytes of the materialized bias, when the call reads one.
    pub bias_bytes: Option<u64>,
    pub max_workgroups_per_dimension: u32,
}

impl FlashPlan {
    /// The call's runs, each with its own uniform, grids and windows.
    pub fn chunks(&self) -> Vec<Chunk> {
        self.runs
            .chunks(self.params, self.max_workgroups_per_dimension)
    }
}

/// The call's settings besides the shape.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FlashSettings {
    pub total_heads: usize,
    pub slope_heads: usize,
    pub causal: bool,
    pub bias_mode: u32,
    pub dtype: BiasDtype,
    pub scale: Option<f32>,
    pub window: (Option<u32>, Option<u32>),
}

fn refuse(error: AttentionError) -> AlibiError {
    AlibiError::Attention(error)
}

/// Checks `shape` against the rules and the device, and plans the call; `None` when there
/// is nothing to compute (no query row, or no key: every row outputs 0).
pub(crate) fn plan(
    shape: AttentionShape,
    settings: FlashSettings,
    limits: AttentionLimits,
) -> Result<Option<FlashPlan>> {
    let AttentionShape {
        batch,
        query_heads,
        kv_heads,
        queries,
        keys,
        head_dim,
    } = shape;
    if head_dim == 0 || head_dim % 4 != 0 || head_dim > MAX_HEAD_DIM {
        return Err(refuse(AttentionError::HeadDim {
            head_dim,
            max: MAX_HEAD_DIM,
        }));
    }
    if query_heads != settings.total_heads {
        return Err(refuse(AttentionError::QueryHeads {
            query_heads,
            total_heads: settings.total_heads,
        }));
    }
    if kv_heads == 0 || query_heads % kv_heads != 0 {
        return Err(refuse(AttentionError::GroupedHeads {
            query_heads,
            kv_heads,
        }));
    }
    check_sequence(queries, keys)?;
    let scale = settings.scale.unwrap_or(1.0 / (head_dim as f32).sqrt());
    if !scale.is_finite() {
        return Err(refuse(AttentionError::Scale(scale)));
    }
    let element = settings.dtype.size() as u128;
    let query_bytes =
        batch as u128 * query_heads as u128 * queries as u128 * head_dim as u128 * element;
    let key_bytes = batch as u128 * kv_heads as u128 * keys as u128 * head_dim as u128 * element;
    // The caller's buffers hold the whole tensors; one binding need only hold a run's.
    buffer_fits("q", query_bytes, limits)?;
    buffer_fits("k", key_bytes, limits)?;
    let bias_bytes = if settings.bias_mode == 2 {
        let bias = query_heads as u128 * queries as u128 * keys as u128 * 4;
        fits("the bias tensor", bias, limits)?;
        Some(bias as u64)
    } else {
        None
    };
    if query_bytes == 0 || keys == 0 {
        return Ok(None);
    }
    let rows_total = batch as u128 * query_heads as u128 * queries as u128;
    let key_rows = batch as u128 * kv_heads as u128 * keys as u128;
    // The kernels count rows and keys in u32.
    for (name, count) in [("the query rows", rows_total), ("the key rows", key_rows)] {
        if count > u32::MAX as u128 {
            return Err(refuse(AttentionError::TooLarge {
                name,
                bytes: count,
                limit: u32::MAX.into(),
                limit_name: "the kernels' u32 row counts (rows, not bytes)",
            }));
        }
    }

    let keys_per_tile = keys_per_tile(head_dim as u32, limits.workgroup_storage_bytes);
    let group = (query_heads / kv_heads) as u32;
    let group_rows = group as u64 * queries as u64;
    let row_tiles = group_rows.div_ceil(ROWS_PER_GROUP as u64);
    let pairs = batch as u64 * kv_heads as u64;
    // A few rows per key/value head (decode steps): an invocation per row and key range,
    // rather than tiles of rows that would be mostly empty.
    let decode = group_rows * 4 <= ROWS_PER_GROUP as u64;
    let element = settings.dtype.size() as u64;
    let room = limits
        .max_binding_bytes
        .saturating_sub(limits.binding_alignment.max(1));
    let partial_row_bytes = (head_dim as u64 / 4 + 1) * 16;
    let scratch = limits.max_binding_bytes.min(limits.max_buffer_bytes);
    // Flash-decoding's splits only keep a GPU busy: none where one pair's query rows, or
    // one split's partial results of them, exceed a binding (its runs take row tiles, which
    // split partials as large as the rows would not fit).
    let rows_fit =
        group_rows * head_dim as u64 * element <= room && group_rows * partial_row_bytes <= scratch;
    let busy = if rows_fit { limits.busy_workgroups } else { 0 };
    let (splits, keys_per_split, rows_per_invocation) = if decode {
        let splits = (keys as u64).div_ceil(DECODE_KEYS_PER_SPLIT);
        (splits, DECODE_KEYS_PER_SPLIT, 1)
    } else {
        let (splits, per) = splits(pairs * row_tiles, keys as u64, keys_per_tile, busy);
        (
            splits,
            per,
            rows_per_invocation(head_dim as u32, limits.cpu),
        )
    };
    let head_dim = head_dim as u64;
    let step = if decode { 4 } else { keys_per_tile as u64 };
    // The keys of one key/value head past one binding: key ranges short enough that a
    // whole number of them fits one (each run binds its own window of them, chunks.rs).
    let longest_split = if keys as u64 * head_dim * element > room {
        room / (head_dim * element) / step * step
    } else {
        u64::MAX
    };
    let (splits, keys_per_split) = if keys_per_split > longest_split && longest_split > 0 {
        ((keys as u64).div_ceil(longest_split), longest_split)
    } else {
        (splits, keys_per_split)
    };
    // A pair's partial results must fit one binding: fewer, longer splits where not (never
    // longer than a binding holds).
    let most_splits = scratch / (group_rows * partial_row_bytes).max(1);
    let (splits, keys_per_split) = if splits > most_splits && most_splits > 0 {
        let per = (keys as u64).div_ceil(most_splits).next_multiple_of(step);
        if per > longest_split {
            return Err(refuse(AttentionError::TooLarge {
                name: "the split partial results of one key/value head",
                bytes: (group_rows * (keys as u64).div_ceil(longest_split) * partial_row_bytes)
                    .into(),
                limit: limits.max_binding_bytes.min(limits.max_buffer_bytes),
                limit_name: "max_storage_buffer_binding_size",
            }));
        }
        ((keys as u64).div_ceil(per), per)
    } else {
        (splits, keys_per_split)
    };
    let lanes = ROWS_PER_GROUP / rows_per_invocation;
    let split = decode || splits > 1;
    let cost = PairCost {
        rows: group_rows,
        query_row_bytes: head_dim * element,
        rows_per_tile: if decode { 0 } else { ROWS_PER_GROUP as u64 },
        keys: keys as u64,
        key_row_bytes: head_dim * element,
        partial_bytes: if split {
            group_rows * splits * partial_row_bytes
        } else {
            0
        },
        // Decode: an invocation per row and split; flash: a workgroup per tile and split.
        per_split_num: if decode { group_rows } else { row_tiles },
        splits,
        keys_per_split,
        combine_num: if split { group_rows } else { 0 },
        workgroups_den: if decode { lanes as u64 } else { 1 },
        combine_den: lanes as u64,
        unit_bytes: 4 * element,
    };
    let runs = runs(pairs, cost, limits)?;
    let partial_bytes = runs.per_run * cost.partial_bytes;
    // A side of 2^26 or more reaches past every position (all within ±(2^24 + 2^23)): it
    // is unlimited, and the kernel's sums of positions and sides cannot overflow an i32.
    let side = |limit: Option<u32>| match limit {
        Some(n) if n < 1 << 26 => n as i32,
        _ => -1,
    };
    let params = FlashParams {
        batch: batch as u32,
        heads_q: query_heads as u32,
        heads_kv: kv_heads as u32,
        group,
        rows: queries as u32,
        keys: keys as u32,
        group_rows: group_rows as u32,
        row_tiles: row_tiles as u32,
        splits: splits as u32,
        keys_per_split: keys_per_split as u32,
        groups_x: 0,
        slope_heads: settings.slope_heads.min(query_heads) as u32,
        scale,
        window_left: side(settings.window.0),
        window_right: side(settings.window.1),
        combine_groups_x: 0,
        pair0: 0,
        pairs: pairs as u32,
        q_window: 0,
        kv_window: 0,
        tile0: 0,
        run_tiles: row_tiles as u32,
        split0: 0,
        run_splits: splits as u32,
    };
    let variant = FlashVariant {
        head_dim: head_dim as u32,
        keys_per_tile,
        causal: settings.causal,
        bias_mode: settings.bias_mode,
        split,
        dtype: settings.dtype,
        rows_per_invocation,
        decode,
    };
    Ok(Some(FlashPlan {
        params,
        variant,
        runs,
        partial_bytes,
        bias_bytes,
        max_workgroups_per_dimension: limits.max_workgroups_per_dimension,
    }))
}

/// Keys per tile: the most, up to 32 and a power of two, whose keys and values fit the
/// workgroup memory; at least the 4 keys of one step (`flash.wgsl`), which 16 KiB (every
/// device's least) holds at the largest head dimension.
pub(crate) fn keys_per_tile(head_dim: u32, workgroup_storage_bytes: u32) -> u32 {
    let mut keys = MAX_KEYS_PER_TILE;
    while keys > 4 && 2 * keys * head_dim * 4 > workgroup_storage_bytes {
        keys /= 2;
    }
    keys
}

/// Flash-decoding: with fewer than `busy` workgroups over the rows, the keys are split so
/// that the device stays busy, each split a whole number of tiles (`busy` 0: one split).
/// Gives `(splits, keys_per_split)`.
fn splits(base: u64, keys: u64, keys_per_tile: u32, busy: u32) -> (u64, u64) {
    let tiles = keys.div_ceil(keys_per_tile as u64);
    let wanted = (busy as u64).div_ceil(base.max(1)).clamp(1, tiles);
    let keys_per_split = tiles.div_ceil(wanted) * keys_per_tile as u64;
    (keys.div_ceil(keys_per_split), keys_per_split)
}

/// Refuses a tensor larger than one buffer of the device.
fn buffer_fits(name: &'static str, bytes: u128, limits: AttentionLimits) -> Result<()> {
    if bytes > limits.max_buffer_bytes as u128 {
        return Err(refuse(AttentionError::TooLarge {
            name,
            bytes,
            limit: limits.max_buffer_bytes,
            limit_name: "max_buffer_size",
        }));
    }
    Ok(())
}

/// Refuses a tensor larger than one binding (or buffer) of the device.
fn fits(name: &'static str, bytes: u128, limits: AttentionLimits) -> Result<()> {
    let (limit, limit_name) = if limits.max_binding_bytes <= limits.max_buffer_bytes {
        (limits.max_binding_bytes, "max_storage_buffer_binding_size")
    } else {
        (limits.max_buffer_bytes, "max_buffer_size")
    };
    if bytes > limit as u128 {
        return Err(refuse(AttentionError::TooLarge {
            name,
            bytes,
            limit,
            limit_name,
        }));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
