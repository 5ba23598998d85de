//! A dense tensor's shape, and whether it fits a device: the bytes, one row within a
//! binding window, the kernels' u32 row count.

use crate::dtype::BiasDtype;
use crate::error::Result;
use crate::gpu::device::limits::PlanLimits;
use crate::gpu::dispatch::fit::{Extent, IndexFrom};

/// A dense tensor: `heads` (batch items included) x `rows` x `cols`, row-major, no gap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DenseShape {
    pub heads: usize,
    /// Heads with a slope (the others are zero padding).
    pub slope_heads: usize,
    pub rows: usize,
    pub cols: usize,
    pub causal: bool,
    pub dtype: BiasDtype,
}

impl DenseShape {
    /// Elements of the tensor (0 when any side is, however large the others), `None` when
    /// they overflow.
    pub fn elements(&self) -> Option<u64> {
        if self.heads == 0 || self.rows == 0 || self.cols == 0 {
            return Some(0);
        }
        (self.heads as u64)
            .checked_mul(self.rows as u64)?
            .checked_mul(self.cols as u64)
    }

    /// Bytes of the tensor, `None` when they overflow.
    pub fn bytes(&self) -> Option<u64> {
        self.elements()?.checked_mul(self.dtype.size() as u64)
    }

    /// Bytes a buffer needs after the tensor's offset: its bytes rounded up to a word (an
    /// f16 tensor of odd length shares its last word, whose other half is left as it was).
    pub fn word_bytes(&self) -> Option<u64> {
        Some(self.bytes()?.next_multiple_of(4))
    }

    /// Bytes of one element.
    pub(super) fn size(&self) -> u64 {
        self.dtype.size() as u64
    }
}

/// Checks that a dense `shape` fits this device: its bytes within `max_buffer_size`, one
/// row (and the unit it may run into) within a binding window. Returns the usable bytes of
/// a window.
pub(crate) fn check_dense(shape: DenseShape, limits: PlanLimits) -> Result<u64> {
    // An empty tensor writes nothing: no limit refuses it.
    if shape.elements() == Some(0) {
        return Ok(limits.max_binding_bytes);
    }
    let extent = Extent {
        named: [shape.heads, shape.rows, shape.cols],
        bytes: shape.word_bytes(),
        // A row's units may run one unit past its end.
        row_bytes: shape.cols as u64 * shape.size() + 16,
        unit_bytes: 16,
        index: IndexFrom::Window,
    };
    let (_, usable) = extent.check(limits)?;
    // The kernels count global rows (heads x I) in u32 (an empty tensor has none).
    let rows = shape.heads as u128 * shape.rows as u128;
    if shape.cols > 0 && rows > u128::from(u32::MAX) {
        return Err(crate::error::AlibiError::TooLarge {
            heads: shape.heads,
            i: shape.rows,
            j: shape.cols,
            bytes: shape.bytes().unwrap_or(u64::MAX),
            limit: u64::from(u32::MAX),
            limit_name: "the dense kernels' u32 row count (heads x i)",
        });
    }
    Ok(usable)
}
