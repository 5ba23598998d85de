//! [`AlibiConfig`]: what an [`AlibiPositionalBias`](crate::AlibiPositionalBias) is built
//! from. Nothing here is checked until a module is built from it.

use crate::cache::DEFAULT_CACHE_BUDGET_BYTES;
use crate::dtype::BiasDtype;
use crate::generation::GenerationPath;
use crate::slopes::SlopeSource;

/// How to build an [`AlibiPositionalBias`](crate::AlibiPositionalBias): heads, padding heads, slopes, cache budget and
/// generation path.
///
/// ```
/// use alibi_wgpu::AlibiConfig;
/// let config = AlibiConfig::new(12).total_heads(16).max_bias(8.0).cache_budget_bytes(64 << 20);
/// ```
///
/// A builder has setters only: what a module made of it, the module's getters say, under the
/// setters' names ([`AlibiPositionalBias::total_heads`](crate::AlibiPositionalBias::total_heads),
/// [`causal`](crate::AlibiPositionalBias::causal), [`dtype`](crate::AlibiPositionalBias::dtype),
/// [`generation_path`](crate::AlibiPositionalBias::generation_path)).
#[derive(Clone, Debug, PartialEq)]
pub struct AlibiConfig {
    pub(crate) heads: usize,
    pub(crate) total_heads: Option<usize>,
    pub(crate) slopes: SlopeSource,
    pub(crate) cache_budget_bytes: u64,
    pub(crate) generation_path: GenerationPath,
    pub(crate) causal: bool,
    pub(crate) dtype: BiasDtype,
}

impl AlibiConfig {
    /// `heads` heads with the paper's slopes, no padding heads, the default cache budget.
    pub fn new(heads: usize) -> Self {
        Self {
            heads,
            total_heads: None,
            slopes: SlopeSource::Paper,
            cache_budget_bytes: DEFAULT_CACHE_BUDGET_BYTES,
            generation_path: GenerationPath::Auto,
            causal: false,
            dtype: BiasDtype::F32,
        }
    }

    /// `heads` heads padded to `total_heads` when given: the arguments of x-transformers'
    /// constructor.
    pub(crate) fn padded(heads: usize, total_heads: Option<usize>) -> Self {
        Self {
            total_heads,
            ..Self::new(heads)
        }
    }

    /// Output heads; heads past `heads` are zero. Defaults to `heads`.
    pub fn total_heads(mut self, total_heads: usize) -> Self {
        self.total_heads = Some(total_heads);
        self
    }

    /// Where the slopes come from.
    pub fn slopes(mut self, slopes: SlopeSource) -> Self {
        self.slopes = slopes;
        self
    }

    /// ggml's slopes with this `max_bias`, computed exactly (8 gives the paper's):
    /// [`SlopeSource::MaxBias`].
    pub fn max_bias(self, max_bias: f64) -> Self {
        self.slopes(SlopeSource::MaxBias(max_bias))
    }

    /// llama.cpp's f32 slopes with this `max_bias`, bit for bit: [`SlopeSource::GgmlF32`].
    pub fn ggml_max_bias(self, max_bias: f32) -> Self {
        self.slopes(SlopeSource::GgmlF32(max_bias))
    }

    /// One slope per head, as given.
    pub fn custom_slopes(self, slopes: Vec<f32>) -> Self {
        self.slopes(SlopeSource::Custom(slopes))
    }

    /// Byte budget of the cache (default [`DEFAULT_CACHE_BUDGET_BYTES`]): cached tensors
    /// plus evicted buffers kept for reuse never hold more; 0 disables caching.
    pub fn cache_budget_bytes(mut self, bytes: u64) -> Self {
        self.cache_budget_bytes = bytes;
        self
    }

    /// Where generations are computed (default [`GenerationPath::Auto`]).
    pub fn generation_path(mut self, path: GenerationPath) -> Self {
        self.generation_path = path;
        self
    }

    /// Causal biases (default off): every future key (`k > j - i + r`) of every head is
    /// `-inf`, fused into the same generation and cached like the plain bias, so a decode
    /// step needs no separate mask.
    pub fn causal(mut self, causal: bool) -> Self {
        self.causal = causal;
        self
    }

    /// The element type of the biases (default [`BiasDtype::F32`]); f16 on every device
    /// (rounded exactly in integer arithmetic where it lacks `wgpu::Features::SHADER_F16`).
    pub fn dtype(mut self, dtype: BiasDtype) -> Self {
        self.dtype = dtype;
        self
    }

    /// `total_heads`, or `heads` when unset.
    pub(crate) fn resolved_total_heads(&self) -> usize {
        self.total_heads.unwrap_or(self.heads)
    }
}
