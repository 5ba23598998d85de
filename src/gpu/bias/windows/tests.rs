//! The window planner's plans, checked index by index: every vec4 of a generation is
//! written exactly once, inside its window's binding, within the device's limits.

use super::*;
use crate::dtype::BiasDtype;
use crate::error::AlibiError;

type Window = crate::gpu::dispatch::Window<GenerateParams>;

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
        causal: false,
        dtype: BiasDtype::F32,
    }
}

fn f16_shape(heads: usize, rows: usize, cols: usize) -> GenerateShape {
    GenerateShape {
        dtype: BiasDtype::F16,
        ..shape(heads, rows, cols)
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
                    assert!((local + 1) * vec4_bytes(shape) <= w.bind_size, "{w:?}");
                    written[index] += 1;
                }
            }
        }
    }
    assert!(written.iter().all(|&n| n == 1));
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
        f16_shape(3, 10, 80),
        f16_shape(5, 7, 196),
        f16_shape(2, 30, 1024),
        f16_shape(4, 1, 1800),
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

#[test]
fn f16_windows_hold_twice_the_columns_and_causal_plans_carry_the_mask() {
    let narrow = PlanLimits {
        max_binding_bytes: 4096,
        ..LAVAPIPE
    };
    // 1,024 f32 columns do not fit a 3,856-byte window; 1,024 f16 columns (2 KiB) do.
    assert!(plan_windows(shape(1, 1, 1024), narrow).is_err());
    let windows = plan_windows(f16_shape(1, 1, 1024), narrow).unwrap();
    assert_eq!(windows.len(), 1);
    assert_eq!(f16_shape(2, 3, 8).bytes(), Some(96));
    let causal = GenerateShape {
        causal: true,
        ..shape(2, 3, 8)
    };
    let plans = [
        plan_windows(causal, LAVAPIPE),
        plan_windows(shape(2, 3, 8), LAVAPIPE),
    ];
    assert!(plans[0]
        .as_ref()
        .unwrap()
        .iter()
        .all(|w| w.params.future_bits == FUTURE_BITS));
    assert!(plans[1]
        .as_ref()
        .unwrap()
        .iter()
        .all(|w| w.params.future_bits == 0));
}
