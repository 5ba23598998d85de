//! Every check of a request, in one place: the module, the CPU path, the reference and the
//! CLI all call these, so a request is refused with the same error wherever it goes.

use crate::error::{AlibiError, Result};

/// The largest number of heads with a slope: the slope uniform is `array<vec4<f32>, 1024>`,
/// 16 KiB, the smallest uniform binding every wgpu backend (WebGL2 included) accepts.
pub const MAX_HEADS: usize = 4096;

/// Largest supported `i` or `j`: every distance below it is exact in f32.
pub const MAX_SEQUENCE: usize = 1 << 24;

/// Checks a request as a module would, without computing it: `heads` (with slopes) in
/// `1..=MAX_HEADS`, `total_heads >= heads`, `i` and `j` at most [`MAX_SEQUENCE`]. Limits
/// of a device (its buffer and binding sizes) are checked when a module generates.
///
/// ```
/// use alibi_wgpu::{validate, AlibiError};
/// assert!(validate(4, 8, 3, 5).is_ok());
/// assert!(matches!(validate(4, 2, 3, 5), Err(AlibiError::TotalHeadsBelowHeads { .. })));
/// ```
pub fn validate(heads: usize, total_heads: usize, i: usize, j: usize) -> Result<()> {
    check_heads(heads, total_heads)?;
    check_sequence(i, j)
}

/// Checks `heads` alone: at least 1, at most [`MAX_HEADS`].
pub(crate) fn check_head_count(heads: usize) -> Result<()> {
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
    Ok(())
}

