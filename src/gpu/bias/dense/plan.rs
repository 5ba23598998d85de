//! The plan of a dense write: which words of the target are the body (whole, aligned vec4s
//! inside the tensor, four words per invocation) and which the edges (one word each, the
//! last one read and kept where an f16 tensor of odd length shares it), cut into windows
//! of whole heads, or of rows of one head, that each fit one binding and one dispatch, for
//! the target and, in a copy, for the source.

use crate::bias::BiasLayout;
use crate::error::Result;
use crate::gpu::bias::dense::{check_dense, DenseParams, DenseShape, UnitKind};
use crate::gpu::device::limits::PlanLimits;
use crate::gpu::dispatch::fit::binding;
use crate::gpu::dispatch::wgsl::WORKGROUP_SIZE;
use crate::gpu::dispatch::{Window, FUTURE_BITS};
use crate::validation::MAX_SEQUENCE;

/// Lanes of a workgroup of `dense`'s row grid (`ROW_LANES` in `dense.wgsl`): x covers a
/// row's units in workgroups of this many. 128, not the other kernels' 256: rows of 126
/// units (1,000 f16 keys) fill them, and CPU adapters pay for idle lanes (lavapipe, 8 heads
/// of 1,000 rows of 1,001 f16 keys: 9.7 ms with 256 lanes, 7.0 ms with 128); 64 costs
/// long rows a workgroup's overhead more often (1,001 f32 keys: 6.7 ms against 6.2).
pub(crate) const ROW_LANES: u32 = 128;
/// Lanes of `dense_wide`'s workgroups (`WIDE_ROW_LANES` in `dense.wgsl`), for rows whose
/// units idle no more of them than of `ROW_LANES` ([`row_kind`]).
pub(crate) const WIDE_ROW_LANES: u32 = 2 * ROW_LANES;
// A row's workgroups along x stay within every device's 65,535: rows hold at most
// MAX_SEQUENCE keys (every dense call checks the sequence first), 4 f32 keys a unit.
const _: () = assert!(MAX_SEQUENCE.div_ceil(4).div_ceil(ROW_LANES as usize) <= u16::MAX as usize);

/// Whether rows of `row_units` units pack them into workgroups in order rather than take
/// workgroups of their own: where a row's workgroup would idle more than half its lanes (a
/// 37-key row fills 10 of 128), which CPU adapters run anyway. Packed units cost more each
/// (a row found by division, values of two rows where a unit crosses one), so rows that
/// fill half their lanes or more take the row grid: lavapipe, 8 heads, f32, ms, packed
/// against the row grid: 401 keys (101 units) 1.60 / 1.28, 501 2.45 / 1.70, 701 4.63 /
/// 3.87 (llvmpipe's GL alike).
fn packs(row_units: u64) -> bool {
    row_units * 2 < u64::from(ROW_LANES)
}

/// The row grid's kind for rows of `row_units` units (not packed): workgroups of
/// `WIDE_ROW_LANES` where they leave no more lanes idle than those of `ROW_LANES` (251
/// units: one workgroup of 256 lanes, not two of 128), since each workgroup has a fixed
/// cost on a CPU adapter (Chromium's SwiftShader, 8 heads of 1,000 rows of 1,001 f32 keys,
/// medians of three rounds: 1.11–1.15 times the strided kernel, against 1.19–1.23 with 128
/// lanes); `ROW_LANES` otherwise (126 f16 units would idle half of 256).
fn row_kind(row_units: u64) -> UnitKind {
    let idle = |lanes: u32| row_units.next_multiple_of(u64::from(lanes)) - row_units;
    if idle(WIDE_ROW_LANES) <= idle(ROW_LANES) {
        UnitKind::WideRow
    } else {
        UnitKind::Row
    }
}

/// Rows a packed window holds at most: `dense_packed` finds a unit's row by an f32
/// quotient, exact after one correction below 2^20 (WGSL's division is within 2.5 ulp).
const PACKED_WINDOW_ROWS: u64 = 1 << 19;

