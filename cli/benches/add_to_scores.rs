//! `add_over_scale` (issue 9): `add_to_scores` (scores * scale + ALiBi, in place) against a
//! kernel that only scales the same scores in place (the same bytes read and written), on
//! the default adapter (`WGPU_BACKEND` picks it). `cargo bench --bench add_to_scores`;
//! `ALIBI_BENCH_RUNS` sets the runs per kernel (default 21).

use alibi_wgpu::{
    open_device_blocking, AlibiConfig, AlibiPositionalBias, AttentionScores, BiasDtype,
};

/// `(batch, heads, total_heads, i, j, causal)`: a prefill, a batched decode row, and an
/// odd-sized prefill whose rows do not start on a vec4.
const CASES: [(usize, usize, usize, usize, usize, bool); 4] = [
    (1, 8, 8, 1024, 1024, false),
    (1, 8, 8, 1024, 1024, true),
    (16, 12, 16, 1, 4096, false),
    (2, 12, 12, 509, 509, true),
];

fn main() {
    let gpu = open_device_blocking(None)
        .unwrap_or_else(|e| panic!("the benches need a GPU adapter (lavapipe will do): {e}"));
    let runs = std::env::var("ALIBI_BENCH_RUNS").ok().map_or(21, |runs| {
        runs.parse().expect("ALIBI_BENCH_RUNS is a count")
    });
    println!(
        "adapter: {} ({:?}), {runs} runs per kernel, medians",
        gpu.adapter_info.name, gpu.adapter_info.backend
    );
    let mut dtypes = vec![BiasDtype::F32];
    if gpu.device.features().contains(wgpu::Features::SHADER_F16) {
        dtypes.push(BiasDtype::F16);
    }
    for (batch, heads, total_heads, i, j, causal) in CASES {
        let config = AlibiConfig::new(heads)
            .total_heads(total_heads)
            .causal(causal);
        let alibi = AlibiPositionalBias::on_device(&gpu, config).expect("module");
        for &dtype in &dtypes {
            let shape = AttentionScores::new(batch, i, j).scale(0.125).dtype(dtype);
            let [add, scale] = alibi.time_add_over_scale(shape, runs).expect("timing");
            let bytes = (batch * total_heads * i * j * dtype.size()) as f64;
            println!(
                "[{batch}, {total_heads}, {i}, {j}] {dtype} causal {causal}: add {:.3} ms, \
                 scale only {:.3} ms ({:.2} GB/s read+written), add_over_scale {:.3}",
                add.as_secs_f64() * 1e3,
                scale.as_secs_f64() * 1e3,
                2.0 * bytes / scale.as_secs_f64() / 1e9,
                add.as_secs_f64() / scale.as_secs_f64(),
            );
        }
    }
}
