//! The cache (docs/semantics.md, "Cache"), the call styles that bypass it, caller-owned devices, and
//! the storage binding a view hands out, checked against the CPU reference.
// Native only: the browser has its own suite, tests/web.rs.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use alibi_wgpu::{AlibiBias, AlibiConfig, AlibiPositionalBias, GenerationPath, HostBias};

/// An engine may build the module on one thread and run it on another, and share views.
const _: () = {
    const fn send<T: Send>() {}
    const fn send_sync<T: Send + Sync>() {}
    send::<AlibiPositionalBias>();
    send_sync::<AlibiBias>();
    send_sync::<HostBias>();
};

#[test]
fn hits_reuse_the_cached_tensor_and_generate_nothing() {
    let Some(gpu) = common::gpu() else { return };
    let mut alibi = common::module(gpu, AlibiConfig::new(4).total_heads(6));
    let first = alibi.forward(64, 64).unwrap();
    let after_miss = alibi.cache_stats();
    assert_eq!((after_miss.hits, after_miss.misses), (0, 1));
    assert_eq!(after_miss.entries, 1);

    for (n, (i, j)) in [(64, 64), (1, 64), (10, 20), (64, 1), (3, 5), (64, 64)]
        .into_iter()
        .enumerate()
    {
        let view = alibi.forward(i, j).unwrap();
        let stats = alibi.cache_stats();
        assert_eq!(
            (stats.hits, stats.misses, stats.entries, stats.bytes),
            (
                after_miss.hits + n as u64 + 1,
                after_miss.misses,
                after_miss.entries,
                after_miss.bytes
            ),
            "({i}, {j}) lies inside the cached (64, 64): a hit"
        );
        assert_eq!(
            view.buffer(),
            first.buffer(),
            "({i}, {j}) is a view of the cached tensor, not a new one"
        );
        common::assert_same(
            &common::read(&alibi, &view),
            &common::expected(&alibi, i, j),
            &format!("({i}, {j}) from the cache"),
        );
    }
    // Outside it: a miss.
    alibi.forward(65, 64).unwrap();
    assert_eq!(alibi.cache_stats().misses, after_miss.misses + 1);
}

#[test]
fn decode_loop_generates_logarithmically_often_and_stays_exact() {
    let Some(gpu) = common::gpu() else { return };
    let mut alibi = common::module(gpu, AlibiConfig::new(4).total_heads(5));
    let prefill = common::forward(&mut alibi, 512, 512);
    common::assert_same(&prefill, &common::expected(&alibi, 512, 512), "prefill");
    let misses = alibi.cache_stats().misses;
    let allowed = (4096f64 / 512.0).log2() as u64 + 2;
    let boundaries = [
        1, 2, 511, 512, 513, 1023, 1024, 1025, 2048, 2049, 4095, 4096,
    ];
    let mut checked = 0;
    for t in 1..=4096 {
        let view = alibi.forward(1, t).unwrap();
        assert_eq!(view.shape(), [5, 1, t]);
        if t % 97 == 0 || boundaries.contains(&t) {
            common::assert_same(
                &common::read(&alibi, &view),
                &common::expected(&alibi, 1, t),
                &format!("decode step (1, {t}) after (512, 512)"),
            );
            checked += 1;
        }
        let generated = alibi.cache_stats().misses - misses;
        assert!(
            generated <= allowed,
            "{generated} generations by step {t}; at most {allowed} expected"
        );
    }
    assert!(checked > 50);
}

#[test]
fn least_recently_used_entries_are_evicted_within_the_budget() {
    let Some(gpu) = common::gpu() else { return };
    // Each tensor below is 2 heads x 256 values x 4 bytes = 2048 bytes: two fit the budget.
    let budget = 5000;
    let mut alibi = common::module(gpu, AlibiConfig::new(2).cache_budget_bytes(budget));
    let a = alibi.forward(16, 16).unwrap();
    let b = alibi.forward(8, 32).unwrap();
    assert_eq!(alibi.cache_stats().entries, 2);
    alibi.forward(16, 16).unwrap(); // A becomes the most recently used.
    let c = alibi.forward(32, 8).unwrap();
    let stats = alibi.cache_stats();
    assert_eq!((stats.entries, stats.evictions), (2, 1), "{stats:?}");
    assert!(stats.bytes <= budget, "{stats:?}");

    let misses = stats.misses;
    alibi.forward(16, 16).unwrap();
    alibi.forward(32, 8).unwrap();
    assert_eq!(
        alibi.cache_stats().misses,
        misses,
        "A and C are still cached"
    );
    alibi.forward(8, 32).unwrap();
    assert_eq!(
        alibi.cache_stats().misses,
        misses + 1,
        "B, the least recently used, was evicted"
    );

    // Views handed out before their entries were evicted still read back exactly.
    for (view, (i, j)) in [(&a, (16, 16)), (&b, (8, 32)), (&c, (32, 8))] {
        common::assert_same(
            &common::read(&alibi, view),
            &common::expected(&alibi, i, j),
            &format!("({i}, {j}) read after eviction"),
        );
    }
}

