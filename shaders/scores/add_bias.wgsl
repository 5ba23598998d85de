// ALiBi added in place into attention scores: for one window of the caller's row-major
// `[batch, total_heads, I, J]` scores, `scores = scores * scale + bias`, the bias
// `-slope[h] * |k - (J - I + r)|` computed here (zero for padding heads), and every future
// key (k > J - I + r) set to -inf when the module is causal. No bias tensor exists.
//
// Composed after the element type (`Element`: the scores' type), the constants Rust
// generates and `common/`: see `src/gpu/scores/mod.rs`; `ScoreParams` in its `plan.rs`
// mirrors `Params`. The bias is the bias kernels' value for value; `src/reference.rs` is the
// oracle.
//
// Dispatch grid: x = chunks of COLUMNS_PER_INVOCATION columns of one row, y = rows of one
// head, z = heads. J need not be a multiple of 4, so a row may start anywhere in a vec4:
// the scores are read and written as scalars. Each invocation computes its columns' biases
// once and applies them to the same columns of every batch of the window (the bias does not
// depend on the batch), so no invocation divides (lavapipe would scalarise a division).

// One score.
alias Unit = Element;

// The window's uniform (`bindings.wgsl` binds it).
struct Params {
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
    // The bits of -inf, what future keys get when CAUSAL (see `common/mask.wgsl`).
    future_bits: u32,
    // Batches the window covers, and the elements from one to the next (0 for one batch).
    batch_count: u32,
    batch_stride: u32,
    // Elements from one head to the next (0 when the window has one head).
    head_stride: u32,
    // What the scores are multiplied by before the bias is added.
    scale: f32,
}

// One invocation: up to COLUMNS_PER_INVOCATION columns of one row of one head, in every
// batch of the window.
@compute @workgroup_size(WORKGROUP_SIZE)
fn add_bias(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let col0 = (group.x * WORKGROUP_SIZE + lane) * COLUMNS_PER_INVOCATION;
    if col0 >= params.cols {
        return;
    }
    let count = min(COLUMNS_PER_INVOCATION, params.cols - col0);
    let head = params.head0 + group.z;
    let row = params.row0 + group.y;
    let delta = i32(col0) - (params.query_offset + i32(row));
    let offsets = vec4<i32>(delta, delta + 1, delta + 2, delta + 3);
    let bias = alibi4(offsets, head, params.slope_heads);
    let masked = future4(offsets);
    let row_start = params.lead + group.z * params.head_stride + group.y * params.cols + col0;
    for (var b = 0u; b < params.batch_count; b++) {
        let start = row_start + b * params.batch_stride;
        // Unrolled by hand, each column with its own constant component: a vector indexed
        // by a loop counter would be spilled to memory on lavapipe.
        update_score(start, 0u, count, bias.x, masked.x);
        update_score(start + 1u, 1u, count, bias.y, masked.y);
        update_score(start + 2u, 2u, count, bias.z, masked.z);
        update_score(start + 3u, 3u, count, bias.w, masked.w);
    }
}

// Column `c` of an invocation's `count` at element `index`: computed in f32 whatever
// `Element` is (the score is widened exactly, scaled, the bias added), then rounded once,
// by `to_element`.
fn update_score(index: u32, c: u32, count: u32, bias: f32, masked: bool) {
    if c >= count {
        return;
    }
    let scaled = f32(window[index]) * params.scale;
    let value = scaled + bias;
    window[index] = masked1(to_element(value), masked, params.future_bits);
}
