//! The fit check every kernel's planner shares: whether a tensor fits the device (one
//! buffer, the kernel's u32 index, a row per binding window), how many bytes a window may
//! bind, and where a window's binding starts and ends.

use crate::error::{AlibiError, Result};
use crate::gpu::device::limits::PlanLimits;

/// Units a kernel's u32 index reaches.
const U32_INDICES: u64 = 1 << 32;

/// Where a kernel's u32 index counts its units from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IndexFrom {
    /// The tensor's start (then the binding's first unit is subtracted): the whole tensor
    /// must lie within 2^32 units, or it is too large for the limit named here.
    Tensor(&'static str),
    /// The start of the window's binding: each window must lie within 2^32 units.
    Window,
}

/// A tensor a kernel covers in windows of whole rows, as the fit check sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Extent {
    /// `[heads, i, j]` as errors name the tensor.
    pub named: [usize; 3],
    /// Bytes the tensor's buffer needs; `None` when they overflow `u64`.
    pub bytes: Option<u64>,
    pub row_bytes: u64,
    /// Bytes of what the kernel indexes (a stored vec4, a score): a window starts on one.
    pub unit_bytes: u64,
    pub index: IndexFrom,
}

impl Extent {
    /// Checks that the tensor fits this device: its bytes within `max_buffer_size` and the
    /// kernel's index range, one row within a binding window. Returns its bytes and the
    /// usable bytes of a binding window (a whole number of units).
    pub fn check(&self, limits: PlanLimits) -> Result<(u64, u64)> {
        let [heads, i, j] = self.named;
        let too_large = |bytes, limit, limit_name| AlibiError::TooLarge {
            heads,
            i,
            j,
            bytes,
            limit,
            limit_name,
        };
        let bytes = self.bytes.unwrap_or(u64::MAX);
        if bytes > limits.max_buffer_bytes {
            return Err(too_large(bytes, limits.max_buffer_bytes, "max_buffer_size"));
        }
        let unit = self.unit_bytes;
        let align = alignment(limits);
        // A window's binding starts at the aligned offset at or before its first unit and
        // ends on the word at or after its last.
        let slack = align.saturating_sub(unit) + (unit.next_multiple_of(4) - unit);
        let mut usable = limits.max_binding_bytes.saturating_sub(slack);
        match self.index {
            IndexFrom::Tensor(limit_name) if bytes > U32_INDICES * unit => {
                return Err(too_large(bytes, U32_INDICES * unit, limit_name));
            }
            IndexFrom::Tensor(_) => {}
            // The index of a window's last unit also counts the units before its start.
            IndexFrom::Window => usable = usable.min((U32_INDICES - align) * unit),
        }
        let usable = usable / unit * unit;
        if self.row_bytes > usable {
            return Err(AlibiError::RowTooLarge {
                j,
                bytes: self.row_bytes,
                limit: usable,
            });
        }
        Ok((bytes, usable))
    }
}

/// The binding alignment plans use: the device's, and at least 4 bytes, because a storage
/// binding's offset and size are whole words.
pub(crate) fn alignment(limits: PlanLimits) -> u64 {
    limits.binding_alignment.max(4)
}

/// The binding of a window over the bytes `start..end`: from the aligned offset at or before
/// `start` to the word at or after `end`, as `(offset, size)`.
pub(crate) fn binding(start: u64, end: u64, limits: PlanLimits) -> (u64, u64) {
    let align = alignment(limits);
    let offset = start / align * align;
    (offset, end.next_multiple_of(4) - offset)
}
