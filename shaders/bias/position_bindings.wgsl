// The inputs of the kernels at custom positions (`positions.wgsl`, `dense_positions.wgsl`):
// each batch item's query and key positions. `PositionLayout` in `src/gpu/bias/kernel.rs`
// mirrors the uniform.

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
