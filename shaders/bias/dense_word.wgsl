// The dense kernels' edges: one word per invocation, for the words before the first whole
// vec4 of the tensor and after the last (`dense.wgsl`). An f16 tensor of odd length ends
// in the low half of a word whose high half is the caller's: it is read and kept.

alias Unit = u32;

// Elements per unit, as a shift (`dense.wgsl` divides by shifting).
const UNIT_SHIFT: u32 = ELEMENTS_PER_WORD - 1u;
const UNIT_ELEMENTS: u32 = 1u << UNIT_SHIFT;
const UNITS_IN_ROW: bool = false;

fn unit_at(at: Cursor, unit: u32) -> Unit {
    let bits = quad(at).bits;
    if ELEMENTS_PER_WORD == 1u {
        return bits.x;
    }
    let past_end = unit * 2u + 1u >= params.tensor_end;
    return select(bits.x | (bits.y << 16u), (window[unit] & 0xffff0000u) | bits.x, past_end);
}
