//! The errors of the `alibi` tool, and how they reach the user: one line on stderr.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use alibi_wgpu::{error_chain, AlibiError};

/// Everything a subcommand can fail with.
///
/// As in the library, a message says what failed and names the path or value; the error
/// that caused it is its [`source`](std::error::Error::source), which [`report`] prints
/// after it.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The library refused the request (bad heads, sequence too long, no adapter, ...); its
    /// message already names the offending value.
    #[error(transparent)]
    Alibi(#[from] AlibiError),

    /// `--out` cannot take the files: found before anything is computed.
    #[error("cannot write --out {}: {reason}", .path.display())]
    Out {
        /// The path given to `--out`.
        path: PathBuf,
        /// What is wrong with it, naming the directory or file at fault.
        reason: String,
        /// The file system's answer, when it gave one.
        #[source]
        source: Option<std::io::Error>,
    },

    /// Reading or writing a file failed.
    #[error("cannot {action} {}", .path.display())]
    Io {
        /// What was being done, e.g. "write".
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },

    /// Writing a `.safetensors` file failed: its header, or the bytes.
    #[error("cannot write {}", .path.display())]
    Export {
        /// The file.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: alibi_wgpu::export::ExportError,
    },

    /// plotters could not draw the heatmap.
    #[error("cannot draw the heatmap: {0}")]
    Draw(String),

    /// Printing the results failed (e.g. stdout is a closed pipe).
    #[error("cannot write to stdout")]
    Stdout(#[source] std::io::Error),

    /// The attention benchmark (the example's shaders, on the device) failed.
    #[error("the attention benchmark failed: {0}")]
    Attention(String),

    /// Arguments that parse but do not go together (e.g. one output file for two shapes).
    #[error("{0}")]
    Usage(String),
}

/// Prints `alibi: <error>: <its sources>` as one line on stderr (see
/// [`alibi_wgpu::error_chain`]).
pub fn report(error: &CliError) {
    note(&error_chain(error));
}

/// Handles a failed argument parse: `--help` and `--version` print as clap intends and
/// succeed; a real error becomes one line on stderr with clap's exit code (2).
pub fn report_clap(error: &clap::Error) -> ExitCode {
    if !error.use_stderr() {
        // Help and version are not errors; a closed stdout is not worth a message.
        let _ = error.print();
        return ExitCode::SUCCESS;
    }
    // clap's plain-text rendering is "error: <what>", possibly continued on indented lines
    // (e.g. the list of missing arguments), then a blank line and usage hints. Keep the
    // message, drop the hints: the single line ends with a pointer to `--help` instead.
    let rendered = error.render().to_string();
    let message: Vec<&str> = rendered
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .map(str::trim)
        .collect();
    let message = message.join(" ");
    let message = message.strip_prefix("error: ").unwrap_or(&message);
    note(&format!("{message} (see `alibi --help`)"));
    ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2))
}

/// Writes `alibi: <message>` on stderr. Every message comes on one line (errors through
/// `error_chain`, clap's joined above), so every failure, and the one warning (the CPU
/// fallback), is exactly one line.
pub fn note(message: &str) {
    // Nothing useful can be done if stderr itself is closed.
    let _ = writeln!(std::io::stderr(), "alibi: {message}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_print_their_cause_after_the_path() {
        let error = CliError::Io {
            action: "write",
            path: PathBuf::from("out/a.npy"),
            source: std::io::Error::other("no space"),
        };
        assert_eq!(error_chain(&error), "cannot write out/a.npy: no space");
        let error = CliError::Alibi(AlibiError::ZeroHeads);
        assert_eq!(error_chain(&error), "heads must be at least 1, got 0");
    }
}
