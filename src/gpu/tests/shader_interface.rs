//! Every kernel's interface (entry point, workgroup size, bindings, uniform layouts)
//! matches what the windowed dispatch binds, and its numbers come from one source: the
//! constants Rust writes into the source (`gpu/dispatch/wgsl.rs`), which no WGSL file
//! restates. Parsed by naga, without a GPU.

use std::path::Path;

use super::translate::{parse, shader_dir, wgsl_files};
use super::uniforms::{
    dense_params, flash_params, generate_params, position_layout, score_params, Uniform,
};
use crate::dtype::BiasDtype;
use crate::gpu::attention::kernel as attention;
use crate::gpu::bias::dense::{
    DenseKernel, UnitKind, COPY_WGSL, DENSE_WGSL, GENERATE_WGSL as DENSE_GENERATE_WGSL,
    POSITIONS_WGSL as DENSE_POSITIONS_WGSL, ROW_LANES, ROW_VEC4_WGSL, VEC4_WGSL, WIDE_ROW_LANES,
    WORD_WGSL,
};
use crate::gpu::bias::kernel::{
    BiasKernel, GENERATE_WGSL, POSITIONS_WGSL, POSITION_BINDINGS_WGSL, WINDOW_WGSL,
};
use crate::gpu::dispatch::wgsl::{
    self, BINDINGS_WGSL, COLUMNS_PER_INVOCATION, F16_PACKED_WGSL, F16_WGSL, F32_WGSL, MASK_WGSL,
    SLOPES_WGSL, SLOPE_VEC4S, WORKGROUP_SIZE,
};
use crate::gpu::dispatch::{KernelSpec, BINDING_PARAMS, BINDING_SLOPES, BINDING_WINDOW};
use crate::gpu::scores::{score_spec, ADD_BIAS_WGSL};
use naga::{AddressSpace, ArraySize, Module, Scalar, StorageAccess, TypeInner, VectorSize};

/// Every kernel, as its user builds it, for `dtype` and `causal`, with the size of its
/// per-window uniform and the layout of that uniform's members.
/// For f32 also every kernel that stores f16 in words (no `SHADER_F16` needed): the bias
/// kernels on devices without it, and the dense kernels, in both element types.
pub(super) fn kernels(dtype: BiasDtype, causal: bool) -> Vec<(KernelSpec, Uniform)> {
    let mut kernels = vec![
        (BiasKernel::Generate.spec(dtype, causal), generate_params()),
        (BiasKernel::Positions.spec(dtype, causal), generate_params()),
        (score_spec(dtype, causal), score_params()),
    ];
    if dtype == BiasDtype::F32 {
        for kernel in [BiasKernel::Generate, BiasKernel::Positions] {
            let spec = KernelSpec {
                f16_words: true,
                ..kernel.spec(BiasDtype::F16, causal)
            };
            kernels.push((spec, generate_params()));
        }
        for dtype in [BiasDtype::F32, BiasDtype::F16] {
            for kernel in [
                DenseKernel::Generate,
                DenseKernel::Positions,
                DenseKernel::Copy,
            ] {
                for unit in UnitKind::ALL {
                    kernels.push((kernel.spec(unit, dtype, causal), dense_params()));
                }
            }
        }
    }
    kernels
}

/// The directories of the kernels' parts: everything under `shaders/` but `alibi.wgsl`.
pub(super) const KERNEL_DIRS: [&str; 4] = ["common", "bias", "scores", "attention"];

