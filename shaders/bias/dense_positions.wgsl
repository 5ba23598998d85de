// The dense bias at custom positions (as `positions.wgsl`), `[batch * heads, I, J]`, after
// `dense.wgsl` and `position_bindings.wgsl` (with no key padding).

fn element_bits_at(h: vec4<u32>, r: vec4<u32>, k: vec4<u32>) -> vec4<u32> {
    let heads = vec4<u32>(positions.heads);
    let batch = h / heads;
    let query = batch * positions.query_stride + r;
    let queries = vec4<i32>(
        query_positions[query.x],
        query_positions[query.y],
        query_positions[query.z],
        query_positions[query.w],
    );
    let keys = vec4<i32>(
        key_position(batch.x, k.x),
        key_position(batch.y, k.y),
        key_position(batch.z, k.z),
        key_position(batch.w, k.w),
    );
    let offsets = keys - queries;
    let value = alibi4_heads(offsets, h % heads, params.slope_heads);
    let future = vec4<f32>(bitcast<f32>(params.future_bits));
    return element_bits4(select(value, future, future4(offsets)));
}

// Four keys of one row.
fn row_bits4(h: u32, r: u32, k: vec4<u32>) -> vec4<u32> {
    return element_bits_at(vec4<u32>(h), vec4<u32>(r), k);
}

// `dense.wgsl`'s crossing quads read each element on its own (a row's four keys cost
// four reads here anyway).
const ROW_VALUES: bool = false;
