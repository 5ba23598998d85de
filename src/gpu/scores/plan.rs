//! The plan that keeps every dispatch of a score update within the device's limits, as
//! `windows.rs` does for a generation: each window of the caller's `[batch, total_heads, I,
//! J]` scores fits one storage binding (bound at an aligned offset) and one dispatch.
//!
//! A window is whole batch items when one fits a binding (the kernel then loops over the
//! batches, reusing each bias), else whole heads of one batch item, else rows of one head.

use crate::dtype::BiasDtype;
use crate::error::{AlibiError, Result};
use crate::gpu::kernel::FUTURE_BITS;
use crate::gpu::windows::PlanLimits;

/// `@workgroup_size` of both entry points of `shaders/add_bias.wgsl` (keep in sync).
pub(crate) const WORKGROUP_SIZE: u32 = 256;
/// Columns one invocation updates (keep in sync with the WGSL).
pub(crate) const COLUMNS_PER_INVOCATION: usize = 4;
/// Columns one workgroup covers along a row.
const COLUMNS_PER_WORKGROUP: usize = WORKGROUP_SIZE as usize * COLUMNS_PER_INVOCATION;

/// The kernel indexes a binding's elements with u32.
const MAX_WINDOW_ELEMENTS: u64 = 1 << 32;

/// Mirror of the WGSL `ScoreParams` uniform.
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

/// One dispatch: a window of the scores bound at an aligned offset.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct ScoreWindow {
    pub params: ScoreParams,
    pub bind_offset: u64,
    pub bind_size: u64,
    pub groups: [u32; 3],
}

/// The binding alignment a plan uses: the device's, and at least 4 bytes, because a storage
/// binding's offset and size must be multiples of 4 (f16 windows may start mid-word).
fn alignment(limits: PlanLimits) -> u64 {
    limits.binding_alignment.max(4)
}

/// Checks that `shape` fits this device: its bytes (rounded up to a multiple of 4, the
/// least a buffer holding them can bind) within `max_buffer_size`, one row within a binding
/// window, its heads countable in u32. Returns the bytes the caller's buffer needs and the
/// usable bytes of a window.
pub(crate) fn check_score_fits(shape: ScoreShape, limits: PlanLimits) -> Result<(u64, u64)> {
    let too_large = |bytes, limit, limit_name| AlibiError::TooLarge {
        // The error names a bias `[heads, i, j]`: the batch items are counted as heads.
        heads: shape.batch.saturating_mul(shape.total_heads),
        i: shape.rows,
        j: shape.cols,
        bytes,
        limit,
        limit_name,
    };
    let bytes = shape
        .bytes()
        .and_then(|bytes| bytes.checked_next_multiple_of(4))
        .unwrap_or(u64::MAX);
    if bytes > limits.max_buffer_bytes {
        return Err(too_large(bytes, limits.max_buffer_bytes, "max_buffer_size"));
    }
    if u32::try_from(shape.total_heads).is_err() {
        let limit = u64::from(u32::MAX);
        return Err(too_large(bytes, limit, "the kernel's u32 head index"));
    }
    let element = shape.dtype.size() as u64;
    // A window's binding starts up to `alignment - element` bytes before its first score and
    // ends up to `4 - element` bytes after its last (rounded up to a multiple of 4).
    let slack = alignment(limits) + 4 - 2 * element;
    let usable = limits
        .max_binding_bytes
        .saturating_sub(slack)
        .min((MAX_WINDOW_ELEMENTS - alignment(limits)) * element)
        / element
        * element;
    let row_bytes = shape.cols as u64 * element;
    if row_bytes > usable {
        return Err(AlibiError::RowTooLarge {
            j: shape.cols,
            bytes: row_bytes,
            limit: usable,
        });
    }
    Ok((bytes, usable))
}

/// Splits a score update into windows that each fit one storage binding and one dispatch.
pub(crate) fn plan_score_windows(
    shape: ScoreShape,
    limits: PlanLimits,
) -> Result<Vec<ScoreWindow>> {
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
    let col_groups = cols.div_ceil(COLUMNS_PER_WORKGROUP);
    debug_assert!(
        col_groups <= max_groups,
        "cols <= 2^24 keeps this under 65535"
    );
    let align = alignment(limits);
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
        let bind_offset = start / align * align;
        let bind_end = (end * element).next_multiple_of(4);
        windows.push(ScoreWindow {
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
            bind_size: bind_end - bind_offset,
            groups: [col_groups as u32, rows_ as u32, heads as u32],
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
