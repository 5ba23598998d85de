//! The score kernel (`shaders/add_bias.wgsl`): ALiBi added in place into the caller's
//! attention scores, its pipelines (built on first use, per element type) and the
//! recording of its dispatches into the caller's encoder.

use std::sync::OnceLock;

use crate::dtype::BiasDtype;
use crate::error::Result;
use crate::gpu::context::GpuContext;
use crate::gpu::kernel::SLOPE_VEC4S;
use crate::gpu::scope::Work;

mod plan;

use plan::ScoreParams;
pub(crate) use plan::{check_score_fits, plan_score_windows, ScoreShape, ScoreWindow};

/// The body of the score kernel: it reads and writes `Score` and rounds with `to_score`,
/// which one of the `shaders/scores/` files defines.
pub(crate) const ADD_BIAS_WGSL: &str = include_str!("../../shaders/add_bias.wgsl");
/// `shaders/scores/f32.wgsl`: f32 scores.
pub(crate) const SCORES_F32_WGSL: &str = include_str!("../../shaders/scores/f32.wgsl");
/// `shaders/scores/f16.wgsl`: f16 scores (needs `SHADER_F16`).
pub(crate) const SCORES_F16_WGSL: &str = include_str!("../../shaders/scores/f16.wgsl");

/// Binding numbers of group 0 (keep in sync with the WGSL).
const BINDING_PARAMS: u32 = 0;
const BINDING_SLOPES: u32 = 1;
const BINDING_SCORES: u32 = 2;

/// What a dispatch does to the scores: an entry point of the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ScoreOp {
    /// `scores * scale + bias`, future keys `-inf` when causal.
    AddBias,
    /// `scores * scale` alone: the same loads and stores, the baseline of the bench.
    // The bench's hook, `time_add_over_scale`, does not exist on the web.
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    ScaleOnly,
}

impl ScoreOp {
    pub(crate) const fn entry_point(self) -> &'static str {
        match self {
            Self::AddBias => "add_bias",
            Self::ScaleOnly => "scale_scores",
        }
    }
}

/// The kernel's whole source for `dtype`, masking future keys when `causal`: its element
/// file, the `CAUSAL` constant, then the body.
pub(crate) fn score_source(dtype: BiasDtype, causal: bool) -> String {
    let element = match dtype {
        BiasDtype::F32 => SCORES_F32_WGSL,
        BiasDtype::F16 => SCORES_F16_WGSL,
    };
    format!("{element}\nconst CAUSAL: bool = {causal};\n{ADD_BIAS_WGSL}")
}

/// A module's score kernels, one per element type, each built on its first use (most
/// modules never add into scores, and a pipeline costs a shader compilation).
#[derive(Default)]
pub(crate) struct ScoreKernels {
    f32: OnceLock<ScoreKernel>,
    f16: OnceLock<ScoreKernel>,
}

impl ScoreKernels {
    /// The kernel for `dtype` (supported: see [`GpuContext::require`]),
    /// masking future keys when `causal` (a module's mask never changes, so one kernel
    /// per element type serves it).
    pub fn get(&self, gpu: &GpuContext, dtype: BiasDtype, causal: bool) -> Result<&ScoreKernel> {
        let cell = match dtype {
            BiasDtype::F32 => &self.f32,
            BiasDtype::F16 => &self.f16,
        };
        if let Some(kernel) = cell.get() {
            return Ok(kernel);
        }
        // Two threads may both build it; one keeps its kernel, the other's is dropped.
        let kernel = gpu.run(Work::named("building the score pipeline"), || {
            ScoreKernel::new(&gpu.device, dtype, causal)
        })?;
        Ok(cell.get_or_init(|| kernel))
    }
}

/// The shader module and layouts of one element type, its add pipeline, and the
/// scale-only pipeline, built when the bench first asks for it.
pub(crate) struct ScoreKernel {
    module: wgpu::ShaderModule,
    layout: wgpu::BindGroupLayout,
    pipeline_layout: wgpu::PipelineLayout,
    add: wgpu::ComputePipeline,
    scale_only: OnceLock<wgpu::ComputePipeline>,
    params_stride: u64,
}