#[test]
fn the_cache_never_holds_more_than_its_budget() {
    let Some(gpu) = common::gpu() else { return };
    let budget = 40_000;
    let mut alibi = common::module(
        gpu,
        AlibiConfig::new(3)
            .total_heads(4)
            .cache_budget_bytes(budget),
    );
    let shapes = [
        (10, 10),
        (20, 30),
        (1, 31),
        (1, 90),
        (50, 50),
        (5, 200),
        (1, 201),
        (30, 30),
        (2, 2),
        (100, 20),
        (1, 500),
        (1, 1000),
        (9, 9),
    ];
    let mut held = Vec::new();
    for (i, j) in shapes {
        let view = alibi.forward(i, j).unwrap();
        let stats = alibi.cache_stats();
        assert!(stats.bytes <= budget, "after ({i}, {j}): {stats:?}");
        common::assert_same(
            &common::read(&alibi, &view),
            &common::expected(&alibi, i, j),
            &format!("({i}, {j}) under a {budget}-byte budget"),
        );
        held.push((view, i, j));
    }
    assert!(
        alibi.cache_stats().evictions > 0,
        "the budget was exercised"
    );

    alibi.set_cache_budget(3000);
    let stats = alibi.cache_stats();
    assert!(
        stats.bytes <= 3000 && stats.budget_bytes == 3000,
        "{stats:?}"
    );

    // A budget of 0 disables the cache; results stay exact.
    alibi.set_cache_budget(0);
    assert_eq!(
        (alibi.cache_stats().entries, alibi.cache_stats().bytes),
        (0, 0)
    );
    for (i, j) in [(4, 4), (4, 4), (1, 3)] {
        let host = common::forward(&mut alibi, i, j);
        common::assert_same(&host, &common::expected(&alibi, i, j), "no cache");
        assert_eq!(alibi.cache_stats().entries, 0);
    }

    // Every view handed out above is still valid.
    for (view, i, j) in &held {
        common::assert_same(
            &common::read(&alibi, view),
            &common::expected(&alibi, *i, *j),
            &format!("({i}, {j}) read at the end"),
        );
    }
}

#[test]
fn a_tensor_larger_than_the_budget_is_served_but_not_kept() {
    let Some(gpu) = common::gpu() else { return };
    let mut alibi = common::module(gpu, AlibiConfig::new(2).cache_budget_bytes(1000));
    for _ in 0..2 {
        let host = common::forward(&mut alibi, 20, 20);
        common::assert_same(&host, &common::expected(&alibi, 20, 20), "(20, 20)");
        let stats = alibi.cache_stats();
        assert_eq!((stats.entries, stats.bytes), (0, 0), "{stats:?}");
    }
    assert_eq!(alibi.cache_stats().misses, 2);
}

#[test]
fn clear_cache_drops_entries_but_not_views() {
    let Some(gpu) = common::gpu() else { return };
    let mut alibi = common::module(gpu, AlibiConfig::new(3));
    let view = alibi.forward(10, 10).unwrap();
    let slice = alibi.forward(2, 7).unwrap();
    let before = alibi.cache_stats();
    assert!(alibi.cached_bias().is_some());
    alibi.clear_cache();
    let after = alibi.cache_stats();
    assert_eq!((after.entries, after.bytes), (0, 0));
    assert_eq!((after.hits, after.misses), (before.hits, before.misses));
    assert!(alibi.cached_bias().is_none());
    for (view, (i, j)) in [(&view, (10, 10)), (&slice, (2, 7))] {
        common::assert_same(
            &common::read(&alibi, view),
            &common::expected(&alibi, i, j),
            &format!("({i}, {j}) after clear_cache"),
        );
    }
    alibi.forward(2, 7).unwrap();
    assert_eq!(alibi.cache_stats().misses, before.misses + 1);
}

