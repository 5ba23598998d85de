//! The fused attention's figures of `alibi bench` (`--attention HxIxJxD`): the library's
//! kernel with ALiBi in registers against the same kernel without a bias, causal against
//! not, against the kernel reading `forward_dense`'s materialized bias, as a FLOP rate and
//! a fraction of the adapter's multiply-add peak (`peak.rs`), and against PyTorch's
//! `scaled_dot_product_attention` on the host's cores where PyTorch is installed
//! (`torch.rs`). Medians of alternated runs after a warm-up.

use alibi_wgpu::{
    AlibiConfig, AlibiError, AlibiPositionalBias, AttentionBias, AttentionBuffers,
    AttentionOptions, AttentionShape, GpuDevice,
};
use serde::Serialize;

use crate::measure::{median, read_buffer, round3, time_ms, wait_idle};
use crate::shape::{parse_fields, Syntax};

/// One attention case: `heads` query and key/value heads, `i` queries, `j` keys, `d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttentionCase {
    pub heads: usize,
    pub i: usize,
    pub j: usize,
    pub d: usize,
}

const ATTENTION_CASE: Syntax = Syntax {
    name: "an attention case HxIxJxD",
    fields: "heads x queries x keys x head dimension",
    examples: "16x1024x1024x64 or 16x1x4096x64",
};

pub fn parse_attention_case(text: &str) -> Result<AttentionCase, String> {
    let [heads, i, j, d] = parse_fields(text, &ATTENTION_CASE)?;
    Ok(AttentionCase { heads, i, j, d })
}

/// The default attention cases: PyTorch's comparison shape, prefills, decode steps.
pub const DEFAULT_ATTENTION_CASES: [AttentionCase; 5] = [
    AttentionCase {
        heads: 8,
        i: 256,
        j: 256,
        d: 64,
    },
    AttentionCase {
        heads: 16,
        i: 1024,
        j: 1024,
        d: 64,
    },
    AttentionCase {
        heads: 16,
        i: 2048,
        j: 2048,
        d: 64,
    },
    AttentionCase {
        heads: 16,
        i: 1,
        j: 4096,
        d: 64,
    },
    AttentionCase {
        heads: 16,
        i: 1,
        j: 16384,
        d: 64,
    },
];

/// The figures of one case, milliseconds.
#[derive(Debug, Serialize)]
pub struct AttentionFigures {
    pub heads: usize,
    pub i: usize,
    pub j: usize,
    pub d: usize,
    /// ALiBi in registers, not causal.
    pub fused_ms: f64,
    /// The same kernel, no bias.
    pub plain_ms: f64,
    /// `fused_ms / plain_ms` (target: at most 1.05).
    pub fused_over_plain: f64,
    /// ALiBi in registers, causal (a causal module).
    pub causal_ms: f64,
    /// `causal_ms / fused_ms` (target: at most 0.6 for a square prefill).
    pub causal_over_fused: f64,
    /// The kernel reading `forward_dense`'s tensor; `None` where the tensor exceeds the
    /// device's binding limit.
    pub materialized_ms: Option<f64>,
    /// `materialized_ms / fused_ms`.
    pub materialized_over_fused: Option<f64>,
    /// Bias bytes the materialized path reads (the fused one: 0).
    pub materialized_bias_bytes: u64,
    /// FLOPs of the non-causal attention (4 i j d per head) per second of `fused_ms`.
    pub fused_gflop_per_s: f64,
    /// That over the adapter's measured multiply-add peak.
    pub fraction_of_peak: f64,
    /// PyTorch's `scaled_dot_product_attention` with the ALiBi bias as `attn_mask` on the
    /// host's cores, where PyTorch is installed.
    pub torch_ms: Option<f64>,
    /// `fused_ms / torch_ms`.
    pub fused_over_torch: Option<f64>,
    /// The fused output is finite and the causal one differs from it.
    pub sane: bool,
}

impl AttentionFigures {
    /// The line `alibi bench` prints without `--json`.
    pub fn summary(&self) -> String {
        let optional = |x: Option<f64>| x.map_or("n/a".to_owned(), |x| format!("{x:.3}"));
        format!(
            "attention {}x{}x{}x{}: fused {:.2} ms ({:.2} GFLOP/s, {:.1}% of peak), fused/plain {:.3}, causal/fused {:.3}, materialized/fused {} ({} bias bytes vs 0), torch {} ms, fused/torch {}",
            self.heads,
            self.i,
            self.j,
            self.d,
            self.fused_ms,
            self.fused_gflop_per_s,
            100.0 * self.fraction_of_peak,
            self.fused_over_plain,
            self.causal_over_fused,
            optional(self.materialized_over_fused),
            self.materialized_bias_bytes,
            optional(self.torch_ms),
            optional(self.fused_over_torch),
        )
    }
}

/// Inputs and output of one case on the device.
struct Tensors {
    q: wgpu::Buffer,
    k: wgpu::Buffer,
    v: wgpu::Buffer,
    out: wgpu::Buffer,
}

