//! `alibi bias`: compute the bias of one module for a sequence of shapes.
//!
//! Every shape goes through the same [`alibi_wgpu::AlibiPositionalBias`], in order, so a
//! later shape that fits inside an earlier one is served from the cache: running
//! `alibi bias --heads 8 16x16 1x16` shows a cache hit whose result must still equal a
//! fresh module's (SPEC "The cache"). `--backend cpu` computes the same files with the CPU
//! path (`alibi_wgpu::cpu`), which has no cache, for comparison.
//!
//! Everything that can be checked is checked before a device is opened or anything is
//! printed: the heads, every shape, and `--out` (see [`crate::output`] for how files are
//! written, and why a failed run leaves none).

use std::io::Write;
use std::path::PathBuf;

use alibi_wgpu::{cpu, AlibiConfig, AlibiError, BiasDtype, HostBias, SlopeSource};

use crate::backend::{BackendChoice, DtypeChoice, GenerationChoice};
use crate::engine::Engine;
use crate::error::CliError;
use crate::output::{Destination, Output};
use crate::preview::{head_preview, min_max, short_list};
use crate::shape::{parse_shape, Shape};

/// Arguments of `alibi bias`.
#[derive(clap::Args, Debug)]
pub struct BiasArgs {
    /// Heads with a slope (at least 1).
    #[arg(long, value_name = "H")]
    pub heads: usize,

    /// Output heads: heads past --heads are all zero. Defaults to --heads; must not be
    /// smaller.
    #[arg(long, value_name = "T")]
    pub total_heads: Option<usize>,

    /// Use ggml / llama.cpp's slopes with this max_bias, computed exactly, instead of the
    /// paper's (8 gives the paper's).
    #[arg(long, value_name = "F", conflicts_with = "ggml_max_bias")]
    pub max_bias: Option<f64>,

    /// Use llama.cpp's f32 slopes with this max_bias, bit for bit what its CPU backend
    /// computes (they differ from --max-bias's by an ulp or a few).
    #[arg(long, value_name = "F")]
    pub ggml_max_bias: Option<f32>,

    /// Shapes IxJ (I queries by J keys, e.g. 10x10 or 1x4096; 0x5 is empty), computed in
    /// order on one module.
    #[arg(
        required_unless_present = "positions_q",
        conflicts_with = "positions_q",
        value_name = "SHAPE",
        value_parser = parse_shape
    )]
    pub shapes: Vec<Shape>,

    /// Mask every future key (k > j - i + r; with positions, pos_k > pos_q) with -inf, in
    /// every head.
    #[arg(long)]
    pub causal: bool,

    /// Element type of the bias: f16 rounds to nearest even and saturates at -65504
    /// (-inf stays -inf), on adapters with SHADER_F16 (and on the CPU path); .npy files
    /// are then <f2.
    #[arg(long, value_enum, value_name = "TYPE", default_value_t = DtypeChoice::F32)]
    pub dtype: DtypeChoice,

    /// Query positions instead of shapes, comma-separated integers (e.g. 0,1,2,4): the
    /// bias is -slope * |pos_k - pos_q|, of shape [T, len(q), len(k)], uncached.
    #[arg(
        long,
        value_name = "P,P,..",
        value_delimiter = ',',
        allow_hyphen_values = true,
        requires = "positions_k"
    )]
    pub positions_q: Option<Vec<i32>>,

    /// Key positions, comma-separated integers (e.g. 0,1,2,3,5); goes with --positions-q.
    #[arg(
        long,
        value_name = "P,P,..",
        value_delimiter = ',',
        allow_hyphen_values = true,
        requires = "positions_q"
    )]
    pub positions_k: Option<Vec<i32>>,

    /// Write the tensors as [T, I, J] of --dtype (float32, or float16 for f16; little-endian,
    /// C order): FILE.safetensors holds every shape, named
    /// call-N-IxJ for the Nth (from 0), with the heads and slopes in its metadata; PATH
    /// ending in `/` (or an existing directory) gets DIR/call-N-IxJ.npy for the Nth shape;
    /// any other PATH is one .npy file, for exactly one shape. Checked before anything is
    /// computed; the files are put in place only once every shape has succeeded.
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,

    /// Where to compute: auto is the default adapter (WGPU_BACKEND picks), falling back to
    /// the CPU path when there is none; vulkan and gl fail when absent.
    #[arg(long, value_enum, value_name = "BACKEND", default_value_t = BackendChoice::Auto)]
    pub backend: BackendChoice,

    /// How a GPU module computes: auto takes the host-mapped path on CPU adapters that
    /// allow it (lavapipe's Vulkan; not llvmpipe's GL) and the WGSL kernel elsewhere. Both
    /// give the same bytes. Not used by the CPU path (--backend cpu, or its fallback).
    #[arg(long, value_enum, value_name = "PATH", default_value_t = GenerationChoice::Auto)]
    pub generation: GenerationChoice,
}

