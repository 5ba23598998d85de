//! The compute pipelines that write a bias tensor (the generator, and the generator at
//! custom positions), built once per module, and the recording of their dispatches.

use crate::dtype::BiasDtype;
use crate::gpu::kernel::{
    GenerateParams, Kernel, PositionLayout, BINDING_BIAS, BINDING_KEY_POSITIONS, BINDING_PARAMS,
    BINDING_POSITION_LAYOUT, BINDING_QUERY_POSITIONS, BINDING_SLOPES, SLOPE_VEC4S,
};
use crate::gpu::windows::Window;

/// The pipeline and layout of one kernel for one element type, built once per module.
pub(crate) struct Generator {
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
    params_stride: u64,
}

impl Generator {
    /// The `kernel` storing `dtype` (f16 needs the device's `SHADER_F16`), masking future
    /// keys when `causal`.
    pub fn new(device: &wgpu::Device, kernel: Kernel, dtype: BiasDtype, causal: bool) -> Self {
        let descriptor = wgpu::ShaderModuleDescriptor {
            label: Some(kernel.entry_point()),
            source: wgpu::ShaderSource::Wgsl(kernel.source(dtype, causal).into()),
        };
        let module = match kernel {
            // SAFETY: the generator's only dynamic index is its store
            // `bias[row_start + col4]`, and `plan_windows` places every such index of every
            // window inside that window's binding (its tests check each index of many
            // plans). Without wgpu's runtime bounds checks the store is a quarter faster on
            // lavapipe, where stores dominate.
            Kernel::Bias => unsafe {
                device.create_shader_module_trusted(
                    descriptor,
                    wgpu::ShaderRuntimeChecks::unchecked(),
                )
            },
            // It also reads the caller's positions: wgpu keeps its bounds checks.
            Kernel::Positions => device.create_shader_module(descriptor),
        };
        let buffer = |binding, ty, size: u64| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty,
                has_dynamic_offset: false,
                min_binding_size: wgpu::BufferSize::new(size),
            },
            count: None,
        };
        let uniform = wgpu::BufferBindingType::Uniform;
        let storage = |read_only| wgpu::BufferBindingType::Storage { read_only };
        let mut entries = vec![
            buffer(
                BINDING_PARAMS,
                uniform,
                std::mem::size_of::<GenerateParams>() as u64,
            ),
            buffer(BINDING_SLOPES, uniform, SLOPE_VEC4S as u64 * 16),
            // At least one stored vec4.
            buffer(BINDING_BIAS, storage(false), 4 * dtype.size() as u64),
        ];
        if kernel == Kernel::Positions {
            entries.extend([
                buffer(
                    BINDING_POSITION_LAYOUT,
                    uniform,
                    std::mem::size_of::<PositionLayout>() as u64,
                ),
                buffer(BINDING_QUERY_POSITIONS, storage(true), 4),
                buffer(BINDING_KEY_POSITIONS, storage(true), 4),
            ]);
        }
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("alibi generator"),
            entries: &entries,
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("alibi generator"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("alibi generator"),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some(kernel.entry_point()),
            compilation_options: Default::default(),
            cache: None,
        });
        let alignment = u64::from(device.limits().min_uniform_buffer_offset_alignment);
        Self {
            pipeline,
            layout,
            params_stride: (std::mem::size_of::<GenerateParams>() as u64)
                .next_multiple_of(alignment),
        }
    }

    /// A slope uniform holding `slopes` (at most `MAX_HEADS`), zero after them.
    pub fn slope_buffer(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        slopes: &[f32],
    ) -> wgpu::Buffer {
        let mut padded = vec![0.0f32; SLOPE_VEC4S * 4];
        padded[..slopes.len()].copy_from_slice(slopes);
        let buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("alibi slopes"),
            size: (padded.len() * 4) as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        queue.write_buffer(&buffer, 0, bytemuck::cast_slice(&padded));
        buffer
    }

    /// Records the generation of `windows` into `output`, a buffer of at least the bytes of
    /// the shape they were planned for; every element of that shape is written. `extra`
    /// are the kernel's own bindings (the positions kernel's), the same for every window.
    #[allow(clippy::too_many_arguments)]
    pub fn encode(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        encoder: &mut wgpu::CommandEncoder,
        slopes: &wgpu::Buffer,
        windows: &[Window],
        output: &wgpu::Buffer,
        extra: &[wgpu::BindGroupEntry<'_>],
    ) {
        let stride = self.params_stride as usize;
        let mut params = vec![0u8; stride * windows.len()];
        for (slot, window) in params.chunks_exact_mut(stride).zip(windows) {
            slot[..std::mem::size_of::<GenerateParams>()]
                .copy_from_slice(bytemuck::bytes_of(&window.params));
        }
        let params_buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("alibi generate params"),
            size: params.len() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        // Written through the queue, so it lands before any encoder submitted after it.
        queue.write_buffer(&params_buffer, 0, &params);

        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("alibi generate"),
            timestamp_writes: None,
        });
        pass.set_pipeline(&self.pipeline);
        for (index, window) in windows.iter().enumerate() {
            let mut entries = vec![
                wgpu::BindGroupEntry {
                    binding: BINDING_PARAMS,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: &params_buffer,
                        offset: index as u64 * self.params_stride,
                        size: wgpu::BufferSize::new(std::mem::size_of::<GenerateParams>() as u64),
                    }),
                },
                wgpu::BindGroupEntry {
                    binding: BINDING_SLOPES,
                    resource: slopes.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: BINDING_BIAS,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: output,
                        offset: window.bind_offset,
                        size: wgpu::BufferSize::new(window.bind_size),
                    }),
                },
            ];
            entries.extend(extra.iter().cloned());
            let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("alibi generate window"),
                layout: &self.layout,
                entries: &entries,
            });
            pass.set_bind_group(0, &bind_group, &[]);
            let [x, y, z] = window.groups;
            pass.dispatch_workgroups(x, y, z);
        }
    }
}
