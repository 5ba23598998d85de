//! The oracle: the formula of docs/semantics.md, one element at a time, written to be obviously right rather
//! than fast. Every path of the crate (the WGSL kernel, the host-mapped writer, the CPU path)
//! is tested against it with `==`, and it shares no code with any of them but the request
//! checks.

use crate::error::{AlibiError, Result};
use crate::host::HostBias;
use crate::validation::{check_heads, check_positions, check_sequence};

/// One bias value: `(-|key - query|) as f32 * slope` (docs/semantics.md, "Forward").
///
/// Negating the exact integer distance before the f32 multiplication gives the same value
/// as `-(slope * distance)`, and `+0.0` (not `-0.0`) on the diagonal, as PyTorch does.
#[inline]
pub fn bias_value(slope: f32, query_position: i64, key_position: i64) -> f32 {
    (-(key_position - query_position).abs()) as f32 * slope
}

/// One causal bias value: [`bias_value`], or `-inf` for a future key
/// (`key_position > query_position`) (docs/semantics.md, "Causal").
#[inline]
pub fn causal_bias_value(slope: f32, query_position: i64, key_position: i64) -> f32 {
    if key_position > query_position {
        f32::NEG_INFINITY
    } else {
        bias_value(slope, query_position, key_position)
    }
}

/// The bias `[total_heads, i, j]` of a fresh module with these slopes (docs/semantics.md, "Forward"):
/// query row `r` sits at position `j - i + r`, key column `k` at `k`, heads past
/// `slopes.len()` are +0.0.
///
/// ```
/// let slopes = alibi_wgpu::alibi_slopes(4).unwrap();
/// let bias = alibi_wgpu::reference::forward(&slopes, 8, 3, 5).unwrap();
/// assert_eq!(bias.row(0, 0), &[-0.5, -0.25, 0.0, -0.25, -0.5]);
/// assert_eq!(bias.row(7, 2), &[0.0; 5]);
/// ```
///
/// # Errors
/// The module's request errors, and [`AlibiError::OutOfMemory`] for a tensor the host
/// cannot hold.
pub fn forward(slopes: &[f32], total_heads: usize, i: usize, j: usize) -> Result<HostBias> {
    build(slopes, total_heads, i, j, |slope, query, key| {
        slope.map_or(0.0, |slope| bias_value(slope, query, key))
    })
}

/// [`forward`] of a causal module: every future key (`k > j - i + r`) of every head,
/// padding heads included, is `-inf`.
pub fn forward_causal(slopes: &[f32], total_heads: usize, i: usize, j: usize) -> Result<HostBias> {
    build(slopes, total_heads, i, j, |slope, query, key| match slope {
        Some(slope) => causal_bias_value(slope, query, key),
        // +0.0 where a padding head is not masked.
        None if key > query => f32::NEG_INFINITY,
        None => 0.0,
    })
}

/// The bias `[total_heads, i, j]` at custom positions (x-transformers'
/// `forward_custom_pos`, docs/semantics.md, "Positions"): query row `r` at `queries[r]`, key column `k` at
/// `keys[k]`; padding heads +0.0; when `causal`, `-inf` wherever `keys[k] > queries[r]`.
/// One batch item: call it once per item for a batch.
pub fn forward_positions(
    slopes: &[f32],
    total_heads: usize,
    queries: &[i32],
    keys: &[i32],
    causal: bool,
) -> Result<HostBias> {
    check_positions("query", queries)?;
    check_positions("key", keys)?;
    let (i, j) = (queries.len(), keys.len());
    let positions = (|r| i64::from(queries[r]), |k| i64::from(keys[k]));
    build_at(slopes, total_heads, i, j, positions, |slope, query, key| {
        if causal && key > query {
            f32::NEG_INFINITY
        } else {
            slope.map_or(0.0, |slope| bias_value(slope, query, key))
        }
    })
}

/// `[total_heads, i, j]` of `value(slope, query position, key position)`, the slope `None`
/// for padding heads, query row `r` at position `j - i + r`, key column `k` at `k`.
fn build(
    slopes: &[f32],
    total_heads: usize,
    i: usize,
    j: usize,
    value: impl Fn(Option<f32>, i64, i64) -> f32,
) -> Result<HostBias> {
    let positions = (|r| j as i64 - i as i64 + r as i64, |k| k as i64);
    build_at(slopes, total_heads, i, j, positions, value)
}

/// [`build`] with query row `r` at `query(r)` and key column `k` at `key(k)`.
fn build_at(
    slopes: &[f32],
    total_heads: usize,
    i: usize,
    j: usize,
    (query, key): (impl Fn(usize) -> i64, impl Fn(usize) -> i64),
    value: impl Fn(Option<f32>, i64, i64) -> f32,
) -> Result<HostBias> {
    check_heads(slopes.len(), total_heads)?;
    check_sequence(i, j)?;
    let len = total_heads as u128 * i as u128 * j as u128;
    let out_of_memory = || AlibiError::host_out_of_memory(len, "the reference bias");
    let mut data = Vec::new();
    data.try_reserve_exact(usize::try_from(len).map_err(|_| out_of_memory())?)
        .map_err(|_| out_of_memory())?;
    for h in 0..total_heads {
        let slope = slopes.get(h).copied();
        for r in 0..i {
            for k in 0..j {
                data.push(value(slope, query(r), key(k)));
            }
        }
    }
    Ok(HostBias::new([total_heads, i, j], data))
}

/// The distance matrix `[1, i, j]`: `-|k - (j - i + r)|` (docs/semantics.md, "get_bias").
pub fn get_bias(i: usize, j: usize) -> Result<HostBias> {
    forward(&[1.0], 1, i, j)
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
    fn diagonal_and_padding_are_positive_zero_like_pytorch() {
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
    fn distances_are_exact_up_to_the_sequence_limit() {
        let far = crate::MAX_SEQUENCE as i64;
        assert_eq!(bias_value(1.0, 0, far), -(far as f32));
        assert_eq!(bias_value(0.5, far, 1), -((far - 1) as f32) * 0.5);
        assert_eq!(bias_value(2.0, 5, 2), -6.0);
    }

    #[test]
    fn causal_masks_future_keys_of_every_head() {
        // i = 2, j = 3: query rows at positions 1 and 2.
        let bias = forward_causal(&[0.5], 2, 2, 3).unwrap();
        let inf = f32::NEG_INFINITY;
        assert_eq!(
            bias.as_slice(),
            &[-0.5, 0.0, inf, -1.0, -0.5, 0.0, 0.0, 0.0, inf, 0.0, 0.0, 0.0]
        );
        assert!(bias.as_slice()[6..]
            .iter()
            .all(|v| *v == inf || v.to_bits() == 0));
        assert_eq!(causal_bias_value(0.25, 3, 3).to_bits(), 0);
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
            get_bias(crate::MAX_SEQUENCE + 1, 1),
            Err(AlibiError::SequenceTooLong { what: "i", .. })
        ));
        let (heads, i, j) = (usize::MAX / 2, 1 << 20, 1 << 20);
        match forward(&[1.0], heads, i, j) {
            Err(AlibiError::OutOfMemory { bytes, .. }) => {
                assert_eq!(bytes, Some(heads as u128 * i as u128 * j as u128 * 4));
            }
            other => panic!("{other:?}"),
        }
    }
}
