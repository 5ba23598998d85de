//! The engine layout: dense `[total_heads, i, j]` biases (`forward_dense`, `encode_into`,
//! `write_into`) and dense batches at custom positions, compared bit for bit with the
//! oracle on every generation path, on windowed devices and on a device without
//! `SHADER_F16`, fresh and from the cache, with the caller's bytes around them untouched;
//! and every refusal typed, before anything is written, the cache left as it was.

mod common;

use std::collections::HashMap;

use alibi_wgpu::{
    reference, AlibiConfig, AlibiPositionalBias, BiasDtype, GenerationPath, Positions,
};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;

/// Where a module lives: the shared device, a windowed one, or one without `SHADER_F16`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Device {
    Shared,
    Windowed,
    NoF16,
}

fn module(device: Device, config: AlibiConfig) -> AlibiPositionalBias {
    let gpu = common::gpu().expect("checked by the caller");
    match device {
        Device::Shared => common::module(gpu, config),
        Device::Windowed => common::windowed_module(gpu, Some(256), config),
        Device::NoF16 => {
            let (device, queue) = common::no_f16_device();
            AlibiPositionalBias::with_config(device, queue, config).expect("a no-f16 module")
        }
    }
}

use common::oracle_bytes as expected;

/// A case: the module, a cached prefill (or none), the request, where it goes.
#[derive(Clone, Debug)]
struct Case {
    device: Device,
    path: GenerationPath,
    dtype: BiasDtype,
    causal: bool,
    prefill: Option<(usize, usize)>,
    i: usize,
    j: usize,
    offset_words: u64,
    into: bool,
}

fn cases(paths: Vec<GenerationPath>) -> impl Strategy<Value = Case> {
    let devices = prop::sample::select(vec![Device::Shared, Device::Windowed, Device::NoF16]);
    let dtypes = prop::sample::select(vec![BiasDtype::F32, BiasDtype::F16]);
    (
        (devices, prop::sample::select(paths), dtypes, any::<bool>()),
        prop::option::of((0usize..24, 0usize..24)),
        // Keys for rows packed into workgroups, and for rows of workgroups of their own, of
        // 128 lanes or 256, one or more.
        (
            0usize..20,
            prop_oneof![0usize..20, 240usize..300, 1000usize..1030, 2040usize..2060],
            0u64..12,
            any::<bool>(),
        ),
    )
        .prop_map(
            |((device, path, dtype, causal), prefill, (i, j, offset_words, into))| {
                // The windowed device's bindings hold rows of a few dozen keys.
                let j = if device == Device::Windowed {
                    j % 20
                } else {
                    j
                };
                Case {
                    device,
                    path,
                    dtype,
                    causal,
                    // A prefill that covers the request, when there is one.
                    prefill: prefill.map(|(a, b)| (i.max(a), j.max(b))),
                    i,
                    j,
                    offset_words,
                    into,
                }
            },
        )
}

#[test]
fn dense_biases_equal_the_oracle_fresh_and_from_the_cache() {
    let Some(gpu) = common::gpu() else { return };
    let modules: std::cell::RefCell<HashMap<_, AlibiPositionalBias>> = Default::default();
    let mut runner = TestRunner::new(common::proptest_config(96));
    runner
        .run(&cases(common::generation_paths(gpu)), |case| {
            let key = (case.device, case.path, case.dtype, case.causal);
            let mut modules = modules.borrow_mut();
            let alibi = modules.entry(key).or_insert_with(|| {
                let config = AlibiConfig::new(3)
                    .total_heads(5)
                    .causal(case.causal)
                    .dtype(case.dtype)
                    .generation_path(case.path);
                module(case.device, config)
            });
            alibi.clear_cache();
            if let Some((a, b)) = case.prefill {
                alibi.forward(a, b).unwrap();
            }
            let hits = alibi.cache_stats().hits;
            let (i, j) = (case.i, case.j);
            let tensor = expected(alibi, i, j);
            let context = format!("{case:?}");
            // Twice, in both forms: the second from what the first kept (a dense entry,
            // where the first copied a span per row).
            for into in [case.into, !case.into] {
                if into {
                    let offset = case.offset_words * 4;
                    let size = offset + tensor.len() as u64 + 10;
                    let usage = wgpu::BufferUsages::STORAGE
                        | wgpu::BufferUsages::COPY_DST
                        | wgpu::BufferUsages::COPY_SRC;
                    let target = common::patterned(alibi.device(), size, usage);
                    let mut encoder = alibi.device().create_command_encoder(&Default::default());
                    let written = alibi
                        .encode_into(&mut encoder, i, j, &target, offset)
                        .unwrap();
                    alibi.queue().submit([encoder.finish()]);
                    pollster::block_on(written.check()).unwrap();
                    common::check_around(
                        &common::read_all(alibi, &target),
                        offset as usize,
                        &tensor,
                        &context,
                    );
                } else {
                    let dense = alibi.forward_dense(i, j).unwrap();
                    pollster::block_on(dense.check()).unwrap();
                    assert_eq!(dense.shape(), &[5, i, j]);
                    assert_eq!(dense.byte_size(), tensor.len() as u64);
                    let bytes = common::read_all(alibi, dense.buffer());
                    assert!(bytes[..tensor.len()] == tensor[..], "{context}");
                }
            }
            let hit = case.prefill.is_some() && i > 0 && j > 0;
            assert_eq!(
                alibi.cache_stats().hits,
                hits + 2 * u64::from(hit),
                "{context}"
            );
            Ok(())
        })
        .unwrap();
}

