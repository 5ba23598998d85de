//! The CPU reference: the oracle of the tests and the CLI's fallback when no adapter exists.
//!
//! It mirrors `shaders/alibi_bias.wgsl` operation for operation: the distance is an exact
//! integer, negated, converted to f32, then multiplied by the f32 slope. Keep the two in sync.

use std::ops::Range;

use crate::error::{AlibiError, Result};
use crate::host::HostBias;
use crate::slopes::MAX_HEADS;

/// Largest supported `i` or `j`: every distance below it is exact in f32.
pub const MAX_SEQUENCE: usize = 1 << 24;

/// One bias value: `(-|key - query|) as f32 * slope` (SPEC "forward"); the row loops below
/// compute the same expression in i32.
///
/// Negating before the multiplication gives the same value as `-(slope * distance)` and
/// `+0.0` (not `-0.0`) on the diagonal, as PyTorch does.
#[inline]
pub fn bias_value(slope: f32, query_position: i64, key_position: i64) -> f32 {
    (-(key_position - query_position).abs()) as f32 * slope
}

/// Checks a request as a module would, without computing it: `heads` (with slopes) in
/// `1..=MAX_HEADS`, `total_heads >= heads`, `i` and `j` at most [`MAX_SEQUENCE`].
///
/// ```
/// use alibi_wgpu::{reference, AlibiError};
/// assert!(reference::validate(4, 8, 3, 5).is_ok());
/// assert!(matches!(reference::validate(4, 2, 3, 5), Err(AlibiError::TotalHeadsBelowHeads { .. })));
/// ```
pub fn validate(heads: usize, total_heads: usize, i: usize, j: usize) -> Result<()> {
    check_heads(heads, total_heads)?;
    check_sequence(i, j)
}

/// Checks `i` and `j` against [`MAX_SEQUENCE`].
pub(crate) fn check_sequence(i: usize, j: usize) -> Result<()> {
    for (what, value) in [("i", i), ("j", j)] {
        if value > MAX_SEQUENCE {
            return Err(AlibiError::SequenceTooLong {
                what,
                value,
                limit: MAX_SEQUENCE,
            });
        }
    }
    Ok(())
}

/// Makes `out` a `[heads, i, j]` tensor of zeros, or says why it cannot. A vector without
/// the room gets new, lazily zeroed pages (calloc): no zeroing pass, and the page faults then
/// happen inside the row-parallel fill, spread over the cores.
pub(crate) fn zeroed_host(out: &mut Vec<f32>, heads: usize, i: usize, j: usize) -> Result<()> {
    let len = host_len(heads, i, j)?;
    if out.capacity() >= len {
        out.clear();
        out.resize(len, 0.0);
        Ok(())
    } else {
        calloc_host(out, heads, i, j, len)
    }
}

/// Makes `out` `[heads, i, j]` long for a caller that overwrites every element: values
/// already there are kept rather than zeroed (a reused vector costs no pass over its
/// memory); a vector without the room gets new lazily zeroed pages, as in [`zeroed_host`].
pub(crate) fn sized_host(out: &mut Vec<f32>, heads: usize, i: usize, j: usize) -> Result<()> {
    let len = host_len(heads, i, j)?;
    if out.capacity() >= len {
        out.truncate(len);
        out.resize(len, 0.0);
        Ok(())
    } else {
        calloc_host(out, heads, i, j, len)
    }
}

fn host_len(heads: usize, i: usize, j: usize) -> Result<usize> {
    heads
        .checked_mul(i)
        .and_then(|n| n.checked_mul(j))
        .ok_or_else(|| host_alloc_error(heads, i, j))
}

fn calloc_host(out: &mut Vec<f32>, heads: usize, i: usize, j: usize, len: usize) -> Result<()> {
    // The old allocation goes first, so the two never coexist.
    *out = Vec::new();
    *out = bytemuck::try_zeroed_vec(len).map_err(|()| host_alloc_error(heads, i, j))?;
    Ok(())
}

fn host_alloc_error(heads: usize, i: usize, j: usize) -> AlibiError {
    AlibiError::HostAlloc {
        heads,
        i,
        j,
        bytes: heads as u128 * i as u128 * j as u128 * 4,
    }
}

