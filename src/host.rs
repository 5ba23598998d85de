//! Bias tensors on the host: [`HostBias`], what readback and the CPU paths return, and the
//! sizing of the caller's vectors they write into; and (`mapped`) the host-mapped
//! generation path, which writes a device buffer from the host.

#[cfg(not(target_arch = "wasm32"))]
pub(crate) mod mapped;

use crate::error::{AlibiError, Result};

/// A row-major `[heads, rows, cols]` tensor owned by the caller: f32 values, or
/// `half::f16` ones from [`read_f16`](crate::AlibiPositionalBias::read_f16).
///
/// It is a copy: changing it never changes what a module returns later.
#[derive(Clone, Debug, PartialEq)]
pub struct HostBias<T = f32> {
    shape: [usize; 3],
    data: Vec<T>,
}

impl<T: Copy> HostBias<T> {
    /// Wraps `data`, which must hold `shape[0] * shape[1] * shape[2]` values.
    pub(crate) fn new(shape: [usize; 3], data: Vec<T>) -> Self {
        debug_assert_eq!(data.len(), element_count(shape));
        Self { shape, data }
    }

    /// `[heads, i, j]`.
    pub fn shape(&self) -> [usize; 3] {
        self.shape
    }

    /// The value at head `h`, query row `r`, key column `k`, or `None` outside the shape.
    pub fn get(&self, h: usize, r: usize, k: usize) -> Option<T> {
        let [heads, rows, cols] = self.shape;
        (h < heads && r < rows && k < cols).then(|| self.data[(h * rows + r) * cols + k])
    }

    /// One row, `[j]` values.
    ///
    /// # Panics
    /// When `h` or `r` is outside the shape, as slice indexing does; [`HostBias::get`] is the
    /// checked access.
    pub fn row(&self, h: usize, r: usize) -> &[T] {
        let [_, rows, cols] = self.shape;
        let start = (h * rows + r) * cols;
        &self.data[start..start + cols]
    }

    /// All values, row-major.
    pub fn as_slice(&self) -> &[T] {
        &self.data
    }

    /// The values, row-major, as an owned vector.
    pub fn into_vec(self) -> Vec<T> {
        self.data
    }

    /// The same tensor with `f` applied to every value.
    ///
    /// ```
    /// let bias = alibi_wgpu::cpu::forward(&[0.5], 1, 1, 3).unwrap();
    /// let doubled = bias.map(|v| v * 2.0);
    /// assert_eq!(doubled.row(0, 0), &[-2.0, -1.0, 0.0]);
    /// ```
    pub fn map<U: Copy>(self, f: impl FnMut(T) -> U) -> HostBias<U> {
        HostBias {
            shape: self.shape,
            data: self.data.into_iter().map(f).collect(),
        }
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the tensor holds no value (`i == 0` or `j == 0`).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// A host copy of the bottom-right `j` columns of every row, made while writing:
/// `forward_to_host` on a miss gets its host tensor without reading the buffer back.
// Only the host-mapped writer reads it, and the web has no such path.
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) struct Tee<'a> {
    /// `[total_heads, rows, j]`, row-major.
    pub out: &'a mut [f32],
    /// Columns of the view, at most the generated `cols`.
    pub j: usize,
}

/// Elements of a `[heads, i, j]` tensor: 0 when any length is 0, however large the others
/// (an empty request may have `total_heads` near `usize::MAX`); otherwise the product,
/// saturating (a tensor that exists has a product that fits).
pub(crate) fn element_count(shape: [usize; 3]) -> usize {
    if shape.contains(&0) {
        return 0;
    }
    shape.iter().fold(1usize, |n, &len| n.saturating_mul(len))
}

