// ALiBi bias generator: writes `-slope[h] * |k - (J - I + r)|` (zero for padding heads) for
// one window of a `[total_heads, I, J]` tensor, with every future key (k > J - I + r) set to
// -inf when the module is causal. J is a multiple of 4, so every vec4 lies in one row.
//
// It is compiled after one of `store/f32.wgsl` or `store/f16.wgsl` (the stored type) and
// `bias_common.wgsl` (the bindings and `store_bias`): see `src/gpu/kernel.rs`. The CPU path
// (`src/cpu.rs`) writes the same values; `src/reference.rs` is the oracle.
//
// Each invocation writes one vec4 (`slot`), neighbouring invocations neighbouring 16-byte
// blocks (coalesced on real GPUs). On lavapipe every store is a per-lane loop, so the
// number of stores, not arithmetic, sets the speed: one store per vec4, one store path (no
// branch around it).

@compute @workgroup_size(WORKGROUP_SIZE)
fn generate(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let at = slot(group, lane);
    if at.col4 >= params.cols4 {
        return;
    }
    let delta = i32(at.col4 * 4u) - (params.query_offset + i32(at.row));
    store_bias(at.index, vec4<i32>(delta, delta + 1, delta + 2, delta + 3), at.head);
}
