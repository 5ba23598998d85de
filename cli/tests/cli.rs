// Native only: the browser has its own suite, tests/web.rs.
#![cfg(not(target_arch = "wasm32"))]
//! End-to-end tests of the `alibi` binary: `alibi bias` run as a user would, its `.npy`
//! files read back with npyz and compared with the oracle (`alibi_wgpu::reference`) of a
//! fresh module; refusals, each one line on stderr that leaves no file behind; `alibi
//! bench`'s arguments and JSON.
//!
//! Tests that need a GPU fail when no adapter exists, unless `ALIBI_ALLOW_NO_GPU=1` is set:
//! then they say on stderr that they are skipped and pass. (The `auto` backend would
//! quietly fall back to the CPU without an adapter, so without this check a GPU test could
//! pass without ever touching a GPU.)

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use alibi_wgpu::{alibi_slopes, reference, AlibiError, HostBias};

/// Set to `1` to let GPU tests pass, skipped, on a machine without any adapter.
const ALLOW_NO_GPU: &str = "ALIBI_ALLOW_NO_GPU";

/// `alibi` with `args`, ready to run.
fn alibi_command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_alibi"));
    command.args(args);
    command
}

/// Runs `command`.
fn output_of(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run alibi: {e}"))
}

/// Runs `alibi` with `args` and extra environment variables.
fn alibi_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    output_of(alibi_command(args).envs(env.iter().copied()))
}

/// Runs `alibi` with `args`.
fn alibi(args: &[&str]) -> Output {
    alibi_with_env(args, &[])
}

fn stdout_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs `alibi` with `args`, asserts that it succeeded, and returns its stdout.
fn succeed(args: &[&str]) -> String {
    let output = alibi(args);
    assert!(
        output.status.success(),
        "alibi {args:?} failed ({}):\n{}",
        output.status,
        stderr_of(&output)
    );
    stdout_of(&output)
}

/// Asserts that `output` is a failure reported as exactly one `alibi: ...` line on stderr,
/// and returns that line.
fn assert_one_line_failure(args: &[&str], output: &Output) -> String {
    let stderr = stderr_of(output);
    assert!(
        !output.status.success(),
        "alibi {args:?} succeeded; stdout:\n{}",
        stdout_of(output)
    );
    assert_eq!(
        stderr.lines().count(),
        1,
        "alibi {args:?}: stderr is not one line:\n{stderr}"
    );
    assert!(stderr.ends_with('\n'), "{stderr:?}");
    assert!(stderr.starts_with("alibi: "), "{stderr:?}");
    stderr
}

/// What [`gpu_available`] found per backend set: `Err` says why there is no adapter.
type Probes = HashMap<Option<wgpu::Backends>, Result<(), String>>;

/// Whether an adapter of `backends` exists (`None`: the one `WGPU_BACKEND` picks).
///
/// # Panics
/// When it does not and `ALIBI_ALLOW_NO_GPU=1` is not set, or when an adapter exists but
/// cannot open a device: a GPU test must not pass without a GPU.
fn gpu_available(backends: Option<wgpu::Backends>) -> bool {
    // Probe each backend set once per test binary; the lock also keeps tests from
    // initializing drivers concurrently.
    static PROBES: Mutex<Option<Probes>> = Mutex::new(None);
    let mut probes = PROBES.lock().unwrap_or_else(|p| p.into_inner());
    let probe = probes
        .get_or_insert_with(HashMap::new)
        .entry(backends)
        .or_insert_with(
            || match pollster::block_on(alibi_wgpu::open_device(backends)) {
                Ok(_) => Ok(()),
                Err(error @ AlibiError::NoAdapter { .. }) => Err(alibi_wgpu::error_chain(&error)),
                Err(other) => {
                    panic!("an adapter of {backends:?} exists but does not work: {other}")
                }
            },
        );
    match probe {
        Ok(()) => true,
        Err(message) if std::env::var(ALLOW_NO_GPU).as_deref() == Ok("1") => {
            let test = std::thread::current().name().unwrap_or("?").to_owned();
            // Straight to stderr, past libtest's capture, so that the skip shows in CI logs.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: no adapter ({message}); {ALLOW_NO_GPU}=1 is set"
            );
            false
        }
        Err(message) => panic!(
            "no adapter of {backends:?} ({message}): GPU tests need one (Mesa's lavapipe or \
             llvmpipe will do); set {ALLOW_NO_GPU}=1 to skip them instead"
        ),
    }
}

