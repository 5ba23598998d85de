//! Fuzzing the public API: 10,000 random cases, each a configuration (invalid ones
//! included: zero heads, `total_heads < heads`, too many heads, NaN, infinite and
//! subnormal custom slopes, bad `max_bias`) and a short sequence of calls (invalid ones
//! included: sequences past 2^24, sizes that overflow `u64` or exceed `max_buffer_size`,
//! rows wider than a binding window, callers' targets too small), and the cache controls.
//! Every case must end without a panic, every result
//! must equal the oracle with `==`, and every refusal must be the variant that the model
//! below predicts from the rules alone (it shares no code with the crate's checks).
//!
//! Valid modules are kept across cases (a few dozen at a time), so call sequences also run
//! through caches that earlier cases filled.
// Native only: the browser has its own suite, tests/web.rs.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::io::Write as _;

use alibi_wgpu::{
    reference, AlibiConfig, AlibiError, AlibiPositionalBias, GpuDevice, HostBias, SlopeSource,
    MAX_HEADS, MAX_SEQUENCE,
};
use proptest::prelude::*;
use proptest::test_runner::{RngSeed, TestCaseError, TestRunner};

const CASES: u32 = 10_000;
/// Modules kept for reuse at most.
const KEPT_MODULES: usize = 32;
/// Valid custom slopes, by head; an invalid one may replace any of them.
const CUSTOM: [f32; 6] = [0.5, -0.25, 0.0, 1.0, 0.125, 3.0];

#[derive(Clone, Debug)]
enum Slopes {
    Paper,
    MaxBias(f64),
    Custom(Vec<f32>),
}

#[derive(Clone, Debug)]
struct Config {
    heads: usize,
    total_heads: usize,
    slopes: Slopes,
    budget: u64,
    window: Option<u64>,
}

#[derive(Clone, Copy, Debug)]
enum Call {
    Forward(usize, usize),
    ForwardToHost(usize, usize),
    /// `forward`, then `read_into` a vector reused across calls.
    ReadInto(usize, usize),
    GetBias(usize, usize),
    EncodeForward(usize, usize),
    /// `encode_into` (dense, at offset 0) a target of the size needed, or short by 16 bytes (a word under 32 bytes) when `short`.
    EncodeInto {
        i: usize,
        j: usize,
        short: bool,
    },
    /// `write_into` a mappable target, as above.
    WriteInto {
        i: usize,
        j: usize,
        short: bool,
    },
    SetBudget(u64),
    ClearCache,
}

/// What a call or a build should give, by the rules alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Outcome {
    Ok,
    ZeroHeads,
    TooManyHeads,
    TotalHeadsBelowHeads,
    SlopeCount,
    InvalidSlope,
    InvalidMaxBias,
    SequenceTooLong,
    TooLarge,
    RowTooLarge,
    TargetTooSmall,
}

const EVERY_OUTCOME: [Outcome; 11] = [
    Outcome::Ok,
    Outcome::ZeroHeads,
    Outcome::TooManyHeads,
    Outcome::TotalHeadsBelowHeads,
    Outcome::SlopeCount,
    Outcome::InvalidSlope,
    Outcome::InvalidMaxBias,
    Outcome::SequenceTooLong,
    Outcome::TooLarge,
    Outcome::RowTooLarge,
    Outcome::TargetTooSmall,
];

fn outcome_of(error: &AlibiError) -> Option<Outcome> {
    Some(match error {
        AlibiError::ZeroHeads => Outcome::ZeroHeads,
        AlibiError::TooManyHeads { .. } => Outcome::TooManyHeads,
        AlibiError::TotalHeadsBelowHeads { .. } => Outcome::TotalHeadsBelowHeads,
        AlibiError::SlopeCount { .. } => Outcome::SlopeCount,
        AlibiError::InvalidSlope { .. } => Outcome::InvalidSlope,
        AlibiError::InvalidMaxBias(_) => Outcome::InvalidMaxBias,
        AlibiError::SequenceTooLong { .. } => Outcome::SequenceTooLong,
        AlibiError::TooLarge { .. } => Outcome::TooLarge,
        AlibiError::RowTooLarge { .. } => Outcome::RowTooLarge,
        AlibiError::TargetTooSmall { .. } => Outcome::TargetTooSmall,
        _ => return None,
    })
}

