//! The dense plans, run on the host as the kernel indexes them (`dense.wgsl`): every word
//! of the tensor is written exactly once, by a unit inside its window's binding, and no
//! word outside the tensor; a copy reads inside its source window.

use super::*;
use crate::gpu::dispatch::wgsl::WORKGROUP_SIZE;
use proptest::prelude::*;

fn limits(binding: u64, align: u64) -> PlanLimits {
    PlanLimits {
        max_buffer_bytes: 1 << 40,
        max_binding_bytes: binding,
        binding_alignment: align,
        max_workgroups_per_dimension: 65535,
    }
}

/// Runs every invocation of every window as `dense.wgsl` does; returns the absolute words
/// written (in order) and checks each against its binding, and the copy's reads.
fn run(
    shape: DenseShape,
    byte_offset: u64,
    source: Option<Source>,
    limits: PlanLimits,
) -> Vec<u64> {
    let Some(windows) = plan_dense(shape, byte_offset, source, limits).expect("a plan") else {
        return Vec::new();
    };
    let size = shape.dtype.size() as u64;
    let mut written = Vec::new();
    for (unit, window) in windows {
        let p = window.params;
        let unit_bytes = unit.bytes();
        let elements = unit_bytes / size;
        assert_eq!(window.bind_offset % limits.binding_alignment.max(4), 0);
        assert!(window.bind_size <= limits.max_binding_bytes, "{window:?}");
        let [gx, gy, gz] = window.groups;
        for z in 0..gz {
            for y in 0..gy {
                let along = z * p.grid_rows + y;
                let row = p.row0 + along;
                if row >= p.row_end {
                    continue;
                }
                let start = u64::from(p.row0_element) + u64::from(along) * u64::from(p.cols);
                for x in 0..gx * WORKGROUP_SIZE {
                    let u = start.div_ceil(elements) + u64::from(p.unit_skip) + u64::from(x);
                    let row_end = (start + u64::from(p.cols)).div_ceil(elements);
                    if u >= row_end || u < u64::from(p.unit_lo) || u >= u64::from(p.unit_hi) {
                        continue;
                    }
                    assert!(
                        (u + 1) * unit_bytes <= window.bind_size,
                        "unit {u} of {window:?}"
                    );
                    let first_word = (window.bind_offset + u * unit_bytes) / 4;
                    written.extend(first_word..first_word + unit_bytes / 4);
                    if let (Some(Source { layout }), Some((offset, bytes))) =
                        (source, window.source)
                    {
                        // Each element of the unit inside the tensor, read from the source.
                        let tensor_first = byte_offset / size;
                        let tensor_end = tensor_first + shape.elements().unwrap();
                        let bind_first = window.bind_offset / size;
                        for e in u * elements..(u + 1) * elements {
                            let absolute = bind_first + e;
                            if absolute < tensor_first || absolute >= tensor_end {
                                continue;
                            }
                            let rel = absolute - tensor_first;
                            let (g, k) = (rel / shape.cols as u64, rel % shape.cols as u64);
                            let (h, r) = (g / shape.rows as u64, g % shape.rows as u64);
                            let read =
                                layout.offset + h * layout.head_stride + r * layout.row_stride + k;
                            let relative = u64::from(p.source_base)
                                .wrapping_add(h * u64::from(p.source_head_stride))
                                .wrapping_add(r * u64::from(p.source_row_stride))
                                .wrapping_add(k)
                                % (1 << 32);
                            assert_eq!(read * size, offset + relative * size, "{window:?}");
                            assert!(relative * size < bytes, "read {read} of {window:?}");
                        }
                    }
                }
            }
        }
    }
    written
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
        cols in 1usize..70,
        offset_words in 0u64..40,
        f16 in any::<bool>(),
        binding_log2 in 6u32..12,
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
