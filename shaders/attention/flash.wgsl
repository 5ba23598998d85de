// Fused attention with ALiBi in registers: `softmax(q k^T * scale + alibi) v` in one pass
// over the keys (FlashAttention-2's loop: a tile of query rows stays in registers while tiles
// of keys and values stream through workgroup memory, with the online softmax: running max
// and sum, accumulators rescaled once per key tile). The ALiBi term is `alibi_head_bias` of
// `ALIBI_WGSL` (shaders/alibi.wgsl), the bits `forward` writes; no bias or mask buffer is
// read, unless BIAS_MODE says to read a materialized one (the bench's and the tests'
// comparison, the same operations in the same order).
//
// Composed after the constants Rust writes (src/gpu/attention/kernel.rs: HEAD_DIM, D4,
// ROWS_PER_GROUP, KEYS_PER_TILE, CAUSAL, BIAS_MODE, SPLIT, SLOPE_VEC4S, the bindings), the
// element file (shaders/attention/f32.wgsl or f16.wgsl), ALIBI_WGSL, and the row of
// registers for the head dimension (`Row` and its functions, src/gpu/attention/rows.rs).
// `Params` mirrors `FlashParams` in src/gpu/attention/plan.rs.
//
// Layout: q and out `[batch, heads_q, i, d]`, k and v `[batch, heads_kv, j, d]`, dense
// row-major. One workgroup takes ROWS_PER_GROUP query rows of the heads that share one
// key/value head (grouped-query attention: query head h reads key/value head
// h / (heads_q / heads_kv)), so a key tile loaded once serves every query head of its group,
// and one key range (`split`): with several splits (flash-decoding), each workgroup writes
// its partial max, sum and accumulator, and `combine.wgsl` merges them.

struct Params {
    batch: u32,
    heads_q: u32,
    heads_kv: u32,
    // heads_q / heads_kv: query heads per key/value head.
    group: u32,
    // i and j.
    rows: u32,
    keys: u32,
    // Rows of one (batch, key/value head): group * i, and the workgroups over them.
    group_rows: u32,
    row_tiles: u32,
    // Key ranges per row tile, and the keys of each (a multiple of KEYS_PER_TILE).
    splits: u32,
    keys_per_split: u32,
    // Workgroups along x: the linear workgroup index is y * groups_x + x.
    groups_x: u32,
    // Heads with a slope; the heads after them are padding (no bias).
    slope_heads: u32,
    scale: f32,
    // The sliding window (FlashAttention-2's): a query at position p sees the keys at
    // positions p - window_left ..= p + window_right; a negative side is unlimited.
    window_left: i32,
    window_right: i32,
    // Workgroups along x of the combine pass.
    combine_groups_x: u32,
    // This run (src/gpu/attention/chunks.rs): its first (batch item, key/value head)
    // pair and its pairs, and where its bound windows of q and out, and of k and v, start
    // in the tensors (in vec4s, mod 2^32: indices subtract them and wrap to the window's).
    pair0: u32,
    pairs: u32,
    q_window: u32,
    kv_window: u32,
    // The run's first row tile and its row tiles, and first key range (split) and key
    // ranges: all of them, unless one key/value head's rows or keys exceed one binding.
    tile0: u32,
    run_tiles: u32,
    split0: u32,
    run_splits: u32,
}

@group(0) @binding(BINDING_PARAMS) var<uniform> params: Params;
@group(0) @binding(BINDING_SLOPES) var<uniform> slopes: array<vec4<f32>, SLOPE_VEC4S>;
@group(0) @binding(BINDING_OUT) var<storage, read_write> out: array<Output4>;
@group(0) @binding(BINDING_Q) var<storage, read> q_in: array<Input4>;
@group(0) @binding(BINDING_K) var<storage, read> k_in: array<Input4>;
@group(0) @binding(BINDING_V) var<storage, read> v_in: array<Input4>;
// Per batch item: the position of its first query's row offset (x) and of its first key (y).
// Query row r of item b sits at j - i + r + offsets[b].x, key k at k + offsets[b].y.
@group(0) @binding(BINDING_OFFSETS) var<storage, read> offsets: array<vec2<i32>>;
// With SPLIT: per (query row, split), the partial max, sum and accumulator (D4 vec4s).
@group(0) @binding(BINDING_PARTIAL) var<storage, read_write> partial: array<vec4<f32>>;
// With BIAS_MODE == BIAS_TENSOR: the materialized bias, dense `[heads_q, i, j]` f32.
@group(0) @binding(BINDING_BIAS) var<storage, read> bias_in: array<f32>;

const BIAS_NONE: u32 = 0u;
const BIAS_ALIBI: u32 = 1u;
const BIAS_TENSOR: u32 = 2u;

