//! The engine layout's figures of `alibi bench`: `forward_dense` fresh against the strided
//! `forward` of the same shape, and from the cache against a device copy of the same
//! bytes. Each timed call allocates its tensor, as `forward_dense` does: the fresh
//! figures run with nothing kept for reuse (cache budget 0), and the copy goes into a new
//! buffer. The `into` figures write a buffer allocated once instead: the kernel's and the
//! copy's own cost, without the allocation (on a real GPU, large and uneven).

use alibi_wgpu::{reference, AlibiError, AlibiPositionalBias};

use crate::measure::{median, read_buffer, round3, time_ms, wait_idle};

/// The dense figures of one case, medians in milliseconds.
pub struct DenseFigures {
    pub strided_fresh_ms: f64,
    pub dense_ms: f64,
    /// `encode_into` a buffer allocated once, fresh (nothing cached): the kernel's own cost,
    /// without the new buffer's allocation and wgpu's zeroing of it.
    pub into_ms: f64,
    /// The same into the same buffer for the strided tensor's shape, `j` rounded up to a
    /// multiple of 4 (rows of whole vec4s from byte 0: the strided kernel writes them): the
    /// strided kernel's own cost for `forward(i, j)`'s tensor.
    pub strided_into_ms: f64,
    pub copy_new_ms: f64,
    pub dense_hit_ms: f64,
    /// `encode_into` the reused buffer from the cache, and a device copy into it.
    pub hit_into_ms: f64,
    pub copy_into_ms: f64,
    pub exact: bool,
}

impl DenseFigures {
    pub fn dense_over_strided(&self) -> f64 {
        round3(self.dense_ms / self.strided_fresh_ms)
    }

    pub fn reused_over_strided(&self) -> f64 {
        round3(self.into_ms / self.strided_fresh_ms)
    }

    pub fn reused_over_strided_reused(&self) -> f64 {
        round3(self.into_ms / self.strided_into_ms)
    }

    pub fn dense_hit_over_copy(&self) -> f64 {
        round3(self.dense_hit_ms / self.copy_new_ms)
    }

    pub fn hit_into_over_copy(&self) -> f64 {
        round3(self.hit_into_ms / self.copy_into_ms)
    }
}

