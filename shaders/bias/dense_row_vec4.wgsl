// The dense kernels' body in rows of a workgroup's units or more: four words of one row
// per invocation, one slope, no walk across rows (`dense.wgsl`); only the units that end
// in their row (UNITS_IN_ROW), the others are `dense_crossing`'s. CPU adapters run both
// sides of a branch, so the crossing of `dense_vec4.wgsl` would cost every unit.

alias Unit = vec4<u32>;

// Elements per unit, as a shift (`dense.wgsl` divides by shifting).
const UNIT_SHIFT: u32 = ELEMENTS_PER_WORD + 1u;
const UNIT_ELEMENTS: u32 = 1u << UNIT_SHIFT;
const UNITS_IN_ROW: bool = true;

fn unit_at(at: Cursor, unit: u32) -> Unit {
    let first = row_bits4(at.h, at.r, vec4<u32>(at.k) + vec4<u32>(0u, 1u, 2u, 3u));
    if ELEMENTS_PER_WORD == 1u {
        return first;
    }
    let second = row_bits4(at.h, at.r, vec4<u32>(at.k) + vec4<u32>(4u, 5u, 6u, 7u));
    return vec4<u32>(first.x | (first.y << 16u), first.z | (first.w << 16u), second.x | (second.y << 16u), second.z | (second.w << 16u));
}
