//! The causal and f16 variants (issue 9) against the oracle, bit for bit, on every
//! generation path the device offers: random call sequences on reused modules, so that
//! cache hits, growth and evictions serve the masked and narrowed tensors too.
//!
//! The f16 expectation is the oracle's f32 value converted by the rule of docs/semantics.md, written here
//! with `half` (round to nearest even, finite values saturated at ±65504): it shares no
//! code with the crate's conversion.
// Native only: the browser has its own suite, tests/web.rs.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use alibi_wgpu::{
    reference, AlibiConfig, AlibiError, AlibiPositionalBias, BiasDtype, GenerationPath, HostBias,
};
use half::f16;
use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};

const CASES: u32 = 24;

/// The oracle for a module's configuration.
fn oracle(module: &AlibiPositionalBias, i: usize, j: usize) -> HostBias {
    let (slopes, total) = (module.slopes(), module.total_heads());
    let expected = if module.causal() {
        reference::forward_causal(slopes, total, i, j)
    } else {
        reference::forward(slopes, total, i, j)
    };
    expected.unwrap_or_else(|e| panic!("the oracle refused ({i}, {j}): {e}"))
}

/// `forward(i, j)` of `module` read back (as f32, and as f16 for an f16 module) equals the
/// oracle.
fn forward_matches(
    module: &mut AlibiPositionalBias,
    i: usize,
    j: usize,
) -> Result<(), TestCaseError> {
    let context = format!(
        "causal {}, {}, {:?}, heads {}/{}, ({i}, {j})",
        module.causal(),
        module.dtype(),
        module.generation_path(),
        module.heads(),
        module.total_heads()
    );
    let view = module
        .forward(i, j)
        .map_err(|e| TestCaseError::fail(format!("{context}: {e}")))?;
    prop_assert_eq!(view.dtype(), module.dtype());
    let widened = pollster::block_on(module.read(&view))
        .map_err(|e| TestCaseError::fail(format!("{context}: reading: {e}")))?;
    let expected = oracle(module, i, j);
    match module.dtype() {
        BiasDtype::F32 => {
            if let Some(difference) = common::mismatch(&widened, &expected) {
                return Err(TestCaseError::fail(format!("{context}: {difference}")));
            }
        }
        _ => {
            let stored = pollster::block_on(module.read_f16(&view))
                .map_err(|e| TestCaseError::fail(format!("{context}: reading f16: {e}")))?;
            let want: Vec<u16> = expected
                .as_slice()
                .iter()
                .map(|&v| common::spec_f16(v).to_bits())
                .collect();
            let got: Vec<u16> = stored.as_slice().iter().map(|v| v.to_bits()).collect();
            if let Some(at) = got.iter().zip(&want).position(|(g, w)| g != w) {
                return Err(TestCaseError::fail(format!(
                    "{context}: f16 element {at}: got {:#06x}, expected {:#06x} (f32 {})",
                    got[at],
                    want[at],
                    expected.as_slice()[at]
                )));
            }
            prop_assert_eq!(got.len(), want.len());
            let want_wide: Vec<u32> = want
                .iter()
                .map(|&b| f16::from_bits(b).to_f32().to_bits())
                .collect();
            let got_wide: Vec<u32> = widened.as_slice().iter().map(|v| v.to_bits()).collect();
            prop_assert!(
                got_wide == want_wide,
                "{}: f32 readback of f16 differs",
                context
            );
        }
    }
    Ok(())
}

#[test]
fn causal_and_f16_call_sequences_equal_the_oracle_on_every_path() {
    let Some(gpu) = common::gpu() else { return };
    let strategy = (
        proptest::sample::select(common::generation_paths(gpu)),
        proptest::sample::select(common::dtypes(gpu)),
        any::<bool>(),
        (1usize..=12, 0usize..=4),
        prop::collection::vec((1usize..=48, 1usize..=300), 1..6),
        prop::option::of(2048u64..8192),
    );
    let mut runner = TestRunner::new(common::proptest_config(CASES));
    let result = runner.run(
        &strategy,
        |(path, dtype, causal, (heads, pad), calls, window)| {
            let config = AlibiConfig::new(heads)
                .total_heads(heads + pad)
                .causal(causal)
                .dtype(dtype)
                .generation_path(path)
                .cache_budget_bytes(1 << 20);
            let mut module = common::windowed_module(gpu, window, config);
            for (i, j) in calls {
                forward_matches(&mut module, i, j)?;
            }
            Ok(())
        },
    );
    if let Err(error) = result {
        panic!("{error}");
    }
}

