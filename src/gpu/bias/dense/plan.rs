//! The plan of a dense write: which words of the target are the body (whole, aligned vec4s
//! inside the tensor, four words per invocation) and which the edges (one word each, the
//! last one read and kept where an f16 tensor of odd length shares it), cut into windows
//! of whole heads, or of rows of one head, that each fit one binding and one dispatch, for
//! the target and, in a copy, for the source.

use crate::bias::BiasLayout;
use crate::dtype::BiasDtype;
use crate::error::Result;
use crate::gpu::bias::dense::{DenseParams, UnitKind};
use crate::gpu::device::limits::PlanLimits;
use crate::gpu::dispatch::fit::{binding, Extent, IndexFrom};
use crate::gpu::dispatch::wgsl::WORKGROUP_SIZE;
use crate::gpu::dispatch::{Window, FUTURE_BITS};

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

/// Units a row holds at most for its units to be packed: a workgroup per row would leave
/// most of its lanes idle (a 37-key row fills 10 of 256), which CPU adapters run anyway.
const PACKED_ROW_UNITS: u64 = WORKGROUP_SIZE as u64 / 4;
/// Rows a packed window holds at most: `dense_packed` finds a unit's row by an f32
/// quotient, exact after one correction below 2^20 (WGSL's division is within 2.5 ulp).
const PACKED_WINDOW_ROWS: u64 = 1 << 19;

/// A copy's source: the cached view's layout, in elements of its buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Source {
    pub layout: BiasLayout,
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

/// A dense plan: each window with the pipeline that records it.
pub(crate) type DensePlan = Vec<(UnitKind, Window<DenseParams>)>;

/// The windows of a dense write of `shape` at `byte_offset` (a multiple of 4) of its
/// target; of a copy when `source` is given. Every unit a window writes lies in its
/// binding and in the tensor's words; the body's units lie wholly inside the tensor; a
/// copy's window binds every source element its units read (a unit may run on into the
/// next rows, and heads). `None` when a copy's source cannot be cut into windows that
/// each fit a binding (a cached head larger than a binding): the caller generates.
pub(crate) fn plan_dense(
    shape: DenseShape,
    byte_offset: u64,
    source: Option<Source>,
    limits: PlanLimits,
) -> Result<Option<DensePlan>> {
    debug_assert!(byte_offset.is_multiple_of(4));
    let usable = check_dense(shape, limits)?;
    let Some(elements) = shape.elements().filter(|&n| n > 0) else {
        return Ok(Some(Vec::new()));
    };
    let size = shape.size();
    let end_byte = byte_offset + elements * size;
    let (first_word, end_word) = (byte_offset / 4, end_byte.div_ceil(4));
    // Whole vec4s of whole words inside the tensor.
    let (body_lo, body_hi) = (first_word.div_ceil(4), end_byte / 4 / 4);
    let mut windows = Vec::new();
    let planner = Planner {
        shape,
        byte_offset,
        source,
        limits,
    };
    let planned = if body_lo < body_hi {
        planner.body(body_lo, body_hi, usable, &mut windows)
            && planner.edge(first_word, body_lo * 4, &mut windows)
            && planner.edge(body_hi * 4, end_word, &mut windows)
    } else {
        planner.edge(first_word, end_word, &mut windows)
    };
    Ok(planned.then_some(windows))
}

struct Planner {
    shape: DenseShape,
    byte_offset: u64,
    source: Option<Source>,
    limits: PlanLimits,
}

impl Planner {
    /// Absolute element index (in the target) where global row `row` starts.
    fn row_element(&self, row: u64) -> u64 {
        self.byte_offset / self.shape.size() + row * self.shape.cols as u64
    }

    /// The source element of global row `row`'s key 0.
    fn source_element(&self, layout: BiasLayout, row: u64) -> u64 {
        let rows = self.shape.rows as u64;
        layout.offset + row / rows * layout.head_stride + row % rows * layout.row_stride
    }