/// Whether an f32 slope is one the crate must accept: finite, and normal or zero.
fn acceptable(slope: f32) -> bool {
    slope.is_finite() && (slope == 0.0 || slope.abs() >= f32::MIN_POSITIVE)
}

fn expected_build(config: &Config) -> Outcome {
    let heads = config.heads;
    if heads == 0 {
        return Outcome::ZeroHeads;
    }
    if heads > MAX_HEADS {
        return Outcome::TooManyHeads;
    }
    if config.total_heads < heads {
        return Outcome::TotalHeadsBelowHeads;
    }
    match &config.slopes {
        Slopes::Paper => Outcome::Ok,
        Slopes::MaxBias(m) if !(m.is_finite() && *m > 0.0) => Outcome::InvalidMaxBias,
        // The smallest slope is 2^-max_bias: below f32's normal range past 126.
        Slopes::MaxBias(m) if *m > 126.0 => Outcome::InvalidSlope,
        Slopes::MaxBias(_) => Outcome::Ok,
        Slopes::Custom(given) if given.len() != heads => Outcome::SlopeCount,
        Slopes::Custom(given) if !given.iter().all(|&s| acceptable(s)) => Outcome::InvalidSlope,
        Slopes::Custom(_) => Outcome::Ok,
    }
}

/// The device limits the model needs.
#[derive(Clone, Copy, Debug)]
struct Limits {
    max_buffer: u64,
    max_binding: u64,
    alignment: u64,
}

fn expected_call(config: &Config, call: Call, limits: Limits) -> Outcome {
    let (heads, i, j, short) = match call {
        Call::SetBudget(_) | Call::ClearCache => return Outcome::Ok,
        Call::GetBias(i, j) => (1, i, j, false),
        Call::Forward(i, j)
        | Call::ForwardToHost(i, j)
        | Call::ReadInto(i, j)
        | Call::EncodeForward(i, j) => (config.total_heads, i, j, false),
        Call::EncodeInto { i, j, short } | Call::WriteInto { i, j, short } => {
            (config.total_heads, i, j, short)
        }
    };
    if i > MAX_SEQUENCE || j > MAX_SEQUENCE {
        return Outcome::SequenceTooLong;
    }
    if i == 0 || j == 0 {
        return Outcome::Ok;
    }
    if matches!(call, Call::EncodeInto { .. } | Call::WriteInto { .. }) {
        return expected_dense(config, (i, j, short), limits);
    }
    // Rows are padded to a multiple of 4 columns.
    let row = j.next_multiple_of(4) as u128 * 4;
    let bytes = heads as u128 * i as u128 * row;
    if bytes > u128::from(limits.max_buffer) || bytes > 1 << 36 {
        return Outcome::TooLarge;
    }
    // A window starts 16-byte aligned, up to `alignment - 16` bytes after its binding.
    let binding = config
        .window
        .map_or(limits.max_binding, |w| w.min(limits.max_binding));
    let usable = (binding - (limits.alignment - 16)) & !15;
    if row > u128::from(usable) {
        return Outcome::RowTooLarge;
    }
    // The device's limits come first: a target is looked at only for a tensor that fits.
    if short {
        return Outcome::TargetTooSmall;
    }
    Outcome::Ok
}