#[test]
fn decode_steps_are_dense_copies_of_the_prefill() {
    let Some(gpu) = common::gpu() else { return };
    for path in common::generation_paths(gpu) {
        for dtype in [BiasDtype::F32, BiasDtype::F16] {
            let config = AlibiConfig::new(8)
                .causal(true)
                .dtype(dtype)
                .generation_path(path);
            let mut alibi = common::module(gpu, config);
            alibi.forward(37, 37).unwrap();
            let prefill = alibi.forward_dense(37, 37).unwrap();
            assert_eq!(
                common::read_all(&alibi, prefill.buffer())[..],
                expected(&alibi, 37, 37)[..]
            );
            for t in 38..=45 {
                // The cache grows for a decode loop; each step is a dense copy after it.
                alibi.forward(1, t).unwrap();
                let hits = alibi.cache_stats().hits;
                let step = alibi.forward_dense(1, t).unwrap();
                assert_eq!(alibi.cache_stats().hits, hits + 1);
                let bytes = common::read_all(&alibi, step.buffer());
                let tensor = expected(&alibi, 1, t);
                assert!(
                    bytes[..tensor.len()] == tensor[..],
                    "{path:?} {dtype} step {t}"
                );
            }
        }
    }
}

/// The kernel's rows in workgroups of either size, one and several to a row (`plan.rs`'s
/// `row_kind`): f32 rows of 251, 512 and 1,023 units take one, two and four workgroups of
/// 256 lanes, 516 units five of 128; f16 rows of 256 and 512 units take 256 lanes, of 126
/// and 258 units 128.
#[test]
fn long_rows_in_workgroups_of_either_size() {
    let Some(gpu) = common::gpu() else { return };
    for dtype in [BiasDtype::F32, BiasDtype::F16] {
        let config = AlibiConfig::new(3)
            .dtype(dtype)
            .generation_path(GenerationPath::Shader);
        let mut alibi = common::module(gpu, config);
        alibi.set_cache_budget(0);
        for j in [1001, 2045, 2061, 4090] {
            let dense = alibi.forward_dense(3, j).unwrap();
            let bytes = common::read_all(&alibi, dense.buffer());
            let tensor = expected(&alibi, 3, j);
            assert!(bytes[..tensor.len()] == tensor[..], "{dtype} [3, 3, {j}]");
        }
    }
}

#[test]
fn host_writes_land_at_the_offset_and_nowhere_else() {
    let Some(gpu) = common::gpu() else { return };
    if !common::generation_paths(gpu).contains(&GenerationPath::HostMapped) {
        return;
    }
    for dtype in [BiasDtype::F32, BiasDtype::F16] {
        let alibi = common::module(gpu, AlibiConfig::new(4).total_heads(5).dtype(dtype));
        // 5 x 3 x 3 f16 elements: odd, the last word shared with the caller.
        for (i, j, offset) in [(3, 3, 8), (2, 7, 0), (1, 1, 16)] {
            let tensor = expected(&alibi, i, j);
            let usage = wgpu::BufferUsages::MAP_WRITE | wgpu::BufferUsages::COPY_SRC;
            let target = common::patterned(alibi.device(), offset + tensor.len() as u64 + 6, usage);
            alibi.write_into(i, j, &target, offset).unwrap();
            let context = format!("write_into({i}, {j}) at {offset}, {dtype}");
            common::check_around(
                &common::read_all(&alibi, &target),
                offset as usize,
                &tensor,
                &context,
            );
        }
    }
}

