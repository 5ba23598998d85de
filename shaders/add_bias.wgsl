// ALiBi added in place into attention scores: for one window of the caller's row-major
// `[batch, total_heads, I, J]` scores, `scores = scores * scale + bias`, the bias
// `-slope[h] * |k - (J - I + r)|` computed here (zero for padding heads), and every future
// key (k > J - I + r) set to -inf when the module is causal. No bias tensor exists.
//
// It is compiled after one of `scores/f32.wgsl` or `scores/f16.wgsl`, which define `Score`
// (the element type of the scores) and `to_score` (the rounding back to it), and a line
// `const CAUSAL: bool = ...;` (a constant, so a plain module's kernel carries no mask): see
// `src/gpu/scores.rs`, which mirrors `ScoreParams`, the bindings, `WORKGROUP_SIZE` and
// `COLUMNS_PER_INVOCATION`. The bias is the generator's (`alibi_bias.wgsl`) value for value;
// `src/reference.rs` is the oracle.
//
// Dispatch grid: x = chunks of COLUMNS_PER_INVOCATION columns of one row, y = rows of one
// head, z = heads. J need not be a multiple of 4, so a row may start anywhere in a vec4:
// the scores are read and written as scalars. Each invocation computes its columns' biases
// once and applies them to the same columns of every batch of the window (the bias does not
// depend on the batch), so no invocation divides (lavapipe would scalarise a division).
//
// `scale_scores` does the same loads, multiplications and stores without the bias: the
// baseline of the `add_over_scale` bench.

const WORKGROUP_SIZE: u32 = 256u;
const COLUMNS_PER_INVOCATION: u32 = 4u;
// MAX_HEADS / 4 vec4s, as in the generator: the module's slope uniform is bound as it is.
const SLOPE_VEC4S: u32 = 1024u;

struct ScoreParams {
    // Rows per head (I) and columns per row (J) of the scores.
    rows: u32,
    cols: u32,
    // First head and first row of this window, within each batch.
    head0: u32,
    row0: u32,
    // Position of query row 0: J - I (negative when I > J).
    query_offset: i32,
    // Elements of the binding before the window's first score (its binding starts at an
    // aligned offset at or before it).
    lead: u32,
    // Heads with a slope; heads from here to the end are zero padding.
    slope_heads: u32,
    // The bits of -inf (0xff800000), what future keys get when CAUSAL.
    future_bits: u32,
    // Batches the window covers, and the elements from one to the next (0 for one batch).
    batch_count: u32,
    batch_stride: u32,
    // Elements from one head to the next (0 when the window has one head).
    head_stride: u32,
    // What the scores are multiplied by before the bias is added.
    scale: f32,
}

@group(0) @binding(0) var<uniform> params: ScoreParams;
// Slope of head h is slopes[h / 4][h % 4] (a uniform array<f32> would have a 16-byte stride).
@group(0) @binding(1) var<uniform> slopes: array<vec4<f32>, SLOPE_VEC4S>;
@group(0) @binding(2) var<storage, read_write> scores: array<Score>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn add_bias(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    update(group, lane, true);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn scale_scores(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    update(group, lane, false);
}

// One invocation: up to COLUMNS_PER_INVOCATION columns of one row of one head, in every
// batch of the window. `with_bias` is a constant at both call sites, so each entry point
// compiles to its own loop.
fn update(group: vec3<u32>, lane: u32, with_bias: bool) {
    let col0 = (group.x * WORKGROUP_SIZE + lane) * COLUMNS_PER_INVOCATION;
    if col0 >= params.cols {
        return;
    }
    let count = min(COLUMNS_PER_INVOCATION, params.cols - col0);
    let head = params.head0 + group.z;
    let row = params.row0 + group.y;
    // Padding heads (x-transformers pads with zeros) get slope 0 and a bias forced to +0.0
    // by the select below (not the -0.0 that (-distance) * 0.0 gives). The clamp keeps the
    // uniform read in bounds for any head.
    let is_padding = head >= params.slope_heads;
    let slope_index = min(head, SLOPE_VEC4S * 4u - 1u);
    let slope = select(slopes[slope_index / 4u][slope_index % 4u], 0.0, is_padding);
    let delta = i32(col0) - (params.query_offset + i32(row));
    let offsets = vec4<i32>(delta, delta + 1, delta + 2, delta + 3);
    // (-distance) * slope, as the generator computes it: +0.0 on the diagonal.
    let bias = select(vec4<f32>(-abs(offsets)) * slope, vec4<f32>(0.0), is_padding);
    // Future keys (offset > 0) of every head, padding heads included, are masked.
    let masked = (offsets > vec4<i32>(0)) & vec4<bool>(with_bias && CAUSAL);
    let row_start = params.lead + group.z * params.head_stride + group.y * params.cols + col0;
    for (var b = 0u; b < params.batch_count; b++) {
        let start = row_start + b * params.batch_stride;
        // Unrolled by hand, each column with its own constant component: a vector indexed
        // by a loop counter would be spilled to memory on lavapipe.
        update_score(start, 0u, count, bias.x, masked.x, with_bias);
        update_score(start + 1u, 1u, count, bias.y, masked.y, with_bias);
        update_score(start + 2u, 2u, count, bias.z, masked.z, with_bias);
        update_score(start + 3u, 3u, count, bias.w, masked.w, with_bias);
    }
}

// Column `c` of an invocation's `count` at element `index`: computed in f32 whatever
// `Score` is (the score is widened exactly, scaled, the bias added), then rounded once, by
// `to_score`.
fn update_score(index: u32, c: u32, count: u32, bias: f32, masked: bool, with_bias: bool) {
    if c >= count {
        return;
    }
    let scaled = f32(scores[index]) * params.scale;
    let value = select(scaled, scaled + bias, with_bias);
    let future = Score(bitcast<f32>(params.future_bits));
    scores[index] = select(to_score(value), future, masked);
}