#[test]
fn evicted_buffers_are_reused_and_fully_rewritten() {
    let Some(gpu) = common::gpu() else { return };
    let mut alibi = common::module(gpu, AlibiConfig::new(3).total_heads(4));
    // [4, 8, 16]: 2 KiB, every value non-zero but on the diagonal and in head 3.
    common::forward(&mut alibi, 8, 16);
    alibi.clear_cache();
    assert_eq!(
        alibi.cache_stats().recycled_bytes,
        2048,
        "nobody holds it: kept"
    );
    // [4, 8, 8] fits in the kept 2 KiB buffer; its padding head lies where head 1 of the
    // old tensor was, so the generator must write those zeros itself.
    common::assert_same(
        &common::forward(&mut alibi, 8, 8),
        &common::expected(&alibi, 8, 8),
        "(8, 8) in a reused buffer",
    );
    assert_eq!(
        alibi.cache_stats().recycled_bytes,
        0,
        "the kept buffer was reused"
    );

    // A buffer a view still holds is never reused.
    let held = alibi.forward(8, 8).expect("hit");
    alibi.clear_cache();
    assert_eq!(alibi.cache_stats().recycled_bytes, 0);
    common::forward(&mut alibi, 8, 8);
    common::assert_same(
        &common::read(&alibi, &held),
        &common::expected(&alibi, 8, 8),
        "held view after reuse",
    );
}

#[test]
fn cached_bias_is_the_most_recently_used_whole_tensor() {
    let Some(gpu) = common::gpu() else { return };
    let mut alibi = common::module(gpu, AlibiConfig::new(2).total_heads(3));
    assert!(
        alibi.cached_bias().is_none(),
        "a fresh module caches nothing"
    );
    alibi.forward(8, 8).unwrap();
    let whole = alibi.cached_bias().expect("(8, 8) is cached");
    assert_eq!(whole.shape(), [3, 8, 8]);
    alibi.forward(3, 5).unwrap(); // a hit inside (8, 8)
    assert_eq!(alibi.cached_bias().unwrap().shape(), [3, 8, 8]);
    alibi.forward(6, 10).unwrap(); // a miss: generated for (6, J) with J >= 10
    let grown = alibi.cached_bias().unwrap();
    let [heads, rows, cols] = grown.shape();
    assert_eq!((heads, rows), (3, 6));
    assert!(cols >= 10, "{:?}", grown.shape());
    // Whatever its shape, it is the bias of that shape.
    for view in [&whole, &grown] {
        let [_, i, j] = view.shape();
        common::assert_same(
            &common::read(&alibi, view),
            &common::expected(&alibi, i, j),
            &format!("cached_bias {:?}", view.shape()),
        );
    }
}

#[test]
fn decode_past_a_window_limited_row_grows_within_the_binding_limit() {
    let Some(gpu) = common::gpu() else { return };
    // 4096-byte windows hold rows of up to ~1000 columns; 601 columns fit, so a module
    // that served (1, 600) must serve (1, 601) as a fresh one does.
    let mut fresh = common::windowed_module(gpu, Some(4096), AlibiConfig::new(1));
    let expected = common::forward(&mut fresh, 1, 601);
    let mut alibi = common::windowed_module(gpu, Some(4096), AlibiConfig::new(1));
    common::forward(&mut alibi, 1, 600);
    let view = alibi
        .forward(1, 601)
        .unwrap_or_else(|e| panic!("(1, 601) after (1, 600), 4096-byte windows: {e}"));
    common::assert_same(&common::read(&alibi, &view), &expected, "(1, 601)");
}

