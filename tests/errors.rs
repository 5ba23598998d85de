//! Every refusal is a typed `AlibiError` naming the offending value and the limit, returned
//! before any GPU work, never a panic; and the limits themselves are accepted.
// Native only: the browser has its own suite, tests/web.rs.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use alibi_wgpu::{
    open_device, reference, AlibiConfig, AlibiError, AlibiPositionalBias, GpuDevice, MAX_HEADS,
};

/// The error building a module from `config` gives (the module has no `Debug`).
fn build_error(gpu: &GpuDevice, config: AlibiConfig) -> AlibiError {
    let description = format!("{config:?}");
    match AlibiPositionalBias::on_device(gpu, config) {
        Ok(_) => panic!("{description} must be refused"),
        Err(error) => error,
    }
}

fn caller_build_error(gpu: &GpuDevice, heads: usize, total_heads: Option<usize>) -> AlibiError {
    match AlibiPositionalBias::new(&gpu.device, &gpu.queue, heads, total_heads) {
        Ok(_) => panic!("heads {heads}, total_heads {total_heads:?} must be refused"),
        Err(error) => error,
    }
}

#[track_caller]
fn assert_mentions(error: &AlibiError, parts: &[&str]) {
    let message = error.to_string();
    for part in parts {
        assert!(
            message.contains(part),
            "{error:?} displays as {message:?}, which does not mention {part:?}"
        );
    }
}

#[test]
fn zero_heads() {
    let Some(gpu) = common::gpu() else { return };
    for error in [
        build_error(gpu, AlibiConfig::new(0)),
        build_error(gpu, AlibiConfig::new(0).total_heads(4)),
        caller_build_error(gpu, 0, None),
        caller_build_error(gpu, 0, Some(3)),
    ] {
        assert!(matches!(error, AlibiError::ZeroHeads), "{error:?}");
        assert_mentions(&error, &["heads", "0"]);
    }
}

#[test]
fn total_heads_below_heads() {
    let Some(gpu) = common::gpu() else { return };
    for error in [
        build_error(gpu, AlibiConfig::new(4).total_heads(3)),
        caller_build_error(gpu, 4, Some(3)),
    ] {
        assert!(
            matches!(
                error,
                AlibiError::TotalHeadsBelowHeads {
                    heads: 4,
                    total_heads: 3
                }
            ),
            "{error:?}"
        );
        assert_mentions(&error, &["total_heads (3)", "heads (4)"]);
    }
    let error = build_error(gpu, AlibiConfig::new(8).total_heads(0));
    assert!(
        matches!(
            error,
            AlibiError::TotalHeadsBelowHeads {
                heads: 8,
                total_heads: 0
            }
        ),
        "{error:?}"
    );
}

#[test]
fn more_heads_than_supported() {
    let Some(gpu) = common::gpu() else { return };
    for heads in [MAX_HEADS + 1, 10 * MAX_HEADS] {
        let error = build_error(gpu, AlibiConfig::new(heads));
        assert!(
            matches!(
                error,
                AlibiError::TooManyHeads { what: "heads", count, limit }
                    if count == heads && limit == MAX_HEADS
            ),
            "{error:?}"
        );
        assert_mentions(&error, &[&heads.to_string(), &MAX_HEADS.to_string()]);
    }
}

#[test]
fn the_largest_head_counts_work() {
    let Some(gpu) = common::gpu() else { return };
    // Every slope the uniform holds.
    let mut alibi = common::module(gpu, AlibiConfig::new(MAX_HEADS));
    common::assert_same(
        &common::forward(&mut alibi, 2, 3),
        &common::expected(&alibi, 2, 3),
        "MAX_HEADS heads",
    );
    // Padding heads past the slope uniform are only zeros.
    let mut padded = common::module(gpu, AlibiConfig::new(5).total_heads(2 * MAX_HEADS + 3));
    common::assert_same(
        &common::forward(&mut padded, 3, 2),
        &common::expected(&padded, 3, 2),
        "padding beyond MAX_HEADS",
    );
}

