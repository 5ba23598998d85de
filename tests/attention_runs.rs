#![cfg(not(target_arch = "wasm32"))]
//! Attention whose tensors exceed one storage binding: the call runs in pieces over
//! (batch item, key/value head) pairs, each bound at its own window (src/gpu/attention/
//! chunks.rs). On a device whose bindings hold 64 KiB, every piece's output equals the same
//! call on the shared device (one piece) and the f64 oracle within the bound; bit for bit
//! (f32, and f16 where the device has it) on CPU adapters, where both calls split their
//! keys alike. A GPU splits each row's keys across many workgroups (flash-decoding, up to
//! 1,024 busy workgroups), as many as the run's pairs and a binding's room for the partial
//! results allow, so the two calls may sum in another order: there they agree within
//! `PIECES_TOLERANCE`. One key/value head's query rows or keys past a binding run a few
//! row tiles or key ranges at a time; both at once are a typed refusal.

mod common;
#[path = "common/attention_oracle.rs"]
mod oracle;
#[path = "common/unit_values.rs"]
mod unit_values;

use alibi_wgpu::{
    AlibiConfig, AlibiError, AlibiPositionalBias, AttentionBias, AttentionError, AttentionOptions,
    AttentionShape,
};
use unit_values::values;

const BINDING_BYTES: u64 = 64 << 10;
const F32_TOLERANCE: f64 = 1e-5;
/// How far the pieces may differ from one piece where the key splits differ (a GPU): a few
/// roundings of values below 1.
const PIECES_TOLERANCE: f64 = 2e-6;
const PIECES_TOLERANCE_F16: f64 = 2e-3;

/// The first element where `pieces` and `one` differ by more than `tolerance` (by any bit
/// where `tolerance` is 0).
fn first_difference<T: Copy + Into<f64>>(pieces: &[T], one: &[T], tolerance: f64) -> Option<usize> {
    pieces.iter().zip(one).position(|(&a, &b)| {
        let (x, y): (f64, f64) = (a.into(), b.into());
        if tolerance == 0.0 {
            x.to_bits() != y.to_bits()
        } else {
            (x - y).abs() > tolerance
        }
    })
}

struct Piecewise {
    name: &'static str,
    shape: AttentionShape,
    heads: usize,
    causal: bool,
}

fn case(call: &Piecewise, query_offsets: &[i32], key_offsets: &[i32]) -> oracle::Case {
    let s = call.shape;
    oracle::Case {
        batch: s.batch,
        query_heads: s.query_heads,
        kv_heads: s.kv_heads,
        queries: s.queries,
        keys: s.keys,
        head_dim: s.head_dim,
        slopes: AlibiPositionalBias::get_slopes(call.heads).unwrap(),
        alibi: true,
        causal: call.causal,
        window: (None, None),
        query_offsets: query_offsets.to_vec(),
        key_offsets: key_offsets.to_vec(),
        scale: 1.0 / (s.head_dim as f64).sqrt(),
    }
}

