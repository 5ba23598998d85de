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

// Four elements from `c` (keys `keys` of its row) whose `crossed` ones are the next row's,
// from `next`'s key 0 on: each row's four keys with its own slope, then selects (two
// slope reads, not one per element).
fn crossing_bits4(next: Cursor, c: Cursor, keys: vec4<u32>, crossed: vec4<bool>) -> vec4<u32> {
    let this_row = row_bits4(c.h, c.r, keys);
    let next_row = row_bits4(next.h, next.r, keys - vec4<u32>(params.cols));
    return select(this_row, next_row, crossed);
}
