//! What one invocation of a dense kernel writes, and on which grid: each kind is a pipeline.

/// The pipelines of a dense kernel: what one invocation writes, and on which grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UnitKind {
    /// Four words, 16 bytes aligned, inside the tensor.
    Vec4 = 0,
    /// One word, at the tensor's edges.
    Word = 1,
    /// Four words of one row: rows hold whole units and start one (no walk across rows).
    Row = 2,
    /// Four words, 16 bytes aligned, inside the tensor, in rows of fewer than four
    /// elements (a walk element by element across rows).
    Walk = 3,
    /// `Vec4`'s units in rows shorter than a workgroup's lanes, packed into workgroups in
    /// order (`dense.wgsl`'s `dense_packed`) rather than a workgroup per row.
    Packed = 4,
    /// `Walk`'s units, packed the same way.
    PackedWalk = 5,
}

impl UnitKind {
    /// Every kind, in the order their windows are recorded.
    pub const ALL: [Self; 6] = [
        Self::Row,
        Self::Vec4,
        Self::Walk,
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
}
