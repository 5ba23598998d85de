//! The windows of a scale-only update, chosen as the library chooses those of
//! `add_to_scores` (its `gpu/scores/plan.rs`), so that both kernels make the same
//! dispatches over the same bindings: whole batch items when one fits a storage binding
//! (the kernel then loops over the batches), else whole heads of one batch item, else rows
//! of one head; every dispatch axis within the device's limit.

use alibi_wgpu::{AlibiError, BiasDtype};

/// `@workgroup_size` of `scale_scores.wgsl` (keep in sync).
pub const WORKGROUP_SIZE: u32 = 256;
/// Columns one invocation updates (keep in sync with the WGSL).
pub const COLUMNS_PER_INVOCATION: usize = 4;
/// Columns one workgroup covers along a row.
const COLUMNS_PER_WORKGROUP: usize = WORKGROUP_SIZE as usize * COLUMNS_PER_INVOCATION;
/// The kernel indexes a binding's elements with u32.
const MAX_WINDOW_ELEMENTS: u64 = 1 << 32;

/// Mirror of the WGSL `ScaleParams` uniform.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ScaleParams {
    pub rows: u32,
    pub cols: u32,
    pub lead: u32,
    pub batch_count: u32,
    pub batch_stride: u32,
    pub head_stride: u32,
    pub scale: f32,
    pub pad: u32,
}

const _: () = assert!(std::mem::size_of::<ScaleParams>() == 32);

/// Scores `[batch, heads, rows, cols]` of `dtype`, row-major at the start of a buffer, and
/// what they are multiplied by.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreShape {
    pub batch: usize,
    pub heads: usize,
    pub rows: usize,
    pub cols: usize,
    pub dtype: BiasDtype,
    pub scale: f32,
}

impl ScoreShape {
    /// Bytes of the scores rounded up to whole words (a storage binding's size),
    /// saturating.
    pub fn bytes(&self) -> u64 {
        [self.heads, self.rows, self.cols, self.dtype.size()]
            .into_iter()
            .fold(self.batch as u64, |bytes, n| bytes.saturating_mul(n as u64))
            .saturating_add(3)
            & !3
    }
}

/// The device limits a plan respects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_binding_bytes: u64,
    pub binding_alignment: u64,
    pub max_workgroups_per_dimension: u32,
}

impl From<&wgpu::Limits> for Limits {
    fn from(limits: &wgpu::Limits) -> Self {
        Self {
            max_binding_bytes: limits.max_storage_buffer_binding_size,
            binding_alignment: u64::from(limits.min_storage_buffer_offset_alignment),
            max_workgroups_per_dimension: limits.max_compute_workgroups_per_dimension,
        }
    }
}

/// One dispatch: a window of the scores bound at an aligned offset.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Window {
    pub params: ScaleParams,
    pub bind_offset: u64,
    pub bind_size: u64,
    pub groups: [u32; 3],
}

