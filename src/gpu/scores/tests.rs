//! The score kernel's plans without a GPU, checked element by element: every score is
//! updated exactly once, inside its window's binding, within the device's limits. (Its
//! WGSL is checked with every kernel's, in `gpu/tests/shader_interface.rs`.)

use super::*;
use crate::error::AlibiError;
use crate::gpu::device::limits::PlanLimits;

const LAVAPIPE: PlanLimits = PlanLimits {
    max_buffer_bytes: 1 << 32,
    max_binding_bytes: 1 << 27,
    binding_alignment: 256,
    max_workgroups_per_dimension: 65535,
};

fn shape(batch: usize, total_heads: usize, rows: usize, cols: usize) -> ScoreShape {
    ScoreShape {
        batch,
        heads: total_heads,
        total_heads,
        rows,
        cols,
        causal: false,
        dtype: BiasDtype::F32,
        scale: 1.0,
    }
}

fn limits(max_binding_bytes: u64) -> PlanLimits {
    PlanLimits {
        max_binding_bytes,
        ..LAVAPIPE
    }
}

/// Plans `shape` and checks, element by element as the WGSL indexes them, that every score
/// is updated exactly once, inside its window's binding, with its own head and row.
fn assert_covers_exactly(shape: ScoreShape, limits: PlanLimits) -> Vec<Window<ScoreParams>> {
    let windows = plan_score_windows(shape, limits).expect("a plan");
    let element = shape.dtype.size() as u64;
    let (needed, _) = check_score_fits(shape, limits).unwrap();
    let count = shape.batch * shape.total_heads * shape.rows * shape.cols;
    let mut updated = vec![0u8; count];
    for w in &windows {
        let p = w.params;
        assert!(w.bind_size <= limits.max_binding_bytes, "{w:?}");
        assert_eq!(w.bind_offset % limits.binding_alignment.max(4), 0, "{w:?}");
        assert_eq!(w.bind_size % 4, 0, "{w:?}");
        assert!(w.bind_offset + w.bind_size <= needed, "{w:?}");
        let max_groups = limits.max_workgroups_per_dimension;
        assert!(w.groups.iter().all(|&g| g >= 1 && g <= max_groups), "{w:?}");
        assert_eq!(
            (p.rows, p.cols, p.scale),
            (shape.rows as u32, shape.cols as u32, 1.0)
        );
        let first = (w.bind_offset / element) as usize;
        for b in 0..p.batch_count {
            for z in 0..w.groups[2] {
                for y in 0..w.groups[1] {
                    let row_start = p.lead + z * p.head_stride + y * p.cols;
                    for col in 0..p.cols {
                        // The shader's u32 index, then where it lands in the tensor.
                        let local = row_start as u64 + (b * p.batch_stride) as u64 + col as u64;
                        assert!((local + 1) * element <= w.bind_size, "{w:?}");
                        let index = first + local as usize;
                        let per_batch = shape.total_heads * shape.rows * shape.cols;
                        let (head, row) = (p.head0 + z, p.row0 + y);
                        assert_eq!(
                            (index % per_batch) / (shape.rows * shape.cols),
                            head as usize
                        );
                        assert_eq!(index / shape.cols % shape.rows, row as usize);
                        updated[index] += 1;
                    }
                }
            }
        }
    }
    assert!(updated.iter().all(|&n| n == 1), "{shape:?}: {windows:?}");
    windows
}

#[test]
fn small_scores_are_one_window_of_every_batch() {
    let windows = assert_covers_exactly(shape(3, 5, 7, 9), LAVAPIPE);
    assert_eq!(windows.len(), 1);
    let p = windows[0].params;
    assert_eq!(
        (p.batch_count, p.batch_stride, p.head_stride),
        (3, 5 * 7 * 9, 7 * 9)
    );
    assert_eq!((p.query_offset, p.lead, p.future_bits), (2, 0, 0));
    assert_eq!(windows[0].groups, [1, 7, 5]);
}

#[test]
fn large_scores_are_split_into_bindable_windows() {
    // Batches per window, heads per window, rows per window, each with odd sizes that put
    // window starts mid-alignment.
    for binding in [300, 1000, 2000, 4096, 10_000] {
        for (batch, heads, rows, cols) in
            [(3, 5, 7, 9), (2, 3, 11, 1), (1, 2, 40, 13), (4, 1, 1, 61)]
        {
            let mut s = shape(batch, heads, rows, cols);
            if (cols as u64 * 4) + 256 + 4 > binding {
                assert!(plan_score_windows(s, limits(binding)).is_err());
                continue;
            }
            assert_covers_exactly(s, limits(binding));
            s.dtype = BiasDtype::F16;
            assert_covers_exactly(s, limits(binding));
        }
    }
}

