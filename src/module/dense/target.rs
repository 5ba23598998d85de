//! The checks of a caller's dense target, all made before anything is recorded into the
//! caller's encoder: the byte offset, the usage and room, and the device.

use crate::error::{AlibiError, Result};
use crate::gpu::bias::dense::DenseShape;
use crate::gpu::device::scope::Work;
use crate::module::AlibiPositionalBias;
use crate::validation::{check_target, BIAS_TARGET};

impl AlibiPositionalBias {
    /// Checks a dense write of `(i, j)` into `target` at `byte_offset`: the request, the
    /// offset's `alignment`, then (unless the tensor is empty: `None`) `usage` and room.
    pub(super) fn target_request(
        &self,
        (i, j): (usize, usize),
        target: &wgpu::Buffer,
        (byte_offset, alignment): (u64, u64),
        usage: wgpu::BufferUsages,
    ) -> Result<Option<DenseShape>> {
        let shape = self.dense_shape(self.total_heads, i, j);
        self.dense_request(shape)?;
        check_offset(byte_offset, alignment)?;
        if shape.elements() == Some(0) {
            return Ok(None);
        }
        self.check_dense_target(shape, target, byte_offset, usage)?;
        Ok(Some(shape))
    }

    /// Checks a caller's dense target: its usage, then its size from `byte_offset`.
    fn check_dense_target(
        &self,
        shape: DenseShape,
        target: &wgpu::Buffer,
        byte_offset: u64,
        usage: wgpu::BufferUsages,
    ) -> Result<()> {
        let needed = shape
            .word_bytes()
            .and_then(|bytes| bytes.checked_add(byte_offset))
            .unwrap_or(u64::MAX);
        let named = [shape.heads, shape.rows, shape.cols];
        check_target(
            (target.usage(), target.size()),
            needed,
            usage,
            (BIAS_TARGET, named),
        )
    }

    /// Binds `target` on the module's device inside an error scope, before anything is
    /// recorded into the caller's encoder: a buffer of another device is refused here.
    pub(in crate::module) fn check_own_buffer(&self, target: &wgpu::Buffer) -> Result<()> {
        let device = &self.gpu.device;
        let probe = self.gpu.run(Work::named("binding the target buffer"), || {
            let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some("alibi target probe"),
                entries: &[wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage { read_only: false },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                }],
            });
            device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("alibi target probe"),
                layout: &layout,
                entries: &[wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: target,
                        offset: 0,
                        size: wgpu::BufferSize::new(4),
                    }),
                }],
            })
        });
        match probe {
            Ok(_) => Ok(()),
            Err(AlibiError::Gpu { source, .. }) => Err(AlibiError::ForeignTarget { source }),
            Err(other) => Err(other),
        }
    }
}

/// Refuses a byte offset that is not a multiple of `alignment`.
fn check_offset(offset: u64, alignment: u64) -> Result<()> {
    if offset.is_multiple_of(alignment) {
        Ok(())
    } else {
        Err(AlibiError::MisalignedOffset { offset, alignment })
    }
}
