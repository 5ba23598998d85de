//! The one composition of a kernel's WGSL: its element type, then the constants Rust owns
//! (written into the source, so the WGSL never restates a number), the shared parts of
//! `shaders/common/`, then the kernel's own parts. WGSL has no `#include`, and naga and
//! the browsers accept declarations in any order, so composing is concatenating.

use std::fmt::Write as _;

use crate::dtype::BiasDtype;
use crate::gpu::dispatch::{KernelSpec, BINDING_PARAMS, BINDING_SLOPES, BINDING_WINDOW};

/// `shaders/common/f32.wgsl`: `Element` and `to_element` for f32.
pub(crate) const F32_WGSL: &str = include_str!("../../../shaders/common/f32.wgsl");
/// `shaders/common/f16.wgsl`: the same for f16 (needs `SHADER_F16`).
pub(crate) const F16_WGSL: &str = include_str!("../../../shaders/common/f16.wgsl");
/// `shaders/common/f16_packed.wgsl`: f16 rounded in integer arithmetic and stored two to a
/// u32 word, for devices without `SHADER_F16` and for the dense kernels' words.
pub(crate) const F16_PACKED_WGSL: &str = include_str!("../../../shaders/common/f16_packed.wgsl");
/// `shaders/common/bindings.wgsl`: the bindings every kernel shares.
pub(crate) const BINDINGS_WGSL: &str = include_str!("../../../shaders/common/bindings.wgsl");
/// `shaders/common/slopes.wgsl`: the slope lookup, padding heads, the bias value.
pub(crate) const SLOPES_WGSL: &str = include_str!("../../../shaders/common/slopes.wgsl");
/// `shaders/common/mask.wgsl`: the causal mask and what masked keys get.
pub(crate) const MASK_WGSL: &str = include_str!("../../../shaders/common/mask.wgsl");

/// `@workgroup_size` of every kernel.
pub(crate) const WORKGROUP_SIZE: u32 = 256;
/// Columns of one row an invocation covers: one vec4 of a bias, four scores.
pub(crate) const COLUMNS_PER_INVOCATION: u32 = 4;
/// Columns one workgroup covers along a row.
pub(crate) const COLUMNS_PER_WORKGROUP: usize = (WORKGROUP_SIZE * COLUMNS_PER_INVOCATION) as usize;
/// `array<vec4<f32>, SLOPE_VEC4S>`: the slope uniform's length.
pub(crate) const SLOPE_VEC4S: usize = crate::validation::MAX_HEADS / 4;

/// The constants Rust writes into every kernel's source: each name, and its type and value
/// as WGSL writes them.
pub(crate) fn constants(spec: &KernelSpec) -> Vec<(String, String)> {
    let u32 = |value: u32| format!("u32 = {value}u");
    let mut constants = vec![
        ("CAUSAL".to_owned(), format!("bool = {}", spec.causal)),
        ("WORKGROUP_SIZE".to_owned(), u32(WORKGROUP_SIZE)),
        (
            "COLUMNS_PER_INVOCATION".to_owned(),
            u32(COLUMNS_PER_INVOCATION),
        ),
        ("SLOPE_VEC4S".to_owned(), u32(SLOPE_VEC4S as u32)),
        ("BINDING_PARAMS".to_owned(), u32(BINDING_PARAMS)),
        ("BINDING_SLOPES".to_owned(), u32(BINDING_SLOPES)),
        ("BINDING_WINDOW".to_owned(), u32(BINDING_WINDOW)),
    ];
    for (binding, extra) in spec.extra_bindings() {
        constants.push((format!("BINDING_{}", extra.name), u32(binding)));
    }
    constants
}

/// The element file of `spec`: f32, f16 where the kernel may use `SHADER_F16`, else f16
/// packed into words.
pub(crate) fn element_wgsl(spec: &KernelSpec) -> &'static str {
    match spec.dtype {
        BiasDtype::F32 => F32_WGSL,
        BiasDtype::F16 if spec.f16_words => F16_PACKED_WGSL,
        BiasDtype::F16 => F16_WGSL,
    }
}

/// The whole source of `spec`'s kernel. The element file comes first: `enable f16;` must
/// precede every declaration.
pub(crate) fn compose(spec: &KernelSpec) -> String {
    let mut source = element_wgsl(spec).to_owned();
    source.push_str("\n// Written by src/gpu/dispatch/wgsl.rs.\n");
    for (name, typed_value) in constants(spec) {
        // Writing to a String cannot fail.
        let _ = writeln!(source, "const {name}: {typed_value};");
    }
    for part in [BINDINGS_WGSL, SLOPES_WGSL, MASK_WGSL]
        .iter()
        .chain(&spec.parts)
    {
        source.push('\n');
        source.push_str(part);
    }
    source
}
