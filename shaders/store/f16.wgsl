// How the generator (`shaders/alibi_bias.wgsl`, appended after this file) stores its
// values: as f16, for devices with `SHADER_F16`. `store/f32.wgsl` is the other choice.

enable f16;

alias BiasVec = vec4<f16>;

// Finite values saturate at the largest finite f16 before the conversion (which rounds to
// nearest even): rounding alone would take anything from 65520 up to an infinity, and a
// row of -inf would make softmax NaN. The causal mask's -inf is stored apart, converted
// as it is.
fn to_stored(value: vec4<f32>) -> BiasVec {
    return BiasVec(clamp(value, vec4<f32>(-65504.0), vec4<f32>(65504.0)));
}
