// The dense kernels: a `[rows of I, j]` tensor row after row with no gap (row stride j,
// head stride I * j), at any element offset of the caller's buffer, as engines bind their
// tensors. A row need not hold a whole number of vec4s, so the kernels work in u32 words:
// each invocation writes one unit (`dense_vec4.wgsl`: four words; `dense_word.wgsl`: one,
// for the words at the tensor's edges) of elements whose bits the value part gives
// (`dense_generate.wgsl`, `dense_positions.wgsl`, `dense_copy.wgsl`).
//
// Grid (`dense`, `dense_wide`): x = units of one row, y = rows of one head, z = heads (a
// window holds rows of one head, or whole heads).
// Each unit belongs to the row that holds its first element, so a unit may run on into the
// next rows (or heads), and no two invocations write one word. Long rows take two passes:
// `dense` (or `dense_wide`, the same in workgroups of twice the lanes) with
// `dense_row_vec4.wgsl` writes the units that lie wholly inside their row
// (UNITS_IN_ROW, one slope, no crossing), and `dense_crossing` the one unit per row that
// runs on into the next (a CPU adapter runs both sides of a branch, so a crossing test in
// every unit would cost every unit both rows' values). Rows of fewer units than half a row
// workgroup's lanes pack their units instead (`dense_packed`): the units in order, x then y.
// `DenseParams` in `src/gpu/bias/dense.rs` mirrors `Params`.
//
// Units and words are found by shifts (UNIT_SHIFT), never `/` or `%` by a constant, which
// SwiftShader (Chromium's CPU adapter) computes lane by lane: 4% of `dense`'s time there.

struct Params {
    // Rows per head (I) and elements per row (j).
    rows: u32,
    cols: u32,
    // The window's first row, row head_row0 of head head0, and its row count. The row
    // grid (`dense`, `dense_wide`) holds exactly the window's rows (y: rows of one head,
    // z: heads);
    // `dense_crossing` and `dense_packed` take grid_rows workgroups along x, then y.
    head0: u32,
    head_row0: u32,
    row_count: u32,
    grid_rows: u32,
    // The element, counted from the window's binding, where the first row starts.
    row0_element: u32,
    // The units, counted from the binding, this window writes: unit_lo..unit_hi.
    unit_lo: u32,
    unit_hi: u32,
    // One past the tensor's last element, from the binding (clamped to u32).
    tensor_end: u32,
    // Position of query row 0: J - I (the generation).
    query_offset: i32,
    // Heads with a slope; the heads after them are zero padding.
    slope_heads: u32,
    // The bits of -inf, what future keys get when CAUSAL.
    future_bits: u32,
    // The copy: element (0, 0, 0)'s index in the source binding (mod 2^32) and its strides.
    source_base: u32,
    source_head_stride: u32,
    source_row_stride: u32,
    // Units of the window's first row to skip (a long row's last words, at the tail).
    unit_skip: u32,
    // row0_element - (head0 * rows + head_row0) * cols, mod 2^32: `dense` finds a row's
    // first element from its head and row, which its values need anyway.
    row_base: u32,
}

// Where an element lies: head, row, key.
struct Cursor {
    h: u32,
    r: u32,
    k: u32,
}

// The element after `c`, wrapping to the next row and head (selects, not branches).
fn advance(c: Cursor) -> Cursor {
    let next_row = c.k + 1u == params.cols;
    let r = select(c.r, c.r + 1u, next_row);
    let next_head = r == params.rows;
    return Cursor(select(c.h, c.h + 1u, next_head), select(r, 0u, next_head), select(c.k + 1u, 0u, next_row));
}

// The bits of four elements from `c` (f16 in the low halves), and the cursor after them.
struct Quad {
    bits: vec4<u32>,
    next: Cursor,
}

