//! The bias at custom positions (x-transformers' `forward_custom_pos`, docs/semantics.md, "Positions"):
//! integer query and key positions, optionally batched, never cached.

use std::sync::Arc;

use super::AlibiPositionalBias;
use crate::bias::{AlibiBias, BiasLayout};
use crate::error::{AlibiError, Result};
use crate::generation::GenerateShape;
use crate::gpu::bias::PositionData;
use crate::validation::{check_positions, check_sequence};

/// Query or key positions for
/// [`forward_positions`](AlibiPositionalBias::forward_positions): `[n]` positions shared by
/// every batch item, or `[batch, n]` ones, row-major.
///
/// ```
/// use alibi_wgpu::Positions;
/// let shared = Positions::shared(&[0, 1, 2, 4]); // [4], for every batch item
/// let batched = Positions::batched(&[0, 1, 2, 5, 6, 7], 2); // [2, 3]
/// # let _ = (shared, batched);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Positions<'a> {
    values: &'a [i32],
    batch: Option<usize>,
}

impl<'a> Positions<'a> {
    /// `[n]` positions, the same for every batch item.
    pub fn shared(values: &'a [i32]) -> Self {
        Self {
            values,
            batch: None,
        }
    }

    /// `[batch, n]` positions: `values.len()` must be a multiple of `batch`.
    pub fn batched(values: &'a [i32], batch: usize) -> Self {
        Self {
            values,
            batch: Some(batch),
        }
    }

    /// `n`, the positions of one batch item; `None` when a batched length is not a
    /// multiple of the batch (or the batch is 0 with values given).
    pub(crate) fn len_per_item(&self) -> Option<usize> {
        match self.batch {
            None => Some(self.values.len()),
            Some(0) => self.values.is_empty().then_some(0),
            Some(batch) => self
                .values
                .len()
                .is_multiple_of(batch)
                .then(|| self.values.len() / batch),
        }
    }
}

impl<'a> From<&'a [i32]> for Positions<'a> {
    fn from(values: &'a [i32]) -> Self {
        Self::shared(values)
    }
}

impl AlibiPositionalBias {
    /// The bias at custom positions: `-slope_h * |keys[k] - queries[r]|` for the heads
    /// with a slope, +0.0 for padding heads, and, for a causal module, `-inf` where
    /// `keys[k] > queries[r]`; in the module's element type. One `[total_heads, i, j]`
    /// view per batch item (a single one when neither side is batched), all in one new
    /// buffer, item after item; never cached. Computed by the kernel on every generation
    /// path, submitted, not waited for.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), alibi_wgpu::AlibiError> {
    /// use alibi_wgpu::{AlibiPositionalBias, Positions};
    /// let alibi = pollster::block_on(AlibiPositionalBias::new_default(4, None))?;
    /// // Two sequences of 3 queries against 4 shared keys: two [4, 3, 4] views.
    /// let queries = [1, 2, 3, 10, 11, 13];
    /// let views = alibi.forward_positions(
    ///     Positions::batched(&queries, 2),
    ///     Positions::shared(&[0, 1, 2, 3]),
    /// )?;
    /// let second = pollster::block_on(alibi.read(&views[1]))?;
    /// assert_eq!(second.row(0, 0), &[-2.5, -2.25, -2.0, -1.75]);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`AlibiError::PositionsMismatch`] when a batched length is not a multiple of its
    /// batch or the two sides' batches differ; [`AlibiError::PositionOutOfRange`] beyond
    /// ±[`MAX_POSITION`](crate::MAX_POSITION); and the errors of `forward` for the sizes.
    pub fn forward_positions(
        &self,
        queries: Positions<'_>,
        keys: Positions<'_>,
    ) -> Result<Vec<AlibiBias>> {
        let (batch, i, j) = self.position_request(queries, keys)?;
        let heads = self.total_heads;
        let shape = [heads, i, j];
        if i == 0 || j == 0 || batch == 0 {
            // Empty views, one per item: a batch of 2^32 empty sequences is a host
            // allocation that may fail, not a panic.
            let mut views = Vec::new();
            views.try_reserve_exact(batch).map_err(|_| {
                let bytes = batch as u128 * std::mem::size_of::<AlibiBias>() as u128;
                AlibiError::host_out_of_memory_bytes(bytes, "the views of empty positions")
            })?;
            views.resize(batch, self.empty_view(shape));
            return Ok(views);
        }
        let total_heads = self.batch_heads(batch, i, j)?;
        let generated = GenerateShape {
            total_heads,
            ..self.exact_shape(i, j)
        };
        let call = self.gpu.errors.begin_call();
        let buffer = Arc::new(self.writer.generate_positions(
            &self.gpu,
            &self.slopes,
            generated,
            heads,
            side(queries, i),
            side(keys, j),
        )?);
        let cols = generated.cols;
        Ok((0..batch)
            .map(|item| AlibiBias {
                errors: call.record(),
                layout: BiasLayout {
                    offset: (item * heads * i * cols + cols - j) as u64,
                    head_stride: (i * cols) as u64,
                    row_stride: cols as u64,
                },
                ..self.slice_view(buffer.clone(), i, cols, shape)
            })
            .collect())
    }
}

