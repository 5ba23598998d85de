//! The fused attention in the browser against the f64 oracle (tests/common/
//! attention_oracle.rs, shared with the native tests): fixed model-like calls, and random
//! calls over shapes, grouped heads, padding heads, windows, causal masks, offsets, decode
//! steps and calls without keys or queries.

#[path = "../../../tests/common/attention_oracle.rs"]
mod oracle;

use super::{gpu, module, Rng};
use alibi_wgpu::{AlibiConfig, AttentionBias, AttentionOptions, AttentionShape};
use wasm_bindgen_test::wasm_bindgen_test;

/// |kernel - f64 reference| for inputs of unit scale (docs/attention.md).
const TOLERANCE: f64 = 1e-5;

/// q, k and v of `shape`, uniform in [-1, 1) in steps of 1/1000.
fn inputs(rng: &mut Rng, shape: AttentionShape) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut values = |len: usize| -> Vec<f32> {
        (0..len)
            .map(|_| rng.below(2000) as f32 / 1000.0 - 1.0)
            .collect()
    };
    (
        values(shape.query_len()),
        values(shape.key_len()),
        values(shape.key_len()),
    )
}

fn worst_error(got: &[f32], expected: &[f64]) -> f64 {
    assert_eq!(got.len(), expected.len());
    got.iter()
        .zip(expected)
        .map(|(&g, &e)| (g as f64 - e).abs())
        .map(|error| if error.is_nan() { f64::INFINITY } else { error })
        .fold(0.0, f64::max)
}

/// The fused attention in the browser (tiles of rows, and the decode kernel with its
/// combine pass) against the f64 oracle, grouped heads, padding heads, causal and not.
#[wasm_bindgen_test]
async fn fused_attention_equals_the_f64_oracle() {
    let gpu = gpu().await;
    let mut rng = Rng(0x0a77_e471);
    for (causal, queries, keys, kv_heads, head_dim) in [
        (false, 5, 37, 2, 32),
        (true, 40, 40, 4, 64),
        (true, 1, 300, 1, 16),
        (false, 70, 9, 2, 8),
    ] {
        let alibi = module(&gpu, AlibiConfig::new(3).total_heads(4).causal(causal));
        let shape = AttentionShape {
            batch: 1,
            query_heads: 4,
            kv_heads,
            queries,
            keys,
            head_dim,
        };
        let (q, k, v) = inputs(&mut rng, shape);
        let got = alibi
            .attention(&q, &k, &v, shape, &AttentionOptions::new())
            .await
            .expect("attention");
        let case = oracle::Case {
            batch: 1,
            query_heads: 4,
            kv_heads,
            queries,
            keys,
            head_dim,
            slopes: alibi.slopes().to_vec(),
            alibi: true,
            causal,
            window: (None, None),
            query_offsets: vec![0],
            key_offsets: vec![0],
            scale: 1.0 / (head_dim as f64).sqrt(),
        };
        let expected = oracle::attention(&case, &q, &k, &v);
        let worst = worst_error(&got, &expected);
        assert!(
            worst <= TOLERANCE,
            "{shape:?} causal {causal}: |error| {worst}"
        );
    }
}

/// Random calls, the same on every run: one to two batch items, one to three key/value
/// heads of one to three query heads each (the last up to two padding heads), up to 40
/// queries (decode steps among them) and 150 keys, head dimensions 4 to 32, ALiBi or none,
/// causal or not, windows, and the first item's positions shifted.
#[wasm_bindgen_test]
async fn random_attention_calls_equal_the_f64_oracle() {
    let gpu = gpu().await;
    let mut rng = Rng(0x5eed_a77e);
    for call in 0..24 {
        let (batch, kv_heads, group) = (1 + rng.below(2), 1 + rng.below(3), 1 + rng.below(3));
        let query_heads = kv_heads * group;
        let heads = query_heads.saturating_sub(rng.below(3)).max(1);
        let queries = match rng.below(4) {
            0 => 1,
            _ => rng.below(41),
        };
        let keys = rng.below(151);
        let head_dim = [4, 8, 16, 32][rng.below(4)];
        let (causal, alibi) = (rng.below(2) == 1, rng.below(4) != 0);
        let mut side = || (rng.below(3) == 0).then(|| rng.below(40) as u32);
        let window = (side(), side());
        let shift = |rng: &mut Rng| rng.below(40) as i32 - 20;
        let (query_shift, key_shift) = (shift(&mut rng), shift(&mut rng));
        let first_shifted = |value: i32| {
            (0..batch)
                .map(|b| if b == 0 { value } else { 0 })
                .collect::<Vec<_>>()
        };
        let (query_offsets, key_offsets) = (first_shifted(query_shift), first_shifted(key_shift));
        let shape = AttentionShape {
            batch,
            query_heads,
            kv_heads,
            queries,
            keys,
            head_dim,
        };
        let alibi_module = module(
            &gpu,
            AlibiConfig::new(heads)
                .total_heads(query_heads)
                .causal(causal),
        );
        let (q, k, v) = inputs(&mut rng, shape);
        let options = AttentionOptions::new()
            .window(window.0, window.1)
            .offsets(query_offsets.clone(), key_offsets.clone())
            .bias(if alibi {
                AttentionBias::Alibi
            } else {
                AttentionBias::None
            });
        let got = alibi_module
            .attention(&q, &k, &v, shape, &options)
            .await
            .unwrap_or_else(|e| panic!("call {call} {shape:?}: {e}"));
        let case = oracle::Case {
            batch,
            query_heads,
            kv_heads,
            queries,
            keys,
            head_dim,
            slopes: alibi_module.slopes().to_vec(),
            alibi,
            causal,
            window,
            query_offsets,
            key_offsets,
            scale: 1.0 / (head_dim as f64).sqrt(),
        };
        let worst = worst_error(&got, &oracle::attention(&case, &q, &k, &v));
        assert!(
            worst <= TOLERANCE,
            "call {call} {shape:?} causal {causal} alibi {alibi} window {window:?}: |error| {worst}"
        );
    }
}