/// Splits the update of a non-empty `shape` into windows that each fit one storage binding
/// and one dispatch.
///
/// # Errors
/// [`AlibiError::RowTooLarge`] when one row does not fit a binding, as the library says
/// of the same scores.
pub fn plan(shape: ScoreShape, limits: Limits) -> Result<Vec<Window>, AlibiError> {
    let ScoreShape {
        batch,
        heads,
        rows,
        cols,
        ..
    } = shape;
    debug_assert!(batch > 0 && heads > 0 && rows > 0 && cols > 0);
    let element = shape.dtype.size() as u64;
    // A storage binding's offset and size are multiples of 4 (f16 windows may start
    // mid-word): a window's binding starts up to `align - element` bytes before its first
    // score and ends up to `4 - element` bytes after its last.
    let align = limits.binding_alignment.max(4);
    let usable = limits
        .max_binding_bytes
        .saturating_sub(align + 4 - 2 * element)
        .min((MAX_WINDOW_ELEMENTS - align) * element)
        / element
        * element;
    let row_elements = cols as u64;
    if row_elements * element > usable {
        return Err(AlibiError::RowTooLarge {
            j: cols,
            bytes: row_elements * element,
            limit: usable,
        });
    }
    let head_elements = rows as u64 * row_elements;
    let item_elements = heads as u64 * head_elements;
    let max_groups = limits.max_workgroups_per_dimension as usize;
    let col_groups = cols.div_ceil(COLUMNS_PER_WORKGROUP) as u32;
    let fits = |elements: u64| elements * element <= usable;
    // Elements between consecutive items of a window: 0 when it has one.
    let stride = |count: usize, elements: u64| if count > 1 { elements as u32 } else { 0 };

    let mut windows = Vec::new();
    let mut push = |batch0: usize, batches: usize, head0: usize, heads_: usize, row0, rows_| {
        let first = ((batch0 as u64 * heads as u64 + head0 as u64) * rows as u64 + row0 as u64)
            * row_elements;
        let end = first
            + (batches as u64 - 1) * item_elements
            + (heads_ as u64 - 1) * head_elements
            + rows_ as u64 * row_elements;
        let start = first * element;
        let bind_offset = start / align * align;
        let bind_end = (end * element).next_multiple_of(4);
        windows.push(Window {
            params: ScaleParams {
                rows: rows as u32,
                cols: cols as u32,
                lead: ((start - bind_offset) / element) as u32,
                batch_count: batches as u32,
                batch_stride: stride(batches, item_elements),
                head_stride: stride(heads_, head_elements),
                scale: shape.scale,
                pad: 0,
            },
            bind_offset,
            bind_size: bind_end - bind_offset,
            groups: [col_groups, rows_ as u32, heads_ as u32],
        });
    };
    if rows <= max_groups && heads <= max_groups && fits(item_elements) {
        let per_window = (usable / (item_elements * element)) as usize;
        for batch0 in (0..batch).step_by(per_window) {
            push(batch0, per_window.min(batch - batch0), 0, heads, 0, rows);
        }
    } else if rows <= max_groups && fits(head_elements) {
        let per_window = ((usable / (head_elements * element)) as usize).min(max_groups);
        for b in 0..batch {
            for head0 in (0..heads).step_by(per_window) {
                push(b, 1, head0, per_window.min(heads - head0), 0, rows);
            }
        }
    } else {
        let per_window = ((usable / (row_elements * element)) as usize).min(max_groups);
        for b in 0..batch {
            for head in 0..heads {
                for row0 in (0..rows).step_by(per_window) {
                    push(b, 1, head, 1, row0, per_window.min(rows - row0));
                }
            }
        }
    }
    Ok(windows)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOMY: Limits = Limits {
        max_binding_bytes: 1 << 30,
        binding_alignment: 256,
        max_workgroups_per_dimension: 65535,
    };

    fn shape(batch: usize, heads: usize, rows: usize, cols: usize) -> ScoreShape {
        ScoreShape {
            batch,
            heads,
            rows,
            cols,
            dtype: BiasDtype::F32,
            scale: 0.125,
        }
    }

    /// Every score of `shape` is covered by exactly one window, within its binding.
    fn assert_covers_once(shape: ScoreShape, windows: &[Window]) {
        let element = shape.dtype.size() as u64;
        let total = shape.batch * shape.heads * shape.rows * shape.cols;
        let mut seen = vec![0u8; total];
        for window in windows {
            let p = window.params;
            let [x, y, z] = window.groups;
            assert!(x as usize * COLUMNS_PER_WORKGROUP >= shape.cols);
            for b in 0..p.batch_count as u64 {
                for h in 0..u64::from(z) {
                    for r in 0..u64::from(y) {
                        for c in 0..shape.cols as u64 {
                            let index = u64::from(p.lead)
                                + h * u64::from(p.head_stride)
                                + r * u64::from(p.cols)
                                + c
                                + b * u64::from(p.batch_stride);
                            assert!((index + 1) * element <= window.bind_size);
                            let absolute = (window.bind_offset / element + index) as usize;
                            seen[absolute] += 1;
                        }
                    }
                }
            }
        }
        assert!(seen.iter().all(|&n| n == 1), "{shape:?}: {windows:?}");
    }

    #[test]
    fn one_window_when_everything_fits() {
        let s = shape(2, 3, 5, 9);
        let windows = plan(s, ROOMY).unwrap();
        assert_eq!(windows.len(), 1);
        assert_eq!(windows[0].groups, [1, 5, 3]);
        assert_eq!(windows[0].params.batch_stride, 3 * 5 * 9);
        assert_covers_once(s, &windows);
    }

    #[test]
    fn small_bindings_split_by_heads_then_rows() {
        let tight = Limits {
            max_binding_bytes: 1024,
            binding_alignment: 64,
            ..ROOMY
        };
        for s in [shape(2, 3, 5, 9), shape(1, 2, 40, 33), shape(3, 1, 7, 1)] {
            for dtype in [BiasDtype::F32, BiasDtype::F16] {
                let s = ScoreShape { dtype, ..s };
                let windows = plan(s, tight).unwrap();
                assert!(windows.iter().all(|w| w.bind_size <= 1024));
                assert!(windows.iter().all(|w| w.bind_offset % 64 == 0));
                assert_covers_once(s, &windows);
            }
        }
        let few_groups = Limits {
            max_workgroups_per_dimension: 4,
            ..ROOMY
        };
        let s = shape(1, 6, 9, 5);
        let windows = plan(s, few_groups).unwrap();
        assert!(windows.iter().all(|w| w.groups.iter().all(|&g| g <= 4)));
        assert_covers_once(s, &windows);
    }

    #[test]
    fn a_row_larger_than_a_binding_is_refused() {
        let tiny = Limits {
            max_binding_bytes: 512,
            ..ROOMY
        };
        assert!(matches!(
            plan(shape(1, 1, 1, 1000), tiny),
            Err(AlibiError::RowTooLarge { j: 1000, .. })
        ));
    }
}
