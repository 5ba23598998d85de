// ALiBi bias generator: writes `-slope[h] * |k - (J - I + r)|` (zero for padding heads) for
// one window of a `[total_heads, I, J]` tensor. J is a multiple of 4, so every vec4 lies in
// one row.
//
// Keep in sync with `src/gpu/generator.rs` (`GenerateParams`, `WORKGROUP_SIZE`,
// `MAX_HEADS`) and with the CPU mirror in `src/reference.rs`.
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
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: GenerateParams;
// Slope of head h is slopes[h / 4][h % 4]: a vec4 array, because a uniform array<f32> would
// have a 16-byte stride.
@group(0) @binding(1) var<uniform> slopes: array<vec4<f32>, SLOPE_VEC4S>;
@group(0) @binding(2) var<storage, read_write> bias: array<vec4<f32>>;

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
    let distance = abs(vec4<i32>(delta, delta + 1, delta + 2, delta + 3));
    // (-distance) * slope, not -(distance * slope): the same value, and +0.0 on the
    // diagonal, bit for bit what PyTorch's `-abs(...) * slopes` gives. Padding heads must be
    // +0.0 too, not the -0.0 that (-distance) * 0.0 gives, hence the select.
    let value = vec4<f32>(-distance) * slope;
    bias[row_start + col4] = select(value, vec4<f32>(0.0), is_padding);
}
