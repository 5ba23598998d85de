//! The engine layout (docs/rust-api.md, "The engine layout"): dense `[total_heads, i, j]`
//! biases, row stride `j`, head stride `i * j`, into a new buffer the caller owns or into
//! the caller's buffer at a byte offset; from the cache when it holds the values (a copy
//! on the GPU), generated otherwise; and dense batches at custom positions.

mod copy;
mod target;

use copy::{Cached, Pinned};

use super::positions::side;
use super::AlibiPositionalBias;
use crate::dense::{DenseBias, GpuCheck};
use crate::dtype::BiasDtype;
use crate::error::Result;
use crate::generation::GenerateShape;
#[cfg(not(target_arch = "wasm32"))]
use crate::generation::GenerationPath;
use crate::gpu::bias::dense::{check_dense, plan_dense, DenseKernel, DenseShape};
use crate::gpu::bias::positions;
use crate::gpu::bias::writer::dense_usage;
use crate::gpu::device::scope::{CallErrors, CallScope, Work};
use crate::module::Positions;
use crate::validation::check_sequence;

impl AlibiPositionalBias {
    /// The bias `[total_heads, i, j]`, dense (row stride `j`, head stride `i * j`), in a new
    /// buffer the caller owns: the engine layout ([`DenseBias`]).
    ///
    /// When a cached tensor covers `(i, j)` (a hit in [`cache_stats`](Self::cache_stats)),
    /// the values are copied from it on the GPU: one pass over the bytes, copy commands
    /// where the slice's spans are whole words and pay on this adapter, the copy kernel
    /// otherwise. Where that copy would take a span per row (padded rows, or rows longer
    /// than `j`), the slice is first copied once into a dense cache entry of this shape, so
    /// that the same request again is one copy of the whole tensor. Otherwise the values
    /// are generated straight into the new buffer (the kernel; on the host-mapped path, the
    /// host through the buffer's mapping) and not cached: a fresh dense tensor costs one
    /// generation. Submitted, not waited for.
    ///
    /// ```
    /// # fn main() -> Result<(), alibi_wgpu::AlibiError> {
    /// use alibi_wgpu::AlibiPositionalBias;
    /// let mut alibi = pollster::block_on(AlibiPositionalBias::new_default(4, None))?;
    /// alibi.forward(16, 16)?; // a prefill, cached
    /// let step = alibi.forward_dense(1, 16)?; // a decode step, copied from the cache
    /// assert_eq!(step.shape(), &[4, 1, 16]);
    /// assert_eq!(alibi.cache_stats().hits, 1);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The sequence errors of [`forward`](Self::forward); [`AlibiError::TooLarge`](crate::AlibiError::TooLarge) or
    /// [`AlibiError::RowTooLarge`](crate::AlibiError::RowTooLarge) beyond the device's buffer or binding limits. A refused
    /// call leaves the cache as it was.
    pub fn forward_dense(&mut self, i: usize, j: usize) -> Result<DenseBias> {
        let shape = self.dense_shape(self.total_heads, i, j);
        self.dense_request(shape)?;
        let dims = vec![self.total_heads, i, j];
        if shape.elements() == Some(0) {
            return self.empty_dense(dims);
        }
        let cached = self.cached(shape);
        let call = self.gpu.errors.begin_call();
        #[cfg(not(target_arch = "wasm32"))]
        if cached.is_none() && self.writer.path() == GenerationPath::HostMapped {
            let generated = self.dense_generate_shape(shape);
            let buffer = self
                .writer
                .write_dense_new(&self.gpu, &self.slopes, generated)?;
            return Ok(self.dense_bias(buffer, dims, self.check_of(&call, None)));
        }
        let bytes = shape.word_bytes().unwrap_or(u64::MAX);
        let buffer = self
            .gpu
            .create_buffer("alibi dense bias", bytes, dense_usage(), false)?;
        let mut encoder = self.gpu.device.create_command_encoder(&Default::default());
        let check = self.record_dense(&mut encoder, shape, &buffer, 0, cached, &call)?;
        self.gpu.run(Work::named("submitting a dense bias"), || {
            self.gpu.queue.submit([encoder.finish()]);
        })?;
        Ok(self.dense_bias(buffer, dims, check))
    }

