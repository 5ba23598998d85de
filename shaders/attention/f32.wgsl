// f32 inputs and outputs of the attention kernels (`flash.wgsl`, `combine.wgsl`).
alias Input4 = vec4<f32>;
alias Output4 = vec4<f32>;

fn input4(value: Input4) -> vec4<f32> {
    return value;
}

fn output4(value: vec4<f32>) -> Output4 {
    return value;
}