var<workgroup> k_tile: array<vec4<f32>, KEYS_PER_TILE * D4>;
var<workgroup> v_tile: array<vec4<f32>, KEYS_PER_TILE * D4>;

// Where a workgroup works: its batch item, key/value head, tile of rows and key split
// (`linear` counts the run's workgroups).
struct Place {
    b: u32,
    kv_head: u32,
    tile: u32,
    split: u32,
}

fn place(linear: u32) -> Place {
    let split = params.split0 + linear % params.run_splits;
    let rest = linear / params.run_splits;
    let tile = params.tile0 + rest % params.run_tiles;
    let heads = params.pair0 + rest / params.run_tiles;
    return Place(heads / params.heads_kv, heads % params.heads_kv, tile, split);
}

// The query rows of a tile span these rows of a head (all of them when the tile crosses
// from one query head to the next).
fn tile_row_range(tile: u32) -> vec2<u32> {
    let first = tile * ROWS_PER_GROUP;
    let last = min(first + ROWS_PER_GROUP, params.group_rows) - 1u;
    if first / params.rows == last / params.rows {
        return vec2<u32>(first % params.rows, last % params.rows);
    }
    return vec2<u32>(0u, params.rows - 1u);
}

// The keys the workgroup's rows may see, `[start, end)`: its split, then the causal mask
// and the window for the first and last query positions of the tile, so that tiles no
// row sees are never loaded.
fn key_range(at: Place) -> vec2<u32> {
    let offset = offsets[at.b];
    let rows = tile_row_range(at.tile);
    let base = i32(params.keys) - i32(params.rows) + offset.x - offset.y;
    // Query positions relative to the keys' first position: row r sees key k at offset
    // k - (base + r).
    let lowest = base + i32(rows.x);
    let highest = base + i32(rows.y);
    let keys = i32(params.keys);
    var start = i32(at.split * params.keys_per_split);
    var end = min(start + i32(params.keys_per_split), keys);
    if CAUSAL {
        end = min(end, clamp(highest + 1, 0, keys));
    }
    if params.window_right >= 0 {
        end = min(end, clamp(highest + params.window_right + 1, 0, keys));
    }
    if params.window_left >= 0 {
        start = max(start, clamp(lowest - params.window_left, 0, keys));
    }
    return vec2<u32>(u32(start), u32(max(end, start)));
}

@compute @workgroup_size(LANES)
fn flash(
    @builtin(workgroup_id) group_id: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let linear = group_id.y * params.groups_x + group_id.x;
    if linear >= params.pairs * params.run_tiles * params.run_splits {
        return;
    }
    let at = place(linear);
    let range = key_range(at);

    // This invocation's query rows (R of them, `RowsU` holds one per row): rows
    // `lane + n * LANES` of the tile, each a query head of the group and a row `r` of it.
    let index = RowsU(at.tile * ROWS_PER_GROUP + lane) + LANE_OFFSETS;
    let valid = index < RowsU(params.group_rows);
    let clamped = min(index, RowsU(params.group_rows - 1u));
    let heads = RowsU(at.kv_head * params.group) + clamped / RowsU(params.rows);
    let r = clamped % RowsU(params.rows);
    let rows = (RowsU(at.b * params.heads_q) + heads) * params.rows + r;
    let offset = offsets[at.b];
    // As `alibi_query_position`: the queries aligned to the end of the keys.
    let query_positions = RowsI(i32(params.keys) - i32(params.rows) + offset.x) + RowsI(r);
    let padding = heads >= RowsU(params.slope_heads);
    let slopes = rows_slope(heads);
    let unseen_max = RowsF(alibi_neg_inf(i32(lane)));

    // Rows of the tensors, and in vec4s of the run's windows of q and out.
    let window_rows = rows * D4 - RowsU(params.q_window);
    let q = block_load(window_rows);
    var acc = block_zero();
    var running_max = unseen_max;
    var running_sum = RowsF(0.0);

    let kv_base = (at.b * params.heads_kv + at.kv_head) * params.keys;
    for (var tile_start = range.x; tile_start < range.y; tile_start += KEYS_PER_TILE) {
        // Every lane loads a share of the tile's keys and values (zeros past the range).
        workgroupBarrier();
        for (var e = lane; e < KEYS_PER_TILE * D4; e += LANES) {
            let key = tile_start + e / D4;
            let inside = key < range.y;
            let source = (kv_base + min(key, range.y - 1u)) * D4 + e % D4 - params.kv_window;
            k_tile[e] = select(vec4<f32>(0.0), input4(k_in[source]), inside);
            v_tile[e] = select(vec4<f32>(0.0), input4(v_in[source]), inside);
        }
        workgroupBarrier();

        // Four keys a step, one rescale per step.
        for (var step = 0u; step < KEYS_PER_TILE; step += 4u) {
            let key = tile_start + step;
            let s0 = scores(q, step, key, heads, r, slopes, padding, query_positions, offset.y, range.y);
            let s1 = scores(q, step + 1u, key + 1u, heads, r, slopes, padding, query_positions, offset.y, range.y);
            let s2 = scores(q, step + 2u, key + 2u, heads, r, slopes, padding, query_positions, offset.y, range.y);
            let s3 = scores(q, step + 3u, key + 3u, heads, r, slopes, padding, query_positions, offset.y, range.y);
            let w = softmax_step(running_max, unseen_max, s0, s1, s2, s3);
            running_sum = running_sum * w.rescale + ((w.p0 + w.p1) + (w.p2 + w.p3));
            acc = block_scale(acc, w.rescale);
            acc = block_axpy(acc, w.p0, step);
            acc = block_axpy(acc, w.p1, step + 1u);
            acc = block_axpy(acc, w.p2, step + 2u);
            acc = block_axpy(acc, w.p3, step + 3u);
            running_max = w.max;
        }
    }

    if SPLIT {
        let run_rows = rows - RowsU(params.pair0 * params.group_rows);
        let slots = (run_rows * params.splits + RowsU(at.split)) * (D4 + 1u);
        block_store_partial(slots, valid, running_max, running_sum, acc);
        return;
    }
    // A row that sees no key outputs 0.
    let inverse = select(RowsF(1.0) / running_sum, RowsF(0.0), running_sum == RowsF(0.0));
    block_store(window_rows, valid, acc, inverse);
}

