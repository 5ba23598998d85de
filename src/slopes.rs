//! Per-head slopes, computed on the CPU in f64 and rounded once to f32 (SPEC "Slopes").

use crate::error::{AlibiError, Result};
use crate::validation::{check_head_count, check_max_bias, check_slope};

/// Where the slopes of a module come from.
#[derive(Clone, Debug, PartialEq)]
pub enum SlopeSource {
    /// The paper's geometric sequence (x-transformers' `_get_slopes`), with the
    /// "every other slope of 2c" rule for head counts that are not a power of two.
    Paper,
    /// ggml / llama.cpp's form: `m0 = 2^(-max_bias / c)`, `m1 = 2^(-max_bias / 2c)`;
    /// `max_bias = 8` gives exactly [`SlopeSource::Paper`].
    MaxBias(f64),
    /// One slope per head, given by the caller (x-transformers' `slopes=`).
    Custom(Vec<f32>),
}

impl SlopeSource {
    /// The slopes of `heads` heads from this source, validated.
    pub fn resolve(&self, heads: usize) -> Result<Vec<f32>> {
        check_head_count(heads)?;
        let slopes = match self {
            SlopeSource::Paper => alibi_slopes_f64(heads),
            SlopeSource::MaxBias(max_bias) => max_bias_slopes_f64(heads, *max_bias)?,
            SlopeSource::Custom(given) => {
                if given.len() != heads {
                    return Err(AlibiError::SlopeCount {
                        heads,
                        given: given.len(),
                    });
                }
                given.iter().map(|&s| f64::from(s)).collect()
            }
        };
        slopes
            .iter()
            .enumerate()
            .map(|(head, &slope)| check_slope(head, slope))
            .collect()
    }
}

/// The slopes of x-transformers' `AlibiPositionalBias._get_slopes(heads)`, bit for bit.
///
/// ```
/// assert_eq!(alibi_wgpu::alibi_slopes(3).unwrap(), vec![0.0625, 0.00390625, 0.25]);
/// ```
pub fn alibi_slopes(heads: usize) -> Result<Vec<f32>> {
    SlopeSource::Paper.resolve(heads)
}

/// The slopes of ggml's `max_bias` form; `max_bias = 8.0` equals [`alibi_slopes`].
pub fn max_bias_slopes(heads: usize, max_bias: f64) -> Result<Vec<f32>> {
    SlopeSource::MaxBias(max_bias).resolve(heads)
}

/// Mirrors the Python reference operation for operation (`start * ratio ** i` in f64), so
/// that the single rounding to f32 sees the same f64 value PyTorch's `Tensor(list)` sees.
fn alibi_slopes_f64(heads: usize) -> Vec<f64> {
    fn power_of_two_slopes(n: usize) -> impl Iterator<Item = f64> {
        let start = 2f64.powf(-(2f64.powf(-((n as f64).log2() - 3.0))));
        (0..n).map(move |i| start * start.powf(i as f64))
    }
    let closest = largest_power_of_two_at_most(heads);
    power_of_two_slopes(closest)
        .chain(power_of_two_slopes(2 * closest).step_by(2))
        .take(heads)
        .collect()
}

/// ggml's `m0^(h+1)` / `m1^(2(h-c)+1)`, in f64.
fn max_bias_slopes_f64(heads: usize, max_bias: f64) -> Result<Vec<f64>> {
    check_max_bias(max_bias)?;
    let closest = largest_power_of_two_at_most(heads);
    let m0 = 2f64.powf(-max_bias / closest as f64);
    let m1 = 2f64.powf(-(max_bias / 2.0) / closest as f64);
    Ok((0..heads)
        .map(|h| {
            if h < closest {
                m0.powf((h + 1) as f64)
            } else {
                m1.powf((2 * (h - closest) + 1) as f64)
            }
        })
        .collect())
}

