//! `alibi bench`'s figures for the variants of issue 9, as ratios measured in one run so
//! that they share the machine's noise: a causal module's generation against a plain one,
//! f16 against f32 (on every adapter; in words without `SHADER_F16`), `add_to_scores` against a kernel
//! that only scales the same scores, and an attention with ALiBi computed inline (or read
//! from `forward`'s tensor) against the same attention with no bias.

// The attention of `examples/attention/`, timed exactly as the example times it.
#[path = "../../examples/attention/attention.rs"]
mod attention;

use alibi_wgpu::{reference, AlibiConfig, AlibiError, AlibiPositionalBias, BiasDtype, GpuDevice};
use serde::Serialize;

use crate::error::CliError;
use crate::measure::{median, round3, time_ms, Rig};
use crate::module_args::GenerationChoice;
use crate::scale_only;

/// The variants' figures for one case `[total_heads, i, j]`.
#[derive(Debug, Serialize)]
pub struct VariantReport {
    /// Where the modules generate: `HostMapped` or `Shader`.
    pub generation_path: String,
    /// Heads with a slope.
    pub heads: usize,
    /// Output heads, padding included.
    pub total_heads: usize,
    /// Queries.
    pub i: usize,
    /// Keys.
    pub j: usize,
    /// One generation of a causal module over one of a plain module, on the modules' path.
    pub causal_over_plain: f64,
    /// The same by the WGSL kernel, whatever the path.
    pub shader_causal_over_plain: f64,
    /// One generation of an f16 module on the modules' path (every adapter now; `None`
    /// kept in the record's type for the readers of older records).
    pub f16_generate_ms: Option<f64>,
    /// That over an f32 module's, on the same path.
    pub f16_over_f32: Option<f64>,
    /// The same ratio by the WGSL kernel, whatever the path.
    pub shader_f16_over_f32: Option<f64>,
    /// `add_to_scores` on f32 scores `[1, total_heads, i, j]` with scale 1/8.
    pub add_to_scores_ms: f64,
    /// That over a kernel that only scales the same scores in place (the same bytes read
    /// and written).
    pub add_over_scale: f64,
    /// A causal module's tensor equals the oracle.
    pub exact: bool,
}

/// The attention of `examples/attention/`, `softmax(q k^T * scale + alibi) v`.
#[derive(Debug, Serialize)]
pub struct AttentionReport {
    /// Heads.
    pub heads: usize,
    /// Queries and keys.
    pub i: usize,
    /// Keys.
    pub j: usize,
    /// Head dimension.
    pub d: usize,
    /// No bias.
    pub plain_attention_ms: f64,
    /// ALiBi computed inline from the slopes (`ALIBI_WGSL`).
    pub fused_attention_ms: f64,
    /// ALiBi read from `forward(i, j)`'s tensor.
    pub materialized_attention_ms: f64,
    /// `fused_attention_ms / plain_attention_ms`.
    pub fused_attention_over_plain: f64,
    /// `materialized_attention_ms / plain_attention_ms`.
    pub materialized_attention_over_plain: f64,
}

impl VariantReport {
    /// The line `alibi bench` prints after a case's row without `--json`.
    pub fn summary(&self) -> String {
        let f16 = match (self.f16_over_f32, self.shader_f16_over_f32) {
            (Some(path), Some(kernel)) => format!("f16/f32 {path:.3} (kernel {kernel:.3})"),
            _ => "f16: no SHADER_F16 here".to_owned(),
        };
        format!(
            "  variants: causal/plain {:.3} (kernel {:.3}), {f16}, add_to_scores {:.2} ms, add/scale {:.3}, exact {}",
            self.causal_over_plain,
            self.shader_causal_over_plain,
            self.add_to_scores_ms,
            self.add_over_scale,
            self.exact
        )
    }
}

impl AttentionReport {
    /// The line `alibi bench` prints without `--json`.
    pub fn summary(&self) -> String {
        format!(
            "attention: {} heads, {}x{}, d {}: plain {:.2} ms, fused/plain {:.3}, materialized/plain {:.3}",
            self.heads,
            self.i,
            self.j,
            self.d,
            self.plain_attention_ms,
            self.fused_attention_over_plain,
            self.materialized_attention_over_plain
        )
    }
}

