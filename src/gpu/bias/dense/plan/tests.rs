//! The dense plans, run on the host as the kernel indexes them (`dense.wgsl`): every word
//! of the tensor is written exactly once, by a unit inside its window's binding, and no
//! word outside the tensor; a copy reads inside its source window.

use super::*;
use crate::dtype::BiasDtype;
use crate::gpu::bias::dense::copy_spans;
use proptest::prelude::*;

mod grid;
use grid::run;

fn limits(binding: u64, align: u64) -> PlanLimits {
    PlanLimits {
        max_buffer_bytes: 1 << 40,
        max_binding_bytes: binding,
        binding_alignment: align,
        max_workgroups_per_dimension: 65535,
    }
}

fn check(shape: DenseShape, byte_offset: u64, source: Option<Source>, limits: PlanLimits) {
    let planned = plan_dense(shape, byte_offset, source, limits).unwrap();
    if planned.is_none() {
        assert!(
            source.is_some(),
            "only a copy may be left to the generation"
        );
        return;
    }
    let mut written = run(shape, byte_offset, source, limits);
    written.sort_unstable();
    let bytes = shape.bytes().unwrap();
    let expected: Vec<u64> = (byte_offset / 4..(byte_offset + bytes).div_ceil(4)).collect();
    assert_eq!(written, expected, "{shape:?} at {byte_offset}");
}