    /// Records the dense `[total_heads, i, j]` bias into the caller's `encoder`, written to
    /// the caller's `target` from byte `byte_offset`: the engine's own tensor. From the
    /// cache when a cached tensor covers `(i, j)` (a hit), generated otherwise (the kernel,
    /// on every generation path; not cached). Valid once the caller submits the encoder;
    /// the module keeps a cached block it reads from reuse until then. The returned
    /// [`GpuCheck`] reports a failure of the module's work for this call that the device
    /// answers late (the web); validation of the recorded commands is the caller's
    /// submission's.
    ///
    /// `target` needs usage `STORAGE | COPY_DST` and `byte_offset + bytes` bytes, `bytes`
    /// the tensor's rounded up to a word: an f16 tensor of odd length ends in the low half
    /// of a word whose other half is left as it was. Nothing outside the tensor's bytes is
    /// written. An empty tensor records nothing and checks no buffer.
    ///
    /// ```
    /// # fn main() -> Result<(), alibi_wgpu::AlibiError> {
    /// use alibi_wgpu::{AlibiConfig, AlibiPositionalBias};
    /// let gpu = pollster::block_on(alibi_wgpu::open_device(None))?;
    /// let mut alibi = AlibiPositionalBias::on_device(&gpu, AlibiConfig::new(8).causal(true))?;
    /// // The engine's attention_bias [1, 8, 37, 37] f32, 256 bytes into its arena.
    /// let arena = gpu.device.create_buffer(&wgpu::BufferDescriptor {
    ///     label: Some("arena"),
    ///     size: 256 + 8 * 37 * 37 * 4,
    ///     usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
    ///     mapped_at_creation: false,
    /// });
    /// let mut encoder = gpu.device.create_command_encoder(&Default::default());
    /// alibi.encode_into(&mut encoder, 37, 37, &arena, 256)?;
    /// gpu.queue.submit([encoder.finish()]);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`AlibiError::MisalignedOffset`](crate::AlibiError::MisalignedOffset) for an offset that is not a multiple of 4;
    /// [`AlibiError::TargetUsage`](crate::AlibiError::TargetUsage), [`AlibiError::TargetTooSmall`](crate::AlibiError::TargetTooSmall), and
    /// [`AlibiError::ForeignTarget`](crate::AlibiError::ForeignTarget) for a buffer of another device, all before anything is
    /// recorded; and the errors of [`forward_dense`](Self::forward_dense). A refused call
    /// records nothing and leaves the cache as it was.
    pub fn encode_into(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        i: usize,
        j: usize,
        target: &wgpu::Buffer,
        byte_offset: u64,
    ) -> Result<GpuCheck> {
        let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST;
        let Some(shape) = self.target_request((i, j), target, (byte_offset, 4), usage)? else {
            return Ok(GpuCheck::default());
        };
        self.check_own_buffer(target)?;
        let cached = self.cached(shape);
        let call = self.gpu.errors.begin_call();
        self.record_dense(encoder, shape, target, byte_offset, cached, &call)
    }