#[test]
fn invalid_custom_slopes() {
    let Some(gpu) = common::gpu() else { return };
    let cases: [(Vec<f32>, usize); 6] = [
        (vec![0.5, f32::NAN], 1),
        (vec![f32::INFINITY], 0),
        (vec![0.5, 0.25, f32::NEG_INFINITY], 2),
        (vec![1.0e-40], 0),
        (vec![0.5, -1.0e-40], 1),
        (vec![f32::MIN_POSITIVE / 2.0, 0.5], 0),
    ];
    for (slopes, bad_head) in cases {
        let given = slopes[bad_head];
        let error = build_error(
            gpu,
            AlibiConfig::new(slopes.len()).custom_slopes(slopes.clone()),
        );
        match &error {
            AlibiError::InvalidSlope {
                head,
                value,
                reason,
            } => {
                assert_eq!(*head, bad_head, "{slopes:?}");
                assert!(
                    value.to_bits() == f64::from(given).to_bits()
                        || value.is_nan() && given.is_nan(),
                    "{error:?} for {given}"
                );
                assert!(!reason.is_empty());
            }
            other => panic!("{slopes:?}: expected InvalidSlope, got {other:?}"),
        }
        assert_mentions(&error, &[&format!("head {bad_head}")]);
    }
    // The smallest normal slope and zero are valid.
    let edge = vec![f32::MIN_POSITIVE, 0.0, f32::MAX];
    let alibi = common::module(gpu, AlibiConfig::new(3).custom_slopes(edge.clone()));
    assert_eq!(alibi.slopes(), &edge[..]);
}

#[test]
fn wrong_number_of_custom_slopes() {
    let Some(gpu) = common::gpu() else { return };
    for given in [0, 3, 5] {
        let error = build_error(gpu, AlibiConfig::new(4).custom_slopes(vec![0.5; given]));
        assert!(
            matches!(error, AlibiError::SlopeCount { heads: 4, given: g } if g == given),
            "{error:?}"
        );
        assert_mentions(&error, &[&format!("{given} custom slopes"), "4 heads"]);
    }
}

#[test]
fn invalid_max_bias() {
    let Some(gpu) = common::gpu() else { return };
    for max_bias in [0.0, -0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let error = build_error(gpu, AlibiConfig::new(4).max_bias(max_bias));
        match error {
            AlibiError::InvalidMaxBias(value) => assert!(
                value.to_bits() == max_bias.to_bits() || value.is_nan() && max_bias.is_nan(),
                "{value} for {max_bias}"
            ),
            other => panic!("max_bias {max_bias}: expected InvalidMaxBias, got {other:?}"),
        }
    }
    // A max_bias so large that the first slope is not a normal f32.
    let error = build_error(gpu, AlibiConfig::new(1).max_bias(1000.0));
    assert!(
        matches!(error, AlibiError::InvalidSlope { head: 0, .. }),
        "{error:?}"
    );
}

#[test]
fn sequences_longer_than_2_pow_24() {
    let Some(gpu) = common::gpu() else { return };
    let limit = 1usize << 24;
    let mut alibi = common::module(gpu, AlibiConfig::new(2));
    let target = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("unused target"),
        size: 1024,
        usage: wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    for (i, j, what, value) in [
        (limit + 1, 1, "i", limit + 1),
        (1, limit + 1, "j", limit + 1),
        (usize::MAX, 0, "i", usize::MAX),
        (0, usize::MAX, "j", usize::MAX),
    ] {
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        let errors = [
            alibi.forward(i, j).err(),
            alibi.get_bias(i, j).err(),
            alibi.encode_forward(&mut encoder, i, j).err(),
            alibi.encode_into(&mut encoder, i, j, &target, 0).err(),
        ];
        for error in errors {
            let error = error.unwrap_or_else(|| panic!("({i}, {j}) must be refused"));
            assert!(
                matches!(
                    error,
                    AlibiError::SequenceTooLong { what: w, value: v, limit: l }
                        if w == what && v == value && l == limit
                ),
                "({i}, {j}): {error:?}"
            );
            assert_mentions(&error, &[&value.to_string(), &limit.to_string()]);
        }
    }
    assert_eq!(alibi.cache_stats().misses, 0, "refused before the cache");
    assert!(matches!(
        reference::forward(&[0.5], 1, limit + 1, 1),
        Err(AlibiError::SequenceTooLong { what: "i", .. })
    ));
}

