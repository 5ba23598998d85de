//! A kernel that only scales attention scores in place, `scores = scores * scale`: the
//! baseline that `alibi bench`'s `add_over_scale` divides `add_to_scores` by. It is the
//! CLI's own (the library exposes no such kernel), written to do what the library's add
//! kernel does minus the bias: the same loads and stores, the same workgroups and the same
//! windows ([`plan`]), so the ratio measures the bias and nothing else.
//! [`time_add_over_scale`] is the figure.

mod plan;
mod timing;

use alibi_wgpu::{AlibiError, BiasDtype};

pub use plan::ScoreShape;
use plan::{Limits, ScaleParams};
pub use timing::time_add_over_scale;

/// The kernel's body; [`prelude`] defines its element type before it.
const SCALE_SCORES_WGSL: &str = include_str!("scale_scores.wgsl");

/// Binding numbers of group 0 (keep in sync with the WGSL).
const BINDING_PARAMS: u32 = 0;
const BINDING_SCORES: u32 = 1;

/// `Score` and `to_score` for `dtype`, as the library's `shaders/scores/*.wgsl` define
/// them: f32 unchanged; f16 clamped to the largest finite f16, then converted (to nearest
/// even), so that a large score never becomes an infinity.
fn prelude(dtype: BiasDtype) -> &'static str {
    match dtype {
        BiasDtype::F16 => {
            "enable f16;\nalias Score = f16;\n\
             fn to_score(value: f32) -> Score { return Score(clamp(value, -65504.0, 65504.0)); }\n"
        }
        _ => "alias Score = f32;\nfn to_score(value: f32) -> Score { return value; }\n",
    }
}

/// The scale-only pipeline for one element type.
pub struct ScaleOnly {
    layout: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
    /// Bytes from one window's parameters to the next in the uniform buffer.
    params_stride: u64,
    dtype: BiasDtype,
}

impl ScaleOnly {
    /// Builds the pipeline for scores of `dtype`.
    ///
    /// # Errors
    /// [`AlibiError::Unsupported`] for f16 on a device without `SHADER_F16`, as
    /// `add_to_scores` says of f16 scores there.
    pub fn new(device: &wgpu::Device, dtype: BiasDtype) -> Result<Self, AlibiError> {
        if dtype == BiasDtype::F16 && !device.features().contains(wgpu::Features::SHADER_F16) {
            return Err(AlibiError::Unsupported {
                what: "f16 scores",
                reason: "the device lacks wgpu::Features::SHADER_F16",
            });
        }
        let source = format!("{}{SCALE_SCORES_WGSL}", prelude(dtype));
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("scale_scores.wgsl"),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        let entry = |binding, ty, size| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty,
                has_dynamic_offset: false,
                min_binding_size: wgpu::BufferSize::new(size),
            },
            count: None,
        };
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("scale-only scores"),
            entries: &[
                entry(
                    BINDING_PARAMS,
                    wgpu::BufferBindingType::Uniform,
                    std::mem::size_of::<ScaleParams>() as u64,
                ),
                // A storage binding is a multiple of 4 bytes.
                entry(
                    BINDING_SCORES,
                    wgpu::BufferBindingType::Storage { read_only: false },
                    4,
                ),
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("scale-only scores"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("scale_scores"),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some("scale_scores"),
            compilation_options: Default::default(),
            cache: None,
        });
        let alignment = u64::from(device.limits().min_uniform_buffer_offset_alignment);
        Ok(Self {
            layout,
            pipeline,
            params_stride: (std::mem::size_of::<ScaleParams>() as u64).next_multiple_of(alignment),
            dtype,
        })
    }

    /// Records `scores = scores * scale` over `shape` (of this kernel's element type,
    /// row-major at the start of `scores`, a `STORAGE` buffer of at least
    /// [`ScoreShape::bytes`]) into `encoder`; nothing for an empty shape. The windows'
    /// parameters go through `queue`, so they land before the encoder is submitted.
    pub fn encode(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        encoder: &mut wgpu::CommandEncoder,
        scores: &wgpu::Buffer,
        shape: ScoreShape,
    ) -> Result<(), AlibiError> {
        assert_eq!(
            shape.dtype, self.dtype,
            "scores of the kernel's element type"
        );
        if shape.batch == 0 || shape.heads == 0 || shape.rows == 0 || shape.cols == 0 {
            return Ok(());
        }
        let windows = plan::plan(shape, Limits::from(&device.limits()))?;
        let stride = self.params_stride as usize;
        let size = std::mem::size_of::<ScaleParams>();
        let mut params = vec![0u8; stride * windows.len()];
        for (slot, window) in params.chunks_exact_mut(stride).zip(&windows) {
            slot[..size].copy_from_slice(bytemuck::bytes_of(&window.params));
        }
        let params_buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("scale-only params"),
            size: params.len() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        queue.write_buffer(&params_buffer, 0, &params);
        let binding = |buffer, offset, size| {
            wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer,
                offset,
                size: wgpu::BufferSize::new(size),
            })
        };
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("scale_scores"),
            timestamp_writes: None,
        });
        pass.set_pipeline(&self.pipeline);
        for (index, window) in windows.iter().enumerate() {
            let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("scale-only window"),
                layout: &self.layout,
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: BINDING_PARAMS,
                        resource: binding(
                            &params_buffer,
                            index as u64 * self.params_stride,
                            size as u64,
                        ),
                    },
                    wgpu::BindGroupEntry {
                        binding: BINDING_SCORES,
                        resource: binding(scores, window.bind_offset, window.bind_size),
                    },
                ],
            });
            pass.set_bind_group(0, &bind_group, &[]);
            let [x, y, z] = window.groups;
            pass.dispatch_workgroups(x, y, z);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
