//! `alibi plot`: the bias of one shape as a picture, one heatmap per head.
//!
//! It takes the same module flags as `alibi bias` ([`crate::module_args`]), and the tensor
//! comes from the same engine (the default adapter, or the CPU path with `--backend cpu` or
//! when there is no adapter), then [`crate::heatmap`] draws it: masked cells of a causal
//! bias in a colour of their own. Like `--out` of `bias`, the PNG is written under a
//! temporary name and renamed into place, so a failed run leaves no partial file.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use alibi_wgpu::BiasDtype;

use crate::engine::Engine;
use crate::error::CliError;
use crate::heatmap;
use crate::module_args::ModuleArgs;
use crate::shape::{parse_shape, Shape};

/// Heads drawn at most: past 64 panels a picture is no longer readable.
const MAX_PLOTTED_HEADS: usize = 64;

/// Arguments of `alibi plot`.
#[derive(clap::Args, Debug)]
pub struct PlotArgs {
    // The module, as for `alibi bias`; every head is drawn, so at most 64 of them.
    #[command(flatten)]
    pub module: ModuleArgs,

    /// The shape IxJ to draw (I queries by J keys); larger than 200 in a direction, every
    /// n-th row or column is shown.
    #[arg(value_name = "SHAPE", value_parser = parse_shape)]
    pub shape: Shape,

    /// The PNG file to write (its directory must exist).
    #[arg(long, value_name = "FILE.png")]
    pub out: PathBuf,
}

/// Runs `alibi plot`: checks everything, computes the bias, draws it and writes the PNG.
pub fn run(args: &PlotArgs) -> Result<(), CliError> {
    let spec = args.module.resolve()?;
    let Shape { i, j } = args.shape;
    alibi_wgpu::validate(spec.heads, spec.total_heads, i, j)?;
    if spec.total_heads > MAX_PLOTTED_HEADS {
        return Err(CliError::Usage(format!(
            "plot draws at most {MAX_PLOTTED_HEADS} heads, got --total-heads {}; pick fewer heads",
            spec.total_heads
        )));
    }
    if i == 0 || j == 0 {
        return Err(CliError::Usage(format!(
            "shape {} is empty: there is nothing to draw",
            args.shape
        )));
    }
    let dir = check_out(&args.out)?;

    // The same engine as `alibi bias`: an f16 bias comes back widened to f32 (exactly),
    // a causal one with its -inf, which the heatmap draws as masked.
    let mut engine = Engine::open(args.module.backend, &spec)?;
    let bias = engine.forward(args.shape)?;
    let adapter = engine.adapter_name();
    let mut variant = Vec::new();
    if spec.dtype != BiasDtype::F32 {
        variant.push(spec.dtype.to_string());
    }
    if spec.causal {
        variant.push("causal".to_owned());
    }
    let variant = if variant.is_empty() {
        String::new()
    } else {
        format!(" ({})", variant.join(", "))
    };
    let title = format!(
        "ALiBi bias{variant}, {} of {} heads with a slope, forward({i}, {j}) on {adapter}",
        spec.heads, spec.total_heads
    );
    let (pixels, width, height) =
        heatmap::draw(&bias, &spec.slopes, &title).map_err(CliError::Draw)?;
    write_png(&args.out, &dir, &pixels, width, height)?;
    // Not `println!`, which panics on a closed pipe.
    writeln!(
        std::io::stdout(),
        "wrote {} ({width}x{height} pixels, computed on {adapter})",
        args.out.display()
    )
    .map_err(CliError::Stdout)
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
