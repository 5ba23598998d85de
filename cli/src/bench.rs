//! `alibi bench`: how fast the bias is made, against what the same device can do.
//!
//! For each case it measures, in one run so that ratios share the machine's noise:
//! the generation alone (on the module's path, and by the WGSL kernel) against a copy of
//! the same bytes on the same device, forward plus readback to the host, the CPU path
//! (`alibi_wgpu::cpu`), and cache hits; then a decode loop. Every result is compared with
//! the oracle, `alibi_wgpu::reference`. Each figure is the median of `--runs` timed runs
//! after a warm-up. Each case also measures the variants (causal, f16, `add_to_scores`:
//! [`crate::variants`]), and the run ends with the attention example's timings.

use std::hint::black_box;
use std::io::Write;
use std::time::Instant;

use alibi_wgpu::{cpu, reference, AlibiConfig, AlibiError, AlibiPositionalBias, GpuDevice};

use crate::backend::GenerationChoice;
use crate::error::CliError;
use crate::measure::{median, round3, time_ms, wait_idle, Rig};
use crate::progress;
use crate::report::{CaseReport, DecodeReport, Record, Tags};
use crate::shape::{parse_fields, Syntax};
use crate::variants;

/// Arguments of `alibi bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Cases HxTxIxJ: H heads with slopes, T total heads, forward(I, J); default:
    /// 8x8x1024x1024 16x16x2048x2048 32x32x2048x2048 12x16x1x4096.
    #[arg(long = "case", value_parser = parse_case)]
    pub cases: Vec<Case>,
    /// Timed runs per figure (the median is reported), after one warm-up run.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u64).range(1..))]
    pub runs: u64,
    /// Decode steps `forward(1, t)` for t = 1..=STEPS after a (512, 512) prefill; 0 skips.
    #[arg(long, default_value_t = 4096)]
    pub decode_steps: usize,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
    /// The modules' generation path (auto: host-mapped on CPU adapters, the kernel
    /// elsewhere); the kernel alone is measured too, whatever this says.
    #[arg(long, value_enum, value_name = "PATH", default_value_t = GenerationChoice::Auto)]
    pub generation: GenerationChoice,
}

/// One benchmark shape: `heads` with slopes, padded to `total_heads`, `forward(i, j)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Case {
    heads: usize,
    total_heads: usize,
    i: usize,
    j: usize,
}

const DEFAULT_CASES: [Case; 4] = [
    Case {
        heads: 8,
        total_heads: 8,
        i: 1024,
        j: 1024,
    },
    Case {
        heads: 16,
        total_heads: 16,
        i: 2048,
        j: 2048,
    },
    Case {
        heads: 32,
        total_heads: 32,
        i: 2048,
        j: 2048,
    },
    Case {
        heads: 12,
        total_heads: 16,
        i: 1,
        j: 4096,
    },
];

/// Writes one line to stdout, returning a failure (a closed pipe) as [`CliError::Stdout`].
macro_rules! say {
    ($out:expr, $($line:tt)*) => {
        writeln!($out, $($line)*).map_err(CliError::Stdout)?
    };
}

/// How `--case` is written.
const CASE: Syntax = Syntax {
    name: "a case HxTxIxJ",
    fields: "heads with slopes x total heads x queries x keys",
    examples: "8x8x1024x1024 or 12x16x1x4096",
};

fn parse_case(text: &str) -> Result<Case, String> {
    let [heads, total_heads, i, j] = parse_fields(text, &CASE)?;
    Ok(Case {
        heads,
        total_heads,
        i,
        j,
    })
}

impl BenchArgs {
    /// Checks every case with the library's own messages, so that a bad one is refused
    /// before a device is opened or anything is measured or printed.
    pub fn validate(&self) -> Result<(), AlibiError> {
        for case in &self.cases {
            alibi_wgpu::validate(case.heads, case.total_heads, case.i, case.j)?;
        }
        Ok(())
    }
}