#[test]
fn encode_forward_records_into_the_callers_encoder() {
    let Some(gpu) = common::gpu() else { return };
    let alibi = common::module(gpu, AlibiConfig::new(3).total_heads(5));
    let stats = alibi.cache_stats();
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    let views: Vec<_> = [(7, 13), (1, 1), (13, 7), (32, 32)]
        .into_iter()
        .map(|(i, j)| (alibi.encode_forward(&mut encoder, i, j).unwrap(), i, j))
        .collect();
    gpu.queue.submit([encoder.finish()]);
    for (view, i, j) in &views {
        assert_eq!(view.shape(), [5, *i, *j]);
        common::assert_same(
            &common::read(&alibi, view),
            &common::expected(&alibi, *i, *j),
            &format!("encode_forward({i}, {j})"),
        );
    }
    // Only the readback's staging buffer is new.
    let after = alibi.cache_stats();
    assert_eq!(
        after,
        alibi_wgpu::CacheStats {
            staging_bytes: after.staging_bytes,
            ..stats
        },
        "encode_forward is uncached"
    );
}

#[test]
fn encode_into_writes_the_callers_buffer() {
    let Some(gpu) = common::gpu() else { return };
    let mut alibi = common::module(gpu, AlibiConfig::new(2).total_heads(3));
    for (i, j) in [(5usize, 9usize), (4, 4), (9, 5)] {
        let needed = (3 * i * j * 4) as u64;
        let target = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("caller's bias buffer"),
            size: needed + 64,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_DST
                | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        alibi.encode_into(&mut encoder, i, j, &target, 0).unwrap();
        gpu.queue.submit([encoder.finish()]);
        common::assert_same(
            &common::read_dense(&alibi, &target, [3, i, j]),
            &common::expected(&alibi, i, j),
            &format!("encode_into({i}, {j})"),
        );
    }
}

#[test]
fn views_cannot_overwrite_the_cache() {
    let Some(gpu) = common::gpu() else { return };
    let mut alibi = common::module(gpu, AlibiConfig::new(2));
    let view = alibi.forward(8, 8).unwrap();
    let buffer = view.buffer().unwrap();
    let usage = buffer.usage();
    // The host-mapped path writes through a mapping, so its buffers have MAP_WRITE (mapping
    // them is what the docs forbid there); nothing else may write them.
    let writable = match alibi.generation_path() {
        GenerationPath::HostMapped => {
            assert!(usage.contains(wgpu::BufferUsages::MAP_WRITE), "{usage:?}");
            wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ
        }
        _ => {
            wgpu::BufferUsages::COPY_DST
                | wgpu::BufferUsages::MAP_WRITE
                | wgpu::BufferUsages::MAP_READ
        }
    };
    assert!(
        !usage.intersects(writable),
        "a cached buffer must not be writable by copies (or, on the shader path, mapping): \
         {usage:?}"
    );
    // wgpu refuses the write (a validation error, caught by the scope here).
    let ((), error) = common::try_scoped(&gpu.device, || {
        gpu.queue.write_buffer(buffer, 0, &[0u8; 16]);
    });
    assert!(
        error.is_some(),
        "writing a cached bias buffer must be refused"
    );
    let again = alibi.forward(8, 8).unwrap();
    assert_eq!(again.buffer(), view.buffer(), "served from the cache");
    common::assert_same(
        &common::read(&alibi, &again),
        &common::expected(&alibi, 8, 8),
        "the cached tensor after a refused write",
    );
}

#[test]
fn a_device_the_caller_owns() {
    let Some(gpu) = common::gpu() else { return };
    let mut alibi = AlibiPositionalBias::new(&gpu.device, &gpu.queue, 3, Some(4)).unwrap();
    assert!(
        alibi.adapter_info().is_none(),
        "the caller owns the adapter"
    );
    assert_eq!((alibi.heads(), alibi.total_heads()), (3, 4));
    assert_eq!(alibi.device(), &gpu.device);
    for (i, j) in [(5, 7), (1, 7), (7, 5)] {
        common::assert_same(
            &common::forward(&mut alibi, i, j),
            &common::expected(&alibi, i, j),
            &format!("({i}, {j}) on the caller's device"),
        );
    }
    let mut configured = AlibiPositionalBias::with_config(
        &gpu.device,
        &gpu.queue,
        AlibiConfig::new(5).max_bias(4.0),
    )
    .unwrap();
    assert_eq!(
        configured.slopes(),
        &alibi_wgpu::max_bias_slopes(5, 4.0).unwrap()[..]
    );
    common::assert_same(
        &common::forward(&mut configured, 6, 6),
        &common::expected(&configured, 6, 6),
        "with_config",
    );
}

