//! The host-mapped generation path: the host's cores write the bias straight into a device
//! buffer through a mapping.
//!
//! It exists for CPU adapters (lavapipe, llvmpipe, WARP, SwiftShader), whose device memory
//! is host memory and whose emulated shader cores are slow at storing (why, and by how much:
//! docs/performance.md). The CPU path's row loop ([`crate::cpu`]), vectorised and run on
//! rayon's pool, writes the same bytes (the tests compare both with the oracle, bit for bit)
//! at about the speed of a copy. Not on the web, where mappings cannot be waited for and no
//! adapter offers mappable storage buffers.

use std::ops::Range;

use crate::dtype::{saturate_to_f16_range, BiasDtype};
use crate::error::{AlibiError, MapError, Result};
use crate::generation::GenerateShape;
use crate::host::Tee;
use crate::parallel::{run, split_at_ends, split_ranges};
use crate::rows::fill_elements;
use half::slice::HalfFloatSliceExt as _;

/// Values computed into a small host block before each copy into the mapping: the block
/// stays in the L1/L2 cache, and mapped memory is only ever written, never read.
const BLOCK_VALUES: usize = 16 << 10;
/// Each thread maps its own part of the buffer; mapped ranges start at a multiple of
/// `wgpu::MAP_ALIGNMENT` (8 bytes), so the parts are whole multiples of this many values.
const PART_GRAIN_VALUES: usize = 1024;

/// Writes `shape` for `slopes` (heads past them are +0.0) from byte `byte_offset` (a
/// multiple of 8) of `buffer`, which is mapped for writing over those bytes (rounded up to
/// a word), then unmaps it; with a `tee`, the view's columns of every row are copied there
/// from the same values. The buffer needs `MAP_WRITE` usage. The bytes of a last word past
/// the tensor (an f16 tensor of odd length) are mapped but not written.
pub(crate) fn write_mapped(
    buffer: &wgpu::Buffer,
    byte_offset: u64,
    shape: GenerateShape,
    slopes: &[f32],
    tee: Option<Tee<'_>>,
) -> Result<()> {
    let len = shape.total_heads * shape.rows * shape.cols;
    let parts = split_ranges(len, PART_GRAIN_VALUES);
    // Each part's own slice of the tee: the tee elements its generated elements map to.
    let tee_parts: Vec<Option<(&mut [f32], usize)>> = match tee {
        Some(Tee { out, j }) => {
            assert_eq!(out.len(), shape.total_heads * shape.rows * j, "tee size");
            let ends = parts.iter().map(|part| tee_index(part.end, shape.cols, j));
            split_at_ends(out, ends)
                .into_iter()
                .map(|out| Some((out, j)))
                .collect()
        }
        None => parts.iter().map(|_| None).collect(),
    };
    // Unmapped however this ends, a panic in a worker included: a caller's buffer must
    // not stay mapped.
    let _unmap = UnmapOnDrop(buffer);
    let results = run(parts.into_iter().zip(tee_parts).collect(), |(part, tee)| {
        write_part(buffer, byte_offset, shape, slopes, part, tee)
    });
    results.into_iter().collect()
}

struct UnmapOnDrop<'a>(&'a wgpu::Buffer);

impl Drop for UnmapOnDrop<'_> {
    fn drop(&mut self) {
        self.0.unmap();
    }
}

/// Where generated element `element` (or the first kept one after it) lands in a tee of
/// `j` columns out of `cols`: rows keep their last `j` columns.
fn tee_index(element: usize, cols: usize, j: usize) -> usize {
    let (row, col) = (element / cols, element % cols);
    row * j + col.saturating_sub(cols - j)
}

