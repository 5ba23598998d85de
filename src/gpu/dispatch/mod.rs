//! The windowed dispatch every kernel is a user of. A kernel is a WGSL entry point over one
//! tensor too large for one binding or one dispatch: its planner cuts the tensor into
//! windows (`fit` checks what fits), and [`WindowedKernel::encode`] records one dispatch
//! per window, each with its own slice of the per-window uniform and its own binding of the
//! tensor. Every kernel binds the same three things first (the per-window uniform, the
//! slopes, the window of the tensor), then its own, bound whole.

pub(crate) mod fit;
pub(crate) mod wgsl;

use std::marker::PhantomData;

use crate::dtype::BiasDtype;
use crate::error::Result;
use crate::gpu::device::context::GpuContext;
use crate::gpu::device::scope::Work;
use wgsl::{COLUMNS_PER_WORKGROUP, SLOPE_VEC4S};

/// Binding numbers of group 0 every kernel shares; a kernel's own come after them.
pub(crate) const BINDING_PARAMS: u32 = 0;
/// See [`BINDING_PARAMS`].
pub(crate) const BINDING_SLOPES: u32 = 1;
/// See [`BINDING_PARAMS`]: the window of the tensor the kernel writes.
pub(crate) const BINDING_WINDOW: u32 = 2;

/// What a causal kernel gives future keys, as a uniform's `future_bits`: -inf.
pub(crate) const FUTURE_BITS: u32 = 0xff80_0000;
const _: () = assert!(f32::NEG_INFINITY.to_bits() == FUTURE_BITS);

/// A binding of a kernel's own, after the shared ones, bound whole: WGSL names its number
/// `BINDING_{name}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Extra {
    pub name: &'static str,
    pub ty: wgpu::BufferBindingType,
    pub min_bytes: u64,
}

/// Everything a kernel's WGSL and pipeline are built from.
#[derive(Clone, Debug)]
pub(crate) struct KernelSpec {
    pub entry_point: &'static str,
    /// The element type of the tensor it writes.
    pub dtype: BiasDtype,
    /// f16 rounded in integer arithmetic and stored in u32 words (`f16_packed.wgsl`), not
    /// WGSL's `f16`: on devices without `SHADER_F16`, and in the dense kernels.
    pub f16_words: bool,
    /// Whether it masks future keys: a constant of the source, so a plain kernel carries
    /// no mask.
    pub causal: bool,
    /// Its WGSL after the shared parts: its own parts, then its body.
    pub parts: Vec<&'static str>,
    /// The least size of a window's binding: one unit the kernel indexes, rounded up to a
    /// word.
    pub window_min_bytes: u64,
    pub extras: &'static [Extra],
}

impl KernelSpec {
    /// The whole WGSL source ([`wgsl::compose`]).
    pub fn source(&self) -> String {
        wgsl::compose(self)
    }

    /// The kernel's own bindings with their numbers.
    pub fn extra_bindings(&self) -> impl Iterator<Item = (u32, &Extra)> {
        (BINDING_WINDOW + 1..).zip(self.extras)
    }
}

/// One dispatch: a window of whole rows, its uniform `params`, bound at an aligned offset.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Window<P> {
    pub params: P,
    pub bind_offset: u64,
    pub bind_size: u64,
    pub groups: [u32; 3],
    /// The window of the kernel's first own binding, `(offset, size)`, when that binding
    /// is windowed too (the dense copy's source); `None`: bound whole.
    pub source: Option<(u64, u64)>,
}

/// Workgroups along x for rows of `cols` columns.
pub(crate) fn column_groups(cols: usize, limits_max: u32) -> u32 {
    let groups = cols.div_ceil(COLUMNS_PER_WORKGROUP);
    debug_assert!(
        groups <= limits_max as usize,
        "cols <= 2^24 keeps this under 65535"
    );
    groups as u32
}

