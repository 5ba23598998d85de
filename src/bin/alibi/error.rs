//! The errors of the `alibi` tool, and how they reach the user: one line on stderr.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use alibi_wgpu::AlibiError;

/// Everything a subcommand can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The library refused the request (bad heads, sequence too long, no adapter, ...); its
    /// message already names the offending value.
    #[error(transparent)]
    Alibi(#[from] AlibiError),

    /// Reading or writing a file failed.
    #[error("cannot {action} {}: {source}", .path.display())]
    Io {
        /// What was being done, e.g. "write" or "create directory".
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },

    /// Printing the results failed (e.g. stdout is a closed pipe).
    #[error("cannot write to stdout: {0}")]
    Stdout(std::io::Error),

    /// Arguments that parse but do not go together (e.g. one output file for two shapes).
    #[error("{0}")]
    Usage(String),
}

/// Prints `alibi: <error>` as one line on stderr.
pub fn report(error: &CliError) {
    print_one_line(&error.to_string());
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
    print_one_line(&format!("{message} (see `alibi --help`)"));
    ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2))
}

/// Writes `alibi: <message>` on stderr, with any line breaks folded into spaces, so that
/// every failure is exactly one line whatever produced the message.
fn print_one_line(message: &str) {
    let folded: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    // Nothing useful can be done if stderr itself is closed.
    let _ = writeln!(std::io::stderr(), "alibi: {}", folded.join(" "));
}
