//! The module's uncached generations: the distance matrix, and biases recorded into the
//! caller's command encoder or written into the caller's buffers, for engines that manage
//! their own memory and submissions.

use std::sync::Arc;

use super::AlibiPositionalBias;
use crate::bias::AlibiBias;
use crate::dtype::BiasDtype;
use crate::error::Result;
use crate::generation::GenerateShape;
use crate::gpu::bias::check_fits;
use crate::validation::{check_sequence, check_target, BIAS_TARGET};

impl AlibiPositionalBias {
    /// Records the generation of a fresh, uncached `[total_heads, i, j]` bias by the kernel
    /// into the caller's encoder; the view is valid once the caller submits it.
    pub fn encode_forward(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        i: usize,
        j: usize,
    ) -> Result<AlibiBias> {
        let shape = [self.total_heads, i, j];
        let Some(generated) = self.uncached_request(i, j)? else {
            return Ok(self.empty_view(shape));
        };
        let buffer = self
            .writer
            .encode_new(&self.gpu, encoder, &self.slopes, generated)?;
        Ok(self.whole_view(Arc::new(buffer), generated, shape))
    }

    /// Records the generation of an uncached `[total_heads, i, j]` bias by the kernel into
    /// the caller's encoder, written to the caller's `target` buffer (usage `STORAGE`, at
    /// least `total_heads * i * ceil4(j) * size` bytes, `size` 4, or 2 for an f16 module:
    /// rows are padded to a multiple of 4 columns, the view starts `ceil4(j) - j` columns
    /// in). For engines that manage their own memory.
    pub fn encode_into(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        i: usize,
        j: usize,
        target: &wgpu::Buffer,
    ) -> Result<AlibiBias> {
        self.generate_into_target(i, j, target, wgpu::BufferUsages::STORAGE, |generated| {
            self.writer
                .encode(&self.gpu, encoder, &self.slopes, generated, target)
        })
    }

    /// Writes an uncached `[total_heads, i, j]` bias into the caller's `target` from the
    /// host, through a mapping, as [`GenerationPath::HostMapped`](crate::GenerationPath::HostMapped) does for `forward`: the
    /// counterpart of [`encode_into`](Self::encode_into) for engines on a CPU adapter.
    /// `target` needs `MAP_WRITE` usage and the size `encode_into` documents. A shader can
    /// bind the view only if `target` also has `STORAGE` (which, with `MAP_WRITE`, takes
    /// the device feature `MAPPABLE_PRIMARY_BUFFERS`); without it the view is for copies and
    /// readback. Blocks until the device lets the buffer be mapped, then writes on every
    /// core, and leaves it unmapped; not on the web. `target` must not be mapped already:
    /// that is an [`AlibiError::Map`](crate::AlibiError::Map), after which wgpu may still
    /// see the buffer as mapping until the caller unmaps it.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn write_into(&self, i: usize, j: usize, target: &wgpu::Buffer) -> Result<AlibiBias> {
        self.generate_into_target(i, j, target, wgpu::BufferUsages::MAP_WRITE, |generated| {
            self.writer
                .write_into(&self.gpu, &self.slopes, generated, target)
        })
    }

    /// The distance matrix `[1, i, j]`, `-|k - (j - i + r)|`, uncached (docs/semantics.md, "get_bias").
    pub fn get_bias(&self, i: usize, j: usize) -> Result<AlibiBias> {
        let shape = [1, i, j];
        let Some(exact) = self.uncached_request(i, j)? else {
            // f32 like every distance matrix, whatever the module's type.
            return Ok(AlibiBias {
                dtype: BiasDtype::F32,
                ..self.empty_view(shape)
            });
        };
        // The distances are f32 and unmasked, whatever the module's biases are.
        let generated = GenerateShape {
            heads: 1,
            total_heads: 1,
            causal: false,
            dtype: BiasDtype::F32,
            ..exact
        };
        let call = self.gpu.errors.begin_call();
        let buffer = self
            .writer
            .generate(&self.gpu, &self.unit_slope, generated, None, None)?;
        let view = self.whole_view(Arc::new(buffer), generated, shape);
        Ok(AlibiBias {
            errors: call.record(),
            ..view
        })
    }

    /// An uncached `[total_heads, i, j]` bias in the caller's `target`: checks the request
    /// and that `target` has `usage` and the room, lets `write` record or write the
    /// generation, and gives the view of it.
    fn generate_into_target(
        &self,
        i: usize,
        j: usize,
        target: &wgpu::Buffer,
        usage: wgpu::BufferUsages,
        write: impl FnOnce(GenerateShape) -> Result<()>,
    ) -> Result<AlibiBias> {
        let shape = [self.total_heads, i, j];
        let Some(generated) = self.uncached_request(i, j)? else {
            return Ok(self.empty_view(shape));
        };
        // The device's limits before the caller's target: a tensor too large for the
        // device is `TooLarge`, whatever the target.
        let (needed, _) = check_fits(generated, self.gpu.limits)?;
        check_target(
            (target.usage(), target.size()),
            needed,
            usage,
            (BIAS_TARGET, shape),
        )?;
        let call = self.gpu.errors.begin_call();
        write(generated)?;
        let view = self.whole_view(Arc::new(target.clone()), generated, shape);
        Ok(AlibiBias {
            errors: call.record(),
            ..view
        })
    }

    /// Checks an uncached request and gives the tensor to generate; `None` when it is empty.
    fn uncached_request(&self, i: usize, j: usize) -> Result<Option<GenerateShape>> {
        self.gpu.ensure_alive()?;
        check_sequence(i, j)?;
        Ok((i > 0 && j > 0).then(|| self.exact_shape(i, j)))
    }
}
