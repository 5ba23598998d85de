//! Fuzzing the public API: 10,000 random cases, each a configuration (invalid ones
//! included: zero heads, `total_heads < heads`, too many heads, NaN, infinite and
//! subnormal custom slopes, bad `max_bias`) and a short sequence of calls (invalid ones
//! included: sequences past 2^24, sizes that overflow `u64` or exceed `max_buffer_size`,
//! rows wider than a binding window). Every case must end without a panic, every result
//! must equal the oracle with `==`, and every refusal must be the variant that the model
//! below predicts from the rules alone (it shares no code with the crate's checks).
//!
//! Valid modules are kept across cases (a few dozen at a time), so call sequences also run
//! through caches that earlier cases filled.

mod common;

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write as _;

use alibi_wgpu::{
    reference, AlibiConfig, AlibiError, AlibiPositionalBias, GpuDevice, HostBias, SlopeSource,
    MAX_HEADS, MAX_SEQUENCE,
};
use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};

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
    GetBias(usize, usize),
    EncodeForward(usize, usize),
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
}

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
    let (heads, i, j) = match call {
        Call::GetBias(i, j) => (1, i, j),
        Call::Forward(i, j) | Call::ForwardToHost(i, j) | Call::EncodeForward(i, j) => {
            (config.total_heads, i, j)
        }
    };
    if i > MAX_SEQUENCE || j > MAX_SEQUENCE {
        return Outcome::SequenceTooLong;
    }
    if i == 0 || j == 0 {
        return Outcome::Ok;
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
    (0u8..4, shape).prop_map(|(kind, (i, j))| match kind {
        0 => Call::Forward(i, j),
        1 => Call::ForwardToHost(i, j),
        2 => Call::GetBias(i, j),
        _ => Call::EncodeForward(i, j),
    })
}

struct Fuzzer {
    gpu: &'static GpuDevice,
    limits: Limits,
    modules: RefCell<HashMap<String, AlibiPositionalBias>>,
    tally: RefCell<HashMap<Outcome, u64>>,
}

impl Fuzzer {
    fn build(&self, config: &Config) -> Result<AlibiPositionalBias, AlibiError> {
        let slopes = match &config.slopes {
            Slopes::Paper => SlopeSource::Paper,
            Slopes::MaxBias(m) => SlopeSource::MaxBias(*m),
            Slopes::Custom(given) => SlopeSource::Custom(given.clone()),
        };
        let mut built = AlibiConfig::new(config.heads)
            .total_heads(config.total_heads)
            .slopes(slopes)
            .cache_budget_bytes(config.budget)
            .generation_path(common::generation_path_from_env());
        if let Some(window) = config.window {
            built = built.max_binding_window_bytes(window);
        }
        AlibiPositionalBias::on_device(self.gpu, built)
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
                let evict = modules.keys().next().cloned();
                evict.map(|k| modules.remove(&k));
            }
            modules.insert(key.clone(), module);
        }
        let module = modules.get_mut(&key).expect("just built");
        for &call in calls {
            let expected = expected_call(config, call, self.limits);
            let outcome = self.run_call(module, call)?;
            self.count(outcome);
            prop_assert_eq!(outcome, expected, "{:?} on {:?}", call, config);
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
        let (result, i, j, distance_only) = match call {
            Call::Forward(i, j) => (
                module.forward(i, j).and_then(|v| module.read_blocking(&v)),
                i,
                j,
                false,
            ),
            Call::ForwardToHost(i, j) => (module.forward_to_host_blocking(i, j), i, j, false),
            Call::GetBias(i, j) => (
                module.get_bias(i, j).and_then(|v| module.read_blocking(&v)),
                i,
                j,
                true,
            ),
            Call::EncodeForward(i, j) => {
                let mut encoder = self.gpu.device.create_command_encoder(&Default::default());
                let view = module.encode_forward(&mut encoder, i, j);
                self.gpu.queue.submit([encoder.finish()]);
                (view.and_then(|v| module.read_blocking(&v)), i, j, false)
            }
        };
        let actual = match result {
            Ok(actual) => actual,
            Err(error) => return check_refusal(&error, &context),
        };
        let heads = if distance_only {
            1
        } else {
            module.total_heads()
        };
        prop_assert_eq!(actual.shape(), [heads, i, j], "{}", context);
        if i == 0 || j == 0 {
            prop_assert!(actual.is_empty(), "{}", context);
            return Ok(Outcome::Ok);
        }
        let expected: HostBias = if distance_only {
            reference::get_bias(i, j)
        } else {
            reference::forward(module.slopes(), module.total_heads(), i, j)
        }
        .map_err(|e| TestCaseError::fail(format!("the oracle refused {context}: {e}")))?;
        if let Some(difference) = common::mismatch(&actual, &expected) {
            return Err(TestCaseError::fail(format!("{context}: {difference}")));
        }
        Ok(Outcome::Ok)
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
        modules: RefCell::new(HashMap::new()),
        tally: RefCell::new(HashMap::new()),
    };
    let strategy = (
        config_strategy(),
        prop::collection::vec(call_strategy(), 1..=4),
    );
    let mut runner = TestRunner::new(common::proptest_config(CASES));
    let result = runner.run(&strategy, |(config, calls)| {
        fuzzer.run_case(&config, &calls)
    });
    if let Err(error) = result {
        panic!("{error}");
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
        "fuzz: {CASES} cases, {refusals} refusals, 0 panics; outcomes {tally:?}"
    );
    for outcome in [
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
    ] {
        assert!(
            tally.iter().any(|(o, n)| *o == outcome && *n > 0),
            "{outcome:?} was never tried"
        );
    }
}
