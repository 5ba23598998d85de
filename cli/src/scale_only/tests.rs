//! The scale-only kernel on the default adapter (`WGPU_BACKEND` picks it): every score
//! scaled exactly once, in f32 and (with `SHADER_F16`) in f16, against the host's product;
//! and the same bytes as the library's `add_to_scores` where the bias is +0.0 (padding
//! heads), which checks that both kernels lay the scores out alike.

use alibi_wgpu::{AlibiConfig, AlibiError, AlibiPositionalBias, AttentionScores, GpuDevice};

use super::*;

/// The default adapter; `None` (skipped, said on stderr) without one when
/// `ALIBI_ALLOW_NO_GPU=1`, as the CLI's integration tests allow.
fn gpu() -> Option<GpuDevice> {
    match pollster::block_on(alibi_wgpu::open_device(None)) {
        Ok(gpu) => Some(gpu),
        Err(error @ AlibiError::NoAdapter { .. })
            if std::env::var("ALIBI_ALLOW_NO_GPU").as_deref() == Ok("1") =>
        {
            eprintln!("SKIPPED: no adapter ({error})");
            None
        }
        Err(error) => panic!("these tests need an adapter (lavapipe will do): {error}"),
    }
}

/// A storage buffer holding `bytes`, readable back.
fn scores_buffer(gpu: &GpuDevice, bytes: &[u8]) -> wgpu::Buffer {
    let buffer = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("test scores"),
        size: (bytes.len() as u64).next_multiple_of(4),
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut padded = bytes.to_vec();
    padded.resize(buffer.size() as usize, 0);
    gpu.queue.write_buffer(&buffer, 0, &padded);
    buffer
}

/// Submits `encoder`, then reads `buffer` back.
fn submit_and_read(
    gpu: &GpuDevice,
    mut encoder: wgpu::CommandEncoder,
    buffer: &wgpu::Buffer,
) -> Vec<u8> {
    let staging = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("test readback"),
        size: buffer.size(),
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, buffer.size());
    gpu.queue.submit([encoder.finish()]);
    staging
        .slice(..)
        .map_async(wgpu::MapMode::Read, |result| result.unwrap());
    gpu.device
        .poll(wgpu::PollType::wait_indefinitely())
        .unwrap();
    let bytes = staging.slice(..).get_mapped_range().unwrap().to_vec();
    bytes
}

/// Scores of every sign and size; some f16 ones overflow when doubled.
fn values(count: usize) -> Vec<f32> {
    (0..count)
        .map(|n| (n as f32 - 37.5) * 1.7 + if n % 7 == 0 { 60000.0 } else { 0.0 })
        .collect()
}

#[test]
fn scales_every_score_once() {
    let Some(gpu) = gpu() else { return };
    let mut dtypes = vec![BiasDtype::F32];
    if gpu.device.features().contains(wgpu::Features::SHADER_F16) {
        dtypes.push(BiasDtype::F16);
    }
    // Rows of 9 columns start anywhere in a vec4; 2 batch items go through the loop.
    let (batch, heads, rows, cols) = (2, 3, 5, 9);
    let count = batch * heads * rows * cols;
    for dtype in dtypes {
        // A power of two: every product is exact (or saturates), so the expected values do
        // not depend on how a device rounds a conversion to f16.
        let scale = 2.0;
        let shape = ScoreShape {
            batch,
            heads,
            rows,
            cols,
            dtype,
            scale,
        };
        let kernel = ScaleOnly::new(&gpu.device, dtype).unwrap();
        let input = values(count);
        let (bytes, expected): (Vec<u8>, Vec<f32>) = match dtype {
            BiasDtype::F16 => {
                let half: Vec<half::f16> = input.iter().map(|&v| half::f16::from_f32(v)).collect();
                // Widened, scaled in f32, clamped to the finite f16 range, rounded once.
                let scaled = half
                    .iter()
                    .map(|v| {
                        half::f16::from_f32((v.to_f32() * scale).clamp(-65504.0, 65504.0)).to_f32()
                    })
                    .collect();
                (bytemuck::cast_slice(&half).to_vec(), scaled)
            }
            _ => (
                bytemuck::cast_slice(&input).to_vec(),
                input.iter().map(|v| v * scale).collect(),
            ),
        };
        let buffer = scores_buffer(&gpu, &bytes);
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        kernel
            .encode(&gpu.device, &gpu.queue, &mut encoder, &buffer, shape)
            .unwrap();
        let out = submit_and_read(&gpu, encoder, &buffer);
        let got: Vec<f32> = match dtype {
            BiasDtype::F16 => bytemuck::cast_slice::<u8, half::f16>(&out[..count * 2])
                .iter()
                .map(|v| v.to_f32())
                .collect(),
            _ => bytemuck::cast_slice::<u8, f32>(&out[..count * 4]).to_vec(),
        };
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&expected), "{dtype}");
    }
}

#[test]
fn matches_add_to_scores_where_the_bias_is_zero() {
    let Some(gpu) = gpu() else { return };
    // One head with a slope, five padding heads (bias +0.0): there, add == scale.
    let (batch, heads, rows, cols) = (3, 6, 4, 7);
    let module =
        AlibiPositionalBias::on_device(&gpu, AlibiConfig::new(1).total_heads(heads)).unwrap();
    let input = values(batch * heads * rows * cols);
    let scale = 0.125;
    let run = |add: bool| {
        let buffer = scores_buffer(&gpu, bytemuck::cast_slice(&input));
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        if add {
            let shape = AttentionScores::new(batch, rows, cols).scale(scale);
            module.add_to_scores(&mut encoder, &buffer, shape).unwrap();
        } else {
            let shape = ScoreShape {
                batch,
                heads,
                rows,
                cols,
                dtype: BiasDtype::F32,
                scale,
            };
            let kernel = ScaleOnly::new(&gpu.device, BiasDtype::F32).unwrap();
            kernel
                .encode(&gpu.device, &gpu.queue, &mut encoder, &buffer, shape)
                .unwrap();
        }
        submit_and_read(&gpu, encoder, &buffer)
    };
    let (added, scaled) = (run(true), run(false));
    let head_bytes = rows * cols * 4;
    for b in 0..batch {
        for h in 1..heads {
            let at = (b * heads + h) * head_bytes;
            assert_eq!(
                added[at..at + head_bytes],
                scaled[at..at + head_bytes],
                "batch {b} head {h}"
            );
        }
        // Head 0 has a bias: the add kernel did write there.
        let at = b * heads * head_bytes;
        assert_ne!(added[at..at + head_bytes], scaled[at..at + head_bytes]);
    }
}
