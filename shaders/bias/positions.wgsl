// ALiBi at custom positions (x-transformers' `forward_custom_pos`): writes
// `-slope[h] * |key_positions[k] - query_positions[r]|` (zero for padding heads; -inf for
// future keys, pos_k > pos_q, when the module is causal) for one window of a
// `[batch * heads, I, C]` tensor, batch item b's heads first. Rows hold C = ceil4(J)
// columns, the J keys at their end (as `generate.wgsl`'s rows do), so every vec4 lies in one
// row and the same window planner serves both kernels.
//
// Composed like `generate.wgsl`, after `window.wgsl` and `position_bindings.wgsl` (its own
// bindings, numbered by `src/gpu/bias/kernel.rs`, which mirrors `PositionLayout`).

// The keys of `at`: batch item b's query and keys, the slope of its head.
fn row_keys(at: Slot) -> RowKeys {
    let batch = at.head / positions.heads;
    let query = query_positions[batch * positions.query_stride + at.row];
    let column = at.col4 * 4u;
    let keys = vec4<i32>(
        key_position(batch, column),
        key_position(batch, column + 1u),
        key_position(batch, column + 2u),
        key_position(batch, column + 3u),
    );
    return RowKeys(keys - vec4<i32>(query), at.head % positions.heads);
}