/// Runs every case and the decode loop on `gpu`, printing as it goes.
pub fn run(args: &BenchArgs, gpu: &GpuDevice) -> Result<(), CliError> {
    // Not `println!`, which panics on a closed pipe (`alibi bench | head`): that is an
    // error to report in one line.
    let mut stdout = std::io::stdout().lock();
    let out = &mut stdout;
    let cases = if args.cases.is_empty() {
        DEFAULT_CASES.to_vec()
    } else {
        args.cases.clone()
    };
    let runs = args.runs as usize;
    let adapter = &gpu.adapter_info;
    let backend = format!("{:?}", adapter.backend).to_lowercase();
    if !args.json {
        say!(
            out,
            "adapter: {} ({backend}), median of {runs} runs",
            adapter.name
        );
        say!(
            out,
            "{:<22} {:>7} {:>11} {:>8} {:>7} {:>8} {:>9} {:>9} {:>9} {:>9} {:>11} {:>8} {:>6}",
            "case [total, i, j]",
            "MiB",
            "path",
            "gen ms",
            "GB/s",
            "copy ms",
            "gen/copy",
            "kern/copy",
            "host ms",
            "host* ms",
            "cpu-path ms",
            "hit ns",
            "exact"
        );
    }
    let tags = Tags {
        backend: &backend,
        adapter: &adapter.name,
        runs,
    };
    // On a terminal, a bar on stderr says which case is running (a sweep takes minutes);
    // piped, nothing. Lines go out under `suspend`, so a bar never splits one.
    let bar = progress::steps(cases.len() as u64 + u64::from(args.decode_steps > 0));
    for case in cases {
        bar.set_message(format!(
            "{}x{}x{}x{}",
            case.heads, case.total_heads, case.i, case.j
        ));
        let report = measure_case(gpu, case, runs, args.generation)?;
        let line = if args.json {
            json_line(&tags.record("forward", &report))?
        } else {
            report.table_row()
        };
        bar.suspend(|| writeln!(out, "{line}"))
            .map_err(CliError::Stdout)?;
        let shape = (case.heads, case.total_heads, case.i, case.j);
        let variants = variants::measure_variants(gpu, shape, runs, args.generation)?;
        let line = if args.json {
            json_line(&tags.record("variants", &variants))?
        } else {
            variants.summary()
        };
        bar.suspend(|| writeln!(out, "{line}"))
            .map_err(CliError::Stdout)?;
        bar.inc(1);
    }
    if args.decode_steps > 0 {
        bar.set_message(format!("decode, {} steps", args.decode_steps));
        let decode = measure_decode(gpu, args.decode_steps, args.generation)?;
        let line = if args.json {
            json_line(&tags.record("decode", &decode))?
        } else {
            decode.summary()
        };
        bar.suspend(|| writeln!(out, "{line}"))
            .map_err(CliError::Stdout)?;
    }
    bar.set_message("attention");
    let attention = variants::measure_attention(gpu, runs)?;
    let line = if args.json {
        json_line(&tags.record("attention", &attention))?
    } else {
        attention.summary()
    };
    bar.suspend(|| writeln!(out, "{line}"))
        .map_err(CliError::Stdout)?;
    bar.finish_and_clear();
    if !args.json {
        say!(out, "path: where the module generates (host-mapped: the host's cores through a mapping, on CPU adapters; shader: the WGSL kernel)");
        say!(
            out,
            "kern/copy: the WGSL kernel's generation over the copy, whatever the path"
        );
        say!(out, "host ms: forward + readback into a reused Vec (cache cleared); host*: into a new Vec (page faults included)");
        say!(
            out,
            "cpu-path ms: alibi_wgpu::cpu::forward_into, the host's cores, into a reused Vec"
        );
        say!(out, "exact: the GPU's readback and the CPU path's result both == alibi_wgpu::reference::forward, the oracle");
        say!(out, "variants: a causal module's generation over a plain one's (path, and kernel), f16 over f32 (kernel), add_to_scores over a scale-only kernel on the same [1, T, i, j] scores");
        say!(out, "attention: examples/attention, ALiBi computed inline (fused) or read from forward's tensor (materialized), over no bias");
    }
    Ok(())
}

/// One record as a JSON line.
fn json_line<T: serde::Serialize>(record: &Record<'_, T>) -> Result<String, CliError> {
    // Only a map with non-string keys can fail to serialize; a record has none.
    serde_json::to_string(record).map_err(|error| CliError::Usage(error.to_string()))
}

fn measure_case(
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
    rig.generate(&alibi)?;
    rig.generate_with_shader(&alibi)?;
    let (mut generate, mut shader, mut copy) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        generate.push(time_ms(|| rig.generate(&alibi).map(drop))?);
        shader.push(time_ms(|| rig.generate_with_shader(&alibi).map(drop))?);
        copy.push(time_ms(|| rig.copy(&alibi))?);
    }
    drop(rig);

    // Forward plus readback, cache cleared each time: into a reused vector (the steady state
    // of an inference loop) and into a new one.
    let mut host = Vec::new();
    alibi.forward_to_host_into_blocking(i, j, &mut host)?;
    let (mut to_host, mut to_fresh_host) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        alibi.clear_cache();
        to_host.push(time_ms(|| {
            alibi.forward_to_host_into_blocking(i, j, &mut host)
        })?);
        alibi.clear_cache();
        to_fresh_host.push(time_ms(|| alibi.forward_to_host_blocking(i, j).map(drop))?);
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
fn measure_decode(
    gpu: &GpuDevice,
    steps: usize,
    generation: GenerationChoice,
) -> Result<DecodeReport, AlibiError> {
    let (heads, total_heads) = (12, 16);
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
        exact &= alibi.read_blocking(bias)? == expected;
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
