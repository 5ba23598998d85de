//! The two generation paths: which one a module takes, that the host-mapped path is refused
//! where it cannot run, and that both write the same bytes, padding columns included.
//! (`gpu_vs_reference` runs its properties on every path the device offers; CI also runs
//! the whole suite once per path.)
// Native only: the browser has its own suite, tests/web.rs.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use alibi_wgpu::{
    reference, AlibiConfig, AlibiError, AlibiPositionalBias, GenerationPath, GpuDevice, HostBias,
};

/// A module built directly, so that `ALIBI_TEST_GENERATION_PATH` does not override `path`.
fn module_on(gpu: &GpuDevice, config: AlibiConfig) -> AlibiPositionalBias {
    let description = format!("{config:?}");
    AlibiPositionalBias::on_device(gpu, config)
        .unwrap_or_else(|e| panic!("building a module from {description}: {e}"))
}

#[test]
fn auto_takes_the_host_path_exactly_on_cpu_adapters_with_mappable_buffers() {
    let Some(gpu) = common::gpu() else { return };
    let info = &gpu.adapter_info;
    let mappable = gpu
        .device
        .features()
        .contains(wgpu::Features::MAPPABLE_PRIMARY_BUFFERS);
    let cpu = info.device_type == wgpu::DeviceType::Cpu;
    let alibi = module_on(gpu, AlibiConfig::new(4));
    let expected = if cpu && mappable {
        GenerationPath::HostMapped
    } else {
        GenerationPath::Shader
    };
    assert_eq!(alibi.generation_path(), expected, "{info:?}");
    // lavapipe offers the feature, and open_device asks for it on CPU adapters: CI's
    // Vulkan runs take the host path.
    if cpu && info.backend == wgpu::Backend::Vulkan {
        assert!(
            mappable,
            "open_device left MAPPABLE_PRIMARY_BUFFERS off on {info:?}"
        );
    }
    // Shader is always available and taken when asked for.
    let shader = module_on(
        gpu,
        AlibiConfig::new(4).generation_path(GenerationPath::Shader),
    );
    assert_eq!(shader.generation_path(), GenerationPath::Shader);
}

#[test]
fn host_mapped_is_refused_without_mappable_primary_buffers() {
    let Some(gpu) = common::gpu() else { return };
    // A second device on the same adapter, without any optional feature.
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = pollster::block_on(instance.request_adapter(&Default::default()))
        .expect("the adapter the shared device came from");
    let (device, queue) = pollster::block_on(adapter.request_device(&Default::default()))
        .expect("a device without features");
    let config = AlibiConfig::new(4).generation_path(GenerationPath::HostMapped);
    match AlibiPositionalBias::with_config(&device, &queue, config) {
        Err(error @ AlibiError::GenerationPathUnavailable { .. }) => {
            let message = error.to_string();
            assert!(
                message.contains("HostMapped") && message.contains("MAPPABLE_PRIMARY_BUFFERS"),
                "{message}"
            );
        }
        Err(other) => panic!("expected GenerationPathUnavailable, got {other}"),
        Ok(_) => panic!("HostMapped accepted without MAPPABLE_PRIMARY_BUFFERS"),
    }
    let auto = AlibiPositionalBias::with_config(&device, &queue, AlibiConfig::new(4))
        .expect("Auto always resolves");
    assert_eq!(auto.generation_path(), GenerationPath::Shader);
    // The shared device still works: the second one is independent.
    let mut shared = module_on(gpu, AlibiConfig::new(2));
    common::assert_same(
        &common::forward(&mut shared, 2, 3),
        &common::expected(&shared, 2, 3),
        "the shared device after a second one was opened",
    );
}

/// Every module of `config` on each path `gpu` offers, with the path.
fn on_each_path(
    gpu: &GpuDevice,
    window: Option<u64>,
    config: &AlibiConfig,
) -> Vec<(GenerationPath, AlibiPositionalBias)> {
    common::generation_paths(gpu)
        .into_iter()
        .map(|path| {
            let config = config.clone().generation_path(path);
            let alibi = common::windowed_module(gpu, window, config);
            assert_eq!(alibi.generation_path(), path);
            (path, alibi)
        })
        .collect()
}

