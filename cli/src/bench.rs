//! `alibi bench`: how fast the bias is made, against what the same device can do.
//!
//! For each case it measures, in one run so that ratios share the machine's noise:
//! the generation alone (on the module's path, and by the WGSL kernel) against a copy of
//! the same bytes on the same device, forward plus readback to the host, the CPU path
//! (`alibi_wgpu::cpu`), and cache hits; then a decode loop. Every result is compared with
//! the oracle, `alibi_wgpu::reference`. Each figure is the median of `--runs` timed runs
//! after a warm-up. Each case also measures the variants (causal, f16, `add_to_scores`:
//! [`crate::variants`]), and the run ends with the attention example's timings.
//!
//! Everything is refused before the first line: the arguments before a device is opened,
//! then what only the device can refuse ([`preflight`]).

use std::io::Write;

use alibi_wgpu::{AlibiConfig, AlibiError, AlibiPositionalBias, GpuDevice};

use crate::attention_bench::{
    measure_attention_case, parse_attention_case, AttentionCase, DEFAULT_ATTENTION_CASES,
};
use crate::case::{parse_case, Case, DEFAULT_CASES};
use crate::error::CliError;
use crate::forward_bench::{measure_case, measure_decode, DECODE_HEADS};
use crate::module_args::{GenerationArgs, GenerationChoice};
use crate::peak::measure_peak;
use crate::progress;
use crate::report::{Record, Tags};
use crate::torch::torch_times;
use crate::variants;

/// Arguments of `alibi bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Cases HxTxIxJ: H heads with slopes, T total heads, forward(I, J); default:
    /// 8x8x1024x1024 16x16x2048x2048 32x32x2048x2048 12x16x1x4096.
    #[arg(long = "case", value_parser = parse_case)]
    pub cases: Vec<Case>,
    /// Fused attention cases HxIxJxD (H query and key/value heads, I queries, J keys, head
    /// dimension D): the library's kernel with ALiBi in registers against no bias, causal,
    /// the materialized bias, the adapter's multiply-add peak and PyTorch where installed;
    /// default (when neither --case nor --attention is given): 8x256x256x64
    /// 16x1024x1024x64 16x2048x2048x64 16x1x4096x64 16x1x16384x64.
    #[arg(long = "attention", value_parser = parse_attention_case)]
    pub attention: Vec<AttentionCase>,
    /// Timed runs per figure (the median is reported), after one warm-up run.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u64).range(1..))]
    pub runs: u64,
    /// Decode steps `forward(1, t)` for t = 1..=STEPS after a (512, 512) prefill; 0 skips.
    #[arg(long, default_value_t = 4096)]
    pub decode_steps: usize,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
    // `--generation-path`, as for `alibi bias` (the kernel alone is measured too, whatever
    // it says: the command's help says so).
    #[command(flatten)]
    pub generation: GenerationArgs,
}

/// Writes one line to stdout, returning a failure (a closed pipe) as [`CliError::Stdout`].
macro_rules! say {
    ($out:expr, $($line:tt)*) => {
        writeln!($out, $($line)*).map_err(CliError::Stdout)?
    };
}

impl BenchArgs {
    /// Checks every case and the decode loop's longest step with the library's own
    /// messages, so that a bad one is refused before a device is opened or anything is
    /// measured or printed.
    pub fn validate(&self) -> Result<(), AlibiError> {
        for case in &self.cases {
            alibi_wgpu::validate(case.heads, case.total_heads, case.i, case.j)?;
        }
        let (heads, total_heads) = DECODE_HEADS;
        alibi_wgpu::validate(heads, total_heads, 1, self.decode_steps)
    }

    /// The attention cases to run: `--attention`s, or the default ones when no case at all
    /// is given.
    fn attention_cases(&self) -> Vec<AttentionCase> {
        if self.attention.is_empty() && self.cases.is_empty() {
            DEFAULT_ATTENTION_CASES.to_vec()
        } else {
            self.attention.clone()
        }
    }

    /// The cases to run: `--case`s, or the default ones when no case at all is given.
    fn cases(&self) -> Vec<Case> {
        if self.cases.is_empty() && self.attention.is_empty() {
            DEFAULT_CASES.to_vec()
        } else {
            self.cases.clone()
        }
    }
}

/// What only the device can refuse, found before the table's first line: each case's
/// module built on `--generation-path` (a path the device lacks) and its largest tensor
/// generated once (one above the device's buffer limits), and the decode loop's last
/// step. Every tensor a case measures (the causal and f16 ones, the scores, the bench
/// buffers) is at most that large.
fn preflight(
    gpu: &GpuDevice,
    cases: &[Case],
    decode_steps: usize,
    generation: GenerationChoice,
) -> Result<(), AlibiError> {
    let decode = Case {
        heads: DECODE_HEADS.0,
        total_heads: DECODE_HEADS.1,
        i: 1,
        j: decode_steps,
    };
    let decode = (decode_steps > 0).then_some(decode);
    for case in cases.iter().chain(decode.as_ref()) {
        let config = AlibiConfig::new(case.heads)
            .total_heads(case.total_heads)
            .generation_path(generation.into());
        let mut module = AlibiPositionalBias::on_device(gpu, config)?;
        module.forward(case.i, case.j)?;
    }
    Ok(())
}

