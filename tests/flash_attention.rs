#![cfg(not(target_arch = "wasm32"))]
//! The fused attention kernel (`encode_attention`, `attention`): against an f64 oracle
//! written from the definition (tests/common/attention_oracle.rs) over random shapes,
//! grouped heads, padding heads, causal masks, windows, offsets and decode steps; bit for
//! bit against the same kernel reading `forward_dense`'s materialized bias; typed refusals.
//! On whatever adapter `WGPU_BACKEND` selects; no adapter is a failure (tests/common).

mod common;
#[path = "common/attention_oracle.rs"]
mod oracle;
#[path = "common/unit_values.rs"]
mod unit_values;

use alibi_wgpu::{
    AlibiConfig, AlibiError, AlibiPositionalBias, AttentionBias, AttentionBuffers, AttentionError,
    AttentionOptions, AttentionShape,
};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use unit_values::values;

/// |kernel - f64 reference| for f32 inputs of unit scale (docs/attention.md).
const F32_TOLERANCE: f64 = 1e-5;
const F16_TOLERANCE: f64 = 2e-3;

#[derive(Clone, Debug)]
struct Call {
    case: oracle::Case,
    seed: u64,
}

impl Call {
    fn shape(&self) -> AttentionShape {
        let c = &self.case;
        AttentionShape {
            batch: c.batch,
            query_heads: c.query_heads,
            kv_heads: c.kv_heads,
            queries: c.queries,
            keys: c.keys,
            head_dim: c.head_dim,
        }
    }

    fn options(&self) -> AttentionOptions<'static> {
        let c = &self.case;
        AttentionOptions::new()
            .scale(c.scale as f32)
            .window(c.window.0, c.window.1)
            .offsets(c.query_offsets.clone(), c.key_offsets.clone())
            .bias(if c.alibi {
                AttentionBias::Alibi
            } else {
                AttentionBias::None
            })
    }

    fn module(&self, gpu: &alibi_wgpu::GpuDevice) -> AlibiPositionalBias {
        let c = &self.case;
        let config = AlibiConfig::new(c.slopes.len())
            .total_heads(c.query_heads)
            .causal(c.causal);
        common::module(gpu, config)
    }

    fn inputs(&self) -> [Vec<f32>; 3] {
        let shape = self.shape();
        [
            values(shape.query_len(), self.seed),
            values(shape.key_len(), self.seed + 1),
            values(shape.key_len(), self.seed + 2),
        ]
    }
}

/// The worst |kernel - oracle| of `call`, and where.
fn worst_error(module: &AlibiPositionalBias, call: &Call) -> (f64, usize) {
    let [q, k, v] = call.inputs();
    let got = pollster::block_on(module.attention(&q, &k, &v, call.shape(), &call.options()))
        .unwrap_or_else(|e| panic!("{call:?}: {e}"));
    let expected = oracle::attention(&call.case, &q, &k, &v);
    assert_eq!(got.len(), expected.len());
    got.iter()
        .zip(&expected)
        .enumerate()
        // NaN is the worst.
        .map(|(n, (&g, &e))| ((g as f64 - e).abs(), n))
        .map(|(error, n)| (if error.is_nan() { f64::INFINITY } else { error }, n))
        .fold(
            (0.0, 0),
            |worst, (error, n)| if error > worst.0 { (error, n) } else { worst },
        )
}

