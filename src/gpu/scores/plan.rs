//! The plan that keeps every dispatch of a score update within the device's limits, as
//! `bias/windows.rs` does for a generation: each window of the caller's `[batch, total_heads, I,
//! J]` scores fits one storage binding (bound at an aligned offset) and one dispatch.
//!
//! A window is whole batch items when one fits a binding (the kernel then loops over the
//! batches, reusing each bias), else whole heads of one batch item, else rows of one head.

use crate::dtype::BiasDtype;
use crate::error::Result;
use crate::gpu::device::limits::PlanLimits;
use crate::gpu::dispatch::fit::{binding, Extent, IndexFrom};
use crate::gpu::dispatch::{column_groups, Window, FUTURE_BITS};

/// Mirror of the WGSL `Params` uniform of `shaders/scores/add_bias.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct ScoreParams {
    /// Rows per head (I).
    pub rows: u32,
    /// Columns per row (J).
    pub cols: u32,
    /// First head of this window, within each batch item.
    pub head0: u32,
    /// First row of this window, within each head.
    pub row0: u32,
    /// Position of query row 0: J - I.
    pub query_offset: i32,
    /// Elements of the binding before the window's first score.
    pub lead: u32,
    /// Heads with a slope; the heads after them are zero padding.
    pub slope_heads: u32,
    /// Causal: [`FUTURE_BITS`], the bits of `-inf`, written for future keys; 0 when not.
    pub future_bits: u32,
    /// Batch items in this window.
    pub batch_count: u32,
    /// Elements from one batch item to the next (0 when the window has one).
    pub batch_stride: u32,
    /// Elements from one head to the next (0 when the window has one).
    pub head_stride: u32,
    /// What each score is multiplied by before the bias is added.
    pub scale: f32,
}

const _: () = assert!(std::mem::size_of::<ScoreParams>() == 48);

/// The caller's scores, `[batch, total_heads, rows, cols]` row-major elements of `dtype`,
/// and what the update does to them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct ScoreShape {
    pub batch: usize,
    /// Heads with a slope (the first ones).
    pub heads: usize,
    pub total_heads: usize,
    pub rows: usize,
    pub cols: usize,
    pub causal: bool,
    pub dtype: BiasDtype,
    pub scale: f32,
}

impl ScoreShape {
    /// Bytes of the scores, `None` when they overflow `u64`.
    pub fn bytes(&self) -> Option<u64> {
        (self.batch as u64)
            .checked_mul(self.total_heads as u64)?
            .checked_mul(self.rows as u64)?
            .checked_mul(self.cols as u64)?
            .checked_mul(self.dtype.size() as u64)
    }
}

/// Checks that `shape` fits this device: its bytes (rounded up to a multiple of 4, the
/// least a buffer holding them can bind) within `max_buffer_size`, one row within a binding
/// window. Returns the bytes the caller's buffer needs and the
/// usable bytes of a window.
pub(crate) fn check_score_fits(shape: ScoreShape, limits: PlanLimits) -> Result<(u64, u64)> {
    let element = shape.dtype.size() as u64;
    let extent = Extent {
        // The error names a bias `[heads, i, j]`: the batch items are counted as heads.
        named: [
            shape.batch.saturating_mul(shape.total_heads),
            shape.rows,
            shape.cols,
        ],
        bytes: shape
            .bytes()
            .and_then(|bytes| bytes.checked_next_multiple_of(4)),
        row_bytes: shape.cols as u64 * element,
        unit_bytes: element,
        index: IndexFrom::Window,
    };
    // A module's heads are at most MAX_HEADS: the kernel counts them in u32.
    debug_assert!(u32::try_from(shape.total_heads).is_ok());
    extent.check(limits)
}

/// Splits a score update into windows that each fit one storage binding and one dispatch.
pub(crate) fn plan_score_windows(
    shape: ScoreShape,
    limits: PlanLimits,
) -> Result<Vec<Window<ScoreParams>>> {
    let (_, usable) = check_score_fits(shape, limits)?;
    let ScoreShape {
        batch,
        total_heads,
        rows,
        cols,
        ..
    } = shape;
    debug_assert!(batch > 0 && rows > 0 && cols > 0);
    let element = shape.dtype.size() as u64;
    let row_elements = cols as u64;
    let head_elements = rows as u64 * row_elements;
    let item_elements = total_heads as u64 * head_elements;
    let max_groups = limits.max_workgroups_per_dimension as usize;
    let col_groups = column_groups(cols, limits.max_workgroups_per_dimension);
    let fits = |elements: u64| elements * element <= usable;
    // Elements between consecutive items of a window: 0 when it has one, which then never
    // multiplies it (and keeps the field within u32 when the stride is not).
    let stride = |count: usize, elements: u64| if count > 1 { elements as u32 } else { 0 };

    let mut windows = Vec::new();
    let mut push = |batch0: usize, batches: usize, head0: usize, heads: usize, row0, rows_| {
        let first = ((batch0 as u64 * total_heads as u64 + head0 as u64) * rows as u64
            + row0 as u64)
            * row_elements;
        let end = first
            + (batches as u64 - 1) * item_elements
            + (heads as u64 - 1) * head_elements
            + rows_ as u64 * row_elements;
        let start = first * element;
        let (bind_offset, bind_size) = binding(start, end * element, limits);
        windows.push(Window {
            params: ScoreParams {
                rows: rows as u32,
                cols: cols as u32,
                head0: head0 as u32,
                row0: row0 as u32,
                query_offset: cols as i32 - rows as i32,
                lead: ((start - bind_offset) / element) as u32,
                slope_heads: shape.heads as u32,
                future_bits: if shape.causal { FUTURE_BITS } else { 0 },
                batch_count: batches as u32,
                batch_stride: stride(batches, item_elements),
                head_stride: stride(heads, head_elements),
                scale: shape.scale,
            },
            bind_offset,
            bind_size,
            groups: [col_groups, rows_ as u32, heads as u32],
            source: None,
        });
    };
    if rows <= max_groups && total_heads <= max_groups && fits(item_elements) {
        let per_window = (usable / (item_elements * element)) as usize;
        for batch0 in (0..batch).step_by(per_window) {
            let batches = per_window.min(batch - batch0);
            push(batch0, batches, 0, total_heads, 0, rows);
        }
    } else if rows <= max_groups && fits(head_elements) {
        let per_window = ((usable / (head_elements * element)) as usize).min(max_groups);
        for b in 0..batch {
            for head0 in (0..total_heads).step_by(per_window) {
                push(b, 1, head0, per_window.min(total_heads - head0), 0, rows);
            }
        }
    } else {
        let per_window = ((usable / (row_elements * element)) as usize).min(max_groups);
        for b in 0..batch {
            for head in 0..total_heads {
                for row0 in (0..rows).step_by(per_window) {
                    push(b, 1, head, 1, row0, per_window.min(rows - row0));
                }
            }
        }
    }
    Ok(windows)
}