/// Checks `total_heads >= heads`, both within bounds.
pub(crate) fn check_heads(heads: usize, total_heads: usize) -> Result<()> {
    if heads == 0 {
        return Err(AlibiError::ZeroHeads);
    }
    if heads > MAX_HEADS {
        return Err(AlibiError::TooManyHeads {
            what: "heads",
            count: heads,
            limit: MAX_HEADS,
        });
    }
    if total_heads < heads {
        return Err(AlibiError::TotalHeadsBelowHeads { heads, total_heads });
    }
    Ok(())
}

/// The bias `[total_heads, i, j]` of a fresh module with these slopes (SPEC "forward").
///
/// ```
/// let slopes = alibi_wgpu::alibi_slopes(4).unwrap();
/// let bias = alibi_wgpu::reference::forward(&slopes, 8, 3, 5).unwrap();
/// assert_eq!(bias.row(0, 0), &[-0.5, -0.25, 0.0, -0.25, -0.5]);
/// assert_eq!(bias.row(7, 2), &[0.0; 5]);
/// ```
pub fn forward(slopes: &[f32], total_heads: usize, i: usize, j: usize) -> Result<HostBias> {
    let mut data = Vec::new();
    forward_into(slopes, total_heads, i, j, &mut data)?;
    Ok(HostBias::new([total_heads, i, j], data))
}

/// [`forward`] into a caller's vector (cleared, then filled row-major), reusing its
/// capacity: a loop that reuses one vector pays for its pages once.
pub fn forward_into(
    slopes: &[f32],
    total_heads: usize,
    i: usize,
    j: usize,
    out: &mut Vec<f32>,
) -> Result<()> {
    check_heads(slopes.len(), total_heads)?;
    check_sequence(i, j)?;
    zeroed_host(out, total_heads, i, j)?;
    // Heads past `slopes.len()` stay +0.0, as x-transformers' zero padding.
    for_each_row_chunk(&mut out[..slopes.len() * i * j], j, |chunk, first_row| {
        fill_row_range(chunk, first_row, i, j, slopes)
    });
    Ok(())
}

/// The distance matrix `[1, i, j]`: `-|k - (j - i + r)|` (SPEC "get_bias").
pub fn get_bias(i: usize, j: usize) -> Result<HostBias> {
    forward(&[1.0], 1, i, j)
}

/// Runs `fill(chunk, first_row)` over consecutive chunks of whole rows of `row_len` values
/// that cover `data`, on one thread per core when `data` is large (the CPU reference and
/// the readback's gather are both memory-bound row copies).
pub(crate) fn for_each_row_chunk(
    data: &mut [f32],
    row_len: usize,
    fill: impl Fn(&mut [f32], usize) + Sync,
) {
    if data.is_empty() {
        return;
    }
    let ranges = split_ranges(data.len(), row_len);
    let first_rows = ranges.iter().map(|range| range.start / row_len);
    let chunks = split_at_ends(data, ranges.iter().map(|range| range.end));
    run_parallel(
        chunks.into_iter().zip(first_rows).collect(),
        |(chunk, first_row)| fill(chunk, first_row),
    );
}

/// Cuts `data` into consecutive slices that end at each of `ends` (increasing, the last
/// one `data.len()`): one slice per thread of [`split_ranges`]' ranges, or of what they map
/// to.
pub(crate) fn split_at_ends<T>(
    mut data: &mut [T],
    ends: impl IntoIterator<Item = usize>,
) -> Vec<&mut [T]> {
    let mut taken = 0;
    let mut parts = Vec::new();
    for end in ends {
        let (part, rest) = std::mem::take(&mut data).split_at_mut(end - taken);
        parts.push(part);
        data = rest;
        taken = end;
    }
    parts
}

/// Splits `0..len` (`len` values to write) into one range per core worth a thread, each a
/// multiple of `grain` long but the last.
pub(crate) fn split_ranges(len: usize, grain: usize) -> Vec<Range<usize>> {
    let threads = worker_threads(len);
    if threads <= 1 {
        return std::iter::once(0..len).collect();
    }
    let per_thread = len.div_ceil(threads).next_multiple_of(grain.max(1));
    (0..len)
        .step_by(per_thread)
        .map(|start| start..(start + per_thread).min(len))
        .collect()
}