#[test]
fn both_paths_generate_the_same_whole_tensors() {
    let Some(gpu) = common::gpu() else { return };
    // (heads, total_heads, window, i, j): padding heads, j not a multiple of 4 (padded
    // columns), forced binding windows, a long row.
    let cases = [
        (1, 1, None, 1, 1),
        (4, 8, None, 3, 5),
        (12, 16, None, 1, 4096),
        (3, 4, Some(4096u64), 40, 301),
        (7, 7, None, 130, 67),
    ];
    for (heads, total_heads, window, i, j) in cases {
        let config = AlibiConfig::new(heads).total_heads(total_heads);
        let mut whole: Vec<(GenerationPath, HostBias)> = Vec::new();
        for (path, mut alibi) in on_each_path(gpu, window, &config) {
            let context = format!("{path:?}, heads {heads}/{total_heads}, ({i}, {j})");
            common::assert_same(
                &common::forward(&mut alibi, i, j),
                &common::expected(&alibi, i, j),
                &context,
            );
            // The whole cached tensor, padding columns included, is the reference too.
            let cached = alibi.cached_bias().expect("forward cached its tensor");
            let [_, rows, cols] = cached.shape();
            assert_eq!((rows, cols), (i, j.next_multiple_of(4)), "{context}");
            let host = common::read(&alibi, &cached);
            common::assert_same(&host, &common::expected(&alibi, rows, cols), &context);
            common::assert_same(
                &common::read(&alibi, &alibi.get_bias(i, j).expect("get_bias")),
                &reference::get_bias(i, j).unwrap(),
                &format!("get_bias, {context}"),
            );
            whole.push((path, host));
        }
        for pair in whole.windows(2) {
            common::assert_same(
                &pair[1].1,
                &pair[0].1,
                &format!("{:?} against {:?}", pair[1].0, pair[0].0),
            );
        }
    }
}

#[test]
fn evicted_buffers_still_in_use_on_the_gpu_are_reused_after_that_work() {
    let Some(gpu) = common::gpu() else { return };
    let (i, j) = (256, 512);
    for (path, mut alibi) in on_each_path(gpu, None, &AlibiConfig::new(6).total_heads(8)) {
        let context = format!("{path:?}");
        let first = alibi.forward(i, j).expect("forward");
        // Work of the caller that reads the cached buffer, submitted and not waited for.
        let copy_bytes = first.buffer().expect("a non-empty view").size();
        let sink = common::scoped(&gpu.device, "the caller's copy", || {
            let sink = gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("caller copy"),
                size: copy_bytes,
                usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            let mut encoder = gpu.device.create_command_encoder(&Default::default());
            encoder.copy_buffer_to_buffer(first.buffer().unwrap(), 0, &sink, 0, copy_bytes);
            gpu.queue.submit([encoder.finish()]);
            sink
        });
        drop(first);
        alibi.clear_cache();
        assert!(
            alibi.cache_stats().recycled_bytes > 0,
            "{context}: kept for reuse"
        );
        // A new request of the same size reuses that buffer (mapping it waits for the copy
        // on the host path) and writes every element of it.
        let (i2, j2) = (i - 3, j - 5);
        common::assert_same(
            &common::forward(&mut alibi, i2, j2),
            &common::expected(&alibi, i2, j2),
            &context,
        );
        assert_eq!(alibi.cache_stats().recycled_bytes, 0, "{context}: reused");
        // The caller's copy saw the first tensor, not the second.
        let copied: Vec<f32> =
            bytemuck::pod_collect_to_vec(&common::read_buffer(&gpu.device, &gpu.queue, &sink));
        let expected = reference::forward(alibi.slopes(), 8, i, j).unwrap();
        if let Some(difference) = common::mismatch_values([8, i, j], &copied, &expected) {
            panic!("{context}: the copy taken before the reuse: {difference}");
        }
    }
}

#[test]
fn write_into_a_caller_buffer_equals_encode_into() {
    let Some(gpu) = common::gpu() else { return };
    let mut alibi = common::module(gpu, AlibiConfig::new(5).total_heads(6));
    let (i, j) = (37usize, 70usize);
    let bytes = (6 * i * j * 4) as u64;
    let buffer = |usage| {
        common::scoped(&gpu.device, "a caller target", || {
            gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("caller target"),
                size: bytes,
                usage,
                mapped_at_creation: false,
            })
        })
    };
    // MAP_WRITE with COPY_SRC needs no device feature: every backend can do this.
    let mapped = buffer(wgpu::BufferUsages::MAP_WRITE | wgpu::BufferUsages::COPY_SRC);
    alibi.write_into(i, j, &mapped, 0).expect("write_into");
    let storage = buffer(
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
    );
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    alibi
        .encode_into(&mut encoder, i, j, &storage, 0)
        .expect("encode_into");
    gpu.queue.submit([encoder.finish()]);
    common::assert_same(
        &common::read_dense(&alibi, &mapped, [6, i, j]),
        &common::expected(&alibi, i, j),
        "write_into",
    );
    assert!(
        common::read_buffer(&gpu.device, &gpu.queue, &mapped)
            == common::read_buffer(&gpu.device, &gpu.queue, &storage),
        "write_into and encode_into wrote different bytes"
    );
    // Written again, over the old values, after the device has used the buffer.
    alibi
        .write_into(i, j, &mapped, 0)
        .expect("write_into again");
    common::assert_same(
        &common::read_dense(&alibi, &mapped, [6, i, j]),
        &common::expected(&alibi, i, j),
        "write_into over a used buffer",
    );
}