#[test]
fn the_longest_sequence_works() {
    let Some(gpu) = common::gpu() else { return };
    let j = 1usize << 24;
    let mut alibi = common::module(gpu, AlibiConfig::new(1));
    let limits = gpu.device.limits();
    let row_bytes = j as u64 * 4;
    match alibi.forward(1, j) {
        Ok(view) => common::assert_same(
            &common::read(&alibi, &view),
            &common::expected(&alibi, 1, j),
            "(1, 2^24)",
        ),
        // Only a device whose bindings cannot hold a 64 MiB row may refuse it.
        Err(AlibiError::RowTooLarge { bytes, limit, .. }) => {
            assert!(row_bytes > limits.max_storage_buffer_binding_size - 256);
            assert_eq!(
                (bytes, limit),
                (row_bytes, limits.max_storage_buffer_binding_size)
            );
        }
        Err(other) => panic!("(1, 2^24): {other}"),
    }
}

#[test]
fn tensors_above_max_buffer_size_are_too_large() {
    let Some(gpu) = common::gpu() else { return };
    let limit = gpu.device.limits().max_buffer_size;
    let (i, j) = (1usize, 1usize << 24);
    let head_bytes = (j * 4) as u64;
    let total_heads = (limit / head_bytes + 1) as usize;
    let bytes = total_heads as u64 * head_bytes;
    let mut alibi = common::module(gpu, AlibiConfig::new(1).total_heads(total_heads));
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    for error in [
        alibi.forward(i, j).err(),
        alibi.encode_forward(&mut encoder, i, j).err(),
    ] {
        let error = error.expect("a tensor above max_buffer_size must be refused");
        assert!(
            matches!(
                error,
                AlibiError::TooLarge { heads, i: 1, j: jj, bytes: b, limit: l, limit_name: "max_buffer_size" }
                    if heads == total_heads && jj == j && b == bytes && l == limit
            ),
            "{error:?}"
        );
        assert_mentions(&error, &[&bytes.to_string(), &limit.to_string()]);
    }
    // The distance matrix of the longest sequences: 2^50 bytes.
    let error = alibi.get_bias(1 << 24, 1 << 24).expect_err("refused");
    assert!(
        matches!(error, AlibiError::TooLarge { bytes, limit: l, .. } if bytes == 1 << 50 && l == limit),
        "{error:?}"
    );
    // Refusals leave the device and the module healthy.
    common::assert_same(
        &common::forward(&mut alibi, 2, 3),
        &common::expected(&alibi, 2, 3),
        "after TooLarge",
    );
}

#[test]
fn rows_above_the_binding_window_are_too_large() {
    let Some(gpu) = common::gpu() else { return };
    let mut alibi = common::windowed_module(gpu, Some(1024), AlibiConfig::new(2));
    // A window starts on a row but binds from the aligned offset below it: the row must fit
    // the window less that slack.
    let alignment = u64::from(gpu.device.limits().min_storage_buffer_offset_alignment);
    let usable = 1024 - (alignment - 16);
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    for error in [
        alibi.forward(1, 4096).err(),
        alibi.get_bias(3, 4096).err(),
        alibi.encode_forward(&mut encoder, 2, 4096).err(),
    ] {
        let error = error.expect("a 16 KiB row in 1 KiB windows must be refused");
        assert!(
            matches!(
                error,
                AlibiError::RowTooLarge {
                    j: 4096,
                    bytes: 16384,
                    limit,
                } if limit == usable
            ),
            "{error:?}"
        );
        assert_mentions(&error, &["16384", &usable.to_string(), "4096"]);
    }
    // Rows that fit are generated in windows of a few rows.
    common::assert_same(
        &common::forward(&mut alibi, 9, 200),
        &common::expected(&alibi, 9, 200),
        "(9, 200) in 1 KiB windows",
    );
}

