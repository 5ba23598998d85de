//! Reading a (possibly strided) bias view back to the host: a copy of the view's byte spans
//! into a reusable staging buffer, a mapping, and a row-parallel gather into the caller's
//! vector.

use std::sync::{Arc, Mutex};

use crate::bias::AlibiBias;
use crate::error::{AlibiError, MapError, Result};
use crate::gpu::context::GpuContext;
use crate::gpu::map::map_buffer;
use crate::gpu::scope::Work;
use crate::host::sized_host;
use crate::parallel::for_each_row_chunk;
use crate::pool::BufferPool;

/// Staging buffers kept for reuse, at most this many.
const POOLED_STAGING_BUFFERS: usize = 2;
/// Staging sizes are rounded up to a power of two of at least this many bytes, so that
/// repeated readbacks of similar sizes reuse one buffer.
const MIN_STAGING_BYTES: u64 = 64 << 10;

/// The readback of one module, with its pool of `MAP_READ | COPY_DST` staging buffers.
///
/// The pool keeps at most [`POOLED_STAGING_BUFFERS`] buffers and at most the module's cache
/// budget in bytes, so a module never holds more than twice its budget between calls:
/// the budget in cached and recycled tensors, and as much again in staging.
pub(crate) struct Readback {
    staging: Mutex<BufferPool<wgpu::Buffer>>,
}

impl Default for Readback {
    fn default() -> Self {
        Self {
            staging: Mutex::new(BufferPool::new(POOLED_STAGING_BUFFERS, MIN_STAGING_BYTES)),
        }
    }
}

impl Readback {
    /// Copies `bias` into `out` (resized, then overwritten row-major `[heads, i, j]`).
    /// `budget` bounds the staging bytes kept afterwards.
    pub async fn read_into(
        &self,
        gpu: &GpuContext,
        bias: &AlibiBias,
        budget: u64,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        gpu.ensure_alive()?;
        gpu.errors.settle().await?;
        let Some(buffer) = bias.buffer() else {
            out.clear();
            return Ok(());
        };
        let spans = bias.spans();
        let total: u64 = spans.iter().map(|&(_, len)| len).sum();
        let staging = self.take(gpu, total)?;
        gpu.run(Work::named("the readback copy"), || {
            let mut encoder = gpu.device.create_command_encoder(&Default::default());
            let mut destination = 0;
            for &(source, len) in &spans {
                encoder.copy_buffer_to_buffer(buffer, source, &staging, destination, len);
                destination += len;
            }
            gpu.queue.submit([encoder.finish()]);
        })?;
        gpu.errors.settle().await?;
        map_buffer(
            &gpu.device,
            &staging,
            total,
            wgpu::MapMode::Read,
            "readback",
        )
        .await
        .map_err(|error| gpu.explain(error))?;
        let gathered = staging
            .get_mapped_range(0..total)
            .map_err(|source| AlibiError::Map {
                operation: "readback",
                source: MapError::Range(source),
            })
            .and_then(|mapped| {
                let [heads, i, j] = bias.shape();
                // The gather writes every element: a reused vector needs no zeroing first.
                sized_host(out, heads, i, j)?;
                gather(&mapped, bias, spans.len() == 1, out);
                Ok(())
            });
        staging.unmap();
        gathered?;
        self.give_back(staging, budget);
        Ok(())
    }

    /// Bytes of the staging buffers kept.
    pub fn staging_bytes(&self) -> u64 {
        self.lock().bytes()
    }

    /// Drops kept staging buffers until they hold at most `budget` bytes.
    pub fn trim(&self, budget: u64) {
        self.lock().trim(budget);
    }

    /// A buffer of at least `bytes`, from the pool or new (never above the device's
    /// `max_buffer_size`).
    fn take(&self, gpu: &GpuContext, bytes: u64) -> Result<wgpu::Buffer> {
        if let Some(kept) = self.lock().take(bytes) {
            return Ok(kept);
        }
        let size = bytes
            .max(MIN_STAGING_BYTES)
            .checked_next_power_of_two()
            .unwrap_or(bytes)
            .min(gpu.limits.max_buffer_bytes)
            .max(bytes);
        gpu.create_buffer(
            "a readback staging buffer",
            size,
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            false,
        )
    }

    /// Keeps an unmapped buffer for the next readback, within the count and `budget`.
    fn give_back(&self, buffer: wgpu::Buffer, budget: u64) {
        self.lock().keep(vec![Arc::new(buffer)], budget);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BufferPool<wgpu::Buffer>> {
        self.staging.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Copies the view's rows, row-major, from the staging bytes (its spans, back to back: one
/// for all heads when `single_span`, else one per head) into `out`, which has exactly the
/// view's length; rows are split across cores.
fn gather(staging: &[u8], bias: &AlibiBias, single_span: bool, out: &mut [f32]) {
    let [_, i, j] = bias.shape();
    let layout = bias.layout();
    let contiguous = bias.is_contiguous();
    let head_span = (i - 1) * layout.row_stride as usize + j;
    // Staging element where row `global_row` (= h * i + r) of the view starts.
    let row_start = |global_row: usize| {
        let (h, r) = (global_row / i, global_row % i);
        let head_start = if single_span {
            h * layout.head_stride as usize
        } else {
            h * head_span
        };
        head_start + r * layout.row_stride as usize
    };
    for_each_row_chunk(out, j, |chunk, first_row| {
        if contiguous {
            let start = first_row * j * 4;
            copy_from_bytes(chunk, &staging[start..start + chunk.len() * 4]);
            return;
        }
        for (n, row) in chunk.chunks_exact_mut(j).enumerate() {
            let start = row_start(first_row + n) * 4;
            copy_from_bytes(row, &staging[start..start + j * 4]);
        }
    });
}

/// Copies little-endian f32 bytes. Mapped memory is aligned in practice, so this is one
/// memcpy; an unaligned mapping takes the value-by-value path instead of failing.
fn copy_from_bytes(out: &mut [f32], bytes: &[u8]) {
    match bytemuck::try_cast_slice::<u8, f32>(bytes) {
        Ok(values) => out.copy_from_slice(values),
        Err(_) => {
            for (value, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *value = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
    }
}
