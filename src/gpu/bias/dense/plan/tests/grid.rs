//! The dense kernels' grids run on the host: every invocation of every window of a plan,
//! as `dense.wgsl` indexes them, each unit checked against its binding and its cursor
//! against the tensor's, and the copy's reads against the source window.

use super::super::*;
use crate::gpu::dispatch::wgsl::WORKGROUP_SIZE;

/// Runs every invocation of every window as `dense.wgsl` does; returns the absolute words
/// written (in order) and checks each against its binding, and the copy's reads.
pub(super) fn run(
    shape: DenseShape,
    byte_offset: u64,
    source: Option<Source>,
    limits: PlanLimits,
) -> Vec<u64> {
    let Some(windows) = plan_dense(shape, byte_offset, source, limits).expect("a plan") else {
        return Vec::new();
    };
    let size = shape.dtype.size() as u64;
    let mut written = Vec::new();
    for (unit, window) in windows {
        let p = window.params;
        let unit_bytes = unit.bytes();
        let elements = unit_bytes / size;
        assert_eq!(window.bind_offset % limits.binding_alignment.max(4), 0);
        assert!(window.bind_size <= limits.max_binding_bytes, "{window:?}");
        for u in units_of(unit, &window, elements) {
            assert!(
                (u + 1) * unit_bytes <= window.bind_size,
                "unit {u} of {window:?}"
            );
            let first_word = (window.bind_offset + u * unit_bytes) / 4;
            written.extend(first_word..first_word + unit_bytes / 4);
            if let (Some(Source { layout }), Some((offset, bytes))) = (source, window.source) {
                // Each element of the unit inside the tensor, read from the source.
                let tensor_first = byte_offset / size;
                let tensor_end = tensor_first + shape.elements().unwrap();
                let bind_first = window.bind_offset / size;
                for e in u * elements..(u + 1) * elements {
                    let absolute = bind_first + e;
                    if absolute < tensor_first || absolute >= tensor_end {
                        continue;
                    }
                    let rel = absolute - tensor_first;
                    let (g, k) = (rel / shape.cols as u64, rel % shape.cols as u64);
                    let (h, r) = (g / shape.rows as u64, g % shape.rows as u64);
                    let read = layout.offset + h * layout.head_stride + r * layout.row_stride + k;
                    let relative = u64::from(p.source_base)
                        .wrapping_add(h * u64::from(p.source_head_stride))
                        .wrapping_add(r * u64::from(p.source_row_stride))
                        .wrapping_add(k)
                        % (1 << 32);
                    assert_eq!(read * size, offset + relative * size, "{window:?}");
                    assert!(relative * size < bytes, "read {read} of {window:?}");
                }
            }
        }
    }
    written
}

