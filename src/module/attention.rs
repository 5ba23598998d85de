//! Fused attention with the module's ALiBi computed in registers (docs/attention.md):
//! recorded into the caller's encoder on the caller's buffers, or from host arrays to a
//! host array.

use std::future::Future;
use std::sync::Arc;

use super::AlibiPositionalBias;
use crate::attention::{
    AttentionBias, AttentionBuffers, AttentionError, AttentionOptions, AttentionShape,
};
use crate::bias::{AlibiBias, BiasLayout};
use crate::dense::GpuCheck;
use crate::dtype::BiasDtype;
use crate::error::{AlibiError, Result};
use crate::gpu::attention::kernel::FlashBuffers;
use crate::gpu::attention::plan::{plan, FlashPlan, FlashSettings};
use crate::gpu::device::scope::Work;
use crate::validation::check_positions;

impl AlibiPositionalBias {
    /// Records `softmax(q k^T * scale + alibi) v` into the caller's `encoder`, reading the
    /// caller's `q`, `k`, `v` and writing `out` (docs/attention.md). The ALiBi term is the
    /// module's bias for query head `h` (its slope; none for padding heads), computed in
    /// registers with the bits `forward` writes: no bias tensor exists. A causal module
    /// masks future keys; rows that see no key output 0. Valid once the caller submits.
    ///
    /// ```
    /// # fn main() -> Result<(), alibi_wgpu::AlibiError> {
    /// use alibi_wgpu::{AlibiConfig, AlibiPositionalBias, AttentionBuffers, AttentionOptions, AttentionShape};
    /// let gpu = pollster::block_on(alibi_wgpu::open_device(None))?;
    /// let alibi = AlibiPositionalBias::on_device(&gpu, AlibiConfig::new(8).causal(true))?;
    /// // 8 query heads over 2 key/value heads (grouped-query), 16 queries, 16 keys, d = 64.
    /// let shape = AttentionShape { batch: 1, query_heads: 8, kv_heads: 2, queries: 16, keys: 16, head_dim: 64 };
    /// let tensor = |len: usize| gpu.device.create_buffer(&wgpu::BufferDescriptor {
    ///     label: None,
    ///     size: (len * 4) as u64,
    ///     usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
    ///     mapped_at_creation: false,
    /// });
    /// let (q, k, v, out) = (tensor(shape.query_len()), tensor(shape.key_len()), tensor(shape.key_len()), tensor(shape.query_len()));
    /// let mut encoder = gpu.device.create_command_encoder(&Default::default());
    /// let buffers = AttentionBuffers { q: &q, k: &k, v: &v, out: &out };
    /// alibi.encode_attention(&mut encoder, buffers, shape, &AttentionOptions::new())?;
    /// gpu.queue.submit([encoder.finish()]);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`AlibiError::Attention`] for a shape, scale, offsets or buffer the call cannot take
    /// (each names the value and the rule), before anything is recorded; the sequence
    /// errors of [`forward`](Self::forward) for `queries` and `keys`;
    /// [`AlibiError::PositionOutOfRange`] for offsets past ±[`MAX_POSITION`](crate::MAX_POSITION).
    pub fn encode_attention(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        buffers: AttentionBuffers<'_>,
        shape: AttentionShape,
        options: &AttentionOptions<'_>,
    ) -> Result<GpuCheck> {
        self.gpu.ensure_alive()?;
        if options.dtype == BiasDtype::F16 && !self.gpu.has_f16() {
            return Err(AlibiError::Attention(AttentionError::NoF16));
        }
        let planned = self.plan_attention(shape, options)?;
        self.check_attention_buffers(buffers, shape, options)?;
        let Some(planned) = planned else {
            return self.zero_output(encoder, buffers, shape, options.dtype);
        };
        let call = self.gpu.errors.begin_call();
        let offsets = self.offsets_buffer(shape.batch, options)?;
        let scratch = |bytes: u64| {
            self.gpu.create_buffer(
                "alibi attention scratch",
                bytes.max(16),
                wgpu::BufferUsages::STORAGE,
                false,
            )
        };
        let partial = scratch(planned.partial_bytes)?;
        let unused_bias = scratch(16)?;
        let bias = match options.bias {
            AttentionBias::Tensor(bias) => bias,
            _ => &unused_bias,
        };
        self.attention_kernels.encode(
            &self.gpu,
            encoder,
            &planned,
            FlashBuffers {
                slopes: &self.slopes.buffer,
                q: buffers.q,
                k: buffers.k,
                v: buffers.v,
                out: buffers.out,
                offsets: &offsets,
                partial: &partial,
                bias,
            },
        )?;
        Ok(GpuCheck {
            errors: vec![self.gpu.errors.untied(), call.record()],
        })
    }

