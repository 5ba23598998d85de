//! ALiBi added in place into the caller's attention scores, recorded into the caller's
//! command encoder: for engines that want the bias inside their attention rather than as a
//! tensor of its own.

use super::AlibiPositionalBias;
use crate::dtype::BiasDtype;
use crate::error::Result;
use crate::gpu::scores::{check_score_fits, plan_score_windows, ScoreShape};
use crate::validation::{check_sequence, check_target};

/// The caller's attention scores that
/// [`AlibiPositionalBias::add_to_scores`] updates: a contiguous, row-major
/// `[batch, total_heads, i, j]` tensor of `dtype` elements at the start of a buffer, and
/// the `scale` the scores are multiplied by before the bias is added.
///
/// `i` and `j` are the module's `forward(i, j)`: query row `r` sits at key position
/// `j - i + r`. The default is a scale of 1.0 (the bias alone is added) and f32 scores.
///
/// ```
/// use alibi_wgpu::{AttentionScores, BiasDtype};
/// // Two sequences of 16 queries over 64 keys, q·k scaled by 1/sqrt(64), in f16.
/// let scores = AttentionScores::new(2, 16, 64).scale(0.125).dtype(BiasDtype::F16);
/// # let _ = scores;
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttentionScores {
    batch: usize,
    i: usize,
    j: usize,
    scale: f32,
    dtype: BiasDtype,
}

impl AttentionScores {
    /// `[batch, total_heads, i, j]` f32 scores, scale 1.0.
    pub const fn new(batch: usize, i: usize, j: usize) -> Self {
        Self {
            batch,
            i,
            j,
            scale: 1.0,
            dtype: BiasDtype::F32,
        }
    }

    /// What each score is multiplied by before the bias is added, such as `1 / sqrt(d)`
    /// for raw `q·k` products (default 1.0: the scores are already scaled).
    pub const fn scale(mut self, scale: f32) -> Self {
        self.scale = scale;
        self
    }

    /// The scores' element type (default f32). f16 needs the device's
    /// `wgpu::Features::SHADER_F16`.
    pub const fn dtype(mut self, dtype: BiasDtype) -> Self {
        self.dtype = dtype;
        self
    }

    /// The shape `[batch, total_heads, i, j]` of these scores for a module of
    /// `total_heads` heads.
    pub const fn shape(&self, total_heads: usize) -> [usize; 4] {
        [self.batch, total_heads, self.i, self.j]
    }
}

