//! Planning one attention call: the checks (each a typed refusal), the kernel's tile sizes,
//! the key splits of flash-decoding, the dispatch grid, and the uniform `FlashParams`
//! (`Params` in shaders/attention/flash.wgsl).

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

/// The uniform of both attention kernels; `Params` in shaders/attention/flash.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct FlashParams {
    pub batch: u32,
    pub heads_q: u32,
    pub heads_kv: u32,
    pub group: u32,
    pub rows: u32,
    pub keys: u32,
    pub group_rows: u32,
    pub row_tiles: u32,
    pub splits: u32,
    pub keys_per_split: u32,
    pub groups_x: u32,
    pub slope_heads: u32,
    pub scale: f32,
    pub window_left: i32,
    pub window_right: i32,
    pub combine_groups_x: u32,
}

/// The device limits a plan respects.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AttentionLimits {
    pub max_binding_bytes: u64,
    pub max_buffer_bytes: u64,
    pub max_workgroups_per_dimension: u32,
    pub workgroup_storage_bytes: u32,
    /// Workgroups that keep the device busy: fewer, and the keys are split across more.
    pub busy_workgroups: u32,
    /// A CPU adapter (lavapipe, llvmpipe, SwiftShader): its invocations take several query
    /// rows each ([`rows_per_invocation`]).
    pub cpu: bool,
}

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
    pub params: FlashParams,
    pub variant: FlashVariant,
    pub groups: [u32; 3],
    /// The combine pass's grid, with splits.
    pub combine_groups: Option<[u32; 3]>,
    /// Bytes of the partial results, with splits.
    pub partial_bytes: u64,
    /// Bytes of `q` (and the output) and of `k` (and `v`).
    pub query_bytes: u64,
    pub key_bytes: u64,
    /// Bytes of the materialized bias, when the call reads one.
    pub bias_bytes: Option<u64>,
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
    fits("q", query_bytes, limits)?;
    fits("k", key_bytes, limits)?;
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

    let keys_per_tile = keys_per_tile(head_dim as u32, limits.workgroup_storage_bytes);
    let group = (query_heads / kv_heads) as u32;
    let group_rows = group as u64 * queries as u64;
    let row_tiles = group_rows.div_ceil(ROWS_PER_GROUP as u64);
    let rows_total = batch as u128 * query_heads as u128 * queries as u128;
    // A few rows per key/value head (decode steps): an invocation per row and key range,
    // rather than tiles of rows that would be mostly empty.
    let decode = group_rows * 4 <= ROWS_PER_GROUP as u64;
    let (splits, keys_per_split, rows_per_invocation) = if decode {
        let splits = (keys as u64).div_ceil(DECODE_KEYS_PER_SPLIT);
        (splits, DECODE_KEYS_PER_SPLIT, 1)
    } else {
        let base = batch as u64 * kv_heads as u64 * row_tiles;
        let (splits, per) = splits(base, keys as u64, keys_per_tile, limits.busy_workgroups);
        (
            splits,
            per,
            rows_per_invocation(head_dim as u32, limits.cpu),
        )
    };
    let lanes = ROWS_PER_GROUP / rows_per_invocation;
    let split = decode || splits > 1;
    let partial_bytes = if split {
        let bytes = rows_total * splits as u128 * (head_dim as u128 / 4 + 1) * 16;
        fits("the split partial results", bytes, limits)?;
        bytes as u64
    } else {
        0
    };
    let workgroups = if decode {
        (rows_total * splits as u128).div_ceil(lanes as u128)
    } else {
        batch as u128 * kv_heads as u128 * row_tiles as u128 * splits as u128
    };
    let groups = grid("the workgroups", workgroups, limits)?;
    let combine_groups = if split {
        let combine = rows_total.div_ceil(lanes as u128);
        Some(grid("the combine workgroups", combine, limits)?)
    } else {
        None
    };
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
        groups_x: groups[0],
        slope_heads: settings.slope_heads.min(query_heads) as u32,
        scale,
        window_left: side(settings.window.0),
        window_right: side(settings.window.1),
        combine_groups_x: combine_groups.map_or(0, |g| g[0]),
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
        groups,
        combine_groups,
        partial_bytes,
        query_bytes: query_bytes as u64,
        key_bytes: key_bytes as u64,
        bias_bytes,
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
/// that the device stays busy, each split a whole number of tiles. Gives `(splits,
/// keys_per_split)`.
fn splits(base: u64, keys: u64, keys_per_tile: u32, busy: u32) -> (u64, u64) {
    let tiles = keys.div_ceil(keys_per_tile as u64);
    let wanted = (busy as u64).div_ceil(base.max(1)).clamp(1, tiles);
    let keys_per_split = tiles.div_ceil(wanted) * keys_per_tile as u64;
    (keys.div_ceil(keys_per_split), keys_per_split)
}

