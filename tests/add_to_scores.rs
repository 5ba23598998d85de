#![cfg(not(target_arch = "wasm32"))]
//! `add_to_scores` (issue 9, item 4) against an oracle written here from the reference's
//! `bias_value` and `causal_bias_value`, bit for bit: random shapes, padding heads, more
//! queries than keys, scales, causal or not, f32 and (where the device has `SHADER_F16`)
//! f16 scores, scores split into binding windows, and the errors.
//!
//! The scales are powers of two, so `score * scale` is exact and the result is the same
//! whether the device fuses it with the addition or not (as the documentation says).

mod common;

use alibi_wgpu::reference::{bias_value, causal_bias_value};
use alibi_wgpu::{AlibiConfig, AlibiError, AlibiPositionalBias, AttentionScores, BiasDtype};
use common::Rng;
use half::f16;

const SCALES: [f32; 3] = [1.0, 0.125, 2.0];

/// What a score becomes: `score * scale + bias` in f32, or `-inf` for a masked key.
fn expected_value(
    module: &AlibiPositionalBias,
    score: f32,
    scale: f32,
    h: usize,
    q: i64,
    k: i64,
) -> f32 {
    let slope = module.slopes().get(h).copied();
    let bias = match (slope, module.causal()) {
        (Some(slope), false) => bias_value(slope, q, k),
        (Some(slope), true) => causal_bias_value(slope, q, k),
        (None, true) if k > q => f32::NEG_INFINITY,
        (None, _) => 0.0,
    };
    if bias == f32::NEG_INFINITY {
        bias
    } else {
        score * scale + bias
    }
}

/// The oracle over `[batch, total_heads, i, j]` scores (as f32), through `round` (the
/// element type's rounding of an f32 result).
fn oracle(
    module: &AlibiPositionalBias,
    scores: &[f32],
    shape: AttentionScores,
    scale: f32,
) -> Vec<f32> {
    let [batch, heads, i, j] = shape.shape(module.total_heads());
    assert_eq!(scores.len(), batch * heads * i * j);
    let mut out = Vec::with_capacity(scores.len());
    for b in 0..batch {
        for h in 0..heads {
            for r in 0..i {
                let q = j as i64 - i as i64 + r as i64;
                for k in 0..j {
                    let score = scores[((b * heads + h) * i + r) * j + k];
                    out.push(expected_value(module, score, scale, h, q, k as i64));
                }
            }
        }
    }
    out
}

/// Random f32 scores with full 24-bit mantissas in [-128, 128), and signed zeros (a -0.0
/// score keeps its sign only if a padding head's bias is +0.0).
fn f32_scores(rng: &mut Rng, count: usize) -> Vec<f32> {
    (0..count)
        .map(|_| match rng.below(16) {
            0 => -0.0,
            1 => 0.0,
            _ => ((rng.next() >> 40) as i64 - (1 << 23)) as f32 / 65536.0,
        })
        .collect()
}

/// Random finite f16 scores: mostly small, some near the top of the range (so that a scale
/// of 2 saturates them).
fn f16_scores(rng: &mut Rng, count: usize) -> Vec<f16> {
    (0..count)
        .map(|_| {
            if rng.below(16) == 0 {
                return f16::NEG_ZERO;
            }
            let magnitude = if rng.below(8) == 0 { 60_000.0 } else { 64.0 };
            let unit = rng.below(1 << 20) as f32 / (1 << 19) as f32 - 1.0;
            f16::from_f32(unit * magnitude)
        })
        .collect()
}

/// A STORAGE buffer holding `bytes` (padded to a word), readable back.
fn score_buffer(device: &wgpu::Device, queue: &wgpu::Queue, bytes: &[u8]) -> wgpu::Buffer {
    let buffer = common::scoped(device, "creating the scores", || {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("test scores"),
            size: (bytes.len() as u64).next_multiple_of(4),
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    });
    let mut padded = bytes.to_vec();
    padded.resize(buffer.size() as usize, 0);
    queue.write_buffer(&buffer, 0, &padded);
    buffer
}

