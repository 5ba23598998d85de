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
mod tests {
    use super::*;

    const LAVAPIPE: PlanLimits = PlanLimits {
        max_buffer_bytes: 1 << 32,
        max_binding_bytes: 1 << 27,
        binding_alignment: 256,
        max_workgroups_per_dimension: 65535,
    };

    fn shape(heads: usize, rows: usize, cols: usize) -> GenerateShape {
        GenerateShape {
            heads,
            total_heads: heads,
            rows,
            cols,
            requested_cols: cols,
        }
    }

    /// Every vec4 of every head is covered exactly once, within its binding.
    fn assert_covers_exactly(shape: GenerateShape, limits: PlanLimits, windows: &[Window]) {
        let cols4 = shape.cols / 4;
        let mut written = vec![0u8; shape.total_heads * shape.rows * cols4];
        for w in windows {
            assert!(w.bind_size <= limits.max_binding_bytes);
            assert_eq!(w.bind_offset % limits.binding_alignment, 0);
            assert!(w
                .groups
                .iter()
                .all(|&g| g >= 1 && g <= limits.max_workgroups_per_dimension));
            let p = w.params;
            for h in 0..w.groups[2] {
                for y in 0..w.groups[1] {
                    let row_start = ((p.head0 + h) * p.rows + p.row0 + y) * p.cols4;
                    for c4 in 0..p.cols4 {
                        let index = (row_start + c4) as usize;
                        let local = (index - p.window_vec4 as usize) as u64;
                        assert!((local + 1) * 16 <= w.bind_size, "{w:?}");
                        written[index] += 1;
                    }
                }
            }
        }
        assert!(written.iter().all(|&n| n == 1));
    }

    #[test]
    fn limits_come_from_the_device_and_the_window_override_only_lowers_them() {
        let device = wgpu::Limits {
            max_buffer_size: 1 << 30,
            max_storage_buffer_binding_size: 1 << 27,
            min_storage_buffer_offset_alignment: 64,
            max_compute_workgroups_per_dimension: 1000,
            ..wgpu::Limits::default()
        };
        assert_eq!(
            PlanLimits::from_device(&device, None),
            PlanLimits {
                max_buffer_bytes: 1 << 30,
                max_binding_bytes: 1 << 27,
                binding_alignment: 64,
                max_workgroups_per_dimension: 1000,
            }
        );
        let window = |bytes| PlanLimits::from_device(&device, Some(bytes)).max_binding_bytes;
        assert_eq!(window(4096), 4096);
        assert_eq!(window(1 << 40), 1 << 27);
    }

    #[test]
    fn queries_sit_at_the_end_of_the_keys_in_every_window() {
        let tight = PlanLimits {
            max_binding_bytes: 4096,
            ..LAVAPIPE
        };
        for (s, offset) in [
            (shape(2, 5, 8), 3),
            (shape(1, 10, 4), -6),
            (shape(3, 300, 40), -260),
        ] {
            let windows = plan_windows(s, tight).unwrap();
            assert!(
                windows.iter().all(|w| w.params.query_offset == offset),
                "{s:?}"
            );
        }
    }

    #[test]
    fn small_tensors_are_one_window() {
        let s = shape(8, 64, 64);
        let windows = plan_windows(s, LAVAPIPE).unwrap();
        assert_eq!(windows.len(), 1);
        assert_covers_exactly(s, LAVAPIPE, &windows);
    }

    #[test]
    fn large_tensors_are_split_into_bindable_windows() {
        let tight = PlanLimits {
            max_binding_bytes: 4096,
            ..LAVAPIPE
        };
        for s in [
            shape(3, 10, 40),
            shape(5, 7, 100),
            shape(2, 30, 512),
            shape(4, 1, 900),
        ] {
            let windows = plan_windows(s, tight).unwrap();
            assert!(windows.len() > 1, "{s:?}");
            assert_covers_exactly(s, tight, &windows);
        }
    }

    #[test]
    fn rows_beyond_the_dispatch_limit_are_split() {
        let few_groups = PlanLimits {
            max_workgroups_per_dimension: 7,
            ..LAVAPIPE
        };
        let s = shape(2, 20, 8);
        let windows = plan_windows(s, few_groups).unwrap();
        assert_covers_exactly(s, few_groups, &windows);
    }

    #[test]
    fn the_issue_example_fits_lavapipe_in_windows() {
        // heads = 32, i = j = 2048: 512 MiB in windows of 7 heads (112 MiB each).
        let windows = plan_windows(shape(32, 2048, 2048), LAVAPIPE).unwrap();
        assert_eq!(windows.len(), 5);
        assert!(windows.iter().all(|w| w.bind_size <= 1 << 27));
    }

