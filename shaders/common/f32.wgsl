// The element type of f32 kernels: what the bias kernels store and the score kernel reads
// and writes. Every kernel's source starts with this file or `f16.wgsl` (see
// `src/gpu/dispatch/wgsl.rs`); the values are computed in f32 and converted once, here.

alias Element = f32;
alias Element4 = vec4<f32>;

fn to_element(value: f32) -> Element {
    return value;
}

fn to_element4(value: vec4<f32>) -> Element4 {
    return value;
}