    /// The body's windows: whole heads while they fit, else rows of one head; `false` when
    /// a copy's source does not fit a binding even for one row.
    fn body(&self, unit_lo: u64, unit_hi: u64, usable: u64, out: &mut DensePlan) -> bool {
        let s = self.shape;
        let (rows, cols, size) = (s.rows as u64, s.cols as u64, s.size());
        let total_rows = s.heads as u64 * rows;
        // The bytes a window of `n` rows from a head's start binds, target and source.
        let span = |n: u64| -> u64 {
            let target = n * cols * size + 16;
            let source = self.source.map_or(0, |Source { layout }| {
                let last = (n - 1) / rows * layout.head_stride + (n - 1) % rows * layout.row_stride;
                (last + cols) * size + 4
            });
            target.max(source)
        };
        let elements_per_unit = 16 / size;
        let packed = cols.div_ceil(elements_per_unit) < PACKED_ROW_UNITS;
        let max_rows = if packed {
            PACKED_WINDOW_ROWS
        } else {
            u64::from(u16::MAX) * u64::from(u16::MAX)
        };
        let per_window = if span(rows) <= usable && rows <= max_rows {
            // Whole heads: as many as fit.
            let mut heads = (usable / span(rows)).max(1);
            while heads > 1 && (span(heads * rows) > usable || heads * rows > max_rows) {
                heads = heads * 3 / 4;
            }
            heads * rows
        } else {
            let mut n = ((usable - 16) / (cols * size)).clamp(1, rows.min(max_rows));
            while n > 1 && span(n) > usable {
                n = n * 3 / 4;
            }
            n
        };
        let mut row = 0;
        let mut per_window = per_window;
        while row < total_rows {
            // Windows never run across a head unless they hold whole heads.
            let head_end = (row / rows + 1) * rows;
            let end = if per_window >= rows {
                (row + per_window).min(total_rows)
            } else {
                (row + per_window).min(head_end)
            };
            // Every unit within one row: the simpler kernel.
            let kind = match (packed, cols >= 4) {
                (true, true) => UnitKind::Packed,
                (true, false) => UnitKind::PackedWalk,
                _ if self.row_element(0).is_multiple_of(elements_per_unit)
                    && cols.is_multiple_of(elements_per_unit) =>
                {
                    UnitKind::Row
                }
                (false, true) => UnitKind::Vec4,
                (false, false) => UnitKind::Walk,
            };
            let first = self
                .row_element(row)
                .div_ceil(elements_per_unit)
                .max(unit_lo);
            let last = self
                .row_element(end)
                .div_ceil(elements_per_unit)
                .min(unit_hi);
            if first < last {
                let start = self.row_element(row) * size;
                let window = self.window(kind, row..end, (start, last * 16), first..last, 0);
                if !self.fits(&window) {
                    if per_window == 1 {
                        return false;
                    }
                    per_window /= 2;
                    continue;
                }
                out.push((kind, window));
            }
            row = end;
        }
        true
    }

    /// Whether a window's source binding fits (the target's always does).
    fn fits(&self, window: &Window<DenseParams>) -> bool {
        window
            .source
            .is_none_or(|(_, bytes)| bytes <= self.limits.max_binding_bytes)
    }

    /// The edge words `word_lo..word_hi`: one window over the rows that own them; `false`
    /// when a copy's source for them does not fit a binding.
    fn edge(&self, word_lo: u64, word_hi: u64, out: &mut DensePlan) -> bool {
        if word_lo >= word_hi {
            return true;
        }
        let s = self.shape;
        let per_word = 4 / s.size();
        let first_element = self.byte_offset / s.size();
        let owner =
            |word: u64| ((word * per_word).max(first_element) - first_element) / s.cols as u64;
        let rows = owner(word_lo)..owner(word_hi - 1) + 1;
        let start = self.row_element(rows.start) * s.size();
        // One row: skip to the words (a long row's tail lies far from its start).
        let skip = if rows.end - rows.start == 1 {
            word_lo.saturating_sub(self.row_element(rows.start).div_ceil(per_word))
        } else {
            0
        };
        let window = self.window(
            UnitKind::Word,
            rows,
            (start, word_hi * 4),
            word_lo..word_hi,
            skip,
        );
        out.push((UnitKind::Word, window));
        self.fits(&window)
    }