/// A 2-D grid of `count` workgroups within the per-dimension limit.
fn grid(name: &'static str, count: u128, limits: AttentionLimits) -> Result<[u32; 3]> {
    let max = limits.max_workgroups_per_dimension as u128;
    let x = count.min(max).max(1);
    let y = count.div_ceil(x).max(1);
    if y > max {
        return Err(refuse(AttentionError::TooLarge {
            name,
            bytes: count,
            limit: (max * max) as u64,
            limit_name: "max_compute_workgroups_per_dimension squared",
        }));
    }
    Ok([x as u32, y as u32, 1])
}

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
mod tests {
    use super::*;

    const LIMITS: AttentionLimits = AttentionLimits {
        max_binding_bytes: 1 << 27,
        max_buffer_bytes: 1 << 30,
        max_workgroups_per_dimension: 65535,
        workgroup_storage_bytes: 16384,
        busy_workgroups: 64,
        cpu: false,
    };

    fn settings(total_heads: usize) -> FlashSettings {
        FlashSettings {
            total_heads,
            slope_heads: total_heads,
            causal: false,
            bias_mode: 1,
            dtype: BiasDtype::F32,
            scale: None,
            window: (None, None),
        }
    }

    fn shape(query_heads: usize, kv_heads: usize, i: usize, j: usize, d: usize) -> AttentionShape {
        AttentionShape {
            batch: 1,
            query_heads,
            kv_heads,
            queries: i,
            keys: j,
            head_dim: d,
        }
    }

    #[test]
    fn tiles_fit_the_workgroup_memory() {
        assert_eq!(keys_per_tile(64, 16384), 32);
        assert_eq!(keys_per_tile(128, 16384), 16);
        assert_eq!(keys_per_tile(80, 16384), 16);
    }

    #[test]
    fn a_decode_step_splits_its_keys_and_a_prefill_does_not() {
        let decode = plan(shape(16, 16, 1, 4096, 64), settings(16), LIMITS)
            .unwrap()
            .unwrap();
        assert!(decode.variant.decode && decode.variant.split, "{decode:?}");
        assert!(decode.params.splits > 1, "{decode:?}");
        let per = decode.params.keys_per_split;
        assert_eq!(per % 4, 0);
        assert!(decode.params.splits as u64 * per as u64 >= 4096);
        assert!((decode.params.splits as u64 - 1) * (per as u64) < 4096);
        let prefill = plan(shape(16, 16, 1024, 1024, 64), settings(16), LIMITS)
            .unwrap()
            .unwrap();
        assert_eq!(prefill.params.splits, 1);
        assert!(!prefill.variant.decode && !prefill.variant.split);
        assert_eq!(prefill.params.row_tiles, 16);
    }

    #[test]
    fn refusals_name_the_value() {
        let refused = |s, settings| plan(s, settings, LIMITS).unwrap_err().to_string();
        assert!(refused(shape(4, 4, 3, 3, 66), settings(4)).contains("head dimension 66"));
        assert!(
            refused(shape(6, 4, 3, 3, 64), settings(6)).contains("multiple of key/value heads (4)")
        );
        assert!(refused(shape(4, 4, 3, 3, 64), settings(8)).contains("total_heads (8)"));
        let huge = shape(4096, 4096, 1 << 12, 1, 128);
        assert!(refused(huge, settings(4096)).contains("max_storage_buffer_binding_size"));
        let huge = FlashSettings {
            window: (Some(u32::MAX), Some(1 << 26)),
            ..settings(4)
        };
        let planned = plan(shape(4, 4, 3, 3, 64), huge, LIMITS).unwrap().unwrap();
        assert_eq!(
            (planned.params.window_left, planned.params.window_right),
            (-1, -1)
        );
        let nan = FlashSettings {
            scale: Some(f32::NAN),
            ..settings(4)
        };
        assert!(refused(shape(4, 4, 3, 3, 64), nan).contains("scale"));
    }

    #[test]
    fn nothing_to_compute_is_no_plan() {
        assert!(plan(shape(4, 2, 0, 5, 64), settings(4), LIMITS)
            .unwrap()
            .is_none());
        assert!(plan(shape(4, 2, 5, 0, 64), settings(4), LIMITS)
            .unwrap()
            .is_none());
    }
}
