//! Generating a bias tensor into a buffer on a module's generation path: the WGSL kernel,
//! recorded and submitted, or (CPU adapters, native only) the host writing through a
//! mapping. Both write every element of the shape, padding heads included, so a reused
//! buffer needs no clearing.

use std::sync::OnceLock;

use crate::dtype::BiasDtype;
use crate::error::Result;
use crate::generation::{GenerateShape, GenerationPath};
use crate::gpu::bias::dense::DenseKernels;
use crate::gpu::bias::kernel::{BiasKernel, GenerateParams};
use crate::gpu::bias::positions::{self, PositionData};
#[cfg(not(target_arch = "wasm32"))]
use crate::gpu::bias::windows::check_fits;
use crate::gpu::bias::windows::plan_windows;
use crate::gpu::device::context::GpuContext;
#[cfg(not(target_arch = "wasm32"))]
use crate::gpu::device::map::map_buffer;
use crate::gpu::device::scope::Work;
use crate::gpu::dispatch::{slope_buffer, Buffers, Window, WindowedKernel};
#[cfg(not(target_arch = "wasm32"))]
use crate::host::mapped::write_mapped;
use crate::host::Tee;

type Kernel = WindowedKernel<GenerateParams>;

/// A set of slopes: the values (for the host path) and the uniform holding them (for the
/// kernel).
pub(crate) struct SlopeUniform {
    pub values: Vec<f32>,
    pub buffer: wgpu::Buffer,
}

/// What writes a module's biases, on its generation path: its bias kernels, built once or
/// on first use, and the host path's writing.
pub(crate) struct BiasWriter {
    path: GenerationPath,
    /// The kernel of the module's biases (`dtype`, `causal`).
    own: Kernel,
    /// The plain f32 kernel of `get_bias` (f32 and unmasked whatever the module's biases
    /// are) when `own` is not that one: built on first use.
    plain: OnceLock<Kernel>,
    /// The kernel at custom positions, for the module's element type and mask, built on
    /// first use (most modules never need it).
    positions: OnceLock<Kernel>,
    dtype: BiasDtype,
    causal: bool,
    /// The dense kernels, each built on first use.
    dense: DenseKernels,
}

impl BiasWriter {
    /// Builds the kernel's pipeline for the module's biases (`dtype`, `causal`), which every
    /// path keeps: `encode_forward` always records the kernel. `path` is already resolved.
    /// f16 builds on every device (in words without `SHADER_F16`).
    pub fn new(
        gpu: &GpuContext,
        path: GenerationPath,
        dtype: BiasDtype,
        causal: bool,
    ) -> Result<Self> {
        Ok(Self {
            path,
            own: BiasKernel::Generate.build(gpu, dtype, causal)?,
            plain: OnceLock::new(),
            positions: OnceLock::new(),
            dtype,
            causal,
            dense: DenseKernels::default(),
        })
    }

    /// The kernel that writes `shape`: the module's own, or the plain f32 one (`get_bias`),
    /// built on first use.
    fn kernel(&self, gpu: &GpuContext, shape: GenerateShape) -> Result<&Kernel> {
        if (shape.dtype, shape.causal) == (self.dtype, self.causal) {
            return Ok(&self.own);
        }
        debug_assert_eq!((shape.dtype, shape.causal), (BiasDtype::F32, false));
        built_once(&self.plain, || {
            BiasKernel::Generate.build(gpu, BiasDtype::F32, false)
        })
    }

    /// Uploads `values` as a slope uniform.
    pub fn slopes(&self, gpu: &GpuContext, values: Vec<f32>) -> Result<SlopeUniform> {
        let buffer = slope_buffer(gpu, &values)?;
        Ok(SlopeUniform { values, buffer })
    }

    pub fn path(&self) -> GenerationPath {
        self.path
    }