/// The buffers a recording binds: the slopes, the tensor it windows, and the kernel's own
/// ([`KernelSpec::extras`], in their order).
pub(crate) struct Buffers<'a> {
    pub slopes: &'a wgpu::Buffer,
    pub tensor: &'a wgpu::Buffer,
    pub extras: &'a [&'a wgpu::Buffer],
}

/// A kernel's pipeline and layout, built once, whose per-window uniform is a `P`.
pub(crate) struct WindowedKernel<P> {
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
    params_stride: u64,
    extras: usize,
    params: PhantomData<fn(P)>,
}

impl<P: bytemuck::Pod> WindowedKernel<P> {
    /// Builds `spec`'s kernel with wgpu's runtime bounds checks.
    pub fn new(gpu: &GpuContext, spec: &KernelSpec) -> Result<Self> {
        // SAFETY: wgpu keeps every runtime check.
        unsafe { Self::build(gpu, spec, wgpu::ShaderRuntimeChecks::checked()) }
    }

    /// Builds `spec`'s kernel without wgpu's runtime checks.
    ///
    /// # Safety
    /// Every index the kernel computes from a window's uniform must lie inside that
    /// window's bindings, for every window its planner makes.
    pub unsafe fn new_unchecked(gpu: &GpuContext, spec: &KernelSpec) -> Result<Self> {
        // SAFETY: the caller vouches for every index.
        unsafe { Self::build(gpu, spec, wgpu::ShaderRuntimeChecks::unchecked()) }
    }

    /// # Safety
    /// As `wgpu::Device::create_shader_module_trusted` with `checks`.
    unsafe fn build(
        gpu: &GpuContext,
        spec: &KernelSpec,
        checks: wgpu::ShaderRuntimeChecks,
    ) -> Result<Self> {
        gpu.run(Work::named("building a kernel pipeline"), || {
            let descriptor = wgpu::ShaderModuleDescriptor {
                label: Some(spec.entry_point),
                source: wgpu::ShaderSource::Wgsl(spec.source().into()),
            };
            // SAFETY: passed on to the caller.
            let module = unsafe { gpu.device.create_shader_module_trusted(descriptor, checks) };
            Self::pipeline(&gpu.device, spec, &module)
        })
    }