#[test]
fn the_sources_are_the_shader_files_and_every_part_is_used() {
    let read = |name: &str| std::fs::read_to_string(shader_dir().join(name)).unwrap();
    let parts = [
        ("common/f32.wgsl", F32_WGSL),
        ("common/f16.wgsl", F16_WGSL),
        ("common/f16_packed.wgsl", F16_PACKED_WGSL),
        ("bias/position_bindings.wgsl", POSITION_BINDINGS_WGSL),
        ("bias/dense.wgsl", DENSE_WGSL),
        ("bias/dense_vec4.wgsl", VEC4_WGSL),
        ("bias/dense_row_vec4.wgsl", ROW_VEC4_WGSL),
        ("bias/dense_word.wgsl", WORD_WGSL),
        ("bias/dense_generate.wgsl", DENSE_GENERATE_WGSL),
        ("bias/dense_positions.wgsl", DENSE_POSITIONS_WGSL),
        ("bias/dense_copy.wgsl", COPY_WGSL),
        ("common/bindings.wgsl", BINDINGS_WGSL),
        ("common/slopes.wgsl", SLOPES_WGSL),
        ("common/mask.wgsl", MASK_WGSL),
        ("bias/window.wgsl", WINDOW_WGSL),
        ("bias/generate.wgsl", GENERATE_WGSL),
        ("bias/positions.wgsl", POSITIONS_WGSL),
        ("scores/add_bias.wgsl", ADD_BIAS_WGSL),
        ("attention/f32.wgsl", attention::F32_WGSL),
        ("attention/f16.wgsl", attention::F16_WGSL),
        ("attention/flash.wgsl", attention::FLASH_WGSL),
        ("attention/combine.wgsl", attention::COMBINE_WGSL),
        ("attention/decode.wgsl", attention::DECODE_WGSL),
    ];
    for (name, part) in parts {
        assert_eq!(read(name), part, "{name}");
    }
    let kernel_files: Vec<_> = wgsl_files(&shader_dir())
        .into_iter()
        .filter(|path| {
            KERNEL_DIRS
                .iter()
                .any(|dir| path.starts_with(shader_dir().join(dir)))
        })
        .collect();
    assert_eq!(kernel_files.len(), parts.len(), "{kernel_files:?}");
    // The element file first (`enable f16;` precedes every declaration), the body last.
    let source = BiasKernel::Generate.spec(BiasDtype::F16, true).source();
    assert!(source.starts_with(F16_WGSL) && source.ends_with(GENERATE_WGSL));
    let words = DenseKernel::Copy
        .spec(UnitKind::Word, BiasDtype::F16, false)
        .source();
    assert!(words.starts_with(F16_PACKED_WGSL) && words.ends_with(COPY_WGSL));
}

/// The numbers both sides use are Rust's: no kernel part declares one of the constants Rust
/// writes into the source, nor binds at a literal number.
#[test]
fn no_shader_restates_a_rust_constant() {
    let spec = BiasKernel::Positions.spec(BiasDtype::F32, false);
    let names: Vec<_> = wgsl::constants(&spec)
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert!(
        names.contains(&"BINDING_KEY_POSITIONS".to_owned()),
        "{names:?}"
    );
    for dir in KERNEL_DIRS {
        for path in wgsl_files(&shader_dir().join(dir)) {
            let source = std::fs::read_to_string(&path).unwrap();
            for name in &names {
                assert!(
                    !source.contains(&format!("const {name}:")),
                    "{} declares {name}",
                    path.display()
                );
            }
            for (at, _) in source.match_indices("@binding(") {
                let argument = &source[at + "@binding(".len()..];
                assert!(
                    argument.starts_with("BINDING_"),
                    "{} binds at a number of its own",
                    path.display()
                );
            }
        }
    }
}

