// `scores = scores * scale`, in place, over one window of the caller's row-major
// `[batch, total_heads, I, J]` scores: the baseline of `alibi bench`'s `add_over_scale`.
// It loads and stores the scores exactly as the library's `add_to_scores` kernel
// (`shaders/scores/add_bias.wgsl`) does, so that the ratio of the two is what the bias costs:
// the same workgroup size, COLUMNS_PER_INVOCATION scalar columns of one row per invocation
// (a row may start anywhere in a vec4), a dispatch grid of x = column chunks, y = rows,
// z = heads, and a loop over the batches of the window.
//
// It is compiled after a prelude that defines `Score` (the element type) and `to_score`
// (the rounding back to it, saturating f16 as the library does): see `mod.rs`, which also
// mirrors `ScaleParams`, the bindings, WORKGROUP_SIZE and COLUMNS_PER_INVOCATION.

const WORKGROUP_SIZE: u32 = 256u;
const COLUMNS_PER_INVOCATION: u32 = 4u;

struct ScaleParams {
    // Rows per head (I) and columns per row (J) of the scores.
    rows: u32,
    cols: u32,
    // Elements of the binding before the window's first score (its binding starts at an
    // aligned offset at or before it).
    lead: u32,
    // Batches the window covers, and the elements from one to the next (0 for one batch).
    batch_count: u32,
    batch_stride: u32,
    // Elements from one head to the next (0 when the window has one head).
    head_stride: u32,
    // What the scores are multiplied by.
    scale: f32,
    // Pads the struct to 16-byte multiples, as a uniform wants.
    pad: u32,
}

@group(0) @binding(0) var<uniform> params: ScaleParams;
@group(0) @binding(1) var<storage, read_write> scores: array<Score>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn scale_scores(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let col0 = (group.x * WORKGROUP_SIZE + lane) * COLUMNS_PER_INVOCATION;
    if col0 >= params.cols {
        return;
    }
    let count = min(COLUMNS_PER_INVOCATION, params.cols - col0);
    let row_start = params.lead + group.z * params.head_stride + group.y * params.cols + col0;
    for (var b = 0u; b < params.batch_count; b++) {
        let start = row_start + b * params.batch_stride;
        // Unrolled by hand, as in the add kernel: one call per column.
        scale_score(start, 0u, count);
        scale_score(start + 1u, 1u, count);
        scale_score(start + 2u, 2u, count);
        scale_score(start + 3u, 3u, count);
    }
}

// Column `c` of an invocation's `count` at element `index`: widened to f32, scaled,
// rounded back once.
fn scale_score(index: u32, c: u32, count: u32) {
    if c >= count {
        return;
    }
    scores[index] = to_score(f32(scores[index]) * params.scale);
}
