//! A small attention, `softmax(q k^T * scale + bias) v`, in one WGSL compute shader
//! (optionally causal), with the bias from three places:
//!
//! * [`Variant::Fused`]: computed on the fly by [`alibi_wgpu::ALIBI_WGSL`] from the slopes
//!   alone (a uniform of `vec4`s), no bias tensor;
//! * [`Variant::Materialized`]: read from the tensor `AlibiPositionalBias::forward(i, j)`
//!   returns, bound through `AlibiBias::binding()` with its strided layout;
//! * [`Variant::Plain`]: no bias at all, the baseline of the timings.
//!
//! The three shaders are the same text but for one function, `with_bias`, so the softmax
//! performs the same operations in the same order in all of them, and the fused and
//! materialized outputs are equal bit for bit when the two biases are. Shared by the
//! `attention` example and `tests/attention.rs` (`#[path]`-included), and meant to be
//! included the same way by `alibi bench`; it is not part of the crate's API.

// Each includer uses its own subset.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use alibi_wgpu::{AlibiBias, AlibiConfig, AlibiPositionalBias, ALIBI_WGSL};

/// Errors of this module: the crate's, wgpu's captured ones, and bad shapes.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Threads of one workgroup; one workgroup computes one query row of one head.
const WORKGROUP: u32 = 64;
/// Longest key row the shader's workgroup arrays hold.
pub const MAX_KEYS: usize = 1024;
/// Longest head dimension the shader's workgroup arrays hold.
pub const MAX_DIM: usize = 256;

/// The attention's dimensions: `q` is `[total_heads, i, d]`, `k` and `v` are
/// `[total_heads, j, d]`, and heads `heads..total_heads` are ALiBi's zero padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Heads with an ALiBi slope.
    pub heads: usize,
    /// All heads; those past `heads` get a zero bias.
    pub total_heads: usize,
    /// Query rows.
    pub i: usize,
    /// Keys.
    pub j: usize,
    /// Head dimension.
    pub d: usize,
    /// Whether every key after a query is masked (`-inf` in the bias): ALiBi's causal form.
    /// [`Variant::Plain`] stays unmasked.
    pub causal: bool,
}

impl Shape {
    /// `heads` heads with a slope (no padding), `i` queries, `j` keys, dimension `d`.
    pub fn new(heads: usize, i: usize, j: usize, d: usize) -> Self {
        Self {
            heads,
            total_heads: heads,
            i,
            j,
            d,
            causal: false,
        }
    }

    /// The same shape, causal.
    pub fn causal(self) -> Self {
        Self {
            causal: true,
            ..self
        }
    }

    /// The same shape with `total_heads` heads in all.
    pub fn padded_to(self, total_heads: usize) -> Self {
        Self {
            total_heads,
            ..self
        }
    }

    /// The softmax scale, `1 / sqrt(d)`.
    pub fn scale(&self) -> f32 {
        1.0 / (self.d as f32).sqrt()
    }

    fn check(&self) -> Result<(), Error> {
        let Self {
            heads,
            total_heads,
            i,
            j,
            d,
            causal,
        } = *self;
        if heads == 0 || total_heads < heads || i == 0 || j == 0 || d == 0 {
            return Err(
                format!("{self:?}: every size must be at least 1, heads <= total_heads").into(),
            );
        }
        if causal && i > j {
            // Rows before the first key would have every key masked: a NaN softmax.
            return Err(format!("{self:?}: a causal attention needs i <= j").into());
        }
        if j > MAX_KEYS || d > MAX_DIM {
            return Err(
                format!("{self:?}: at most {MAX_KEYS} keys and dimension {MAX_DIM}").into(),
            );
        }
        Ok(())
    }
}

/// Where the attention's bias comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// No bias: `softmax(q k^T * scale) v`.
    Plain,
    /// ALiBi computed in the shader from the slopes, by `ALIBI_WGSL`.
    Fused,
    /// ALiBi read from `AlibiPositionalBias::forward(i, j)`'s tensor.
    Materialized,
}

