//! A copy from the cache as copy commands: the contiguous spans of a cached block that a
//! dense slice of it takes, where they are whole words.

use crate::bias::BiasLayout;
use crate::gpu::bias::dense::{DenseShape, Source};

/// The contiguous byte spans `(source offset, target offset, bytes)` a copy of `source`
/// into a dense `shape` at `byte_offset` takes, when every span is a whole number of words
/// (copy commands need that) and `pays(spans, bytes per span)` says that many commands beat
/// one pass of the copy kernel; `None` otherwise (the copy kernel then does it).
pub(crate) fn copy_spans(
    shape: DenseShape,
    source: Source,
    byte_offset: u64,
    pays: impl Fn(u64, u64) -> bool,
) -> Option<Vec<(u64, u64, u64)>> {
    let (rows, cols) = (shape.rows as u64, shape.cols as u64);
    let BiasLayout {
        offset,
        head_stride,
        row_stride,
    } = source.layout;
    let size = shape.size();
    let (count, len, stride) = runs(shape, head_stride, row_stride);
    if !pays(count, len * size) {
        return None;
    }
    let spans: Vec<_> = (0..count)
        .map(|n| {
            // Rows of several heads: the source skips to the next head.
            let source = if len == cols && stride == row_stride {
                offset + n / rows * head_stride + n % rows * row_stride
            } else {
                offset + n * stride
            };
            (source * size, byte_offset + n * len * size, len * size)
        })
        .collect();
    let words = |&(a, b, c): &(u64, u64, u64)| a % 4 == 0 && b % 4 == 0 && c % 4 == 0;
    spans.iter().all(words).then_some(spans)
}

/// The spans a dense copy of `shape` takes from a cached `[.., rows, cols]` block: one for
/// the whole block, one per head for rows of the block's length, else one per row.
pub(crate) fn span_count(shape: DenseShape, rows: usize, cols: usize) -> u64 {
    runs(shape, (rows * cols) as u64, cols as u64).0
}

/// `(spans, elements per span, source stride between spans)` of a dense copy of `shape`
/// from a source of these strides: the widest contiguous runs.
fn runs(shape: DenseShape, head_stride: u64, row_stride: u64) -> (u64, u64, u64) {
    let (heads, rows, cols) = (shape.heads as u64, shape.rows as u64, shape.cols as u64);
    if row_stride == cols && head_stride == rows * cols {
        (1, heads * rows * cols, 0)
    } else if row_stride == cols {
        (heads, rows * cols, head_stride)
    } else {
        (heads * rows, cols, row_stride)
    }
}
