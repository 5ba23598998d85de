// The dense copy of a cached strided block (`forward`'s view of it): element (h, r, k) is
// the source's `source_base + h * head_stride + r * row_stride + k`, bits copied as they
// are (two f16 to a word), after `dense.wgsl`. The source is bound, per window, as words.

@group(0) @binding(BINDING_SOURCE) var<storage, read> source: array<u32>;

fn element_bits_at(h: vec4<u32>, r: vec4<u32>, k: vec4<u32>) -> vec4<u32> {
    let index = vec4<u32>(params.source_base) + h * params.source_head_stride
        + r * params.source_row_stride + k;
    // index / ELEMENTS_PER_WORD, by a shift (`dense.wgsl` says why).
    let word = index >> vec4<u32>(ELEMENTS_PER_WORD - 1u);
    let words = vec4<u32>(source[word.x], source[word.y], source[word.z], source[word.w]);
    if ELEMENTS_PER_WORD == 1u {
        return words;
    }
    return (words >> ((index & vec4<u32>(1u)) * 16u)) & vec4<u32>(0xffffu);
}

// Four keys of one row.
fn row_bits4(h: u32, r: u32, k: vec4<u32>) -> vec4<u32> {
    return element_bits_at(vec4<u32>(h), vec4<u32>(r), k);
}

// `dense.wgsl`'s crossing quads read each element on its own (a row's four keys cost
// four reads here anyway).
const ROW_VALUES: bool = false;