impl Variant {
    /// All three, in the order the timings interleave them.
    pub const ALL: [Variant; 3] = [Variant::Plain, Variant::Fused, Variant::Materialized];
}

/// The part of the shader all three variants share. Each variant adds its `with_bias`
/// (and what that reads); nothing else differs.
const ATTENTION_WGSL: &str = r"
const WORKGROUP: u32 = 64u;
const MAX_KEYS: u32 = 1024u;
const MAX_DIM: u32 = 256u;

struct Params {
    // All heads of q, k, v and the output.
    total_heads: u32,
    // Heads with a slope; the others are padding (bias +0.0).
    slope_heads: u32,
    // Query rows (i), keys (j), head dimension (d).
    rows: u32,
    keys: u32,
    dim: u32,
    // 1 / sqrt(d).
    scale: f32,
    // Layout of the materialized bias in its binding, in f32 elements.
    bias_offset: u32,
    bias_head_stride: u32,
    bias_row_stride: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> output: array<f32>;

var<workgroup> query: array<f32, MAX_DIM>;
// Scores, then their exponentials.
var<workgroup> weights: array<f32, MAX_KEYS>;

// One workgroup per (query row, head): x = row, y = head.
@compute @workgroup_size(WORKGROUP)
fn attention(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let row = group.x;
    let head = group.y;
    let dim = params.dim;
    let keys = params.keys;
    let q_row = (head * params.rows + row) * dim;
    for (var x = lane; x < dim; x += WORKGROUP) {
        query[x] = q[q_row + x];
    }
    workgroupBarrier();

    // Scores: one key per lane at a time.
    for (var key = lane; key < keys; key += WORKGROUP) {
        let k_row = (head * keys + key) * dim;
        var dot = 0.0;
        for (var x = 0u; x < dim; x += 1u) {
            dot += query[x] * k[k_row + x];
        }
        weights[key] = with_bias(dot * params.scale, head, row, key);
    }
    workgroupBarrier();

    // Every lane finds the same maximum, in the same order.
    var largest = weights[0];
    for (var key = 1u; key < keys; key += 1u) {
        largest = max(largest, weights[key]);
    }
    workgroupBarrier();
    for (var key = lane; key < keys; key += WORKGROUP) {
        weights[key] = exp(weights[key] - largest);
    }
    workgroupBarrier();

    // One output column per lane at a time; every lane sums the weights in the same order.
    let v_head = head * keys * dim;
    for (var x = lane; x < dim; x += WORKGROUP) {
        var total = 0.0;
        var sum = 0.0;
        for (var key = 0u; key < keys; key += 1u) {
            let weight = weights[key];
            total += weight;
            sum += weight * v[v_head + key * dim + x];
        }
        output[q_row + x] = sum / total;
    }
}
";

/// `with_bias` of [`Variant::Plain`]: the score unchanged.
const PLAIN_WGSL: &str = r"
fn with_bias(score: f32, head: u32, row: u32, key: u32) -> f32 {
    return score;
}
";

/// `with_bias` of [`Variant::Fused`]: ALiBi from the slopes, by `ALIBI_WGSL`'s functions.
/// [`shader_source`] prepends `SLOPE_VEC4S` and puts `alibi_head_bias` or, causal,
/// `alibi_causal_head_bias` for `HEAD_BIAS`.
const FUSED_WGSL: &str = r"
// The engine decides where the slopes live: here a uniform, packed four to a vec4.
@group(0) @binding(5) var<uniform> slopes: array<vec4<f32>, SLOPE_VEC4S>;

fn with_bias(score: f32, head: u32, row: u32, key: u32) -> f32 {
    let slope = alibi_packed_slope(slopes[head / 4u], head);
    let query_position = alibi_query_position(params.rows, params.keys, row);
    let is_padding = head >= params.slope_heads;
    return score + HEAD_BIAS(slope, is_padding, query_position, i32(key));
}
";

/// `with_bias` of [`Variant::Materialized`]: the tensor `forward(i, j)` returned.
const MATERIALIZED_WGSL: &str = r"
@group(0) @binding(5) var<storage, read> bias: array<f32>;

fn with_bias(score: f32, head: u32, row: u32, key: u32) -> f32 {
    let index = params.bias_offset + head * params.bias_head_stride
        + row * params.bias_row_stride + key;
    return score + bias[index];
}
";

/// The whole WGSL source of `variant`'s shader for `shape`.
pub fn shader_source(variant: Variant, shape: Shape) -> String {
    match variant {
        Variant::Plain => format!("{ATTENTION_WGSL}{PLAIN_WGSL}"),
        Variant::Fused => {
            let slope_vec4s = shape.total_heads.div_ceil(4);
            let head_bias = if shape.causal {
                "alibi_causal_head_bias"
            } else {
                "alibi_head_bias"
            };
            let fused = FUSED_WGSL.replace("HEAD_BIAS", head_bias);
            // An engine concatenates the ALiBi functions with its own shader: that is all.
            format!(
                "const SLOPE_VEC4S: u32 = {slope_vec4s}u;\n{ATTENTION_WGSL}{fused}\n{ALIBI_WGSL}"
            )
        }
        Variant::Materialized => format!("{ATTENTION_WGSL}{MATERIALIZED_WGSL}"),
    }
}

/// The uniform `Params` of the shader.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    total_heads: u32,
    slope_heads: u32,
    rows: u32,
    keys: u32,
    dim: u32,
    scale: f32,
    bias_offset: u32,
    bias_head_stride: u32,
    bias_row_stride: u32,
    _pad: [u32; 3],
}

