//! docs/semantics.md's worked examples and known values, computed on the GPU and compared bit for bit
//! (`to_bits`, so that `+0.0` on the diagonal and in padding heads, as PyTorch gives, is
//! checked too).
// Native only: the browser has its own suite, tests/web.rs.
#![cfg(not(target_arch = "wasm32"))]

mod closed_form;
mod common;

use alibi_wgpu::{reference, AlibiConfig, AlibiPositionalBias, GpuDevice, SlopeSource};
use closed_form::closed_form_slopes;

/// `-|k - (j - i + r)|`: the distance part of docs/semantics.md, "Forward", as f32.
fn distance(i: usize, j: usize, r: usize, k: usize) -> f32 {
    let query = j as i64 - i as i64 + r as i64;
    (-(k as i64 - query).abs()) as f32
}

/// docs/semantics.md, "Forward" written out: `distance * slope_h` for heads with a slope, `+0.0` after.
fn spec_bias(slopes: &[f32], total_heads: usize, i: usize, j: usize) -> Vec<f32> {
    let mut values = Vec::with_capacity(total_heads * i * j);
    for h in 0..total_heads {
        for r in 0..i {
            for k in 0..j {
                values.push(slopes.get(h).map_or(0.0, |s| distance(i, j, r, k) * s));
            }
        }
    }
    values
}

fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

#[track_caller]
fn assert_bits(actual: &[f32], expected: &[f32], context: &str) {
    assert_eq!(
        bits(actual),
        bits(expected),
        "{context}:\n  got      {actual:?}\n  expected {expected:?}"
    );
}

fn powers_of_two(exponents: &[f64]) -> Vec<f32> {
    exponents.iter().map(|&e| 2f64.powf(e) as f32).collect()
}

#[test]
fn the_adapter_is_the_one_wgpu_backend_names() {
    let Some(gpu) = common::gpu() else { return };
    if let Some(requested) = wgpu::Backends::from_env() {
        let backend = gpu.adapter_info.backend;
        assert!(
            requested.contains(wgpu::Backends::from(backend)),
            "WGPU_BACKEND asks for {requested:?} but the tests run on {backend:?}"
        );
    }
}

#[test]
fn slopes_of_1_to_16_heads_are_the_known_values_on_the_gpu() {
    let Some(gpu) = common::gpu() else { return };
    let eight: Vec<f64> = (1..=8).map(|k| -f64::from(k)).collect();
    let mut twelve = eight.clone();
    twelve.extend([-0.5, -1.5, -2.5, -3.5]);
    let sixteen: Vec<f64> = (1..=16).map(|k| -f64::from(k) / 2.0).collect();
    let listed: [(usize, Vec<f64>); 8] = [
        (1, vec![-8.0]),
        (2, vec![-4.0, -8.0]),
        (3, vec![-4.0, -8.0, -2.0]),
        (4, vec![-2.0, -4.0, -6.0, -8.0]),
        (5, vec![-2.0, -4.0, -6.0, -8.0, -1.0]),
        (8, eight),
        (12, twelve),
        (16, sixteen),
    ];
    for heads in 1..=16 {
        let mut alibi = common::module(gpu, AlibiConfig::new(heads));
        let expected = closed_form_slopes(heads);
        assert_eq!(alibi.slopes(), &expected[..], "heads = {heads}");
        if let Some((_, exponents)) = listed.iter().find(|(n, _)| *n == heads) {
            assert_eq!(
                alibi.slopes(),
                &powers_of_two(exponents)[..],
                "heads = {heads}"
            );
        }
        assert_eq!(
            AlibiPositionalBias::get_slopes(heads).unwrap(),
            expected,
            "get_slopes({heads})"
        );
        // The slopes the GPU uses: key 0 sits one step before query position 1.
        let bias = common::forward(&mut alibi, 1, 2);
        for (h, slope) in expected.iter().enumerate() {
            assert_bits(
                bias.row(h, 0),
                &[-slope, 0.0],
                &format!("heads = {heads}, head {h}"),
            );
        }
    }
}

#[test]
fn worked_example_4_heads_padded_to_8() {
    let Some(gpu) = common::gpu() else { return };
    let mut alibi = common::module(gpu, AlibiConfig::new(4).total_heads(8));
    let bias = common::forward(&mut alibi, 3, 5);
    assert_eq!(bias.shape(), [8, 3, 5]);
    let distance = [
        [-2.0, -1.0, 0.0, -1.0, -2.0],
        [-3.0, -2.0, -1.0, 0.0, -1.0],
        [-4.0, -3.0, -2.0, -1.0, 0.0f32],
    ];
    let slopes = [0.25, 0.0625, 0.015625, 0.00390625f32];
    for h in 0..8 {
        for (r, row) in distance.iter().enumerate() {
            let expected: Vec<f32> = match slopes.get(h) {
                Some(slope) => row.iter().map(|d| d * slope).collect(),
                None => vec![0.0; 5],
            };
            assert_bits(bias.row(h, r), &expected, &format!("head {h}, row {r}"));
        }
    }
}

