//! `alibi`: the command-line tool of alibi-wgpu.
//!
//! `main` parses the arguments, runs one subcommand and turns any error into a single
//! `alibi: <message>` line on stderr with a non-zero exit code, so scripts can rely on
//! "exit status plus one line" and never see a panic for bad input.
//!
//! Each subcommand is a variant of [`Command`] that holds its clap `Args`, and a module
//! with a `run` function: adding one takes a module, a variant and a match arm in [`run`];
//! shared pieces such as backend selection ([`backend`]) and errors ([`error`]) live in
//! their own modules.

mod backend;
mod bench;
mod bias;
mod error;
mod measure;
mod npy;
mod preview;
mod shape;

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
    /// Compute the bias tensors of one module for a sequence of shapes, in order, and
    /// print a summary of each (optionally writing them as .npy files).
    Bias(bias::BiasArgs),
    /// Measure generation against a copy of the same bytes on the same device, readback,
    /// the CPU reference, cache hits and a decode loop; a table, or JSON lines.
    Bench(BenchCommand),
}

/// `alibi bench` and the adapter it measures.
#[derive(clap::Args, Debug)]
struct BenchCommand {
    /// The adapter to measure: auto is the default adapter (`WGPU_BACKEND` picks).
    #[arg(long, value_enum, default_value_t = backend::BackendChoice::Auto)]
    backend: backend::BackendChoice,
    #[command(flatten)]
    args: bench::BenchArgs,
}

fn main() -> ExitCode {
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
        Command::Bench(BenchCommand { backend, args }) => match backend.open()? {
            backend::Compute::Gpu(gpu) => Ok(bench::run(&args, &gpu)?),
            backend::Compute::Cpu => Err(CliError::Usage(
                "bench measures a GPU adapter; no adapter was found (the CPU reference is measured within each case)".into(),
            )),
        },
    }
}
