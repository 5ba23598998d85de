// What the two bias kernels share (`generate.wgsl`, at the module's positions, and
// `positions.wgsl`, at custom ones): the per-window uniform, the entry point, the vec4
// each invocation writes and the store; each kernel defines `row_keys`. Composed after the
// element type, the constants Rust generates and `common/` (see
// `src/gpu/dispatch/wgsl.rs`); `GenerateParams` in `src/gpu/bias/kernel.rs` mirrors
// `Params`. `src/reference.rs` is the oracle.

// One stored vec4 of the bias.
alias Unit = Element4;

// The window's uniform (`bindings.wgsl` binds it).
struct Params {
    // Rows per head of the generated tensor (I).
    rows: u32,
    // Row length in vec4s (J / 4).
    cols4: u32,
    // First head and first row of this window.
    head0: u32,
    row0: u32,
    // Position of query row 0: J - I (negative when I > J; unused at custom positions).
    query_offset: i32,
    // Index, in vec4s from the start of the tensor, of the first vec4 of the bound window.
    window_vec4: u32,
    // Heads with a slope; heads from here to the end are zero padding.
    slope_heads: u32,
    // The bits of the value future keys get when CAUSAL: -inf (see `common/mask.wgsl`).
    future_bits: u32,
}

// The vec4 an invocation writes: vec4 `col4` of row `row` of head `head` (the tensor's,
// counted from the first), at `index` of the bound window. Past the row's end when
// `col4 >= params.cols4`: the invocation then writes nothing.
struct Slot {
    head: u32,
    row: u32,
    col4: u32,
    index: u32,
}

// The dispatch grid: x = column chunks of one row, y = rows of one head, z = heads. No
// integer division is needed (lavapipe would scalarise it).
fn slot(group: vec3<u32>, lane: u32) -> Slot {
    let head = params.head0 + group.z;
    let row = params.row0 + group.y;
    let col4 = group.x * WORKGROUP_SIZE + lane;
    let index = (head * params.rows + row) * params.cols4 + col4 - params.window_vec4;
    return Slot(head, row, col4, index);
}

// Four keys of one query row as a kernel places them: their offsets (key position minus
// query position) from the query, and the head whose slope they take.
struct RowKeys {
    offsets: vec4<i32>,
    slope_head: u32,
}

// Each invocation writes one vec4 (`slot`), neighbouring invocations neighbouring 16-byte
// blocks (coalesced on real GPUs).
@compute @workgroup_size(WORKGROUP_SIZE)
fn generate(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let at = slot(group, lane);
    if at.col4 >= params.cols4 {
        return;
    }
    let keys = row_keys(at);
    store_bias(at.index, keys.offsets, keys.slope_head);
}

// Stores vec4 `index` of the bound window: four keys of one query row of head `head`, at
// `offsets` (key position minus query position) from the query. One store per vec4, one
// store path (no branch around it): on lavapipe every store is a per-lane loop, so the
// number of stores, not arithmetic, sets the speed.
fn store_bias(index: u32, offsets: vec4<i32>, head: u32) {
    let value = alibi4(offsets, head, params.slope_heads);
    window[index] = to_masked4(value, future4(offsets), params.future_bits);
}
