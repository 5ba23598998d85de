//! The CPU path: the bias computed by the host's cores, for machines without an adapter and
//! for the host-mapped generation path, which writes these same values into device memory.
//!
//! Its row loop (`rows.rs`, shared with the host-mapped writer) is written for speed, and
//! its rows are spread over rayon's pool; the tests check it, like every other path, against
//! the one element at a time oracle in [`reference`](crate::reference), which shares no code
//! with it.

use crate::error::Result;
use crate::host::{sized_host, HostBias};
use crate::parallel::for_each_row_chunk;
use crate::rows::fill_elements;
use crate::validation::{check_heads, check_positions, check_sequence};

/// The bias `[total_heads, i, j]` of a fresh module with these slopes (docs/semantics.md, "Forward"),
/// computed on the host's cores.
///
/// ```
/// let slopes = alibi_wgpu::alibi_slopes(4).unwrap();
/// let bias = alibi_wgpu::cpu::forward(&slopes, 8, 3, 5).unwrap();
/// assert_eq!(bias.row(0, 0), &[-0.5, -0.25, 0.0, -0.25, -0.5]);
/// assert_eq!(bias.row(7, 2), &[0.0; 5]);
/// ```
///
/// # Errors
/// As a module: bad head counts, a sequence too long, and
/// [`AlibiError::OutOfMemory`](crate::AlibiError::OutOfMemory) when the host cannot hold it.
pub fn forward(slopes: &[f32], total_heads: usize, i: usize, j: usize) -> Result<HostBias> {
    let mut data = Vec::new();
    forward_into(slopes, total_heads, i, j, &mut data)?;
    Ok(HostBias::new([total_heads, i, j], data))
}

/// [`forward`] into a caller's vector (resized, then overwritten row-major), reusing its
/// capacity: a loop that reuses one vector pays for its pages once.
pub fn forward_into(
    slopes: &[f32],
    total_heads: usize,
    i: usize,
    j: usize,
    out: &mut Vec<f32>,
) -> Result<()> {
    fill(slopes, total_heads, i, j, false, out)
}

/// The bias of a causal module ([`AlibiConfig::causal`](crate::AlibiConfig::causal)):
/// [`forward`]'s values with every future key (`k > j - i + r`) of every head `-inf`.
///
/// ```
/// let bias = alibi_wgpu::cpu::forward_causal(&[0.5], 1, 2, 3).unwrap();
/// assert_eq!(bias.row(0, 0), &[-0.5, 0.0, f32::NEG_INFINITY]);
/// ```
pub fn forward_causal(slopes: &[f32], total_heads: usize, i: usize, j: usize) -> Result<HostBias> {
    let mut data = Vec::new();
    fill(slopes, total_heads, i, j, true, &mut data)?;
    Ok(HostBias::new([total_heads, i, j], data))
}

fn fill(
    slopes: &[f32],
    total_heads: usize,
    i: usize,
    j: usize,
    causal: bool,
    out: &mut Vec<f32>,
) -> Result<()> {
    check_heads(slopes.len(), total_heads)?;
    check_sequence(i, j)?;
    sized_host(out, total_heads, i, j)?;
    // An empty tensor (i or j zero) has no row: the loop does nothing.
    for_each_row_chunk(out, j, |chunk, first_row| {
        fill_elements(chunk, first_row * j, i, j, slopes, causal);
    });
    Ok(())
}

/// The bias at custom positions of one batch item, as
/// [`AlibiPositionalBias::forward_positions`](crate::AlibiPositionalBias::forward_positions)
/// computes it on a device: `[total_heads, queries.len(), keys.len()]`.
///
/// ```
/// let bias = alibi_wgpu::cpu::forward_positions(&[0.5], 1, &[2], &[0, 3], true).unwrap();
/// assert_eq!(bias.row(0, 0), &[-1.0, f32::NEG_INFINITY]);
/// ```
///
/// # Errors
/// Bad head counts, too many positions, positions beyond
/// ±[`MAX_POSITION`](crate::MAX_POSITION), and a host that cannot hold the result.
pub fn forward_positions(
    slopes: &[f32],
    total_heads: usize,
    queries: &[i32],
    keys: &[i32],
    causal: bool,
) -> Result<HostBias> {
    check_heads(slopes.len(), total_heads)?;
    let (i, j) = (queries.len(), keys.len());
    check_sequence(i, j)?;
    check_positions("query", queries)?;
    check_positions("key", keys)?;
    let mut out = Vec::new();
    sized_host(&mut out, total_heads, i, j)?;
    // An empty tensor (i or j zero) has no row: the loop does nothing.
    for_each_row_chunk(&mut out, j, |chunk, first_row| {
        for (n, row) in chunk.chunks_exact_mut(j).enumerate() {
            let (head, r) = ((first_row + n) / i, (first_row + n) % i);
            let slope = slopes.get(head).copied();
            for (value, &key) in row.iter_mut().zip(keys) {
                let offset = key - queries[r];
                *value = match slope {
                    _ if causal && offset > 0 => f32::NEG_INFINITY,
                    Some(slope) => (-offset.abs()) as f32 * slope,
                    None => 0.0,
                };
            }
        }
    });
    Ok(HostBias::new([total_heads, i, j], out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference;

    fn same_bits(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
    }

    #[test]
    fn equals_the_oracle_across_shapes_and_threads() {
        let slopes = crate::alibi_slopes(5).unwrap();
        for (total, i, j) in [
            (5, 1, 1),
            (6, 3, 5),
            (7, 5, 2),
            (6, 300, 700),
            (5, 1, 70_000),
        ] {
            let fast = forward(&slopes, total, i, j).unwrap();
            let oracle = reference::forward(&slopes, total, i, j).unwrap();
            assert!(
                same_bits(fast.as_slice(), oracle.as_slice()),
                "{total}x{i}x{j}"
            );
        }
    }

    #[test]
    fn causal_and_positions_equal_the_oracle() {
        let slopes = crate::alibi_slopes(3).unwrap();
        for (i, j) in [(1, 1), (4, 9), (9, 4), (33, 70)] {
            let fast = forward_causal(&slopes, 5, i, j).unwrap();
            let oracle = reference::forward_causal(&slopes, 5, i, j).unwrap();
            assert!(same_bits(fast.as_slice(), oracle.as_slice()), "{i}x{j}");
        }
        let queries = [5, -3, 0, 8_000_000, 7];
        let keys = [0, 1, 7, -8_000_000, 5, 5, 300];
        for causal in [false, true] {
            let fast = forward_positions(&slopes, 4, &queries, &keys, causal).unwrap();
            let oracle = reference::forward_positions(&slopes, 4, &queries, &keys, causal);
            assert!(same_bits(fast.as_slice(), oracle.unwrap().as_slice()));
        }
        assert!(forward_positions(&slopes, 4, &[1 << 24], &[0], false).is_err());
    }

    #[test]
    fn reused_vectors_are_overwritten_whole() {
        let slopes = [0.5, 0.25];
        let mut out = vec![f32::NAN; 1000];
        forward_into(&slopes, 4, 6, 9, &mut out).unwrap();
        let oracle = reference::forward(&slopes, 4, 6, 9).unwrap();
        assert!(same_bits(&out, oracle.as_slice()));
        forward_into(&slopes, 2, 0, 9, &mut out).unwrap();
        assert!(out.is_empty());
    }
}
