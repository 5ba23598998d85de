//! The closed form (docs/semantics.md) of the slopes, shared by the native and the browser suites: another
//! formula than the crate's (the paper's geometric sequence), so a test that compares the
//! two checks the crate, not the crate against itself.

/// `2^(-8 (h+1) / c)` for `h < c`, then `2^(-4 (2 (h-c) + 1) / c)` (docs/semantics.md, "Slopes"), in f64
/// rounded once.
pub fn closed_form_slopes(heads: usize) -> Vec<f32> {
    let c = 1usize << heads.ilog2();
    (0..heads)
        .map(|h| {
            let exponent = if h < c {
                -8.0 * (h + 1) as f64 / c as f64
            } else {
                -4.0 * (2 * (h - c) + 1) as f64 / c as f64
            };
            2f64.powf(exponent) as f32
        })
        .collect()
}