/// Runs `work` on each item, one thread per item (inline when there is one), and returns
/// the results in order; a panic in a thread is resumed here.
pub(crate) fn run_parallel<I: Send, T: Send>(
    items: Vec<I>,
    work: impl Fn(I) -> T + Sync,
) -> Vec<T> {
    if items.len() <= 1 {
        return items.into_iter().map(work).collect();
    }
    let work = &work;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .into_iter()
            .map(|item| scope.spawn(move || work(item)))
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p))
            })
            .collect()
    })
}

/// Fills whole rows starting at global row `first_row` (= head * i + r) of a tensor with
/// `slopes.len()` heads.
fn fill_row_range(chunk: &mut [f32], first_row: usize, i: usize, j: usize, slopes: &[f32]) {
    for (n, row) in chunk.chunks_exact_mut(j).enumerate() {
        let global_row = first_row + n;
        let query = query_position(global_row % i, i, j);
        fill_row_segment(row, Some(slopes[global_row / i]), query, 0);
    }
}

/// Fills `out` with row elements `first_key..` of `[heads, i, j]` elements `start..`:
/// `start` need not be a row start, so the caller can cut the tensor anywhere. Heads past
/// `slopes.len()` are +0.0 (padding).
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) fn fill_elements(out: &mut [f32], start: usize, i: usize, j: usize, slopes: &[f32]) {
    let mut done = 0;
    while done < out.len() {
        let element = start + done;
        let (global_row, first_key) = (element / j, element % j);
        let len = (j - first_key).min(out.len() - done);
        let slope = slopes.get(global_row / i).copied();
        let query = query_position(global_row % i, i, j);
        fill_row_segment(&mut out[done..done + len], slope, query, first_key);
        done += len;
    }
}

/// Where query row `r` of `i` sits among `j` keys: queries are aligned to the end of the
/// keys. Positions fit in i32 (`i, j <= 2^24`), which lets the row loop vectorise (i32 ->
/// f32 is one instruction).
fn query_position(r: usize, i: usize, j: usize) -> i32 {
    j as i32 - i as i32 + r as i32
}

/// The one row loop of the crate: keys `first_key..` of a query row, `(-|k - q|) as f32 *
/// slope` ([`bias_value`]), or +0.0 for a padding head (`slope` `None`).
fn fill_row_segment(out: &mut [f32], slope: Option<f32>, query: i32, first_key: usize) {
    let Some(slope) = slope else {
        out.fill(0.0);
        return;
    };
    // Distances relative to the segment's first key: `enumerate` keeps the loop in the
    // shape the compiler vectorises.
    let offset = first_key as i32 - query;
    for (k, value) in out.iter_mut().enumerate() {
        *value = (-(k as i32 + offset).abs()) as f32 * slope;
    }
}