#[test]
fn caller_target_buffers_are_checked() {
    let Some(gpu) = common::gpu() else { return };
    let mut alibi = common::module(gpu, AlibiConfig::new(2).total_heads(3));
    let (i, j) = (5, 9);
    // Dense: 3 x 5 x 9 f32.
    let needed = 3 * 5 * 9 * 4;
    let buffer = |size, usage| {
        gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("caller target"),
            size,
            usage,
            mapped_at_creation: false,
        })
    };
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    let storage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST;
    let small = buffer(needed - 4, storage);
    match alibi.encode_into(&mut encoder, i, j, &small, 0) {
        Err(error @ AlibiError::TargetTooSmall { .. }) => {
            assert!(matches!(
                error,
                AlibiError::TargetTooSmall { heads: 3, i: 5, j: 9, needed: n, size: s, .. }
                    if n == needed && s == needed - 4
            ));
            assert_mentions(&error, &[&needed.to_string(), &(needed - 4).to_string()]);
        }
        other => panic!("expected TargetTooSmall, got {:?}", other),
    }
    let unbindable = buffer(
        needed,
        wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
    );
    match alibi.encode_into(&mut encoder, i, j, &unbindable, 0) {
        Err(error @ AlibiError::TargetUsage { needed, .. }) if needed == storage => {
            assert_mentions(&error, &["STORAGE", "COPY_SRC"])
        }
        other => panic!("expected TargetUsage, got {:?}", other),
    }
    // A host write needs a mappable target, and the same room.
    match alibi.write_into(i, j, &unbindable, 0) {
        Err(
            error @ AlibiError::TargetUsage {
                needed: wgpu::BufferUsages::MAP_WRITE,
                ..
            },
        ) => assert_mentions(&error, &["MAP_WRITE"]),
        other => panic!("expected TargetUsage, got {:?}", other),
    }
    let small_mappable = buffer(
        needed - 4,
        wgpu::BufferUsages::MAP_WRITE | wgpu::BufferUsages::COPY_SRC,
    );
    match alibi.write_into(i, j, &small_mappable, 0) {
        Err(AlibiError::TargetTooSmall { needed: n, .. }) => assert_eq!(n, needed),
        other => panic!("expected TargetTooSmall, got {:?}", other),
    }
    // A target the caller still has mapped is refused, and works once unmapped.
    let mapped = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("caller target, mapped"),
        size: needed,
        usage: wgpu::BufferUsages::MAP_WRITE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: true,
    });
    match alibi.write_into(i, j, &mapped, 0) {
        Err(error @ AlibiError::Map { .. }) => assert_mentions(&error, &["mapping"]),
        other => panic!("expected Map, got {:?}", other),
    }
    mapped.unmap();
    alibi
        .write_into(i, j, &mapped, 0)
        .expect("write_into once unmapped");
    common::assert_same(
        &common::read_dense(&alibi, &mapped, [3, i, j]),
        &common::expected(&alibi, i, j),
        "write_into after the caller unmapped",
    );
}

#[test]
fn an_absent_backend_has_no_adapter() {
    // Metal exists only on Apple platforms, DX12 only on Windows.
    let absent = if cfg!(any(target_os = "macos", target_os = "ios")) {
        wgpu::Backends::DX12
    } else {
        wgpu::Backends::METAL
    };
    match pollster::block_on(open_device(Some(absent))) {
        Err(error @ AlibiError::NoAdapter { .. }) => {
            assert_mentions(&error, &[&format!("{absent:?}")]);
        }
        Err(other) => panic!("expected NoAdapter for {absent:?}, got {other:?}"),
        Ok(gpu) => panic!("{absent:?} gave an adapter: {:?}", gpu.adapter_info),
    }
}

#[test]
fn the_issue_example_works_or_is_too_large() {
    let Some(gpu) = common::gpu() else { return };
    // heads = 32, i = j = 2048: 512 MiB of f32.
    let bytes: u64 = 32 * 2048 * 2048 * 4;
    let limit = gpu.device.limits().max_buffer_size;
    let mut alibi = common::module(gpu, AlibiConfig::new(32));
    match alibi.forward(2048, 2048) {
        Ok(view) => {
            assert!(
                bytes <= limit,
                "{bytes} bytes above max_buffer_size {limit}, yet Ok"
            );
            common::assert_same(
                &common::read(&alibi, &view),
                &common::expected(&alibi, 2048, 2048),
                "heads 32, (2048, 2048)",
            );
        }
        Err(error) => {
            assert!(
                bytes > limit,
                "{bytes} bytes fit max_buffer_size {limit}, yet: {error}"
            );
            assert!(
                matches!(error, AlibiError::TooLarge { bytes: b, limit: l, .. } if b == bytes && l == limit),
                "{error:?}"
            );
        }
    }
}
