//! The GPU against the CPU reference (`alibi_wgpu::reference::forward`), bit for bit, over
//! random shapes, random call sequences on one module, random slope sources, windowed
//! generation and a few large fixed shapes; every property runs on each generation path the
//! device offers (the kernel, and the host-mapped path of CPU adapters), picked per case.
//!
//! One device serves the whole binary and modules are reused across cases (building
//! pipelines per case would dominate the run time); a reused module also serves many cases
//! from its cache, which is part of what is tested. `PROPTEST_CASES` overrides the counts.
// Native only: the browser has its own suite, tests/web.rs.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::cell::RefCell;
use std::collections::HashMap;

use alibi_wgpu::{
    alibi_slopes, max_bias_slopes, reference, AlibiConfig, AlibiPositionalBias, GenerationPath,
    GpuDevice, HostBias, SlopeSource, DEFAULT_CACHE_BUDGET_BYTES,
};
use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};

/// Cases per property; small enough for lavapipe and llvmpipe on 2 cores in debug builds.
const CASES: u32 = 48;

/// `forward(i, j)` read back, or the failure as a test-case error.
fn gpu_forward(
    module: &mut AlibiPositionalBias,
    i: usize,
    j: usize,
) -> Result<HostBias, TestCaseError> {
    let view = module
        .forward(i, j)
        .map_err(|e| TestCaseError::fail(format!("forward({i}, {j}): {e}")))?;
    let host = pollster::block_on(module.read(&view))
        .map_err(|e| TestCaseError::fail(format!("reading forward({i}, {j}): {e}")))?;
    Ok(host)
}

/// The reference for `slopes` padded to `total_heads`.
fn reference(slopes: &[f32], total_heads: usize, i: usize, j: usize) -> HostBias {
    reference::forward(slopes, total_heads, i, j).expect("the reference accepts every case")
}

fn compare(actual: &HostBias, expected: &HostBias, context: &str) -> Result<(), TestCaseError> {
    match common::mismatch(actual, expected) {
        None => Ok(()),
        Some(difference) => Err(TestCaseError::fail(format!("{context}: {difference}"))),
    }
}

/// Runs `test` over `strategy` on a runner of `cases` cases; a failure panics with the
/// (shrunk) input and the first differing element.
fn check<S: Strategy>(cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let mut runner = TestRunner::new(common::proptest_config(cases));
    if let Err(error) = runner.run(&strategy, test) {
        panic!("{error}");
    }
}

/// `(heads, total_heads, binding window bytes, path)`: what tells reusable modules apart.
type ModuleKey = (usize, usize, Option<u64>, GenerationPath);

/// One of the generation paths `gpu` offers.
fn path(gpu: &GpuDevice) -> impl Strategy<Value = GenerationPath> {
    proptest::sample::select(common::generation_paths(gpu))
}

/// Modules with the paper's slopes, reused across cases and keyed by their configuration;
/// a few at a time, so that their caches do not pile up memory.
struct Modules {
    gpu: &'static GpuDevice,
    built: RefCell<HashMap<ModuleKey, AlibiPositionalBias>>,
}

impl Modules {
    const KEPT: usize = 6;

    fn new(gpu: &'static GpuDevice) -> Self {
        Self {
            gpu,
            built: RefCell::new(HashMap::new()),
        }
    }

    fn build(&self, (heads, total_heads, window, path): ModuleKey) -> AlibiPositionalBias {
        let config = AlibiConfig::new(heads)
            .total_heads(total_heads)
            .generation_path(path);
        let module = common::windowed_module(self.gpu, window, config);
        assert_eq!(module.slopes(), &alibi_slopes(heads).unwrap()[..]);
        assert_eq!(module.generation_path(), path);
        module
    }

    /// `forward(i, j)` on the module of `key` equals the reference. The module carries its
    /// cache over from earlier cases, so a failure also says what it held and whether a
    /// fresh module fails too (the shrunk input alone may not reproduce it).
    fn check(&self, key: ModuleKey, i: usize, j: usize) -> Result<(), TestCaseError> {
        let mut built = self.built.borrow_mut();
        if !built.contains_key(&key) && built.len() >= Self::KEPT {
            built.clear();
        }
        let module = built.entry(key).or_insert_with(|| self.build(key));
        let cache = module.cache_stats();
        forward_equals_reference(module, i, j).map_err(|failure| {
            let fresh = match forward_equals_reference(&mut self.build(key), i, j) {
                Ok(()) => "passes".to_owned(),
                Err(error) => format!("fails too: {error}"),
            };
            TestCaseError::fail(format!(
                "{failure}\n  (module {key:?} reused across cases, cache before the call \
                 {cache:?}; a fresh module with the same configuration {fresh})"
            ))
        })
    }
}