impl Tensors {
    fn new(gpu: &GpuDevice, shape: AttentionShape) -> Self {
        let tensor = |len: usize, seed: u32| {
            let values: Vec<f32> = (0..len)
                .map(|n| {
                    let x = (n as u32).wrapping_mul(2_654_435_761).wrapping_add(seed);
                    (x >> 8) as f32 / (1u32 << 24) as f32 - 0.5
                })
                .collect();
            let buffer = gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("bench attention tensor"),
                size: (len.max(4) * 4) as u64,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_DST
                    | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            gpu.queue
                .write_buffer(&buffer, 0, bytemuck::cast_slice(&values));
            buffer
        };
        Self {
            q: tensor(shape.query_len(), 1),
            k: tensor(shape.key_len(), 2),
            v: tensor(shape.key_len(), 3),
            out: tensor(shape.query_len(), 4),
        }
    }

    fn buffers(&self) -> AttentionBuffers<'_> {
        AttentionBuffers {
            q: &self.q,
            k: &self.k,
            v: &self.v,
            out: &self.out,
        }
    }
}

/// Runs one attention of `module` and waits for it.
fn run(
    gpu: &GpuDevice,
    module: &AlibiPositionalBias,
    tensors: &Tensors,
    shape: AttentionShape,
    options: &AttentionOptions<'_>,
) -> Result<(), AlibiError> {
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    let _check = module.encode_attention(&mut encoder, tensors.buffers(), shape, options)?;
    gpu.queue.submit([encoder.finish()]);
    wait_idle(&gpu.device)
}

/// Measures `case`, `runs` timed rounds after a warm-up; `peak` is the adapter's
/// multiply-add peak in GFLOP/s, `torch_ms` PyTorch's time for the case.
pub fn measure_attention_case(
    gpu: &GpuDevice,
    case: AttentionCase,
    runs: usize,
    peak: f64,
    torch_ms: Option<f64>,
) -> Result<AttentionFigures, AlibiError> {
    let AttentionCase { heads, i, j, d } = case;
    let shape = AttentionShape {
        batch: 1,
        query_heads: heads,
        kv_heads: heads,
        queries: i,
        keys: j,
        head_dim: d,
    };
    let mut plain = AlibiPositionalBias::on_device(gpu, AlibiConfig::new(heads))?;
    let causal = AlibiPositionalBias::on_device(gpu, AlibiConfig::new(heads).causal(true))?;
    let tensors = Tensors::new(gpu, shape);
    let materialized_bias_bytes = (heads * i * j * 4) as u64;
    // The materialized bias, where one binding holds it.
    let dense = plain.forward_dense(i, j).ok();
    let fused_options = AttentionOptions::new();
    let plain_options = AttentionOptions::new().bias(AttentionBias::None);
    let mut times: [Vec<f64>; 4] = Default::default();
    let mut materialized_refused = dense.is_none();
    for round in 0..=runs {
        let fused = time_ms(|| run(gpu, &plain, &tensors, shape, &fused_options))?;
        let without = time_ms(|| run(gpu, &plain, &tensors, shape, &plain_options))?;
        let masked = time_ms(|| run(gpu, &causal, &tensors, shape, &fused_options))?;
        let read = match &dense {
            Some(dense) if !materialized_refused => {
                let options = AttentionOptions::new().bias(AttentionBias::Tensor(dense.buffer()));
                match time_ms(|| run(gpu, &plain, &tensors, shape, &options)) {
                    Ok(ms) => ms,
                    Err(_) => {
                        materialized_refused = true;
                        f64::NAN
                    }
                }
            }
            _ => f64::NAN,
        };
        if round > 0 {
            for (figures, ms) in times.iter_mut().zip([fused, without, masked, read]) {
                figures.push(ms);
            }
        }
    }
    let sane = check_outputs(gpu, &plain, &causal, &tensors, shape)?;
    let [fused, without, masked, read] = times.map(median);
    let materialized_ms = (!materialized_refused).then_some(read);
    let gflop_per_s = 4.0 * (heads * i * j * d) as f64 / fused / 1e6;
    Ok(AttentionFigures {
        heads,
        i,
        j,
        d,
        fused_ms: round3(fused),
        plain_ms: round3(without),
        fused_over_plain: round3(fused / without),
        causal_ms: round3(masked),
        causal_over_fused: round3(masked / fused),
        materialized_ms: materialized_ms.map(round3),
        materialized_over_fused: materialized_ms.map(|m| round3(m / fused)),
        materialized_bias_bytes,
        fused_gflop_per_s: round3(gflop_per_s),
        fraction_of_peak: round3(gflop_per_s / peak),
        torch_ms: torch_ms.map(round3),
        fused_over_torch: torch_ms.map(|t| round3(fused / t)),
        sane,
    })
}

/// The fused output is finite, and a causal module's differs from it (for i > 1).
fn check_outputs(
    gpu: &GpuDevice,
    plain: &AlibiPositionalBias,
    causal: &AlibiPositionalBias,
    tensors: &Tensors,
    shape: AttentionShape,
) -> Result<bool, AlibiError> {
    let read = |module: &AlibiPositionalBias| -> Result<Vec<f32>, AlibiError> {
        run(gpu, module, tensors, shape, &AttentionOptions::new())?;
        let bytes = read_buffer(&gpu.device, &gpu.queue, &tensors.out).unwrap_or_default();
        let mut values: Vec<f32> = bytemuck::pod_collect_to_vec(&bytes);
        values.truncate(shape.query_len());
        Ok(values)
    };
    let fused = read(plain)?;
    let masked = read(causal)?;
    Ok(fused.iter().all(|x| x.is_finite()) && (shape.queries <= 1 || fused != masked))
}
