//! A small attention, `softmax(q k^T * scale + alibi) v`, whose WGSL shader computes ALiBi
//! on the fly from the slopes alone by including `alibi_wgpu::ALIBI_WGSL`, against the same
//! attention reading the bias tensor `AlibiPositionalBias::forward` materializes, and
//! against no bias at all.
//!
//! ```sh
//! cargo run --release --example attention            # fused == materialized, bit for bit?
//! cargo run --release --example attention -- --bench # the timing ratios
//! ```
//!
//! `WGPU_BACKEND=vulkan` or `gl` picks the backend. The shaders and the timing function are
//! in `attention.rs`, shared with `tests/attention.rs`.

mod attention;

use std::process::ExitCode;

use attention::{attention_ratios, Attention, Shape, Variant};

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn max_difference(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max)
}

fn run() -> Result<ExitCode, attention::Error> {
    let bench = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--bench") => true,
        Some(other) => return Err(format!("unknown argument {other:?} (only --bench)").into()),
    };
    let gpu = pollster::block_on(alibi_wgpu::open_device(None))?;
    let info = &gpu.adapter_info;
    println!("adapter: {} ({:?})", info.name, info.backend);

    // 8 heads with slopes, padded to 12; 64 queries at the end of 96 keys; dimension 64;
    // then the same with the causal mask fused in.
    let shape = Shape::new(8, 64, 96, 64).padded_to(12);
    let mut all_same = true;
    for shape in [shape, shape.causal()] {
        let attention = Attention::new(&gpu.device, &gpu.queue, shape, 7)?;
        let fused = attention.output(Variant::Fused)?;
        let materialized = attention.output(Variant::Materialized)?;
        let plain = attention.output(Variant::Plain)?;
        let same = fused.len() == materialized.len()
            && fused
                .iter()
                .zip(&materialized)
                .all(|(a, b)| a.to_bits() == b.to_bits());
        all_same &= same;
        println!("{shape:?}");
        println!(
            "  fused == materialized, bit for bit: {same} (max difference {:e})",
            max_difference(&fused, &materialized)
        );
        println!(
            "  the bias moves the output by up to {:e} (fused against no bias)",
            max_difference(&fused, &plain)
        );
    }

    if bench {
        let shape = Shape::new(8, 256, 256, 64);
        let runs = 21;
        let times = attention_ratios(&gpu.device, &gpu.queue, shape, runs)?;
        println!("{shape:?}, median of {runs} runs:");
        println!(
            "  plain {:?}, fused {:?}, materialized {:?}",
            times.plain, times.fused, times.materialized
        );
        println!(
            "  fused_attention_over_plain {:.3}, materialized_attention_over_plain {:.3}",
            times.fused_attention_over_plain(),
            times.materialized_attention_over_plain()
        );
    }
    Ok(if all_same {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