/// `forward(i, j)` read back equals the reference for the module's slopes.
fn forward_equals_reference(
    module: &mut AlibiPositionalBias,
    i: usize,
    j: usize,
) -> Result<(), TestCaseError> {
    let host = gpu_forward(module, i, j)?;
    let total_heads = module.total_heads();
    compare(
        &host,
        &reference(module.slopes(), total_heads, i, j),
        &format!(
            "heads {}, total_heads {total_heads}, ({i}, {j})",
            module.heads()
        ),
    )
}

/// `(heads, total_heads)` with `heads` in `heads_range` and `heads <= total <= 2 heads`.
fn heads(heads_range: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = (usize, usize)> {
    heads_range.prop_flat_map(|heads| (Just(heads), heads..=2 * heads))
}

#[test]
fn random_shapes_equal_the_reference() {
    let Some(gpu) = common::gpu() else { return };
    let modules = Modules::new(gpu);
    check(
        CASES,
        (heads(1..=64), 0usize..300, 0usize..300, path(gpu)),
        |((heads, total_heads), i, j, path)| modules.check((heads, total_heads, None, path), i, j),
    );
}

/// One call of a sequence, relative to the previous request `(i, j)`.
#[derive(Clone, Copy, Debug)]
enum Call {
    /// A new request.
    Fresh(usize, usize),
    /// A decode step: `(1, j + 1)`.
    Decode,
    /// A longer jump of the keys: `(1, j + n)`.
    Extend(usize),
    /// The previous request again.
    Repeat,
    /// A request inside the previous one: percentages of its `i` and `j`.
    Inside(usize, usize),
}

impl Call {
    fn request(self, previous: (usize, usize)) -> (usize, usize) {
        let (i, j) = previous;
        match self {
            Call::Fresh(i, j) => (i, j),
            Call::Decode => (1, j + 1),
            Call::Extend(n) => (1, j + n),
            Call::Repeat => (i, j),
            Call::Inside(a, b) => (i * a / 100, j * b / 100),
        }
    }
}

fn call() -> impl Strategy<Value = Call> {
    prop_oneof![
        3 => (0usize..300, 0usize..300).prop_map(|(i, j)| Call::Fresh(i, j)),
        4 => Just(Call::Decode),
        1 => (1usize..700).prop_map(Call::Extend),
        1 => Just(Call::Repeat),
        2 => (0usize..=100, 0usize..=100).prop_map(|(a, b)| Call::Inside(a, b)),
    ]
}

#[test]
fn random_call_sequences_on_one_module_equal_fresh_computations() {
    let Some(gpu) = common::gpu() else { return };
    let budget = prop_oneof![
        Just(0u64),
        Just(64u64 << 10),
        Just(1u64 << 20),
        Just(DEFAULT_CACHE_BUDGET_BYTES),
    ];
    // Forced windows too: a cached tensor grown for decode must still be generated within
    // them.
    let window = prop_oneof![
        2 => Just(None),
        1 => Just(Some(4096u64)),
        1 => Just(Some(100_000u64)),
    ];
    check(
        CASES,
        (
            heads(1..=16),
            budget,
            window,
            (1usize..64, 1usize..300),
            proptest::collection::vec(call(), 1..12),
            path(gpu),
        ),
        |((heads, total_heads), budget, window, start, calls, path)| {
            let config = AlibiConfig::new(heads)
                .total_heads(total_heads)
                .cache_budget_bytes(budget)
                .generation_path(path);
            let mut module = common::windowed_module(gpu, window, config.clone());
            let slopes = alibi_slopes(heads).unwrap();
            let mut handed_out = Vec::new();
            let mut previous = start;
            for (step, call) in [Call::Fresh(start.0, start.1)]
                .into_iter()
                .chain(calls)
                .enumerate()
            {
                let (i, j) = call.request(previous);
                previous = (i, j);
                let context = format!("step {step}: {call:?} -> ({i}, {j})");
                let view = match module.forward(i, j) {
                    Ok(view) => view,
                    // Near a forced window's limit a row may not fit any window: then a
                    // fresh module must refuse it the same way.
                    Err(error) => {
                        let fresh =
                            common::windowed_module(gpu, window, config.clone()).forward(i, j);
                        match fresh {
                            Err(fresh_error)
                                if std::mem::discriminant(&fresh_error)
                                    == std::mem::discriminant(&error) =>
                            {
                                continue
                            }
                            Err(fresh_error) => {
                                return Err(TestCaseError::fail(format!(
                                    "{context}: {error}, where a fresh module says {fresh_error}"
                                )))
                            }
                            Ok(_) => {
                                return Err(TestCaseError::fail(format!(
                                    "{context}: {error}, yet a fresh module serves it"
                                )))
                            }
                        }
                    }
                };
                let host = pollster::block_on(module.read(&view))
                    .map_err(|e| TestCaseError::fail(format!("reading {context}: {e}")))?;
                let expected = reference(&slopes, total_heads, i, j);
                compare(&host, &expected, &context)?;
                let stats = module.cache_stats();
                prop_assert!(
                    stats.bytes <= stats.budget_bytes,
                    "step {}: cache holds {} bytes, budget {}",
                    step,
                    stats.bytes,
                    stats.budget_bytes
                );
                handed_out.push((view, expected, (i, j)));
            }
            // Later calls (new entries, evictions) never change a view handed out earlier.
            for (view, expected, (i, j)) in &handed_out {
                let again = pollster::block_on(module.read(view))
                    .map_err(|e| TestCaseError::fail(format!("rereading ({i}, {j}): {e}")))?;
                compare(
                    &again,
                    expected,
                    &format!("({i}, {j}) read again at the end"),
                )?;
            }
            Ok(())
        },
    );
}

fn slope_source(heads: usize) -> impl Strategy<Value = SlopeSource> {
    let custom = proptest::collection::vec(
        prop_oneof![8 => 1.0e-4f32..16.0, 1 => Just(0.0f32), 1 => Just(1.0f32)],
        heads,
    );
    prop_oneof![
        Just(SlopeSource::Paper),
        (0.5f64..16.0).prop_map(SlopeSource::MaxBias),
        (0.5f32..16.0).prop_map(SlopeSource::GgmlF32),
        custom.prop_map(SlopeSource::Custom),
    ]
}

#[test]
fn random_slope_sources_equal_the_reference() {
    let Some(gpu) = common::gpu() else { return };
    let case = heads(1..=64).prop_flat_map(|(heads, total_heads)| {
        (
            Just(heads),
            Just(total_heads),
            slope_source(heads),
            0usize..200,
            0usize..200,
            path(gpu),
        )
    });
    check(CASES, case, |(heads, total_heads, source, i, j, path)| {
        let expected_slopes = match &source {
            SlopeSource::Paper => alibi_slopes(heads).unwrap(),
            SlopeSource::MaxBias(max_bias) => max_bias_slopes(heads, *max_bias).unwrap(),
            // Checked against llama.cpp's own lines in tests/ggml_slopes.rs.
            ggml @ SlopeSource::GgmlF32(_) => ggml.resolve(heads).unwrap(),
            SlopeSource::Custom(slopes) => slopes.clone(),
            other => panic!("a slope source this test does not know: {other:?}"),
        };
        let mut module = common::module(
            gpu,
            AlibiConfig::new(heads)
                .total_heads(total_heads)
                .slopes(source.clone())
                .generation_path(path),
        );
        prop_assert_eq!(module.slopes(), &expected_slopes[..]);
        let host = gpu_forward(&mut module, i, j)?;
        compare(
            &host,
            &reference(&expected_slopes, total_heads, i, j),
            &format!("{source:?}, total_heads {total_heads}, ({i}, {j}), {path:?}"),
        )
    });
}

/// Random shapes on modules that bind at most `window` bytes per dispatch, so that even
/// small tensors are generated in many windows (whole heads, or rows of one head).
fn windowed(window: u64, heads_range: std::ops::RangeInclusive<usize>, max_i: usize, max_j: usize) {
    let Some(gpu) = common::gpu() else { return };
    let modules = Modules::new(gpu);
    check(
        CASES,
        (heads(heads_range), 0..max_i, 0..max_j, path(gpu)),
        |((heads, total_heads), i, j, path)| {
            modules.check((heads, total_heads, Some(window), path), i, j)
        },
    );
}

#[test]
fn windows_of_4096_bytes_equal_the_reference() {
    // Rows up to 1000 columns (4000 bytes) still fit one window.
    windowed(4096, 1..=8, 64, 1000);
}

#[test]
fn windows_of_100_000_bytes_equal_the_reference() {
    windowed(100_000, 1..=24, 300, 300);
}

fn fixed_shape(heads: usize, total_heads: usize, i: usize, j: usize) {
    let Some(gpu) = common::gpu() else { return };
    let mut module = common::module(gpu, AlibiConfig::new(heads).total_heads(total_heads));
    let host = common::forward(&mut module, i, j);
    let expected = reference(&alibi_slopes(heads).unwrap(), total_heads, i, j);
    common::assert_same(
        &host,
        &expected,
        &format!("heads {heads}, total_heads {total_heads}, ({i}, {j})"),
    );
}

#[test]
fn large_square_8_heads_1024() {
    fixed_shape(8, 8, 1024, 1024);
}

#[test]
fn long_decode_row_12_of_16_heads_4096_keys() {
    fixed_shape(12, 16, 1, 4096);
}

#[test]
fn a_million_keys_span_many_workgroups_per_row() {
    fixed_shape(3, 4, 1, 1_000_003);
}

#[test]
fn more_rows_than_one_dispatch_allows() {
    // 70 000 rows per head: above the 65 535 workgroups one dispatch dimension allows.
    fixed_shape(2, 3, 70_000, 5);
}
