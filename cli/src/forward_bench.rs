//! The forward figures of `alibi bench`: one case's generation against a copy of the same
//! bytes, readback to the host, the CPU path and cache hits; and the decode loop.

use std::hint::black_box;
use std::time::Instant;

use alibi_wgpu::{cpu, reference, AlibiConfig, AlibiError, AlibiPositionalBias, GpuDevice};

use crate::case::Case;
use crate::dense_bench::measure_dense;
use crate::measure::{median, round3, time_ms, wait_idle, Rig};
use crate::module_args::GenerationChoice;
use crate::report::{CaseReport, DecodeReport};

/// The decode loop's module: `(heads, total_heads)`.
pub const DECODE_HEADS: (usize, usize) = (12, 16);

/// Measures one case, `runs` timed runs per figure, medians.
pub fn measure_case(
    gpu: &GpuDevice,
    case: Case,
    runs: usize,
    generation: GenerationChoice,
) -> Result<CaseReport, AlibiError> {
    let Case {
        heads,
        total_heads,
        i,
        j,
    } = case;
    let tensor_bytes = (total_heads * i * j * 4) as u64;
    let config = AlibiConfig::new(heads)
        .total_heads(total_heads)
        .cache_budget_bytes(alibi_wgpu::DEFAULT_CACHE_BUDGET_BYTES.max(2 * tensor_bytes))
        .generation_path(generation.into());
    let mut alibi = AlibiPositionalBias::on_device(gpu, config)?;

    // Generation alone against a copy of the same bytes, alternated so both see the same noise.
    let rig = Rig::new(&alibi, i, j)?;
    // What one generation writes (rows padded to a multiple of 4), and what the copy moves.
    let bytes = rig.bytes();
    rig.generate(&mut alibi)?;
    rig.generate_with_shader(&mut alibi)?;
    let (mut generate, mut shader, mut copy) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        generate.push(time_ms(|| rig.generate(&mut alibi))?);
        shader.push(time_ms(|| rig.generate_with_shader(&mut alibi))?);
        copy.push(time_ms(|| rig.copy(&alibi))?);
    }
    drop(rig);

    // Forward plus readback, cache cleared each time: into a reused vector (the steady state
    // of an inference loop) and into a new one.
    let mut host = Vec::new();
    // The CLI has no async runtime: `pollster` waits on the library's readbacks.
    pollster::block_on(alibi.forward_to_host_into(i, j, &mut host))?;
    let (mut to_host, mut to_fresh_host) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        alibi.clear_cache();
        to_host.push(time_ms(|| {
            pollster::block_on(alibi.forward_to_host_into(i, j, &mut host))
        })?);
        alibi.clear_cache();
        to_fresh_host.push(time_ms(|| {
            pollster::block_on(alibi.forward_to_host(i, j)).map(drop)
        })?);
    }

    // The CPU path, timed into a reused vector; the oracle is computed once, untimed.
    let expected = reference::forward(alibi.slopes(), total_heads, i, j)?.into_vec();
    let mut on_cpu = Vec::new();
    cpu::forward_into(alibi.slopes(), total_heads, i, j, &mut on_cpu)?;
    let mut cpu_path = Vec::new();
    for _ in 0..runs {
        cpu_path.push(time_ms(|| {
            cpu::forward_into(alibi.slopes(), total_heads, i, j, &mut on_cpu)
        })?);
    }

    let (hit_ns, hit_misses) = cache_hit_ns(&mut alibi, i, j)?;
    let dense = measure_dense(&mut alibi, i, j, runs)?;
    let generate_ms = median(generate);
    let shader_ms = median(shader);
    let copy_ms = median(copy);
    Ok(CaseReport {
        generation_path: format!("{:?}", alibi.generation_path()),
        heads,
        total_heads,
        i,
        j,
        bytes,
        generate_ms: round3(generate_ms),
        generate_gb_per_s: round3(bytes as f64 / generate_ms / 1e6),
        copy_ms: round3(copy_ms),
        generate_over_copy: round3(generate_ms / copy_ms),
        shader_generate_ms: round3(shader_ms),
        shader_over_copy: round3(shader_ms / copy_ms),
        forward_to_host_ms: round3(median(to_host)),
        forward_to_new_host_vec_ms: round3(median(to_fresh_host)),
        cpu_path_ms: round3(median(cpu_path)),
        cache_hit_ns: hit_ns.round(),
        cache_hit_misses: hit_misses,
        exact: host == expected && on_cpu == expected,
        strided_fresh_ms: round3(dense.strided_fresh_ms),
        dense_ms: round3(dense.dense_ms),
        dense_over_strided: dense.dense_over_strided(),
        dense_into_ms: round3(dense.into_ms),
        dense_into_over_strided: dense.reused_over_strided(),
        strided_into_ms: round3(dense.strided_into_ms),
        dense_into_over_strided_into: dense.reused_over_strided_reused(),
        dense_hit_ms: round3(dense.dense_hit_ms),
        dense_copy_ms: round3(dense.copy_new_ms),
        dense_hit_over_copy: dense.dense_hit_over_copy(),
        dense_hit_into_ms: round3(dense.hit_into_ms),
        dense_copy_into_ms: round3(dense.copy_into_ms),
        dense_hit_into_over_copy: dense.hit_into_over_copy(),
        dense_exact: dense.exact,
    })
}

