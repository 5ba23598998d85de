//! The host-mapped generation path: the host's cores write the bias straight into a device
//! buffer through a mapping.
//!
//! It exists for CPU adapters (lavapipe, llvmpipe, WARP, SwiftShader), whose device memory
//! is host memory and whose emulated shader cores are slow at storing: Mesa's llvmpipe
//! turns every storage-buffer store into a loop over the SIMD lanes with a scalar store and
//! a bounds check per component, so the WGSL kernel runs at a third to a half of the
//! speed of a plain copy there. The CPU reference's row loop, vectorised by the Rust
//! compiler and run on every core, writes the same bytes (the tests compare them bit for
//! bit with the kernel's) at about the speed of a copy.

use crate::error::{AlibiError, Result};
use crate::gpu::generator::GenerateShape;
use crate::reference::{fill_elements, for_each_range};

/// Values computed into a small host block before each copy into the mapping: the block
/// stays in the L1/L2 cache, and mapped memory is only ever written, never read.
const BLOCK_VALUES: usize = 16 << 10;
/// Each thread maps its own part of the buffer; mapped ranges start at a multiple of
/// `wgpu::MAP_ALIGNMENT` (8 bytes), so the parts are whole multiples of this many values.
const PART_GRAIN_VALUES: usize = 1024;

/// Writes `shape` for `slopes` (heads past them are +0.0) at the start of `buffer`, which
/// is mapped for writing over `0..shape.bytes()`, then unmaps it. The buffer needs
/// `MAP_WRITE` usage.
pub(crate) fn write_mapped(
    buffer: &wgpu::Buffer,
    shape: GenerateShape,
    slopes: &[f32],
) -> Result<()> {
    let len = shape.total_heads * shape.rows * shape.cols;
    if len == 0 {
        buffer.unmap();
        return Ok(());
    }
    let parts = for_each_range(len, PART_GRAIN_VALUES, |part| -> Result<()> {
        let bytes = part.start as u64 * 4..part.end as u64 * 4;
        let mut view = buffer
            .slice(bytes)
            .get_mapped_range_mut()
            .map_err(|e| AlibiError::Map(format!("writing the bias through a mapping: {e}")))?;
        let mut mapped = view.slice(..);
        let mut block = vec![0.0f32; BLOCK_VALUES.min(part.len())];
        let mut start = part.start;
        while start < part.end {
            let values = &mut block[..BLOCK_VALUES.min(part.end - start)];
            fill_elements(values, start, shape.rows, shape.cols, slopes);
            let offset = (start - part.start) * 4;
            mapped
                .slice(offset..offset + values.len() * 4)
                .copy_from_slice(bytemuck::cast_slice(values));
            start += values.len();
        }
        Ok(())
    });
    buffer.unmap();
    parts.into_iter().collect()
}