/// The units a window's invocations write, as the kernel indexes them (`dense` and
/// `dense_wide` workgroups of a row, `dense_crossing` a row per invocation, `dense_packed`
/// the units in order), each with the cursor (head, row, key) the kernel gives its first
/// element, checked against the tensor's.
fn units_of(unit: UnitKind, window: &Window<DenseParams>, elements: u64) -> Vec<u64> {
    let p = window.params;
    let [gx, gy, gz] = window.groups.map(u64::from);
    let (rows, cols) = (u64::from(p.rows), u64::from(p.cols));
    assert!(
        window.groups.iter().all(|&n| n <= u32::from(u16::MAX)),
        "{window:?}"
    );
    let row0 = u64::from(p.head0) * rows + u64::from(p.head_row0);
    let mut units = Vec::new();
    let mut cursor = |u: u64, at: [u64; 3]| {
        // The element's place from its index: row0_element is the first row's key 0.
        let element = u * elements - u64::from(p.row0_element);
        let global = row0 + element / cols;
        assert_eq!(
            at,
            [global / rows, global % rows, element % cols],
            "unit {u}"
        );
        units.push(u);
    };
    if unit.packed() {
        for y in 0..gy {
            for x in 0..gx * u64::from(WORKGROUP_SIZE) {
                let u = u64::from(p.unit_lo)
                    + y * u64::from(p.grid_rows) * u64::from(WORKGROUP_SIZE)
                    + x;
                if u >= u64::from(p.unit_hi) {
                    continue;
                }
                let element = u * elements - u64::from(p.row0_element);
                let along = quotient(element, cols);
                let in_head = u64::from(p.head_row0) + along;
                let heads = quotient(in_head, rows);
                let at = [
                    u64::from(p.head0) + heads,
                    in_head - heads * rows,
                    element - along * cols,
                ];
                assert!(along < u64::from(p.row_count), "unit {u} past its rows");
                cursor(u, at);
            }
        }
        return units;
    }
    if unit == UnitKind::Crossing {
        for y in 0..gy {
            for x in 0..gx * u64::from(WORKGROUP_SIZE) {
                let along = y * u64::from(p.grid_rows) * u64::from(WORKGROUP_SIZE) + x;
                if along >= u64::from(p.row_count) {
                    continue;
                }
                let row_end = u64::from(p.row0_element) + (along + 1) * cols;
                let u = row_end / elements;
                if row_end % elements == 0 || u < u64::from(p.unit_lo) || u >= u64::from(p.unit_hi)
                {
                    continue;
                }
                let in_head = u64::from(p.head_row0) + along;
                let heads = quotient(in_head, rows);
                let at = [u64::from(p.head0) + heads, in_head - heads * rows];
                cursor(u, [at[0], at[1], u * elements - (row_end - cols)]);
            }
        }
        return units;
    }
    for z in 0..gz {
        for y in 0..gy {
            // The grid holds the window's rows exactly: `dense` tests no row bound.
            let along = z * u64::from(p.grid_rows) + y;
            assert!(
                along < u64::from(p.row_count),
                "{p:?}: row {along} past the window"
            );
            // The grid's head and row (`cursor` checks them), and the row's first element
            // as `dense` finds it, in u32 arithmetic.
            let at = [u64::from(p.head0) + z, u64::from(p.head_row0) + y];
            let start = (at[0] as u32)
                .wrapping_mul(p.rows)
                .wrapping_add(at[1] as u32)
                .wrapping_mul(p.cols)
                .wrapping_add(p.row_base);
            let start = u64::from(start);
            assert_eq!(start, u64::from(p.row0_element) + along * cols, "{p:?}");
            for x in 0..gx * u64::from(unit.lanes()) {
                // `dense_row_vec4.wgsl`'s units end in their row (UNITS_IN_ROW), and read
                // neither unit_skip nor unit_hi; the edge's words read both.
                let (first, end) = if unit.in_row() {
                    (start.div_ceil(elements), (start + cols) / elements)
                } else {
                    let end = (start + cols).div_ceil(elements);
                    let first = start.div_ceil(elements) + u64::from(p.unit_skip);
                    (first, end.min(u64::from(p.unit_hi)))
                };
                let u = first + x;
                // No test of unit_lo: the plan starts every row's units past it.
                if u >= end {
                    continue;
                }
                cursor(u, [at[0], at[1], u * elements - start]);
            }
        }
    }
    units
}

/// `dense.wgsl`'s `quotient` with its f32 division off by up to 3 ulp, in both directions.
fn quotient(n: u64, d: u64) -> u64 {
    assert!(
        n / d < 1 << 20,
        "{n} / {d}: a quotient past the kernel's range"
    );
    let exact = n / d;
    for ulps in [-3i32, 0, 3] {
        let estimate = f32::from_bits(
            ((n as f32) / (d as f32))
                .to_bits()
                .wrapping_add_signed(ulps),
        );
        let q = estimate as u64;
        let down = if q * d > n { q - 1 } else { q };
        let corrected = if (down + 1) * d <= n { down + 1 } else { down };
        assert_eq!(corrected, exact, "{n} / {d} off by {ulps} ulp");
    }
    exact
}
