// The dense bias at the module's positions: query row r at position J - I + r, key k at k
// (as `generate.wgsl`), after `dense.wgsl`.

fn element_bits_at(h: vec4<u32>, r: vec4<u32>, k: vec4<u32>) -> vec4<u32> {
    let offsets = vec4<i32>(k) - (vec4<i32>(params.query_offset) + vec4<i32>(r));
    let value = alibi4_heads(offsets, h, params.slope_heads);
    let future = vec4<f32>(bitcast<f32>(params.future_bits));
    return element_bits4(select(value, future, future4(offsets)));
}

// Four keys of one row of head `h`: one slope.
fn row_bits4(h: u32, r: u32, k: vec4<u32>) -> vec4<u32> {
    let offsets = vec4<i32>(k) - vec4<i32>(params.query_offset + i32(r));
    let value = alibi4(offsets, h, params.slope_heads);
    let future = vec4<f32>(bitcast<f32>(params.future_bits));
    return element_bits4(select(value, future, future4(offsets)));
}

// `dense.wgsl`'s crossing quads: in f32 each row's four keys with its own slope, then
// selects (two slope reads, not one per element); in f16, whose integer rounding costs more
// than slope reads, each element on its own (one rounding of four values, not two).
const ROW_VALUES: bool = ELEMENTS_PER_WORD == 1u;