/// Measures the variants of one case, `runs` alternated rounds, medians.
pub fn measure_variants(
    gpu: &GpuDevice,
    (heads, total_heads, i, j): (usize, usize, usize, usize),
    runs: usize,
    generation: GenerationChoice,
) -> Result<VariantReport, AlibiError> {
    let build = |causal, dtype| {
        let config = AlibiConfig::new(heads)
            .total_heads(total_heads)
            .causal(causal)
            .dtype(dtype)
            .generation_path(generation.into());
        AlibiPositionalBias::on_device(gpu, config)
    };
    let mut plain = build(false, BiasDtype::F32)?;
    let mut causal = build(true, BiasDtype::F32)?;
    // f16 on every adapter (in words, rounded exactly, without SHADER_F16).
    let mut f16 = Some(build(false, BiasDtype::F16)?);
    // One rig per module: each generates into its own buffer, sized for f32 (an f16
    // tensor needs half of it).
    let rigs = [Rig::new(&plain, i, j)?, Rig::new(&causal, i, j)?];
    let f16_rig = f16.as_ref().map(|f16| Rig::new(f16, i, j)).transpose()?;
    let mut times: [Vec<f64>; 6] = Default::default();
    for round in 0..=runs {
        let mut timed = [
            time_ms(|| rigs[0].generate(&mut plain))?,
            time_ms(|| rigs[1].generate(&mut causal))?,
            time_ms(|| rigs[0].generate_with_shader(&mut plain))?,
            time_ms(|| rigs[1].generate_with_shader(&mut causal))?,
            f64::NAN,
            f64::NAN,
        ];
        if let (Some(f16), Some(rig)) = (&mut f16, &f16_rig) {
            timed[4] = time_ms(|| rig.generate(f16))?;
            timed[5] = time_ms(|| rig.generate_with_shader(f16))?;
        }
        // Round 0 warms up: pipelines, first touches.
        if round > 0 {
            for (times, value) in times.iter_mut().zip(timed) {
                times.push(value);
            }
        }
    }
    let [path_plain, path_causal, kernel_plain, kernel_causal, path_f16, kernel_f16] =
        times.map(median);
    // The CLI's own scale-only kernel, on the same buffer as `add_to_scores`.
    let [add, scale_only] =
        scale_only::time_add_over_scale(&plain, [1, i, j], 0.125, BiasDtype::F32, runs)?;
    let expected = reference::forward_causal(causal.slopes(), total_heads, i, j)?;
    let exact = pollster::block_on(causal.forward_to_host(i, j))? == expected;
    Ok(VariantReport {
        generation_path: format!("{:?}", plain.generation_path()),
        heads,
        total_heads,
        i,
        j,
        causal_over_plain: round3(path_causal / path_plain),
        shader_causal_over_plain: round3(kernel_causal / kernel_plain),
        f16_generate_ms: f16.as_ref().map(|_| round3(path_f16)),
        f16_over_f32: f16.as_ref().map(|_| round3(path_f16 / path_plain)),
        shader_f16_over_f32: f16.as_ref().map(|_| round3(kernel_f16 / kernel_plain)),
        add_to_scores_ms: round3(add),
        add_over_scale: round3(add / scale_only),
        exact,
    })
}

/// Times the attention example's three variants: 8 heads, 256 x 256, d 64.
pub fn measure_attention(gpu: &GpuDevice, runs: usize) -> Result<AttentionReport, CliError> {
    let shape = attention::Shape::new(8, 256, 256, 64);
    let times = attention::attention_ratios(&gpu.device, &gpu.queue, shape, runs)
        .map_err(|error| CliError::Attention(error.to_string()))?;
    let ms = |duration: std::time::Duration| round3(duration.as_secs_f64() * 1e3);
    Ok(AttentionReport {
        heads: 8,
        i: 256,
        j: 256,
        d: 64,
        plain_attention_ms: ms(times.plain),
        fused_attention_ms: ms(times.fused),
        materialized_attention_ms: ms(times.materialized),
        fused_attention_over_plain: round3(times.fused_attention_over_plain()),
        materialized_attention_over_plain: round3(times.materialized_attention_over_plain()),
    })
}
