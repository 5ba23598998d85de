//! Generating a bias tensor into a buffer on a module's generation path: the WGSL kernel,
//! recorded and submitted, or (CPU adapters, native only) the host writing through a
//! mapping. Both write every element of the shape, padding heads included, so a reused
//! buffer needs no clearing.

use crate::dtype::BiasDtype;
use crate::error::Result;
use crate::generation::GenerationPath;
use crate::gpu::context::GpuContext;
use crate::gpu::generator::Generator;
#[cfg(not(target_arch = "wasm32"))]
use crate::gpu::host_write::write_mapped;
use crate::gpu::kernel::Kernel;
#[cfg(not(target_arch = "wasm32"))]
use crate::gpu::map::map_buffer;
use crate::gpu::scope::Work;
use crate::gpu::windows::{plan_windows, GenerateShape, Window};
use crate::host::Tee;

/// A set of slopes: the values (for the host path) and the uniform holding them (for the
/// kernel).
pub(crate) struct SlopeUniform {
    pub values: Vec<f32>,
    pub buffer: wgpu::Buffer,
}

/// The generation machinery of one module, built once.
pub(crate) struct BiasWriter {
    path: GenerationPath,
    /// The kernel of the module's biases (`dtype`, `causal`).
    own: Generator,
    /// The plain f32 kernel of `get_bias` (f32 and unmasked whatever the module's biases
    /// are) when `own` is not that one: built on first use.
    plain: std::sync::OnceLock<Generator>,
    /// The kernel at custom positions, for the module's element type and mask, built on
    /// first use (`gpu/positions.rs`).
    pub(super) positions: std::sync::OnceLock<Generator>,
    dtype: BiasDtype,
    causal: bool,
}

impl BiasWriter {
    /// Builds the kernel's pipeline for the module's biases (`dtype`, `causal`), which every
    /// path keeps: `encode_forward` and `encode_into` always record the kernel. `path` is
    /// already resolved.
    ///
    /// # Errors
    /// [`AlibiError::Unsupported`] for f16 on a device without `SHADER_F16`.
    pub fn new(
        gpu: &GpuContext,
        path: GenerationPath,
        dtype: BiasDtype,
        causal: bool,
    ) -> Result<Self> {
        gpu.require(dtype, "f16 biases")?;
        Ok(Self {
            path,
            own: build_generator(gpu, Kernel::Bias, dtype, causal)?,
            plain: std::sync::OnceLock::new(),
            positions: std::sync::OnceLock::new(),
            dtype,
            causal,
        })
    }

    /// The kernel that writes `shape`: the module's own, or the plain f32 one (`get_bias`),
    /// built on first use.
    fn generator(&self, gpu: &GpuContext, shape: GenerateShape) -> Result<&Generator> {
        if (shape.dtype, shape.causal) == (self.dtype, self.causal) {
            return Ok(&self.own);
        }
        debug_assert_eq!((shape.dtype, shape.causal), (BiasDtype::F32, false));
        if let Some(plain) = self.plain.get() {
            return Ok(plain);
        }
        let plain = build_generator(gpu, Kernel::Bias, BiasDtype::F32, false)?;
        // Another thread may have built one meanwhile: either serves.
        Ok(self.plain.get_or_init(|| plain))
    }

    /// Uploads `values` as a slope uniform.
    pub fn slopes(&self, gpu: &GpuContext, values: Vec<f32>) -> Result<SlopeUniform> {
        let buffer = gpu.run(Work::named("uploading the slopes"), || {
            Generator::slope_buffer(&gpu.device, &gpu.queue, &values)
        })?;
        Ok(SlopeUniform { values, buffer })
    }

    pub fn path(&self) -> GenerationPath {
        self.path
    }

    /// The element type of the module's biases.
    pub fn dtype(&self) -> BiasDtype {
        self.dtype
    }

