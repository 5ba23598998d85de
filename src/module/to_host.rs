//! The module's calls that end in host memory: readback of a view, and `forward` (or
//! `forward_positions`) followed by readback. They are `async` only: native code waits with
//! `pollster::block_on` (or any executor), the web's event loop completes them.

use std::future::Future;
use std::sync::Arc;

use super::{AlibiPositionalBias, Positions};
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
    /// Reads a view back into a caller-owned host tensor (f16 views widened to f32,
    /// exactly).
    ///
    /// The future holds neither the module nor the view: the module can be called again
    /// while it is pending, so a JavaScript engine or an async task can keep several
    /// readbacks in flight.
    pub fn read(&self, bias: &AlibiBias) -> impl Future<Output = Result<HostBias>> + 'static {
        let (reader, bias) = (self.reader(), bias.clone());
        async move {
            let mut data = Vec::new();
            reader.read_into(&bias, &mut data).await?;
            Ok(HostBias::new(bias.shape(), data))
        }
    }

    /// Reads an f16 view (from a module of [`BiasDtype::F16`]) back as it is stored. Like
    /// [`read`](Self::read), the future holds neither the module nor the view.
    ///
    /// # Errors
    /// [`AlibiError::Unsupported`](crate::AlibiError::Unsupported) for an f32 view, which
    /// would have to be rounded: read it with [`read`](Self::read).
    pub fn read_f16(
        &self,
        bias: &AlibiBias,
    ) -> impl Future<Output = Result<HostBias<half::f16>>> + 'static {
        let (reader, bias) = (self.reader(), bias.clone());
        async move {
            if bias.dtype() != BiasDtype::F16 {
                return Err(AlibiError::Unsupported {
                    what: "f16 readbacks of f32 biases",
                    reason: "the values would be rounded; read them as f32",
                });
            }
            let mut data = Vec::new();
            reader.read_stored(&bias, &mut data).await?;
            Ok(HostBias::new(bias.shape(), data))
        }
    }

    /// Reads a view back into `out` (resized, then overwritten row-major `[heads, i, j]`),
    /// reusing its capacity: a loop that reads into one vector pays for its pages once.
    /// An f16 view's values are widened to f32, exactly. The future holds `out`, not the
    /// module or the view.
    pub fn read_into<'out>(
        &self,
        bias: &AlibiBias,
        out: &'out mut Vec<f32>,
    ) -> impl Future<Output = Result<()>> + 'out {
        let (reader, bias) = (self.reader(), bias.clone());
        async move { reader.read_into(&bias, out).await }
    }

    /// What a readback needs, apart from the module.
    fn reader(&self) -> Reader {
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
            // What read_into would report: the errors of this view's generation.
            self.gpu.errors.settle_untied().await?;
            return bias.errors.settle().await;
        }
        self.read_into(&bias, out).await
    }

    /// [`forward_positions`](Self::forward_positions) then [`read`](Self::read): one host
    /// tensor `[total_heads, i, j]` per batch item.
    pub async fn forward_positions_to_host(
        &self,
        queries: Positions<'_>,
        keys: Positions<'_>,
    ) -> Result<Vec<HostBias>> {
        let views = self.forward_positions(queries, keys)?;
        let mut tensors = Vec::with_capacity(views.len());
        for view in &views {
            tensors.push(self.read(view).await?);
        }
        Ok(tensors)
    }
}