impl AlibiPositionalBias {
    /// Records into the caller's `encoder` the in-place update
    /// `scores = scores * scale + bias` of the caller's attention scores, the bias being
    /// this module's ALiBi value for each `(head, query row, key)`, computed by the kernel
    /// as it goes: no bias tensor is allocated, nothing is cached, nothing is submitted.
    ///
    /// `scores` holds the contiguous row-major `[batch, total_heads, i, j]` scores that
    /// `shape` describes, at its start, and needs `STORAGE` usage and at least their bytes,
    /// rounded up to a multiple of 4 (storage bindings are whole words: an f16 tensor of an
    /// odd number of elements needs two bytes more). Every batch item gets the same bias,
    /// padding heads get +0.0, and when the module is causal every future key
    /// (`k > j - i + r`) of every head is set to `-inf`, whatever its score (a masked
    /// fill). A view from [`forward(i, j)`](Self::forward) holds the same biases.
    ///
    /// # Arithmetic
    /// Each value is `score * scale + bias` in f32. The shader compiler may fuse it into one
    /// fused multiply-add: with a scale that is a power of two (1.0, 0.125, 2.0…) the
    /// product is exact, so the result is the same either way, the f32 sum rounded once;
    /// with another scale it may differ from the separately rounded `(score * scale) +
    /// bias` by that one rounding. f16 scores are widened to f32, computed as above, then
    /// rounded to nearest even, finite values saturating at ±65504 (the largest finite f16)
    /// as the module's f16 biases do; the mask's `-inf` stays `-inf`. WGSL lets a device
    /// assume finite arithmetic: what infinite or NaN scores become is the device's.
    ///
    /// # Errors
    /// [`Unsupported`](crate::AlibiError::Unsupported) for f16 scores on a device without
    /// `SHADER_F16`; the module's sequence errors for `i` and `j`;
    /// [`TooLarge`](crate::AlibiError::TooLarge) (the batch counted into its heads) or
    /// [`RowTooLarge`](crate::AlibiError::RowTooLarge) beyond the device's limits;
    /// [`TargetUsage`](crate::AlibiError::TargetUsage) and
    /// [`TargetTooSmall`](crate::AlibiError::TargetTooSmall) for the buffer. An empty
    /// tensor (`batch`, `i` or `j` zero) records nothing and checks no buffer. Scores larger
    /// than a storage binding are updated in windows that each fit one.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), alibi_wgpu::AlibiError> {
    /// use alibi_wgpu::{AlibiConfig, AlibiPositionalBias, AttentionScores};
    /// let gpu = pollster::block_on(alibi_wgpu::open_device(None))?;
    /// let alibi = AlibiPositionalBias::on_device(&gpu, AlibiConfig::new(8).causal(true))?;
    /// let (batch, i, j) = (2, 16, 16);
    /// // Your engine's q·k^T scores, [2, 8, 16, 16] f32.
    /// let scores = gpu.device.create_buffer(&wgpu::BufferDescriptor {
    ///     label: Some("scores"),
    ///     size: (batch * 8 * i * j * 4) as u64,
    ///     usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
    ///     mapped_at_creation: false,
    /// });
    /// let mut encoder = gpu.device.create_command_encoder(&Default::default());
    /// // ... your q·k^T pass writes `scores` here ...
    /// let shape = AttentionScores::new(batch, i, j).scale(0.125); // 1/sqrt(64)
    /// alibi.add_to_scores(&mut encoder, &scores, shape)?;
    /// // ... your softmax pass reads `scores` here ...
    /// gpu.queue.submit([encoder.finish()]);
    /// # Ok(()) }
    /// ```
    pub fn add_to_scores(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        scores: &wgpu::Buffer,
        shape: AttentionScores,
    ) -> Result<()> {
        self.record_scores(encoder, scores, shape)
    }

    /// Checks a score update, plans its windows and records them.
    fn record_scores(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        scores: &wgpu::Buffer,
        shape: AttentionScores,
    ) -> Result<()> {
        self.gpu.ensure_alive()?;
        // The element type first: f16 is refused on such a device whatever the shape.
        self.gpu.require(shape.dtype, "f16 scores")?;
        let AttentionScores { batch, i, j, .. } = shape;
        check_sequence(i, j)?;
        if batch == 0 || i == 0 || j == 0 {
            return Ok(());
        }
        let planned = ScoreShape {
            batch,
            heads: self.heads,
            total_heads: self.total_heads,
            rows: i,
            cols: j,
            causal: self.causal,
            dtype: shape.dtype,
            scale: shape.scale,
        };
        // The device's limits before the caller's buffer, as `encode_into` checks them.
        let (needed, _) = check_score_fits(planned, self.gpu.limits)?;
        let as_bias = [batch.saturating_mul(self.total_heads), i, j];
        let usage = wgpu::BufferUsages::STORAGE;
        let what = "the scores [batch x total_heads, i, j]";
        check_target(
            (scores.usage(), scores.size()),
            needed,
            usage,
            (what, as_bias),
        )?;
        let windows = plan_score_windows(planned, self.gpu.limits)?;
        // Its own call: an error that answers later is not reported by anyone else's read
        // (the caller's own submission of `encoder` is where wgpu reports it too).
        let _call = self.gpu.errors.begin_call();
        self.score_kernels.encode(
            &self.gpu,
            encoder,
            &self.slopes.buffer,
            planned,
            &windows,
            scores,
        )
    }
}
