//! The module's uncached generations: the distance matrix, and strided biases recorded
//! into the caller's command encoder (the dense writes into the caller's buffers are in
//! `dense.rs`).

use std::sync::Arc;

use super::AlibiPositionalBias;
use crate::bias::AlibiBias;
use crate::dtype::BiasDtype;
use crate::error::Result;
use crate::generation::GenerateShape;
use crate::validation::check_sequence;

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

    /// Checks an uncached request and gives the tensor to generate; `None` when it is empty.
    fn uncached_request(&self, i: usize, j: usize) -> Result<Option<GenerateShape>> {
        self.gpu.ensure_alive()?;
        check_sequence(i, j)?;
        Ok((i > 0 && j > 0).then(|| self.exact_shape(i, j)))
    }
}
