//! The views a module hands out: slices of a generated tensor in the strided layout
//! ([`BiasLayout`]), and the empty view of an empty request.

use std::sync::Arc;

use crate::bias::{AlibiBias, BiasLayout};
use crate::generation::GenerateShape;
use crate::gpu::device::scope::CallErrors;
use crate::module::AlibiPositionalBias;

impl AlibiPositionalBias {
    /// The view of an empty request: no buffer.
    pub(super) fn empty_view(&self, shape: [usize; 3]) -> AlibiBias {
        AlibiBias {
            buffer: None,
            shape,
            layout: BiasLayout::default(),
            dtype: self.dtype,
            binding_alignment: self.gpu.limits.binding_alignment,
            errors: CallErrors::default(),
        }
    }

    /// The view of a whole generated tensor (its padding columns excluded).
    pub(super) fn whole_view(
        &self,
        buffer: Arc<wgpu::Buffer>,
        generated: GenerateShape,
        shape: [usize; 3],
    ) -> AlibiBias {
        AlibiBias {
            dtype: generated.dtype,
            ..self.slice_view(buffer, generated.rows, generated.cols, shape)
        }
    }

    /// The bottom-right `[.., rows-i.., cols-j..]` view of a generated `[.., rows, cols]`
    /// tensor of the module's element type.
    pub(super) fn slice_view(
        &self,
        buffer: Arc<wgpu::Buffer>,
        rows: usize,
        cols: usize,
        shape: [usize; 3],
    ) -> AlibiBias {
        let [_, i, j] = shape;
        AlibiBias {
            buffer: Some(buffer),
            shape,
            layout: BiasLayout {
                offset: ((rows - i) * cols + (cols - j)) as u64,
                head_stride: (rows * cols) as u64,
                row_stride: cols as u64,
            },
            dtype: self.dtype,
            binding_alignment: self.gpu.limits.binding_alignment,
            errors: CallErrors::default(),
        }
    }
}
