//! The GPU harness of the integration tests: one device per test binary, opened on the
//! adapter `WGPU_BACKEND` picks, and the comparisons every GPU test makes.
//!
//! A GPU test starts with `let Some(gpu) = common::gpu() else { return };`. Without an
//! adapter, [`gpu`] panics (the test fails) unless `ALIBI_ALLOW_NO_GPU=1` is set, in which
//! case it says on stderr that the test is skipped and returns `None`.

// Each test binary uses its own subset of the helpers.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::{Mutex, OnceLock};

mod dense;
#[allow(unused_imports)]
pub use dense::*;

use alibi_wgpu::{
    reference, AlibiBias, AlibiConfig, AlibiPositionalBias, BiasDtype, GenerationPath, GpuDevice,
    HostBias,
};

/// Set to `1` to let GPU tests pass, skipped, on a machine without any adapter.
pub const ALLOW_NO_GPU: &str = "ALIBI_ALLOW_NO_GPU";

/// Set to `shader` or `host-mapped` to build every module whose configuration leaves the
/// generation path at `Auto` on that path instead: CI runs the whole suite once per path
/// that lavapipe offers.
pub const GENERATION_PATH: &str = "ALIBI_TEST_GENERATION_PATH";

static DEVICE: OnceLock<Result<GpuDevice, String>> = OnceLock::new();

/// The device shared by every test of this binary, or `None` when there is no adapter and
/// `ALIBI_ALLOW_NO_GPU=1` allows that: the caller must then return at once.
///
/// # Panics
/// When no adapter exists and the opt-out is not set: a missing GPU is a failure, not a
/// silent pass.
#[must_use = "write `let Some(gpu) = common::gpu() else { return };`"]
pub fn gpu() -> Option<&'static GpuDevice> {
    match DEVICE.get_or_init(open) {
        Ok(gpu) => Some(gpu),
        Err(message) if allow_no_gpu() => {
            // Straight to stderr, past libtest's capture, so the skip shows in CI logs.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {}: {message} ({ALLOW_NO_GPU}=1 is set)",
                test_name()
            );
            None
        }
        Err(message) => panic!(
            "{message}\nGPU tests need an adapter (Mesa's lavapipe or llvmpipe will do: \
             scripts/test.sh installs them); set {ALLOW_NO_GPU}=1 to skip them instead"
        ),
    }
}

fn allow_no_gpu() -> bool {
    match std::env::var(ALLOW_NO_GPU) {
        Ok(value) if value == "1" => true,
        Ok(value) => panic!("{ALLOW_NO_GPU} must be unset or `1`, got {value:?}"),
        Err(_) => false,
    }
}

fn test_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_owned()
}

fn open() -> Result<GpuDevice, String> {
    let backend = std::env::var("WGPU_BACKEND").unwrap_or_else(|_| "<unset>".into());
    let gpu = pollster::block_on(alibi_wgpu::open_device(None))
        .map_err(|e| format!("no GPU device (WGPU_BACKEND={backend}): {e}"))?;
    let info = &gpu.adapter_info;
    let limits = gpu.device.limits();
    // Once per test binary, past libtest's capture, so CI logs show which adapter ran.
    let _ = writeln!(
        std::io::stderr(),
        "alibi-wgpu tests on {:?} ({:?}, driver {:?} {:?}), WGPU_BACKEND={backend}: \
         max_buffer_size {}, max_storage_buffer_binding_size {}, \
         min_storage_buffer_offset_alignment {}; generation paths {:?}, \
         {GENERATION_PATH}={:?}",
        info.name,
        info.backend,
        info.driver,
        info.driver_info,
        limits.max_buffer_size,
        limits.max_storage_buffer_binding_size,
        limits.min_storage_buffer_offset_alignment,
        generation_paths(&gpu),
        generation_path_from_env(),
    );
    Ok(gpu)
}

/// The generation path [`GENERATION_PATH`] asks for, `Auto` when it is unset.
pub fn generation_path_from_env() -> GenerationPath {
    match std::env::var(GENERATION_PATH).as_deref() {
        Err(_) | Ok("auto") => GenerationPath::Auto,
        Ok("shader") => GenerationPath::Shader,
        Ok("host-mapped") => GenerationPath::HostMapped,
        Ok(other) => panic!("{GENERATION_PATH} must be auto, shader or host-mapped, got {other:?}"),
    }
}

/// The generation paths this device can run: the kernel everywhere, the host-mapped path
/// where the device has `MAPPABLE_PRIMARY_BUFFERS` (CPU adapters, through `open_device`).
pub fn generation_paths(gpu: &GpuDevice) -> Vec<GenerationPath> {
    let mut paths = vec![GenerationPath::Shader];
    if gpu
        .device
        .features()
        .contains(wgpu::Features::MAPPABLE_PRIMARY_BUFFERS)
    {
        paths.push(GenerationPath::HostMapped);
    }
    paths
}