/// docs/semantics.md, "Cache" checks: `second` served from `first`'s cached tensor has the distance
/// part `expected_distance` (value / slope, per head) and equals a fresh computation.
fn cache_check(
    gpu: &GpuDevice,
    first: (usize, usize),
    second: (usize, usize),
    expected_distance: &[&[f32]],
    wrong_slice: &str,
) {
    let mut alibi = common::module(gpu, AlibiConfig::new(4).total_heads(6));
    common::forward(&mut alibi, first.0, first.1);
    let before = alibi.cache_stats();
    let bias = common::forward(&mut alibi, second.0, second.1);
    let after = alibi.cache_stats();
    assert_eq!(
        (after.hits, after.misses),
        (before.hits + 1, before.misses),
        "{second:?} after {first:?} must be served from the cache, or this checks nothing"
    );
    for (h, slope) in alibi.slopes().to_vec().into_iter().enumerate() {
        for (r, expected) in expected_distance.iter().enumerate() {
            let part: Vec<f32> = bias.row(h, r).iter().map(|v| v / slope).collect();
            assert_eq!(
                &part[..],
                *expected,
                "{second:?} after {first:?}, head {h}, row {r} (the wrong top-left slice \
                 gives {wrong_slice})"
            );
        }
    }
    common::assert_same(
        &bias,
        &common::expected(&alibi, second.0, second.1),
        &format!("{second:?} after {first:?}"),
    );
}

#[test]
fn cache_check_4x4_then_1x3() {
    let Some(gpu) = common::gpu() else { return };
    cache_check(gpu, (4, 4), (1, 3), &[&[-2.0, -1.0, 0.0]], "[[0, -1, -2]]");
}

#[test]
fn cache_check_3x5_then_2x3() {
    let Some(gpu) = common::gpu() else { return };
    cache_check(
        gpu,
        (3, 5),
        (2, 3),
        &[&[-1.0, 0.0, -1.0], &[-2.0, -1.0, 0.0]],
        "[[-2, -1, 0], [-3, -2, -1]]",
    );
}

#[test]
fn decode_step_after_prefill_is_the_last_query_row() {
    let Some(gpu) = common::gpu() else { return };
    let mut alibi = common::module(gpu, AlibiConfig::new(8));
    let prefill = common::forward(&mut alibi, 16, 16);
    let hits = alibi.cache_stats().hits;
    let step = common::forward(&mut alibi, 1, 16);
    assert_eq!(alibi.cache_stats().hits, hits + 1, "(1, 16) is a cache hit");
    let last_distances: Vec<f32> = (0..16).map(|k| k as f32 - 15.0).collect();
    for (h, slope) in alibi.slopes().iter().enumerate() {
        assert_bits(
            step.row(h, 0),
            prefill.row(h, 15),
            &format!("head {h}: (1, 16) after (16, 16) must be the LAST query row"),
        );
        let expected: Vec<f32> = last_distances.iter().map(|d| d * slope).collect();
        assert_bits(step.row(h, 0), &expected, &format!("head {h}"));
    }
    common::assert_same(&step, &common::expected(&alibi, 1, 16), "(1, 16)");
}

#[test]
fn get_bias_is_the_uncached_distance_matrix() {
    let Some(gpu) = common::gpu() else { return };
    let mut alibi = common::module(gpu, AlibiConfig::new(3).total_heads(5));
    common::forward(&mut alibi, 8, 8);
    let stats = alibi.cache_stats();
    for (i, j) in [
        (1, 1),
        (3, 5),
        (5, 3),
        (4, 4),
        (1, 7),
        (7, 1),
        (2, 9),
        (8, 8),
    ] {
        let view = alibi.get_bias(i, j).unwrap();
        assert_eq!(view.shape(), [1, i, j]);
        let host = common::read(&alibi, &view);
        assert_eq!(host.shape(), [1, i, j]);
        let mut expected = Vec::new();
        for r in 0..i {
            for k in 0..j {
                expected.push(distance(i, j, r, k));
            }
        }
        assert_bits(host.as_slice(), &expected, &format!("get_bias({i}, {j})"));
        common::assert_same(
            &host,
            &reference::get_bias(i, j).unwrap(),
            &format!("get_bias({i}, {j})"),
        );
    }
    assert_eq!(
        alibi.cache_stats(),
        stats,
        "get_bias neither reads nor fills the cache"
    );
}

