//! Every WGSL file under `shaders/` parses, validates and translates to SPIR-V, MSL, HLSL and
//! GLSL ES 3.10 with naga, so that a shader only one backend would reject fails here, on any
//! machine, without a GPU. The generator's interface (entry point, workgroup size, bindings,
//! constants, uniform layout) must match the Rust side that binds and dispatches it.

use std::path::{Path, PathBuf};

use crate::dtype::BiasDtype;
use crate::gpu::kernel::{
    GenerateParams, Kernel, BIAS_COMMON_WGSL, BINDING_BIAS, BINDING_PARAMS, BINDING_SLOPES,
    COLUMNS_PER_WORKGROUP, GENERATOR_ENTRY_POINT, GENERATOR_WGSL, POSITIONS_WGSL, SLOPE_VEC4S,
    STORE_F16_WGSL, STORE_F32_WGSL, WORKGROUP_SIZE,
};
use naga::back::{glsl, hlsl, msl, spv};
use naga::valid::{Capabilities, ModuleInfo, ValidationFlags, Validator};
use naga::{AddressSpace, ArraySize, Module, Scalar, StorageAccess, TypeInner, VectorSize};

fn shader_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders")
}

/// Every `.wgsl` file under `dir`, recursively, sorted.
fn wgsl_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            files.extend(wgsl_files(&path));
        } else if path.extension().is_some_and(|e| e == "wgsl") {
            files.push(path);
        }
    }
    files.sort();
    files
}

pub(crate) fn parse(path: &Path, source: &str) -> Module {
    naga::front::wgsl::parse_str(source).unwrap_or_else(|e| {
        panic!(
            "{} does not parse:\n{}",
            path.display(),
            e.emit_to_string_with_path(source, &path.display().to_string())
        )
    })
}

pub(crate) fn validate(
    path: &Path,
    source: &str,
    module: &Module,
    capabilities: Capabilities,
) -> ModuleInfo {
    Validator::new(ValidationFlags::all(), capabilities)
        .validate(module)
        .unwrap_or_else(|e| {
            panic!(
                "{} does not validate with capabilities {capabilities:?}:\n{}",
                path.display(),
                e.emit_to_string_with_path(source, &path.display().to_string())
            )
        })
}

/// Parses `source` (named `path` in messages), validates it with WebGPU's baseline
/// capabilities and translates it to SPIR-V, MSL, HLSL and GLSL ES 3.10 (every entry point).
pub(crate) fn translate_to_every_backend(path: &Path, source: &str) {
    let module = parse(path, source);
    // The most conservative capability set first: WebGPU's baseline.
    validate(path, source, &module, Capabilities::default());
    let name = path.display();

    let info = validate(path, source, &module, spv::supported_capabilities());
    spv::write_vec(&module, &info, &spv::Options::default(), None)
        .unwrap_or_else(|e| panic!("{name} to SPIR-V: {e}"));

    let info = validate(path, source, &module, msl::supported_capabilities());
    let options = msl::Options {
        lang_version: (2, 0),
        ..msl::Options::default()
    };
    msl::write_string(&module, &info, &options, &msl::PipelineOptions::default())
        .unwrap_or_else(|e| panic!("{name} to MSL: {e}"));

    let info = validate(path, source, &module, hlsl::supported_capabilities());
    let mut hlsl_source = String::new();
    let options = hlsl::Options::default();
    let pipeline_options = hlsl::PipelineOptions::default();
    hlsl::Writer::new(&mut hlsl_source, &options, &pipeline_options)
        .write(&module, &info, None)
        .unwrap_or_else(|e| panic!("{name} to HLSL: {e}"));

    // GLSL holds one entry point per translation.
    let info = validate(path, source, &module, glsl::supported_capabilities());
    for entry_point in &module.entry_points {
        let mut glsl_source = String::new();
        let options = glsl::Options {
            version: glsl::Version::new_gles(310),
            ..glsl::Options::default()
        };
        let pipeline_options = glsl::PipelineOptions {
            shader_stage: entry_point.stage,
            entry_point: entry_point.name.clone(),
            multiview: None,
        };
        glsl::Writer::new(
            &mut glsl_source,
            &module,
            &info,
            &options,
            &pipeline_options,
            naga::proc::BoundsCheckPolicies::default(),
        )
        .and_then(|mut writer| writer.write())
        .unwrap_or_else(|e| {
            panic!(
                "{name}, entry point {} to GLSL ES 310: {e}",
                entry_point.name
            )
        });
    }
}

/// Whether `path` is a part of the generator, compiled only with the others.
fn is_generator_part(path: &Path) -> bool {
    path.ends_with("alibi_bias.wgsl")
        || path.ends_with("alibi_positions.wgsl")
        || path.ends_with("bias_common.wgsl")
        || path.parent() == Some(&shader_dir().join("store"))
        // The score kernel's parts: its own tests (gpu/scores/tests.rs) translate them.
        || path.ends_with("add_bias.wgsl")
        || path.parent() == Some(&shader_dir().join("scores"))
}

