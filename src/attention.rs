//! Fused attention with ALiBi computed in registers (docs/attention.md): what a caller says
//! about one attention call. The kernel is `shaders/attention/flash.wgsl`, planned and
//! recorded by `src/gpu/attention/`; the module's methods that run it are in
//! `src/module/attention.rs`.

mod error;

pub use error::AttentionError;

use crate::dtype::BiasDtype;

/// The shape of one attention call: `q` and the output `[batch, query_heads, queries,
/// head_dim]`, `k` and `v` `[batch, kv_heads, keys, head_dim]`, all dense row-major.
///
/// `query_heads` is the module's `total_heads` (its padding heads attend without a bias)
/// and a multiple of `kv_heads`: query head `h` reads key/value head
/// `h / (query_heads / kv_heads)` (grouped-query and multi-query attention, PyTorch's
/// `enable_gqa`). The queries are aligned to the end of the keys, as in `forward(i, j)`:
/// query row `r` sits at position `keys - queries + r` (a decode step is `queries = 1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttentionShape {
    /// Batch items.
    pub batch: usize,
    /// Query heads: the module's `total_heads`.
    pub query_heads: usize,
    /// Key/value heads: `query_heads` for multi-head attention, fewer for grouped-query.
    pub kv_heads: usize,
    /// Query rows per head (`i`).
    pub queries: usize,
    /// Keys per head (`j`).
    pub keys: usize,
    /// Elements of one query, key, value or output row (`d`).
    pub head_dim: usize,
}

impl AttentionShape {
    /// Elements of `q` and of the output.
    pub fn query_len(&self) -> usize {
        self.batch * self.query_heads * self.queries * self.head_dim
    }

    /// Elements of `k` and of `v`.
    pub fn key_len(&self) -> usize {
        self.batch * self.kv_heads * self.keys * self.head_dim
    }
}

/// What the scores get added before the softmax.
#[derive(Clone, Copy, Debug, Default)]
pub enum AttentionBias<'a> {
    /// The module's ALiBi bias, computed in registers from its slopes: no tensor at all.
    #[default]
    Alibi,
    /// Nothing: plain scaled dot-product attention (the masks still apply).
    None,
    /// A materialized bias the caller supplies: a dense `[query_heads, queries, keys]` f32
    /// buffer (such as [`forward_dense`](crate::AlibiPositionalBias::forward_dense)'s),
    /// shared by every batch item, read in place of the ALiBi term.
    Tensor(&'a wgpu::Buffer),
}

/// The options of an attention call, set by builder methods: the scale, the sliding window,
/// per-batch position offsets, and the bias.
///
/// ```
/// use alibi_wgpu::AttentionOptions;
/// // Keys up to 128 positions back, none ahead; the first batch item left-padded by 3.
/// let options = AttentionOptions::new()
///     .window(Some(128), Some(0))
///     .offsets(vec![-3, 0], vec![-3, 0]);
/// # let _ = options;
/// ```
#[derive(Clone, Debug, Default)]
pub struct AttentionOptions<'a> {
    pub(crate) scale: Option<f32>,
    pub(crate) window: (Option<u32>, Option<u32>),
    pub(crate) query_offsets: Option<Vec<i32>>,
    pub(crate) key_offsets: Option<Vec<i32>>,
    pub(crate) bias: AttentionBias<'a>,
    pub(crate) dtype: BiasDtype,
}

impl<'a> AttentionOptions<'a> {
    /// The defaults: scale `1 / sqrt(head_dim)`, no window, no offsets, the ALiBi bias.
    pub fn new() -> Self {
        Self::default()
    }

    /// Multiplies `q . k` by `scale` before the bias is added (default `1 / sqrt(head_dim)`).
    pub fn scale(mut self, scale: f32) -> Self {
        self.scale = Some(scale);
        self
    }

    /// A sliding window with FlashAttention-2's meaning: a query at position `p` sees the
    /// keys at positions `p - left ..= p + right`; `None` leaves that side unlimited. With a
    /// causal module, keys after the query stay hidden whatever `right` is.
    pub fn window(mut self, left: Option<u32>, right: Option<u32>) -> Self {
        self.window = (left, right);
        self
    }

    /// Per batch item, offsets added to the positions of its queries and of its keys (one
    /// value per item on each side): a left-padded item, a KV cache whose first key is not
    /// position 0. Query row `r` of item `b` then sits at `keys - queries + r +
    /// query_offsets[b]`, key `k` at `k + key_offsets[b]`.
    pub fn offsets(mut self, query_offsets: Vec<i32>, key_offsets: Vec<i32>) -> Self {
        self.query_offsets = Some(query_offsets);
        self.key_offsets = Some(key_offsets);
        self
    }

    /// What the scores get before the softmax (default: the module's ALiBi, in registers).
    pub fn bias(mut self, bias: AttentionBias<'a>) -> Self {
        self.bias = bias;
        self
    }

    /// The element type of `q`, `k`, `v` and the output in
    /// [`encode_attention`](crate::AlibiPositionalBias::encode_attention) (default f32; f16
    /// needs `SHADER_F16`, and accumulates in f32). The host forms set it themselves.
    pub fn dtype(mut self, dtype: BiasDtype) -> Self {
        self.dtype = dtype;
        self
    }
}

/// The caller's buffers of one [`encode_attention`](crate::AlibiPositionalBias::encode_attention):
/// dense row-major tensors of the shape's sizes in the options' dtype, each from byte 0,
/// with `STORAGE` usage, on the module's device; `out` a buffer of its own, with `COPY_DST`
/// too for a call without keys (its rows are cleared to 0).
#[derive(Clone, Copy, Debug)]
pub struct AttentionBuffers<'a> {
    /// `[batch, query_heads, queries, head_dim]`.
    pub q: &'a wgpu::Buffer,
    /// `[batch, kv_heads, keys, head_dim]`.
    pub k: &'a wgpu::Buffer,
    /// `[batch, kv_heads, keys, head_dim]`.
    pub v: &'a wgpu::Buffer,
    /// `[batch, query_heads, queries, head_dim]`, written.
    pub out: &'a wgpu::Buffer,
}