/// Checks `heads` and `total_heads >= heads`.
pub(crate) fn check_heads(heads: usize, total_heads: usize) -> Result<()> {
    check_head_count(heads)?;
    if total_heads < heads {
        return Err(AlibiError::TotalHeadsBelowHeads { heads, total_heads });
    }
    Ok(())
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

/// The largest custom position magnitude: distances then stay within 2^24, where every
/// integer is an exact f32.
pub const MAX_POSITION: i32 = 1 << 23;

/// Checks custom positions (`side` is `query` or `key`) against ±[`MAX_POSITION`].
pub(crate) fn check_positions(side: &'static str, values: &[i32]) -> Result<()> {
    match values
        .iter()
        .position(|v| v.unsigned_abs() > MAX_POSITION as u32)
    {
        Some(index) => Err(AlibiError::PositionOutOfRange {
            side,
            index,
            value: values[index],
            limit: MAX_POSITION,
        }),
        None => Ok(()),
    }
}

/// Rounds head `head`'s f64 slope to the f32 the GPU gets, refusing what would not be that
/// value on every device: NaN, infinities, overflow, and subnormals (which GPUs may flush
/// to zero). Zero is allowed.
pub(crate) fn check_slope(head: usize, slope: f64) -> Result<f32> {
    let invalid = |reason| AlibiError::InvalidSlope {
        head,
        value: slope,
        reason,
    };
    if !slope.is_finite() {
        return Err(invalid("not finite"));
    }
    let rounded = slope as f32;
    if rounded.is_infinite() {
        return Err(invalid("too large for f32"));
    }
    if rounded.is_subnormal() || (rounded == 0.0 && slope != 0.0) {
        return Err(invalid("too small for a normal f32"));
    }
    Ok(rounded)
}

/// Checks ggml's `max_bias`: finite and positive.
pub(crate) fn check_max_bias(max_bias: f64) -> Result<()> {
    if max_bias.is_finite() && max_bias > 0.0 {
        Ok(())
    } else {
        Err(AlibiError::InvalidMaxBias(max_bias))
    }
}

/// What a bias needs of a caller's buffer, for [`AlibiError::TargetTooSmall`].
pub(crate) const BIAS_TARGET: &str =
    "the dense bias after its byte offset (its bytes rounded up to a word)";

/// Checks that a caller's buffer of `target_usage` and `target_size` bytes has `usage` and
/// at least `needed` bytes for `what`, of shape `[heads, i, j]`.
pub(crate) fn check_target(
    (target_usage, target_size): (wgpu::BufferUsages, u64),
    needed: u64,
    usage: wgpu::BufferUsages,
    (what, [heads, i, j]): (&'static str, [usize; 3]),
) -> Result<()> {
    if !target_usage.contains(usage) {
        return Err(AlibiError::TargetUsage {
            usage: target_usage,
            needed: usage,
        });
    }
    if target_size < needed {
        return Err(AlibiError::TargetTooSmall {
            what,
            heads,
            i,
            j,
            needed,
            size: target_size,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_at_their_limits() {
        assert!(matches!(check_heads(0, 0), Err(AlibiError::ZeroHeads)));
        assert!(check_heads(1, 1).is_ok());
        assert!(check_heads(MAX_HEADS, MAX_HEADS).is_ok());
        assert!(matches!(
            check_heads(MAX_HEADS + 1, MAX_HEADS + 1),
            Err(AlibiError::TooManyHeads { count, limit, .. }) if count == MAX_HEADS + 1 && limit == MAX_HEADS
        ));
        assert!(check_heads(3, 3).is_ok(), "total_heads == heads");
        assert!(matches!(
            check_heads(3, 2),
            Err(AlibiError::TotalHeadsBelowHeads {
                heads: 3,
                total_heads: 2
            })
        ));
    }

    #[test]
    fn sequences_at_their_limit() {
        assert!(check_sequence(MAX_SEQUENCE, MAX_SEQUENCE).is_ok());
        assert!(check_sequence(0, 0).is_ok());
        assert!(matches!(
            check_sequence(MAX_SEQUENCE + 1, 1),
            Err(AlibiError::SequenceTooLong { what: "i", value, .. }) if value == MAX_SEQUENCE + 1
        ));
        assert!(matches!(
            check_sequence(1, MAX_SEQUENCE + 1),
            Err(AlibiError::SequenceTooLong { what: "j", .. })
        ));
        assert!(validate(1, 1, MAX_SEQUENCE + 1, 1).is_err());
        assert!(validate(0, 1, 1, 1).is_err());
    }

    #[test]
    fn slopes_must_be_normal_f32_or_zero() {
        assert_eq!(check_slope(0, 0.0).unwrap(), 0.0);
        assert_eq!(check_slope(0, 0.5).unwrap(), 0.5);
        assert_eq!(check_slope(0, -2.0).unwrap(), -2.0);
        assert_eq!(
            check_slope(0, f64::from(f32::MIN_POSITIVE)).unwrap(),
            f32::MIN_POSITIVE
        );
        assert_eq!(check_slope(0, f64::from(f32::MAX)).unwrap(), f32::MAX);
        let reason = |value| match check_slope(3, value) {
            Err(AlibiError::InvalidSlope {
                head: 3, reason, ..
            }) => reason,
            other => panic!("{value}: {other:?}"),
        };
        assert_eq!(reason(f64::NAN), "not finite");
        assert_eq!(reason(f64::INFINITY), "not finite");
        assert_eq!(reason(f64::NEG_INFINITY), "not finite");
        assert_eq!(reason(1e39), "too large for f32");
        assert_eq!(reason(1e-40), "too small for a normal f32");
        assert_eq!(reason(1e-50), "too small for a normal f32");
    }

    #[test]
    fn targets_need_the_usage_and_the_room() {
        use wgpu::BufferUsages as U;
        let shape = [2, 3, 4];
        let storage = U::STORAGE | U::COPY_SRC;
        assert!(
            check_target((storage, 96), 96, U::STORAGE, (BIAS_TARGET, shape)).is_ok(),
            "exactly the room"
        );
        assert!(check_target((storage, 97), 96, U::STORAGE, (BIAS_TARGET, shape)).is_ok());
        assert!(matches!(
            check_target((storage, 95), 96, U::STORAGE, (BIAS_TARGET, shape)),
            Err(AlibiError::TargetTooSmall {
                what: BIAS_TARGET,
                heads: 2,
                i: 3,
                j: 4,
                needed: 96,
                size: 95
            })
        ));
        assert!(matches!(
            check_target((U::COPY_SRC, 1000), 96, U::STORAGE, (BIAS_TARGET, shape)),
            Err(AlibiError::TargetUsage {
                usage: U::COPY_SRC,
                needed: U::STORAGE
            })
        ));
        assert!(matches!(
            check_target((storage, 1000), 96, U::MAP_WRITE, (BIAS_TARGET, shape)),
            Err(AlibiError::TargetUsage { .. })
        ));
    }

    #[test]
    fn max_bias_must_be_positive_and_finite() {
        assert!(check_max_bias(8.0).is_ok());
        assert!(check_max_bias(f64::MIN_POSITIVE).is_ok());
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                check_max_bias(bad),
                Err(AlibiError::InvalidMaxBias(_))
            ));
        }
    }
}
