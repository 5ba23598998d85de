// ALiBi at custom positions (x-transformers' `forward_custom_pos`): writes
// `-slope[h] * |key_positions[k] - query_positions[r]|` (zero for padding heads; -inf for
// future keys, pos_k > pos_q, when the module is causal) for one window of a
// `[batch * heads, I, C]` tensor, batch item b's heads first. Rows hold C = ceil4(J)
// columns, the J keys at their end (as `generate.wgsl`'s rows do), so every vec4 lies in one
// row and the same window planner serves both kernels.
//
// Composed like `generate.wgsl`, after `window.wgsl`; its own bindings are numbered by
// `src/gpu/bias/kernel.rs`, which mirrors `PositionLayout`.

// Where each batch item's positions lie, the same for every window.
struct PositionLayout {
    // Heads per batch item (total_heads).
    heads: u32,
    // Distance between batch items in the query and key arrays: I and J, or 0 for
    // positions shared by every batch item.
    query_stride: u32,
    key_stride: u32,
    // Columns before the first key in each row: C - J.
    key_pad: u32,
}

@group(0) @binding(BINDING_POSITION_LAYOUT) var<uniform> positions: PositionLayout;
@group(0) @binding(BINDING_QUERY_POSITIONS) var<storage, read> query_positions: array<i32>;
@group(0) @binding(BINDING_KEY_POSITIONS) var<storage, read> key_positions: array<i32>;

// The key position of row column `column`; the padding columns before the first key,
// never read back, take the first key's.
fn key_position(batch: u32, column: u32) -> i32 {
    let key = max(column, positions.key_pad) - positions.key_pad;
    return key_positions[batch * positions.key_stride + key];
}

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
