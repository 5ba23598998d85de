//! The score kernel (`shaders/scores/add_bias.wgsl`), a user of the windowed dispatch:
//! ALiBi added in place into the caller's attention scores, its pipelines (built on first
//! use, per element type) and the recording of its dispatches into the caller's encoder.

use std::sync::OnceLock;

use crate::dtype::BiasDtype;
use crate::error::Result;
use crate::gpu::device::context::GpuContext;
use crate::gpu::dispatch::{Buffers, KernelSpec, Window, WindowedKernel};

mod plan;

pub(crate) use plan::{check_score_fits, plan_score_windows, ScoreParams, ScoreShape};

/// The kernel's body: it reads and writes `Element` scores and rounds with `to_element`.
pub(crate) const ADD_BIAS_WGSL: &str = include_str!("../../../shaders/scores/add_bias.wgsl");

/// The score kernel for `dtype`, masking future keys when `causal`.
pub(crate) fn score_spec(dtype: BiasDtype, causal: bool) -> KernelSpec {
    KernelSpec {
        entry_point: "add_bias",
        dtype,
        // f16 scores need `SHADER_F16` (`add_to_scores` refuses them without it).
        f16_words: false,
        causal,
        parts: vec![ADD_BIAS_WGSL],
        // A storage binding is a multiple of 4 bytes.
        window_min_bytes: 4,
        extras: &[],
    }
}

type ScoreKernel = WindowedKernel<ScoreParams>;

/// A module's score kernels, one per element type, each built on its first use (most
/// modules never add into scores, and a pipeline costs a shader compilation).
#[derive(Default)]
pub(crate) struct ScoreKernels {
    f32: OnceLock<ScoreKernel>,
    f16: OnceLock<ScoreKernel>,
}

impl ScoreKernels {
    /// Records the update of `windows` of `scores` (at least the bytes of `shape`, which
    /// they were planned for) into the caller's `encoder`. `shape.dtype` is supported (see
    /// [`GpuContext::require`]); a module's mask never changes, so one kernel per element
    /// type serves it.
    pub fn encode(
        &self,
        gpu: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        slopes: &wgpu::Buffer,
        shape: ScoreShape,
        windows: &[Window<ScoreParams>],
        scores: &wgpu::Buffer,
    ) -> Result<()> {
        let cell = match shape.dtype {
            BiasDtype::F32 => &self.f32,
            BiasDtype::F16 => &self.f16,
        };
        let kernel = match cell.get() {
            Some(kernel) => kernel,
            None => {
                // Two threads may both build it; one keeps its kernel, the other's is dropped.
                let built = ScoreKernel::new(gpu, &score_spec(shape.dtype, shape.causal))?;
                cell.get_or_init(|| built)
            }
        };
        let buffers = Buffers {
            slopes,
            tensor: scores,
            extras: &[],
        };
        kernel.encode(gpu, encoder, "recording the score update", windows, buffers)
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;