/// `count` values in `[-1, 1)` from a xorshift generator seeded with `seed`: the same on
/// every run.
pub fn random_values(seed: u64, count: usize) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..count)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // The top 24 bits, exactly representable in an f32.
            (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// One variant's pipeline and bind group.
struct Pass {
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    output: wgpu::Buffer,
}

/// The attention of one shape on one device, ready to run in all three variants: inputs
/// uploaded, the materialized bias generated by the crate, pipelines built.
pub struct Attention {
    device: wgpu::Device,
    queue: wgpu::Queue,
    shape: Shape,
    plain: Pass,
    fused: Pass,
    materialized: Pass,
    /// The module that generated the materialized bias, and the bias.
    alibi: AlibiPositionalBias,
    bias: AlibiBias,
}

impl Attention {
    /// Builds everything for `shape` on `device`, with `q`, `k`, `v` from
    /// [`random_values`] seeded with `seed`, and the paper's slopes for `shape.heads`.
    ///
    /// # Errors
    /// A shape the shader cannot hold, the crate's errors, and any wgpu error raised while
    /// building (captured in error scopes, not left to the device's handler).
    pub fn new(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        shape: Shape,
        seed: u64,
    ) -> Result<Self, Error> {
        shape.check()?;
        let config = AlibiConfig::new(shape.heads)
            .total_heads(shape.total_heads)
            .causal(shape.causal);
        let mut alibi = AlibiPositionalBias::with_config(device, queue, config)?;
        let bias = alibi.forward(shape.i, shape.j)?;
        let (attention, error) = scoped(device, || {
            Self::build(device, queue, shape, seed, alibi, bias)
        });
        match error {
            Some(error) => Err(format!("building the attention for {shape:?}: {error}").into()),
            None => attention,
        }
    }

    fn build(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        shape: Shape,
        seed: u64,
        alibi: AlibiPositionalBias,
        bias: AlibiBias,
    ) -> Result<Self, Error> {
        let Shape {
            total_heads,
            i,
            j,
            d,
            ..
        } = shape;
        let storage = |label: &str, values: &[f32]| {
            let buffer = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: (values.len() * 4) as u64,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            queue.write_buffer(&buffer, 0, bytemuck::cast_slice(values));
            buffer
        };
        let q = storage("attention q", &random_values(seed, total_heads * i * d));
        let k = storage("attention k", &random_values(seed + 1, total_heads * j * d));
        let v = storage("attention v", &random_values(seed + 2, total_heads * j * d));

        let binding = bias
            .binding()
            .ok_or("the materialized bias of a non-empty shape is empty")?;
        let u32_of = |value: u64| u32::try_from(value).map_err(|_| "bias layout past u32");
        let params = Params {
            total_heads: total_heads as u32,
            slope_heads: shape.heads as u32,
            rows: i as u32,
            keys: j as u32,
            dim: d as u32,
            scale: shape.scale(),
            bias_offset: u32_of(binding.layout.offset)?,
            bias_head_stride: u32_of(binding.layout.head_stride)?,
            bias_row_stride: u32_of(binding.layout.row_stride)?,
            _pad: [0; 3],
        };
        let params_buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("attention params"),
            size: std::mem::size_of::<Params>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        queue.write_buffer(&params_buffer, 0, bytemuck::bytes_of(&params));

        // The slopes as the engine uploads them: the crate's f32 values, zero for padding.
        let mut packed = vec![0.0f32; total_heads.div_ceil(4) * 4];
        packed[..alibi.slopes().len()].copy_from_slice(alibi.slopes());
        let slopes = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("attention slopes"),
            size: (packed.len() * 4) as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        queue.write_buffer(&slopes, 0, bytemuck::cast_slice(&packed));

        let pass = |variant: Variant, extra: Option<wgpu::BindingResource<'_>>| {
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some("attention"),
                source: wgpu::ShaderSource::Wgsl(shader_source(variant, shape).into()),
            });
            let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some("attention"),
                layout: None,
                module: &module,
                entry_point: Some("attention"),
                compilation_options: Default::default(),
                cache: None,
            });
            let output = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("attention output"),
                size: (total_heads * i * d * 4) as u64,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            let mut entries = vec![
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: params_buffer.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: q.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: k.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 3,
                    resource: v.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 4,
                    resource: output.as_entire_binding(),
                },
            ];
            if let Some(resource) = extra {
                entries.push(wgpu::BindGroupEntry {
                    binding: 5,
                    resource,
                });
            }
            let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("attention"),
                layout: &pipeline.get_bind_group_layout(0),
                entries: &entries,
            });
            Pass {
                pipeline,
                bind_group,
                output,
            }
        };
        let plain = pass(Variant::Plain, None);
        let fused = pass(Variant::Fused, Some(slopes.as_entire_binding()));
        let materialized = pass(
            Variant::Materialized,
            Some(wgpu::BindingResource::Buffer(binding.binding.clone())),
        );
        Ok(Self {
            device: device.clone(),
            queue: queue.clone(),
            shape,
            plain,
            fused,
            materialized,
            alibi,
            bias,
        })
    }

    /// The shape.
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// The module that generated the materialized bias.
    pub fn alibi(&self) -> &AlibiPositionalBias {
        &self.alibi
    }

    /// The materialized bias the [`Variant::Materialized`] shader reads.
    pub fn bias(&self) -> &AlibiBias {
        &self.bias
    }

    fn pass(&self, variant: Variant) -> &Pass {
        match variant {
            Variant::Plain => &self.plain,
            Variant::Fused => &self.fused,
            Variant::Materialized => &self.materialized,
        }
    }

    /// Records `variant`'s attention into `encoder`.
    pub fn encode(&self, encoder: &mut wgpu::CommandEncoder, variant: Variant) {
        let pass = self.pass(variant);
        let mut compute = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("attention"),
            timestamp_writes: None,
        });
        compute.set_pipeline(&pass.pipeline);
        compute.set_bind_group(0, &pass.bind_group, &[]);
        compute.dispatch_workgroups(self.shape.i as u32, self.shape.total_heads as u32, 1);
    }

    /// Runs `variant` once and waits for the GPU to finish.
    ///
    /// # Errors
    /// A failed poll.
    pub fn run(&self, variant: Variant) -> Result<(), Error> {
        // Nothing here can raise a wgpu error once `new` succeeded: no error scopes, which
        // the timings would count.
        let mut encoder = self.device.create_command_encoder(&Default::default());
        self.encode(&mut encoder, variant);
        self.queue.submit([encoder.finish()]);
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| format!("waiting for the {variant:?} attention: {e}"))?;
        Ok(())
    }

    /// Runs `variant` and reads its output back: `[total_heads, i, d]`, row-major.
    ///
    /// # Errors
    /// As [`Attention::run`], and a failed readback.
    pub fn output(&self, variant: Variant) -> Result<Vec<f32>, Error> {
        self.run(variant)?;
        let output = &self.pass(variant).output;
        let size = output.size();
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("attention readback"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(output, 0, &staging, 0, size);
        self.queue.submit([encoder.finish()]);
        let (sender, receiver) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |result| {
            let _ = sender.send(result);
        });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| format!("waiting for the readback: {e}"))?;
        receiver.recv()??;
        let values = bytemuck::cast_slice::<u8, f32>(&staging.get_mapped_range(..)?).to_vec();
        staging.unmap();
        Ok(values)
    }
}

