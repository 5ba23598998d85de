//! Refusals of an attention call, each naming the value and the rule it breaks.

/// Why an attention call was refused (inside [`AlibiError::Attention`](crate::AlibiError::Attention)).
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum AttentionError {
    /// A head dimension the kernel does not take.
    #[error(
        "head dimension {head_dim} is unsupported: it must be a multiple of 4 from 4 to {max}"
    )]
    HeadDim {
        /// The dimension asked for.
        head_dim: usize,
        /// The largest the kernel takes.
        max: usize,
    },
    /// Query heads other than the module's heads.
    #[error("query heads ({query_heads}) must equal the module's total_heads ({total_heads})")]
    QueryHeads {
        /// The shape's query heads.
        query_heads: usize,
        /// The module's `total_heads`.
        total_heads: usize,
    },
    /// Query heads that do not group evenly over the key/value heads.
    #[error("query heads ({query_heads}) must be a multiple of key/value heads ({kv_heads}), which must be at least 1")]
    GroupedHeads {
        /// The shape's query heads.
        query_heads: usize,
        /// The shape's key/value heads.
        kv_heads: usize,
    },
    /// A host array whose length is not the shape's.
    #[error("{name} holds {got} elements but the shape needs {expected}")]
    Length {
        /// `q`, `k` or `v`.
        name: &'static str,
        /// Its length.
        got: usize,
        /// The shape's.
        expected: usize,
    },
    /// A caller's buffer smaller than its tensor, or without the usage the kernel needs.
    #[error("{name} needs {needed} bytes and usage {usage:?} but the buffer holds {size} bytes with usage {has:?}")]
    Buffer {
        /// `q`, `k`, `v`, `out` or `bias`.
        name: &'static str,
        /// The buffer's size.
        size: u64,
        /// The bytes its tensor needs.
        needed: u64,
        /// The usage the kernel needs.
        usage: wgpu::BufferUsages,
        /// The buffer's usage.
        has: wgpu::BufferUsages,
    },
    /// A tensor larger than one storage binding or buffer of the device.
    #[error("{name} needs {bytes} bytes, above the {limit} bytes of {limit_name} on this device; attend over fewer heads, rows or keys per call")]
    TooLarge {
        /// The tensor.
        name: &'static str,
        /// Its bytes.
        bytes: u128,
        /// The limit.
        limit: u64,
        /// The limit's name in `wgpu::Limits`.
        limit_name: &'static str,
    },
    /// A key/value head whose rows need more workgroups than one dispatch grid holds.
    #[error("one key/value head needs {count} workgroups, above the {limit} of one dispatch grid (max_compute_workgroups_per_dimension squared) on this device; attend over fewer rows or keys per call")]
    Workgroups {
        /// The workgroups of one key/value head.
        count: u128,
        /// The most one grid holds.
        limit: u64,
    },
    /// The output buffer given as an input too.
    #[error("{name} and out are the same buffer; the output needs a buffer of its own")]
    Aliased {
        /// `q`, `k`, `v` or `bias`.
        name: &'static str,
    },
    /// Per-batch offsets of another length than the batch.
    #[error("{side} offsets hold {got} values for a batch of {batch}; give one per batch item")]
    Offsets {
        /// `query` or `key`.
        side: &'static str,
        /// The values given.
        got: usize,
        /// The shape's batch.
        batch: usize,
    },
    /// A scale that is NaN or infinite.
    #[error("the scale must be finite, got {0}")]
    Scale(f32),
    /// f16 attention on a device without `SHADER_F16`.
    #[error("f16 attention needs wgpu::Features::SHADER_F16, which this device lacks; use f32")]
    NoF16,
}
