// What the two bias kernels share (`alibi_bias.wgsl`, the module's positions, and
// `alibi_positions.wgsl`, custom ones): the per-window uniform, the slopes, the output
// binding, and the value each stores. Compiled after one of `store/f32.wgsl` or
// `store/f16.wgsl` (`BiasVec`, `to_stored`) and a line `const CAUSAL: bool = ...;`, and
// before the kernel's body: see `src/gpu/kernel.rs`, which mirrors `GenerateParams`, the
// bindings, `WORKGROUP_SIZE` and `SLOPE_VEC4S`. `src/reference.rs` is the oracle.
//
// CAUSAL is a constant, not a uniform flag, so that a plain module's kernel carries no
// mask at all: on lavapipe, where the kernel's time is its stores, the mask's select costs
// 5 to 8% (a branch around it, so that only the vec4s that hold future keys select, cost
// 18%).

const WORKGROUP_SIZE: u32 = 256u;
// MAX_HEADS / 4 vec4s: 16 KiB, the smallest uniform binding limit wgpu allows (WebGL2).
const SLOPE_VEC4S: u32 = 1024u;

struct GenerateParams {
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
    // The bits of the value future keys get when CAUSAL: -inf, 0xff800000. (WGSL has no
    // infinity literal, and a constant one would not pass naga's evaluator.)
    future_bits: u32,
}

@group(0) @binding(0) var<uniform> params: GenerateParams;
// Slope of head h is slopes[h / 4][h % 4]: a vec4 array, because a uniform array<f32> would
// have a 16-byte stride.
@group(0) @binding(1) var<uniform> slopes: array<vec4<f32>, SLOPE_VEC4S>;
@group(0) @binding(2) var<storage, read_write> bias: array<BiasVec>;

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

// Stores vec4 `index` of the bound window: four keys of one query row of head `head`, at
// `offsets` (key position minus query position) from the query.
//
// (-distance) * slope, not -(distance * slope): the same value, and +0.0 on the diagonal,
// bit for bit what PyTorch's `-abs(...) * slopes` gives. Padding heads (x-transformers pads
// with zeros) get slope 0 and are forced to +0.0 by a select, not the -0.0 that
// (-distance) * 0.0 gives: one store path, no branch around the store. Future keys
// (offset > 0) of every head, padding heads included, are masked when causal.
fn store_bias(index: u32, offsets: vec4<i32>, head: u32) {
    let is_padding = head >= params.slope_heads;
    // The clamp keeps the uniform read in bounds for any head.
    let slope_index = min(head, SLOPE_VEC4S * 4u - 1u);
    let slope = select(slopes[slope_index / 4u][slope_index % 4u], 0.0, is_padding);
    let value = vec4<f32>(-abs(offsets)) * slope;
    let stored = to_stored(select(value, vec4<f32>(0.0), is_padding));
    let masked = (offsets > vec4<i32>(0)) & vec4<bool>(CAUSAL);
    let future = BiasVec(vec4<f32>(bitcast<f32>(params.future_bits)));
    bias[index] = select(stored, future, masked);
}