#[test]
fn left_padded_batches_give_each_row_its_positions() {
    let Some(_) = common::gpu() else { return };
    // Hugging Face's BLOOM: positions from the attention mask, cumsum - 1, 0 where padded.
    let masks = [[0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [0, 0, 0, 0, 1]];
    let positions: Vec<i32> = masks
        .iter()
        .flat_map(|mask| {
            let mut seen = 0;
            mask.iter()
                .map(|&m| {
                    seen += m;
                    (seen - 1).max(0) * m
                })
                .collect::<Vec<_>>()
        })
        .collect();
    for device in [Device::Shared, Device::Windowed, Device::NoF16] {
        for (dtype, causal) in [(BiasDtype::F32, false), (BiasDtype::F16, true)] {
            let config = AlibiConfig::new(3)
                .total_heads(4)
                .dtype(dtype)
                .causal(causal);
            let alibi = module(device, config);
            let batched = Positions::batched(&positions, 3);
            let dense = alibi.forward_positions_dense(batched, batched).unwrap();
            assert_eq!(dense.shape(), &[3, 4, 5, 5]);
            let mut tensor = Vec::new();
            for row in positions.chunks(5) {
                let item = reference::forward_positions(alibi.slopes(), 4, row, row, causal);
                tensor.extend(common::element_bytes(item.unwrap().as_slice(), dtype));
            }
            let bytes = common::read_all(&alibi, dense.buffer());
            assert!(bytes[..tensor.len()] == tensor[..], "{device:?} {dtype}");
            // Shared sides: a batch of one.
            let shared = Positions::shared(&positions[..5]);
            let one = alibi.forward_positions_dense(shared, shared).unwrap();
            assert_eq!(one.shape(), &[1, 4, 5, 5]);
        }
    }
}

#[test]
fn packed_f16_rounds_ties_subnormals_and_saturation_exactly() {
    let Some(_) = common::gpu() else { return };
    // Slopes that put values on f16 ties, in the subnormal range and past 65504.
    let slopes = vec![0.25, 3.0 * 2f32.powi(-26), 1.0, 0.1, 2f32.powi(-20), 40.0];
    for device in [Device::NoF16, Device::Shared] {
        for causal in [false, true] {
            let config = AlibiConfig::new(slopes.len())
                .custom_slopes(slopes.clone())
                .dtype(BiasDtype::F16)
                .causal(causal)
                .generation_path(GenerationPath::Shader);
            let mut alibi = module(device, config);
            for (i, j) in [(3, 2100), (2, 70_001)] {
                let tensor = expected(&alibi, i, j);
                let dense = alibi.forward_dense(i, j).unwrap();
                let bytes = common::read_all(&alibi, dense.buffer());
                assert!(
                    bytes[..tensor.len()] == tensor[..],
                    "dense {device:?} ({i}, {j})"
                );
                // The strided kernel stores the same bits.
                let view = alibi.forward(i, j).unwrap();
                let stored = pollster::block_on(alibi.read_f16(&view)).unwrap();
                let got: Vec<u8> = stored
                    .as_slice()
                    .iter()
                    .flat_map(|v| v.to_bits().to_le_bytes())
                    .collect();
                assert!(got == tensor, "forward {device:?} ({i}, {j})");
            }
        }
    }
}

#[test]
fn empty_shapes_are_empty_and_record_nothing() {
    let Some(gpu) = common::gpu() else { return };
    let mut alibi = common::module(gpu, AlibiConfig::new(2));
    for (i, j) in [(0, 5), (5, 0), (0, 0)] {
        let dense = alibi.forward_dense(i, j).unwrap();
        assert!(dense.is_empty() && dense.byte_size() == 0);
        assert_eq!(dense.shape(), &[2, i, j]);
        let tiny = alibi.device().create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: 4,
            usage: wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = alibi.device().create_command_encoder(&Default::default());
        alibi.encode_into(&mut encoder, i, j, &tiny, 0).unwrap();
    }
}
