//! Per-head slopes, computed on the CPU in f64 and rounded once to f32 (docs/semantics.md, "Slopes").

use crate::error::{AlibiError, Result};
use crate::validation::{check_head_count, check_max_bias, check_slope};

/// Where the slopes of a module come from.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum SlopeSource {
    /// The paper's geometric sequence (x-transformers' `_get_slopes`), with the
    /// "every other slope of 2c" rule for head counts that are not a power of two.
    Paper,
    /// ggml / llama.cpp's form, `m0 = 2^(-max_bias / c)`, `m1 = 2^(-max_bias / 2c)`,
    /// computed exactly (f64, rounded once): the slopes the formula means. `max_bias = 8`
    /// gives exactly [`SlopeSource::Paper`]. Pick it to match a model trained with these
    /// slopes in PyTorch.
    MaxBias(f64),
    /// The f32 sequence of llama.cpp's CPU backend (ggml's `soft_max` with `max_bias`),
    /// operation for operation: `m0 = powf(2, -max_bias / c)`, `m1 = powf(2, -(max_bias /
    /// 2) / c)`, then `powf(m0, h + 1)` or `powf(m1, 2 (h - c) + 1)`, each rounded to f32.
    /// It differs from [`SlopeSource::MaxBias`] by an ulp or a few in most slopes (4,861 of
    /// the 6,240 slopes of 1..64 heads at `max_bias` 4, 8 and 16). Pick it to reproduce a
    /// llama.cpp run bit for bit: the values equal its CPU backend's where both use the same
    /// `powf` (glibc's, on Linux; the tests compile llama.cpp's lines with the system C
    /// compiler and compare).
    GgmlF32(f32),
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
            SlopeSource::GgmlF32(max_bias) => ggml_f32_slopes(heads, *max_bias)?,
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

/// llama.cpp's slopes (`ggml_compute_forward_soft_max_f32`), in f32 as it computes them;
/// returned in f64, exactly, for the shared checks.
fn ggml_f32_slopes(heads: usize, max_bias: f32) -> Result<Vec<f64>> {
    check_max_bias(f64::from(max_bias))?;
    // `n_head_log2` is a u32 that C converts to float in each division: exact, as heads is
    // at most MAX_HEADS.
    let n_head_log2 = largest_power_of_two_at_most(heads);
    let c = n_head_log2 as f32;
    let m0 = 2f32.powf(-max_bias / c);
    let m1 = 2f32.powf(-(max_bias / 2.0) / c);
    (0..heads)
        .map(|h| {
            let slope = if h < n_head_log2 {
                m0.powf((h + 1) as f32)
            } else {
                m1.powf((2 * (h - n_head_log2) + 1) as f32)
            };
            // A positive max_bias means positive slopes: a zero here is an f32 underflow,
            // refused like any slope too small for a normal f32.
            if slope == 0.0 {
                return Err(AlibiError::InvalidSlope {
                    head: h,
                    value: 0.0,
                    reason: "too small for a normal f32",
                });
            }
            Ok(f64::from(slope))
        })
        .collect()
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
        // Guards the rule "compute in f64, round once" (docs/semantics.md): the same chain in f32 gives other bits.
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

    #[test]
    fn ggml_f32_slopes_differ_from_the_exact_form_where_llama_cpp_does() {
        // The issue's count: llama.cpp's f32 slopes differ from the exact ones in 4,861 of
        // the 6,240 slopes of 1..64 heads at max_bias 4, 8 and 16.
        let mut differing = 0;
        let mut total = 0;
        for max_bias in [4.0f32, 8.0, 16.0] {
            for heads in 1..=64 {
                let ggml = SlopeSource::GgmlF32(max_bias).resolve(heads).unwrap();
                let exact = max_bias_slopes(heads, f64::from(max_bias)).unwrap();
                total += heads;
                differing += ggml.iter().zip(&exact).filter(|(g, e)| g != e).count();
                // A few ulps at most: the f32 errors of m0 and m1 compound through the
                // powers (9 ulps at worst here, just below 2^-15 where the ulp halves).
                for (g, e) in ggml.iter().zip(&exact) {
                    let ulps = (g.to_bits() as i64 - e.to_bits() as i64).abs();
                    assert!(ulps <= 16, "heads {heads}, max_bias {max_bias}: {g} vs {e}");
                }
            }
        }
        assert_eq!((differing, total), (4_861, 6_240));
    }

    #[test]
    fn ggml_f32_slopes_are_checked_like_the_others() {
        assert!(matches!(
            SlopeSource::GgmlF32(0.0).resolve(4),
            Err(AlibiError::InvalidMaxBias(_))
        ));
        assert!(matches!(
            SlopeSource::GgmlF32(f32::NAN).resolve(4),
            Err(AlibiError::InvalidMaxBias(_))
        ));
        assert!(matches!(
            SlopeSource::GgmlF32(1000.0).resolve(1),
            Err(AlibiError::InvalidSlope { head: 0, .. })
        ));
        // Powers of two stay exact in f32 too.
        assert_eq!(
            SlopeSource::GgmlF32(8.0).resolve(4).unwrap(),
            alibi_slopes(4).unwrap()
        );
    }
}