/// One request of a `forward_to_host` sequence, relative to the previous `(i, j)`.
#[derive(Clone, Copy, Debug)]
enum Request {
    Fresh(usize, usize),
    /// `(1, j + 1)`: a miss that grows the cached keys, so the view is the last `j` of
    /// more generated columns.
    Decode,
    Repeat,
}

#[test]
fn forward_to_host_equals_the_reference_on_each_path() {
    use proptest::prelude::*;
    let Some(gpu) = common::gpu() else { return };
    let request = prop_oneof![
        2 => (0usize..80, 0usize..300).prop_map(|(i, j)| Request::Fresh(i, j)),
        3 => Just(Request::Decode),
        1 => Just(Request::Repeat),
    ];
    let case = (
        (1usize..=12).prop_flat_map(|heads| (Just(heads), heads..=2 * heads)),
        proptest::collection::vec(request, 1..10),
        proptest::sample::select(common::generation_paths(gpu)),
    );
    let mut runner = proptest::test_runner::TestRunner::new(common::proptest_config(24));
    let result = runner.run(&case, |((heads, total_heads), requests, path)| {
        let config = AlibiConfig::new(heads)
            .total_heads(total_heads)
            .generation_path(path);
        let mut alibi = module_on(gpu, config);
        // One vector for the whole sequence, as an inference loop keeps; it starts with
        // stale values that must all be overwritten.
        let mut reused = vec![f32::NAN; 5000];
        let mut previous = (3, 7);
        for (step, request) in requests.into_iter().enumerate() {
            let (i, j) = match request {
                Request::Fresh(i, j) => (i, j),
                Request::Decode => (1, previous.1 + 1),
                Request::Repeat => previous,
            };
            previous = (i, j);
            let context = format!("{path:?}, step {step} {request:?} -> ({i}, {j})");
            let expected = common::expected(&alibi, i, j);
            pollster::block_on(alibi.forward_to_host_into(i, j, &mut reused))
                .map_err(|e| TestCaseError::fail(format!("{context}: {e}")))?;
            if let Some(difference) =
                common::mismatch_values([total_heads, i, j], &reused, &expected)
            {
                return Err(TestCaseError::fail(format!(
                    "{context}, reused vector: {difference}"
                )));
            }
            let fresh = pollster::block_on(alibi.forward_to_host(i, j))
                .map_err(|e| TestCaseError::fail(format!("{context}: {e}")))?;
            if let Some(difference) = common::mismatch(&fresh, &expected) {
                return Err(TestCaseError::fail(format!(
                    "{context}, new vector: {difference}"
                )));
            }
        }
        Ok(())
    });
    if let Err(error) = result {
        panic!("{error}");
    }
}

#[test]
fn forward_to_host_of_large_tensors_on_each_path() {
    let Some(gpu) = common::gpu() else { return };
    // Large enough that the host-mapped write, and its copy into the vector, is split
    // across threads, with part boundaries inside rows; (1, 100_001) grows the cached keys
    // to 200_000, so the vector takes only the last columns of each generated row.
    let shapes = [
        (333, 1001),
        (1, 100_000),
        (1, 100_001),
        (7, 150_003),
        (513, 999),
    ];
    for (path, mut alibi) in on_each_path(gpu, None, &AlibiConfig::new(5).total_heads(7)) {
        let mut reused = vec![f32::NAN; 10];
        for (i, j) in shapes {
            let context = format!("{path:?}, ({i}, {j})");
            pollster::block_on(alibi.forward_to_host_into(i, j, &mut reused))
                .unwrap_or_else(|e| panic!("{context}: {e}"));
            if let Some(difference) =
                common::mismatch_values([7, i, j], &reused, &common::expected(&alibi, i, j))
            {
                panic!("{context}: {difference}");
            }
        }
    }
}
