// How the generator (`shaders/alibi_bias.wgsl`, appended after this file) stores its
// values: as f32, unchanged. `store/f16.wgsl` is the other choice.

alias BiasVec = vec4<f32>;

fn to_stored(value: vec4<f32>) -> BiasVec {
    return value;
}
