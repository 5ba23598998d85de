//! The two bias kernels, users of the windowed dispatch: their WGSL parts, entry points and
//! bindings, and the Rust mirrors of their uniforms (`gpu/tests/shader_interface.rs` holds
//! these against the shaders, parsed by naga).

use crate::dtype::BiasDtype;
use crate::error::Result;
use crate::gpu::device::context::GpuContext;
use crate::gpu::dispatch::{Extra, KernelSpec, WindowedKernel};

/// `shaders/bias/window.wgsl`: what both bias kernels share (their uniform, the output
/// binding, the store).
pub(crate) const WINDOW_WGSL: &str = include_str!("../../../shaders/bias/window.wgsl");
/// `shaders/bias/generate.wgsl`: the bias at the module's positions.
pub(crate) const GENERATE_WGSL: &str = include_str!("../../../shaders/bias/generate.wgsl");
/// `shaders/bias/position_bindings.wgsl`: the positions' bindings, which the dense kernel at
/// custom positions shares.
pub(crate) const POSITION_BINDINGS_WGSL: &str =
    include_str!("../../../shaders/bias/position_bindings.wgsl");
/// `shaders/bias/positions.wgsl`: the bias at custom positions.
pub(crate) const POSITIONS_WGSL: &str = include_str!("../../../shaders/bias/positions.wgsl");

/// The bindings the positions kernel adds: the `PositionLayout` uniform, then the query
/// and key positions.
pub(crate) const POSITION_BINDINGS: &[Extra] = &[
    Extra {
        name: "POSITION_LAYOUT",
        ty: wgpu::BufferBindingType::Uniform,
        min_bytes: std::mem::size_of::<PositionLayout>() as u64,
    },
    Extra {
        name: "QUERY_POSITIONS",
        ty: wgpu::BufferBindingType::Storage { read_only: true },
        min_bytes: 4,
    },
    Extra {
        name: "KEY_POSITIONS",
        ty: wgpu::BufferBindingType::Storage { read_only: true },
        min_bytes: 4,
    },
];

/// The two kernels that write biases: at the module's positions, or at custom ones. They
/// share the per-window uniform, the output binding and the window planner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BiasKernel {
    /// `shaders/bias/generate.wgsl`.
    Generate,
    /// `shaders/bias/positions.wgsl`.
    Positions,
}

impl BiasKernel {
    /// The kernel storing `dtype`, masking future keys when `causal`.
    pub fn spec(self, dtype: BiasDtype, causal: bool) -> KernelSpec {
        let (parts, extras): (&'static [&'static str], _) = match self {
            Self::Generate => (&[WINDOW_WGSL, GENERATE_WGSL], &[][..]),
            Self::Positions => (
                &[WINDOW_WGSL, POSITION_BINDINGS_WGSL, POSITIONS_WGSL],
                POSITION_BINDINGS,
            ),
        };
        KernelSpec {
            // `window.wgsl`'s, for both.
            entry_point: "generate",
            dtype,
            f16_words: false,
            causal,
            parts: parts.to_vec(),
            // At least one stored vec4.
            window_min_bytes: 4 * dtype.size() as u64,
            extras,
        }
    }

    /// Builds the kernel's pipeline for `dtype`, masking future keys when `causal`; f16 is
    /// stored in words, rounded exactly in integer arithmetic, where the device lacks
    /// `SHADER_F16`.
    pub fn build(
        self,
        gpu: &GpuContext,
        dtype: BiasDtype,
        causal: bool,
    ) -> Result<WindowedKernel<GenerateParams>> {
        let spec = KernelSpec {
            f16_words: !gpu.has_f16(),
            ..self.spec(dtype, causal)
        };
        match self {
            // SAFETY: the kernel's only dynamic index is the store `bias[index]` of
            // `window.wgsl`, and `plan_windows` places every such index of every window
            // inside that window's binding (its tests check each index of many
            // plans). Without wgpu's runtime bounds checks the store is a quarter faster on
            // lavapipe, where stores dominate.
            Self::Generate => unsafe { WindowedKernel::new_unchecked(gpu, &spec) },
            // It also reads the caller's positions: wgpu keeps its bounds checks.
            Self::Positions => WindowedKernel::new(gpu, &spec),
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

/// Mirror of the WGSL `Params` uniform of [`WINDOW_WGSL`].
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
    /// Causal: [`FUTURE_BITS`](crate::gpu::dispatch::FUTURE_BITS), the bits of `-inf`,
    /// stored for future keys; 0 when not.
    pub future_bits: u32,
}

const _: () = assert!(std::mem::size_of::<GenerateParams>() == 32);
