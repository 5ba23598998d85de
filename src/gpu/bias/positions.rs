//! The inputs of the positions kernel (`shaders/bias/positions.wgsl`): where each batch
//! item's query and key positions lie, uploaded for its own bindings.

use crate::error::Result;
use crate::generation::GenerateShape;
use crate::gpu::bias::kernel::PositionLayout;
use crate::gpu::device::context::GpuContext;

/// Positions of one side (queries or keys): every batch item's, back to back, or one set
/// shared by all (`stride` 0).
pub(crate) struct PositionData<'a> {
    pub values: &'a [i32],
    pub stride: usize,
}

/// The positions kernel's own bindings, in their order: the layout uniform, the query
/// positions, the key positions.
pub(crate) fn upload(
    gpu: &GpuContext,
    shape: GenerateShape,
    heads_per_item: usize,
    queries: PositionData<'_>,
    keys: PositionData<'_>,
) -> Result<[wgpu::Buffer; 3]> {
    let layout = PositionLayout {
        heads: heads_per_item as u32,
        query_stride: queries.stride as u32,
        key_stride: keys.stride as u32,
        key_pad: (shape.cols - shape.requested_cols) as u32,
    };
    let upload = |what, contents: &[u8], usage| -> Result<wgpu::Buffer> {
        let usage = usage | wgpu::BufferUsages::COPY_DST;
        let buffer = gpu.create_buffer(what, contents.len() as u64, usage, false)?;
        gpu.queue.write_buffer(&buffer, 0, contents);
        Ok(buffer)
    };
    let storage = wgpu::BufferUsages::STORAGE;
    Ok([
        upload(
            "the position layout",
            bytemuck::bytes_of(&layout),
            wgpu::BufferUsages::UNIFORM,
        )?,
        upload(
            "the query positions",
            bytemuck::cast_slice(queries.values),
            storage,
        )?,
        upload(
            "the key positions",
            bytemuck::cast_slice(keys.values),
            storage,
        )?,
    ])
}