impl ScoreKernel {
    fn new(device: &wgpu::Device, dtype: BiasDtype, causal: bool) -> Self {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("add_bias.wgsl"),
            source: wgpu::ShaderSource::Wgsl(score_source(dtype, causal).into()),
        });
        let uniform = |binding, size: usize| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: false,
                min_binding_size: wgpu::BufferSize::new(size as u64),
            },
            count: None,
        };
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("alibi scores"),
            entries: &[
                uniform(BINDING_PARAMS, std::mem::size_of::<ScoreParams>()),
                uniform(BINDING_SLOPES, SLOPE_VEC4S * 16),
                wgpu::BindGroupLayoutEntry {
                    binding: BINDING_SCORES,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage { read_only: false },
                        has_dynamic_offset: false,
                        // A storage binding is a multiple of 4 bytes.
                        min_binding_size: wgpu::BufferSize::new(4),
                    },
                    count: None,
                },
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("alibi scores"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let add = Self::pipeline(device, &pipeline_layout, &module, ScoreOp::AddBias);
        let alignment = u64::from(device.limits().min_uniform_buffer_offset_alignment);
        Self {
            module,
            layout,
            pipeline_layout,
            add,
            scale_only: OnceLock::new(),
            params_stride: (std::mem::size_of::<ScoreParams>() as u64).next_multiple_of(alignment),
        }
    }

    fn pipeline(
        device: &wgpu::Device,
        layout: &wgpu::PipelineLayout,
        module: &wgpu::ShaderModule,
        op: ScoreOp,
    ) -> wgpu::ComputePipeline {
        device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(op.entry_point()),
            layout: Some(layout),
            module,
            entry_point: Some(op.entry_point()),
            compilation_options: Default::default(),
            cache: None,
        })
    }

    /// Records `op` over `windows` of `scores` (at least the bytes of the shape they were
    /// planned for) into the caller's `encoder`.
    pub fn encode(
        &self,
        gpu: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        slopes: &wgpu::Buffer,
        windows: &[ScoreWindow],
        scores: &wgpu::Buffer,
        op: ScoreOp,
    ) -> Result<()> {
        let stride = self.params_stride as usize;
        let size = std::mem::size_of::<ScoreParams>();
        let mut params = vec![0u8; stride * windows.len()];
        for (slot, window) in params.chunks_exact_mut(stride).zip(windows) {
            slot[..size].copy_from_slice(bytemuck::bytes_of(&window.params));
        }
        let usage = wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST;
        let params_buffer =
            gpu.create_buffer("alibi score params", params.len() as u64, usage, false)?;
        gpu.run(Work::named("recording the score update"), || {
            // Written through the queue, so it lands before the caller's encoder is
            // submitted, whenever that is.
            gpu.queue.write_buffer(&params_buffer, 0, &params);
            let pipeline = match op {
                ScoreOp::AddBias => &self.add,
                ScoreOp::ScaleOnly => self.scale_only.get_or_init(|| {
                    Self::pipeline(&gpu.device, &self.pipeline_layout, &self.module, op)
                }),
            };
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(op.entry_point()),
                timestamp_writes: None,
            });
            pass.set_pipeline(pipeline);
            for (index, window) in windows.iter().enumerate() {
                let buffer = |buffer, offset, size| {
                    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer,
                        offset,
                        size: wgpu::BufferSize::new(size),
                    })
                };
                let bind_group = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("alibi score window"),
                    layout: &self.layout,
                    entries: &[
                        wgpu::BindGroupEntry {
                            binding: BINDING_PARAMS,
                            resource: buffer(
                                &params_buffer,
                                index as u64 * self.params_stride,
                                size as u64,
                            ),
                        },
                        wgpu::BindGroupEntry {
                            binding: BINDING_SLOPES,
                            resource: slopes.as_entire_binding(),
                        },
                        wgpu::BindGroupEntry {
                            binding: BINDING_SCORES,
                            resource: buffer(scores, window.bind_offset, window.bind_size),
                        },
                    ],
                });
                pass.set_bind_group(0, &bind_group, &[]);
                let [x, y, z] = window.groups;
                pass.dispatch_workgroups(x, y, z);
            }
        })
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;