// One step of the online softmax over four keys' scores (both kernels take four keys a
// step): the new running max, the factor that rescales what was summed under the old one
// (once a step), and the four keys' weights. A row that has seen no key yet (its max still
// `unseen_max`) keeps a factor of 1 and weights of 0.
struct SoftmaxStep {
    max: RowsF,
    rescale: RowsF,
    p0: RowsF,
    p1: RowsF,
    p2: RowsF,
    p3: RowsF,
}

fn softmax_step(running_max: RowsF, unseen_max: RowsF, s0: RowsF, s1: RowsF, s2: RowsF, s3: RowsF) -> SoftmaxStep {
    let new_max = max(running_max, max(max(s0, s1), max(s2, s3)));
    let unseen = new_max == unseen_max;
    let zero = RowsF(0.0);
    return SoftmaxStep(
        new_max,
        select(exp(running_max - new_max), RowsF(1.0), unseen),
        select(exp(s0 - new_max), zero, unseen),
        select(exp(s1 - new_max), zero, unseen),
        select(exp(s2 - new_max), zero, unseen),
        select(exp(s3 - new_max), zero, unseen),
    );
}

// The scores of key `key` of the sequence (`tile_key` of the tile) for every row:
// `q . k * scale + bias`, or -infinity where the row does not see it.
fn scores(
    q: Block,
    tile_key: u32,
    key: u32,
    heads: RowsU,
    r: RowsU,
    slopes: RowsF,
    padding: RowsB,
    query_positions: RowsI,
    key_offset: i32,
    end: u32,
) -> RowsF {
    let key_position = i32(key) + key_offset;
    let score = block_dot(q, tile_key) * params.scale + rows_bias(heads, r, key, slopes, padding, query_positions, key_position);
    let visible = RowsB(key < end) & sees(query_positions, key_position);
    return select(RowsF(alibi_neg_inf(i32(key))), score, visible);
}

// Whether each row's query (at `query_positions`) sees a key at `key_position`: the causal
// mask (a key is visible at or before its query) and the window.
fn sees(query_positions: RowsI, key_position: i32) -> RowsB {
    let ahead = RowsI(key_position) - query_positions;
    var visible = RowsB(!CAUSAL) | (ahead <= RowsI(0));
    if params.window_right >= 0 {
        visible = visible & (ahead <= RowsI(params.window_right));
    }
    if params.window_left >= 0 {
        visible = visible & (-ahead <= RowsI(params.window_left));
    }
    return visible;
}

// The bias of one score: ALiBi computed here, none, or the materialized tensor's.
fn bias(head: u32, r: u32, key: u32, slope: f32, is_padding: bool, query_position: i32, key_position: i32) -> f32 {
    if BIAS_MODE == BIAS_ALIBI {
        return alibi_head_bias(slope, is_padding, query_position, key_position);
    }
    if BIAS_MODE == BIAS_TENSOR {
        let at = (head * params.rows + r) * params.keys + min(key, params.keys - 1u);
        return bias_in[at];
    }
    return 0.0;
}
