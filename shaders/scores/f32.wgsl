// How the score kernel (`shaders/add_bias.wgsl`, appended after this file) reads and writes
// the caller's scores: as f32, unchanged. `scores/f16.wgsl` is the other choice.

alias Score = f32;

fn to_score(value: f32) -> Score {
    return value;
}