/// Runs `work` inside validation, out-of-memory and internal error scopes and returns the
/// first error they caught, so that a mistake fails here instead of reaching the device's
/// uncaptured-error handler.
fn scoped<T>(device: &wgpu::Device, work: impl FnOnce() -> T) -> (T, Option<wgpu::Error>) {
    let out_of_memory = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let internal = device.push_error_scope(wgpu::ErrorFilter::Internal);
    let value = work();
    let internal = pollster::block_on(internal.pop());
    let validation = pollster::block_on(validation.pop());
    let out_of_memory = pollster::block_on(out_of_memory.pop());
    (value, out_of_memory.or(validation).or(internal))
}

/// The median time of each variant's attention, submit to GPU idle.
#[derive(Clone, Copy, Debug)]
pub struct AttentionTimes {
    /// The shape timed.
    pub shape: Shape,
    /// Runs per variant.
    pub runs: usize,
    /// No bias.
    pub plain: Duration,
    /// ALiBi computed inline by `ALIBI_WGSL`.
    pub fused: Duration,
    /// ALiBi read from `forward(i, j)`'s tensor (generated before the timing, as a cache
    /// hit in a decode loop would serve it).
    pub materialized: Duration,
}

impl AttentionTimes {
    /// `fused / plain`: what computing ALiBi inline costs (the issue asks for <= 1.05).
    pub fn fused_attention_over_plain(&self) -> f64 {
        self.fused.as_secs_f64() / self.plain.as_secs_f64()
    }