    /// Generates `shape` into `reuse`, or a new buffer: on the host path written from the
    /// host (and copied into `tee` too, when given) before it returns; on the kernel path
    /// submitted, not waited for (`tee` must then be `None`).
    pub fn generate(
        &self,
        gpu: &GpuContext,
        slopes: &SlopeUniform,
        shape: GenerateShape,
        reuse: Option<wgpu::Buffer>,
        tee: Option<Tee<'_>>,
    ) -> Result<wgpu::Buffer> {
        #[cfg(not(target_arch = "wasm32"))]
        if self.path == GenerationPath::HostMapped {
            let (bytes, _) = check_fits(shape, gpu.limits)?;
            let (buffer, mapped) = match reuse {
                Some(buffer) => (buffer, false),
                None => (self.new_buffer(gpu, bytes, true)?, true),
            };
            self.write_on_host(gpu, &slopes.values, shape, (0, bytes), &buffer, mapped, tee)?;
            return Ok(buffer);
        }
        debug_assert!(tee.is_none(), "only the host-mapped path tees");
        let windows = plan(gpu, shape)?;
        let buffer = match reuse {
            Some(buffer) => buffer,
            None => self.new_buffer(gpu, bytes(shape), false)?,
        };
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        self.record(gpu, &mut encoder, slopes, shape, &windows, &buffer)?;
        submit(gpu, encoder, "submitting the bias generation")?;
        Ok(buffer)
    }

    /// Generates `shape` (`total_heads` = batch items x heads per item, `cols` the keys
    /// rounded up to a multiple of 4, padding columns first) at these positions into a new
    /// buffer, with the positions kernel on every generation path; submitted, not waited
    /// for.
    pub fn generate_positions(
        &self,
        gpu: &GpuContext,
        slopes: &SlopeUniform,
        shape: GenerateShape,
        heads_per_item: usize,
        queries: PositionData<'_>,
        keys: PositionData<'_>,
    ) -> Result<wgpu::Buffer> {
        let windows = plan(gpu, shape)?;
        let kernel = built_once(&self.positions, || {
            BiasKernel::Positions.build(gpu, self.dtype, self.causal)
        })?;
        let output = self.new_buffer(gpu, bytes(shape), false)?;
        let extras = positions::upload(gpu, shape, heads_per_item, queries, keys)?;
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        let buffers = Buffers {
            slopes: &slopes.buffer,
            tensor: &output,
            extras: &extras.each_ref(),
        };
        let what = "recording the bias at custom positions";
        kernel.encode(gpu, &mut encoder, what, &windows, buffers)?;
        submit(gpu, encoder, "submitting the bias at custom positions")?;
        Ok(output)
    }

    /// Records the kernel's generation of `shape` into a new buffer in the caller's
    /// `encoder`, and returns the buffer.
    pub fn encode_new(
        &self,
        gpu: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        slopes: &SlopeUniform,
        shape: GenerateShape,
    ) -> Result<wgpu::Buffer> {
        let windows = plan(gpu, shape)?;
        let buffer = self.new_buffer(gpu, bytes(shape), false)?;
        self.record(gpu, encoder, slopes, shape, &windows, &buffer)?;
        Ok(buffer)
    }

    /// Records the kernel's generation of `shape` into the caller's `target` from byte 0:
    /// a dense tensor too when `shape`'s rows are whole vec4s (no padding columns).
    /// `false`, with nothing recorded, where the strided plan cannot take the shape (past
    /// 2^32 vec4s, which the dense kernels index from each window instead).
    pub fn encode_into(
        &self,
        gpu: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        slopes: &SlopeUniform,
        shape: GenerateShape,
        target: &wgpu::Buffer,
    ) -> Result<bool> {
        let Ok(windows) = plan(gpu, shape) else {
            return Ok(false);
        };
        self.record(gpu, encoder, slopes, shape, &windows, target)?;
        Ok(true)
    }

    fn record(
        &self,
        gpu: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        slopes: &SlopeUniform,
        shape: GenerateShape,
        windows: &[Window<GenerateParams>],
        target: &wgpu::Buffer,
    ) -> Result<()> {
        let buffers = Buffers {
            slopes: &slopes.buffer,
            tensor: target,
            extras: &[],
        };
        let what = "recording the bias generation";
        self.kernel(gpu, shape)?
            .encode(gpu, encoder, what, windows, buffers)
    }