    fn pipeline(device: &wgpu::Device, spec: &KernelSpec, module: &wgpu::ShaderModule) -> Self {
        let entry = |binding, ty, bytes: u64| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty,
                has_dynamic_offset: false,
                min_binding_size: wgpu::BufferSize::new(bytes),
            },
            count: None,
        };
        let uniform = wgpu::BufferBindingType::Uniform;
        let mut entries = vec![
            entry(BINDING_PARAMS, uniform, std::mem::size_of::<P>() as u64),
            entry(BINDING_SLOPES, uniform, SLOPE_VEC4S as u64 * 16),
            entry(
                BINDING_WINDOW,
                wgpu::BufferBindingType::Storage { read_only: false },
                spec.window_min_bytes,
            ),
        ];
        entries.extend(
            spec.extra_bindings()
                .map(|(binding, extra)| entry(binding, extra.ty, extra.min_bytes)),
        );
        let label = Some(spec.entry_point);
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label,
            entries: &entries,
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label,
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label,
            layout: Some(&pipeline_layout),
            module,
            entry_point: Some(spec.entry_point),
            compilation_options: Default::default(),
            cache: None,
        });
        let alignment = u64::from(device.limits().min_uniform_buffer_offset_alignment);
        Self {
            pipeline,
            layout,
            params_stride: (std::mem::size_of::<P>() as u64).next_multiple_of(alignment),
            extras: spec.extras.len(),
            params: PhantomData,
        }
    }

    /// Records one dispatch per window into `encoder`, `what` naming the work in errors.
    /// `buffers.tensor` holds at least the bytes of the tensor the windows were planned for.
    pub fn encode(
        &self,
        gpu: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        what: &'static str,
        windows: &[Window<P>],
        buffers: Buffers<'_>,
    ) -> Result<()> {
        Self::encode_each(gpu, encoder, what, &[(self, windows)], buffers)
    }

    /// [`encode`](Self::encode) for several kernels of one uniform type, in their order, in
    /// one compute pass with one uniform buffer for all their windows: a pass and a buffer
    /// cost a CPU adapter tens of microseconds each, which a small tensor notices.
    pub fn encode_each(
        gpu: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        what: &'static str,
        kernels: &[(&Self, &[Window<P>])],
        buffers: Buffers<'_>,
    ) -> Result<()> {
        let size = std::mem::size_of::<P>();
        // One stride for all: it depends on the uniform type and the device only.
        let Some(stride) = kernels.first().map(|(kernel, _)| kernel.params_stride) else {
            return Ok(());
        };
        let windows = || kernels.iter().flat_map(|(_, windows)| windows.iter());
        let mut params = vec![0u8; stride as usize * windows().count()];
        if params.is_empty() {
            return Ok(());
        }
        for (slot, window) in params.chunks_exact_mut(stride as usize).zip(windows()) {
            slot[..size].copy_from_slice(bytemuck::bytes_of(&window.params));
        }
        gpu.run(Work::named(what), || {
            let params_buffer = gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("alibi window params"),
                size: params.len() as u64,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            // Written through the queue, so it lands before the encoder is submitted,
            // whenever that is.
            gpu.queue.write_buffer(&params_buffer, 0, &params);
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(what),
                timestamp_writes: None,
            });
            let slice = |buffer, offset, size| {
                wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer,
                    offset,
                    size: wgpu::BufferSize::new(size),
                })
            };
            let placed = kernels
                .iter()
                .flat_map(|(kernel, windows)| windows.iter().map(move |w| (*kernel, w)));
            let mut pipeline = None;
            for (index, (kernel, window)) in placed.enumerate() {
                debug_assert_eq!(buffers.extras.len(), kernel.extras);
                debug_assert_eq!(kernel.params_stride, stride);
                if pipeline != Some(&kernel.pipeline) {
                    pass.set_pipeline(&kernel.pipeline);
                    pipeline = Some(&kernel.pipeline);
                }
                let offset = index as u64 * stride;
                let mut entries = vec![
                    (BINDING_PARAMS, slice(&params_buffer, offset, size as u64)),
                    (BINDING_SLOPES, buffers.slopes.as_entire_binding()),
                    (
                        BINDING_WINDOW,
                        slice(buffers.tensor, window.bind_offset, window.bind_size),
                    ),
                ];
                let extras = (BINDING_WINDOW + 1..).zip(buffers.extras);
                entries.extend(extras.map(|(n, buffer)| match window.source {
                    Some((offset, size)) if n == BINDING_WINDOW + 1 => {
                        (n, slice(buffer, offset, size))
                    }
                    _ => (n, buffer.as_entire_binding()),
                }));
                let entries: Vec<_> = entries
                    .into_iter()
                    .map(|(binding, resource)| wgpu::BindGroupEntry { binding, resource })
                    .collect();
                let bind_group = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("alibi window"),
                    layout: &kernel.layout,
                    entries: &entries,
                });
                pass.set_bind_group(0, &bind_group, &[]);
                let [x, y, z] = window.groups;
                pass.dispatch_workgroups(x, y, z);
            }
        })
    }
}

/// A slope uniform holding `slopes` (at most `MAX_HEADS`), zero after them: what every
/// kernel binds at [`BINDING_SLOPES`].
pub(crate) fn slope_buffer(gpu: &GpuContext, slopes: &[f32]) -> Result<wgpu::Buffer> {
    let mut padded = vec![0.0f32; SLOPE_VEC4S * 4];
    padded[..slopes.len()].copy_from_slice(slopes);
    gpu.run(Work::named("uploading the slopes"), || {
        let buffer = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("alibi slopes"),
            size: (padded.len() * 4) as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        gpu.queue
            .write_buffer(&buffer, 0, bytemuck::cast_slice(&padded));
        buffer
    })
}