fn largest_power_of_two_at_most(n: usize) -> usize {
    1 << n.ilog2()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::MAX_HEADS;

    fn powers(exponents: &[f64]) -> Vec<f32> {
        exponents.iter().map(|&e| 2f64.powf(e) as f32).collect()
    }

    #[test]
    fn spec_known_values() {
        assert_eq!(alibi_slopes(1).unwrap(), powers(&[-8.0]));
        assert_eq!(alibi_slopes(2).unwrap(), powers(&[-4.0, -8.0]));
        assert_eq!(alibi_slopes(3).unwrap(), powers(&[-4.0, -8.0, -2.0]));
        assert_eq!(alibi_slopes(4).unwrap(), powers(&[-2.0, -4.0, -6.0, -8.0]));
        assert_eq!(
            alibi_slopes(5).unwrap(),
            powers(&[-2.0, -4.0, -6.0, -8.0, -1.0])
        );
        let eight: Vec<f64> = (1..=8).map(|k| -f64::from(k)).collect();
        assert_eq!(alibi_slopes(8).unwrap(), powers(&eight));
        let mut twelve = eight.clone();
        twelve.extend([-0.5, -1.5, -2.5, -3.5]);
        assert_eq!(alibi_slopes(12).unwrap(), powers(&twelve));
        let sixteen: Vec<f64> = (1..=16).map(|k| -f64::from(k) / 2.0).collect();
        assert_eq!(alibi_slopes(16).unwrap(), powers(&sixteen));
    }

    #[test]
    fn every_head_count_follows_the_closed_form() {
        // slope_h = 2^(-8 (h+1) / c) for h < c, 2^(-4 (2 (h-c) + 1) / c) otherwise.
        for heads in 1..=MAX_HEADS.min(300) {
            let c = largest_power_of_two_at_most(heads);
            let expected: Vec<f32> = (0..heads)
                .map(|h| {
                    let e = if h < c {
                        -8.0 * (h + 1) as f64 / c as f64
                    } else {
                        -4.0 * (2 * (h - c) + 1) as f64 / c as f64
                    };
                    2f64.powf(e) as f32
                })
                .collect();
            assert_eq!(alibi_slopes(heads).unwrap(), expected, "heads = {heads}");
        }
    }

    #[test]
    fn max_bias_eight_is_the_paper_rule() {
        for heads in 1..=300 {
            assert_eq!(
                max_bias_slopes(heads, 8.0).unwrap(),
                alibi_slopes(heads).unwrap(),
                "heads = {heads}"
            );
        }
    }

    #[test]
    fn rounding_once_differs_from_rounding_each_step_in_f32() {
        // Guards SPEC's "compute in f64, round once": the same chain in f32 gives other bits.
        let differing_head_counts = (1..=64usize)
            .filter(|&heads| {
                let f32_chain: Vec<f32> = {
                    let power_of_two = |n: usize| {
                        let start = 2f32.powf(-(2f32.powf(-((n as f32).log2() - 3.0))));
                        (0..n).map(move |i| start * start.powf(i as f32))
                    };
                    let c = largest_power_of_two_at_most(heads);
                    power_of_two(c)
                        .chain(power_of_two(2 * c).step_by(2))
                        .take(heads)
                        .collect()
                };
                f32_chain != alibi_slopes(heads).unwrap()
            })
            .count();
        assert!(differing_head_counts > 32, "{differing_head_counts}");
    }

    #[test]
    fn errors_name_the_value() {
        assert!(matches!(alibi_slopes(0), Err(AlibiError::ZeroHeads)));
        assert!(matches!(
            alibi_slopes(MAX_HEADS + 1),
            Err(AlibiError::TooManyHeads { count, .. }) if count == MAX_HEADS + 1
        ));
        assert!(matches!(
            SlopeSource::Custom(vec![1.0, f32::NAN]).resolve(2),
            Err(AlibiError::InvalidSlope { head: 1, .. })
        ));
        assert!(matches!(
            SlopeSource::Custom(vec![f32::INFINITY]).resolve(1),
            Err(AlibiError::InvalidSlope { head: 0, .. })
        ));
        assert!(matches!(
            SlopeSource::Custom(vec![1e-40]).resolve(1),
            Err(AlibiError::InvalidSlope { head: 0, .. })
        ));
        assert!(matches!(
            SlopeSource::Custom(vec![1.0]).resolve(2),
            Err(AlibiError::SlopeCount { heads: 2, given: 1 })
        ));
        assert!(matches!(
            max_bias_slopes(4, f64::NAN),
            Err(AlibiError::InvalidMaxBias(_))
        ));
        assert!(matches!(
            max_bias_slopes(1, 1000.0),
            Err(AlibiError::InvalidSlope { head: 0, .. })
        ));
    }
}