impl AlibiPositionalBias {
    /// Checks a request at custom positions (the device alive, the sides' lengths, batches,
    /// values, and that each side binds whole) and gives its `(batch, i, j)`.
    pub(super) fn position_request(
        &self,
        queries: Positions<'_>,
        keys: Positions<'_>,
    ) -> Result<(usize, usize, usize)> {
        self.gpu.ensure_alive()?;
        let (batch, i, j) = batch_shape(queries, keys)?;
        check_sequence(i, j)?;
        check_positions("query", queries.values)?;
        check_positions("key", keys.values)?;
        // Each side is bound whole.
        let binding_limit = self.gpu.device.limits().max_storage_buffer_binding_size;
        for (side, values) in [("query", queries.values), ("key", keys.values)] {
            let bytes = std::mem::size_of_val(values) as u64;
            if bytes > binding_limit {
                return Err(AlibiError::PositionsMismatch {
                    what: format!(
                        "{} {side} positions take {bytes} bytes, more than one storage \
                         binding holds here ({binding_limit}, max_storage_buffer_binding_size)",
                        values.len()
                    ),
                });
            }
        }
        Ok((batch, i, j))
    }

    /// The heads of every batch item together, `batch * total_heads`, refused when they
    /// overflow.
    pub(super) fn batch_heads(&self, batch: usize, i: usize, j: usize) -> Result<usize> {
        self.total_heads
            .checked_mul(batch)
            .ok_or(AlibiError::TooLarge {
                heads: usize::MAX,
                i,
                j,
                bytes: u64::MAX,
                limit: self.gpu.limits.max_buffer_bytes,
                limit_name: "max_buffer_size",
            })
    }
}

/// One side's positions for the kernels: `per_item` apart, or shared (stride 0).
pub(super) fn side(positions: Positions<'_>, per_item: usize) -> PositionData<'_> {
    PositionData {
        values: positions.values,
        stride: if positions.batch.is_some() {
            per_item
        } else {
            0
        },
    }
}

/// The batch and the positions per item, `(batch, i, j)`, of two sides.
fn batch_shape(queries: Positions<'_>, keys: Positions<'_>) -> Result<(usize, usize, usize)> {
    let per_item = |side: &str, positions: Positions<'_>| {
        positions
            .len_per_item()
            .ok_or_else(|| AlibiError::PositionsMismatch {
                what: format!(
                    "{} {side} positions do not split into a batch of {}",
                    positions.values.len(),
                    positions.batch.unwrap_or(1)
                ),
            })
    };
    let (i, j) = (per_item("query", queries)?, per_item("key", keys)?);
    let batch = match (queries.batch, keys.batch) {
        (Some(q), Some(k)) if q != k => {
            return Err(AlibiError::PositionsMismatch {
                what: format!("the query positions have a batch of {q}, the key positions {k}"),
            })
        }
        (Some(batch), _) | (None, Some(batch)) => batch,
        (None, None) => 1,
    };
    Ok((batch, i, j))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::MAX_POSITION;

    #[test]
    fn batches_come_from_the_batched_sides() {
        let shared = Positions::shared(&[0, 1, 2]);
        let batched = Positions::batched(&[0, 1, 2, 3], 2);
        assert_eq!(batch_shape(shared, shared).unwrap(), (1, 3, 3));
        assert_eq!(batch_shape(batched, shared).unwrap(), (2, 2, 3));
        assert_eq!(batch_shape(shared, batched).unwrap(), (2, 3, 2));
        assert_eq!(batch_shape(batched, batched).unwrap(), (2, 2, 2));
        let empty = Positions::batched(&[], 0);
        assert_eq!(batch_shape(empty, shared).unwrap(), (0, 0, 3));
    }

    #[test]
    fn lengths_and_batches_that_do_not_fit_are_refused() {
        let odd = Positions::batched(&[0, 1, 2], 2);
        let shared = Positions::shared(&[0]);
        let message = batch_shape(odd, shared).unwrap_err().to_string();
        assert_eq!(message, "3 query positions do not split into a batch of 2");
        let three = Positions::batched(&[0, 1, 2], 3);
        let message = batch_shape(Positions::batched(&[0, 1], 2), three)
            .unwrap_err()
            .to_string();
        assert_eq!(
            message,
            "the query positions have a batch of 2, the key positions 3"
        );
        assert!(batch_shape(Positions::batched(&[1], 0), shared).is_err());
    }

    #[test]
    fn positions_beyond_2_pow_23_are_refused() {
        assert!(check_positions("key", &[MAX_POSITION, -MAX_POSITION, 0]).is_ok());
        match check_positions("key", &[0, MAX_POSITION + 1]) {
            Err(AlibiError::PositionOutOfRange { index: 1, .. }) => {}
            other => panic!("{other:?}"),
        }
        assert!(check_positions("query", &[i32::MIN]).is_err());
    }
}
