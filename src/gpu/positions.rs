//! Generating a bias at custom query and key positions: the positions kernel
//! (`shaders/alibi_positions.wgsl`), windowed by the generator's planner.

use crate::error::Result;
use crate::gpu::context::GpuContext;
use crate::gpu::generator::Generator;
use crate::gpu::kernel::{
    Kernel, PositionLayout, BINDING_KEY_POSITIONS, BINDING_POSITION_LAYOUT, BINDING_QUERY_POSITIONS,
};
use crate::gpu::scope::Work;
use crate::gpu::windows::GenerateShape;
use crate::gpu::writer::{build_generator, plan, BiasWriter, SlopeUniform};

/// Positions of one side (queries or keys): every batch item's, back to back, or one set
/// shared by all (`stride` 0).
pub(crate) struct PositionData<'a> {
    pub values: &'a [i32],
    pub stride: usize,
}

impl BiasWriter {
    /// Generates `shape` (`total_heads` = batch items x heads per item, `cols` the keys
    /// rounded up to a multiple of 4, padding columns first) at these positions into a new
    /// buffer, with the kernel on every generation path; submitted, not waited for.
    pub fn generate_positions(
        &self,
        gpu: &GpuContext,
        slopes: &SlopeUniform,
        shape: GenerateShape,
        heads_per_item: usize,
        queries: PositionData<'_>,
        keys: PositionData<'_>,
    ) -> Result<wgpu::Buffer> {
        let (windows, bytes) = plan(gpu, shape)?;
        let layout = PositionLayout {
            heads: heads_per_item as u32,
            query_stride: queries.stride as u32,
            key_stride: keys.stride as u32,
            key_pad: (shape.cols - shape.requested_cols) as u32,
        };
        let generator = self.positions_generator(gpu)?;
        let output = self.new_buffer(gpu, bytes, false)?;
        let upload = |what, contents: &[u8], usage| -> Result<wgpu::Buffer> {
            let buffer = gpu.create_buffer(
                what,
                contents.len() as u64,
                usage | wgpu::BufferUsages::COPY_DST,
                false,
            )?;
            gpu.queue.write_buffer(&buffer, 0, contents);
            Ok(buffer)
        };
        let storage = wgpu::BufferUsages::STORAGE;
        let layout = upload(
            "the position layout",
            bytemuck::bytes_of(&layout),
            wgpu::BufferUsages::UNIFORM,
        )?;
        let queries = upload(
            "the query positions",
            bytemuck::cast_slice(queries.values),
            storage,
        )?;
        let keys = upload(
            "the key positions",
            bytemuck::cast_slice(keys.values),
            storage,
        )?;
        let extra = [
            (BINDING_POSITION_LAYOUT, &layout),
            (BINDING_QUERY_POSITIONS, &queries),
            (BINDING_KEY_POSITIONS, &keys),
        ]
        .map(|(binding, buffer)| wgpu::BindGroupEntry {
            binding,
            resource: buffer.as_entire_binding(),
        });
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        gpu.run(
            Work::named("recording the bias at custom positions"),
            || {
                generator.encode(
                    &gpu.device,
                    &gpu.queue,
                    &mut encoder,
                    &slopes.buffer,
                    &windows,
                    &output,
                    &extra,
                );
            },
        )?;
        gpu.run(
            Work::named("submitting the bias at custom positions"),
            || {
                gpu.queue.submit([encoder.finish()]);
            },
        )?;
        Ok(output)
    }

    /// The positions kernel for the module's element type and mask, built on first use (most
    /// modules never need it).
    fn positions_generator(&self, gpu: &GpuContext) -> Result<&Generator> {
        if let Some(built) = self.positions.get() {
            return Ok(built);
        }
        let built = build_generator(gpu, Kernel::Positions, self.dtype(), self.causal())?;
        // Another thread may have built one meanwhile: either serves.
        Ok(self.positions.get_or_init(|| built))
    }
}