#[test]
fn a_causal_decode_loop_is_served_from_the_cache_with_the_mask() {
    let Some(gpu) = common::gpu() else { return };
    eprintln!(
        "{}: element types {:?}, paths {:?}",
        gpu.adapter_info.name,
        common::dtypes(gpu),
        common::generation_paths(gpu)
    );
    for path in common::generation_paths(gpu) {
        for dtype in common::dtypes(gpu) {
            let config = AlibiConfig::new(6)
                .total_heads(8)
                .causal(true)
                .dtype(dtype)
                .generation_path(path);
            let mut module = common::module(gpu, config);
            forward_matches(&mut module, 17, 17).unwrap();
            for j in 18..=40 {
                forward_matches(&mut module, 1, j).unwrap();
            }
            // docs/semantics.md's cache checks, masked: (4, 4) then (1, 3); (3, 5) then (2, 3).
            for (i, j) in [(4, 4), (1, 3), (3, 5), (2, 3)] {
                forward_matches(&mut module, i, j).unwrap();
            }
            let stats = module.cache_stats();
            assert!(stats.hits > 10, "{path:?} {dtype}: {stats:?}");
        }
    }
}

#[test]
fn f16_saturates_long_distances_and_keeps_the_mask() {
    let Some(gpu) = common::gpu() else { return };
    // On every adapter: without SHADER_F16 the kernel stores f16 in words.
    for path in common::generation_paths(gpu) {
        // Slope 1 and distances up to 70,000: past 65,504 the values saturate.
        let config = AlibiConfig::new(1)
            .custom_slopes(vec![1.0])
            .causal(true)
            .dtype(BiasDtype::F16)
            .generation_path(path);
        let mut module = common::module(gpu, config);
        let view = module.forward(2, 70_000).unwrap();
        let stored = pollster::block_on(module.read_f16(&view)).unwrap();
        let row = stored.row(0, 0);
        assert_eq!(row[0], f16::from_f32(-65504.0), "{path:?}");
        assert_eq!(row[69_998], f16::ZERO, "{path:?}");
        assert_eq!(row[69_999], f16::NEG_INFINITY, "{path:?}");
        assert_eq!(stored.row(0, 1)[0], f16::from_f32(-65504.0));
        assert!(row.iter().all(|v| !v.is_nan()));
        // 2049 lies halfway between f16 neighbours 2048 and 2050: even wins.
        assert_eq!(row[69_998 - 2049], f16::from_f32(-2048.0), "{path:?}");
        forward_matches(&mut module, 3, 70_000).unwrap();
    }
}

#[test]
fn f16_views_bind_and_read_with_halved_strides() {
    let Some(gpu) = common::gpu() else { return };
    let mut module = common::module(gpu, AlibiConfig::new(3).dtype(BiasDtype::F16));
    // The distance matrix is f32 on every module, empty or not.
    for (i, j) in [(0, 5), (2, 5)] {
        assert_eq!(module.get_bias(i, j).unwrap().dtype(), BiasDtype::F32);
    }
    let view = module.forward(5, 13).unwrap();
    let binding = view.binding().unwrap();
    // 16 columns of 2 bytes per row: the binding ends at the last element's second byte.
    assert_eq!(view.layout().row_stride, 16);
    let end = (binding.layout.offset + 2 * 5 * 16 + 4 * 16 + 13) * 2;
    assert_eq!(binding.binding.size.unwrap().get(), end);
    let f32_view = common::module(gpu, AlibiConfig::new(3))
        .forward(5, 13)
        .unwrap();
    assert!(matches!(
        pollster::block_on(module.read_f16(&f32_view)),
        Err(AlibiError::Unsupported { .. })
    ));
    // The path a config leaves unset is `Auto`.
    assert_eq!(
        AlibiConfig::new(1),
        AlibiConfig::new(1).generation_path(GenerationPath::Auto)
    );
}