    /// A window over global rows `rows`, binding the target's bytes `start..end`, writing
    /// units `units` (absolute), the first `skip` units of its single row skipped.
    fn window(
        &self,
        unit: UnitKind,
        rows: std::ops::Range<u64>,
        (start, end): (u64, u64),
        units: std::ops::Range<u64>,
        skip: u64,
    ) -> Window<DenseParams> {
        let s = self.shape;
        let size = s.size();
        // Units are counted from the binding: it starts on a 16-byte boundary.
        let (bind_offset, bind_size) = binding(start / 16 * 16, end, self.limits);
        let unit_bytes = unit.bytes();
        let bind_element = bind_offset / size;
        let count = rows.end - rows.start;
        let per_unit = unit_bytes / size;
        // Units starting in a row of `cols` elements: at most ceil(cols / per_unit).
        let row_units = (s.cols as u64).div_ceil(per_unit);
        let groups = if unit.packed() {
            // The units in order, `grid_rows` workgroups along x, then y.
            let workgroups = (units.end - units.start).div_ceil(u64::from(WORKGROUP_SIZE));
            let x = workgroups.clamp(1, u64::from(u16::MAX));
            [x, workgroups.div_ceil(x).max(1), 1]
        } else {
            let grid_rows = count.min(u64::from(u16::MAX));
            let groups_x = if skip > 0 || unit == UnitKind::Word {
                1
            } else {
                row_units.div_ceil(u64::from(WORKGROUP_SIZE))
            };
            [groups_x, grid_rows, count.div_ceil(grid_rows)]
        };
        let elements = s.elements().unwrap_or(0);
        let tensor_end =
            (self.byte_offset / size + elements - bind_element).min(u64::from(u32::MAX));
        let (source, source_base, head_stride, row_stride) = match self.source {
            Some(Source { layout }) => {
                // From the first row's key 0 to the last element the units hold (they may
                // run into the next rows; past the tensor the copy reads nothing needed).
                let first = self.source_element(layout, rows.start);
                let tensor_first = self.byte_offset / size;
                let last_element = (units.end * per_unit).min(tensor_first + elements) - 1;
                let relative = last_element - tensor_first;
                let (row, key) = (relative / s.cols as u64, relative % s.cols as u64);
                let last = self.source_element(layout, row) + key + 1;
                let (offset, bytes) = binding(first * size, last * size, self.limits);
                let base = (layout.offset as i128 - (offset / size) as i128) as u32;
                (
                    Some((offset, bytes)),
                    base,
                    layout.head_stride as u32,
                    layout.row_stride as u32,
                )
            }
            None => (None, 0, 0, 0),
        };
        Window {
            params: DenseParams {
                rows: s.rows as u32,
                cols: s.cols as u32,
                row0: rows.start as u32,
                row_end: rows.end as u32,
                grid_rows: if unit.packed() { groups[0] } else { groups[1] } as u32,
                row0_element: (self.row_element(rows.start) - bind_element) as u32,
                unit_lo: (units.start - bind_offset / unit_bytes) as u32,
                unit_hi: (units.end - bind_offset / unit_bytes) as u32,
                tensor_end: tensor_end as u32,
                query_offset: s.cols as i32 - s.rows as i32,
                slope_heads: s.slope_heads as u32,
                future_bits: if s.causal { FUTURE_BITS } else { 0 },
                source_base,
                source_head_stride: head_stride,
                source_row_stride: row_stride,
                unit_skip: skip as u32,
            },
            bind_offset,
            bind_size,
            groups: groups.map(|n| n as u32),
            source,
        }
    }
}

#[cfg(test)]
mod tests;