    /// `materialized / plain`: what reading the bias tensor costs.
    pub fn materialized_attention_over_plain(&self) -> f64 {
        self.materialized.as_secs_f64() / self.plain.as_secs_f64()
    }
}

/// Times the three variants of `shape`'s attention on `device`: one untimed run of each,
/// then `runs` rounds that run plain, fused and materialized in turn (so that a slow
/// moment of the machine hits all three alike), each one submit and a wait until the GPU
/// is idle; the medians.
///
/// # Errors
/// As [`Attention::new`] and [`Attention::run`]; `runs == 0`.
pub fn attention_ratios(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    shape: Shape,
    runs: usize,
) -> Result<AttentionTimes, Error> {
    if runs == 0 {
        return Err("attention_ratios needs at least one run".into());
    }
    let attention = Attention::new(device, queue, shape, 1)?;
    for variant in Variant::ALL {
        attention.run(variant)?;
    }
    let mut times: [Vec<Duration>; 3] = Default::default();
    for _ in 0..runs {
        for (variant, times) in Variant::ALL.into_iter().zip(&mut times) {
            let start = Instant::now();
            attention.run(variant)?;
            times.push(start.elapsed());
        }
    }
    let [plain, fused, materialized] = times.map(|mut times| {
        times.sort_unstable();
        times[times.len() / 2]
    });
    Ok(AttentionTimes {
        shape,
        runs,
        plain,
        fused,
        materialized,
    })
}
