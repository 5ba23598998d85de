//! Criterion bench of `add_to_scores` (scores * scale + ALiBi, in place) against a
//! `copy_buffer_to_buffer` of the same bytes on the same device, each recorded, submitted
//! and waited for alone, on the default adapter (`WGPU_BACKEND` picks it).
//! `cargo bench --bench add_to_scores`.

use std::time::Duration;

use alibi_wgpu::{open_device, AlibiConfig, AlibiPositionalBias, AttentionScores, BiasDtype};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

// The CLI's timed primitives; its statistics helpers are the CLI's alone.
#[path = "../src/measure.rs"]
#[allow(dead_code)]
mod measure;

use measure::wait_idle;

/// `(batch, heads, total_heads, i, j, causal)`: a prefill, a batched decode row, and an
/// odd-sized prefill whose rows do not start on a vec4.
const CASES: [(usize, usize, usize, usize, usize, bool); 4] = [
    (1, 8, 8, 1024, 1024, false),
    (1, 8, 8, 1024, 1024, true),
    (16, 12, 16, 1, 4096, false),
    (2, 12, 12, 509, 509, true),
];

/// The scores and a copy source of the same size, allocated and touched once before any
/// timed run (wgpu zero-fills a buffer on its first use).
struct ScoreRig {
    scores: wgpu::Buffer,
    copy_source: wgpu::Buffer,
    bytes: u64,
}

impl ScoreRig {
    fn new(alibi: &AlibiPositionalBias, shape: AttentionScores, dtype: BiasDtype) -> Self {
        let elements: usize = shape.shape(alibi.total_heads()).iter().product();
        let bytes = (elements * dtype.size()).next_multiple_of(4) as u64;
        let buffer = |label, usage| {
            alibi.device().create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes,
                usage,
                mapped_at_creation: false,
            })
        };
        let copy = wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
        let rig = Self {
            scores: buffer("bench scores", wgpu::BufferUsages::STORAGE | copy),
            copy_source: buffer("bench copy source", copy),
            bytes,
        };
        rig.copy(alibi);
        rig
    }

    fn add(&self, alibi: &AlibiPositionalBias, shape: AttentionScores) {
        let mut encoder = alibi.device().create_command_encoder(&Default::default());
        alibi
            .add_to_scores(&mut encoder, &self.scores, shape)
            .expect("add_to_scores");
        alibi.queue().submit([encoder.finish()]);
        wait_idle(alibi.device()).expect("wait");
    }

    fn copy(&self, alibi: &AlibiPositionalBias) {
        let mut encoder = alibi.device().create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(&self.copy_source, 0, &self.scores, 0, self.bytes);
        alibi.queue().submit([encoder.finish()]);
        wait_idle(alibi.device()).expect("wait");
    }
}

fn add_to_scores(c: &mut Criterion) {
    let gpu = pollster::block_on(open_device(None))
        .unwrap_or_else(|e| panic!("the benches need a GPU adapter (lavapipe will do): {e}"));
    eprintln!(
        "adapter: {} ({:?})",
        gpu.adapter_info.name, gpu.adapter_info.backend
    );
    let mut dtypes = vec![BiasDtype::F32];
    if gpu.device.features().contains(wgpu::Features::SHADER_F16) {
        dtypes.push(BiasDtype::F16);
    }
    for (batch, heads, total_heads, i, j, causal) in CASES {
        let config = AlibiConfig::new(heads)
            .total_heads(total_heads)
            .causal(causal);
        let alibi = AlibiPositionalBias::on_device(&gpu, config).expect("module");
        for &dtype in &dtypes {
            let shape = AttentionScores::new(batch, i, j).scale(0.125).dtype(dtype);
            let rig = ScoreRig::new(&alibi, shape, dtype);
            // Once unmeasured: the pipeline is built on first use.
            rig.add(&alibi, shape);
            let name = format!("[{batch},{total_heads},{i},{j}] {dtype} causal {causal}");
            let mut group = c.benchmark_group(name);
            group
                .throughput(Throughput::Bytes(rig.bytes))
                .sample_size(10)
                .measurement_time(Duration::from_secs(3));
            group.bench_function("add_to_scores", |b| b.iter(|| rig.add(&alibi, shape)));
            group.bench_function("copy_same_bytes", |b| b.iter(|| rig.copy(&alibi)));
            group.finish();
        }
    }
}

criterion_group!(benches, add_to_scores);
criterion_main!(benches);