fn calls() -> impl Strategy<Value = Call> {
    (
        (1usize..=2, 1usize..=3, 1usize..=3),
        (0usize..=40, 0usize..=150),
        // Small rows keep each variant's pipeline quick to build on a CPU adapter; the
        // model sizes have their own test.
        prop::sample::select(vec![4usize, 8, 16, 32]),
        (any::<bool>(), any::<bool>(), 0usize..=2),
        (prop::option::of(0u32..40), prop::option::of(0u32..40)),
        (-20i32..20, -20i32..20),
        any::<u64>(),
    )
        .prop_map(
            |(
                (batch, kv_heads, group),
                (queries, keys),
                head_dim,
                (causal, alibi, pad),
                window,
                offsets,
                seed,
            )| {
                let query_heads = kv_heads * group;
                let heads = query_heads.saturating_sub(pad).max(1);
                let slopes = AlibiPositionalBias::get_slopes(heads).unwrap();
                Call {
                    case: oracle::Case {
                        batch,
                        query_heads,
                        kv_heads,
                        queries,
                        keys,
                        head_dim,
                        slopes,
                        alibi,
                        causal,
                        window,
                        // The first item shifted, the others not.
                        query_offsets: (0..batch)
                            .map(|b| if b == 0 { offsets.0 } else { 0 })
                            .collect(),
                        key_offsets: (0..batch)
                            .map(|b| if b == 0 { offsets.1 } else { 0 })
                            .collect(),
                        scale: 1.0 / (head_dim as f64).sqrt(),
                    },
                    seed,
                }
            },
        )
}

#[test]
fn random_calls_equal_the_f64_oracle() {
    let _serial = common::serial();
    let Some(gpu) = common::gpu() else { return };
    let mut runner = TestRunner::new(common::proptest_config(48));
    let seen = std::cell::Cell::new(0.0f64);
    runner
        .run(&calls(), |call| {
            let module = call.module(gpu);
            let (worst, at) = worst_error(&module, &call);
            seen.set(seen.get().max(worst));
            prop_assert!(worst <= F32_TOLERANCE, "{call:?}: |error| {worst} at {at}");
            Ok(())
        })
        .unwrap();
    eprintln!("random calls: worst |error| {:.2e}", seen.get());
}

fn long_call(queries: usize, keys: usize, causal: bool, kv_heads: usize) -> Call {
    let query_heads = 8;
    Call {
        case: oracle::Case {
            batch: 1,
            query_heads,
            kv_heads,
            queries,
            keys,
            head_dim: 64,
            slopes: AlibiPositionalBias::get_slopes(query_heads).unwrap(),
            alibi: true,
            causal,
            window: (None, None),
            query_offsets: vec![0],
            key_offsets: vec![0],
            scale: 1.0 / 8.0,
        },
        seed: (queries * 31 + keys) as u64,
    }
}

/// Up to 8192 keys: a decode step (split across workgroups, then combined), a prefill
/// tile, causal and not, grouped heads.
#[test]
fn long_keys_stay_within_the_bound() {
    let _serial = common::serial();
    let Some(gpu) = common::gpu() else { return };
    for call in [
        long_call(1, 8192, false, 8),
        long_call(1, 8192, true, 2),
        long_call(64, 8192, true, 8),
        long_call(3, 4099, false, 1),
    ] {
        let module = call.module(gpu);
        let (worst, at) = worst_error(&module, &call);
        eprintln!(
            "{:?} causal {}: worst |error| {worst:.2e}",
            call.shape(),
            call.case.causal
        );
        assert!(
            worst <= F32_TOLERANCE,
            "{:?}: |error| {worst} at {at}",
            call.shape()
        );
    }
}

/// The head dimensions of models (64 to 128) within the bound, causal and grouped.
#[test]
fn model_head_dimensions() {
    let _serial = common::serial();
    let Some(gpu) = common::gpu() else { return };
    for head_dim in [64, 80, 96, 128] {
        let mut call = long_call(19, 45, true, 4);
        call.case.head_dim = head_dim;
        call.case.scale = 1.0 / (head_dim as f64).sqrt();
        let module = call.module(gpu);
        let (worst, at) = worst_error(&module, &call);
        eprintln!("d {head_dim}: worst |error| {worst:.2e}");
        assert!(
            worst <= F32_TOLERANCE,
            "d {head_dim}: |error| {worst} at {at}"
        );
    }
}