/// A copy's source: the cached view's layout, in elements of its buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Source {
    pub layout: BiasLayout,
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
        let row_units = cols.div_ceil(elements_per_unit);
        let packed = packs(row_units);
        // Long rows: the row grid's units, then (where rows do not hold whole units from a
        // unit's start) the crossing ones. Packed rows are of one kind.
        let long = [row_kind(row_units), UnitKind::Crossing];
        // `dense`'s grid takes the rows of one head along y and whole heads along z.
        let grid_max = u64::from(u16::MAX);
        let max_rows = if packed {
            PACKED_WINDOW_ROWS
        } else if rows <= grid_max {
            rows * grid_max
        } else {
            grid_max
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
            let aligned = self.row_element(0).is_multiple_of(elements_per_unit)
                && cols.is_multiple_of(elements_per_unit);
            let kinds: &[UnitKind] = match (packed, cols >= 4) {
                (true, true) => &[UnitKind::Packed],
                (true, false) => &[UnitKind::PackedWalk],
                _ if aligned => &long[..1],
                _ => &long,
            };
            let first = self
                .row_element(row)
                .div_ceil(elements_per_unit)
                .max(unit_lo);
            let last = self
                .row_element(end)
                .div_ceil(elements_per_unit)
                .min(unit_hi);
            // The row grid reads neither unit_skip (0 here) nor unit_hi: its rows' units,
            // which end where their row's last whole unit does, must end by `last`.
            debug_assert!(packed || self.row_element(end) / elements_per_unit <= last);
            if first < last {
                let start = self.row_element(row) * size;
                let windows: Vec<_> = kinds
                    .iter()
                    .map(|&kind| self.window(kind, row..end, (start, last * 16), first..last, 0))
                    .collect();
                // The kinds share the rows and the bindings.
                if !self.fits(&windows[0]) {
                    if per_window == 1 {
                        return false;
                    }
                    // Whole heads, or rows of one head.
                    per_window /= 2;
                    if per_window > rows {
                        per_window -= per_window % rows;
                    }
                    continue;
                }
                out.extend(kinds.iter().copied().zip(windows));
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

    /// The edge words `word_lo..word_hi` (fewer than eight): a window for each row that owns
    /// some (`dense`'s grid takes one head's rows); `false` when a copy's source for them
    /// does not fit a binding.
    fn edge(&self, word_lo: u64, word_hi: u64, out: &mut DensePlan) -> bool {
        if word_lo >= word_hi {
            return true;
        }
        let s = self.shape;
        let per_word = 4 / s.size();
        let first_element = self.byte_offset / s.size();
        let owner =
            |word: u64| ((word * per_word).max(first_element) - first_element) / s.cols as u64;
        for row in owner(word_lo)..owner(word_hi - 1) + 1 {
            let start = self.row_element(row) * s.size();
            // The words that start in this row; skip to the edge's (a long row's tail lies
            // far from its start).
            let row_word = self.row_element(row).div_ceil(per_word);
            let first = word_lo.max(row_word);
            if first >= word_hi {
                continue;
            }
            let window = self.window(
                UnitKind::Word,
                row..row + 1,
                (start, word_hi * 4),
                first..word_hi,
                first - row_word,
            );
            out.push((UnitKind::Word, window));
            if !self.fits(&window) {
                return false;
            }
        }
        true
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
        // The window's first row: row head_row0 of head head0.
        let head_rows = s.rows as u64;
        let (head0, head_row0) = (rows.start / head_rows, rows.start % head_rows);
        // `count` invocations in order, `grid_rows` workgroups along x, then y.
        let in_order = |count: u64| {
            let workgroups = count.div_ceil(u64::from(WORKGROUP_SIZE));
            let x = workgroups.clamp(1, u64::from(u16::MAX));
            [x, workgroups.div_ceil(x).max(1), 1]
        };
        let groups = if unit.packed() {
            in_order(units.end - units.start)
        } else if unit.in_order() {
            in_order(count)
        } else {
            // A long row's units in workgroups of the kind's lanes; the edge's few words
            // (fewer than eight) in one.
            let groups_x = if unit.in_row() {
                row_units.div_ceil(u64::from(unit.lanes()))
            } else {
                1
            };
            // Rows of one head along y; whole heads, one a z slice.
            if head0 == (rows.end - 1) / head_rows {
                [groups_x, count, 1]
            } else {
                debug_assert!(head_row0 == 0 && count.is_multiple_of(head_rows));
                [groups_x, head_rows, count / head_rows]
            }
        };
        let row0_element = self.row_element(rows.start) - bind_element;
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
                head0: head0 as u32,
                head_row0: head_row0 as u32,
                row_count: count as u32,
                grid_rows: if unit.in_order() {
                    groups[0]
                } else {
                    groups[1]
                } as u32,
                row0_element: row0_element as u32,
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
                row_base: (row0_element as u32)
                    .wrapping_sub(((head0 * head_rows + head_row0) * s.cols as u64) as u32),
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
