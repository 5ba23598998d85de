//! [`DenseBias`]: a dense bias tensor on the GPU that the caller owns, the layout engines
//! bind (docs/rust-api.md, "The engine layout").

use std::sync::Arc;

use crate::dtype::BiasDtype;
use crate::error::Result;
use crate::gpu::device::scope::CallErrors;

/// A dense row-major bias on the GPU, in a buffer of its own that the caller owns:
/// `[total_heads, i, j]` from [`forward_dense`](crate::AlibiPositionalBias::forward_dense),
/// `[batch, total_heads, i, j]` from
/// [`forward_positions_dense`](crate::AlibiPositionalBias::forward_positions_dense).
///
/// Element `(h, r, k)` is at element `(h * i + r) * j + k` from the buffer's start (row
/// stride `j`, head stride `i * j`), in [`dtype`](Self::dtype): what onnxruntime-web's
/// `attention_bias`, ggml's masks, burn and candle tensors expect. The buffer's usage is
/// `STORAGE | COPY_SRC | COPY_DST` (plus `MAP_WRITE` when the host-mapped path wrote it), so
/// an engine can bind it, copy from it, write into it or wrap it (onnxruntime-web's
/// `Tensor.fromGpuBuffer`); the module never reads, reuses or writes it again. Its size is
/// [`byte_size`](Self::byte_size) rounded up to a word (an f16 tensor of odd length ends in
/// half a word); an empty tensor has a buffer of one word.
///
/// ```no_run
/// # fn main() -> Result<(), alibi_wgpu::AlibiError> {
/// let mut alibi = pollster::block_on(alibi_wgpu::AlibiPositionalBias::new_default(8, None))?;
/// let bias = alibi.forward_dense(37, 37)?;
/// assert_eq!(bias.shape(), &[8, 37, 37]);
/// assert_eq!(bias.byte_size(), 8 * 37 * 37 * 4);
/// let buffer: wgpu::Buffer = bias.into_buffer(); // yours
/// # let _ = buffer; Ok(()) }
/// ```
#[derive(Debug)]
pub struct DenseBias {
    pub(crate) buffer: wgpu::Buffer,
    pub(crate) shape: Vec<usize>,
    pub(crate) dtype: BiasDtype,
    pub(crate) written: GpuCheck,
}

impl DenseBias {
    /// The buffer, the tensor from its first byte.
    pub fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer
    }

    /// The buffer, yours to keep.
    pub fn into_buffer(self) -> wgpu::Buffer {
        self.buffer
    }

    /// `[total_heads, i, j]`, or `[batch, total_heads, i, j]` at custom positions.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The element type: the module's.
    pub fn dtype(&self) -> BiasDtype {
        self.dtype
    }

    /// Bytes of the tensor: its elements times the element size.
    pub fn byte_size(&self) -> u64 {
        self.len() as u64 * self.dtype.size() as u64
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether it holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The errors of the work that wrote it, to check later or elsewhere.
    pub fn written(&self) -> GpuCheck {
        self.written.clone()
    }

    /// Whether the GPU accepted the work that wrote this tensor ([`GpuCheck::check`]).
    ///
    /// # Errors
    /// [`AlibiError::OutOfMemory`](crate::AlibiError::OutOfMemory) or
    /// [`AlibiError::Gpu`](crate::AlibiError::Gpu) with the failed operation.
    pub async fn check(&self) -> Result<()> {
        self.written.check().await
    }
}

/// The errors of the GPU work one call did: the module's own set-up, the cached generation
/// it copied from (if any), and the call's own. Returned by
/// [`encode_into`](crate::AlibiPositionalBias::encode_into) and held by a [`DenseBias`].
///
/// On native backends a failure is known when the call returns (the call itself returns
/// `Err`), and [`check`](Self::check) resolves at once; on the web the device answers
/// later, and `check` waits for it. Dropping it unchecked ignores those late answers.
#[derive(Clone, Debug, Default)]
pub struct GpuCheck {
    pub(crate) errors: Vec<CallErrors>,
}

impl GpuCheck {
    /// Whether the GPU accepted the call's work: `Err` with the cause when it failed (out
    /// of memory, a validation error, a lost device), `Ok` otherwise. It concerns this call
    /// only: another call's failure is not reported here, nor this one's anywhere else.
    ///
    /// # Errors
    /// [`AlibiError::OutOfMemory`](crate::AlibiError::OutOfMemory) or
    /// [`AlibiError::Gpu`](crate::AlibiError::Gpu) with the failed operation.
    pub async fn check(&self) -> Result<()> {
        for errors in &self.errors {
            errors.settle().await?;
        }
        Ok(())
    }
}

/// The copy commands that write a dense bias from the cache, not recorded: for a target the
/// module cannot bind or record into, such as a `GPUBuffer` made outside wgpu (the
/// JavaScript `forwardInto` records them itself). From
/// [`dense_copies`](crate::AlibiPositionalBias::dense_copies).
///
/// Copy [`spans`](Self::spans) from [`source`](Self::source) into the target, in any order,
/// on the module's queue (after the work it has submitted, which wrote the source). Keep
/// this value until those copies have run: it keeps the cached block from being reused.
#[derive(Debug)]
pub struct DenseCopies {
    pub(crate) source: Arc<wgpu::Buffer>,
    pub(crate) spans: Vec<CopySpan>,
    pub(crate) written: GpuCheck,
}

/// One copy of [`DenseCopies`]: `bytes` bytes from byte `source_offset` of the source to
/// byte `target_offset` of the target, all three multiples of 4 (what a copy command takes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopySpan {
    /// Byte offset in [`DenseCopies::source`].
    pub source_offset: u64,
    /// Byte offset in the target: the tensor's `byte_offset` plus the span's place in it.
    pub target_offset: u64,
    /// Bytes to copy.
    pub bytes: u64,
}

impl DenseCopies {
    /// The cached block the spans copy from.
    pub fn source(&self) -> &wgpu::Buffer {
        &self.source
    }

    /// The copies, which together write every byte of the tensor once.
    pub fn spans(&self) -> &[CopySpan] {
        &self.spans
    }

    /// Whether the GPU accepted the work that wrote the cached block ([`GpuCheck::check`]):
    /// a failed generation leaves the copies nothing valid to copy.
    ///
    /// # Errors
    /// [`AlibiError::OutOfMemory`](crate::AlibiError::OutOfMemory) or
    /// [`AlibiError::Gpu`](crate::AlibiError::Gpu) with the failed operation.
    pub async fn check(&self) -> Result<()> {
        self.written.check().await
    }
}