/// Runs `alibi bias`: checks every argument, then computes, summarizes and writes each
/// shape in order, puts the files in place once all succeeded, and prints the cache
/// counters.
pub fn run(args: &BiasArgs) -> Result<(), CliError> {
    let total_heads = args.total_heads.unwrap_or(args.heads);
    let slope_source = match (args.max_bias, args.ggml_max_bias) {
        (Some(max_bias), _) => SlopeSource::MaxBias(max_bias),
        (None, Some(max_bias)) => SlopeSource::GgmlF32(max_bias),
        (None, None) => SlopeSource::Paper,
    };
    let slopes = slope_source.resolve(args.heads)?;
    let positions = match (&args.positions_q, &args.positions_k) {
        (Some(queries), Some(keys)) => Some((queries.as_slice(), keys.as_slice())),
        _ => None,
    };
    let shapes = match positions {
        Some((queries, keys)) => {
            check_positions(&slopes, total_heads, queries, keys)?;
            vec![Shape {
                i: queries.len(),
                j: keys.len(),
            }]
        }
        None => args.shapes.clone(),
    };
    check_shapes(&slopes, total_heads, &shapes)?;
    let dtype = BiasDtype::from(args.dtype);
    let destination = Destination::from_arg(args.out.as_deref(), shapes.len())?;
    if positions.is_some() && matches!(destination, Destination::Safetensors(_)) {
        // Its metadata describes the module's own positions; a file that said so of a bias
        // at other positions would misdescribe itself.
        return Err(CliError::Usage(
            "--out FILE.safetensors records the bias at the module's positions, not at \
             --positions-q/--positions-k: write a .npy file instead"
                .to_owned(),
        ));
    }
    let mut output = Output::prepare(
        destination,
        &shapes,
        &slopes,
        total_heads,
        args.causal,
        dtype,
    )?;

    let config = AlibiConfig::new(args.heads)
        .total_heads(total_heads)
        .slopes(slope_source)
        .causal(args.causal)
        .dtype(dtype)
        .generation_path(args.generation.into());
    let mut engine = Engine::open(args.backend, config, &slopes)?;

    let mut stdout = std::io::stdout().lock();
    let out = &mut stdout;
    say(out, format_args!("adapter: {}", engine.describe()))?;
    say(
        out,
        format_args!(
            "heads {} (total {total_heads}), slopes {}",
            args.heads,
            short_list(&slopes)
        ),
    )?;
    if args.causal || dtype != BiasDtype::F32 {
        let mask = if args.causal { "causal" } else { "not causal" };
        say(out, format_args!("{dtype}, {mask}"))?;
    }
    for (call, &shape) in shapes.iter().enumerate() {
        let bias = match positions {
            Some((queries, keys)) => engine.forward_positions(queries, keys)?,
            None => engine.forward(shape)?,
        };
        summarize(out, call, shape, &bias, &slopes)?;
        output.write(call, shape, &bias)?;
    }
    for path in output.commit()? {
        say(out, format_args!("wrote {}", path.display()))?;
    }
    say(out, format_args!("cache: {}", engine.cache_summary()))
}

/// Reports positions the library would refuse before a device is opened, with its own
/// messages (the CPU path checks exactly what a module does).
fn check_positions(
    slopes: &[f32],
    total_heads: usize,
    queries: &[i32],
    keys: &[i32],
) -> Result<(), AlibiError> {
    // With the other side empty the result is empty: this checks every value of each side
    // (their range, their count) and nothing is computed.
    cpu::forward_positions(slopes, total_heads, queries, &[], false)?;
    cpu::forward_positions(slopes, total_heads, &[], keys, false)?;
    Ok(())
}

/// Reports bad heads or shapes before a device is opened or anything is printed, with the
/// library's own messages.
fn check_shapes(slopes: &[f32], total_heads: usize, shapes: &[Shape]) -> Result<(), AlibiError> {
    alibi_wgpu::validate(slopes.len(), total_heads, 0, 0)?;
    for shape in shapes {
        alibi_wgpu::validate(slopes.len(), total_heads, shape.i, shape.j)?;
    }
    Ok(())
}

/// Prints one call: its shape, value range and a preview of head 0.
fn summarize(
    out: &mut impl Write,
    call: usize,
    shape: Shape,
    bias: &HostBias,
    slopes: &[f32],
) -> Result<(), CliError> {
    let [heads, i, j] = bias.shape();
    let Some((min, max)) = min_max(bias) else {
        return say(
            out,
            format_args!("call {call}: {shape} -> [{heads}, {i}, {j}], empty"),
        );
    };
    say(
        out,
        format_args!("call {call}: {shape} -> [{heads}, {i}, {j}], min {min}, max {max}"),
    )?;
    // `--heads` is at least 1 by now, so head 0 always has a slope.
    let slope = slopes.first().copied().unwrap_or(0.0);
    say(out, format_args!("  head 0 (slope {slope}):"))?;
    for line in head_preview(bias, 0) {
        say(out, format_args!("    {line}"))?;
    }
    Ok(())
}

/// Writes one line to stdout. A closed pipe (`alibi bias ... | head`) is an error to
/// report, not a panic as `println!` would make it.
fn say(out: &mut impl Write, line: std::fmt::Arguments<'_>) -> Result<(), CliError> {
    writeln!(out, "{line}").map_err(CliError::Stdout)
}
