//! The module's calls that end in host memory: readback of a view, `forward` followed by
//! readback, and their blocking forms for native code.

use std::sync::Arc;

use super::AlibiPositionalBias;
use crate::bias::AlibiBias;
use crate::dtype::BiasDtype;
use crate::error::{AlibiError, Result};
use crate::gpu::device::context::GpuContext;
use crate::gpu::device::readback::{copy_from_bytes, widen_f16, Readback};
use crate::host::HostBias;

/// A module's readback, held apart from the module.
pub(crate) struct Reader {
    gpu: Arc<GpuContext>,
    readback: Arc<Readback>,
    /// The module's budget when the reader was made: it bounds the staging kept.
    budget: u64,
}

impl Reader {
    /// Reads `bias` back into `out` (resized, then overwritten row-major): f16 values
    /// widened to f32, which is exact, as they are gathered.
    pub async fn read_into(&self, bias: &AlibiBias, out: &mut Vec<f32>) -> Result<()> {
        match bias.dtype() {
            BiasDtype::F16 => {
                self.readback
                    .read_into(&self.gpu, bias, self.budget, out, widen_f16)
                    .await
            }
            _ => self.read_stored(bias, out).await,
        }
    }

    /// Reads `bias` back as stored: `T` is its element type.
    async fn read_stored<T: bytemuck::Pod + Send>(
        &self,
        bias: &AlibiBias,
        out: &mut Vec<T>,
    ) -> Result<()> {
        debug_assert_eq!(std::mem::size_of::<T>(), bias.dtype().size());
        self.readback
            .read_into(&self.gpu, bias, self.budget, out, copy_from_bytes)
            .await
    }
}

impl AlibiPositionalBias {
    /// Reads a view back into a caller-owned host tensor.
    pub async fn read(&self, bias: &AlibiBias) -> Result<HostBias> {
        let mut data = Vec::new();
        self.read_into(bias, &mut data).await?;
        Ok(HostBias::new(bias.shape(), data))
    }

    /// Reads an f16 view (from a module of [`BiasDtype::F16`]) back as it is stored.
    ///
    /// # Errors
    /// [`AlibiError::Unsupported`](crate::AlibiError::Unsupported) for an f32 view, which
    /// would have to be rounded: read it with [`read`](Self::read).
    pub async fn read_f16(&self, bias: &AlibiBias) -> Result<HostBias<half::f16>> {
        if bias.dtype() != BiasDtype::F16 {
            return Err(AlibiError::Unsupported {
                what: "f16 readbacks of f32 biases",
                reason: "the values would be rounded; read them as f32",
            });
        }
        let mut data = Vec::new();
        self.reader().read_stored(bias, &mut data).await?;
        Ok(HostBias::new(bias.shape(), data))
    }

    /// Reads a view back into `out` (resized, then overwritten row-major `[heads, i, j]`),
    /// reusing its capacity: a loop that reads into one vector pays for its pages once.
    /// An f16 view's values are widened to f32, exactly.
    pub async fn read_into(&self, bias: &AlibiBias, out: &mut Vec<f32>) -> Result<()> {
        self.reader().read_into(bias, out).await
    }

    /// What a readback needs, apart from the module, so that the module can be called
    /// while readbacks are in flight (JavaScript does that: `crate::web`).
    pub(crate) fn reader(&self) -> Reader {
        Reader {
            gpu: self.gpu.clone(),
            readback: self.readback.clone(),
            budget: self.cache.stats().budget_bytes,
        }
    }

    /// [`forward`](Self::forward) then [`read`](Self::read) (see
    /// [`forward_to_host_into`](Self::forward_to_host_into)).
    pub async fn forward_to_host(&mut self, i: usize, j: usize) -> Result<HostBias> {
        let mut data = Vec::new();
        self.forward_to_host_into(i, j, &mut data).await?;
        Ok(HostBias::new([self.total_heads, i, j], data))
    }

    /// [`forward`](Self::forward) then [`read_into`](Self::read_into). On the host-mapped
    /// path a miss copies the values into `out` as it writes them to the device, so there
    /// is nothing to read back (and, as in `forward`, it may block its thread while the
    /// device finishes with a reused buffer: that path exists only off the web).
    pub async fn forward_to_host_into(
        &mut self,
        i: usize,
        j: usize,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        let (bias, teed) = self.forward_teeing(i, j, Some(&mut *out))?;
        if teed {
            // What read_into would report: errors of earlier submissions.
            return self.gpu.errors.settle().await;
        }
        self.read_into(&bias, out).await
    }
}

/// Blocking wrappers of the `async` calls, for native code (nothing may block on the web).
#[cfg(not(target_arch = "wasm32"))]
impl AlibiPositionalBias {
    /// Blocking [`AlibiPositionalBias::read`].
    pub fn read_blocking(&self, bias: &AlibiBias) -> Result<HostBias> {
        pollster::block_on(self.read(bias))
    }

    /// Blocking [`AlibiPositionalBias::read_f16`].
    pub fn read_f16_blocking(&self, bias: &AlibiBias) -> Result<HostBias<half::f16>> {
        pollster::block_on(self.read_f16(bias))
    }

    /// Blocking [`AlibiPositionalBias::read_into`].
    pub fn read_into_blocking(&self, bias: &AlibiBias, out: &mut Vec<f32>) -> Result<()> {
        pollster::block_on(self.read_into(bias, out))
    }

    /// Blocking [`AlibiPositionalBias::forward_to_host`].
    pub fn forward_to_host_blocking(&mut self, i: usize, j: usize) -> Result<HostBias> {
        pollster::block_on(self.forward_to_host(i, j))
    }

    /// Blocking [`AlibiPositionalBias::forward_to_host_into`].
    pub fn forward_to_host_into_blocking(
        &mut self,
        i: usize,
        j: usize,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        pollster::block_on(self.forward_to_host_into(i, j, out))
    }
}
