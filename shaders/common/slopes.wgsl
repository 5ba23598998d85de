// The ALiBi value of four keys of one query row: `(-distance) * slope` from the slopes
// `bindings.wgsl` declares, zero for padding heads. `src/reference.rs` is the oracle.

// The bias of four keys at `offsets` (key position minus query position) from their query,
// for head `head` of a tensor whose heads from `slope_heads` on are padding.
//
// (-distance) * slope, not -(distance * slope): the same value, and +0.0 on the diagonal,
// bit for bit what PyTorch's `-abs(...) * slopes` gives. Padding heads (x-transformers pads
// with zeros) get slope 0 and are forced to +0.0 by a select, not the -0.0 that
// (-distance) * 0.0 gives: one store path, no branch around the store. The select also
// hands the caller a selected value, not a product it could fuse into an addition.
fn alibi4(offsets: vec4<i32>, head: u32, slope_heads: u32) -> vec4<f32> {
    let is_padding = head >= slope_heads;
    // The clamp keeps the uniform read in bounds for any head. Shifts and masks, not `/ 4u`
    // and `% 4u`: SwiftShader (Chromium's CPU adapter) divides lane by lane, even by a
    // constant.
    let slope_index = min(head, SLOPE_VEC4S * 4u - 1u);
    let slope = select(slopes[slope_index >> 2u][slope_index & 3u], 0.0, is_padding);
    return select(vec4<f32>(-abs(offsets)) * slope, vec4<f32>(0.0), is_padding);
}

// `alibi4` for four elements of possibly different heads (`heads`): the dense kernels,
// whose rows need not hold a multiple of 4 keys, may cross a row or a head within a vec4.
fn alibi4_heads(offsets: vec4<i32>, heads: vec4<u32>, slope_heads: u32) -> vec4<f32> {
    let is_padding = heads >= vec4<u32>(slope_heads);
    let index = min(heads, vec4<u32>(SLOPE_VEC4S * 4u - 1u));
    let slope = vec4<f32>(
        slopes[index.x >> 2u][index.x & 3u],
        slopes[index.y >> 2u][index.y & 3u],
        slopes[index.z >> 2u][index.z & 3u],
        slopes[index.w >> 2u][index.w & 3u],
    );
    return select(vec4<f32>(-abs(offsets)) * slope, vec4<f32>(0.0), is_padding);
}
