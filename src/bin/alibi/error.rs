//! The errors of the `alibi` tool, and how they reach the user: one line on stderr.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use alibi_wgpu::AlibiError;

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

    /// Printing the results failed (e.g. stdout is a closed pipe).
    #[error("cannot write to stdout")]
    Stdout(#[source] std::io::Error),

    /// Arguments that parse but do not go together (e.g. one output file for two shapes).
    #[error("{0}")]
    Usage(String),
}

/// Prints `alibi: <error>: <its sources>` as one line on stderr (see [`chain`]).
pub fn report(error: &CliError) {
    note(&chain(error));
}

/// The message of `error`, then the message of each of its sources, joined with ": ", each
/// folded onto one line.
///
/// A source whose text the line already contains is left out: wgpu's error descriptions
/// repeat their own sources' text, and a message may quote its cause. What remains says
/// each thing once, outermost first, as in "cannot write out/call-0-3x5.npy: No space left
/// on device (os error 28)".
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut line = fold(&error.to_string());
    let mut next = error.source();
    while let Some(source) = next {
        let text = fold(&source.to_string());
        if !text.is_empty() && !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        next = source.source();
    }
    line
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

/// Writes `alibi: <message>` on stderr, with any line breaks folded into spaces, so that
/// every failure (and the one warning, the CPU fallback) is exactly one line whatever
/// produced the message.
pub fn note(message: &str) {
    // Nothing useful can be done if stderr itself is closed.
    let _ = writeln!(std::io::stderr(), "alibi: {}", fold(message));
}

/// `text` on one line: each line trimmed, blank ones dropped, the rest joined by spaces.
fn fold(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    lines.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error with an optional source, for building chains.
    #[derive(Debug)]
    struct Link(&'static str, Option<Box<Link>>);

    impl std::fmt::Display for Link {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Link {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|link| link as _)
        }
    }

    fn link(text: &'static str, source: Option<Link>) -> Link {
        Link(text, source.map(Box::new))
    }

    #[test]
    fn chain_joins_sources_once_each() {
        let root = link("Out of memory", None);
        // wgpu's style: a description that spells out its source on indented lines.
        let described = link(
            "Validation Error\n\nCaused by:\n  In a buffer\n    Out of memory\n",
            Some(root),
        );
        let top = link("the GPU rejected a buffer", Some(described));
        assert_eq!(
            chain(&top),
            "the GPU rejected a buffer: Validation Error Caused by: In a buffer Out of memory"
        );
        let plain = link("cannot write x.npy", Some(link("disk full", None)));
        assert_eq!(chain(&plain), "cannot write x.npy: disk full");
        let empty = link("device lost", Some(link(" \n", None)));
        assert_eq!(chain(&empty), "device lost");
    }

    #[test]
    fn io_errors_print_their_cause_after_the_path() {
        let error = CliError::Io {
            action: "write",
            path: PathBuf::from("out/a.npy"),
            source: std::io::Error::other("no space"),
        };
        assert_eq!(chain(&error), "cannot write out/a.npy: no space");
        let error = CliError::Alibi(AlibiError::ZeroHeads);
        assert_eq!(chain(&error), "heads must be at least 1, got 0");
    }
}