fn quad(c0: Cursor) -> Quad {
    // ONE_CROSSING (a constant of the pipeline, `src/gpu/bias/dense.rs`): rows of at least
    // four elements, so four elements cross at most one row's end.
    if ONE_CROSSING {
        return crossing_quad(c0);
    }
    return walk_quad(c0);
}

// Four elements from `c0` that cross at most one row's end (rows of four elements or
// more): the elements past the end are the next row's (or the next head's first row's),
// chosen by selects. No branch on the data: a CPU adapter runs both sides of one, lane by
// lane masked (ROW_VALUES is a constant: the compiler keeps one side).
fn crossing_quad(c0: Cursor) -> Quad {
    let keys = vec4<u32>(c0.k) + vec4<u32>(0u, 1u, 2u, 3u);
    let crossed = keys >= vec4<u32>(params.cols);
    let next_head = c0.r + 1u == params.rows;
    let next_h = select(c0.h, c0.h + 1u, next_head);
    let next_r = select(c0.r + 1u, 0u, next_head);
    // The value part says which is cheaper (ROW_VALUES): each row's four keys, then
    // selects, or each element on its own.
    var bits: vec4<u32>;
    if ROW_VALUES {
        let this_row = row_bits4(c0.h, c0.r, keys);
        let next_row = row_bits4(next_h, next_r, keys - vec4<u32>(params.cols));
        bits = select(this_row, next_row, crossed);
    } else {
        bits = element_bits_at(
            select(vec4<u32>(c0.h), vec4<u32>(next_h), crossed),
            select(vec4<u32>(c0.r), vec4<u32>(next_r), crossed),
            select(keys, keys - vec4<u32>(params.cols), crossed),
        );
    }
    let after = c0.k + 4u;
    let wraps = after >= params.cols;
    let next = Cursor(select(c0.h, next_h, wraps), select(c0.r, next_r, wraps), select(after, after - params.cols, wraps));
    return Quad(bits, next);
}

// Four elements from `c0` in rows of any length: one row's four keys where they lie in
// one row (`row_bits4`, one slope), else a walk element by element.
fn walk_quad(c0: Cursor) -> Quad {
    if c0.k + 4u <= params.cols {
        let keys = vec4<u32>(c0.k) + vec4<u32>(0u, 1u, 2u, 3u);
        return Quad(row_bits4(c0.h, c0.r, keys), Cursor(c0.h, c0.r, c0.k + 4u));
    }
    let c1 = advance(c0);
    let c2 = advance(c1);
    let c3 = advance(c2);
    let bits = element_bits_at(
        vec4<u32>(c0.h, c1.h, c2.h, c3.h),
        vec4<u32>(c0.r, c1.r, c2.r, c3.r),
        vec4<u32>(c0.k, c1.k, c2.k, c3.k),
    );
    return Quad(bits, advance(c3));
}

// Lanes of `dense`'s and `dense_wide`'s workgroups (`ROW_LANES` and `WIDE_ROW_LANES` in
// `plan.rs`, which says which rows take which).
const ROW_LANES: u32 = 128u;
const WIDE_ROW_LANES: u32 = 256u;

@compute @workgroup_size(ROW_LANES)
fn dense(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    row_unit(group, group.x * ROW_LANES + lane);
}

// `dense` in workgroups of twice the lanes, for rows that fill them as well: half the
// workgroups, each a fixed cost on a CPU adapter.
@compute @workgroup_size(WIDE_ROW_LANES)
fn dense_wide(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    row_unit(group, group.x * WIDE_ROW_LANES + lane);
}

