// Flash-decoding's first pass, for few query rows (a decode step, `i = 1`): each
// invocation takes one query row and one range of keys (`keys_per_split` of them), reads
// its keys and values straight from k and v (no row shares them, so a tile in workgroup
// memory would save nothing), and writes its partial max, sum and accumulator for
// `combine.wgsl` to merge. So one query still spreads over the whole device. The scores,
// masks and online softmax are `flash.wgsl`'s (`scores_k`, `sees`, `bias`), with
// ROWS_PER_INVOCATION = 1.

@compute @workgroup_size(LANES)
fn decode(
    @builtin(workgroup_id) group_id: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let invocation = (group_id.y * params.groups_x + group_id.x) * LANES + lane;
    let run_row = invocation / params.run_splits;
    if run_row >= params.pairs * params.group_rows {
        return;
    }
    // The row of the tensors (the run's rows follow its first pair's).
    let row = params.pair0 * params.group_rows + run_row;
    let split = params.split0 + invocation % params.run_splits;
    let r = row % params.rows;
    let head = (row / params.rows) % params.heads_q;
    let b = row / (params.rows * params.heads_q);
    let offset = offsets[b];
    let query_position = alibi_query_position(params.rows, params.keys, r) + offset.x;
    let padding = head >= params.slope_heads;
    let slope = rows_slope(head);

    // This row's keys in this split, cut by the causal mask and the window.
    let start = split * params.keys_per_split;
    var end = min(start + params.keys_per_split, params.keys);
    let relative = query_position - offset.y;
    if CAUSAL {
        end = min(end, u32(clamp(relative + 1, 0, i32(params.keys))));
    }
    if params.window_right >= 0 {
        end = min(end, u32(clamp(relative + params.window_right + 1, 0, i32(params.keys))));
    }
    var first = start;
    if params.window_left >= 0 {
        first = max(first, u32(clamp(relative - params.window_left, 0, i32(params.keys))));
    }

    let q = block_load(row * D4 - params.q_window);
    var acc = block_zero();
    let unseen_max = alibi_neg_inf(i32(lane));
    var running_max = unseen_max;
    var running_sum = 0.0;
    let kv_base = (b * params.heads_kv + head / params.group) * params.keys;
    // Four keys a step, one rescale per step; reads past `end` are clamped to its last key
    // and their scores hidden.
    for (var key = first; key < end; key += 4u) {
        let last = end - 1u;
        let s0 = scores_k(q, kv_base + key, key, head, r, slope, padding, query_position, offset.y, end);
        let s1 = scores_k(q, kv_base + min(key + 1u, last), key + 1u, head, r, slope, padding, query_position, offset.y, end);
        let s2 = scores_k(q, kv_base + min(key + 2u, last), key + 2u, head, r, slope, padding, query_position, offset.y, end);
        let s3 = scores_k(q, kv_base + min(key + 3u, last), key + 3u, head, r, slope, padding, query_position, offset.y, end);
        // `flash.wgsl`'s step (one row an invocation: RowsF is f32 here).
        let w = softmax_step(running_max, unseen_max, s0, s1, s2, s3);
        running_sum = running_sum * w.rescale + ((w.p0 + w.p1) + (w.p2 + w.p3));
        acc = block_scale(acc, w.rescale);
        acc = block_axpy_v(acc, w.p0, kv_base + key);
        acc = block_axpy_v(acc, w.p1, kv_base + min(key + 1u, last));
        acc = block_axpy_v(acc, w.p2, kv_base + min(key + 2u, last));
        acc = block_axpy_v(acc, w.p3, kv_base + min(key + 3u, last));
        running_max = w.max;
    }
    block_store_partial((run_row * params.splits + split) * (D4 + 1u), true, running_max, running_sum, acc);
}

// `scores` of one key read from k at `at` (a key of k, in keys of the tensor).
fn scores_k(
    q: Block,
    at: u32,
    key: u32,
    head: u32,
    r: u32,
    slope: f32,
    padding: bool,
    query_position: i32,
    key_offset: i32,
    end: u32,
) -> f32 {
    let key_position = i32(key) + key_offset;
    let score = block_dot_k(q, at) * params.scale + rows_bias(head, r, key, slope, padding, query_position, key_position);
    let visible = key < end && sees(query_position, key_position);
    return select(alibi_neg_inf(i32(key)), score, visible);
}
