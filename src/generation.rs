//! [`GenerationPath`]: whether the WGSL kernel or the host's cores compute a generation, and
//! [`GenerateShape`], the tensor either writes.
//! Which path a device gets is decided in `gpu/device/open.rs`, beside the rule that gives CPU
//! adapters the feature the host path needs.

/// Where [`forward`](crate::AlibiPositionalBias::forward) and
/// [`get_bias`](crate::AlibiPositionalBias::get_bias) compute the values they generate.
/// Both paths write the same bytes (the tests compare them bit for bit); they differ in
/// speed, and in that the host path fills the buffer before `forward` returns.
///
/// ```
/// # fn main() -> Result<(), alibi_wgpu::AlibiError> {
/// use alibi_wgpu::{AlibiConfig, AlibiPositionalBias, GenerationPath};
/// let gpu = pollster::block_on(alibi_wgpu::open_device(None))?;
/// let config = AlibiConfig::new(8).generation_path(GenerationPath::Shader);
/// let alibi = AlibiPositionalBias::on_device(&gpu, config)?;
/// assert_eq!(alibi.generation_path(), GenerationPath::Shader);
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum GenerationPath {
    /// [`HostMapped`](Self::HostMapped) on a CPU adapter (`wgpu::DeviceType::Cpu`:
    /// lavapipe, llvmpipe, WARP, SwiftShader) whose device has
    /// `wgpu::Features::MAPPABLE_PRIMARY_BUFFERS` ([`open_device`](crate::open_device)
    /// requests it there), [`Shader`](Self::Shader) everywhere else.
    #[default]
    Auto,
    /// The WGSL compute kernel, `shaders/bias/generate.wgsl`: the path of every real GPU.
    Shader,
    /// The host's cores run the CPU path's row loop ([`crate::cpu`]) and write the values straight into
    /// the device buffer through a mapping. On a CPU adapter the device's memory is host
    /// memory and its emulated shader cores store one SIMD lane at a time, so this is the
    /// faster path there (docs/performance.md has the figures). Cached buffers
    /// then also have `MAP_WRITE` usage, which needs the device feature
    /// `MAPPABLE_PRIMARY_BUFFERS`; not available on the web.
    HostMapped,
}

/// The tensor a generation writes, on either path: `heads` heads with slopes, then zero
/// padding heads up to `total_heads`, each `rows` x `cols`, `cols` a multiple of 4; future
/// keys masked when `causal`; elements of `dtype`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct GenerateShape {
    pub heads: usize,
    pub total_heads: usize,
    pub rows: usize,
    pub cols: usize,
    /// The `j` the caller asked for (`cols` is it padded, or grown): errors name it.
    pub requested_cols: usize,
    pub causal: bool,
    pub dtype: crate::dtype::BiasDtype,
}

impl GenerateShape {
    /// Bytes of the tensor, `None` when they overflow `u64`.
    pub fn bytes(&self) -> Option<u64> {
        (self.total_heads as u64)
            .checked_mul(self.rows as u64)?
            .checked_mul(self.cols as u64)?
            .checked_mul(self.dtype.size() as u64)
    }
}