/// Makes `out` `[heads, i, j]` long for a caller that then overwrites every element.
///
/// Values already there are kept rather than zeroed (a reused vector costs no pass over its
/// memory). A vector without the room gets new, lazily zeroed pages (calloc): no zeroing
/// pass, and the page faults then happen inside the writer's parallel loop, spread over the
/// cores. The old allocation is freed first, so the two never coexist.
///
/// # Errors
/// [`AlibiError::OutOfMemory`] when the element count overflows or the allocation fails.
pub(crate) fn sized_host<T: bytemuck::Zeroable + Clone>(
    out: &mut Vec<T>,
    heads: usize,
    i: usize,
    j: usize,
) -> Result<()> {
    let elements = heads as u128 * i as u128 * j as u128;
    let out_of_memory = || {
        AlibiError::host_out_of_memory_bytes(
            elements.saturating_mul(std::mem::size_of::<T>() as u128),
            "a host bias",
        )
    };
    let len = heads
        .checked_mul(i)
        .and_then(|n| n.checked_mul(j))
        .ok_or_else(out_of_memory)?;
    if out.capacity() >= len {
        out.truncate(len);
        out.resize(len, T::zeroed());
    } else {
        *out = Vec::new();
        *out = bytemuck::try_zeroed_vec(len).map_err(|()| out_of_memory())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Memory;

    #[test]
    fn reused_vectors_keep_their_memory_and_new_room_is_zero() {
        let mut out = vec![7.0f32; 100];
        let before = out.as_ptr();
        sized_host(&mut out, 2, 5, 8).unwrap();
        assert_eq!((out.len(), out.as_ptr()), (80, before));
        assert!(out.iter().all(|&v| v == 7.0), "kept, not zeroed");
        sized_host(&mut out, 2, 5, 10).unwrap();
        assert_eq!((out.len(), out.as_ptr()), (100, before));
        assert!(
            out[80..].iter().all(|&v| v == 0.0),
            "regrown room is zeroed"
        );
        sized_host(&mut out, 3, 5, 10).unwrap();
        assert_eq!(out.len(), 150);
        assert!(out.iter().all(|&v| v == 0.0), "new room is zeroed");
    }

    #[test]
    fn accessors_index_row_major() {
        let bias = HostBias::new([2, 2, 3], (0..12).map(|v| v as f32).collect());
        assert_eq!(bias.shape(), [2, 2, 3]);
        assert_eq!(bias.get(0, 0, 0), Some(0.0));
        assert_eq!(bias.get(0, 1, 0), Some(3.0));
        assert_eq!(bias.get(1, 0, 1), Some(7.0));
        assert_eq!(bias.get(1, 1, 2), Some(11.0));
        for outside in [(2, 0, 0), (0, 2, 0), (0, 0, 3)] {
            assert_eq!(
                bias.get(outside.0, outside.1, outside.2),
                None,
                "{outside:?}"
            );
        }
        assert_eq!(bias.row(0, 1), &[3.0, 4.0, 5.0]);
        assert_eq!(bias.row(1, 0), &[6.0, 7.0, 8.0]);
        assert_eq!((bias.len(), bias.is_empty()), (12, false));
        assert_eq!(bias.as_slice()[5], 5.0);
        assert_eq!(bias.clone().into_vec(), bias.as_slice());
        let empty = HostBias::<f32>::new([3, 0, 4], Vec::new());
        assert_eq!((empty.len(), empty.is_empty()), (0, true));
        assert_eq!(empty.get(0, 0, 0), None);
    }

    #[test]
    fn element_counts_of_empty_shapes_do_not_overflow() {
        assert_eq!(element_count([usize::MAX, 5, 0]), 0);
        assert_eq!(element_count([usize::MAX, 0, 5]), 0);
        assert_eq!(element_count([0, usize::MAX, usize::MAX]), 0);
        assert_eq!(element_count([3, 4, 5]), 60);
        assert_eq!(element_count([usize::MAX, 2, 1]), usize::MAX);
    }

    #[test]
    fn impossible_sizes_are_out_of_memory() {
        let mut out: Vec<f32> = Vec::new();
        for (heads, i, j) in [(usize::MAX, 2, 1), (usize::MAX / 2, 1 << 20, 1 << 20)] {
            match sized_host(&mut out, heads, i, j) {
                Err(AlibiError::OutOfMemory {
                    memory: Memory::Host,
                    bytes,
                    ..
                }) => assert_eq!(bytes, Some(heads as u128 * i as u128 * j as u128 * 4)),
                other => panic!("{other:?}"),
            }
        }
    }
}
