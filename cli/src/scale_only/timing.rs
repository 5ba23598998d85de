//! `add_over_scale`'s two timings: the library's `add_to_scores` and the scale-only kernel
//! over the same buffer of scores, each recorded, then submitted and waited for alone (the
//! clock runs from the submission to the device's idle), alternated so that both see the
//! same noise.

use alibi_wgpu::{AlibiError, AlibiPositionalBias, AttentionScores, BiasDtype};

use super::{ScaleOnly, ScoreShape};
use crate::measure::{median, time_ms, wait_idle};

/// Median times in milliseconds `[add, scale_only]` over `runs` alternated rounds (at least
/// one), after one unmeasured round (pipelines, the buffer's first touch), on `module`'s
/// `[batch, total_heads, i, j]` scores of `dtype`, multiplied by `scale`.
pub fn time_add_over_scale(
    module: &AlibiPositionalBias,
    [batch, i, j]: [usize; 3],
    scale: f32,
    dtype: BiasDtype,
    runs: usize,
) -> Result<[f64; 2], AlibiError> {
    let (device, queue) = (module.device(), module.queue());
    let shape = ScoreShape {
        batch,
        heads: module.total_heads(),
        rows: i,
        cols: j,
        dtype,
        scale,
    };
    let scores_shape = AttentionScores::new(batch, i, j).scale(scale).dtype(dtype);
    let kernel = ScaleOnly::new(device, dtype)?;
    let scores = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("bench scores"),
        size: shape.bytes().max(4),
        usage: wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    // `add` records the library's kernel, `!add` the baseline; the clock runs from the
    // submission to the device's idle, each alone.
    let time = |add: bool| -> Result<f64, AlibiError> {
        let mut encoder = device.create_command_encoder(&Default::default());
        if add {
            module.add_to_scores(&mut encoder, &scores, scores_shape)?;
        } else {
            kernel.encode(device, queue, &mut encoder, &scores, shape)?;
        }
        let mut commands = Some(encoder.finish());
        time_ms(|| {
            queue.submit(commands.take());
            wait_idle(device)
        })
    };
    time(true)?;
    time(false)?;
    let (mut add, mut scale_only) = (Vec::new(), Vec::new());
    for _ in 0..runs.max(1) {
        add.push(time(true)?);
        scale_only.push(time(false)?);
    }
    Ok([median(add), median(scale_only)])
}