/// A dense write's outcome: rows of exactly `j` keys, a row and the 16-byte unit it may run
/// into within a window; the device's limits before the target.
fn expected_dense(config: &Config, (i, j, short): (usize, usize, bool), limits: Limits) -> Outcome {
    let heads = config.total_heads as u128;
    let bytes = heads * i as u128 * j as u128 * 4;
    if bytes > u128::from(limits.max_buffer) || heads * i as u128 > u128::from(u32::MAX) {
        return Outcome::TooLarge;
    }
    let binding = config
        .window
        .map_or(limits.max_binding, |w| w.min(limits.max_binding));
    let usable = (binding - (limits.alignment - 16)) & !15;
    if j as u128 * 4 + 16 > u128::from(usable) {
        return Outcome::RowTooLarge;
    }
    if short {
        return Outcome::TargetTooSmall;
    }
    Outcome::Ok
}

fn config_strategy() -> impl Strategy<Value = Config> {
    let heads = prop_oneof![1 => Just(0usize), 40 => 1usize..=6, 1 => Just(MAX_HEADS + 1)];
    let padding = prop_oneof![
        2 => Just(None),               // total_heads < heads
        20 => (0usize..=2).prop_map(Some),
        1 => Just(Some(usize::MAX / 2)), // byte counts overflow u64
    ];
    let budget = prop::sample::select(vec![0u64, 64 << 10, 1 << 20]);
    let window = prop::sample::select(vec![None, Some(4096u64)]);
    (heads, padding, budget, window).prop_flat_map(|(heads, padding, budget, window)| {
        let total_heads = match padding {
            None => heads.saturating_sub(1),
            Some(extra) => heads.saturating_add(extra),
        };
        slopes_strategy(heads).prop_map(move |slopes| Config {
            heads,
            total_heads,
            slopes,
            budget,
            window,
        })
    })
}

/// The paper's slopes, `max_bias` ones (valid or not), or custom ones for `heads` heads:
/// sometimes one too many or too few, sometimes with a NaN, infinite or subnormal one.
fn slopes_strategy(heads: usize) -> impl Strategy<Value = Slopes> {
    let bad_slope = prop::sample::select(vec![
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        1e-40,
        f32::MIN_POSITIVE / 2.0,
    ]);
    let bad = prop::option::weighted(0.3, (any::<prop::sample::Index>(), bad_slope));
    let custom = (-1i64..=1, bad).prop_map(move |(length_change, bad)| {
        let length = (heads as i64 + length_change).max(0) as usize;
        let mut slopes: Vec<f32> = (0..length).map(|h| CUSTOM[h % CUSTOM.len()]).collect();
        if let Some((index, value)) = bad.filter(|_| length > 0) {
            slopes[index.index(length)] = value;
        }
        Slopes::Custom(slopes)
    });
    prop_oneof![
        10 => Just(Slopes::Paper),
        3 => prop::sample::select(vec![4.0, 16.0, 0.0, -1.0, f64::NAN, f64::INFINITY, 1000.0])
            .prop_map(Slopes::MaxBias),
        4 => custom,
    ]
}

fn call_strategy() -> impl Strategy<Value = Call> {
    let small = 0usize..=24;
    let length = prop_oneof![
        12 => small.clone(),
        2 => 960usize..=1100, // around a 4096-byte window's usable row
        1 => Just(MAX_SEQUENCE + 1),
        1 => Just(usize::MAX),
    ];
    // Both lengths at the limit: valid sequences, 2^50 bytes and more.
    let shape = prop_oneof![
        20 => (small, length.clone()),
        4 => (length, 0usize..=24),
        1 => Just((MAX_SEQUENCE, MAX_SEQUENCE)),
    ];
    let short = prop::bool::weighted(0.2);
    let budget = prop::sample::select(vec![0u64, 64 << 10, 1 << 20]);
    prop_oneof![
        4 => shape.clone().prop_map(|(i, j)| Call::Forward(i, j)),
        2 => shape.clone().prop_map(|(i, j)| Call::ForwardToHost(i, j)),
        1 => shape.clone().prop_map(|(i, j)| Call::ReadInto(i, j)),
        2 => shape.clone().prop_map(|(i, j)| Call::GetBias(i, j)),
        1 => shape.clone().prop_map(|(i, j)| Call::EncodeForward(i, j)),
        1 => (shape.clone(), short).prop_map(|((i, j), short)| Call::EncodeInto { i, j, short }),
        1 => (shape, short).prop_map(|((i, j), short)| Call::WriteInto { i, j, short }),
        1 => budget.prop_map(Call::SetBudget),
        1 => Just(Call::ClearCache),
    ]
}