#[test]
fn f16_windows_start_mid_word_and_end_on_a_word() {
    // 3 columns of f16: rows start at every even byte offset; the tensor's 90 bytes need
    // a 92-byte buffer.
    let mut s = shape(1, 3, 5, 3);
    s.dtype = BiasDtype::F16;
    assert_eq!(check_score_fits(s, LAVAPIPE).unwrap().0, 92);
    let windows = assert_covers_exactly(s, limits(256 + 4 + 6));
    assert!(windows.iter().any(|w| w.params.lead % 2 == 1));
}

#[test]
fn a_row_takes_as_many_workgroups_as_its_columns_need() {
    // 256 invocations of 4 columns: 1,024 columns per workgroup.
    for (cols, groups) in [(1, 1), (1024, 1), (1025, 2), (3000, 3)] {
        let windows = assert_covers_exactly(shape(1, 2, 3, cols), LAVAPIPE);
        assert!(
            windows.iter().all(|w| w.groups[0] == groups),
            "{cols} columns"
        );
    }
}

#[test]
fn dispatches_stop_at_the_workgroup_limit() {
    let few_groups = PlanLimits {
        max_workgroups_per_dimension: 4,
        ..LAVAPIPE
    };
    // More rows, then more heads, than one dispatch may have.
    assert_covers_exactly(shape(2, 3, 9, 5), few_groups);
    assert_covers_exactly(shape(2, 9, 3, 5), few_groups);
}

#[test]
fn causal_plans_carry_the_mask_and_scale() {
    let s = ScoreShape {
        causal: true,
        scale: 0.125,
        heads: 2,
        ..shape(1, 4, 3, 2)
    };
    let windows = plan_score_windows(s, LAVAPIPE).unwrap();
    let p = windows[0].params;
    assert_eq!(
        (p.future_bits, p.scale, p.slope_heads),
        (0xff80_0000, 0.125, 2)
    );
    assert_eq!(p.query_offset, -1);
}

#[test]
fn refusals_name_the_limit() {
    let small = PlanLimits {
        max_buffer_bytes: 1000,
        ..LAVAPIPE
    };
    match check_score_fits(shape(2, 5, 5, 5), small) {
        Err(AlibiError::TooLarge {
            heads: 10,
            bytes: 1000,
            ..
        }) => panic!("exactly the limit fits"),
        Ok((1000, _)) => {}
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        check_score_fits(shape(3, 5, 5, 5), small),
        Err(AlibiError::TooLarge {
            heads: 15,
            bytes: 1500,
            limit: 1000,
            limit_name: "max_buffer_size",
            ..
        })
    ));
    let overflow = shape(usize::MAX, 2, 1 << 20, 1 << 20);
    assert!(matches!(
        check_score_fits(overflow, LAVAPIPE),
        Err(AlibiError::TooLarge {
            bytes: u64::MAX,
            heads: usize::MAX,
            ..
        })
    ));
    // A row needs its bytes plus the alignment slack within one binding.
    assert!(check_score_fits(shape(1, 1, 1, 100), limits(400 + 256 - 4)).is_ok());
    assert!(matches!(
        check_score_fits(shape(1, 1, 1, 100), limits(400 + 256 - 5)),
        Err(AlibiError::RowTooLarge {
            j: 100,
            bytes: 400,
            ..
        })
    ));
}

#[test]
fn windows_stay_within_the_u32_index() {
    let huge = PlanLimits {
        max_buffer_bytes: u64::MAX,
        max_binding_bytes: u64::MAX,
        ..LAVAPIPE
    };
    let (_, usable) = check_score_fits(shape(1, 1, 1, 1), huge).unwrap();
    assert_eq!(usable, ((1u64 << 32) - 256) * 4);
    // 2^32 f32 scores: one whole head (2^31 elements) per window.
    let windows = plan_score_windows(shape(1, 2, 1 << 15, 1 << 16), huge).unwrap();
    assert_eq!(windows.len(), 2);
    assert!(windows.iter().all(|w| w.bind_size / 4 < 1 << 32));
}