#[test]
fn every_shader_translates_to_every_backend() {
    let files = wgsl_files(&shader_dir());
    assert!(
        files.iter().any(|f| f.ends_with("alibi_bias.wgsl")),
        "no alibi_bias.wgsl among {files:?}"
    );
    for path in files.iter().filter(|path| !is_generator_part(path)) {
        let source = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        translate_to_every_backend(path, &source);
    }
    for (kernel, file) in [
        (Kernel::Bias, "alibi_bias.wgsl"),
        (Kernel::Positions, "alibi_positions.wgsl"),
    ] {
        for causal in [false, true] {
            let source = kernel.source(BiasDtype::F32, causal);
            translate_to_every_backend(&shader_dir().join(file), &source);
        }
    }
}

#[test]
fn the_f16_generator_translates_where_f16_exists() {
    for kernel in [Kernel::Bias, Kernel::Positions] {
        translates_with_f16(kernel);
    }
}

fn translates_with_f16(kernel: Kernel) {
    let path = shader_dir().join("store/f16.wgsl");
    for causal in [false, true] {
        translate_with_f16(&path, &kernel.source(BiasDtype::F16, causal));
    }
}

/// Parses an f16 shader, checks that WebGPU's baseline refuses it, and translates it where
/// f16 exists: SPIR-V and MSL 2.1.
pub(crate) fn translate_with_f16(path: &Path, source: &str) {
    let module = parse(path, source);
    let f16 = Capabilities::SHADER_FLOAT16 | Capabilities::SHADER_FLOAT16_IN_FLOAT32;
    assert!(
        Validator::new(ValidationFlags::all(), Capabilities::default())
            .validate(&module)
            .is_err(),
        "f16 needs the capability"
    );
    let info = validate(path, source, &module, spv::supported_capabilities() | f16);
    spv::write_vec(&module, &info, &spv::Options::default(), None).expect("f16 to SPIR-V");
    let info = validate(path, source, &module, msl::supported_capabilities() | f16);
    let options = msl::Options {
        lang_version: (2, 1),
        ..msl::Options::default()
    };
    msl::write_string(&module, &info, &options, &msl::PipelineOptions::default())
        .expect("f16 to MSL");
}

#[test]
fn the_generator_sources_are_the_shader_files() {
    let read = |name: &str| std::fs::read_to_string(shader_dir().join(name)).unwrap();
    assert_eq!(read("alibi_bias.wgsl"), GENERATOR_WGSL);
    assert_eq!(read("bias_common.wgsl"), BIAS_COMMON_WGSL);
    assert_eq!(read("alibi_positions.wgsl"), POSITIONS_WGSL);
    assert_eq!(read("store/f32.wgsl"), STORE_F32_WGSL);
    assert_eq!(read("store/f16.wgsl"), STORE_F16_WGSL);
    assert!(Kernel::Bias
        .source(BiasDtype::F16, true)
        .starts_with(STORE_F16_WGSL));
    assert!(Kernel::Bias
        .source(BiasDtype::F32, false)
        .ends_with(GENERATOR_WGSL));
}

fn generator() -> Module {
    let path = shader_dir().join("alibi_bias.wgsl");
    parse(&path, &Kernel::Bias.source(BiasDtype::F32, false))
}

#[test]
fn generator_entry_point_and_workgroup_size() {
    let module = generator();
    let names: Vec<_> = module.entry_points.iter().map(|e| &e.name).collect();
    let entry = module
        .entry_points
        .iter()
        .find(|e| e.name == GENERATOR_ENTRY_POINT)
        .unwrap_or_else(|| panic!("no entry point {GENERATOR_ENTRY_POINT:?} among {names:?}"));
    assert_eq!(entry.stage, naga::ShaderStage::Compute);
    assert_eq!(entry.workgroup_size, [WORKGROUP_SIZE, 1, 1]);
    assert!(entry.workgroup_size_overrides.is_none());
}

/// The value of the WGSL `const` named `name`, if the shader declares one.
fn wgsl_constant(module: &Module, name: &str) -> Option<i64> {
    let (_, constant) = module
        .constants
        .iter()
        .find(|(_, c)| c.name.as_deref() == Some(name))?;
    match module.global_expressions[constant.init] {
        naga::Expression::Literal(naga::Literal::U32(v)) => Some(i64::from(v)),
        naga::Expression::Literal(naga::Literal::I32(v)) => Some(i64::from(v)),
        naga::Expression::Literal(naga::Literal::AbstractInt(v)) => Some(v),
        ref other => panic!("const {name} is not an integer literal: {other:?}"),
    }
}