struct Fuzzer {
    gpu: &'static GpuDevice,
    limits: Limits,
    /// Ordered, so that the module dropped when too many are kept is the same on every run
    /// with the same seed.
    modules: RefCell<BTreeMap<String, AlibiPositionalBias>>,
    /// The vector `read_into` reuses across calls.
    host: RefCell<Vec<f32>>,
    tally: RefCell<HashMap<Outcome, u64>>,
}

impl Fuzzer {
    fn build(&self, config: &Config) -> Result<AlibiPositionalBias, AlibiError> {
        let slopes = match &config.slopes {
            Slopes::Paper => SlopeSource::Paper,
            Slopes::MaxBias(m) => SlopeSource::MaxBias(*m),
            Slopes::Custom(given) => SlopeSource::Custom(given.clone()),
        };
        let built = AlibiConfig::new(config.heads)
            .total_heads(config.total_heads)
            .slopes(slopes)
            .cache_budget_bytes(config.budget)
            .generation_path(common::generation_path_from_env());
        match config.window {
            Some(bytes) => {
                let (device, queue) = common::windowed_device(bytes);
                AlibiPositionalBias::with_config(device, queue, built)
            }
            None => AlibiPositionalBias::on_device(self.gpu, built),
        }
    }

    fn count(&self, outcome: Outcome) {
        *self.tally.borrow_mut().entry(outcome).or_default() += 1;
    }

    fn run_case(&self, config: &Config, calls: &[Call]) -> Result<(), TestCaseError> {
        let key = format!("{config:?}");
        let mut modules = self.modules.borrow_mut();
        if !modules.contains_key(&key) {
            let expected = expected_build(config);
            let built = self.build(config);
            let outcome = match &built {
                Ok(_) => Outcome::Ok,
                Err(error) => check_refusal(error, "building")?,
            };
            self.count(outcome);
            prop_assert_eq!(outcome, expected, "building {:?}", config);
            let Ok(module) = built else { return Ok(()) };
            if modules.len() >= KEPT_MODULES {
                modules.pop_first();
            }
            modules.insert(key.clone(), module);
        }
        let module = modules.get_mut(&key).expect("just built");
        for &call in calls {
            let expected = expected_call(config, call, self.limits);
            let outcome = self.run_call(module, call)?;
            self.count(outcome);
            prop_assert_eq!(outcome, expected, "{:?} on {:?}", call, config);
            let stats = module.cache_stats();
            prop_assert!(
                stats.bytes + stats.recycled_bytes <= stats.budget_bytes
                    && stats.staging_bytes <= stats.budget_bytes,
                "{:?} on {:?}: {:?}",
                call,
                config,
                stats
            );
        }
        Ok(())
    }