/// Measures `forward_dense(i, j)` fresh and from the cache, `runs` timed runs after a
/// warm-up, each figure alternated with its baseline. Leaves the cache budget as it was.
pub fn measure_dense(
    alibi: &mut AlibiPositionalBias,
    i: usize,
    j: usize,
    runs: usize,
) -> Result<DenseFigures, AlibiError> {
    let budget = alibi.cache_stats().budget_bytes;
    let device = alibi.device().clone();
    let bytes = ((alibi.total_heads() * i * j * alibi.dtype().size()) as u64)
        .next_multiple_of(4)
        .max(4);
    let buffer = |usage| {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("bench dense copy"),
            size: bytes,
            usage,
            mapped_at_creation: false,
        })
    };
    let source = buffer(wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST);
    let expected = expected_bytes(alibi, i, j)?;
    let mut exact = true;
    let (mut strided, mut dense, mut into) = (Vec::new(), Vec::new(), Vec::new());
    let mut strided_into = Vec::new();
    // Room for the strided tensor's padded rows too.
    let padded = (alibi.total_heads() * i * j.next_multiple_of(4) * alibi.dtype().size()) as u64;
    let reused = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("bench dense target"),
        size: padded.max(bytes),
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_DST
            | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    // `encode_into` the buffer allocated once, submitted and finished: generated while the
    // cache is off, copied from it once it holds `(i, j)`.
    let into_reused = |alibi: &mut AlibiPositionalBias, j: usize| {
        let mut encoder = device.create_command_encoder(&Default::default());
        let _written = alibi.encode_into(&mut encoder, i, j, &reused, 0)?;
        alibi.queue().submit([encoder.finish()]);
        wait_idle(&device)
    };
    alibi.set_cache_budget(0);
    for run in 0..=runs {
        let s = time_ms(|| {
            alibi.forward(i, j)?;
            wait_idle(&device)
        })?;
        let mut result = None;
        let d = time_ms(|| {
            result = Some(alibi.forward_dense(i, j)?);
            wait_idle(&device)
        })?;
        let k = time_ms(|| into_reused(alibi, j.next_multiple_of(4)))?;
        let n = time_ms(|| into_reused(alibi, j))?;
        if run == 0 {
            exact &= read(alibi, result.as_ref().map(|r| r.buffer()), &expected);
        } else {
            strided.push(s);
            dense.push(d);
            into.push(n);
            strided_into.push(k);
        }
    }
    alibi.set_cache_budget(budget);
    alibi.forward(i, j)?;
    let (mut hit, mut copy) = (Vec::new(), Vec::new());
    let (mut hit_into, mut copy_into) = (Vec::new(), Vec::new());
    for run in 0..=runs {
        let h = time_ms(|| into_reused(alibi, j))?;
        if run == 0 {
            exact &= read(alibi, Some(&reused), &expected);
        }
        let c = time_ms(|| {
            let mut encoder = device.create_command_encoder(&Default::default());
            encoder.copy_buffer_to_buffer(&source, 0, &reused, 0, bytes);
            alibi.queue().submit([encoder.finish()]);
            wait_idle(&device)
        })?;
        if run > 0 {
            hit_into.push(h);
            copy_into.push(c);
        }
    }
    for run in 0..=runs {
        let mut result = None;
        let h = time_ms(|| {
            result = Some(alibi.forward_dense(i, j)?);
            wait_idle(&device)
        })?;
        let c = time_ms(|| {
            let target = buffer(
                wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
            );
            let mut encoder = device.create_command_encoder(&Default::default());
            encoder.copy_buffer_to_buffer(&source, 0, &target, 0, bytes);
            alibi.queue().submit([encoder.finish()]);
            wait_idle(&device)
        })?;
        if run == 0 {
            exact &= read(alibi, result.as_ref().map(|r| r.buffer()), &expected);
        } else {
            hit.push(h);
            copy.push(c);
        }
    }
    Ok(DenseFigures {
        strided_fresh_ms: median(strided),
        dense_ms: median(dense),
        into_ms: median(into),
        strided_into_ms: median(strided_into),
        copy_new_ms: median(copy),
        dense_hit_ms: median(hit),
        hit_into_ms: median(hit_into),
        copy_into_ms: median(copy_into),
        exact,
    })
}

/// The oracle's dense bytes for `(i, j)` of `alibi` (f32: the values; f16: rounded).
fn expected_bytes(alibi: &AlibiPositionalBias, i: usize, j: usize) -> Result<Vec<u8>, AlibiError> {
    let (slopes, total) = (alibi.slopes(), alibi.total_heads());
    let values = if alibi.causal() {
        reference::forward_causal(slopes, total, i, j)?
    } else {
        reference::forward(slopes, total, i, j)?
    };
    let dtype = alibi.dtype();
    Ok(values
        .as_slice()
        .iter()
        .flat_map(|&v| match dtype.size() {
            2 => alibi_wgpu::half::f16::from_f32(dtype.round(v))
                .to_bits()
                .to_le_bytes()
                .to_vec(),
            _ => v.to_bits().to_le_bytes().to_vec(),
        })
        .collect())
}

/// Whether `buffer` starts with `expected`, read back through a staging buffer.
fn read(alibi: &AlibiPositionalBias, buffer: Option<&wgpu::Buffer>, expected: &[u8]) -> bool {
    let Some(buffer) = buffer else { return false };
    read_buffer(alibi.device(), alibi.queue(), buffer)
        .is_some_and(|bytes| bytes.len() >= expected.len() && bytes[..expected.len()] == *expected)
}
