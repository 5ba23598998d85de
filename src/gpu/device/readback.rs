//! Reading a (possibly strided) bias view back to the host: a copy of the view's byte spans
//! into a reusable staging buffer, a mapping, and a row-parallel gather into the caller's
//! vector.

use std::sync::{Arc, Mutex};

use crate::bias::AlibiBias;
use crate::error::{AlibiError, MapError, Result};
use crate::gpu::device::context::GpuContext;
use crate::gpu::device::map::map_buffer;
use crate::gpu::device::scope::Work;
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
    /// Copies `bias` into `out` (resized, then overwritten row-major `[heads, i, j]`), each
    /// run of values converted from the view's stored bytes by `convert`
    /// ([`copy_from_bytes`] when `T` is the stored type, [`widen_f16`] for f16 into f32).
    /// `budget` bounds the staging bytes kept afterwards.
    pub async fn read_into<T: Send + Copy + bytemuck::Zeroable>(
        &self,
        gpu: &GpuContext,
        bias: &AlibiBias,
        budget: u64,
        out: &mut Vec<T>,
        convert: impl Fn(&mut [T], &[u8]) + Sync + Send,
    ) -> Result<()> {
        gpu.ensure_alive()?;
        // The errors of the call that made the view, and of the module's own setup: no
        // other call's.
        let settled = async {
            gpu.errors.settle_untied().await?;
            bias.errors.settle().await
        };
        settled.await.map_err(|error| gpu.explain(error))?;
        let Some(buffer) = bias.buffer() else {
            out.clear();
            return Ok(());
        };
        let spans = bias.spans();
        // Copies start and end on multiples of 4 bytes (wgpu's COPY_BUFFER_ALIGNMENT): an
        // f16 span may start or end mid-word, so its word is copied whole, and `bases`
        // records where each span's first element lands in the staging buffer.
        let mut copies = Vec::with_capacity(spans.len());
        let mut bases = Vec::with_capacity(spans.len());
        let mut total = 0;
        for &(start, len) in &spans {
            let aligned = start & !(wgpu::COPY_BUFFER_ALIGNMENT - 1);
            let end = (start + len).next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT);
            copies.push((aligned, total, end - aligned));
            bases.push((total + start - aligned) as usize);
            total += end - aligned;
        }
        // The readback's own work is a call of its own, ended before any `.await`.
        let call = gpu.errors.begin_call();
        let staging = self.take(gpu, total)?;
        gpu.run(Work::named("the readback copy"), || {
            let mut encoder = gpu.device.create_command_encoder(&Default::default());
            for &(source, destination, len) in &copies {
                encoder.copy_buffer_to_buffer(buffer, source, &staging, destination, len);
            }
            gpu.queue.submit([encoder.finish()]);
        })?;
        let copied = call.record();
        drop(call);
        copied.settle().await.map_err(|error| gpu.explain(error))?;
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
                gather(&mapped, bias, &bases, out, convert);
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

/// Copies the view's rows, row-major, from the staging bytes into `out`, which has exactly
/// the view's length; `bases` are the staging byte offsets of the first element of each span
/// (one for all heads, or one per head). Rows are split across cores.
fn gather<T: Send>(
    staging: &[u8],
    bias: &AlibiBias,
    bases: &[usize],
    out: &mut [T],
    convert: impl Fn(&mut [T], &[u8]) + Sync + Send,
) {
    let [_, i, j] = bias.shape();
    let layout = bias.layout();
    // Bytes of one stored element (the view's type, whatever `T` is).
    let size = bias.dtype().size();
    let single_span = bases.len() == 1;
    let contiguous = bias.is_contiguous();
    // Staging byte where row `global_row` (= h * i + r) of the view starts.
    let row_start = |global_row: usize| {
        let (h, r) = (global_row / i, global_row % i);
        let within = if single_span {
            bases[0] + h * layout.head_stride as usize * size
        } else {
            bases[h]
        };
        within + r * layout.row_stride as usize * size
    };
    for_each_row_chunk(out, j, |chunk, first_row| {
        if contiguous {
            let start = bases[0] + first_row * j * size;
            convert(chunk, &staging[start..start + chunk.len() * size]);
            return;
        }
        for (n, row) in chunk.chunks_exact_mut(j).enumerate() {
            let start = row_start(first_row + n);
            convert(row, &staging[start..start + j * size]);
        }
    });
}

/// Copies little-endian element bytes. Mapped memory is aligned in practice, so this is
/// one memcpy; an unaligned start (an f16 span's, or a mapping's) takes the unaligned read.
pub(crate) fn copy_from_bytes<T: bytemuck::Pod>(out: &mut [T], bytes: &[u8]) {
    match bytemuck::try_cast_slice::<u8, T>(bytes) {
        Ok(values) => out.copy_from_slice(values),
        Err(_) => {
            let size = std::mem::size_of::<T>();
            for (value, b) in out.iter_mut().zip(bytes.chunks_exact(size)) {
                *value = bytemuck::pod_read_unaligned(b);
            }
        }
    }
}

/// Widens little-endian f16 bytes into f32 values, exactly: `half`'s slice conversion (F16C
/// where the CPU has it), or value by value from an unaligned start.
pub(crate) fn widen_f16(out: &mut [f32], bytes: &[u8]) {
    use half::slice::HalfFloatSliceExt as _;
    match bytemuck::try_cast_slice::<u8, half::f16>(bytes) {
        Ok(values) => values.convert_to_f32_slice(out),
        Err(_) => {
            for (value, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *value = half::f16::from_le_bytes([b[0], b[1]]).to_f32();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_bytes_widen_exactly_from_any_start() {
        let values = [1.0f32, -2048.0, f32::NEG_INFINITY, -0.0, 65504.0];
        let stored: Vec<u8> = values
            .iter()
            .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
            .collect();
        // Aligned, and one byte in (a slice that cannot be cast).
        let mut shifted = vec![0u8];
        shifted.extend_from_slice(&stored);
        for bytes in [&stored[..], &shifted[1..]] {
            let mut out = [f32::NAN; 5];
            widen_f16(&mut out, bytes);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&out), bits(&values));
        }
        let mut out = [0.0f32; 2];
        copy_from_bytes(&mut out, &[0, 0, 128, 63, 0, 0, 0, 192]);
        assert_eq!(out, [1.0, -2.0]);
    }
}