/// Runs `add_to_scores` once (or `times` times in one encoder) on `bytes` and reads back
/// the buffer (its padding included).
fn add(
    module: &AlibiPositionalBias,
    bytes: &[u8],
    shape: AttentionScores,
    times: usize,
) -> Vec<u8> {
    let (device, queue) = (module.device(), module.queue());
    let buffer = score_buffer(device, queue, bytes);
    let mut encoder = device.create_command_encoder(&Default::default());
    for _ in 0..times {
        module
            .add_to_scores(&mut encoder, &buffer, shape)
            .unwrap_or_else(|e| panic!("add_to_scores({shape:?}): {e}"));
    }
    common::scoped(device, "submitting", || queue.submit([encoder.finish()]));
    common::read_buffer(device, queue, &buffer)
}

/// The first difference between `actual` and `expected` bits, with its `(b, h, r, k)`.
#[track_caller]
fn assert_bits<T: Copy + std::fmt::Debug>(
    actual: &[T],
    expected: &[T],
    bits: impl Fn(T) -> u32,
    [_, heads, i, j]: [usize; 4],
    context: &str,
) {
    assert_eq!(actual.len(), expected.len(), "{context}");
    if let Some(n) = (0..actual.len()).find(|&n| bits(actual[n]) != bits(expected[n])) {
        let (b, h, r, k) = (n / (heads * i * j), n / (i * j) % heads, n / j % i, n % j);
        panic!(
            "{context}: first difference at (b {b}, h {h}, r {r}, k {k}): got {:?}, expected {:?}",
            actual[n], expected[n]
        );
    }
}

/// Checks one random case of `module` for both element types the device has.
fn check_case(module: &AlibiPositionalBias, rng: &mut Rng, shape: AttentionScores, scale: f32) {
    let dims = shape.shape(module.total_heads());
    let count = dims.iter().product();
    let context = format!(
        "{dims:?}, scale {scale}, causal {}, heads {}, module path {:?}",
        module.causal(),
        module.heads(),
        module.generation_path()
    );
    let scores = f32_scores(rng, count);
    let got = add(module, bytemuck::cast_slice(&scores), shape.scale(scale), 1);
    let got: &[f32] = bytemuck::cast_slice(&got);
    let expected = oracle(module, &scores, shape, scale);
    assert_bits(
        got,
        &expected,
        f32::to_bits,
        dims,
        &format!("f32 {context}"),
    );

    let f16_shape = shape.scale(scale).dtype(BiasDtype::F16);
    if !common::has_f16(module.device()) {
        return;
    }
    let scores = f16_scores(rng, count);
    let got = add(module, bytemuck::cast_slice(&scores), f16_shape, 1);
    let got: &[f16] = &bytemuck::cast_slice(&got)[..count];
    let widened: Vec<f32> = scores.iter().map(|s| s.to_f32()).collect();
    let expected: Vec<f16> = oracle(module, &widened, shape, scale)
        .into_iter()
        .map(common::spec_f16)
        .collect();
    assert_bits(
        got,
        &expected,
        |v| u32::from(v.to_bits()),
        dims,
        &format!("f16 {context}"),
    );
}

fn random_shape(rng: &mut Rng) -> AttentionScores {
    let batch = 1 + rng.below(3);
    let i = if rng.below(4) == 0 {
        1
    } else {
        1 + rng.below(40)
    };
    AttentionScores::new(batch, i, 1 + rng.below(40))
}

#[test]
fn random_scores_match_the_oracle_bit_for_bit() {
    let Some(gpu) = common::gpu() else { return };
    let mut rng = Rng::seeded(9);
    for case in 0..24 {
        let heads = 1 + rng.below(8);
        let config = AlibiConfig::new(heads)
            .total_heads(heads + rng.below(4))
            .causal(case % 2 == 1);
        let module = common::module(gpu, config);
        for _ in 0..2 {
            let shape = random_shape(&mut rng);
            let scale = SCALES[rng.below(3)];
            check_case(&module, &mut rng, shape, scale);
        }
    }
}

