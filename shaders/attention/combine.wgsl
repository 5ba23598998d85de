// Flash-decoding's second pass: merges the partial results of the key splits of each query
// row (`flash.wgsl` with SPLIT) into its output, `sum_s acc_s * e^(max_s - M) /
// sum_s sum_s * e^(max_s - M)` with M the largest partial max; 0 for a row that sees no key.
// One invocation per query row of the run (`flash.wgsl`'s `pairs`). Composed like `flash.wgsl`, whose bindings it shares.

@compute @workgroup_size(LANES)
fn combine(
    @builtin(workgroup_id) group_id: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let run_row = (group_id.y * params.combine_groups_x + group_id.x) * LANES + lane;
    if run_row >= params.pairs * params.group_rows {
        return;
    }
    let first = run_row * params.splits * (D4 + 1u);
    var largest = alibi_neg_inf(i32(lane));
    for (var s = 0u; s < params.splits; s++) {
        largest = max(largest, partial[first + s * (D4 + 1u)].x);
    }
    let unseen = largest == alibi_neg_inf(i32(lane));
    var total = 0.0;
    var acc: array<vec4<f32>, D4>;
    for (var s = 0u; s < params.splits; s++) {
        let slot = first + s * (D4 + 1u);
        let weight = select(exp(partial[slot].x - largest), 0.0, unseen);
        total += partial[slot].y * weight;
        for (var d = 0u; d < D4; d++) {
            acc[d] += partial[slot + 1u + d] * weight;
        }
    }
    let inverse = select(1.0 / total, 0.0, total == 0.0);
    // The run's rows in the window of out.
    let at = (params.pair0 * params.group_rows + run_row) * D4 - params.q_window;
    for (var d = 0u; d < D4; d++) {
        out[at + d] = output4(acc[d] * inverse);
    }
}