    /// Runs one call; an accepted call's result is compared with the oracle.
    fn run_call(
        &self,
        module: &mut AlibiPositionalBias,
        call: Call,
    ) -> Result<Outcome, TestCaseError> {
        let context = format!("{call:?}");
        let total_heads = module.total_heads();
        let (result, shape) = match call {
            Call::SetBudget(bytes) => {
                module.set_cache_budget(bytes);
                return Ok(Outcome::Ok);
            }
            Call::ClearCache => {
                module.clear_cache();
                return Ok(Outcome::Ok);
            }
            Call::Forward(i, j) => {
                let read = module
                    .forward(i, j)
                    .and_then(|v| pollster::block_on(module.read(&v)));
                (read.map(HostBias::into_vec), [total_heads, i, j])
            }
            Call::ForwardToHost(i, j) => {
                let read = pollster::block_on(module.forward_to_host(i, j));
                (read.map(HostBias::into_vec), [total_heads, i, j])
            }
            Call::ReadInto(i, j) => {
                let mut host = self.host.borrow_mut();
                let read = module
                    .forward(i, j)
                    .and_then(|v| pollster::block_on(module.read_into(&v, &mut host)));
                (read.map(|()| host.clone()), [total_heads, i, j])
            }
            Call::GetBias(i, j) => {
                let read = module
                    .get_bias(i, j)
                    .and_then(|v| pollster::block_on(module.read(&v)));
                (read.map(HostBias::into_vec), [1, i, j])
            }
            Call::EncodeForward(i, j) => {
                // The module's device: a windowed module has its own.
                let mut encoder = module.device().create_command_encoder(&Default::default());
                let view = module.encode_forward(&mut encoder, i, j);
                module.queue().submit([encoder.finish()]);
                let read = view.and_then(|v| pollster::block_on(module.read(&v)));
                (read.map(HostBias::into_vec), [total_heads, i, j])
            }
            Call::EncodeInto { i, j, short } => {
                let usage = wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_DST
                    | wgpu::BufferUsages::COPY_SRC;
                // On the module's device, which a windowed module has of its own.
                let device = module.device().clone();
                let target = self.target(&device, total_heads, i, j, short, usage);
                let mut encoder = device.create_command_encoder(&Default::default());
                let written = module.encode_into(&mut encoder, i, j, &target, 0);
                module.queue().submit([encoder.finish()]);
                let read = written.map(|_| self.dense(module, &target, total_heads, i, j));
                (read, [total_heads, i, j])
            }
            Call::WriteInto { i, j, short } => {
                let usage = wgpu::BufferUsages::MAP_WRITE | wgpu::BufferUsages::COPY_SRC;
                let device = module.device().clone();
                let target = self.target(&device, total_heads, i, j, short, usage);
                let read = module
                    .write_into(i, j, &target, 0)
                    .map(|()| self.dense(module, &target, total_heads, i, j));
                (read, [total_heads, i, j])
            }
        };
        let actual = match result {
            Ok(actual) => actual,
            Err(error) => return check_refusal(&error, &context),
        };
        let [heads, i, j] = shape;
        if i == 0 || j == 0 {
            prop_assert!(actual.is_empty(), "{}", context);
            return Ok(Outcome::Ok);
        }
        let expected = if heads == 1 && matches!(call, Call::GetBias(..)) {
            reference::get_bias(i, j)
        } else {
            reference::forward(module.slopes(), heads, i, j)
        }
        .map_err(|e| TestCaseError::fail(format!("the oracle refused {context}: {e}")))?;
        if let Some(difference) = common::mismatch_values(shape, &actual, &expected) {
            return Err(TestCaseError::fail(format!("{context}: {difference}")));
        }
        Ok(Outcome::Ok)
    }

    /// A caller's target for a `[heads, i, j]` bias: the size the module needs (rows padded
    /// to 4 columns), 16 bytes less (a word less under 32 bytes) when `short`; a small one for a tensor that cannot
    /// exist, which the module must refuse before it looks at the target.
    /// The dense f32 tensor `[heads, i, j]` at the start of `target`, read back.
    fn dense(
        &self,
        module: &AlibiPositionalBias,
        target: &wgpu::Buffer,
        heads: usize,
        i: usize,
        j: usize,
    ) -> Vec<f32> {
        if heads == 0 || i == 0 || j == 0 {
            return Vec::new();
        }
        let len = heads * i * j;
        let bytes = common::read_buffer(module.device(), module.queue(), target);
        bytemuck::cast_slice::<u8, f32>(&bytes[..len * 4]).to_vec()
    }

