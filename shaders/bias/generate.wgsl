// ALiBi bias kernel: writes `-slope[h] * |k - (J - I + r)|` (zero for padding heads) for
// one window of a `[total_heads, I, J]` tensor, with every future key (k > J - I + r) set to
// -inf when the module is causal. J is a multiple of 4, so every vec4 lies in one row.
//
// Its entry point is `window.wgsl`'s, which it follows: see `src/gpu/bias/kernel.rs`. The
// host path (`src/host/mapped.rs`, with `src/cpu.rs`) writes the same values.

// The keys of `at`: query row r sits at position J - I + r, key k at k.
fn row_keys(at: Slot) -> RowKeys {
    let delta = i32(at.col4 * 4u) - (params.query_offset + i32(at.row));
    return RowKeys(vec4<i32>(delta, delta + 1, delta + 2, delta + 3), at.head);
}
