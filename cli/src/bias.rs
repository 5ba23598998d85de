//! `alibi bias`: compute the bias of one module for a sequence of shapes.
//!
//! Every shape goes through the same [`alibi_wgpu::AlibiPositionalBias`], in order, so a
//! later shape that fits inside an earlier one is served from the cache: running
//! `alibi bias --heads 8 16x16 1x16` shows a cache hit whose result must still equal a
//! fresh module's (docs/semantics.md, "Cache"). `--backend cpu` computes the same files with the CPU
//! path (`alibi_wgpu::cpu`), which has no cache, for comparison.
//!
//! Everything that can be checked is checked before a device is opened: the heads, every
//! shape, and `--out` (see [`crate::output`] for how files are written, and why a failed
//! run leaves none). What only the device can refuse is found by computing, which is done
//! in full before the first line is printed.

use std::io::Write;
use std::path::PathBuf;

use alibi_wgpu::{cpu, AlibiError, BiasDtype, HostBias};

use crate::engine::Engine;
use crate::error::CliError;
use crate::module_args::{ModuleArgs, ModuleSpec};
use crate::output::{Destination, Output};
use crate::preview::{head_preview, min_max, short_list};
use crate::shape::{parse_shape, Shape};

/// Arguments of `alibi bias`.
#[derive(clap::Args, Debug)]
pub struct BiasArgs {
    #[command(flatten)]
    pub module: ModuleArgs,

    /// Shapes IxJ (I queries by J keys, e.g. 10x10 or 1x4096; 0x5 is empty), computed in
    /// order on one module.
    #[arg(
        required_unless_present = "query_positions",
        conflicts_with = "query_positions",
        value_name = "SHAPE",
        value_parser = parse_shape
    )]
    pub shapes: Vec<Shape>,

    /// Query positions instead of shapes, comma-separated integers (e.g. 0,1,2,4): the
    /// bias is -slope * |key position - query position|, of shape [T, len(queries),
    /// len(keys)], uncached.
    // `--positions-q` was its first spelling.
    #[arg(
        long,
        alias = "positions-q",
        value_name = "P,P,..",
        value_delimiter = ',',
        allow_hyphen_values = true,
        requires = "key_positions"
    )]
    pub query_positions: Option<Vec<i32>>,

    /// Key positions, comma-separated integers (e.g. 0,1,2,3,5); goes with
    /// --query-positions.
    // `--positions-k` was its first spelling.
    #[arg(
        long,
        alias = "positions-k",
        value_name = "P,P,..",
        value_delimiter = ',',
        allow_hyphen_values = true,
        requires = "query_positions"
    )]
    pub key_positions: Option<Vec<i32>>,

    /// Write the tensors as [T, I, J] of --dtype (float32, or float16 for f16; little-endian,
    /// C order): FILE.safetensors holds every shape, named
    /// call-N-IxJ for the Nth (from 0), with the heads and slopes in its metadata; PATH
    /// ending in `/` (or an existing directory) gets DIR/call-N-IxJ.npy for the Nth shape
    /// (.npy files of f16 are <f2); any other PATH is one .npy file, for exactly one
    /// shape. Checked before anything is computed; the files are put in place only once
    /// every shape has succeeded.
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
}

/// Runs `alibi bias`: checks every argument, computes, summarizes and stages each shape in
/// order, and only then prints: a run that is refused (by the checks, or by the device, as
/// for a tensor larger than it can hold) or fails halfway prints nothing on stdout, only
/// its one line on stderr. The files are put in place once all succeeded, then the cache
/// counters printed.
pub fn run(args: &BiasArgs) -> Result<(), CliError> {
    let spec = args.module.resolve()?;
    let positions = match (&args.query_positions, &args.key_positions) {
        (Some(queries), Some(keys)) => Some((queries.as_slice(), keys.as_slice())),
        _ => None,
    };
    let shapes = match positions {
        Some((queries, keys)) => {
            check_positions(&spec, queries, keys)?;
            vec![Shape {
                i: queries.len(),
                j: keys.len(),
            }]
        }
        None => args.shapes.clone(),
    };
    for shape in &shapes {
        alibi_wgpu::validate(spec.heads, spec.total_heads, shape.i, shape.j)?;
    }
    let destination = Destination::from_arg(args.out.as_deref(), shapes.len())?;
    if positions.is_some() && matches!(destination, Destination::Safetensors(_)) {
        // Its metadata describes the module's own positions; a file that said so of a bias
        // at other positions would misdescribe itself.
        return Err(CliError::Usage(
            "--out FILE.safetensors records the bias at the module's positions, not at \
             --query-positions/--key-positions: write a .npy file instead"
                .to_owned(),
        ));
    }
    let mut output = Output::prepare(
        destination,
        &shapes,
        &spec.slopes,
        spec.total_heads,
        spec.causal,
        spec.dtype,
    )?;
    let mut engine = Engine::open(args.module.backend, &spec)?;

    // The report is held until every shape is computed and staged: the device's refusals
    // (a tensor above its buffer limits) come from computing, and must come before the
    // first line.
    let mut report = Vec::new();
    let out = &mut report;
    say(out, format_args!("adapter: {}", engine.describe()))?;
    say(
        out,
        format_args!(
            "heads {} (total {}), slopes {}",
            spec.heads,
            spec.total_heads,
            short_list(&spec.slopes)
        ),
    )?;
    if spec.causal || spec.dtype != BiasDtype::F32 {
        let mask = if spec.causal { "causal" } else { "not causal" };
        say(out, format_args!("{}, {mask}", spec.dtype))?;
    }
    for (call, &shape) in shapes.iter().enumerate() {
        let bias = match positions {
            Some((queries, keys)) => engine.forward_positions(queries, keys)?,
            None => engine.forward(shape)?,
        };
        summarize(out, call, shape, &bias, &spec.slopes)?;
        output.write(call, shape, &bias)?;
    }

    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&report).map_err(CliError::Stdout)?;
    for path in output.commit()? {
        say(&mut stdout, format_args!("wrote {}", path.display()))?;
    }
    say(
        &mut stdout,
        format_args!("cache: {}", engine.cache_summary()),
    )
}

/// Reports positions the library would refuse before a device is opened, with its own
/// messages (the CPU path checks exactly what a module does).
fn check_positions(spec: &ModuleSpec, queries: &[i32], keys: &[i32]) -> Result<(), AlibiError> {
    // With the other side empty the result is empty: this checks every value of each side
    // (their range, their count) and nothing is computed.
    let (slopes, total_heads) = (&spec.slopes, spec.total_heads);
    cpu::forward_positions(slopes, total_heads, queries, &[], false)?;
    cpu::forward_positions(slopes, total_heads, &[], keys, false)?;
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

/// Writes one line to the report or stdout. A closed pipe (`alibi bias ... | head`) is an
/// error to report, not a panic as `println!` would make it.
fn say(out: &mut impl Write, line: std::fmt::Arguments<'_>) -> Result<(), CliError> {
    writeln!(out, "{line}").map_err(CliError::Stdout)
}