#[test]
fn more_queries_than_keys_and_single_queries() {
    let Some(gpu) = common::gpu() else { return };
    let mut rng = Rng::seeded(4);
    for causal in [false, true] {
        let module = common::module(gpu, AlibiConfig::new(3).total_heads(5).causal(causal));
        for (batch, i, j) in [
            (2, 9, 4),
            (1, 5, 1),
            (3, 1, 7),
            (1, 1, 1),
            (2, 1, 33),
            (1, 33, 2),
        ] {
            for scale in SCALES {
                check_case(&module, &mut rng, AttentionScores::new(batch, i, j), scale);
            }
        }
    }
}

#[test]
fn scores_larger_than_a_binding_are_updated_in_windows() {
    let Some(gpu) = common::gpu() else { return };
    let mut rng = Rng::seeded(12);
    // 512-byte windows: whole batch items, heads, or a few rows per dispatch.
    for causal in [false, true] {
        let config = AlibiConfig::new(5).total_heads(6).causal(causal);
        let module = common::windowed_module(gpu, Some(512), config);
        for (batch, i, j) in [(3, 2, 3), (2, 5, 7), (2, 9, 31), (1, 40, 50), (3, 3, 1)] {
            check_case(&module, &mut rng, AttentionScores::new(batch, i, j), 0.125);
        }
    }
}

#[test]
fn zero_scores_get_the_modules_own_bias_and_calls_accumulate() {
    let Some(gpu) = common::gpu() else { return };
    for causal in [false, true] {
        let mut module = common::module(gpu, AlibiConfig::new(4).total_heads(6).causal(causal));
        let (i, j) = (7, 10);
        let bias = common::forward(&mut module, i, j);
        let zeros = vec![0.0f32; 2 * 6 * i * j];
        let shape = AttentionScores::new(2, i, j);
        let got = add(&module, bytemuck::cast_slice(&zeros), shape, 1);
        let got: &[f32] = bytemuck::cast_slice(&got);
        for (b, batch) in got.chunks(6 * i * j).enumerate() {
            let context = format!("causal {causal}, batch item {b}");
            assert_bits(batch, bias.as_slice(), f32::to_bits, [1, 6, i, j], &context);
        }
        // Two updates recorded in one encoder run in order: bias + bias.
        let twice = add(&module, bytemuck::cast_slice(&zeros), shape, 2);
        let twice: &[f32] = bytemuck::cast_slice(&twice);
        let doubled: Vec<f32> = bias.as_slice().iter().map(|v| v + v).collect();
        assert_bits(
            &twice[..6 * i * j],
            &doubled,
            f32::to_bits,
            [1, 6, i, j],
            "twice",
        );
    }
}

#[test]
fn f16_scores_need_shader_f16_and_saturate_otherwise_round_to_nearest_even() {
    let Some(gpu) = common::gpu() else { return };
    let module = common::module(gpu, AlibiConfig::new(1).custom_slopes(vec![0.5]));
    // 1 query over 4 keys: biases -1.5, -1, -0.5, 0.
    let shape = AttentionScores::new(1, 1, 4)
        .scale(2.0)
        .dtype(BiasDtype::F16);
    let scores: Vec<f16> = [40_000.0, 1025.0, -40_000.0, 1027.0]
        .into_iter()
        .map(f16::from_f32)
        .collect();
    if !common::has_f16(module.device()) {
        let buffer = score_buffer(
            module.device(),
            module.queue(),
            bytemuck::cast_slice(&scores),
        );
        let mut encoder = module.device().create_command_encoder(&Default::default());
        match module.add_to_scores(&mut encoder, &buffer, shape) {
            Err(AlibiError::Unsupported { what, .. }) => assert_eq!(what, "f16 scores"),
            other => panic!("f16 scores without SHADER_F16: {other:?}"),
        }
        // Refused whatever the shape, the empty one included.
        let empty = AttentionScores::new(0, 1, 4).dtype(BiasDtype::F16);
        let refused = module.add_to_scores(&mut encoder, &buffer, empty);
        assert!(
            matches!(refused, Err(AlibiError::Unsupported { .. })),
            "{refused:?}"
        );
        return;
    }
    let got = add(&module, bytemuck::cast_slice(&scores), shape, 1);
    let got: Vec<f32> = bytemuck::cast_slice::<u8, f16>(&got)
        .iter()
        .map(|v| v.to_f32())
        .collect();
    // 80000 - 1.5 and -80000.5 saturate; 2050 - 1 = 2049 lies halfway between the f16
    // neighbours 2048 and 2050: even wins; 2054 is an f16.
    assert_eq!(got, [65504.0, 2048.0, -65504.0, 2054.0]);
}

