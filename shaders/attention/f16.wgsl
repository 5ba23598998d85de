// f16 inputs and outputs of the attention kernels, computed in f32 (needs SHADER_F16): each
// element converted once on load and once on store.
enable f16;

alias Input4 = vec4<f16>;
alias Output4 = vec4<f16>;

fn input4(value: Input4) -> vec4<f32> {
    return vec4<f32>(value);
}

fn output4(value: vec4<f32>) -> Output4 {
    return vec4<f16>(value);
}