    /// [`encode_attention`](Self::encode_attention) from host arrays to a host array: `q`,
    /// `k`, `v` f32 in the shape's layout, the output `[batch, query_heads, queries,
    /// head_dim]` (the options' dtype is ignored: f32). The arrays are uploaded and the
    /// work submitted when called; the future, which holds neither the module nor the
    /// arrays, only reads the output back.
    ///
    /// ```
    /// # fn main() -> Result<(), alibi_wgpu::AlibiError> {
    /// use alibi_wgpu::{AlibiPositionalBias, AttentionOptions, AttentionShape};
    /// let alibi = pollster::block_on(AlibiPositionalBias::new_default(4, None))?;
    /// let shape = AttentionShape { batch: 1, query_heads: 4, kv_heads: 4, queries: 3, keys: 5, head_dim: 32 };
    /// let q = vec![0.5; shape.query_len()];
    /// let kv = vec![1.0; shape.key_len()];
    /// let out = pollster::block_on(alibi.attention(&q, &kv, &kv, shape, &AttentionOptions::new()))?;
    /// assert_eq!(out.len(), shape.query_len());
    /// assert!(out.iter().all(|&x| (x - 1.0).abs() < 1e-6)); // every value row is all ones
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`AttentionError::Length`] for arrays of the wrong length; those of
    /// `encode_attention`; and those of a readback.
    pub fn attention(
        &self,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        shape: AttentionShape,
        options: &AttentionOptions<'_>,
    ) -> impl Future<Output = Result<Vec<f32>>> + 'static {
        let options = options.clone().dtype(BiasDtype::F32);
        let reading = self
            .attention_on_host_arrays(q, k, v, shape, &options)
            .map(|view| self.read(&view));
        async move { Ok(reading?.await?.into_vec()) }
    }

    /// [`attention`](Self::attention) in f16 (needs `SHADER_F16`): f16 inputs and output,
    /// accumulated in f32.
    ///
    /// # Errors
    /// [`AttentionError::NoF16`] without `SHADER_F16`; those of `attention`.
    pub fn attention_f16(
        &self,
        q: &[half::f16],
        k: &[half::f16],
        v: &[half::f16],
        shape: AttentionShape,
        options: &AttentionOptions<'_>,
    ) -> impl Future<Output = Result<Vec<half::f16>>> + 'static {
        let options = options.clone().dtype(BiasDtype::F16);
        let reading = self
            .attention_on_host_arrays(q, k, v, shape, &options)
            .map(|view| self.read_f16(&view));
        async move { Ok(reading?.await?.into_vec()) }
    }

    /// Uploads `q`, `k`, `v`, records and submits the attention, and gives the output as a
    /// `[1, rows, head_dim]` view to read back.
    fn attention_on_host_arrays<T: bytemuck::Pod>(
        &self,
        q: &[T],
        k: &[T],
        v: &[T],
        shape: AttentionShape,
        options: &AttentionOptions<'_>,
    ) -> Result<AlibiBias> {
        // The checks before any upload, the shape's before the arrays': a refused call
        // allocates nothing.
        if options.dtype == BiasDtype::F16 && !self.gpu.has_f16() {
            return Err(AlibiError::Attention(AttentionError::NoF16));
        }
        self.plan_attention(shape, options)?;
        let lengths = [
            ("q", q.len(), shape.query_len()),
            ("k", k.len(), shape.key_len()),
            ("v", v.len(), shape.key_len()),
        ];
        for (name, got, expected) in lengths {
            if got != expected {
                return Err(AlibiError::Attention(AttentionError::Length {
                    name,
                    got,
                    expected,
                }));
            }
        }
        let upload = |what, values: &[T]| self.upload(what, bytemuck::cast_slice(values));
        let (q, k, v) = (upload("q", q)?, upload("k", k)?, upload("v", v)?);
        let bytes = (std::mem::size_of::<T>() * shape.query_len()).max(16) as u64;
        let out = self.gpu.create_buffer(
            "alibi attention output",
            bytes,
            wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            false,
        )?;
        let mut encoder = self.gpu.device.create_command_encoder(&Default::default());
        let buffers = AttentionBuffers {
            q: &q,
            k: &k,
            v: &v,
            out: &out,
        };
        let check = self.encode_attention(&mut encoder, buffers, shape, options)?;
        self.gpu.run(Work::named("submitting an attention"), || {
            self.gpu.queue.submit([encoder.finish()]);
        })?;
        let rows = shape.batch * shape.query_heads * shape.queries;
        Ok(AlibiBias {
            // An empty output is an empty view, with no buffer to read.
            buffer: (rows * shape.head_dim > 0).then(|| Arc::new(out)),
            shape: [1, rows, shape.head_dim],
            layout: BiasLayout {
                offset: 0,
                head_stride: (rows * shape.head_dim) as u64,
                row_stride: shape.head_dim as u64,
            },
            dtype: options.dtype,
            binding_alignment: self.gpu.limits.binding_alignment,
            errors: check.errors.last().cloned().unwrap_or_default(),
        })
    }

    /// Checks and plans a call on this module and device.
    fn plan_attention(
        &self,
        shape: AttentionShape,
        options: &AttentionOptions<'_>,
    ) -> Result<Option<FlashPlan>> {
        for (side, values) in [
            ("query", &options.query_offsets),
            ("key", &options.key_offsets),
        ] {
            if let Some(values) = values {
                if values.len() != shape.batch {
                    return Err(AlibiError::Attention(AttentionError::Offsets {
                        side,
                        got: values.len(),
                        batch: shape.batch,
                    }));
                }
                check_positions(side, values)?;
            }
        }
        let settings = FlashSettings {
            total_heads: self.total_heads,
            slope_heads: self.heads,
            causal: self.causal,
            bias_mode: match options.bias {
                AttentionBias::None => 0,
                AttentionBias::Alibi => 1,
                AttentionBias::Tensor(_) => 2,
            },
            dtype: options.dtype,
            scale: options.scale,
            window: options.window,
        };
        plan(shape, settings, self.attention_limits)
    }

    /// The per-batch `(query, key)` position offsets as the kernel reads them.
    fn offsets_buffer(&self, batch: usize, options: &AttentionOptions<'_>) -> Result<wgpu::Buffer> {
        let side = |values: &Option<Vec<i32>>, b: usize| values.as_ref().map_or(0, |v| v[b]);
        let pairs: Vec<i32> = (0..batch)
            .flat_map(|b| {
                [
                    side(&options.query_offsets, b),
                    side(&options.key_offsets, b),
                ]
            })
            .collect();
        self.upload("the attention offsets", bytemuck::cast_slice(&pairs))
    }

    /// A storage buffer holding `bytes` (at least 16 bytes long).
    fn upload(&self, what: &'static str, bytes: &[u8]) -> Result<wgpu::Buffer> {
        let size = (bytes.len() as u64).next_multiple_of(4).max(16);
        let buffer = self.gpu.create_buffer(
            what,
            size,
            wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            false,
        )?;
        let whole = bytes.len() / 4 * 4;
        self.gpu.run(Work::allocating(what, size), || {
            self.gpu.queue.write_buffer(&buffer, 0, &bytes[..whole]);
            if whole < bytes.len() {
                // An f16 array of odd length: its last half word, padded.
                let mut tail = [0u8; 4];
                tail[..bytes.len() - whole].copy_from_slice(&bytes[whole..]);
                self.gpu.queue.write_buffer(&buffer, whole as u64, &tail);
            }
        })?;
        Ok(buffer)
    }

    /// Refuses, before anything is recorded, a caller's buffer that is too small, lacks a
    /// usage, belongs to another device, or is the output and an input at once.
    fn check_attention_buffers(
        &self,
        buffers: AttentionBuffers<'_>,
        shape: AttentionShape,
        options: &AttentionOptions<'_>,
    ) -> Result<()> {
        let element = options.dtype.size() as u64;
        let query_bytes = shape.query_len() as u64 * element;
        let key_bytes = shape.key_len() as u64 * element;
        let storage = wgpu::BufferUsages::STORAGE;
        // Without keys the output is cleared by a copy command.
        let out_usage = if shape.keys == 0 {
            storage | wgpu::BufferUsages::COPY_DST
        } else {
            storage
        };
        let mut named = vec![
            ("q", buffers.q, query_bytes, storage),
            ("k", buffers.k, key_bytes, storage),
            ("v", buffers.v, key_bytes, storage),
            ("out", buffers.out, query_bytes, out_usage),
        ];
        if let AttentionBias::Tensor(bias) = options.bias {
            let bytes = (shape.query_heads * shape.queries * shape.keys) as u64 * 4;
            named.push(("bias", bias, bytes, storage));
        }
        for &(name, buffer, needed, usage) in &named {
            check_buffer(name, buffer, needed, usage)?;
            if name != "out" && buffer == buffers.out {
                return Err(AlibiError::Attention(AttentionError::Aliased { name }));
            }
            self.check_own_buffer(buffer)?;
        }
        Ok(())
    }

    /// A call with no key: every output row is 0 (cleared); with no query, nothing.
    fn zero_output(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        buffers: AttentionBuffers<'_>,
        shape: AttentionShape,
        dtype: BiasDtype,
    ) -> Result<GpuCheck> {
        let bytes = shape.query_len() as u64 * dtype.size() as u64;
        let call = self.gpu.errors.begin_call();
        if bytes > 0 {
            self.gpu
                .run(Work::named("clearing an attention output"), || {
                    encoder.clear_buffer(buffers.out, 0, Some(bytes));
                })?;
        }
        Ok(GpuCheck {
            errors: vec![self.gpu.errors.untied(), call.record()],
        })
    }
}

/// Refuses a caller's buffer smaller than `needed` or without `usage`.
fn check_buffer(
    name: &'static str,
    buffer: &wgpu::Buffer,
    needed: u64,
    usage: wgpu::BufferUsages,
) -> Result<()> {
    if buffer.size() < needed || !buffer.usage().contains(usage) {
        return Err(AlibiError::Attention(AttentionError::Buffer {
            name,
            size: buffer.size(),
            needed,
            usage,
            has: buffer.usage(),
        }));
    }
    Ok(())
}
