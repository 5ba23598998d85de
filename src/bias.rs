//! [`AlibiBias`]: a bias tensor resident on the GPU, as `forward` returns it.

use std::sync::Arc;

use crate::dtype::BiasDtype;
use crate::gpu::device::scope::CallErrors;

/// A `[heads, i, j]` bias on the GPU: a strided, read-only view into a buffer.
///
/// Element `(h, r, k)` is at element index
/// `offset + h * head_stride + r * row_stride + k` of [`AlibiBias::buffer`], in elements
/// of [`AlibiBias::dtype`] (f32 unless the module makes f16; the column stride is 1). A view served from the cache is usually not contiguous: it is
/// the bottom-right `[.., I-i.., J-j..]` block of a larger generated tensor `[.., I, J]`.
///
/// The buffer may be shared with the module's cache. The module creates it with
/// `STORAGE | COPY_SRC` usage only (plus `MAP_WRITE` on the host-mapped
/// [`GenerationPath`](crate::GenerationPath)), so `queue.write_buffer`, `clear_buffer` and
/// copies into it are refused by wgpu; bind it as `var<storage, read>` only, and never map
/// it. A caller that needs a private, writable copy reads it back with
/// [`crate::AlibiPositionalBias::read`], or asks for the dense form, a buffer of its own
/// ([`crate::AlibiPositionalBias::forward_dense`]).
#[derive(Clone, Debug)]
pub struct AlibiBias {
    pub(crate) buffer: Option<Arc<wgpu::Buffer>>,
    pub(crate) shape: [usize; 3],
    pub(crate) layout: BiasLayout,
    pub(crate) dtype: BiasDtype,
    pub(crate) binding_alignment: u64,
    /// The errors of the call that generated the view's values: a read reports them.
    pub(crate) errors: CallErrors,
}

/// Where a view's elements lie in its buffer, in elements (of the view's
/// [`BiasDtype`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct BiasLayout {
    /// Index of element `(0, 0, 0)`.
    pub offset: u64,
    /// Distance between heads.
    pub head_stride: u64,
    /// Distance between rows.
    pub row_stride: u64,
}

/// A storage binding that covers a view, with the view's layout relative to the binding.
#[derive(Clone, Debug)]
pub struct BiasBinding<'a> {
    /// Bind this as `var<storage, read> bias: array<f32>` (or `array<vec4<f32>>`; `f16`
    /// for an f16 view).
    pub binding: wgpu::BufferBinding<'a>,
    /// The layout, with `offset` counted from the start of `binding`.
    pub layout: BiasLayout,
}

impl AlibiBias {
    /// `[heads, i, j]`.
    pub fn shape(&self) -> [usize; 3] {
        self.shape
    }

    /// Whether the view holds no element (`i == 0` or `j == 0`); it then has no buffer.
    pub fn is_empty(&self) -> bool {
        self.buffer.is_none()
    }

    /// The buffer holding the view, `None` when empty.
    pub fn buffer(&self) -> Option<&wgpu::Buffer> {
        self.buffer.as_deref()
    }

    /// The element type: f32, or f16 from a module configured for it.
    pub fn dtype(&self) -> BiasDtype {
        self.dtype
    }

    /// Offset and strides of the view in [`AlibiBias::buffer`].
    pub fn layout(&self) -> BiasLayout {
        self.layout
    }

    /// Whether rows and heads follow each other with no gap (`row_stride == j`,
    /// `head_stride == i * j`).
    pub fn is_contiguous(&self) -> bool {
        let [_, i, j] = self.shape;
        self.layout.row_stride == j as u64 && self.layout.head_stride == (i * j) as u64
    }

    /// Number of elements of the view.
    pub fn len(&self) -> usize {
        crate::host::element_count(self.shape)
    }

    /// One past the last element the view touches, in elements from the buffer start.
    pub(crate) fn end_element(&self) -> u64 {
        let [heads, i, j] = self.shape;
        let l = self.layout;
        l.offset + (heads as u64 - 1) * l.head_stride + (i as u64 - 1) * l.row_stride + j as u64
    }

    /// The smallest storage binding that covers the view, starting at an offset aligned to
    /// the device's `min_storage_buffer_offset_alignment`. `None` when empty. A view larger
    /// than the device's `max_storage_buffer_binding_size` cannot be bound whole: bind
    /// windows of [`AlibiBias::buffer`] yourself.
    pub fn binding(&self) -> Option<BiasBinding<'_>> {
        let buffer = self.buffer.as_deref()?;
        let size = self.element_bytes();
        let start = self.layout.offset * size / self.binding_alignment * self.binding_alignment;
        let end = self.end_element() * size;
        Some(BiasBinding {
            binding: wgpu::BufferBinding {
                buffer,
                offset: start,
                size: wgpu::BufferSize::new(end - start),
            },
            layout: BiasLayout {
                offset: self.layout.offset - start / size,
                ..self.layout
            },
        })
    }

    /// The byte ranges of the buffer that hold the view: one per head, or a single one when
    /// the heads follow each other. Used by readback.
    pub(crate) fn spans(&self) -> Vec<(u64, u64)> {
        let [heads, i, j] = self.shape;
        let l = self.layout;
        let size = self.element_bytes();
        let head_span = (i as u64 - 1) * l.row_stride + j as u64;
        if l.head_stride == i as u64 * l.row_stride {
            return vec![(l.offset * size, (self.end_element() - l.offset) * size)];
        }
        (0..heads as u64)
            .map(|h| ((l.offset + h * l.head_stride) * size, head_span * size))
            .collect()
    }

    fn element_bytes(&self) -> u64 {
        self.dtype.size() as u64
    }
}