/// One thread's part: maps its own byte range and fills it block by block.
fn write_part(
    buffer: &wgpu::Buffer,
    byte_offset: u64,
    shape: GenerateShape,
    slopes: &[f32],
    part: Range<usize>,
    mut tee: Option<(&mut [f32], usize)>,
) -> Result<()> {
    if part.is_empty() {
        return Ok(());
    }
    let cols = shape.cols;
    let size = shape.dtype.size();
    // Mapped ranges are whole words: the tensor's last part maps the rest of its last word.
    let bytes = byte_offset + (part.start * size) as u64
        ..byte_offset + ((part.end * size) as u64).next_multiple_of(4);
    let mut view = buffer
        .slice(bytes)
        .get_mapped_range_mut()
        .map_err(|source| AlibiError::Map {
            operation: "writing the bias from the host",
            source: MapError::Range(source),
        })?;
    let mut mapped = view.slice(..);
    let tee_base = tee
        .as_ref()
        .map_or(0, |&(_, j)| tee_index(part.start, cols, j));
    let mut block = vec![0.0f32; BLOCK_VALUES.min(part.len())];
    let mut narrow = match shape.dtype {
        BiasDtype::F16 => vec![half::f16::ZERO; block.len()],
        _ => Vec::new(),
    };
    // No value reaches ±65504 when the largest distance times the largest slope stays
    // below it (the usual case): the saturating pass is then skipped.
    // (In f64: the bound itself must not round down.)
    let largest_slope = slopes.iter().fold(0.0f64, |m, s| m.max(f64::from(s.abs())));
    let may_saturate = (shape.rows + shape.cols) as f64 * largest_slope >= 65504.0;
    let mut start = part.start;
    while start < part.end {
        let values = &mut block[..BLOCK_VALUES.min(part.end - start)];
        fill_elements(values, start, shape.rows, cols, slopes, shape.causal);
        let offset = (start - part.start) * size;
        let mut target = mapped.slice(offset..offset + values.len() * size);
        match shape.dtype {
            BiasDtype::F16 => {
                let narrow = &mut narrow[..values.len()];
                if may_saturate {
                    saturate_to_f16_range(values);
                }
                // `half` converts 4 or 8 values per instruction where the CPU has F16C
                // (rounding to nearest even), else one by one.
                narrow.convert_from_f32_slice(values);
                target.copy_from_slice(bytemuck::cast_slice(narrow));
                if tee.is_some() {
                    // The tee holds what was stored, widened back (exactly) to f32.
                    narrow.convert_to_f32_slice(values);
                }
            }
            _ => target.copy_from_slice(bytemuck::cast_slice(values)),
        }
        if let Some((out, j)) = tee.as_mut() {
            copy_kept_columns(values, start, cols, *j, out, tee_base);
        }
        start += values.len();
    }
    Ok(())
}

/// Copies the kept (last `j` of `cols`) columns of generated elements `start..` (`values`)
/// into `out`, whose first element is tee element `out_base`.
fn copy_kept_columns(
    values: &[f32],
    start: usize,
    cols: usize,
    j: usize,
    out: &mut [f32],
    out_base: usize,
) {
    let skip = cols - j;
    let end = start + values.len();
    let mut at = start;
    while at < end {
        let row = at / cols;
        let row_end = ((row + 1) * cols).min(end);
        let first_kept = at.max(row * cols + skip);
        if first_kept < row_end {
            let source = &values[first_kept - start..row_end - start];
            let target = tee_index(first_kept, cols, j) - out_base;
            out[target..target + source.len()].copy_from_slice(source);
        }
        at = row_end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_columns_land_where_the_view_has_them() {
        // 2 heads x 3 rows x 6 generated columns, a view of the last 4.
        let (cols, j) = (6, 4);
        let generated: Vec<f32> = (0..36).map(|v| v as f32).collect();
        let expected: Vec<f32> = generated
            .chunks(cols)
            .flat_map(|row| row[cols - j..].to_vec())
            .collect();
        // Cut anywhere: blocks and parts need not start at a row.
        for cuts in [
            vec![0, 36],
            vec![0, 5, 36],
            vec![0, 7, 8, 20, 36],
            vec![0, 1, 35, 36],
        ] {
            let mut out = vec![f32::NAN; 24];
            for pair in cuts.windows(2) {
                let (start, end) = (pair[0], pair[1]);
                let base = tee_index(start, cols, j);
                let stop = tee_index(end, cols, j);
                copy_kept_columns(
                    &generated[start..end],
                    start,
                    cols,
                    j,
                    &mut out[base..stop],
                    base,
                );
            }
            assert_eq!(out, expected, "cuts {cuts:?}");
        }
    }
}