/// Median host time of a repeated `forward(i, j)` served from the cache, and the misses
/// among those repeats (0 unless the cache is broken).
fn cache_hit_ns(
    alibi: &mut AlibiPositionalBias,
    i: usize,
    j: usize,
) -> Result<(f64, u64), AlibiError> {
    const BATCH: u32 = 256;
    alibi.forward(i, j)?;
    let misses = alibi.cache_stats().misses;
    let mut per_call = Vec::new();
    for _ in 0..31 {
        let start = Instant::now();
        for _ in 0..BATCH {
            black_box(alibi.forward(black_box(i), black_box(j))?);
        }
        per_call.push(start.elapsed().as_nanos() as f64 / f64::from(BATCH));
    }
    Ok((median(per_call), alibi.cache_stats().misses - misses))
}

/// The decode loop of a KV-cache inference: a (512, 512) prefill, then `forward(1, t)`.
pub fn measure_decode(
    gpu: &GpuDevice,
    steps: usize,
    generation: GenerationChoice,
) -> Result<DecodeReport, AlibiError> {
    let (heads, total_heads) = DECODE_HEADS;
    let config = AlibiConfig::new(heads)
        .total_heads(total_heads)
        .generation_path(generation.into());
    let mut alibi = AlibiPositionalBias::on_device(gpu, config)?;
    alibi.forward(512, 512)?;
    let checked_steps = [1, 511, 512, 513, 1024, 1025, steps / 2 + 1, steps];
    let mut kept = Vec::new();
    let mut step_ns = Vec::with_capacity(steps);
    for t in 1..=steps {
        let start = Instant::now();
        let bias = alibi.forward(1, t)?;
        step_ns.push(start.elapsed().as_nanos() as f64);
        if checked_steps.contains(&t) {
            kept.push((t, bias));
        }
    }
    wait_idle(alibi.device())?;
    let generations = alibi.cache_stats().misses;
    let mut exact = true;
    for (t, bias) in &kept {
        let expected = reference::forward(alibi.slopes(), total_heads, 1, *t)?;
        exact &= pollster::block_on(alibi.read(bias))? == expected;
    }
    Ok(DecodeReport {
        generation_path: format!("{:?}", alibi.generation_path()),
        heads,
        total_heads,
        prefill: [512, 512],
        steps,
        decode_generations: generations,
        decode_step_ns: median(step_ns).round(),
        exact,
    })
}
