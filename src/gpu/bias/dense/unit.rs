//! What one invocation of a dense kernel writes, and on which grid: each kind is a pipeline.

use super::plan::{ROW_LANES, WIDE_ROW_LANES};
use crate::gpu::dispatch::wgsl::WORKGROUP_SIZE;

/// The pipelines of a dense kernel: what one invocation writes, and on which grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UnitKind {
    /// Four words, 16 bytes aligned, inside the tensor, that end in the row they start in:
    /// rows of half a row workgroup's units or more (`ROW_LANES` in `plan.rs`), workgroups
    /// of their own per row (`dense.wgsl`'s `dense`).
    Row = 0,
    /// `Row` in workgroups of `WIDE_ROW_LANES`, for rows that idle no more of them than
    /// of `ROW_LANES` (`dense_wide`).
    WideRow = 1,
    /// The one unit per long row that starts in it and ends in the next, which `Row` and
    /// `WideRow` leave: one row per invocation (`dense_crossing`).
    Crossing = 2,
    /// Four words, 16 bytes aligned, inside the tensor, in rows of fewer units than half a
    /// row workgroup's lanes (of four elements or more), packed into workgroups in order
    /// (`dense_packed`) rather than a workgroup per row; a unit crosses at most one row's end.
    Packed = 3,
    /// `Packed`'s units in rows of fewer than four elements: a walk element by element
    /// across rows.
    PackedWalk = 4,
    /// One word, at the tensor's edges.
    Word = 5,
}

impl UnitKind {
    /// Every kind, in the order their windows are recorded.
    pub const ALL: [Self; 6] = [
        Self::Row,
        Self::WideRow,
        Self::Crossing,
        Self::Packed,
        Self::PackedWalk,
        Self::Word,
    ];

    pub fn bytes(self) -> u64 {
        match self {
            Self::Word => 4,
            _ => 16,
        }
    }

    /// Whether its units are packed into workgroups in order, not a workgroup per row.
    pub fn packed(self) -> bool {
        matches!(self, Self::Packed | Self::PackedWalk)
    }

    /// Whether its invocations run in order along x, then y (`grid_rows` workgroups along
    /// x), not a workgroup per row.
    pub fn in_order(self) -> bool {
        self.packed() || self == Self::Crossing
    }

    /// Whether its units end in the row they start in (`dense_row_vec4.wgsl`): the row
    /// grid's long rows.
    pub fn in_row(self) -> bool {
        matches!(self, Self::Row | Self::WideRow)
    }

    /// The lanes of its entry point's workgroups.
    pub fn lanes(self) -> u32 {
        match self {
            Self::Row | Self::Word => ROW_LANES,
            Self::WideRow => WIDE_ROW_LANES,
            Self::Crossing | Self::Packed | Self::PackedWalk => WORKGROUP_SIZE,
        }
    }

    /// The kernel's entry point (`dense.wgsl`): which grid it runs on.
    pub fn entry_point(self) -> &'static str {
        match self {
            Self::Row | Self::Word => "dense",
            Self::WideRow => "dense_wide",
            Self::Crossing => "dense_crossing",
            Self::Packed | Self::PackedWalk => "dense_packed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::UnitKind;

    /// Kinds index their pipelines (`DenseKernels`) by their number.
    #[test]
    fn every_kind_is_numbered_by_its_place() {
        for (place, kind) in UnitKind::ALL.into_iter().enumerate() {
            assert_eq!(kind as usize, place, "{kind:?}");
        }
    }
}