/// A module on the shared device; on [`GENERATION_PATH`]'s path when the configuration
/// leaves it at `Auto`.
pub fn module(gpu: &GpuDevice, config: AlibiConfig) -> AlibiPositionalBias {
    let config = with_env_path(config);
    let description = format!("{config:?}");
    AlibiPositionalBias::on_device(gpu, config)
        .unwrap_or_else(|e| panic!("building a module from {description}: {e}"))
}

/// `config` on [`GENERATION_PATH`]'s path when it leaves the path at `Auto` (a builder has
/// no getters: a config that setting `Auto` leaves unchanged asked for `Auto`).
fn with_env_path(config: AlibiConfig) -> AlibiConfig {
    if config.clone().generation_path(GenerationPath::Auto) == config {
        config.generation_path(generation_path_from_env())
    } else {
        config
    }
}

/// A device of the shared device's adapter and features whose storage bindings hold at
/// most `binding_bytes`: modules on it generate, read and add in several binding windows
/// even for small tensors. One device per size, opened once per test binary.
pub fn windowed_device(binding_bytes: u64) -> &'static (wgpu::Device, wgpu::Queue) {
    static DEVICES: Mutex<Vec<(u64, &'static (wgpu::Device, wgpu::Queue))>> =
        Mutex::new(Vec::new());
    let mut devices = DEVICES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, device)) = devices.iter().find(|(bytes, _)| *bytes == binding_bytes) {
        return device;
    }
    let shared = gpu().expect("windowed devices are opened on the shared device's adapter");
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = pollster::block_on(instance.request_adapter(&Default::default()))
        .expect("the shared device's adapter");
    let device = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("alibi-wgpu tests, small binding windows"),
        required_features: shared.device.features(),
        required_limits: wgpu::Limits {
            max_storage_buffer_binding_size: binding_bytes,
            ..adapter.limits()
        },
        ..Default::default()
    }))
    .unwrap_or_else(|e| panic!("a device binding at most {binding_bytes} bytes: {e}"));
    let device: &'static _ = Box::leak(Box::new(device));
    devices.push((binding_bytes, device));
    device
}

/// A module on [`windowed_device`]`(bytes)` when `window` is set, else on the shared
/// device; on [`GENERATION_PATH`]'s path when the configuration leaves it at `Auto`.
pub fn windowed_module(
    gpu: &GpuDevice,
    window: Option<u64>,
    config: AlibiConfig,
) -> AlibiPositionalBias {
    let Some(bytes) = window else {
        return module(gpu, config);
    };
    let config = with_env_path(config);
    let description = format!("{config:?} binding at most {bytes} bytes");
    let (device, queue) = windowed_device(bytes);
    AlibiPositionalBias::with_config(device, queue, config)
        .unwrap_or_else(|e| panic!("building a module from {description}: {e}"))
}

/// Reads a view back.
pub fn read(module: &AlibiPositionalBias, bias: &AlibiBias) -> HostBias {
    pollster::block_on(module.read(bias))
        .unwrap_or_else(|e| panic!("reading back a {:?} view: {e}", bias.shape()))
}

/// `forward(i, j)` read back.
pub fn forward(module: &mut AlibiPositionalBias, i: usize, j: usize) -> HostBias {
    let bias = module
        .forward(i, j)
        .unwrap_or_else(|e| panic!("forward({i}, {j}): {e}"));
    assert_eq!(
        bias.shape(),
        [module.total_heads(), i, j],
        "forward({i}, {j})"
    );
    read(module, &bias)
}

/// What a fresh module with these slopes returns for `(i, j)`, from the CPU reference.
pub fn expected(module: &AlibiPositionalBias, i: usize, j: usize) -> HostBias {
    reference::forward(module.slopes(), module.total_heads(), i, j)
        .unwrap_or_else(|e| panic!("reference::forward({i}, {j}): {e}"))
}

/// Where `actual` differs from `expected`, bit for bit (so `-0.0` differs from `+0.0`):
/// the shapes, or the first differing element with its `(h, r, k)` and both values.
pub fn mismatch(actual: &HostBias, expected: &HostBias) -> Option<String> {
    mismatch_values(actual.shape(), actual.as_slice(), expected)
}

/// [`mismatch`] for row-major values of `shape` that are not a [`HostBias`].
pub fn mismatch_values(shape: [usize; 3], actual: &[f32], expected: &HostBias) -> Option<String> {
    if shape != expected.shape() {
        return Some(format!("shape {shape:?}, expected {:?}", expected.shape()));
    }
    let e = expected.as_slice();
    if actual.len() != e.len() {
        return Some(format!("{} values, expected {}", actual.len(), e.len()));
    }
    let differs = |(a, e): (&f32, &f32)| a.to_bits() != e.to_bits();
    let index = actual.iter().zip(e).position(differs)?;
    let [_, rows, cols] = shape;
    let (h, r, k) = (index / (rows * cols), index / cols % rows, index % cols);
    let count = actual.iter().zip(e).filter(|&pair| differs(pair)).count();
    let mut message = format!(
        "first difference at index {index} (h {h}, r {r}, k {k}) of shape {shape:?}: \
         got {:?} ({:#010x}), expected {:?} ({:#010x}); {count} of {} values differ",
        actual[index],
        actual[index].to_bits(),
        e[index],
        e[index].to_bits(),
        e.len(),
    );
    if cols <= 64 {
        let row = (h * rows + r) * cols..(h * rows + r + 1) * cols;
        let _ = write!(
            message,
            "\n  row got      {:?}\n  row expected {:?}",
            &actual[row.clone()],
            &e[row]
        );
    }
    Some(message)
}

