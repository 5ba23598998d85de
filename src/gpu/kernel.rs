//! The Rust mirror of the generator's WGSL interface (`shaders/alibi_bias.wgsl`): its
//! source for each element type, entry point, workgroup size, bindings and uniform
//! layout. `shader_interface`'s tests hold these against the shader, parsed by naga.

use crate::dtype::BiasDtype;

/// The WGSL body of the generator, `shaders/alibi_bias.wgsl`: it stores through
/// `BiasVec` and `to_stored`, which one of the `shaders/store/` files defines.
pub(crate) const GENERATOR_WGSL: &str = include_str!("../../shaders/alibi_bias.wgsl");
/// `shaders/bias_common.wgsl`: what both bias kernels share (bindings 0 to 2, the uniform,
/// `store_bias`), compiled between the store file and the body.
pub(crate) const BIAS_COMMON_WGSL: &str = include_str!("../../shaders/bias_common.wgsl");
/// `shaders/store/f32.wgsl`: the generator stores f32.
pub(crate) const STORE_F32_WGSL: &str = include_str!("../../shaders/store/f32.wgsl");
/// `shaders/store/f16.wgsl`: the generator stores f16 (needs `SHADER_F16`).
pub(crate) const STORE_F16_WGSL: &str = include_str!("../../shaders/store/f16.wgsl");

/// `shaders/alibi_positions.wgsl`: the generator at custom positions, stored like the
/// generator (it is compiled after a store file too).
pub(crate) const POSITIONS_WGSL: &str = include_str!("../../shaders/alibi_positions.wgsl");
/// Entry point of [`POSITIONS_WGSL`].
pub(crate) const POSITIONS_ENTRY_POINT: &str = "generate_positions";
/// Bindings the positions kernel adds to the generator's (keep in sync with the WGSL): the
/// `PositionLayout` uniform, then the query and key positions.
pub(crate) const BINDING_POSITION_LAYOUT: u32 = 3;
/// See [`BINDING_POSITION_LAYOUT`].
pub(crate) const BINDING_QUERY_POSITIONS: u32 = 4;
/// See [`BINDING_POSITION_LAYOUT`].
pub(crate) const BINDING_KEY_POSITIONS: u32 = 5;

/// The two kernels that write biases: at the module's positions, or at custom ones. They
/// share the per-window uniform, the slopes, the output binding and the window planner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kernel {
    /// `shaders/alibi_bias.wgsl`.
    Bias,
    /// `shaders/alibi_positions.wgsl`.
    Positions,
}

impl Kernel {
    /// The kernel's whole source for `dtype`, masking future keys when `causal`: its
    /// store file, the `CAUSAL` constant, the common part, the body.
    pub fn source(self, dtype: BiasDtype, causal: bool) -> String {
        let store = match dtype {
            BiasDtype::F32 => STORE_F32_WGSL,
            BiasDtype::F16 => STORE_F16_WGSL,
        };
        let body = match self {
            Self::Bias => GENERATOR_WGSL,
            Self::Positions => POSITIONS_WGSL,
        };
        format!("{store}\nconst CAUSAL: bool = {causal};\n{BIAS_COMMON_WGSL}\n{body}")
    }

    pub fn entry_point(self) -> &'static str {
        match self {
            Self::Bias => GENERATOR_ENTRY_POINT,
            Self::Positions => POSITIONS_ENTRY_POINT,
        }
    }
}

/// Mirror of the WGSL `PositionLayout` uniform of [`POSITIONS_WGSL`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct PositionLayout {
    /// Heads per batch item.
    pub heads: u32,
    /// Distance between batch items among the query positions: I, or 0 when shared.
    pub query_stride: u32,
    /// The same among the key positions: J, or 0.
    pub key_stride: u32,
    /// Columns before the first key in each row: C - J.
    pub key_pad: u32,
}

/// What a causal generation stores for future keys, as the uniform's `future_bits`.
pub(crate) const FUTURE_BITS: u32 = 0xff80_0000;
const _: () = assert!(f32::NEG_INFINITY.to_bits() == FUTURE_BITS);
/// Entry point of [`GENERATOR_WGSL`].
pub(crate) const GENERATOR_ENTRY_POINT: &str = "generate";
/// `@workgroup_size` of the entry point (keep in sync with the WGSL).
pub(crate) const WORKGROUP_SIZE: u32 = 256;
/// Columns one workgroup covers along a row: one vec4 per invocation.
pub(crate) const COLUMNS_PER_WORKGROUP: usize = WORKGROUP_SIZE as usize * 4;
/// `array<vec4<f32>, SLOPE_VEC4S>` in the WGSL: the slope uniform's length.
pub(crate) const SLOPE_VEC4S: usize = crate::validation::MAX_HEADS / 4;
/// Binding numbers of group 0 (keep in sync with the WGSL).
pub(crate) const BINDING_PARAMS: u32 = 0;
/// See [`BINDING_PARAMS`].
pub(crate) const BINDING_SLOPES: u32 = 1;
/// See [`BINDING_PARAMS`].
pub(crate) const BINDING_BIAS: u32 = 2;

/// Mirror of the WGSL `GenerateParams` uniform.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct GenerateParams {
    /// Rows per head of the generated tensor (I).
    pub rows: u32,
    /// Row length in vec4s (J / 4).
    pub cols4: u32,
    /// First head of this window.
    pub head0: u32,
    /// First row of this window, within each head.
    pub row0: u32,
    /// Position of query row 0: J - I.
    pub query_offset: i32,
    /// Index in vec4s of the first vec4 of the bound window.
    pub window_vec4: u32,
    /// Heads with a slope; the heads after them are zero padding.
    pub slope_heads: u32,
    /// Causal: [`FUTURE_BITS`], the bits of `-inf`, stored for future keys; 0 when not.
    pub future_bits: u32,
}

const _: () = assert!(std::mem::size_of::<GenerateParams>() == 32);