    fn target(
        &self,
        device: &wgpu::Device,
        heads: usize,
        i: usize,
        j: usize,
        short: bool,
        usage: wgpu::BufferUsages,
    ) -> wgpu::Buffer {
        // Lengths past the limit are refused before any target is looked at; within it,
        // the product fits u128 (heads < 2^64, i and j at most 2^24).
        let needed = (i <= MAX_SEQUENCE && j <= MAX_SEQUENCE)
            .then(|| heads as u128 * i as u128 * j as u128 * 4);
        let size = match needed {
            // Short: 16 bytes less, or one word less for a tensor of under 32 bytes.
            Some(n) if n > 0 && n <= 1 << 24 => {
                let n = n as u64;
                n - if !short {
                    0
                } else if n < 32 {
                    4
                } else {
                    16
                }
            }
            _ => 64,
        };
        common::scoped(device, "creating a target", || {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("fuzz target"),
                size,
                usage,
                mapped_at_creation: false,
            })
        })
    }
}

/// The outcome of a refusal, which must be one of the model's and one line long.
fn check_refusal(error: &AlibiError, context: &str) -> Result<Outcome, TestCaseError> {
    let message = error.to_string();
    prop_assert!(
        !message.contains('\n'),
        "{}: a message of several lines: {:?}",
        context,
        message
    );
    outcome_of(error).ok_or_else(|| TestCaseError::fail(format!("{context}: unexpected {error:?}")))
}

#[test]
fn random_call_sequences_never_panic_and_match_the_model_and_the_oracle() {
    let Some(gpu) = common::gpu() else { return };
    let device = gpu.device.limits();
    let fuzzer = Fuzzer {
        gpu,
        limits: Limits {
            max_buffer: device.max_buffer_size,
            max_binding: device.max_storage_buffer_binding_size,
            alignment: u64::from(device.min_storage_buffer_offset_alignment),
        },
        modules: RefCell::new(BTreeMap::new()),
        host: RefCell::new(Vec::new()),
        tally: RefCell::new(HashMap::new()),
    };
    // Modules carry their caches from case to case, so a failure is reproduced by running
    // the same sequence again: the seed is printed, and PROPTEST_RNG_SEED sets it.
    let seed = match std::env::var("PROPTEST_RNG_SEED") {
        Ok(seed) => seed.parse().expect("PROPTEST_RNG_SEED is a u64"),
        Err(_) => RandomState::new().hash_one("alibi-wgpu fuzz"),
    };
    let mut config = common::proptest_config(CASES);
    config.rng_seed = RngSeed::Fixed(seed);
    let strategy = (
        config_strategy(),
        prop::collection::vec(call_strategy(), 1..=4),
    );
    let mut runner = TestRunner::new(config);
    let result = runner.run(&strategy, |(config, calls)| {
        fuzzer.run_case(&config, &calls)
    });
    if let Err(error) = result {
        panic!("{error}\n(rerun this sequence with PROPTEST_RNG_SEED={seed})");
    }
    let mut tally: Vec<_> = fuzzer.tally.into_inner().into_iter().collect();
    tally.sort_by_key(|&(outcome, _)| format!("{outcome:?}"));
    let refusals: u64 = tally
        .iter()
        .filter(|(o, _)| *o != Outcome::Ok)
        .map(|(_, n)| n)
        .sum();
    // Past libtest's capture: what this run tried, for the logs.
    let _ = writeln!(
        std::io::stderr(),
        "fuzz: {CASES} cases (seed {seed}), {refusals} refusals, no panic; outcomes {tally:?}"
    );
    for outcome in EVERY_OUTCOME {
        assert!(
            tally.iter().any(|(o, n)| *o == outcome && *n > 0),
            "{outcome:?} was never tried"
        );
    }
}