    /// Whether the module's biases mask future keys.
    pub fn causal(&self) -> bool {
        self.causal
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
        let (windows, bytes) = plan(gpu, shape)?;
        #[cfg(not(target_arch = "wasm32"))]
        if self.path == GenerationPath::HostMapped {
            let (buffer, mapped) = match reuse {
                Some(buffer) => (buffer, false),
                None => (self.new_buffer(gpu, bytes, true)?, true),
            };
            self.write_on_host(gpu, &slopes.values, shape, bytes, &buffer, mapped, tee)?;
            return Ok(buffer);
        }
        debug_assert!(tee.is_none(), "only the host-mapped path tees");
        let buffer = match reuse {
            Some(buffer) => buffer,
            None => self.new_buffer(gpu, bytes, false)?,
        };
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        self.record(gpu, &mut encoder, slopes, shape, &windows, &buffer)?;
        gpu.run(Work::named("submitting the bias generation"), || {
            gpu.queue.submit([encoder.finish()]);
        })?;
        Ok(buffer)
    }

    /// Records the kernel's generation of `shape` into `target` (at least the shape's
    /// bytes) in the caller's `encoder`.
    pub fn encode(
        &self,
        gpu: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        slopes: &SlopeUniform,
        shape: GenerateShape,
        target: &wgpu::Buffer,
    ) -> Result<()> {
        let (windows, _) = plan(gpu, shape)?;
        self.record(gpu, encoder, slopes, shape, &windows, target)
    }

    /// [`encode`](Self::encode) into a new buffer, which it returns.
    pub fn encode_new(
        &self,
        gpu: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        slopes: &SlopeUniform,
        shape: GenerateShape,
    ) -> Result<wgpu::Buffer> {
        let (windows, bytes) = plan(gpu, shape)?;
        let buffer = self.new_buffer(gpu, bytes, false)?;
        self.record(gpu, encoder, slopes, shape, &windows, &buffer)?;
        Ok(buffer)
    }

    fn record(
        &self,
        gpu: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        slopes: &SlopeUniform,
        shape: GenerateShape,
        windows: &[Window],
        output: &wgpu::Buffer,
    ) -> Result<()> {
        let generator = self.generator(gpu, shape)?;
        gpu.run(Work::named("recording the bias generation"), || {
            generator.encode(
                &gpu.device,
                &gpu.queue,
                encoder,
                &slopes.buffer,
                windows,
                output,
                &[],
            );
        })
    }

    /// Writes `shape` into the caller's `target` (`MAP_WRITE`, unmapped, at least the
    /// shape's bytes) from the host, blocking until the device lets it be mapped.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn write_into(
        &self,
        gpu: &GpuContext,
        slopes: &SlopeUniform,
        shape: GenerateShape,
        target: &wgpu::Buffer,
    ) -> Result<()> {
        let (_, bytes) = plan(gpu, shape)?;
        self.write_on_host(gpu, &slopes.values, shape, bytes, target, false, None)
    }

    /// A new buffer of `bytes`, with the usage of the module's buffers: no COPY_DST, so
    /// nothing handed out can be overwritten by a copy or `write_buffer`; on the host path
    /// also MAP_WRITE, and then mapped at creation when asked.
    pub(super) fn new_buffer(
        &self,
        gpu: &GpuContext,
        bytes: u64,
        mapped: bool,
    ) -> Result<wgpu::Buffer> {
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
        bytes: u64,
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
        write_mapped(buffer, shape, slopes, tee).map_err(|error| gpu.explain(error))
    }
}

/// Builds `kernel`'s pipeline for `dtype`, masking future keys when `causal`.
pub(super) fn build_generator(
    gpu: &GpuContext,
    kernel: Kernel,
    dtype: BiasDtype,
    causal: bool,
) -> Result<Generator> {
    gpu.run(Work::named("building a generator pipeline"), || {
        Generator::new(&gpu.device, kernel, dtype, causal)
    })
}

/// The dispatch windows of `shape` on this device, and its bytes: checked against the
/// device's buffer and binding limits.
pub(super) fn plan(gpu: &GpuContext, shape: GenerateShape) -> Result<(Vec<Window>, u64)> {
    let windows = plan_windows(shape, gpu.limits)?;
    // plan_windows refuses a shape whose bytes overflow, so they are known here.
    Ok((windows, shape.bytes().unwrap_or(u64::MAX)))
}
