// The dense kernels' body where every row holds whole vec4s of words and starts one (j a
// multiple of 4 elements per word, the tensor at a 16-byte boundary): four words of one
// row per invocation, one slope, no walk across rows (`dense.wgsl`). CPU adapters run
// both sides of a branch, so the walk of `dense_vec4.wgsl` would cost every unit.

alias Unit = vec4<u32>;

const UNIT_ELEMENTS: u32 = 4u * ELEMENTS_PER_WORD;

fn unit_at(at: Cursor, unit: u32) -> Unit {
    let first = row_bits4(at.h, at.r, vec4<u32>(at.k) + vec4<u32>(0u, 1u, 2u, 3u));
    if ELEMENTS_PER_WORD == 1u {
        return first;
    }
    let second = row_bits4(at.h, at.r, vec4<u32>(at.k) + vec4<u32>(4u, 5u, 6u, 7u));
    return vec4<u32>(first.x | (first.y << 16u), first.z | (first.w << 16u), second.x | (second.y << 16u), second.z | (second.w << 16u));
}