/// Panics with [`mismatch`]'s description unless the tensors are equal bit for bit.
#[track_caller]
pub fn assert_same(actual: &HostBias, expected: &HostBias, context: &str) {
    if let Some(difference) = mismatch(actual, expected) {
        panic!("{context}: {difference}");
    }
}

/// Proptest's configuration with `cases` cases, unless `PROPTEST_CASES` says otherwise
/// (`ProptestConfig::with_cases` alone would ignore the variable).
pub fn proptest_config(cases: u32) -> proptest::test_runner::Config {
    let mut config = if std::env::var_os("PROPTEST_CASES").is_some() {
        proptest::test_runner::Config::default()
    } else {
        proptest::test_runner::Config::with_cases(cases)
    };
    // The runner is driven by hand (it keeps GPU state between cases): no source file to
    // persist failures beside; the failing input is in the panic message instead.
    config.failure_persistence = None;
    // Each shrink step runs on the GPU: bound the time a failure takes to report.
    config.max_shrink_iters = 200;
    config
}

/// Runs `work` (the test's own wgpu calls) inside validation, out-of-memory and internal
/// error scopes and panics with the error, so that a mistake in a test fails that test
/// instead of reaching the shared device's uncaptured-error handler.
#[track_caller]
pub fn scoped<T>(device: &wgpu::Device, what: &str, work: impl FnOnce() -> T) -> T {
    match try_scoped(device, work) {
        (value, None) => value,
        (_, Some(error)) => panic!("{what}: {error}"),
    }
}

/// Like [`scoped`], but returns the error the scopes caught, if any.
pub fn try_scoped<T>(device: &wgpu::Device, work: impl FnOnce() -> T) -> (T, Option<wgpu::Error>) {
    let out_of_memory = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let internal = device.push_error_scope(wgpu::ErrorFilter::Internal);
    let value = work();
    let internal = pollster::block_on(internal.pop());
    let validation = pollster::block_on(validation.pop());
    let out_of_memory = pollster::block_on(out_of_memory.pop());
    (value, out_of_memory.or(validation).or(internal))
}

/// Copies `bytes` bytes from the start of `buffer` (usage `COPY_SRC`) to the host.
pub fn read_buffer(device: &wgpu::Device, queue: &wgpu::Queue, buffer: &wgpu::Buffer) -> Vec<u8> {
    let bytes = buffer.size();
    let staging = scoped(device, "copying a buffer for readback", || {
        let staging = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("test readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, bytes);
        queue.submit([encoder.finish()]);
        staging
    });
    let (sender, receiver) = std::sync::mpsc::channel();
    staging.map_async(wgpu::MapMode::Read, .., move |result| {
        let _ = sender.send(result);
    });
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .expect("polling the device");
    receiver
        .recv()
        .expect("the map callback ran")
        .expect("mapping the readback buffer");
    let data = staging
        .get_mapped_range(..)
        .expect("reading the mapped range")
        .to_vec();
    staging.unmap();
    data
}

/// Whether `device` can store f16 (`SHADER_F16`).
pub fn has_f16(device: &wgpu::Device) -> bool {
    device.features().contains(wgpu::Features::SHADER_F16)
}

/// The element types a module on `gpu` can have: f32 and f16, on every adapter (f16 in
/// words, rounded in integer arithmetic, where it lacks `SHADER_F16`).
pub fn dtypes(_gpu: &GpuDevice) -> Vec<BiasDtype> {
    vec![BiasDtype::F32, BiasDtype::F16]
}

/// docs/semantics.md's f16 of an f32 value: finite values saturated at ±65504, then rounded to
/// nearest even; infinities kept. Written with `half`, apart from the crate's conversion.
pub fn spec_f16(value: f32) -> half::f16 {
    let value = if value.is_finite() {
        value.clamp(-65504.0, 65504.0)
    } else {
        value
    };
    half::f16::from_f32(value)
}

/// A small xorshift generator for tests that drive long call sequences by hand: the same
/// sequence on every run, no shared state between threads.
pub struct Rng(pub u64);

impl Rng {
    /// A generator for `seed` (any value; zero is avoided).
    pub fn seeded(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> usize {
        (self.next() % n) as usize
    }

    /// Roughly log-uniform in `1..=2^max_log2`: mostly small, sometimes the largest.
    pub fn length(&mut self, max_log2: u64) -> usize {
        let low = 1u64 << (self.next() % (max_log2 + 1));
        (low + self.next() % low) as usize / 2 + 1
    }
}

/// One test of a binary at a time, for tests that build many pipelines: on GL a pipeline
/// build holds the context lock for seconds, and wgpu-hal takes a wait longer than its
/// timeout for a deadlock (and panics) when another test's submission waits on it.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}