fn shape(heads: usize, rows: usize, cols: usize, dtype: BiasDtype) -> DenseShape {
    DenseShape {
        heads,
        slope_heads: heads,
        rows,
        cols,
        causal: false,
        dtype,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn every_word_once_inside_its_binding(
        heads in 1usize..6,
        rows in 1usize..40,
        // Rows packed into workgroups, and rows of workgroups of their own (f32 1,000 to
        // 1,029 keys: 250 to 258 units, in workgroups of 256 lanes or 128; 2,040 to 2,059:
        // two or more of either; f16 half the units).
        cols in prop_oneof![1usize..70, 240usize..300, 1000usize..1030, 2040usize..2060],
        offset_words in 0u64..40,
        f16 in any::<bool>(),
        binding_log2 in 6u32..15,
        align in prop::sample::select(vec![4u64, 16, 256]),
        copy in any::<bool>(),
    ) {
        let dtype = if f16 { BiasDtype::F16 } else { BiasDtype::F32 };
        let s = shape(heads, rows, cols, dtype);
        let limits = limits(1 << binding_log2, align);
        prop_assume!(check_dense(s, limits).is_ok());
        // A cached block with 3 more rows and up to 7 more (padded) columns.
        let padded = (cols + 3).next_multiple_of(4);
        let source = copy.then_some(Source {
            layout: BiasLayout {
                offset: (3 * padded + padded - cols) as u64,
                head_stride: ((rows + 3) * padded) as u64,
                row_stride: padded as u64,
            },
        });
        let fits_source = source.is_none_or(|_| {
            ((rows + 3) * padded * dtype.size()) as u64 + 300 <= 1 << binding_log2
        });
        prop_assume!(fits_source);
        check(s, offset_words * 4, source, limits);
    }
}

#[test]
fn rows_shorter_than_a_workgroup_pack_their_units() {
    let kinds = |cols, dtype| -> Vec<UnitKind> {
        let s = shape(3, 50, cols, dtype);
        let plan = plan_dense(s, 4, None, limits(1 << 20, 256));
        plan.unwrap()
            .unwrap()
            .iter()
            .map(|(kind, _)| *kind)
            .collect()
    };
    assert!(kinds(37, BiasDtype::F32).contains(&UnitKind::Packed));
    assert!(kinds(3, BiasDtype::F32).contains(&UnitKind::PackedWalk));
    assert!(kinds(500, BiasDtype::F16).contains(&UnitKind::Packed));
    // Rows that would idle more than half their workgroup's lanes (63 units of 128), and
    // rows that fill half or more (64 units; 76; 126 f16 units of 1,001 keys).
    assert!(kinds(249, BiasDtype::F32).contains(&UnitKind::Packed));
    for (cols, dtype) in [
        (253, BiasDtype::F32),
        (301, BiasDtype::F32),
        (1001, BiasDtype::F16),
    ] {
        let kinds = kinds(cols, dtype);
        assert!(
            kinds.contains(&UnitKind::Row),
            "{cols} {dtype:?}: {kinds:?}"
        );
        assert!(!kinds.contains(&UnitKind::Packed), "{cols} {dtype:?}");
    }
    // Long rows: the units inside a row (251 units: one workgroup of 256 lanes, not two of
    // 128), and the crossing ones where rows do not hold whole units from a unit's start
    // (an offset of one word here), and the edges.
    assert_eq!(
        kinds(1001, BiasDtype::F32),
        [
            UnitKind::WideRow,
            UnitKind::Crossing,
            UnitKind::Word,
            UnitKind::Word
        ]
    );
    assert!(kinds(2001, BiasDtype::F16).contains(&UnitKind::Crossing));
    assert!(kinds(2001, BiasDtype::F32).contains(&UnitKind::Crossing));
    // Many short rows: windows of fewer than 2^19 rows, every word once.
    for (heads, rows) in [(1, 600_000), (40, 20_000)] {
        let s = shape(heads, rows, 5, BiasDtype::F32);
        let plan = plan_dense(s, 0, None, limits(1 << 30, 256))
            .unwrap()
            .unwrap();
        assert!(plan.iter().all(|(_, w)| w.params.row_count <= 1 << 19));
        check(s, 0, None, limits(1 << 30, 256));
    }
}

#[test]
fn long_rows_take_the_grid_of_one_head_or_whole_heads() {
    // More rows in a head than a grid dimension holds, and more heads (too many units to
    // run them all here: the windows' rows and grids are checked instead).
    for (heads, rows) in [(2, 70_000), (70_000, 1), (3, 40_000)] {
        let s = shape(heads, rows, 1021, BiasDtype::F32);
        let plan = plan_dense(s, 4, None, limits(1 << 30, 256))
            .unwrap()
            .unwrap();
        let mut next_row = 0;
        for (kind, w) in plan.iter().filter(|(kind, _)| kind.in_row()) {
            let p = w.params;
            let [_, y, z] = w.groups;
            assert!(
                y <= u32::from(u16::MAX) && z <= u32::from(u16::MAX),
                "{kind:?} {w:?}"
            );
            if z > 1 {
                assert_eq!(
                    (p.head_row0, p.grid_rows, p.row_count),
                    (0, p.rows, z * p.rows)
                );
            } else {
                assert_eq!(p.row_count, y);
                assert!(p.head_row0 + p.row_count <= p.rows, "{w:?}");
            }
            assert_eq!(
                u64::from(p.head0) * rows as u64 + u64::from(p.head_row0),
                next_row
            );
            next_row += u64::from(p.row_count);
        }
        assert_eq!(next_row, (heads * rows) as u64);
    }
}

/// The row grid's workgroups: 256 lanes where they idle no more lanes than 128 do.
#[test]
fn wide_rows_where_they_idle_no_more_lanes() {
    for (units, kind) in [
        (64, UnitKind::Row),
        (126, UnitKind::Row),
        (128, UnitKind::Row),
        (129, UnitKind::WideRow),
        (250, UnitKind::WideRow),
        (256, UnitKind::WideRow),
        (257, UnitKind::Row),
        (385, UnitKind::WideRow),
        (500, UnitKind::WideRow),
        (600, UnitKind::Row),
    ] {
        assert_eq!(row_kind(units), kind, "{units} units");
    }
}

#[test]
fn small_and_odd_tensors() {
    for dtype in [BiasDtype::F32, BiasDtype::F16] {
        for (h, r, c) in [
            (1, 1, 1),
            (1, 1, 3),
            (3, 1, 1),
            (2, 3, 1),
            (1, 5, 5),
            (7, 1, 9),
        ] {
            for offset in [0, 4, 8, 12, 20, 256] {
                check(shape(h, r, c, dtype), offset, None, limits(1 << 20, 256));
            }
        }
    }
}

/// Edge words only, over two rows, the second row's binding starting past the first word
/// (found by the proptest: its window's first unit was counted from before its binding).
#[test]
fn edge_rows_bind_from_their_own_words() {
    for align in [4, 16] {
        for offset in [68, 72, 76] {
            for s in [
                shape(2, 1, 2, BiasDtype::F32),
                shape(3, 1, 3, BiasDtype::F16),
            ] {
                check(s, offset, None, limits(64, align));
            }
        }
    }
}

#[test]
fn spans_are_whole_words_or_refused() {
    let s = shape(2, 3, 5, BiasDtype::F32);
    let strided = Source {
        layout: BiasLayout {
            offset: 3,
            head_stride: 32,
            row_stride: 8,
        },
    };
    let spans = copy_spans(s, strided, 8, |n, _| n <= 64).unwrap();
    assert_eq!(spans.len(), 6);
    assert_eq!(spans[3], ((3 + 32) * 4, 8 + 15 * 4, 20));
    let dense = Source {
        layout: BiasLayout {
            offset: 0,
            head_stride: 15,
            row_stride: 5,
        },
    };
    assert_eq!(
        copy_spans(s, dense, 0, |n, _| n <= 64).unwrap(),
        vec![(0, 0, 120)]
    );
    assert!(copy_spans(s, strided, 0, |n, _| n <= 5).is_none());
    let half = shape(2, 3, 5, BiasDtype::F16);
    assert!(
        copy_spans(half, strided, 0, |n, _| n <= 64).is_none(),
        "odd f16 spans"
    );
}
