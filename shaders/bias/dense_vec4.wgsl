// The dense kernels' body where a unit may run on into the next rows: four words per
// invocation, one 16-byte store, for units that lie wholly inside the tensor (`dense.wgsl`'s
// packed rows and `dense_crossing`).

alias Unit = vec4<u32>;

// Elements per unit, as a shift (`dense.wgsl` divides by shifting).
const UNIT_SHIFT: u32 = ELEMENTS_PER_WORD + 1u;
const UNIT_ELEMENTS: u32 = 1u << UNIT_SHIFT;
const UNITS_IN_ROW: bool = false;

fn unit_at(at: Cursor, unit: u32) -> Unit {
    let first = quad(at);
    if ELEMENTS_PER_WORD == 1u {
        return first.bits;
    }
    let second = quad(first.next).bits;
    let low = first.bits;
    return vec4<u32>(low.x | (low.y << 16u), low.z | (low.w << 16u), second.x | (second.y << 16u), second.z | (second.w << 16u));
}
