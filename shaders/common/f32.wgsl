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

// A masked vec4: future keys (`masked`) get the bits `future_bits` (-inf, `mask.wgsl`).
fn to_masked4(value: vec4<f32>, masked: vec4<bool>, future_bits: u32) -> Element4 {
    return select(value, vec4<f32>(bitcast<f32>(future_bits)), masked);
}

// The dense kernels assemble u32 words: an f32 element is one word.
const ELEMENTS_PER_WORD: u32 = 1u;

// The stored bits of four values (masked values already -inf).
fn element_bits4(value: vec4<f32>) -> vec4<u32> {
    return bitcast<vec4<u32>>(value);
}
