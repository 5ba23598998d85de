// The element type of f16 kernels, for devices with `SHADER_F16`: `f32.wgsl` is the other
// choice, with the same names.

enable f16;

alias Element = f16;
alias Element4 = vec4<f16>;

// Finite values saturate at the largest finite f16 before the conversion (which rounds to
// nearest even): rounding alone would take anything from 65520 up to an infinity, and a
// row of -inf would make softmax NaN. The causal mask's -inf is stored apart
// (`mask.wgsl`), converted as it is.
const F16_MAX: f32 = 65504.0;

fn to_element(value: f32) -> Element {
    return Element(clamp(value, -F16_MAX, F16_MAX));
}

fn to_element4(value: vec4<f32>) -> Element4 {
    return Element4(clamp(value, vec4<f32>(-F16_MAX), vec4<f32>(F16_MAX)));
}

// Converted, then masked: the mask's -inf must not go through the saturating clamp.
fn to_masked4(value: vec4<f32>, masked: vec4<bool>, future_bits: u32) -> Element4 {
    return select(to_element4(value), Element4(vec4<f32>(bitcast<f32>(future_bits))), masked);
}