/// Threads worth spawning for `values` outputs: one per core, none for small tensors.
fn worker_threads(values: usize) -> usize {
    const VALUES_PER_THREAD: usize = 1 << 18;
    if cfg!(target_arch = "wasm32") || values < 2 * VALUES_PER_THREAD {
        return 1;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.min(values / VALUES_PER_THREAD)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_worked_example() {
        let slopes = [0.25, 0.0625, 0.015625, 0.00390625];
        let bias = forward(&slopes, 8, 3, 5).unwrap();
        let distance = [
            [-2.0, -1.0, 0.0, -1.0, -2.0],
            [-3.0, -2.0, -1.0, 0.0, -1.0],
            [-4.0, -3.0, -2.0, -1.0, 0.0],
        ];
        for h in 0..8 {
            let slope = slopes.get(h).copied();
            for (r, row) in distance.iter().enumerate() {
                let expected: Vec<f32> = row.iter().map(|d| slope.map_or(0.0, |s| d * s)).collect();
                assert_eq!(bias.row(h, r), &expected[..]);
            }
        }
    }

    #[test]
    fn diagonal_is_positive_zero_like_pytorch() {
        let bias = get_bias(2, 2).unwrap();
        assert_eq!(bias.row(0, 0)[0].to_bits(), 0.0f32.to_bits());
        let padded = forward(&[0.5], 2, 1, 1).unwrap();
        assert_eq!(padded.as_slice()[1].to_bits(), 0.0f32.to_bits());
    }

    #[test]
    fn more_queries_than_keys_sit_at_negative_positions() {
        // i = 3 > j = 2: query rows at positions -1, 0, 1.
        let bias = get_bias(3, 2).unwrap();
        assert_eq!(bias.as_slice(), &[-1.0, -2.0, 0.0, -1.0, -1.0, 0.0]);
    }

    #[test]
    fn empty_shapes_are_empty_not_errors() {
        assert!(forward(&[0.5], 2, 0, 7).unwrap().is_empty());
        assert_eq!(forward(&[0.5], 2, 7, 0).unwrap().shape(), [2, 7, 0]);
    }

    #[test]
    fn row_loops_equal_bias_value() {
        let slopes = crate::alibi_slopes(3).unwrap();
        let (i, j) = (5, 9);
        let bias = forward(&slopes, 3, i, j).unwrap();
        for (h, &slope) in slopes.iter().enumerate() {
            for r in 0..i {
                for k in 0..j {
                    let q = (j - i + r) as i64;
                    assert_eq!(bias.get(h, r, k), Some(bias_value(slope, q, k as i64)));
                }
            }
        }
    }

    #[test]
    fn threaded_fill_equals_single_thread() {
        let slopes = crate::alibi_slopes(5).unwrap();
        let (i, j) = (300, 700);
        let threaded = forward(&slopes, 6, i, j).unwrap();
        let mut single = vec![0.0; 5 * i * j];
        fill_row_range(&mut single, 0, i, j, &slopes);
        assert_eq!(&threaded.as_slice()[..single.len()], &single[..]);
    }

    #[test]
    fn elements_from_any_start_equal_whole_rows() {
        let slopes = crate::alibi_slopes(3).unwrap();
        let (i, j) = (5, 7);
        let whole = forward(&slopes, 4, i, j).unwrap();
        for (start, len) in [(0, 140), (3, 1), (6, 9), (33, 70), (104, 36), (139, 1)] {
            let mut part = vec![f32::NAN; len];
            fill_elements(&mut part, start, i, j, &slopes);
            let expected = &whole.as_slice()[start..start + len];
            assert!(
                part.iter()
                    .zip(expected)
                    .all(|(a, e)| a.to_bits() == e.to_bits()),
                "elements {start}..{}",
                start + len
            );
        }
    }

    #[test]
    fn ranges_cover_in_order_and_respect_the_grain() {
        for len in [0, 1, 1000, (1 << 19) + 5, 3 << 20] {
            let ranges = split_ranges(len, 1024);
            assert_eq!(ranges.first().map_or(0, |r| r.start), 0);
            assert_eq!(ranges.last().map_or(0, |r| r.end), len);
            for pair in ranges.windows(2) {
                assert_eq!(pair[0].end, pair[1].start);
                assert_eq!(pair[0].len() % 1024, 0);
            }
        }
        let lens: Vec<usize> = run_parallel(split_ranges(3 << 20, 1024), |r| r.len());
        assert_eq!(lens.iter().sum::<usize>(), 3 << 20);
    }

    #[test]
    fn sized_vectors_keep_their_memory_and_zeroed_ones_are_zero() {
        let mut out = vec![7.0f32; 100];
        let before = out.as_ptr();
        sized_host(&mut out, 2, 5, 8).unwrap();
        assert_eq!((out.len(), out.as_ptr()), (80, before));
        zeroed_host(&mut out, 2, 5, 10).unwrap();
        assert_eq!((out.len(), out.as_ptr()), (100, before));
        assert!(out.iter().all(|&v| v == 0.0));
        sized_host(&mut out, 3, 5, 10).unwrap();
        assert_eq!(out.len(), 150);
        assert!(out.iter().all(|&v| v == 0.0), "new room is zeroed");
    }

    #[test]
    fn errors() {
        assert!(matches!(forward(&[], 1, 1, 1), Err(AlibiError::ZeroHeads)));
        assert!(matches!(
            forward(&[1.0, 1.0], 1, 1, 1),
            Err(AlibiError::TotalHeadsBelowHeads {
                heads: 2,
                total_heads: 1
            })
        ));
        assert!(matches!(
            get_bias(MAX_SEQUENCE + 1, 1),
            Err(AlibiError::SequenceTooLong { what: "i", .. })
        ));
        assert!(matches!(
            forward(&[1.0], usize::MAX / 2, 1 << 20, 1 << 20),
            Err(AlibiError::HostAlloc { .. })
        ));
    }
}