/// The fused kernel and the same kernel reading `forward_dense`'s tensor: the same
/// operations in the same order, the same bits.
#[test]
fn fused_equals_materialized_bit_for_bit() {
    let _serial = common::serial();
    let Some(gpu) = common::gpu() else { return };
    for (heads, total, queries, keys, causal) in [
        (8, 8, 37, 37, false),
        (5, 8, 16, 300, true),
        (4, 4, 1, 1000, false),
        (3, 6, 50, 20, true),
    ] {
        let mut module = common::module(
            gpu,
            AlibiConfig::new(heads).total_heads(total).causal(causal),
        );
        let shape = AttentionShape {
            batch: 1,
            query_heads: total,
            kv_heads: total / 2,
            queries,
            keys,
            head_dim: 64,
        };
        let [q, k, v] = [
            values(shape.query_len(), 1),
            values(shape.key_len(), 2),
            values(shape.key_len(), 3),
        ];
        let fused =
            pollster::block_on(module.attention(&q, &k, &v, shape, &AttentionOptions::new()))
                .unwrap();
        let bias = module.forward_dense(queries, keys).unwrap();
        let options = AttentionOptions::new().bias(AttentionBias::Tensor(bias.buffer()));
        let materialized =
            pollster::block_on(module.attention(&q, &k, &v, shape, &options)).unwrap();
        let differ = fused
            .iter()
            .zip(&materialized)
            .position(|(a, b)| a.to_bits() != b.to_bits());
        assert_eq!(differ, None, "{shape:?} causal {causal}: first difference");
        let plain = AttentionOptions::new().bias(AttentionBias::None);
        let without = pollster::block_on(module.attention(&q, &k, &v, shape, &plain)).unwrap();
        assert_ne!(fused, without, "{shape:?}: the bias changed nothing");
    }
}

/// f16 inputs and outputs, accumulated in f32, where the device has `SHADER_F16`; a typed
/// refusal where it has not.
#[test]
fn f16_attention_within_its_bound_or_refused() {
    let _serial = common::serial();
    let Some(gpu) = common::gpu() else { return };
    let call = long_call(17, 300, true, 4);
    let module = call.module(gpu);
    let [q, k, v] = call.inputs().map(|x| {
        x.iter()
            .map(|&x| half::f16::from_f32(x))
            .collect::<Vec<_>>()
    });
    let result =
        pollster::block_on(module.attention_f16(&q, &k, &v, call.shape(), &call.options()));
    if !common::has_f16(&gpu.device) {
        assert!(
            matches!(result, Err(AlibiError::Attention(AttentionError::NoF16))),
            "{result:?}"
        );
        return;
    }
    let widen = |x: &[half::f16]| x.iter().map(|x| x.to_f32()).collect::<Vec<_>>();
    let expected = oracle::attention(&call.case, &widen(&q), &widen(&k), &widen(&v));
    let got = widen(&result.unwrap());
    let worst = got
        .iter()
        .zip(&expected)
        .map(|(&g, &e)| (g as f64 - e).abs())
        .fold(0.0, f64::max);
    eprintln!("f16: worst |error| {worst:.2e}");
    assert!(worst <= F16_TOLERANCE, "|error| {worst}");
}

