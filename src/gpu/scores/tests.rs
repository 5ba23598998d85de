//! The score kernel without a GPU: its plans, checked element by element (every score is
//! updated exactly once, inside its window's binding, within the device's limits), and its
//! WGSL, parsed, validated and translated to every backend by naga, against the Rust side
//! that binds and dispatches it.

use super::plan::{COLUMNS_PER_INVOCATION, WORKGROUP_SIZE};
use super::*;
use crate::error::AlibiError;
use crate::gpu::windows::PlanLimits;
use std::path::Path;

use crate::gpu::shader_interface::{translate_to_every_backend, translate_with_f16};
use naga::{Module, TypeInner};

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
fn assert_covers_exactly(shape: ScoreShape, limits: PlanLimits) -> Vec<ScoreWindow> {
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

fn shader_path(name: &str) -> String {
    format!("{}/shaders/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_sources_are_the_shader_files() {
    let read = |name: &str| std::fs::read_to_string(shader_path(name)).unwrap();
    assert_eq!(read("add_bias.wgsl"), ADD_BIAS_WGSL);
    assert_eq!(read("scores/f32.wgsl"), SCORES_F32_WGSL);
    assert_eq!(read("scores/f16.wgsl"), SCORES_F16_WGSL);
    assert!(score_source(BiasDtype::F16, true).starts_with(SCORES_F16_WGSL));
    assert!(score_source(BiasDtype::F32, false).ends_with(ADD_BIAS_WGSL));
}

fn parse(dtype: BiasDtype) -> Module {
    let source = score_source(dtype, false);
    naga::front::wgsl::parse_str(&source)
        .unwrap_or_else(|e| panic!("the {dtype} score kernel:\n{}", e.emit_to_string(&source)))
}

#[test]
fn the_f32_kernel_translates_to_every_backend() {
    let path = Path::new(&shader_path("add_bias.wgsl")).to_owned();
    for causal in [false, true] {
        translate_to_every_backend(&path, &score_source(BiasDtype::F32, causal));
    }
}

#[test]
fn the_f16_kernel_translates_where_f16_exists() {
    let path = Path::new(&shader_path("scores/f16.wgsl")).to_owned();
    for causal in [false, true] {
        translate_with_f16(&path, &score_source(BiasDtype::F16, causal));
    }
}

#[test]
fn entry_points_constants_and_bindings_match_the_rust_side() {
    let module = parse(BiasDtype::F32);
    for op in [ScoreOp::AddBias, ScoreOp::ScaleOnly] {
        let entry = module
            .entry_points
            .iter()
            .find(|e| e.name == op.entry_point())
            .unwrap_or_else(|| panic!("no entry point {}", op.entry_point()));
        assert_eq!(entry.stage, naga::ShaderStage::Compute);
        assert_eq!(entry.workgroup_size, [WORKGROUP_SIZE, 1, 1]);
    }
    let constant = |name: &str| {
        let (_, c) = module
            .constants
            .iter()
            .find(|(_, c)| c.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no const {name}"));
        match module.global_expressions[c.init] {
            naga::Expression::Literal(naga::Literal::U32(v)) => v as usize,
            ref other => panic!("{name} is {other:?}"),
        }
    };
    assert_eq!(constant("WORKGROUP_SIZE"), WORKGROUP_SIZE as usize);
    assert_eq!(constant("COLUMNS_PER_INVOCATION"), COLUMNS_PER_INVOCATION);
    assert_eq!(constant("SLOPE_VEC4S"), SLOPE_VEC4S);

    let mut bound: Vec<_> = module
        .global_variables
        .iter()
        .filter_map(|(_, g)| {
            g.binding
                .as_ref()
                .map(|b| (b.group, b.binding, g.space, g.ty))
        })
        .collect();
    bound.sort_by_key(|&(group, binding, ..)| (group, binding));
    let numbers: Vec<_> = bound.iter().map(|&(g, b, ..)| (g, b)).collect();
    assert_eq!(
        numbers,
        [
            (0, BINDING_PARAMS),
            (0, BINDING_SLOPES),
            (0, BINDING_SCORES)
        ]
    );
    assert_eq!(bound[1].2, naga::AddressSpace::Uniform);
    let storage = naga::StorageAccess::LOAD | naga::StorageAccess::STORE;
    assert_eq!(bound[2].2, naga::AddressSpace::Storage { access: storage });

    // ScoreParams: every member a 4-byte scalar at the Rust struct's offset.
    let TypeInner::Struct { members, span } = &module.types[bound[0].3].inner else {
        panic!("params is not a struct");
    };
    assert_eq!(*span as usize, std::mem::size_of::<ScoreParams>());
    let names: Vec<_> = members
        .iter()
        .map(|m| (m.name.clone().unwrap(), m.offset))
        .collect();
    let rust = [
        "rows",
        "cols",
        "head0",
        "row0",
        "query_offset",
        "lead",
        "slope_heads",
        "future_bits",
        "batch_count",
        "batch_stride",
        "head_stride",
        "scale",
    ];
    let expected: Vec<_> = rust
        .iter()
        .enumerate()
        .map(|(n, name)| (name.to_string(), 4 * n as u32))
        .collect();
    assert_eq!(
        names, expected,
        "WGSL ScoreParams vs the Rust #[repr(C)] struct"
    );
    let rust_offsets = [
        std::mem::offset_of!(ScoreParams, query_offset),
        std::mem::offset_of!(ScoreParams, batch_count),
        std::mem::offset_of!(ScoreParams, scale),
    ];
    assert_eq!(rust_offsets, [16, 32, 44]);
}