/// `alibi bias` on the CPU with `shapes`, the last of which cannot be allocated, writing to
/// `out`: it fails in one line, and `kept/call-0-3x5.npy` of `tmp` still holds `old`.
fn assert_failed_run_keeps_the_old_file(tmp: &TempDir, shapes: &[&str], out: &str) {
    let mut args = vec![
        "bias",
        "--backend",
        "cpu",
        "--heads",
        "4",
        "--total-heads",
        "256",
    ];
    args.extend_from_slice(shapes);
    args.extend(["--out", out]);
    assert_one_line_failure(&args, &alibi(&args));
    assert_eq!(tmp.contents(), ["kept", "kept/call-0-3x5.npy"]);
    assert_eq!(
        std::fs::read(tmp.join("kept/call-0-3x5.npy")).unwrap(),
        b"old"
    );
}

/// A fresh directory under the system's temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        // The process id keeps concurrent test runs apart, the counter the tests of one run.
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "alibi-cli-test-{}-{tag}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("create {path:?}: {e}"));
        Self(path)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// `name` inside this directory, as an argument.
    fn arg(&self, name: &str) -> String {
        self.join(name).display().to_string()
    }

    /// Every file and directory inside, as sorted relative paths (hidden ones included).
    fn contents(&self) -> Vec<String> {
        fn walk(dir: &Path, root: &Path, found: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("list {dir:?}: {e}")) {
                let path = entry.unwrap().path();
                found.push(path.strip_prefix(root).unwrap().display().to_string());
                if path.is_dir() {
                    walk(&path, root, found);
                }
            }
        }
        let mut found = Vec::new();
        walk(&self.0, &self.0, &mut found);
        found.sort();
        found
    }

    /// `name` inside this directory, with a trailing `/`: what `--out DIR/` takes.
    fn dir_arg(&self, name: &str) -> String {
        format!("{}/", self.join(name).display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Reads a `.npy` written by the CLI, checking that it is C-order `<f4`: its shape and
/// values.
fn read_npy(path: &Path) -> (Vec<u64>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {path:?}: {e}"));
    let file = npyz::NpyFile::new(&bytes[..]).unwrap_or_else(|e| panic!("parse {path:?}: {e}"));
    let little_endian_f32 = npyz::DType::Plain("<f4".parse().unwrap());
    assert_eq!(file.dtype(), little_endian_f32, "{path:?}");
    assert_eq!(file.order(), npyz::Order::C, "{path:?}");
    let shape = file.shape().to_vec();
    let values = file.into_vec::<f32>().unwrap();
    (shape, values)
}

/// Asserts that the `.npy` at `path` holds exactly `expected`.
fn assert_npy_equals(path: &Path, expected: &HostBias) {
    let (shape, values) = read_npy(path);
    assert_eq!(shape, expected.shape().map(|n| n as u64), "{path:?}");
    assert_eq!(values, expected.as_slice(), "{path:?}");
}

/// What a fresh module with the paper's slopes returns for `(i, j)`.
fn fresh(heads: usize, total_heads: usize, i: usize, j: usize) -> HostBias {
    reference::forward(&alibi_slopes(heads).unwrap(), total_heads, i, j).unwrap()
}

/// Asserts that the run used a GPU adapter, not the CPU fallback.
fn assert_ran_on_gpu(stdout: &str) {
    let adapter = stdout.lines().next().unwrap_or_default();
    assert!(
        adapter.starts_with("adapter: ") && !adapter.contains("CPU path"),
        "{stdout}"
    );
}

/// The done criterion: one `.npy` per shape, each what a fresh module returns, although
/// the second shape is served from the first's cache on the GPU.
#[test]
fn bias_writes_one_npy_per_shape_equal_to_a_fresh_module() {
    if !gpu_available(None) {
        return;
    }
    let tmp = TempDir::new("done");
    // A directory that does not exist yet: the CLI creates it.
    let out = tmp.dir_arg("out");
    let stdout = succeed(&[
        "bias",
        "--heads",
        "4",
        "--total-heads",
        "8",
        "10x10",
        "5x8",
        "--out",
        &out,
    ]);
    assert_ran_on_gpu(&stdout);
    // (5, 8) lies inside (10, 10): a hit, whose bottom-right slice must be exact.
    assert!(stdout.contains("cache: hits 1, misses 1"), "{stdout}");

    let first = tmp.join("out/call-0-10x10.npy");
    let second = tmp.join("out/call-1-5x8.npy");
    assert_npy_equals(&first, &fresh(4, 8, 10, 10));
    assert_npy_equals(&second, &fresh(4, 8, 5, 8));

    // Bits, not just ==: the diagonal and the padding heads are +0.0, never -0.0.
    let (_, values) = read_npy(&first);
    let at = |h: usize, r: usize, k: usize| values[(h * 10 + r) * 10 + k].to_bits();
    assert_eq!(at(0, 0, 0), 0);
    assert_eq!(at(3, 9, 9), 0);
    assert_eq!(at(7, 4, 2), 0);
    assert_eq!(at(0, 0, 9), (-2.25f32).to_bits()); // -0.25 * 9
    let (_, values) = read_npy(&second);
    // Row 0 of (5, 8) is query position 3: key 0 is at distance 3, slope 2^-2.
    assert_eq!(values[0].to_bits(), (-0.75f32).to_bits());
    assert_eq!(values[3].to_bits(), 0);
}

#[test]
fn out_file_holds_the_single_shape() {
    let tmp = TempDir::new("file");
    let file = tmp.join("bias.npy");
    let file_arg = file.display().to_string();
    let stdout = succeed(&[
        "bias",
        "--heads",
        "4",
        "--total-heads",
        "8",
        "3x5",
        "--out",
        &file_arg,
        "--backend",
        "cpu",
    ]);
    assert_npy_equals(&file, &fresh(4, 8, 3, 5));
    // the worked example of docs/semantics.md, head 0: the distances times 0.25.
    assert!(
        stdout.contains("call 0: 3x5 -> [8, 3, 5], min -1, max 0"),
        "{stdout}"
    );
    assert!(stdout.contains(" -0.5 -0.25     0 -0.25  -0.5"), "{stdout}");
}

#[test]
fn out_file_with_two_shapes_is_an_error() {
    let tmp = TempDir::new("two");
    let file = tmp.join("bias.npy");
    let args = [
        "bias",
        "--heads",
        "4",
        "3x5",
        "4x4",
        "--out",
        file.to_str().unwrap(),
    ];
    let line = assert_one_line_failure(&args, &alibi(&args));
    assert!(line.contains("2 shapes"), "{line}");
    assert!(!file.exists());
}

#[test]
fn bad_input_fails_with_one_line_on_stderr() {
    let cases: &[(&[&str], &str)] = &[
        (&["bias", "--heads", "4", "0x"], "`0x` is not a shape IxJ"),
        (&["bias", "--heads", "4", "axb"], "`axb` is not a shape IxJ"),
        (&["bias", "--heads", "4", "10"], "`10` is not a shape IxJ"),
        (
            &["bias", "--heads", "4", "1x2x3"],
            "`1x2x3` is not a shape IxJ: 3 fields where 2 are expected",
        ),
        (
            &["bias", "--heads", "4", "+1x2"],
            "`+1` is not an unsigned decimal integer",
        ),
        (&["bias", "--heads", "4", "1x-2"], "`-2` is not an unsigned"),
        (&["bias", "--heads", "0", "4x4"], "heads must be at least 1"),
        (
            &["bias", "--total-heads", "2", "--heads", "4", "4x4"],
            "total_heads (2) must be at least heads (4)",
        ),
        (
            &["bias", "--heads", "5000", "4x4"],
            "exceeds the supported maximum",
        ),
        (
            &["bias", "--heads", "4", "16777217x1"],
            "i = 16777217 exceeds",
        ),
        (
            &["bias", "--heads", "4", "4x4", "1x16777217"],
            "j = 16777217 exceeds",
        ),
        (
            &["bias", "--heads", "4", "99999999999999999999999x1"],
            "too large",
        ),
        (
            &["bias", "--heads", "4", "--max-bias", "0", "4x4"],
            "max_bias",
        ),
        (
            &["bias", "--heads", "4", "--backend", "metal", "4x4"],
            "metal",
        ),
        (&["bias", "--heads", "4"], "SHAPE"),
        (&["bias", "4x4"], "--heads"),
        (&["bias", "--heads", "four", "4x4"], "four"),
        (&[], "subcommand"),
        // `bench --case` goes through the same parser: usize::from_str would take `+8`.
        (
            &["bench", "--case", "+8x8x16x16"],
            "`+8x8x16x16` is not a case HxTxIxJ: `+8` is not an unsigned decimal integer",
        ),
        (
            &["bench", "--case", "8x8x16"],
            "`8x8x16` is not a case HxTxIxJ: 3 fields where 4 are expected",
        ),
        (
            &["bench", "--case", "8x8x16x16x1"],
            "5 fields where 4 are expected",
        ),
        (&["bench", "--case", "8x8x 16x16"], "`8x8x 16x16`"),
        (&["bench", "--case", "8x8x16x"], "a field is empty"),
        // Cases the library refuses are refused before a device is opened.
        (
            &["bench", "--case", "8x8x16x16", "--case", "0x8x16x16"],
            "heads must be at least 1",
        ),
        (
            &["bench", "--case", "8x4x16x16"],
            "total_heads (4) must be at least heads (8)",
        ),
        (
            &["bench", "--case", "8x8x16777217x1"],
            "i = 16777217 exceeds",
        ),
        (&["bench", "--runs", "0"], "--runs"),
        (&["bench", "--backend", "metal"], "metal"),
        (
            &["bench", "--backend", "cpu"],
            "bench measures a GPU adapter, and --backend cpu names none",
        ),
    ];
    for &(args, expected) in cases {
        let output = alibi(args);
        let line = assert_one_line_failure(args, &output);
        assert!(line.contains(expected), "alibi {args:?}: {line}");
        // Input is checked before anything is computed or printed.
        assert!(output.stdout.is_empty(), "alibi {args:?} printed results");
    }
}

#[test]
fn cpu_backend_writes_the_same_files_as_the_gpu() {
    if !gpu_available(None) {
        return;
    }
    // Prefill then decode steps served from the cache, docs/semantics.md's two cache checks, more
    // queries than keys, an empty shape and a long row.
    let shapes = [
        "16x16", "1x16", "4x4", "1x3", "3x5", "2x3", "7x3", "0x5", "1x4096",
    ];
    let tmp = TempDir::new("cpu-gpu");
    let run = |backend: &str| {
        let out = tmp.dir_arg(backend);
        let mut args = vec!["bias", "--heads", "12", "--total-heads", "16"];
        args.extend(shapes);
        args.extend(["--out", &out, "--backend", backend]);
        succeed(&args)
    };
    assert_ran_on_gpu(&run("auto"));
    assert!(run("cpu").starts_with("adapter: none (CPU path)"));
    for (call, shape) in shapes.iter().enumerate() {
        let name = format!("call-{call}-{shape}.npy");
        let gpu = std::fs::read(tmp.join("auto").join(&name)).unwrap();
        let cpu = std::fs::read(tmp.join("cpu").join(&name)).unwrap();
        assert!(gpu == cpu, "{name}: GPU and CPU files differ");
        let (i, j) = shape.split_once('x').unwrap();
        let expected = fresh(12, 16, i.parse().unwrap(), j.parse().unwrap());
        assert_npy_equals(&tmp.join("cpu").join(&name), &expected);
    }
}

/// `--backend NAME` runs on that backend and matches a fresh module; cache hits included.
fn check_named_backend(name: &str, backends: wgpu::Backends) {
    if !gpu_available(Some(backends)) {
        return;
    }
    let tmp = TempDir::new(name);
    // Each generation path the CLI can be asked for; `auto` is host-mapped on lavapipe.
    for generation in ["auto", "shader"] {
        let out = tmp.dir_arg(generation);
        let stdout = succeed(&[
            "bias",
            "--heads",
            "5",
            "--total-heads",
            "6",
            "--backend",
            name,
            "--generation-path",
            generation,
            "32x32",
            "1x32",
            "1x33",
            "--out",
            &out,
        ]);
        assert_ran_on_gpu(&stdout);
        assert!(
            stdout.contains(&format!("(backend {name}, generation ")),
            "{stdout}"
        );
        if generation == "shader" {
            assert!(stdout.contains("generation Shader)"), "{stdout}");
        }
        for (call, (i, j)) in [(32, 32), (1, 32), (1, 33)].into_iter().enumerate() {
            let file = tmp.join(&format!("{generation}/call-{call}-{i}x{j}.npy"));
            assert_npy_equals(&file, &fresh(5, 6, i, j));
        }
    }
}

#[test]
fn vulkan_backend_computes_the_reference() {
    check_named_backend("vulkan", wgpu::Backends::VULKAN);
}

#[test]
fn gl_backend_computes_the_reference() {
    check_named_backend("gl", wgpu::Backends::GL);
}

#[test]
fn max_bias_8_gives_the_paper_slopes() {
    let tmp = TempDir::new("max-bias");
    let file = tmp.join("bias.npy");
    let file_arg = file.display().to_string();
    succeed(&[
        "bias",
        "--heads",
        "12",
        "--max-bias",
        "8",
        "--backend",
        "cpu",
        "6x9",
        "--out",
        &file_arg,
    ]);
    assert_npy_equals(&file, &fresh(12, 12, 6, 9));
}

#[test]
fn auto_without_an_adapter_falls_back_to_the_cpu_path() {
    // No native build has a browser WebGPU adapter, so `auto` finds none at all.
    let tmp = TempDir::new("fallback");
    let file = tmp.join("bias.npy");
    let args = [
        "bias",
        "--heads",
        "3",
        "4x6",
        "--out",
        file.to_str().unwrap(),
    ];
    let output = alibi_with_env(&args, &[("WGPU_BACKEND", "webgpu")]);
    let stderr = stderr_of(&output);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("alibi: no GPU adapter") && stderr.ends_with("; using the CPU path\n"),
        "{stderr}"
    );
    assert!(stdout_of(&output).starts_with("adapter: none (CPU path)"));
    assert_npy_equals(&file, &fresh(3, 3, 4, 6));

    // bench measures an adapter: no fallback, and no note besides the error.
    let args = ["bench", "--case", "1x1x2x2"];
    let output = alibi_with_env(&args, &[("WGPU_BACKEND", "webgpu")]);
    let line = assert_one_line_failure(&args, &output);
    assert!(line.contains("no GPU adapter found"), "{line}");
    assert!(output.stdout.is_empty());
}

#[test]
fn naming_an_absent_backend_is_an_error() {
    // Point the Vulkan loader at no driver at all: `--backend vulkan` must then fail
    // rather than fall back to another backend or the CPU.
    let args = ["bias", "--heads", "2", "2x2", "--backend", "vulkan"];
    let output = alibi_with_env(
        &args,
        &[
            ("VK_ICD_FILENAMES", "/nonexistent/icd.json"),
            ("VK_DRIVER_FILES", "/nonexistent/icd.json"),
        ],
    );
    let line = assert_one_line_failure(&args, &output);
    assert!(line.contains("no GPU adapter"), "{line}");
    assert!(output.stdout.is_empty());
}

#[test]
fn help_describes_bias() {
    let help = succeed(&["bias", "--help"]);
    // The module's flags: tests/cli_vocabulary.rs.
    for expected in ["--query-positions", "--key-positions", "--out", "SHAPE"] {
        assert!(help.contains(expected), "{help}");
    }
    // The first spellings are accepted, not advertised.
    for old in ["--positions-q", "--positions-k", "--generation "] {
        assert!(!help.contains(old), "{help}");
    }
}

#[test]
fn help_describes_bench() {
    let help = succeed(&["bench", "--help"]);
    for expected in [
        "--case",
        "HxTxIxJ",
        "--runs",
        "--json",
        "--backend",
        "--generation-path",
    ] {
        assert!(help.contains(expected), "{help}");
    }
    // A bench case builds its own modules: no module flag that would mean nothing there.
    for absent in ["--heads", "--causal", "--dtype", "--generation "] {
        assert!(!help.contains(absent), "{help}");
    }
}

/// Runs `args` (an `alibi bias` that must be refused) and checks the refusal: one line on
/// stderr containing each of `expected`, nothing on stdout (nothing was computed), and
/// `tmp` left as it was.
fn assert_refused_leaving_nothing(tmp: &TempDir, args: &[&str], expected: &[&str]) {
    let before = tmp.contents();
    let output = alibi(args);
    let line = assert_one_line_failure(args, &output);
    for text in expected {
        assert!(line.contains(text), "alibi {args:?}: {line}");
    }
    assert!(output.stdout.is_empty(), "alibi {args:?} printed results");
    assert_eq!(tmp.contents(), before, "alibi {args:?} left files behind");
}

#[test]
fn out_into_a_missing_directory_fails_before_computing() {
    let tmp = TempDir::new("missing-dir");
    let file = tmp.arg("missing/bias.npy");
    let missing = tmp.arg("missing");
    // `auto`: with an adapter, refusing before it is opened is what keeps stdout empty.
    for backend in ["auto", "cpu"] {
        let args = [
            "bias",
            "--heads",
            "4",
            "3x5",
            "--out",
            &file,
            "--backend",
            backend,
        ];
        assert_refused_leaving_nothing(
            &tmp,
            &args,
            &[&file, &format!("directory {missing} does not exist")],
        );
    }
}

#[test]
fn out_that_cannot_be_a_directory_fails_before_computing() {
    let tmp = TempDir::new("not-dir");
    std::fs::write(tmp.join("file"), b"not a directory").unwrap();
    let file_then_dir = tmp.dir_arg("file/sub");
    let file_as_dir = tmp.dir_arg("file");
    let file_as_parent = tmp.arg("file/bias.npy");
    let cases: [(&[&str], &str); 3] = [
        // DIR/ below a file: cannot be created.
        (
            &["bias", "--heads", "4", "3x5", "--out", &file_then_dir],
            "cannot create directory",
        ),
        // DIR/ that is a file.
        (
            &["bias", "--heads", "4", "3x5", "2x2", "--out", &file_as_dir],
            "exists and is not a directory",
        ),
        // A file whose "directory" is a file.
        (
            &["bias", "--heads", "4", "3x5", "--out", &file_as_parent],
            "is not a directory",
        ),
    ];
    for (args, expected) in cases {
        let path = args[args.len() - 1];
        assert_refused_leaving_nothing(&tmp, args, &[path, expected]);
    }
    // A file that DIR/ should hold is an existing directory.
    std::fs::create_dir_all(tmp.join("taken/call-1-2x2.npy")).unwrap();
    let taken = tmp.dir_arg("taken");
    assert_refused_leaving_nothing(
        &tmp,
        &["bias", "--heads", "4", "3x5", "2x2", "--out", &taken],
        &[&taken, "call-1-2x2.npy is a directory"],
    );
}

/// A shape the host cannot hold: `[256, 2^24, 2^24]` is 2^58 bytes, more than any
/// x86-64 or aarch64 address space, so allocating it fails at once on every machine. It
/// passes every check made before computing (the library cannot know the memory in
/// advance), which is what these tests need: a failure in the middle of a run.
const UNALLOCATABLE: &str = "16777216x16777216";

#[test]
fn a_failing_run_leaves_no_file_behind() {
    let tmp = TempDir::new("failing");
    // The first shape is computed and written (under a temporary name) before the second
    // fails: neither it, nor the temporary file, nor the directory created for them stays.
    let out = tmp.dir_arg("new/deeper");
    let args = [
        "bias",
        "--backend",
        "cpu",
        "--heads",
        "4",
        "--total-heads",
        "256",
        "3x5",
        UNALLOCATABLE,
        "2x2",
        "--out",
        &out,
    ];
    let output = alibi(&args);
    let line = assert_one_line_failure(&args, &output);
    assert!(line.contains("out of host memory"), "{line}");
    // Nothing is printed until every shape is computed: not even the first one's summary.
    assert!(output.stdout.is_empty(), "{}", stdout_of(&output));
    assert_eq!(tmp.contents(), Vec::<String>::new());

    // An existing directory keeps what it held; an existing file is not touched.
    std::fs::create_dir(tmp.join("kept")).unwrap();
    std::fs::write(tmp.join("kept/call-0-3x5.npy"), b"old").unwrap();
    assert_failed_run_keeps_the_old_file(&tmp, &["3x5", UNALLOCATABLE], &tmp.dir_arg("kept"));

    // `--out FILE`: an existing file is left as it was.
    let file = tmp.arg("kept/call-0-3x5.npy");
    assert_failed_run_keeps_the_old_file(&tmp, &[UNALLOCATABLE], &file);

    // A successful run replaces it, and leaves no temporary file.
    succeed(&[
        "bias",
        "--backend",
        "cpu",
        "--heads",
        "4",
        "3x5",
        "--out",
        &file,
    ]);
    assert_eq!(tmp.contents(), ["kept", "kept/call-0-3x5.npy"]);
    assert_npy_equals(&tmp.join("kept/call-0-3x5.npy"), &fresh(4, 4, 3, 5));
}

#[test]
fn a_failing_gpu_run_leaves_no_file_behind() {
    if !gpu_available(None) {
        return;
    }
    let tmp = TempDir::new("failing-gpu");
    let out = tmp.dir_arg("out");
    // Far above any device's max_buffer_size: refused by the module, after the first shape
    // was computed.
    let args = [
        "bias",
        "--heads",
        "4",
        "--total-heads",
        "256",
        "3x5",
        UNALLOCATABLE,
        "--out",
        &out,
    ];
    let output = alibi(&args);
    let line = assert_one_line_failure(&args, &output);
    assert!(line.contains("above the limit"), "{line}");
    // The device's refusal comes before the first line, although the first shape fits.
    assert!(output.stdout.is_empty(), "{}", stdout_of(&output));
    assert_eq!(tmp.contents(), Vec::<String>::new());
}

/// Without `XDG_RUNTIME_DIR` (ssh, containers, CI), Mesa's device-select Vulkan layer would
/// print "error: XDG_RUNTIME_DIR is invalid or not set in the environment." twice; `alibi`
/// disables that layer then, so a success prints nothing at all on stderr.
#[test]
fn vulkan_without_a_runtime_dir_is_quiet() {
    if !gpu_available(Some(wgpu::Backends::VULKAN)) {
        return;
    }
    let args = ["bias", "--backend", "vulkan", "--heads", "4", "3x5"];
    let mut command = alibi_command(&args);
    for name in [
        "XDG_RUNTIME_DIR",
        "NODEVICE_SELECT",
        "WAYLAND_DISPLAY",
        "WAYLAND_SOCKET",
    ] {
        command.env_remove(name);
    }
    let output = output_of(&mut command);
    assert!(
        output.status.success(),
        "alibi {args:?} failed ({}): {}",
        output.status,
        stderr_of(&output)
    );
    assert_eq!(stderr_of(&output), "", "alibi {args:?} printed on stderr");
    assert_ran_on_gpu(&stdout_of(&output));
}

#[test]
fn bench_json_reports_the_cpu_path() {
    if !gpu_available(None) {
        return;
    }
    let args = [
        "bench",
        "--case",
        "3x4x5x9",
        "--case",
        "2x2x1x7",
        "--runs",
        "1",
        "--decode-steps",
        "0",
        "--json",
    ];
    let stdout = succeed(&args);
    let records: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let kinds: Vec<&str> = records
        .iter()
        .map(|r| r["case"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["forward", "variants", "forward", "variants", "attention"],
        "{stdout}"
    );
    // Issue 9's ratios, each a number from one run.
    for variants in [&records[1], &records[3]] {
        for field in [
            "causal_over_plain",
            "shader_causal_over_plain",
            "add_over_scale",
        ] {
            assert!(
                variants[field].as_f64().is_some_and(|r| r > 0.0),
                "{field}: {variants}"
            );
        }
        let has_f16 = variants["f16_over_f32"].is_number();
        for field in ["f16_generate_ms", "shader_f16_over_f32"] {
            assert_eq!(has_f16, variants[field].is_number(), "{field}: {variants}");
        }
        assert_eq!(variants["exact"], true, "{variants}");
    }
    for field in [
        "fused_attention_over_plain",
        "materialized_attention_over_plain",
    ] {
        assert!(
            records[4][field].as_f64().is_some_and(|r| r > 0.0),
            "{field}"
        );
    }
    let lines: Vec<String> = [&records[0], &records[2]].map(|r| r.to_string()).into();
    for (line, (heads, total_heads, i, j)) in lines.iter().zip([(3, 4, 5, 9), (2, 2, 1, 7)]) {
        let report: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(report["case"], "forward", "{line}");
        assert_eq!(
            [
                &report["heads"],
                &report["total_heads"],
                &report["i"],
                &report["j"]
            ],
            [heads, total_heads, i, j]
                .map(serde_json::Value::from)
                .each_ref(),
            "{line}"
        );
        assert!(report["cpu_path_ms"].is_number(), "{line}");
        assert!(report.get("cpu_reference_ms").is_none(), "{line}");
        assert_eq!(report["exact"], true, "{line}");
    }
}

#[test]
fn ggml_max_bias_writes_llama_cpps_f32_slopes() {
    let tmp = TempDir::new("ggml");
    let out = tmp.arg("ggml.npy");
    succeed(&[
        "bias",
        "--backend",
        "cpu",
        "--heads",
        "12",
        "--ggml-max-bias",
        "4",
        "2x3",
        "--out",
        &out,
    ]);
    let ggml = alibi_wgpu::SlopeSource::GgmlF32(4.0).resolve(12).unwrap();
    let expected = reference::forward(&ggml, 12, 2, 3).unwrap();
    assert_npy_equals(&tmp.join("ggml.npy"), &expected);
    // Not the exact form's values: those differ by an ulp or a few.
    let exact = alibi_wgpu::max_bias_slopes(12, 4.0).unwrap();
    assert_ne!(ggml, exact);
}