/// The value of the WGSL `const` named `name`.
fn wgsl_constant(module: &Module, name: &str) -> u32 {
    let (_, constant) = module
        .constants
        .iter()
        .find(|(_, c)| c.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no const {name}"));
    match module.global_expressions[constant.init] {
        naga::Expression::Literal(naga::Literal::U32(v)) => v,
        ref other => panic!("const {name} is not a u32 literal: {other:?}"),
    }
}

/// The global bound at `@group(0) @binding(binding)`.
fn global_at(module: &Module, binding: u32) -> &naga::GlobalVariable {
    let mut found = module.global_variables.iter().filter(|(_, g)| {
        g.binding
            .as_ref()
            .is_some_and(|b| b.group == 0 && b.binding == binding)
    });
    let (_, global) = found
        .next()
        .unwrap_or_else(|| panic!("nothing at @group(0) @binding({binding})"));
    assert!(found.next().is_none(), "two globals at binding {binding}");
    global
}

/// The uniform struct at `binding` has exactly the Rust layout `uniform`.
fn assert_uniform(module: &Module, binding: u32, (size, members): &Uniform) {
    let global = global_at(module, binding);
    assert_eq!(global.space, AddressSpace::Uniform);
    let TypeInner::Struct {
        members: wgsl,
        span,
    } = &module.types[global.ty].inner
    else {
        panic!("binding {binding} is not a struct");
    };
    let wgsl: Vec<_> = wgsl
        .iter()
        .map(|m| {
            let scalar = match module.types[m.ty].inner {
                TypeInner::Scalar(scalar) => scalar,
                ref other => panic!("member {:?} is not a scalar: {other:?}", m.name),
            };
            (
                m.name.as_deref().unwrap_or("<unnamed>"),
                m.offset as usize,
                scalar,
            )
        })
        .collect();
    assert_eq!(&wgsl, members, "the WGSL struct vs the Rust #[repr(C)] one");
    assert_eq!(*span as usize, *size);
}

/// Each kernel binds exactly what the windowed dispatch binds for it, as its layout says,
/// at the numbers Rust gives, with uniforms laid out as their Rust mirrors.
#[test]
fn every_kernel_matches_what_the_dispatch_binds() {
    for dtype in [BiasDtype::F32, BiasDtype::F16] {
        for (spec, params) in kernels(dtype, false) {
            let source = spec.source();
            let module = parse(Path::new(spec.entry_point), &source);
            let entry = module
                .entry_points
                .iter()
                .find(|e| e.name == spec.entry_point)
                .unwrap_or_else(|| panic!("no entry point {}", spec.entry_point));
            assert_eq!(entry.stage, naga::ShaderStage::Compute);
            // `dense`'s row grid has workgroups of its own size (`plan.rs`).
            let lanes = match spec.entry_point {
                "dense" => ROW_LANES,
                "dense_wide" => WIDE_ROW_LANES,
                _ => WORKGROUP_SIZE,
            };
            if spec.entry_point.starts_with("dense") {
                assert_eq!(wgsl_constant(&module, "ROW_LANES"), ROW_LANES);
                assert_eq!(wgsl_constant(&module, "WIDE_ROW_LANES"), WIDE_ROW_LANES);
            }
            assert_eq!(entry.workgroup_size, [lanes, 1, 1]);
            assert!(entry.workgroup_size_overrides.is_none());
            assert_eq!(
                wgsl_constant(&module, "COLUMNS_PER_INVOCATION"),
                COLUMNS_PER_INVOCATION
            );

            let mut bound: Vec<_> = module
                .global_variables
                .iter()
                .filter_map(|(_, g)| g.binding.as_ref().map(|b| (b.group, b.binding)))
                .collect();
            bound.sort();
            let mut expected = vec![
                (0, BINDING_PARAMS),
                (0, BINDING_SLOPES),
                (0, BINDING_WINDOW),
            ];
            expected.extend(spec.extra_bindings().map(|(binding, _)| (0, binding)));
            assert_eq!(bound, expected, "{}", spec.entry_point);

            assert_uniform(&module, BINDING_PARAMS, &params);
            assert_slopes(&module);
            assert_window(&module, &spec);
            for (binding, extra) in spec.extra_bindings() {
                let global = global_at(&module, binding);
                match extra.ty {
                    wgpu::BufferBindingType::Uniform => {
                        assert_uniform(&module, binding, &position_layout());
                        assert_eq!(extra.min_bytes as usize, position_layout().0);
                    }
                    wgpu::BufferBindingType::Storage { read_only } => {
                        let access = if read_only {
                            StorageAccess::LOAD
                        } else {
                            StorageAccess::LOAD | StorageAccess::STORE
                        };
                        assert_eq!(global.space, AddressSpace::Storage { access });
                    }
                }
            }
        }
    }
}

fn assert_slopes(module: &Module) {
    let slopes = global_at(module, BINDING_SLOPES);
    assert_eq!(slopes.space, AddressSpace::Uniform);
    match module.types[slopes.ty].inner {
        TypeInner::Array { base, size, stride } => {
            let vec4_f32 = TypeInner::Vector {
                size: VectorSize::Quad,
                scalar: Scalar::F32,
            };
            assert_eq!(module.types[base].inner, vec4_f32, "slopes are vec4<f32>");
            let length = u32::try_from(SLOPE_VEC4S).unwrap().try_into().unwrap();
            assert_eq!(size, ArraySize::Constant(length));
            assert_eq!(stride, 16);
        }
        ref other => panic!("slopes are not an array: {other:?}"),
    }
}

/// The windowed binding: a read-write runtime array of the units the kernel indexes, as
/// large as the least binding the layout allows (rounded up to a word).
fn assert_window(module: &Module, spec: &KernelSpec) {
    let window = global_at(module, BINDING_WINDOW);
    let access = StorageAccess::LOAD | StorageAccess::STORE;
    assert_eq!(window.space, AddressSpace::Storage { access });
    match module.types[window.ty].inner {
        TypeInner::Array { size, stride, .. } => {
            assert_eq!(size, ArraySize::Dynamic);
            assert_eq!(u64::from(stride).next_multiple_of(4), spec.window_min_bytes);
        }
        ref other => panic!("the window is not an array: {other:?}"),
    }
}

/// The attention kernels' uniform is `FlashParams`, at binding 0 of every variant.
#[test]
fn the_attention_uniform_is_flash_params() {
    let layout = flash_params();
    for variant in attention::sample_variants(BiasDtype::F32) {
        let source = attention::source(variant);
        let module = parse(Path::new("attention"), &source);
        assert_uniform(&module, 0, &layout);
    }
}