#[test]
fn refusals_are_typed_and_name_the_value() {
    let _serial = common::serial();
    let Some(gpu) = common::gpu() else { return };
    let module = common::module(gpu, AlibiConfig::new(4));
    let shape = AttentionShape {
        batch: 2,
        query_heads: 4,
        kv_heads: 2,
        queries: 3,
        keys: 5,
        head_dim: 32,
    };
    let run = |shape: AttentionShape, options: AttentionOptions<'_>, short: usize| {
        let q = vec![0.0; shape.query_len().saturating_sub(short)];
        let kv = vec![0.0; shape.key_len()];
        pollster::block_on(module.attention(&q, &kv, &kv, shape, &options)).unwrap_err()
    };
    let attention_error = |error: AlibiError| match error {
        AlibiError::Attention(inner) => inner,
        other => panic!("{other:?}"),
    };
    assert!(matches!(
        attention_error(run(
            AttentionShape {
                head_dim: 66,
                ..shape
            },
            AttentionOptions::new(),
            0
        )),
        AttentionError::HeadDim { head_dim: 66, .. }
    ));
    assert!(matches!(
        attention_error(run(
            AttentionShape {
                kv_heads: 3,
                ..shape
            },
            AttentionOptions::new(),
            0
        )),
        AttentionError::GroupedHeads {
            query_heads: 4,
            kv_heads: 3
        }
    ));
    assert!(matches!(
        attention_error(run(
            AttentionShape {
                query_heads: 8,
                kv_heads: 8,
                ..shape
            },
            AttentionOptions::new(),
            0
        )),
        AttentionError::QueryHeads {
            query_heads: 8,
            total_heads: 4
        }
    ));
    assert!(matches!(
        attention_error(run(shape, AttentionOptions::new(), 1)),
        AttentionError::Length { name: "q", .. }
    ));
    assert!(matches!(
        attention_error(run(
            shape,
            AttentionOptions::new().offsets(vec![0], vec![0, 0]),
            0
        )),
        AttentionError::Offsets {
            side: "query",
            got: 1,
            batch: 2
        }
    ));
    assert!(matches!(
        attention_error(run(shape, AttentionOptions::new().scale(f32::INFINITY), 0)),
        AttentionError::Scale(_)
    ));
    assert!(matches!(
        run(
            shape,
            AttentionOptions::new().offsets(vec![1 << 24, 0], vec![0, 0]),
            0
        ),
        AlibiError::PositionOutOfRange {
            side: "query",
            index: 0,
            ..
        }
    ));
    // A caller's buffer too small for its tensor: refused before anything is recorded.
    let small = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: 64,
        usage: wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    let buffers = AttentionBuffers {
        q: &small,
        k: &small,
        v: &small,
        out: &small,
    };
    let refused = module.encode_attention(&mut encoder, buffers, shape, &AttentionOptions::new());
    assert!(matches!(
        refused,
        Err(AlibiError::Attention(AttentionError::Buffer {
            name: "q",
            ..
        }))
    ));
    // And the module still works.
    let ok = AttentionShape {
        kv_heads: 4,
        batch: 1,
        ..shape
    };
    let q = values(ok.query_len(), 5);
    assert!(pollster::block_on(module.attention(
        &q,
        &q,
        &q,
        AttentionShape { keys: 3, ..ok },
        &AttentionOptions::new()
    ))
    .is_ok());
}

/// A window side past every position is no limit (its sums with positions stay in range),
/// with a negative query offset and more queries than keys too.
#[test]
fn unlimited_windows_equal_no_window() {
    let _serial = common::serial();
    let Some(gpu) = common::gpu() else { return };
    let mut call = long_call(9, 5, false, 2);
    call.case.head_dim = 16;
    call.case.scale = 0.25;
    call.case.query_offsets = vec![-7];
    call.case.window = (Some(u32::MAX), Some(u32::MAX));
    let module = call.module(gpu);
    let (worst, at) = worst_error(&module, &call);
    assert!(worst <= F32_TOLERANCE, "|error| {worst} at {at}");
    let [q, k, v] = call.inputs();
    let windowed =
        pollster::block_on(module.attention(&q, &k, &v, call.shape(), &call.options())).unwrap();
    call.case.window = (None, None);
    let unlimited =
        pollster::block_on(module.attention(&q, &k, &v, call.shape(), &call.options())).unwrap();
    assert_eq!(windowed, unlimited);
    assert!(windowed.iter().any(|&x| x != 0.0));
}

/// No keys: every row is 0; no queries: an empty output.
#[test]
fn empty_calls() {
    let _serial = common::serial();
    let Some(gpu) = common::gpu() else { return };
    let module = common::module(gpu, AlibiConfig::new(2));
    let shape = AttentionShape {
        batch: 1,
        query_heads: 2,
        kv_heads: 1,
        queries: 3,
        keys: 0,
        head_dim: 8,
    };
    let q = vec![1.0; shape.query_len()];
    let out = pollster::block_on(module.attention(&q, &[], &[], shape, &AttentionOptions::new()))
        .unwrap();
    assert_eq!(out, vec![0.0; shape.query_len()]);
    let none = AttentionShape {
        queries: 0,
        keys: 4,
        ..shape
    };
    let kv = vec![1.0; none.key_len()];
    let out = pollster::block_on(module.attention(&[], &kv, &kv, none, &AttentionOptions::new()))
        .unwrap();
    assert!(out.is_empty());
}
