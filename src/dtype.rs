//! [`BiasDtype`]: the element type of the biases a module generates.

/// The element type of a module's biases.
///
/// ```
/// use alibi_wgpu::{AlibiConfig, BiasDtype};
/// let config = AlibiConfig::new(8).dtype(BiasDtype::F16);
/// assert_eq!(BiasDtype::F16.size(), 2);
/// # let _ = config;
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BiasDtype {
    /// f32, the values of docs/semantics.md exactly.
    #[default]
    F32,
    /// f16, on every adapter: each f32 value rounded to nearest even and saturated at
    /// ±65504 (the largest finite f16), so that a long distance never becomes an infinity;
    /// a causal mask's `-inf` stays `-inf`. [`BiasDtype::round`] is that rounding.
    ///
    /// The host-mapped path converts with `half` (round to nearest even). Where the device
    /// has `wgpu::Features::SHADER_F16` the kernel clamps, then converts with WGSL's
    /// `f16()`, whose rounding WGSL leaves to the implementation: the tests check every
    /// value against `round` on each adapter CI runs; run `tests/variants.rs` on the GPUs
    /// you ship to. Without it (and in the dense kernels) the kernel rounds in integer
    /// arithmetic, exactly, and stores two values to a u32 word.
    F16,
}

impl BiasDtype {
    /// Bytes per element.
    pub const fn size(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::F16 => 2,
        }
    }

    /// The value an element of this type holds for the f32 bias value `value`, widened
    /// back to f32 (exactly): `value` itself for f32; for f16, `value` rounded to nearest
    /// even, finite values saturated at ±65504, infinities kept. What a GPU module of this
    /// type stores.
    ///
    /// ```
    /// use alibi_wgpu::BiasDtype;
    /// assert_eq!(BiasDtype::F16.round(-70_000.0), -65504.0);
    /// assert_eq!(BiasDtype::F16.round(-2049.0), -2048.0);
    /// assert_eq!(BiasDtype::F32.round(-2049.0), -2049.0);
    /// ```
    pub fn round(self, value: f32) -> f32 {
        match self {
            Self::F32 => value,
            Self::F16 => to_f16(value).to_f32(),
        }
    }

    /// The name NumPy and the CLI use: `f32` or `f16`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
        }
    }
}

impl std::fmt::Display for BiasDtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The largest finite f16.
const F16_MAX: f32 = 65504.0;

/// The f16 a bias value is stored as: `value` rounded to nearest even, finite values
/// saturated at ±65504 first (rounding alone would take anything from 65520 up to an
/// infinity), infinities kept.
pub(crate) fn to_f16(value: f32) -> half::f16 {
    let mut value = [value];
    saturate_to_f16_range(&mut value);
    half::f16::from_f32(value[0])
}

/// Saturates finite values at ±65504, in place, keeping infinities (the causal mask's
/// `-inf`): what a value goes through before its rounding to f16. A loop the compiler
/// vectorises (two compares and selects per value).
pub(crate) fn saturate_to_f16_range(values: &mut [f32]) {
    for value in values {
        let infinite = value.is_infinite();
        let clamped = value.clamp(-F16_MAX, F16_MAX);
        *value = if infinite { *value } else { clamped };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_rounds_to_nearest_even_and_saturates() {
        // 2049 lies halfway between 2048 and 2050: even mantissa, 2048.
        assert_eq!(to_f16(-2049.0).to_f32(), -2048.0);
        assert_eq!(to_f16(-2051.0).to_f32(), -2052.0);
        assert_eq!(to_f16(-65519.0).to_f32(), -65504.0);
        assert_eq!(to_f16(-65520.0).to_f32(), -65504.0);
        assert_eq!(to_f16(-1.0e9).to_f32(), -65504.0);
        assert_eq!(to_f16(1.0e9).to_f32(), 65504.0);
        assert_eq!(to_f16(f32::NEG_INFINITY), half::f16::NEG_INFINITY);
        assert_eq!(to_f16(0.0).to_bits(), 0);
        assert_eq!(to_f16(-0.0).to_bits(), 0x8000);
        assert_eq!(to_f16(1.0e-8).to_bits(), 0, "below the smallest subnormal");
    }

    #[test]
    fn round_is_what_each_type_holds() {
        assert_eq!(BiasDtype::F32.round(-2049.0), -2049.0);
        assert_eq!(BiasDtype::F16.round(-2049.0), -2048.0);
        assert_eq!(BiasDtype::F16.round(-70_000.0), -65504.0);
        assert_eq!(BiasDtype::F16.round(f32::NEG_INFINITY), f32::NEG_INFINITY);
        assert_eq!(BiasDtype::F16.round(0.1), half::f16::from_f32(0.1).to_f32());
    }

    #[test]
    fn sizes_and_names() {
        assert_eq!((BiasDtype::F32.size(), BiasDtype::F32.name()), (4, "f32"));
        assert_eq!(BiasDtype::default(), BiasDtype::F32);
        assert_eq!(BiasDtype::F16.to_string(), "f16");
    }
}
