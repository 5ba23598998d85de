//! Criterion benches: generation (on the module's path, and by the WGSL kernel) against a
//! copy of the same bytes on the same device, readback, the CPU reference, cache hits and a
//! decode loop, on the default adapter (`WGPU_BACKEND` picks it). `cargo bench`;
//! `alibi bench` prints the same figures as a table.

use std::hint::black_box;
use std::time::Duration;

use alibi_wgpu::{cpu, open_device, AlibiConfig, AlibiPositionalBias, GpuDevice};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

// The CLI's timed primitives; its statistics helpers are the CLI's alone.
#[path = "../src/measure.rs"]
#[allow(dead_code)]
mod measure;

use measure::{wait_idle, Rig};

/// `(heads, total_heads, i, j)`: a prefill and a long decode row.
const CASES: [(usize, usize, usize, usize); 2] = [(8, 8, 1024, 1024), (12, 16, 1, 4096)];

fn device() -> GpuDevice {
    // No async runtime here: `pollster` waits on the library's async calls.
    match pollster::block_on(open_device(None)) {
        Ok(gpu) => gpu,
        Err(error) => panic!("the benches need a GPU adapter (lavapipe will do): {error}"),
    }
}

fn forward_cases(c: &mut Criterion) {
    let gpu = device();
    eprintln!(
        "adapter: {} ({:?})",
        gpu.adapter_info.name, gpu.adapter_info.backend
    );
    for (heads, total_heads, i, j) in CASES {
        let config = AlibiConfig::new(heads).total_heads(total_heads);
        let mut alibi = AlibiPositionalBias::on_device(&gpu, config).expect("module");
        let rig = Rig::new(&alibi, i, j).expect("bench buffers");
        let mut group = c.benchmark_group(format!("[{total_heads},{i},{j}]"));
        group
            .throughput(Throughput::Bytes(rig.bytes()))
            .sample_size(10)
            .measurement_time(Duration::from_secs(3));
        // On the module's path: host-mapped on CPU adapters, the kernel elsewhere.
        group.bench_function(format!("generate_{:?}", alibi.generation_path()), |b| {
            b.iter(|| rig.generate(&mut alibi).expect("generate"))
        });
        group.bench_function("generate_shader_kernel", |b| {
            b.iter(|| rig.generate_with_shader(&mut alibi).expect("generate"))
        });
        group.bench_function("copy_same_bytes", |b| {
            b.iter(|| rig.copy(&alibi).expect("copy"))
        });
        let mut host = Vec::new();
        group.bench_function("forward_to_host", |b| {
            b.iter(|| {
                alibi.clear_cache();
                pollster::block_on(alibi.forward_to_host_into(i, j, &mut host))
                    .expect("forward to host")
            })
        });
        let slopes = alibi.slopes().to_vec();
        let mut cpu = Vec::new();
        group.bench_function("cpu_path", |b| {
            b.iter(|| cpu::forward_into(&slopes, total_heads, i, j, &mut cpu).expect("cpu"))
        });
        group.finish();
        // Apart from the group: a hit moves no bytes, so a bytes-per-second figure is noise.
        alibi.forward(i, j).expect("warm the cache");
        c.bench_function(&format!("[{total_heads},{i},{j}]/cache_hit"), |b| {
            b.iter(|| black_box(alibi.forward(black_box(i), black_box(j)).expect("hit")))
        });
    }
}

fn decode_loop(c: &mut Criterion) {
    let gpu = device();
    let mut group = c.benchmark_group("decode");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    group.bench_function("prefill_512_then_4096_steps", |b| {
        b.iter_batched(
            || {
                AlibiPositionalBias::on_device(&gpu, AlibiConfig::new(12).total_heads(16))
                    .expect("module")
            },
            |mut alibi| {
                alibi.forward(512, 512).expect("prefill");
                for t in 1..=4096 {
                    black_box(alibi.forward(1, t).expect("step"));
                }
                wait_idle(alibi.device()).expect("wait");
                alibi
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, forward_cases, decode_loop);
criterion_main!(benches);