#[test]
fn tensors_past_one_binding_run_in_pieces() {
    let _serial = common::serial();
    let Some(gpu) = common::gpu() else { return };
    let cpu = gpu.adapter_info.device_type == wgpu::DeviceType::Cpu;
    let shaped = |batch, kv_heads, group, queries, keys, head_dim| AttentionShape {
        batch,
        query_heads: kv_heads * group,
        kv_heads,
        queries,
        keys,
        head_dim,
    };
    let shape =
        |batch, kv_heads, group, queries, keys| shaped(batch, kv_heads, group, queries, keys, 32);
    for call in [
        // q 105 KiB and k 113 KiB: two pieces of three pairs; a padding head.
        Piecewise {
            name: "prefill",
            shape: shape(3, 2, 2, 70, 150),
            heads: 3,
            causal: true,
        },
        // Two pairs of 39 KiB of keys and few rows: each piece splits its keys.
        Piecewise {
            name: "split prefill",
            shape: shape(2, 1, 1, 20, 312),
            heads: 1,
            causal: false,
        },
        // Decode steps, a pair a piece (50 KiB of keys each).
        Piecewise {
            name: "decode",
            shape: shape(2, 4, 2, 1, 400),
            heads: 8,
            causal: true,
        },
        // Keys of one key/value head past the binding (94 KiB): a few key ranges a piece,
        // merged after the last.
        Piecewise {
            name: "long decode",
            shape: shape(2, 2, 2, 1, 750),
            heads: 4,
            causal: false,
        },
        Piecewise {
            name: "long prefill",
            shape: shape(1, 1, 2, 20, 700),
            heads: 2,
            causal: true,
        },
        // Query rows of one key/value head past the binding (75 KiB): a few row tiles a
        // piece.
        Piecewise {
            name: "long queries",
            shape: shape(2, 1, 2, 300, 150),
            heads: 2,
            causal: true,
        },
        // Odd rows, keys and head dimensions: windows that start before their slices.
        Piecewise {
            name: "odd prefill",
            shape: shape(3, 2, 2, 37, 151),
            heads: 3,
            causal: true,
        },
        Piecewise {
            name: "odd decode",
            shape: shaped(3, 3, 1, 1, 333, 36),
            heads: 3,
            causal: false,
        },
        Piecewise {
            name: "odd grouped decode",
            shape: shaped(2, 4, 3, 1, 301, 20),
            heads: 12,
            causal: true,
        },
    ] {
        let s = call.shape;
        let config = AlibiConfig::new(call.heads)
            .total_heads(s.query_heads)
            .causal(call.causal);
        let small = common::windowed_module(gpu, Some(BINDING_BYTES), config.clone());
        let whole = common::windowed_module(gpu, None, config);
        let (q, k, v) = (
            values(s.query_len(), 7),
            values(s.key_len(), 8),
            values(s.key_len(), 9),
        );
        assert!(
            (s.key_len().max(s.query_len()) * 4) as u64 > BINDING_BYTES,
            "{}: k or q must exceed one binding",
            call.name
        );
        let query_offsets: Vec<i32> = (0..s.batch as i32).map(|b| -3 * b).collect();
        let key_offsets: Vec<i32> = (0..s.batch as i32).map(|b| 2 * b).collect();
        let options = AttentionOptions::new()
            .bias(AttentionBias::Alibi)
            .offsets(query_offsets.clone(), key_offsets.clone());
        let pieces = pollster::block_on(small.attention(&q, &k, &v, s, &options))
            .unwrap_or_else(|e| panic!("{}: {e}", call.name));
        let one = pollster::block_on(whole.attention(&q, &k, &v, s, &options)).unwrap();
        let tolerance = if cpu { 0.0 } else { PIECES_TOLERANCE };
        let differ = first_difference(&pieces, &one, tolerance);
        assert_eq!(differ, None, "{}: first difference", call.name);
        let expected = oracle::attention(&case(&call, &query_offsets, &key_offsets), &q, &k, &v);
        let worst = pieces
            .iter()
            .zip(&expected)
            .map(|(&g, &e)| (g as f64 - e).abs())
            .fold(0.0, f64::max);
        eprintln!("{} {s:?}: worst |error| {worst:.2e}", call.name);
        assert!(worst <= F32_TOLERANCE, "{}: |error| {worst}", call.name);
        // f16, twice the elements per binding, where the device has it.
        if common::has_f16(&gpu.device) {
            let half = |x: &[f32]| {
                x.iter()
                    .map(|&x| half::f16::from_f32(x))
                    .collect::<Vec<_>>()
            };
            let (q, k, v) = (half(&q), half(&k), half(&v));
            let pieces = pollster::block_on(small.attention_f16(&q, &k, &v, s, &options))
                .unwrap_or_else(|e| panic!("{} f16: {e}", call.name));
            let one = pollster::block_on(whole.attention_f16(&q, &k, &v, s, &options)).unwrap();
            let tolerance = if cpu { 0.0 } else { PIECES_TOLERANCE_F16 };
            let differ = first_difference(&pieces, &one, tolerance);
            assert_eq!(differ, None, "{} f16: first difference", call.name);
        }
    }
}

#[test]
fn query_rows_and_keys_of_one_key_value_head_past_one_binding_are_refused() {
    let _serial = common::serial();
    let Some(gpu) = common::gpu() else { return };
    let small = common::windowed_module(gpu, Some(BINDING_BYTES), AlibiConfig::new(2));
    let shape = AttentionShape {
        batch: 1,
        query_heads: 2,
        kv_heads: 1,
        queries: 300,
        keys: 600,
        head_dim: 32,
    };
    let (q, kv) = (vec![0.5; shape.query_len()], vec![0.25; shape.key_len()]);
    let refused =
        pollster::block_on(small.attention(&q, &kv, &kv, shape, &AttentionOptions::new()));
    match refused {
        Err(AlibiError::Attention(AttentionError::TooLarge { name, bytes, .. })) => {
            assert_eq!(name, "the q rows of one key/value head");
            assert_eq!(bytes, 2 * 300 * 32 * 4);
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}
