//! Progress bars for long work: a bench sweep, a large file written to disk.
//!
//! They draw on stderr, and only when stderr is a terminal: indicatif's
//! `ProgressDrawTarget::stderr` hides itself otherwise, so a piped or captured run (scripts,
//! CI, `alibi bench --json | jq`) sees exactly the output it saw before. A bar clears
//! itself when dropped, finished or not, so the lines printed after it (and a failed run's
//! one error line) stand alone.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressFinish, ProgressStyle};

/// Files smaller than this are written without a bar: they take less time than a bar's
/// first frame (indicatif redraws at most 20 times a second).
const LARGE_FILE_BYTES: u64 = 64 << 20;

/// How a file's bar looks: its path, bytes so far of the total, speed and time left.
const WRITING: &str =
    "{spinner} writing {msg} {wide_bar} {binary_bytes}/{binary_total_bytes} ({binary_bytes_per_sec}, {eta})";
/// How a sweep's bar looks: the step under way, and steps done of the total.
const STEPS: &str = "{spinner} {msg} {wide_bar} {pos}/{len} ({elapsed})";

/// A bar over `bytes` bytes written to `what` (a path); hidden for small files.
pub fn writing(what: &str, bytes: u64) -> ProgressBar {
    if bytes < LARGE_FILE_BYTES {
        return ProgressBar::hidden();
    }
    bar(bytes, WRITING).with_message(what.to_owned())
}

/// A bar over `steps` steps of a sweep, each named by its message as it starts.
pub fn steps(steps: u64) -> ProgressBar {
    bar(steps, STEPS)
}

/// A bar on stderr drawn with `template`, cleared when dropped.
fn bar(length: u64, template: &str) -> ProgressBar {
    // The templates are this file's constants, which the unit test parses.
    let style =
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar());
    let bar = ProgressBar::with_draw_target(Some(length), ProgressDrawTarget::stderr())
        .with_style(style)
        .with_finish(ProgressFinish::AndClear);
    // Without a steady tick a bar only redraws when it advances, and a bench case that
    // takes seconds would look frozen. Not when hidden: the tick is a thread.
    if !bar.is_hidden() {
        bar.enable_steady_tick(std::time::Duration::from_millis(100));
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse() {
        for template in [WRITING, STEPS] {
            assert!(ProgressStyle::with_template(template).is_ok(), "{template}");
        }
    }

    #[test]
    fn small_files_get_no_bar() {
        assert!(writing("a.npy", LARGE_FILE_BYTES - 1).is_hidden());
    }
}