/// A device of the `WGPU_BACKEND` adapter with far smaller limits than the adapter's, as an
/// engine with its own limits might request: 64 KiB bindings, 1 MiB buffers, 256-byte
/// binding alignment.
fn tight_device() -> (wgpu::Device, wgpu::Queue) {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = pollster::block_on(instance.request_adapter(&Default::default()))
        .expect("the adapter the shared device came from");
    let limits = wgpu::Limits {
        max_storage_buffer_binding_size: 64 << 10,
        max_buffer_size: 1 << 20,
        min_storage_buffer_offset_alignment: 256,
        ..adapter.limits()
    };
    pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("tight limits"),
        required_limits: limits,
        ..Default::default()
    }))
    .expect("a device with smaller limits than the adapter's")
}

#[test]
fn a_caller_device_with_small_limits_is_respected() {
    let Some(_) = common::gpu() else { return };
    let (device, queue) = tight_device();
    assert_eq!(device.limits().max_storage_buffer_binding_size, 64 << 10);
    let mut alibi = AlibiPositionalBias::new(&device, &queue, 4, Some(6)).unwrap();
    // 6 x 100 x 100 x 4 = 240 kB: generated in 64 KiB windows. After clear_cache, small
    // fresh views whose binding fits 64 KiB are also copied by a shader of the caller's.
    let mut copied = 0;
    for (n, (i, j)) in [
        (100, 100),
        (3, 5),
        (1, 101),
        (100, 3),
        (3, 5),
        (4, 9),
        (1, 9),
    ]
    .into_iter()
    .enumerate()
    {
        if n == 4 {
            alibi.clear_cache();
        }
        let view = alibi.forward(i, j).unwrap();
        let binding = view.binding().unwrap();
        assert_eq!(binding.binding.offset % 256, 0, "({i}, {j}): {binding:?}");
        let expected = common::expected(&alibi, i, j);
        let context = format!("({i}, {j}) on a device with 64 KiB bindings");
        common::assert_same(&common::read(&alibi, &view), &expected, &context);
        if binding
            .binding
            .size
            .is_some_and(|size| size.get() <= 64 << 10)
        {
            let through_binding = copy_through_binding(&device, &queue, &view);
            if let Some(difference) =
                common::mismatch_values(view.shape(), &through_binding, &expected)
            {
                panic!("{context}, through its 256-byte aligned binding: {difference}");
            }
            copied += 1;
        }
    }
    assert!(copied >= 3, "only {copied} views were small enough to bind");
    // 6 x 256 x 256 x 4 bytes = 1.5 MiB: above the device's 1 MiB buffers.
    match alibi.forward(256, 256) {
        Err(alibi_wgpu::AlibiError::TooLarge { limit, .. }) => assert_eq!(limit, 1 << 20),
        other => panic!("expected TooLarge, got {:?}", other.map(|b| b.shape())),
    }
}

#[test]
fn decode_on_a_caller_device_grows_within_its_binding_limit() {
    let Some(_) = common::gpu() else { return };
    let (device, queue) = tight_device();
    // A row of 10 001 keys (40 kB) fits a 64 KiB binding; twice 10 000 keys does not.
    let mut alibi = AlibiPositionalBias::new(&device, &queue, 1, None).unwrap();
    common::forward(&mut alibi, 1, 10_000);
    let view = alibi
        .forward(1, 10_001)
        .unwrap_or_else(|e| panic!("(1, 10001) after (1, 10000) with 64 KiB bindings: {e}"));
    common::assert_same(
        &common::read(&alibi, &view),
        &common::expected(&alibi, 1, 10_001),
        "(1, 10001)",
    );
}