    /// Writes the dense `[total_heads, i, j]` bias into the caller's `target` from the host,
    /// from byte `byte_offset` (a multiple of 8, the mapping alignment), through a mapping,
    /// as [`GenerationPath::HostMapped`] does: the counterpart of
    /// [`encode_into`](Self::encode_into) for engines on a CPU adapter, with no kernel.
    /// Always generated (the cache's values are on the device). `target` needs `MAP_WRITE`
    /// usage and the room `encode_into` documents, and must not be mapped already (an
    /// [`AlibiError::Map`](crate::AlibiError::Map), after which wgpu may still see the buffer as mapping until the
    /// caller unmaps it). Blocks until the device lets the buffer be mapped, writes on every
    /// core and leaves it unmapped; not on the web.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn write_into(
        &self,
        i: usize,
        j: usize,
        target: &wgpu::Buffer,
        byte_offset: u64,
    ) -> Result<()> {
        let alignment = (byte_offset, wgpu::MAP_ALIGNMENT);
        let usage = wgpu::BufferUsages::MAP_WRITE;
        let Some(shape) = self.target_request((i, j), target, alignment, usage)? else {
            return Ok(());
        };
        let generated = self.dense_generate_shape(shape);
        self.writer
            .write_into(&self.gpu, &self.slopes, generated, byte_offset, target)
    }

    /// The dense bias at custom positions, `[batch, total_heads, i, j]` (batch 1 when both
    /// sides are shared), in a new buffer the caller owns; never cached. Each batch item has
    /// its own positions: left-padded batches, as Hugging Face's BLOOM computes them from
    /// the attention mask, give each row its own. The values of
    /// [`forward_positions`](Self::forward_positions), which also says the errors.
    ///
    /// ```
    /// # fn main() -> Result<(), alibi_wgpu::AlibiError> {
    /// use alibi_wgpu::{AlibiPositionalBias, Positions};
    /// let alibi = pollster::block_on(AlibiPositionalBias::new_default(4, None))?;
    /// // Two sequences, the first left-padded by one: positions 0, 0, 1 and 0, 1, 2.
    /// let positions = [0, 0, 1, 0, 1, 2];
    /// let bias = alibi.forward_positions_dense(
    ///     Positions::batched(&positions, 2),
    ///     Positions::batched(&positions, 2),
    /// )?;
    /// assert_eq!(bias.shape(), &[2, 4, 3, 3]);
    /// # Ok(()) }
    /// ```
    pub fn forward_positions_dense(
        &self,
        queries: Positions<'_>,
        keys: Positions<'_>,
    ) -> Result<DenseBias> {
        let (batch, i, j) = self.position_request(queries, keys)?;
        let heads = self.batch_heads(batch, i, j)?;
        let shape = self.dense_shape(heads, i, j);
        let dims = vec![batch, self.total_heads, i, j];
        check_dense(shape, self.gpu.limits)?;
        if shape.elements() == Some(0) {
            return self.empty_dense(dims);
        }
        let windows = plan_dense(shape, 0, None, self.gpu.limits)?.unwrap_or_default();
        let generated = self.dense_generate_shape(shape);
        let call = self.gpu.errors.begin_call();
        let extras = positions::upload(
            &self.gpu,
            generated,
            self.total_heads,
            side(queries, i),
            side(keys, j),
        )?;
        let bytes = shape.word_bytes().unwrap_or(u64::MAX);
        let buffer = self
            .gpu
            .create_buffer("alibi dense bias", bytes, dense_usage(), false)?;
        let mut encoder = self.gpu.device.create_command_encoder(&Default::default());
        self.writer.dense().encode(
            &self.gpu,
            &mut encoder,
            DenseKernel::Positions,
            (self.dtype, self.causal),
            &windows,
            &self.slopes.buffer,
            &buffer,
            &extras.each_ref(),
        )?;
        self.gpu.run(Work::named("submitting a dense bias"), || {
            self.gpu.queue.submit([encoder.finish()]);
        })?;
        Ok(self.dense_bias(buffer, dims, self.check_of(&call, None)))
    }

    pub(super) fn dense_shape(&self, heads: usize, i: usize, j: usize) -> DenseShape {
        DenseShape {
            heads,
            slope_heads: self.heads,
            rows: i,
            cols: j,
            causal: self.causal,
            dtype: self.dtype,
        }
    }

    /// The writers' shape of a dense tensor: rows of exactly `j` keys.
    fn dense_generate_shape(&self, shape: DenseShape) -> GenerateShape {
        GenerateShape {
            heads: self.heads,
            total_heads: shape.heads,
            rows: shape.rows,
            cols: shape.cols,
            requested_cols: shape.cols,
            causal: self.causal,
            dtype: self.dtype,
        }
    }

    /// Checks a dense request before anything else happens: the device alive, the
    /// sequence, the device's limits.
    pub(super) fn dense_request(&self, shape: DenseShape) -> Result<()> {
        self.gpu.ensure_alive()?;
        check_sequence(shape.rows, shape.cols)?;
        check_dense(shape, self.gpu.limits).map(drop)
    }

    /// What a dense call reports: the module's set-up, the cached generation it copies
    /// (if any), and its own work.
    fn check_of(&self, call: &CallScope<'_>, copied: Option<CallErrors>) -> GpuCheck {
        let errors = [Some(self.gpu.errors.untied()), copied, Some(call.record())];
        GpuCheck {
            errors: errors.into_iter().flatten().collect(),
        }
    }

    /// Records a dense write of `shape` into `target` at `byte_offset`: copies of `cached`
    /// (commands, or the copy kernel), or the generation.
    fn record_dense(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        shape: DenseShape,
        target: &wgpu::Buffer,
        byte_offset: u64,
        cached: Option<Cached>,
        call: &CallScope<'_>,
    ) -> Result<GpuCheck> {
        let copied = match cached {
            Some((block, source, errors)) => self
                .record_copy(encoder, shape, target, byte_offset, &block, source)?
                .then_some((block, errors)),
            None => None,
        };
        let Some((block, errors)) = copied else {
            self.record_generation(encoder, shape, target, byte_offset)?;
            return Ok(self.check_of(call, None));
        };
        // The block stays out of the pool (whose buffers nobody else holds) until the work
        // is done, or the encoder dropped: the caller may submit after later calls.
        let pinned = Pinned(block);
        encoder.on_submitted_work_done(move || drop(pinned));
        Ok(self.check_of(call, Some(errors)))
    }

    /// Records the generation of the dense `shape` into `target` at `byte_offset`.
    pub(super) fn record_generation(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        shape: DenseShape,
        target: &wgpu::Buffer,
        byte_offset: u64,
    ) -> Result<()> {
        // Rows of whole vec4s from byte 0: the strided layout is the dense one, and the
        // strided kernel (no cursor, no edge words) writes it where its plan can. Not f16
        // on a CPU adapter: there the dense kernel, eight elements a lane to the strided
        // kernel's four, is 25% faster (lavapipe and llvmpipe, [8, 1024, 1024]: 7.3 ms
        // against 9.4–11.6); on a GPU f16 the strided kernel was 3 times faster (an H200).
        let generated = self.dense_generate_shape(shape);
        let dense_kernel_pays = self.dtype == BiasDtype::F16 && self.gpu.cpu_adapter;
        if byte_offset == 0
            && !dense_kernel_pays
            && shape.cols.is_multiple_of(4)
            && self
                .writer
                .encode_into(&self.gpu, encoder, &self.slopes, generated, target)?
        {
            return Ok(());
        }
        let windows = plan_dense(shape, byte_offset, None, self.gpu.limits)?.unwrap_or_default();
        self.writer.dense().encode(
            &self.gpu,
            encoder,
            DenseKernel::Generate,
            (self.dtype, self.causal),
            &windows,
            &self.slopes.buffer,
            target,
            &[],
        )
    }

    fn empty_dense(&self, dims: Vec<usize>) -> Result<DenseBias> {
        let call = self.gpu.errors.begin_call();
        let buffer = self
            .gpu
            .create_buffer("alibi dense bias", 4, dense_usage(), false)?;
        Ok(self.dense_bias(buffer, dims, self.check_of(&call, None)))
    }

    fn dense_bias(&self, buffer: wgpu::Buffer, shape: Vec<usize>, written: GpuCheck) -> DenseBias {
        DenseBias {
            buffer,
            shape,
            dtype: self.dtype,
            written,
        }
    }
}