    /// Writes the dense `shape` (`cols` its keys, no padding) into the caller's `target`
    /// (`MAP_WRITE`, unmapped, checked large enough) from byte `byte_offset` (a multiple of
    /// 8), from the host, blocking until the device lets it be mapped.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn write_into(
        &self,
        gpu: &GpuContext,
        slopes: &SlopeUniform,
        shape: GenerateShape,
        byte_offset: u64,
        target: &wgpu::Buffer,
    ) -> Result<()> {
        let end = byte_offset + bytes(shape).next_multiple_of(4);
        self.write_on_host(
            gpu,
            &slopes.values,
            shape,
            (byte_offset, end),
            target,
            false,
            None,
        )
    }

    /// A new buffer holding the dense `shape`, written from the host through its mapping at
    /// creation; usage `STORAGE | COPY_SRC | COPY_DST | MAP_WRITE`: the caller's.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn write_dense_new(
        &self,
        gpu: &GpuContext,
        slopes: &SlopeUniform,
        shape: GenerateShape,
    ) -> Result<wgpu::Buffer> {
        let end = bytes(shape).next_multiple_of(4);
        let usage = dense_usage() | wgpu::BufferUsages::MAP_WRITE;
        let buffer = gpu.create_buffer("alibi dense bias", end, usage, true)?;
        self.write_on_host(gpu, &slopes.values, shape, (0, end), &buffer, true, None)?;
        Ok(buffer)
    }

    /// The dense kernels.
    pub fn dense(&self) -> &DenseKernels {
        &self.dense
    }

    /// A new buffer of `bytes`, with the usage of the module's buffers: no COPY_DST, so
    /// nothing handed out can be overwritten by a copy or `write_buffer`; on the host path
    /// also MAP_WRITE, and then mapped at creation when asked.
    fn new_buffer(&self, gpu: &GpuContext, bytes: u64, mapped: bool) -> Result<wgpu::Buffer> {
        let mut usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
        if self.path == GenerationPath::HostMapped {
            usage |= wgpu::BufferUsages::MAP_WRITE;
        }
        gpu.create_buffer("alibi bias", bytes, usage, mapped)
    }

    /// Writes `shape` (`bytes` long) into `buffer` from the host: maps it for writing first
    /// unless it is already mapped (at creation), blocking until the device has finished
    /// earlier work on it; unmaps it however this ends.
    #[cfg(not(target_arch = "wasm32"))]
    #[allow(clippy::too_many_arguments)]
    fn write_on_host(
        &self,
        gpu: &GpuContext,
        slopes: &[f32],
        shape: GenerateShape,
        (byte_offset, bytes): (u64, u64),
        buffer: &wgpu::Buffer,
        mapped: bool,
        tee: Option<Tee<'_>>,
    ) -> Result<()> {
        if !mapped {
            // On failure a module's own buffer is dropped with the error; a caller's may
            // stay marked as mapping in wgpu (write_into says so).
            let operation = "writing the bias from the host";
            gpu.run(Work::named(operation), || {
                pollster::block_on(map_buffer(
                    &gpu.device,
                    buffer,
                    bytes,
                    wgpu::MapMode::Write,
                    operation,
                ))
            })?
            .map_err(|error| gpu.explain(error))?;
        }
        write_mapped(buffer, byte_offset, shape, slopes, tee).map_err(|error| gpu.explain(error))
    }
}

/// The kernel in `cell`, built by `build` on first use. Another thread may build one
/// meanwhile: either serves.
fn built_once(cell: &OnceLock<Kernel>, build: impl FnOnce() -> Result<Kernel>) -> Result<&Kernel> {
    match cell.get() {
        Some(built) => Ok(built),
        None => {
            let built = build()?;
            Ok(cell.get_or_init(|| built))
        }
    }
}

/// The dispatch windows of `shape` on this device, checked against its buffer and binding
/// limits.
fn plan(gpu: &GpuContext, shape: GenerateShape) -> Result<Vec<Window<GenerateParams>>> {
    plan_windows(shape, gpu.limits)
}

/// The usage of the dense tensors handed to callers: bindable, copyable both ways.
pub(crate) fn dense_usage() -> wgpu::BufferUsages {
    wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST
}

/// The bytes of a shape its plan has checked: they do not overflow.
fn bytes(shape: GenerateShape) -> u64 {
    shape.bytes().unwrap_or(u64::MAX)
}

/// Submits `encoder`, `what` naming the work in errors.
fn submit(gpu: &GpuContext, encoder: wgpu::CommandEncoder, what: &'static str) -> Result<()> {
    gpu.run(Work::named(what), || {
        gpu.queue.submit([encoder.finish()]);
    })
}