// Unit `along` of the row that `group` gives (y: rows of one head, z: heads).
fn row_unit(group: vec3<u32>, along: u32) {
    // The grid gives the head and row: no division per lane (CPU adapters run one lane by
    // lane, a third of this kernel's time on lavapipe), and no row bound (the grid holds
    // the window's rows exactly; a bound cost lavapipe a fifth of the kernel's time). On a
    // CPU adapter every value, uniform or not, is computed again for each 8 lanes: the
    // row's start comes from h and r, which the values use too (from a row count of its
    // own, 13% slower).
    let h = params.head0 + group.z;
    let r = params.head_row0 + group.y;
    let start = (h * params.rows + r) * params.cols + params.row_base;
    // The row's units: those that start in it, or (UNITS_IN_ROW) that also end in it.
    // None lies before unit_lo (a window's units start at its first row's, the tail's
    // words at `unit_skip`), so each lane tests one bound (a test of unit_lo cost lavapipe
    // 5% of this kernel's time). Units that end in their row lie inside the window
    // (`plan.rs`), so only the edge's words read unit_skip and unit_hi: every uniform read
    // costs SwiftShader's lanes (Chromium), where the two cost the kernel 3%.
    var first = (start + UNIT_ELEMENTS - 1u) >> UNIT_SHIFT;
    var end = (start + params.cols + select(UNIT_ELEMENTS - 1u, 0u, UNITS_IN_ROW)) >> UNIT_SHIFT;
    if !UNITS_IN_ROW {
        first += params.unit_skip;
        end = min(end, params.unit_hi);
    }
    let unit = first + along;
    if unit >= end {
        return;
    }
    let at = Cursor(h, r, unit * UNIT_ELEMENTS - start);
    window[unit] = unit_at(at, unit);
}

// The units that the row grid (`dense`, `dense_wide`) with UNITS_IN_ROW leaves: the one
// unit per row that starts in it and ends in the next (none where the row ends on a unit's
// end). One row per invocation, `grid_rows` workgroups along x, then y.
@compute @workgroup_size(WORKGROUP_SIZE)
fn dense_crossing(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let along = (group.y * params.grid_rows + group.x) * WORKGROUP_SIZE + lane;
    if along >= params.row_count {
        return;
    }
    let row_end = params.row0_element + (along + 1u) * params.cols;
    let unit = row_end >> UNIT_SHIFT;
    if ((row_end & (UNIT_ELEMENTS - 1u)) == 0u) | (unit < params.unit_lo) | (unit >= params.unit_hi) {
        return;
    }
    let in_head = params.head_row0 + along;
    let heads = quotient(in_head, params.rows);
    let at = Cursor(params.head0 + heads, in_head - heads * params.rows, unit * UNIT_ELEMENTS - (row_end - params.cols));
    window[unit] = unit_at(at, unit);
}

// Rows of fewer units than half a row workgroup's lanes: units unit_lo..unit_hi in order,
// WORKGROUP_SIZE a workgroup, `grid_rows` workgroups along x, then y. Each finds its row
// and head by `quotient` (the window holds fewer than 2^19 rows, `plan.rs`).
@compute @workgroup_size(WORKGROUP_SIZE)
fn dense_packed(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let unit = params.unit_lo + (group.y * params.grid_rows + group.x) * WORKGROUP_SIZE + lane;
    if unit >= params.unit_hi {
        return;
    }
    // Its first element, counted from the start of the window's first row; that row's
    // rows from the start of its head.
    let element = unit * UNIT_ELEMENTS - params.row0_element;
    let along = quotient(element, params.cols);
    let in_head = params.head_row0 + along;
    let heads = quotient(in_head, params.rows);
    let at = Cursor(params.head0 + heads, in_head - heads * params.rows, element - along * params.cols);
    window[unit] = unit_at(at, unit);
}

// `n / d` where it is below 2^20 and `n + d` below 2^32 (`plan.rs` keeps every window's
// there): the f32 quotient (within 2.5 ulp in WGSL, so off by at most one after
// truncation), corrected. No integer division per lane, which CPU adapters run one lane at
// a time.
fn quotient(n: u32, d: u32) -> u32 {
    let q = u32(f32(n) / f32(d));
    let down = select(q, q - 1u, q * d > n);
    return select(down, down + 1u, (down + 1u) * d <= n);
}
