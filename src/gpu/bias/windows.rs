//! The plan of a bias generation, for either bias kernel: windows of whole rows, each
//! within one storage binding (bound at an aligned offset) and one dispatch (workgroups
//! per dimension).

use crate::error::Result;
use crate::generation::GenerateShape;
use crate::gpu::bias::kernel::GenerateParams;
use crate::gpu::device::limits::PlanLimits;
use crate::gpu::dispatch::fit::{binding, Extent, IndexFrom};
use crate::gpu::dispatch::{column_groups, Window, FUTURE_BITS};

/// Bytes of one vec4 the kernels store.
fn vec4_bytes(shape: GenerateShape) -> u64 {
    4 * shape.dtype.size() as u64
}

/// `shape` as the shared fit check sees it: the kernels index vec4s from the tensor's start.
fn extent(shape: GenerateShape) -> Extent {
    Extent {
        named: [shape.total_heads, shape.rows, shape.requested_cols],
        bytes: shape.bytes(),
        row_bytes: shape.cols as u64 * shape.dtype.size() as u64,
        unit_bytes: vec4_bytes(shape),
        index: IndexFrom::Tensor("the kernel's u32 vec4 index"),
    }
}

/// Checks that `shape` fits this device: its bytes within `max_buffer_size` and the
/// kernel's index range, one row within a binding window. Returns the bytes and the usable
/// bytes of a binding window.
pub(crate) fn check_fits(shape: GenerateShape, limits: PlanLimits) -> Result<(u64, u64)> {
    extent(shape).check(limits)
}

/// Splits a generation into windows that each fit one storage binding and one dispatch.
pub(crate) fn plan_windows(
    shape: GenerateShape,
    limits: PlanLimits,
) -> Result<Vec<Window<GenerateParams>>> {
    let GenerateShape {
        heads,
        total_heads,
        rows,
        cols,
        ..
    } = shape;
    debug_assert!(cols % 4 == 0 && cols > 0 && rows > 0);
    let (_, usable) = check_fits(shape, limits)?;
    let vec4_bytes = vec4_bytes(shape);
    let row_bytes = cols as u64 * shape.dtype.size() as u64;
    let max_groups = limits.max_workgroups_per_dimension as usize;
    let col_groups = column_groups(cols, limits.max_workgroups_per_dimension);
    let head_bytes = rows as u64 * row_bytes;
    let rows_per_window = ((usable / row_bytes) as usize).min(max_groups).min(rows);

    let mut windows = Vec::new();
    let mut push = |head0: usize, head_count: usize, row0: usize, row_count: usize| {
        let first_vec4 = ((head0 * rows + row0) * cols / 4) as u64;
        let start = first_vec4 * vec4_bytes;
        let end = start + ((head_count - 1) * rows + row_count) as u64 * row_bytes;
        let (bind_offset, bind_size) = binding(start, end, limits);
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
            bind_size,
            groups: [col_groups, row_count as u32, head_count as u32],
            source: None,
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