/// Copies a view, through the binding it hands out, into a contiguous buffer with a shader
/// of the caller's own: proof that a caller can bind the view and address it by its layout.
const COPY_VIEW_WGSL: &str = r"
struct View {
    offset: u32,
    head_stride: u32,
    row_stride: u32,
    rows: u32,
    cols: u32,
    count: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> view: View;
@group(0) @binding(1) var<storage, read> bias: array<f32>;
@group(0) @binding(2) var<storage, read_write> copy: array<f32>;

@compute @workgroup_size(64)
fn copy_view(@builtin(global_invocation_id) id: vec3<u32>) {
    let n = id.x;
    if n >= view.count {
        return;
    }
    let k = n % view.cols;
    let r = (n / view.cols) % view.rows;
    let h = n / (view.cols * view.rows);
    copy[n] = bias[view.offset + h * view.head_stride + r * view.row_stride + k];
}
";

/// The view's values, row-major, as the caller's shader copied them.
fn copy_through_binding(device: &wgpu::Device, queue: &wgpu::Queue, view: &AlibiBias) -> Vec<f32> {
    let binding = view.binding().expect("a non-empty view has a binding");
    let alignment = u64::from(device.limits().min_storage_buffer_offset_alignment);
    let [heads, rows, cols] = view.shape();
    let layout = binding.layout;
    assert_eq!(binding.binding.offset % alignment, 0, "{binding:?}");
    assert_eq!(
        binding.binding.offset / 4 + layout.offset,
        view.layout().offset,
        "the binding's layout is the view's, counted from the binding"
    );
    assert_eq!(
        (layout.head_stride, layout.row_stride),
        (view.layout().head_stride, view.layout().row_stride)
    );
    let end = layout.offset
        + (heads as u64 - 1) * layout.head_stride
        + (rows as u64 - 1) * layout.row_stride
        + cols as u64;
    assert_eq!(
        binding.binding.size.map(|s| s.get()),
        Some(end * 4),
        "the binding covers the view exactly, from its aligned start"
    );
    assert!(binding.binding.offset + end * 4 <= view.buffer().unwrap().size());

    let count = heads * rows * cols;
    let copy = common::scoped(device, "copying a view with a caller's shader", || {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("copy view"),
            source: wgpu::ShaderSource::Wgsl(COPY_VIEW_WGSL.into()),
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("copy view"),
            layout: None,
            module: &module,
            entry_point: Some("copy_view"),
            compilation_options: Default::default(),
            cache: None,
        });
        let params: [u32; 8] = [
            layout.offset as u32,
            layout.head_stride as u32,
            layout.row_stride as u32,
            rows as u32,
            cols as u32,
            count as u32,
            0,
            0,
        ];
        let uniform = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("copy view params"),
            size: 32,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        queue.write_buffer(&uniform, 0, bytemuck::cast_slice(&params));
        let copy = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("copy view output"),
            size: (count * 4) as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("copy view"),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: uniform.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: wgpu::BindingResource::Buffer(binding.binding.clone()),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: copy.as_entire_binding(),
                },
            ],
        });
        let mut encoder = device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(count.div_ceil(64) as u32, 1, 1);
        }
        queue.submit([encoder.finish()]);
        copy
    });
    let bytes = common::read_buffer(device, queue, &copy);
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

#[test]
fn a_callers_shader_reads_views_through_their_binding() {
    let Some(gpu) = common::gpu() else { return };
    let mut alibi = common::module(gpu, AlibiConfig::new(3).total_heads(5));
    let mut views: Vec<(String, AlibiBias, HostBias)> = Vec::new();
    for (i, j) in [(7, 13), (40, 40)] {
        let view = alibi.forward(i, j).unwrap();
        views.push((
            format!("fresh ({i}, {j})"),
            view,
            common::expected(&alibi, i, j),
        ));
    }
    // Bottom-right slices of the cached (40, 40): offsets inside the buffer, gaps between
    // rows and heads.
    for (i, j) in [(3, 5), (1, 40), (40, 1), (17, 29), (39, 39)] {
        let view = alibi.forward(i, j).unwrap();
        assert!(!view.is_contiguous(), "({i}, {j}) is a strided slice");
        views.push((
            format!("cached ({i}, {j})"),
            view,
            common::expected(&alibi, i, j),
        ));
    }
    let distances = alibi.get_bias(6, 11).unwrap();
    let expected = alibi_wgpu::reference::get_bias(6, 11).unwrap();
    views.push(("get_bias(6, 11)".into(), distances, expected));
    let whole = alibi.cached_bias().unwrap();
    let [_, i, j] = whole.shape();
    views.push(("cached_bias".into(), whole, common::expected(&alibi, i, j)));

    for (what, view, expected) in &views {
        let copied = copy_through_binding(&gpu.device, &gpu.queue, view);
        if let Some(difference) = common::mismatch_values(view.shape(), &copied, expected) {
            panic!("{what} through its binding: {difference}");
        }
        common::assert_same(&common::read(&alibi, view), expected, what);
    }
}
