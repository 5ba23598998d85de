// ALiBi bias generator: writes `-slope[h] * |k - (J - I + r)|` (zero for padding heads) for
// one window of a `[total_heads, I, J]` tensor, with every future key (k > J - I + r) set to
// -inf when the module is causal. J is a multiple of 4, so every vec4 lies in one row.
//
// It is compiled after one of `store/f32.wgsl` or `store/f16.wgsl`, which define `BiasVec`
// (the stored vec4) and `to_stored` (the conversion to it): see `src/gpu/kernel.rs`.
//
// Keep in sync with `src/gpu/kernel.rs` (`GenerateParams`, `WORKGROUP_SIZE`,
// `MAX_HEADS`) and with the CPU path in `src/cpu.rs`; `src/reference.rs` is the oracle.
//
// Dispatch grid: x = column chunks of one row, y = rows of one head, z = heads. Each
// invocation writes one vec4, neighbouring invocations neighbouring 16-byte blocks
// (coalesced on real GPUs), and no integer division is needed (lavapipe would scalarise
// it). On lavapipe every store is a per-lane loop, so the number of stores, not arithmetic,
// sets the speed: one store per vec4, one store path (no branch around it).

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
    // Position of query row 0: J - I (negative when I > J).
    query_offset: i32,
    // Index, in vec4s from the start of the tensor, of the first vec4 of the bound window.
    window_vec4: u32,
    // Heads with a slope; heads from here to the end are zero padding.
    slope_heads: u32,
    // Causal: the bits of the value future keys get (-inf, 0xff800000). 0: no mask. (WGSL
    // has no infinity literal, and a constant one would not pass naga's evaluator.)
    future_bits: u32,
}

@group(0) @binding(0) var<uniform> params: GenerateParams;
// Slope of head h is slopes[h / 4][h % 4]: a vec4 array, because a uniform array<f32> would
// have a 16-byte stride.
@group(0) @binding(1) var<uniform> slopes: array<vec4<f32>, SLOPE_VEC4S>;
@group(0) @binding(2) var<storage, read_write> bias: array<BiasVec>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn generate(
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
    // Padding heads (x-transformers pads with zeros) get slope 0 and are forced to +0.0 by
    // the select below: one store path, no branch around the store. The clamp keeps the
    // uniform read in bounds for any head.
    let is_padding = head >= params.slope_heads;
    let slope_index = min(head, SLOPE_VEC4S * 4u - 1u);
    let slope = select(slopes[slope_index / 4u][slope_index % 4u], 0.0, is_padding);
    let delta = i32(col4 * 4u) - (params.query_offset + i32(row));
    let offsets = vec4<i32>(delta, delta + 1, delta + 2, delta + 3);
    // (-distance) * slope, not -(distance * slope): the same value, and +0.0 on the
    // diagonal, bit for bit what PyTorch's `-abs(...) * slopes` gives. Padding heads must be
    // +0.0 too, not the -0.0 that (-distance) * 0.0 gives, hence the select.
    let value = vec4<f32>(-abs(offsets)) * slope;
    let stored = to_stored(select(value, vec4<f32>(0.0), is_padding));
    // Future keys (offset > 0) of every head, padding heads included, are masked.
    let masked = (offsets > vec4<i32>(0)) & vec4<bool>(params.future_bits != 0u);
    let future = BiasVec(vec4<f32>(bitcast<f32>(params.future_bits)));
    bias[row_start + col4] = select(stored, future, masked);
}
