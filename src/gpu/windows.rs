//! The plan that keeps every dispatch of a generation within the device's limits: each
//! window of whole rows fits one storage binding (bound at an aligned offset) and one
//! dispatch (workgroups per dimension).

use crate::error::{AlibiError, Result};
use crate::gpu::kernel::{GenerateParams, COLUMNS_PER_WORKGROUP};

/// The kernel indexes vec4s with u32: 2^32 vec4s of 16 bytes, 64 GiB, is the most it writes.
const MAX_INDEXABLE_BYTES: u64 = (1 << 32) * 16;

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

/// The tensor shape a generation writes: `heads` heads with slopes, then zero padding heads
/// up to `total_heads`, each `rows` x `cols`, `cols` a multiple of 4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct GenerateShape {
    pub heads: usize,
    pub total_heads: usize,
    pub rows: usize,
    pub cols: usize,
    /// The `j` the caller asked for (`cols` is it padded, or grown): errors name it.
    pub requested_cols: usize,
}

impl GenerateShape {
    pub fn bytes(&self) -> Option<u64> {
        (self.total_heads as u64)
            .checked_mul(self.rows as u64)?
            .checked_mul(self.cols as u64)?
            .checked_mul(4)
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
    if bytes > MAX_INDEXABLE_BYTES {
        return Err(too_large(
            bytes,
            MAX_INDEXABLE_BYTES,
            "the kernel's u32 vec4 index",
        ));
    }
    let row_bytes = shape.cols as u64 * 4;
    // A window starts on a row, 16-byte aligned; its binding starts at the aligned offset
    // below, so up to `alignment - 16` bytes of slack come before it.
    let usable = limits
        .max_binding_bytes
        .saturating_sub(limits.binding_alignment.saturating_sub(16))
        & !15;
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
    let row_bytes = cols as u64 * 4;
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
        let start = first_vec4 * 16;
        let bind_offset = start / limits.binding_alignment * limits.binding_alignment;
        let end = start + ((head_count - 1) * rows + row_count) as u64 * row_bytes;
        windows.push(Window {
            params: GenerateParams {
                rows: rows as u32,
                cols4: (cols / 4) as u32,
                head0: head0 as u32,
                row0: row0 as u32,
                query_offset: cols as i32 - rows as i32,
                window_vec4: (bind_offset / 16) as u32,
                slope_heads: heads as u32,
                _pad: 0,
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
