//! What the CLI test files beside `tests/cli.rs` share: running `alibi`, and a temporary
//! directory per test.
#![allow(dead_code)] // Each test file uses its own part.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Runs `alibi` with `args`, stderr and stdout captured (so neither is a terminal).
pub fn alibi(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_alibi"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run alibi: {e}"))
}

/// Runs `alibi` with `args`, asserts that it succeeded with nothing on stderr (no
/// progress bar or warning when piped), and returns its stdout.
pub fn succeed(args: &[&str]) -> String {
    let output = alibi(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "alibi {args:?} failed: {stderr}");
    assert!(
        stderr.is_empty(),
        "alibi {args:?} wrote on stderr: {stderr}"
    );
    String::from_utf8(output.stdout).expect("stdout is UTF-8")
}

/// Runs `alibi` with `args`, asserts that it failed with one line on stderr, and returns
/// that line.
pub fn fail(args: &[&str]) -> String {
    failure(args).0
}

/// Runs `alibi` with `args`, asserts that it was refused before printing anything: one
/// line on stderr, nothing on stdout. Returns that line.
pub fn refuse(args: &[&str]) -> String {
    let (line, stdout) = failure(args);
    assert!(
        stdout.is_empty(),
        "alibi {args:?} printed before refusing: {}",
        String::from_utf8_lossy(&stdout)
    );
    line
}

/// Runs `alibi` with `args`, asserts that it failed with one line on stderr, and returns
/// that line and the stdout.
fn failure(args: &[&str]) -> (String, Vec<u8>) {
    let output = alibi(args);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "alibi {args:?} succeeded");
    assert_eq!(stderr.lines().count(), 1, "alibi {args:?}: {stderr}");
    assert!(stderr.starts_with("alibi: "), "{stderr}");
    (stderr.trim_end().to_owned(), output.stdout)
}

/// A fresh directory under the system's temporary directory, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A new, empty directory tagged `tag`.
    pub fn new(tag: &str) -> Self {
        // The process id keeps concurrent runs apart, the counter the tests of one run.
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "alibi-test-{}-{tag}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("create {path:?}: {e}"));
        Self(path)
    }

    /// `name` inside this directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// `name` inside this directory, as an argument.
    pub fn arg(&self, name: &str) -> String {
        self.join(name).display().to_string()
    }

    /// The names of the entries inside, sorted, hidden ones included.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap_or_else(|e| panic!("list {:?}: {e}", self.0))
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
