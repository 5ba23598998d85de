//! The plan that keeps every dispatch of a generation within the device's limits: each
//! window of whole rows fits one storage binding (bound at an aligned offset) and one
//! dispatch (workgroups per dimension).

use crate::dtype::BiasDtype;
use crate::error::{AlibiError, Result};
use crate::gpu::kernel::{GenerateParams, COLUMNS_PER_WORKGROUP, FUTURE_BITS};

/// The kernel indexes vec4s with u32: 2^32 vec4s is the most it writes (64 GiB of f32).
const MAX_INDEXABLE_VEC4S: u64 = 1 << 32;

/// The limits a plan must respect, read from the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PlanLimits {
    pub max_buffer_bytes: u64,
    pub max_binding_bytes: u64,
    pub binding_alignment: u64,
    pub max_workgroups_per_dimension: u32,
}

impl PlanLimits {
    pub fn from_device(limits: &wgpu::Limits, binding_override: Option<u64>) -> Self {
        let device_binding = limits.max_storage_buffer_binding_size;
        Self {
            max_buffer_bytes: limits.max_buffer_size,
            max_binding_bytes: binding_override.map_or(device_binding, |o| o.min(device_binding)),
            binding_alignment: u64::from(limits.min_storage_buffer_offset_alignment),
            max_workgroups_per_dimension: limits.max_compute_workgroups_per_dimension,
        }
    }
}

/// One dispatch: a window of whole rows (whole heads, or part of one head) bound at an
/// aligned offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    pub params: GenerateParams,
    pub bind_offset: u64,
    pub bind_size: u64,
    pub groups: [u32; 3],
}

/// The tensor a generation writes: `heads` heads with slopes, then zero padding heads up
/// to `total_heads`, each `rows` x `cols`, `cols` a multiple of 4; future keys masked when
/// `causal`; elements of `dtype`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct GenerateShape {
    pub heads: usize,
    pub total_heads: usize,
    pub rows: usize,
    pub cols: usize,
    /// The `j` the caller asked for (`cols` is it padded, or grown): errors name it.
    pub requested_cols: usize,
    pub causal: bool,
    pub dtype: BiasDtype,
}

impl GenerateShape {
    pub fn bytes(&self) -> Option<u64> {
        (self.total_heads as u64)
            .checked_mul(self.rows as u64)?
            .checked_mul(self.cols as u64)?
            .checked_mul(self.dtype.size() as u64)
    }

    /// Bytes of one vec4 the kernel stores.
    fn vec4_bytes(&self) -> u64 {
        4 * self.dtype.size() as u64
    }
}

/// Checks that `shape` fits this device: its bytes within `max_buffer_size` and the
/// kernel's index range, one row within a binding window. Returns the bytes and the usable
/// bytes of a binding window.
pub(crate) fn check_fits(shape: GenerateShape, limits: PlanLimits) -> Result<(u64, u64)> {
    let too_large = |bytes, limit, limit_name| AlibiError::TooLarge {
        heads: shape.total_heads,
        i: shape.rows,
        j: shape.requested_cols,
        bytes,
        limit,
        limit_name,
    };
    let bytes = shape.bytes().unwrap_or(u64::MAX);
    if bytes > limits.max_buffer_bytes {
        return Err(too_large(bytes, limits.max_buffer_bytes, "max_buffer_size"));
    }
    let vec4_bytes = shape.vec4_bytes();
    let max_indexable = MAX_INDEXABLE_VEC4S * vec4_bytes;
    if bytes > max_indexable {
        return Err(too_large(
            bytes,
            max_indexable,
            "the kernel's u32 vec4 index",
        ));
    }
    let row_bytes = shape.cols as u64 * shape.dtype.size() as u64;
    // A window starts on a row, aligned to a vec4; its binding starts at the aligned
    // offset below, so up to `alignment - vec4_bytes` bytes of slack come before it.
    let usable = limits
        .max_binding_bytes
        .saturating_sub(limits.binding_alignment.saturating_sub(vec4_bytes))
        & !(vec4_bytes - 1);
    if row_bytes > usable {
        return Err(AlibiError::RowTooLarge {
            j: shape.requested_cols,
            bytes: row_bytes,
            limit: usable,
        });
    }
    Ok((bytes, usable))
}

/// Splits a generation into windows that each fit one storage binding and one dispatch.
pub(crate) fn plan_windows(shape: GenerateShape, limits: PlanLimits) -> Result<Vec<Window>> {
    let GenerateShape {
        heads,
        total_heads,
        rows,
        cols,
        ..
    } = shape;
    debug_assert!(cols % 4 == 0 && cols > 0 && rows > 0);
    let (_, usable) = check_fits(shape, limits)?;
    let vec4_bytes = shape.vec4_bytes();
    let row_bytes = cols as u64 * shape.dtype.size() as u64;
    let max_groups = limits.max_workgroups_per_dimension as usize;
    let col_groups = cols.div_ceil(COLUMNS_PER_WORKGROUP);
    debug_assert!(
        col_groups <= max_groups,
        "cols <= 2^24 keeps this under 65535"
    );
    let head_bytes = rows as u64 * row_bytes;
    let rows_per_window = ((usable / row_bytes) as usize).min(max_groups).min(rows);

    let mut windows = Vec::new();
    let mut push = |head0: usize, head_count: usize, row0: usize, row_count: usize| {
        let first_vec4 = ((head0 * rows + row0) * cols / 4) as u64;
        let start = first_vec4 * vec4_bytes;
        let bind_offset = start / limits.binding_alignment * limits.binding_alignment;
        let end = start + ((head_count - 1) * rows + row_count) as u64 * row_bytes;
        windows.push(Window {
            params: GenerateParams {
                rows: rows as u32,
                cols4: (cols / 4) as u32,
                head0: head0 as u32,
                row0: row0 as u32,
                query_offset: cols as i32 - rows as i32,
                window_vec4: (bind_offset / vec4_bytes) as u32,
                slope_heads: heads as u32,
                future_bits: if shape.causal { FUTURE_BITS } else { 0 },
            },
            bind_offset,
            bind_size: end - bind_offset,
            groups: [col_groups as u32, row_count as u32, head_count as u32],
        });
    };
    if rows <= max_groups && head_bytes <= usable {
        let heads_per_window = ((usable / head_bytes) as usize).min(max_groups);
        for head0 in (0..total_heads).step_by(heads_per_window) {
            push(head0, heads_per_window.min(total_heads - head0), 0, rows);
        }
    } else {
        for head in 0..total_heads {
            for row0 in (0..rows).step_by(rows_per_window) {
                push(head, 1, row0, rows_per_window.min(rows - row0));
            }
        }
    }
    Ok(windows)
}

#[cfg(test)]
mod tests;
