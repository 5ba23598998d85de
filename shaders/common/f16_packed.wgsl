// The element type of f16 kernels on devices without `SHADER_F16` (llvmpipe's GL, many
// browsers and phones): the values are computed in f32, then rounded to f16 here in integer
// arithmetic, exactly (WGSL leaves `pack2x16float`'s rounding to the implementation), and
// stored two to a u32 word. The bytes are those `f16.wgsl` stores: docs/semantics.md#f16.

// Four f16 values in two words, low half first (little-endian, as an `array<f16>`).
alias Element4 = vec2<u32>;
// One f16 in the low half of a word (the score kernel, which needs `SHADER_F16`, is never
// built with this file; `mask.wgsl`'s `masked1` only has to compile).
alias Element = u32;

const ELEMENTS_PER_WORD: u32 = 2u;

// The f16 bits (in the low half) of four f32 values: rounded to nearest, ties to even;
// finite values beyond ±65504 saturate there; infinities stay infinite. Branch-free, so
// that a CPU adapter runs it on whole SIMD lanes.
fn element_bits4(value: vec4<f32>) -> vec4<u32> {
    let x = bitcast<vec4<u32>>(value);
    let sign = (x >> vec4<u32>(16u)) & vec4<u32>(0x8000u);
    let a = x & vec4<u32>(0x7fffffffu);
    // Normal f16 (2^-14 <= |v| <= 65504): rebias the exponent (127 - 15 = 112) and round
    // the 13 dropped mantissa bits to nearest even; a carry into the exponent is right.
    let m = a - vec4<u32>(112u << 23u);
    let normal = (m + vec4<u32>(0x0fffu) + ((m >> vec4<u32>(13u)) & vec4<u32>(1u))) >> vec4<u32>(13u);
    // Subnormal f16 (2^-25 <= |v| < 2^-14): the 24-bit significand shifted right by
    // 126 - exponent (14 to 24), rounded to nearest even; 1024 is the smallest normal.
    let exponent = clamp(a >> vec4<u32>(23u), vec4<u32>(102u), vec4<u32>(112u));
    let shift = vec4<u32>(126u) - exponent;
    let significand = (a & vec4<u32>(0x7fffffu)) | vec4<u32>(0x800000u);
    let quotient = significand >> shift;
    let rest = significand & ((vec4<u32>(1u) << shift) - vec4<u32>(1u));
    let half = vec4<u32>(1u) << (shift - vec4<u32>(1u));
    let up = (rest > half) | ((rest == half) & ((quotient & vec4<u32>(1u)) == vec4<u32>(1u)));
    let subnormal = quotient + select(vec4<u32>(0u), vec4<u32>(1u), up);
    var bits = select(vec4<u32>(0u), subnormal, a >= vec4<u32>(0x33000000u));
    bits = select(bits, normal, a >= vec4<u32>(0x38800000u));
    // Beyond 65504 (0x477fe000), finite: the largest finite f16.
    bits = select(bits, vec4<u32>(0x7bffu), a > vec4<u32>(0x477fe000u));
    // Infinities keep their sign; NaN (never computed) stays a NaN.
    bits = select(bits, vec4<u32>(0x7c00u), a == vec4<u32>(0x7f800000u));
    bits = select(bits, vec4<u32>(0x7e00u), a > vec4<u32>(0x7f800000u));
    return sign | bits;
}

fn pack_pairs(bits: vec4<u32>) -> Element4 {
    return vec2<u32>(bits.x | (bits.y << 16u), bits.z | (bits.w << 16u));
}

fn to_element4(value: vec4<f32>) -> Element4 {
    return pack_pairs(element_bits4(value));
}

fn to_element(value: f32) -> Element {
    return element_bits4(vec4<f32>(value)).x;
}

// Masked, then rounded: the rounding keeps -inf.
fn to_masked4(value: vec4<f32>, masked: vec4<bool>, future_bits: u32) -> Element4 {
    return to_element4(select(value, vec4<f32>(bitcast<f32>(future_bits)), masked));
}