    #[test]
    fn refusals_name_the_limit() {
        let small = PlanLimits {
            max_buffer_bytes: 1 << 20,
            ..LAVAPIPE
        };
        assert!(matches!(
            plan_windows(shape(32, 2048, 2048), small),
            Err(AlibiError::TooLarge { bytes, limit, .. }) if bytes == 1 << 29 && limit == 1 << 20
        ));
        let narrow = PlanLimits {
            max_binding_bytes: 1024,
            ..LAVAPIPE
        };
        assert!(matches!(
            plan_windows(shape(1, 1, 4096), narrow),
            Err(AlibiError::RowTooLarge { j: 4096, .. })
        ));
    }

    #[test]
    fn a_tensor_of_exactly_max_buffer_size_is_planned() {
        let s = shape(2, 8, 64); // 4096 bytes
        let exact = PlanLimits {
            max_buffer_bytes: 4096,
            ..LAVAPIPE
        };
        assert_covers_exactly(s, exact, &plan_windows(s, exact).unwrap());
        let one_less = PlanLimits {
            max_buffer_bytes: 4095,
            ..LAVAPIPE
        };
        assert!(matches!(
            plan_windows(s, one_less),
            Err(AlibiError::TooLarge {
                bytes: 4096,
                limit: 4095,
                limit_name: "max_buffer_size",
                ..
            })
        ));
    }

    #[test]
    fn the_kernel_index_reaches_exactly_64_gib() {
        let unlimited = PlanLimits {
            max_buffer_bytes: u64::MAX,
            ..LAVAPIPE
        };
        // 1024 x 4096 x 4096 f32 = 2^36 bytes: the last vec4 index is u32::MAX.
        let windows = plan_windows(shape(1024, 4096, 4096), unlimited).unwrap();
        let last = windows.last().unwrap();
        let p = last.params;
        let last_vec4 = ((u64::from(p.head0) + u64::from(last.groups[2]) - 1) * u64::from(p.rows)
            + u64::from(p.row0)
            + u64::from(last.groups[1])
            - 1)
            * u64::from(p.cols4)
            + u64::from(p.cols4)
            - 1;
        assert_eq!(last_vec4, u64::from(u32::MAX));
        assert!(matches!(
            plan_windows(shape(1025, 4096, 4096), unlimited),
            Err(AlibiError::TooLarge { limit, limit_name: "the kernel's u32 vec4 index", .. }) if limit == 1 << 36
        ));
        assert!(matches!(
            plan_windows(shape(usize::MAX / 4, 1 << 24, 1 << 24), unlimited),
            Err(AlibiError::TooLarge {
                bytes: u64::MAX,
                ..
            })
        ));
    }

    #[test]
    fn a_row_of_exactly_the_usable_binding_is_planned() {
        // 4096-byte bindings at 256-byte alignment leave 4096 - 240 = 3856 usable bytes:
        // a window starts 16-byte aligned, up to 240 bytes after its aligned binding offset.
        let tight = PlanLimits {
            max_binding_bytes: 4096,
            ..LAVAPIPE
        };
        for s in [shape(3, 5, 964), shape(1, 1, 964), shape(2, 70, 964)] {
            assert_covers_exactly(s, tight, &plan_windows(s, tight).unwrap());
        }
        assert!(matches!(
            plan_windows(shape(1, 1, 968), tight),
            Err(AlibiError::RowTooLarge {
                j: 968,
                bytes: 3872,
                limit: 3856
            })
        ));
    }

    #[test]
    fn a_head_of_exactly_the_usable_binding_is_one_window() {
        let tight = PlanLimits {
            max_binding_bytes: 4096,
            ..LAVAPIPE
        };
        // 241 rows x 4 columns x 4 bytes = 3856 bytes, the usable binding: heads per window.
        let s = shape(3, 241, 4);
        let windows = plan_windows(s, tight).unwrap();
        assert_eq!(windows.len(), 3);
        assert!(windows.iter().all(|w| w.groups == [1, 241, 1]));
        assert_covers_exactly(s, tight, &windows);
        // One row more and each head is cut into windows of rows.
        let s = shape(3, 242, 4);
        let windows = plan_windows(s, tight).unwrap();
        assert_eq!(windows.len(), 6);
        assert_covers_exactly(s, tight, &windows);
    }

    #[test]
    fn dispatch_rows_stop_at_the_workgroup_limit() {
        let limited = PlanLimits {
            max_workgroups_per_dimension: 5,
            ..LAVAPIPE
        };
        let exact = shape(2, 5, 4);
        let windows = plan_windows(exact, limited).unwrap();
        assert_eq!(windows.len(), 1, "5 rows, 2 heads: one dispatch [1, 5, 2]");
        assert_eq!(windows[0].groups, [1, 5, 2]);
        let over = shape(2, 6, 4);
        let windows = plan_windows(over, limited).unwrap();
        assert_eq!(windows.len(), 4);
        assert_covers_exactly(over, limited, &windows);
        let many_heads = shape(7, 1, 4);
        let windows = plan_windows(many_heads, limited).unwrap();
        assert_eq!(
            windows.iter().map(|w| w.groups[2]).collect::<Vec<_>>(),
            [5, 2]
        );
        assert_covers_exactly(many_heads, limited, &windows);
    }
}