/// Runs every case and the decode loop on `gpu`, printing as it goes.
pub fn run(args: &BenchArgs, gpu: &GpuDevice) -> Result<(), CliError> {
    // Not `println!`, which panics on a closed pipe (`alibi bench | head`): that is an
    // error to report in one line.
    let mut stdout = std::io::stdout().lock();
    let out = &mut stdout;
    let cases = args.cases();
    let generation = args.generation.generation_path;
    preflight(gpu, &cases, args.decode_steps, generation)?;
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
            "{:<22} {:>7} {:>11} {:>8} {:>7} {:>8} {:>9} {:>9} {:>9} {:>9} {:>11} {:>8} {:>9} {:>9} {:>10} {:>9} {:>10} {:>6}",
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
            "dense/str",
            "into/str",
            "into/sinto",
            "dhit/copy",
            "hinto/copy",
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
    let decode = args.decode_steps > 0 && !cases.is_empty();
    let bar = progress::steps(
        cases.len() as u64 + u64::from(decode) + args.attention_cases().len() as u64,
    );
    for &case in &cases {
        bar.set_message(format!(
            "{}x{}x{}x{}",
            case.heads, case.total_heads, case.i, case.j
        ));
        let report = measure_case(gpu, case, runs, generation)?;
        let line = if args.json {
            json_line(&tags.record("forward", &report))?
        } else {
            report.table_row()
        };
        bar.suspend(|| writeln!(out, "{line}"))
            .map_err(CliError::Stdout)?;
        let shape = (case.heads, case.total_heads, case.i, case.j);
        let variants = variants::measure_variants(gpu, shape, runs, generation)?;
        let line = if args.json {
            json_line(&tags.record("variants", &variants))?
        } else {
            variants.summary()
        };
        bar.suspend(|| writeln!(out, "{line}"))
            .map_err(CliError::Stdout)?;
        bar.inc(1);
    }
    if decode {
        bar.set_message(format!("decode, {} steps", args.decode_steps));
        let decode = measure_decode(gpu, args.decode_steps, generation)?;
        let line = if args.json {
            json_line(&tags.record("decode", &decode))?
        } else {
            decode.summary()
        };
        bar.suspend(|| writeln!(out, "{line}"))
            .map_err(CliError::Stdout)?;
    }
    if !cases.is_empty() {
        bar.set_message("attention example");
        let attention = variants::measure_attention(gpu, runs)?;
        let line = if args.json {
            json_line(&tags.record("attention", &attention))?
        } else {
            attention.summary()
        };
        bar.suspend(|| writeln!(out, "{line}"))
            .map_err(CliError::Stdout)?;
    }
    let attention_cases = args.attention_cases();
    if !attention_cases.is_empty() {
        bar.set_message("multiply-add peak");
        let peak = measure_peak(gpu, runs)?;
        let torch = torch_times(&attention_cases, runs);
        let about = torch
            .as_ref()
            .map_or("PyTorch: not installed here".to_owned(), |(about, _)| {
                format!("PyTorch: {about}")
            });
        for (n, case) in attention_cases.iter().enumerate() {
            bar.set_message(format!(
                "attention {}x{}x{}x{}",
                case.heads, case.i, case.j, case.d
            ));
            let torch_ms = torch.as_ref().map(|(_, times)| times[n]);
            let figures = measure_attention_case(gpu, *case, runs, peak, torch_ms)?;
            let line = if args.json {
                json_line(&tags.record("fused_attention", &figures))?
            } else {
                figures.summary()
            };
            bar.suspend(|| writeln!(out, "{line}"))
                .map_err(CliError::Stdout)?;
            bar.inc(1);
        }
        if !args.json {
            bar.suspend(|| writeln!(out, "multiply-add peak: {peak:.1} GFLOP/s; {about}"))
                .map_err(CliError::Stdout)?;
        }
    }
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
        say!(out, "dense/str: forward_dense over the strided forward, both fresh (each allocating its tensor); into/str: encode_into a buffer allocated once over the strided forward (the dense kernel without a new buffer); into/sinto: the same over encode_into of the strided tensor's shape (j rounded up to a multiple of 4, which the strided kernel writes), the two kernels alone; dhit/copy: forward_dense from the cache over a device copy of the same bytes into a new buffer; hinto/copy: encode_into from the cache over a device copy, both into one buffer allocated once");
        say!(out, "exact: the GPU's readback and the CPU path's result both == alibi_wgpu::reference::forward, the oracle");
        say!(out, "variants: a causal module's generation over a plain one's (path, and kernel), f16 over f32 (kernel), add_to_scores over a scale-only kernel on the same [1, T, i, j] scores");
        say!(out, "attention: examples/attention, ALiBi computed inline (fused) or read from forward's tensor (materialized), over no bias");
        say!(out, "attention HxIxJxD: the library's fused kernel (encode_attention), ALiBi in registers; fused/plain: over the same kernel without a bias; causal/fused: a causal module over a plain one; materialized/fused: the kernel reading forward_dense's tensor; % of peak: of the multiply-add loop's GFLOP/s; torch: scaled_dot_product_attention with the ALiBi attn_mask, on the host's cores or ALIBI_BENCH_TORCH_DEVICE");
    }
    Ok(())
}

/// One record as a JSON line.
fn json_line<T: serde::Serialize>(record: &Record<'_, T>) -> Result<String, CliError> {
    // Only a map with non-string keys can fail to serialize; a record has none.
    serde_json::to_string(record).map_err(|error| CliError::Usage(error.to_string()))
}