#[test]
fn errors_and_empty_shapes() {
    let Some(gpu) = common::gpu() else { return };
    let module = common::module(gpu, AlibiConfig::new(2).total_heads(3));
    let device = module.device();
    let make = |size, usage| {
        common::scoped(device, "a buffer", || {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: None,
                size,
                usage,
                mapped_at_creation: false,
            })
        })
    };
    let storage = make(2 * 3 * 4 * 5 * 4, wgpu::BufferUsages::STORAGE);
    let copy_only = make(1 << 12, wgpu::BufferUsages::COPY_DST);
    let odd = make(18, wgpu::BufferUsages::STORAGE);
    let mut encoder = device.create_command_encoder(&Default::default());
    let mut call = |buffer, shape| module.add_to_scores(&mut encoder, buffer, shape);

    assert!(
        call(&storage, AttentionScores::new(2, 4, 5)).is_ok(),
        "exactly the room"
    );
    match call(&storage, AttentionScores::new(3, 4, 5)) {
        Err(AlibiError::TargetTooSmall {
            heads: 9,
            i: 4,
            j: 5,
            needed: 720,
            size: 480,
            what,
        }) => assert!(what.contains("scores"), "{what}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        call(&copy_only, AttentionScores::new(1, 4, 5)),
        Err(AlibiError::TargetUsage {
            needed: wgpu::BufferUsages::STORAGE,
            ..
        })
    ));
    assert!(matches!(
        call(
            &storage,
            AttentionScores::new(1, alibi_wgpu::MAX_SEQUENCE + 1, 1)
        ),
        Err(AlibiError::SequenceTooLong { what: "i", .. })
    ));
    assert!(matches!(
        call(&storage, AttentionScores::new(1 << 40, 1 << 10, 1 << 10)),
        Err(AlibiError::TooLarge {
            limit_name: "max_buffer_size",
            ..
        })
    ));
    assert!(matches!(
        call(&storage, AttentionScores::new(usize::MAX, 1 << 20, 1 << 20)),
        Err(AlibiError::TooLarge {
            bytes: u64::MAX,
            ..
        })
    ));
    // Empty tensors are no-ops: no buffer check, nothing recorded.
    for shape in [(0, 4, 5), (2, 0, 5), (2, 4, 0)] {
        let (batch, i, j) = shape;
        assert!(
            call(&copy_only, AttentionScores::new(batch, i, j)).is_ok(),
            "{shape:?}"
        );
    }
    if common::has_f16(device) {
        // 1 x 3 x 1 x 3 f16 is 18 bytes: a binding is whole words, so 20 are needed.
        let f16_shape = AttentionScores::new(1, 1, 3).dtype(BiasDtype::F16);
        assert!(matches!(
            call(&odd, f16_shape),
            Err(AlibiError::TargetTooSmall {
                needed: 20,
                size: 18,
                ..
            })
        ));
    }
    common::scoped(device, "submitting", || {
        module.queue().submit([encoder.finish()])
    });

    // A row that no binding window holds.
    let narrow = common::windowed_module(gpu, Some(300), AlibiConfig::new(1));
    let mut encoder = device.create_command_encoder(&Default::default());
    let wide = make(4 * 100, wgpu::BufferUsages::STORAGE);
    assert!(matches!(
        narrow.add_to_scores(&mut encoder, &wide, AttentionScores::new(1, 1, 100)),
        Err(AlibiError::RowTooLarge {
            j: 100,
            bytes: 400,
            ..
        })
    ));
}
