// ALiBi bias generator: writes `-slope[h] * |k - (J - I + r)|` for one window of a
// `[heads, I, J]` tensor whose row length J is a multiple of 4, so every vec4 lies in one row.
//
// Keep in sync with `src/gpu/generator.rs` (`GenerateParams`, `WORKGROUP_SIZE`,
// `VEC4_PER_INVOCATION`, `MAX_HEADS`) and with the CPU mirror in `src/reference.rs`.
//
// Dispatch grid: x = column chunks of one row, y = rows of one head, z = heads. Each
// invocation writes VEC4_PER_INVOCATION vec4s strided by the workgroup size, so that
// neighbouring invocations write neighbouring 16-byte blocks (coalesced on real GPUs) and no
// integer division is needed (lavapipe would scalarise it).

const WORKGROUP_SIZE: u32 = 64u;
const VEC4_PER_INVOCATION: u32 = 4u;
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
    _pad0: u32,
    _pad1: u32,
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
    let slope = slopes[head / 4u][head % 4u];
    let query_position = params.query_offset + i32(row);
    let row_start = (head * params.rows + row) * params.cols4 - params.window_vec4;
    let first_col4 = group.x * (WORKGROUP_SIZE * VEC4_PER_INVOCATION) + lane;
    for (var v = 0u; v < VEC4_PER_INVOCATION; v++) {
        let col4 = first_col4 + v * WORKGROUP_SIZE;
        if col4 < params.cols4 {
            let delta = i32(col4 * 4u) - query_position;
            let distance = abs(vec4<i32>(delta, delta + 1, delta + 2, delta + 3));
            // (-distance) * slope, not -(distance * slope): the same value, and +0.0 on the
            // diagonal, bit for bit what PyTorch's `-abs(...) * slopes` gives.
            bias[row_start + col4] = vec4<f32>(-distance) * slope;
        }
    }
}
