//! Every WGSL file under `shaders/` and every kernel composed from them parses, validates
//! and translates to SPIR-V, MSL, HLSL and GLSL ES 3.10 with naga, so that a shader only one
//! backend would reject fails here, on any machine, without a GPU.

use std::path::{Path, PathBuf};

use super::shader_interface::{kernels, KERNEL_DIRS};
use crate::dtype::BiasDtype;
use crate::gpu::attention::kernel::{sample_variants, source as attention_source};
use naga::back::{glsl, hlsl, msl, spv};
use naga::valid::{Capabilities, ModuleInfo, ValidationFlags, Validator};
use naga::Module;

pub(crate) fn shader_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders")
}

/// Every `.wgsl` file under `dir`, recursively, sorted.
pub(crate) fn wgsl_files(dir: &Path) -> Vec<PathBuf> {
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
fn every_shader_translates_to_every_backend() {
    let files = wgsl_files(&shader_dir());
    let standalone: Vec<_> = files
        .iter()
        .filter(|path| {
            !KERNEL_DIRS
                .iter()
                .any(|dir| path.starts_with(shader_dir().join(dir)))
        })
        .collect();
    assert_eq!(standalone, [&shader_dir().join("alibi.wgsl")]);
    for path in standalone {
        let source = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        translate_to_every_backend(path, &source);
    }
    for causal in [false, true] {
        for (spec, _) in kernels(BiasDtype::F32, causal) {
            translate_to_every_backend(Path::new(spec.entry_point), &spec.source());
        }
    }
    for variant in sample_variants(BiasDtype::F32) {
        let name = format!("attention {variant:?}");
        translate_to_every_backend(Path::new(&name), &attention_source(variant));
    }
}

#[test]
fn every_f16_kernel_translates_where_f16_exists() {
    for causal in [false, true] {
        for (spec, _) in kernels(BiasDtype::F16, causal) {
            translate_with_f16(Path::new(spec.entry_point), &spec.source());
        }
    }
    for variant in sample_variants(BiasDtype::F16) {
        let name = format!("attention {variant:?}");
        translate_with_f16(Path::new(&name), &attention_source(variant));
    }
}
