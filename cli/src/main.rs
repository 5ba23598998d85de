//! `alibi`: the command-line tool of alibi-wgpu.
//!
//! `main` parses the arguments, runs one subcommand and turns any error into a single
//! `alibi: <message>: <its causes>` line on stderr with a non-zero exit code, so scripts can
//! rely on "exit status plus one line" and never see a panic for bad input.
//!
//! Each subcommand is a variant of [`Command`] that holds its clap `Args`, and a module
//! with a `run` function: adding one takes a module, a variant and a match arm in [`run`];
//! shared pieces such as the module's flags ([`module_args`], one group flattened into every
//! subcommand that builds a module), backend selection ([`backend`]), the `IxJ`-style size
//! arguments ([`shape`]), output files ([`output`]) and errors ([`error`]) live in their
//! own modules.

mod attention;
mod attention_bench;
mod backend;
mod bench;
mod bias;
mod case;
mod dense_bench;
mod destination;
mod engine;
mod error;
mod forward_bench;
mod heatmap;
mod info;
mod measure;
mod module_args;
mod npy;
mod output;
mod peak;
mod plot;
mod preview;
mod progress;
mod report;
mod scale_only;
mod shape;
mod torch;
mod variants;

use std::path::Path;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::CliError;

/// Exact ALiBi attention biases, computed by WGSL compute shaders on any wgpu adapter.
#[derive(Parser, Debug)]
// Without arguments clap would print the whole help as an "error"; asking for the missing
// subcommand instead keeps every failure to one line.
#[command(name = "alibi", version, arg_required_else_help = false)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands of `alibi`.
#[derive(Subcommand, Debug)]
enum Command {
    /// Compute the bias tensors of one module for a sequence of shapes, in order, and,
    /// once all are computed, print a summary of each (optionally writing them as .npy or
    /// .safetensors files).
    Bias(bias::BiasArgs),
    /// Measure generation against a copy of the same bytes on the same device (on the
    /// modules' --generation-path, and by the WGSL kernel whatever it says), readback, the
    /// CPU path, cache hits and a decode loop; a table, or JSON lines.
    Bench(BenchCommand),
    /// Draw the bias of one shape as a PNG: one heatmap per head in a grid (64 heads at
    /// most), a colour scale, each head's slope as its caption, masked cells (--causal) in
    /// a colour of their own.
    Plot(plot::PlotArgs),
    /// Fused attention with ALiBi computed in registers on .npy files:
    /// softmax(q k^T * scale + alibi) v, no bias tensor; writes Y with Q's shape and dtype.
    Attention(attention::AttentionArgs),
    /// List every adapter wgpu finds (name, backend, type, driver), its limits and
    /// features that matter here, and which adapter and generation path auto picks.
    Info(info::InfoArgs),
}

/// `alibi bench` and the adapter it measures.
#[derive(clap::Args, Debug)]
struct BenchCommand {
    /// The adapter to measure: auto is the default adapter (`WGPU_BACKEND` picks); without
    /// an adapter, bench fails (the CPU path is measured within each case).
    #[arg(long, value_enum, default_value_t = backend::BackendChoice::Auto)]
    backend: backend::BackendChoice,
    #[command(flatten)]
    args: bench::BenchArgs,
}

fn main() -> ExitCode {
    quiet_headless_vulkan();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(clap_error) => return error::report_clap(&clap_error),
    };
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            error::report(&error);
            ExitCode::FAILURE
        }
    }
}

/// Runs one subcommand.
fn run(command: Command) -> Result<(), CliError> {
    match command {
        Command::Bias(args) => bias::run(&args),
        Command::Plot(args) => plot::run(&args),
        Command::Info(args) => info::run(&args),
        Command::Attention(args) => attention::run(&args),
        Command::Bench(BenchCommand { backend, args }) => {
            args.validate()?;
            match backend.open_gpu()? {
                Some(gpu) => bench::run(&args, &gpu),
                None => Err(CliError::Usage(
                    "bench measures a GPU adapter, and --backend cpu names none (the CPU path is measured within each case)".into(),
                )),
            }
        }
    }
}

/// Keeps Mesa's implicit Vulkan layer `VK_LAYER_MESA_device_select` out of a headless run.
///
/// Without a usable `XDG_RUNTIME_DIR` (ssh sessions, containers, CI), the layer's call of
/// `wl_display_connect()` inside `vkEnumeratePhysicalDevices` makes libwayland print
/// "error: XDG_RUNTIME_DIR is invalid or not set in the environment." on stderr, twice per
/// run: noise on every success, and a second and third line after a one-line error. No
/// Wayland session is reachable then anyway (libwayland finds its socket through that
/// variable, an absolute `WAYLAND_DISPLAY`, or an inherited `WAYLAND_SOCKET`), so the layer could only print; and it has
/// nothing to choose for us, since wgpu enumerates the adapters and picks one itself. The
/// layer's manifest (`/usr/share/vulkan/implicit_layer.d/VkLayer_MESA_device_select.json`)
/// names `NODEVICE_SELECT=1` as the switch that disables it, which the Vulkan loader reads
/// when it loads the layers. A `NODEVICE_SELECT` the user set is left alone, and so is a
/// session where Wayland is reachable, where the layer works as intended.
fn quiet_headless_vulkan() {
    let absolute = |name| std::env::var_os(name).is_some_and(|v| Path::new(&v).is_absolute());
    let wayland_reachable = absolute("XDG_RUNTIME_DIR")
        || absolute("WAYLAND_DISPLAY")
        || std::env::var_os("WAYLAND_SOCKET").is_some();
    if !wayland_reachable && std::env::var_os("NODEVICE_SELECT").is_none() {
        // First thing in `main`, before any thread exists (wgpu, rayon and the Vulkan
        // loader start theirs later), so changing the environment races no reader.
        std::env::set_var("NODEVICE_SELECT", "1");
    }
}
