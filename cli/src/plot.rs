//! `alibi plot`: the bias of one shape as a picture, one heatmap per head.
//!
//! The tensor comes from the library exactly as `alibi bias` computes it (the default
//! adapter, or the CPU path with `--backend cpu` or when there is no adapter), then
//! [`crate::heatmap`] draws it. Like `--out` of `bias`, the PNG is written under a
//! temporary name and renamed into place, so a failed run leaves no partial file.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use alibi_wgpu::{cpu, AlibiConfig, AlibiPositionalBias, HostBias, SlopeSource};

use crate::backend::{BackendChoice, Compute, GenerationChoice};
use crate::error::CliError;
use crate::heatmap;
use crate::shape::{parse_shape, Shape};

/// Heads drawn at most: past 64 panels a picture is no longer readable.
const MAX_PLOTTED_HEADS: usize = 64;

/// Arguments of `alibi plot`.
#[derive(clap::Args, Debug)]
pub struct PlotArgs {
    /// Heads with a slope (at least 1).
    #[arg(long, value_name = "H")]
    pub heads: usize,

    /// Output heads, drawn too (all zero past --heads). Defaults to --heads; at most 64.
    #[arg(long, value_name = "T")]
    pub total_heads: Option<usize>,

    /// Use ggml / llama.cpp's slopes with this max_bias, computed exactly, instead of the
    /// paper's.
    #[arg(long, value_name = "F")]
    pub max_bias: Option<f64>,

    /// The shape IxJ to draw (I queries by J keys); larger than 200 in a direction, every
    /// n-th row or column is shown.
    #[arg(value_name = "SHAPE", value_parser = parse_shape)]
    pub shape: Shape,

    /// The PNG file to write (its directory must exist).
    #[arg(long, value_name = "FILE.png")]
    pub out: PathBuf,

    /// Where to compute, as for `alibi bias`: auto is the default adapter, falling back
    /// to the CPU path when there is none.
    #[arg(long, value_enum, value_name = "BACKEND", default_value_t = BackendChoice::Auto)]
    pub backend: BackendChoice,
}

/// Runs `alibi plot`: checks everything, computes the bias, draws it and writes the PNG.
pub fn run(args: &PlotArgs) -> Result<(), CliError> {
    let total_heads = args.total_heads.unwrap_or(args.heads);
    let source = args
        .max_bias
        .map_or(SlopeSource::Paper, SlopeSource::MaxBias);
    let slopes = source.resolve(args.heads)?;
    let Shape { i, j } = args.shape;
    alibi_wgpu::validate(slopes.len(), total_heads, i, j)?;
    if total_heads > MAX_PLOTTED_HEADS {
        return Err(CliError::Usage(format!(
            "plot draws at most {MAX_PLOTTED_HEADS} heads, got --total-heads {total_heads}; pick fewer heads"
        )));
    }
    if i == 0 || j == 0 {
        return Err(CliError::Usage(format!(
            "shape {} is empty: there is nothing to draw",
            args.shape
        )));
    }
    let dir = check_out(&args.out)?;

    let config = AlibiConfig::new(args.heads)
        .total_heads(total_heads)
        .slopes(source)
        .generation_path(GenerationChoice::Auto.into());
    let (bias, adapter) = compute(args.backend, config, &slopes, args.shape)?;
    let title = format!(
        "ALiBi bias, {} of {total_heads} heads with a slope, forward({i}, {j}) on {adapter}",
        args.heads
    );
    let (pixels, width, height) = heatmap::draw(&bias, &slopes, &title).map_err(CliError::Draw)?;
    write_png(&args.out, &dir, &pixels, width, height)?;
    // Not `println!`, which panics on a closed pipe.
    writeln!(
        std::io::stdout(),
        "wrote {} ({width}x{height} pixels, computed on {adapter})",
        args.out.display()
    )
    .map_err(CliError::Stdout)
}

/// The bias of `shape` on what `backend` names, and a name for where it was computed.
fn compute(
    backend: BackendChoice,
    config: AlibiConfig,
    slopes: &[f32],
    shape: Shape,
) -> Result<(HostBias, String), CliError> {
    let total_heads = config.resolved_total_heads();
    Ok(match backend.open()? {
        Compute::Gpu(gpu) => {
            let mut module = AlibiPositionalBias::on_device(&gpu, config)?;
            let bias = module.forward_to_host_blocking(shape.i, shape.j)?;
            (bias, gpu.adapter_info.name.clone())
        }
        Compute::Cpu => (
            cpu::forward(slopes, total_heads, shape.i, shape.j)?,
            "the CPU path".to_owned(),
        ),
    })
}

/// Refuses an `--out` that cannot take the file before anything is computed, and returns
/// the directory it goes in.
fn check_out(out: &Path) -> Result<PathBuf, CliError> {
    let refuse = |reason: String| CliError::Out {
        path: out.to_owned(),
        reason,
        source: None,
    };
    if out.extension() != Some("png".as_ref()) || out.file_name().is_none() {
        return Err(refuse(
            "the picture is a PNG: name a file ending in .png".to_owned(),
        ));
    }
    let dir = match out.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(refuse(format!(
            "directory {} does not exist",
            dir.display()
        )));
    }
    if out.is_dir() {
        return Err(refuse(format!("{} is a directory", out.display())));
    }
    Ok(dir)
}

/// Encodes the pixels as PNG into a temporary file in `dir`, then renames it to `out`.
fn write_png(
    out: &Path,
    dir: &Path,
    pixels: &[u8],
    width: u32,
    height: u32,
) -> Result<(), CliError> {
    use image::ImageEncoder as _;
    let io_error = |source| CliError::Io {
        action: "write",
        path: out.to_owned(),
        source,
    };
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(pixels, width, height, image::ColorType::Rgb8)
        .map_err(|error| io_error(io::Error::other(error)))?;
    let name = out.file_name().unwrap_or_default().to_string_lossy();
    let temporary = dir.join(format!(".{name}.alibi-{}.tmp", std::process::id()));
    let written = fs::write(&temporary, &png).and_then(|()| fs::rename(&temporary, out));
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    written.map_err(io_error)
}
