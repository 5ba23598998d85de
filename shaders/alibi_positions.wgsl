// ALiBi at custom positions (x-transformers' `forward_custom_pos`): writes
// `-slope[h] * |key_positions[k] - query_positions[r]|` (zero for padding heads; -inf for
// future keys, pos_k > pos_q, when the module is causal) for one window of a
// `[batch * heads, I, C]` tensor, batch item b's heads first. Rows hold C = ceil4(J)
// columns, the J keys at their end (as the generator's rows do), so every vec4 lies in one
// row and the planner of `alibi_bias.wgsl` windows this kernel too.
//
// Compiled after one of `store/f32.wgsl` or `store/f16.wgsl` (`BiasVec`, `to_stored`).
// Keep `GenerateParams` and the bindings in sync with `src/gpu/kernel.rs` and
// `src/gpu/positions.rs`; `src/reference.rs` is the oracle.

const WORKGROUP_SIZE: u32 = 256u;
const SLOPE_VEC4S: u32 = 1024u;

// The generator's per-window uniform (its `query_offset` is unused here).
struct GenerateParams {
    rows: u32,
    cols4: u32,
    head0: u32,
    row0: u32,
    query_offset: i32,
    window_vec4: u32,
    slope_heads: u32,
    future_bits: u32,
}

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

@group(0) @binding(0) var<uniform> params: GenerateParams;
@group(0) @binding(1) var<uniform> slopes: array<vec4<f32>, SLOPE_VEC4S>;
@group(0) @binding(2) var<storage, read_write> bias: array<BiasVec>;
@group(0) @binding(3) var<uniform> positions: PositionLayout;
@group(0) @binding(4) var<storage, read> query_positions: array<i32>;
@group(0) @binding(5) var<storage, read> key_positions: array<i32>;

// The key position of row column `column`; the padding columns before the first key,
// never read back, take the first key's.
fn key_position(batch: u32, column: u32) -> i32 {
    let key = max(column, positions.key_pad) - positions.key_pad;
    return key_positions[batch * positions.key_stride + key];
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn generate_positions(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let head = params.head0 + group.z;
    let row = params.row0 + group.y;
    let row_start = (head * params.rows + row) * params.cols4 - params.window_vec4;
    let col4 = group.x * WORKGROUP_SIZE + lane;
    if col4 >= params.cols4 {
        return;
    }
    let batch = head / positions.heads;
    let head_in_batch = head % positions.heads;
    let is_padding = head_in_batch >= params.slope_heads;
    let slope_index = min(head_in_batch, SLOPE_VEC4S * 4u - 1u);
    let slope = select(slopes[slope_index / 4u][slope_index % 4u], 0.0, is_padding);
    let query = query_positions[batch * positions.query_stride + row];
    let column = col4 * 4u;
    let keys = vec4<i32>(
        key_position(batch, column),
        key_position(batch, column + 1u),
        key_position(batch, column + 2u),
        key_position(batch, column + 3u),
    );
    let offsets = keys - vec4<i32>(query);
    // As in the generator: (-distance) * slope gives +0.0 on the diagonal, and padding
    // heads are forced to +0.0.
    let value = vec4<f32>(-abs(offsets)) * slope;
    let stored = to_stored(select(value, vec4<f32>(0.0), is_padding));
    let masked = (offsets > vec4<i32>(0)) & vec4<bool>(params.future_bits != 0u);
    let future = BiasVec(vec4<f32>(bitcast<f32>(params.future_bits)));
    bias[row_start + col4] = select(stored, future, masked);
}