#[test]
fn generator_constants_equal_the_rust_ones() {
    let module = generator();
    assert_eq!(
        wgsl_constant(&module, "WORKGROUP_SIZE"),
        Some(i64::from(WORKGROUP_SIZE))
    );
    assert_eq!(
        wgsl_constant(&module, "SLOPE_VEC4S"),
        Some(SLOPE_VEC4S as i64)
    );
    // The Rust side plans COLUMNS_PER_WORKGROUP columns per workgroup: 4 per vec4, so
    // COLUMNS_PER_WORKGROUP / (4 WORKGROUP_SIZE) vec4s per invocation (one today, with no
    // WGSL constant); a shader that declares the count must agree.
    let vec4_per_invocation = COLUMNS_PER_WORKGROUP / 4 / WORKGROUP_SIZE as usize;
    assert_eq!(
        vec4_per_invocation * 4 * WORKGROUP_SIZE as usize,
        COLUMNS_PER_WORKGROUP
    );
    if let Some(value) = wgsl_constant(&module, "VEC4_PER_INVOCATION") {
        assert_eq!(value, vec4_per_invocation as i64);
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

fn is_vec4_f32(module: &Module, ty: naga::Handle<naga::Type>) -> bool {
    module.types[ty].inner
        == TypeInner::Vector {
            size: VectorSize::Quad,
            scalar: Scalar::F32,
        }
}

#[test]
fn generator_bindings_match_the_rust_layout() {
    let module = generator();
    let bound: Vec<_> = module
        .global_variables
        .iter()
        .filter_map(|(_, g)| g.binding.as_ref().map(|b| (b.group, b.binding)))
        .collect();
    let mut expected = vec![(0, BINDING_PARAMS), (0, BINDING_SLOPES), (0, BINDING_BIAS)];
    let mut sorted = bound.clone();
    sorted.sort();
    expected.sort();
    assert_eq!(sorted, expected, "the shader binds exactly these resources");

    let params = global_at(&module, BINDING_PARAMS);
    assert_eq!(params.space, AddressSpace::Uniform);
    match &module.types[params.ty].inner {
        TypeInner::Struct { span, .. } => {
            assert_eq!(*span as usize, std::mem::size_of::<GenerateParams>());
        }
        other => panic!("params is not a struct: {other:?}"),
    }

    let slopes = global_at(&module, BINDING_SLOPES);
    assert_eq!(slopes.space, AddressSpace::Uniform);
    match module.types[slopes.ty].inner {
        TypeInner::Array { base, size, stride } => {
            assert!(is_vec4_f32(&module, base), "slopes are vec4<f32>");
            assert_eq!(
                size,
                ArraySize::Constant((SLOPE_VEC4S as u32).try_into().unwrap())
            );
            assert_eq!(stride, 16);
        }
        ref other => panic!("slopes are not an array: {other:?}"),
    }

    let bias = global_at(&module, BINDING_BIAS);
    assert_eq!(
        bias.space,
        AddressSpace::Storage {
            access: StorageAccess::LOAD | StorageAccess::STORE
        }
    );
    match module.types[bias.ty].inner {
        TypeInner::Array { base, size, stride } => {
            assert!(is_vec4_f32(&module, base), "the bias is vec4<f32>");
            assert_eq!(size, ArraySize::Dynamic);
            assert_eq!(stride, 16);
        }
        ref other => panic!("the bias is not an array: {other:?}"),
    }
}

#[test]
fn generate_params_layout_matches_the_rust_struct() {
    use std::mem::offset_of;
    let module = generator();
    let params = global_at(&module, BINDING_PARAMS);
    let TypeInner::Struct { members, span } = &module.types[params.ty].inner else {
        panic!("params is not a struct");
    };
    let wgsl: Vec<(&str, u32, Scalar)> = members
        .iter()
        .map(|m| {
            let scalar = match module.types[m.ty].inner {
                TypeInner::Scalar(scalar) => scalar,
                ref other => panic!("member {:?} is not a scalar: {other:?}", m.name),
            };
            (m.name.as_deref().unwrap_or("<unnamed>"), m.offset, scalar)
        })
        .collect();
    let rust: Vec<(&str, u32, Scalar)> = [
        ("rows", offset_of!(GenerateParams, rows), Scalar::U32),
        ("cols4", offset_of!(GenerateParams, cols4), Scalar::U32),
        ("head0", offset_of!(GenerateParams, head0), Scalar::U32),
        ("row0", offset_of!(GenerateParams, row0), Scalar::U32),
        (
            "query_offset",
            offset_of!(GenerateParams, query_offset),
            Scalar::I32,
        ),
        (
            "window_vec4",
            offset_of!(GenerateParams, window_vec4),
            Scalar::U32,
        ),
        (
            "slope_heads",
            offset_of!(GenerateParams, slope_heads),
            Scalar::U32,
        ),
        (
            "future_bits",
            offset_of!(GenerateParams, future_bits),
            Scalar::U32,
        ),
    ]
    .into_iter()
    .map(|(name, offset, scalar)| (name, offset as u32, scalar))
    .collect();
    assert_eq!(
        wgsl, rust,
        "WGSL GenerateParams vs the Rust #[repr(C)] struct"
    );
    assert_eq!(*span as usize, std::mem::size_of::<GenerateParams>());
}
