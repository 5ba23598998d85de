// How the score kernel (`shaders/add_bias.wgsl`, appended after this file) reads and writes
// the caller's scores: as f16, for devices with `SHADER_F16`. The kernel widens each score
// to f32 and computes in f32; `to_score` rounds the result back. `scores/f32.wgsl` is the
// other choice.

enable f16;

alias Score = f16;

// As the generator's f16 store (`store/f16.wgsl`): finite values saturate at the largest
// finite f16 before the conversion (which rounds to nearest even), so a large score never
// becomes an infinity and a row never becomes all -inf (softmax NaN). The causal mask's
// -inf is written apart, converted as it is.
fn to_score(value: f32) -> Score {
    return Score(clamp(value, -65504.0, 65504.0));
}