#[test]
fn more_queries_than_keys_sit_at_negative_positions() {
    let Some(gpu) = common::gpu() else { return };
    let slopes = [0.0625, 0.00390625];
    let mut alibi = common::module(gpu, AlibiConfig::new(2).total_heads(3));
    for (i, j) in [(5, 2), (3, 1), (9, 4), (300, 7)] {
        let bias = common::forward(&mut alibi, i, j);
        assert_bits(
            bias.as_slice(),
            &spec_bias(&slopes, 3, i, j),
            &format!("fresh ({i}, {j})"),
        );
    }
    // Query row 0 of (5, 2) sits at position -3.
    let bias = common::forward(&mut alibi, 5, 2);
    assert_bits(
        bias.row(0, 0),
        &[-3.0 * 0.0625, -4.0 * 0.0625],
        "row 0 of (5, 2)",
    );
    // The same requests served from a larger cached tensor.
    let mut cached = common::module(gpu, AlibiConfig::new(2).total_heads(3));
    common::forward(&mut cached, 400, 400);
    let hits = cached.cache_stats().hits;
    for (i, j) in [(5, 2), (3, 1), (9, 4), (300, 7)] {
        let bias = common::forward(&mut cached, i, j);
        assert_bits(
            bias.as_slice(),
            &spec_bias(&slopes, 3, i, j),
            &format!("cached ({i}, {j})"),
        );
    }
    assert_eq!(cached.cache_stats().hits, hits + 4);
}

#[test]
fn empty_requests_give_empty_tensors() {
    let Some(gpu) = common::gpu() else { return };
    let mut alibi = common::module(gpu, AlibiConfig::new(4).total_heads(6));
    common::forward(&mut alibi, 4, 4);
    let stats = alibi.cache_stats();
    for (i, j) in [(0, 5), (5, 0), (0, 0), (0, 1 << 24), (1 << 24, 0)] {
        let view = alibi.forward(i, j).unwrap();
        assert_eq!(view.shape(), [6, i, j]);
        assert!(view.is_empty(), "forward({i}, {j})");
        assert_eq!(view.len(), 0);
        assert!(view.buffer().is_none() && view.binding().is_none());
        let host = common::read(&alibi, &view);
        assert_eq!(host.shape(), [6, i, j]);
        assert!(host.is_empty());

        let distances = alibi.get_bias(i, j).unwrap();
        assert_eq!(distances.shape(), [1, i, j]);
        assert!(distances.is_empty());

        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        let encoded = alibi.encode_forward(&mut encoder, i, j).unwrap();
        assert_eq!(encoded.shape(), [6, i, j]);
        assert!(encoded.is_empty());
        gpu.queue.submit([encoder.finish()]);

        let mut out = vec![1.0; 3];
        pollster::block_on(alibi.read_into(&view, &mut out)).unwrap();
        assert!(out.is_empty(), "read_into clears the vector");
    }
    assert_eq!(
        alibi.cache_stats(),
        stats,
        "empty requests touch no cache entry"
    );
}

#[test]
fn max_bias_8_module_equals_the_paper_module() {
    let Some(gpu) = common::gpu() else { return };
    for heads in [1, 2, 3, 5, 8, 12, 16, 24, 33] {
        let mut paper = common::module(gpu, AlibiConfig::new(heads).total_heads(heads + 1));
        let mut ggml = common::module(
            gpu,
            AlibiConfig::new(heads).total_heads(heads + 1).max_bias(8.0),
        );
        assert_eq!(ggml.slopes(), paper.slopes(), "heads = {heads}");
        assert_eq!(ggml.slopes(), &closed_form_slopes(heads)[..]);
        let a = common::forward(&mut paper, 5, 7);
        let b = common::forward(&mut ggml, 5, 7);
        common::assert_same(&b, &a, &format!("heads = {heads}"));
        common::assert_same(&a, &common::expected(&paper, 5, 7), "paper vs reference");
    }
}

#[test]
fn custom_slopes_module_uses_them_as_given() {
    let Some(gpu) = common::gpu() else { return };
    let slopes = vec![0.5, 0.3, 1.0, 3.0, 0.0, 1.0e-3, 7.25];
    let mut alibi = common::module(
        gpu,
        AlibiConfig::new(slopes.len())
            .total_heads(9)
            .custom_slopes(slopes.clone()),
    );
    assert_eq!(alibi.slopes(), &slopes[..]);
    assert_eq!(
        common::module(
            gpu,
            AlibiConfig::new(2).slopes(SlopeSource::Custom(vec![0.75, 2.0]))
        )
        .slopes(),
        &[0.75, 2.0]
    );
    for (i, j) in [(4, 6), (6, 4), (1, 33), (17, 17)] {
        let bias = common::forward(&mut alibi, i, j);
        let expected = spec_bias(&slopes, 9, i, j);
        assert_bits(bias.as_slice(), &expected, &format!("({i}, {j})"));
        common::assert_same(&bias, &common::expected(&alibi, i, j), "reference");
    }
}

#[test]
fn comparisons_tell_the_sign_of_zero_apart() {
    // The harness itself: a padding head is +0.0, a head with slope 0 is -0.0 off the
    // diagonal. Equal under ==, different bits: the comparison must see it.
    let padded = reference::forward(&[0.0], 2, 1, 2).unwrap();
    let zero_slope = reference::forward(&[0.0, 0.0], 2, 1, 2).unwrap();
    assert_eq!(padded.as_slice(), zero_slope.as_slice());
    let difference = common::mismatch(&padded, &zero_slope).expect("+0.0 is not -0.0");
    assert!(
        difference.contains("index 2 (h 1, r 0, k 0)"),
        "{difference}"
    );
    assert!(common::mismatch(&padded, &padded).is_none());
}
