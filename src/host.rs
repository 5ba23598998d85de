//! A bias tensor on the host: what readback and the CPU reference return.

/// A row-major `[heads, rows, cols]` f32 tensor owned by the caller.
///
/// It is a copy: changing it never changes what a module returns later.
#[derive(Clone, Debug, PartialEq)]
pub struct HostBias {
    shape: [usize; 3],
    data: Vec<f32>,
}

impl HostBias {
    /// Wraps `data`, which must hold `shape[0] * shape[1] * shape[2]` values.
    pub(crate) fn new(shape: [usize; 3], data: Vec<f32>) -> Self {
        debug_assert_eq!(data.len(), shape.iter().product::<usize>());
        Self { shape, data }
    }

    /// `[heads, i, j]`.
    pub fn shape(&self) -> [usize; 3] {
        self.shape
    }

    /// The value at head `h`, query row `r`, key column `k`, or `None` outside the shape.
    pub fn get(&self, h: usize, r: usize, k: usize) -> Option<f32> {
        let [heads, rows, cols] = self.shape;
        (h < heads && r < rows && k < cols).then(|| self.data[(h * rows + r) * cols + k])
    }

    /// One row, `[j]` values.
    ///
    /// # Panics
    /// When `h` or `r` is outside the shape, as slice indexing does; [`HostBias::get`] is the
    /// checked access.
    pub fn row(&self, h: usize, r: usize) -> &[f32] {
        let [_, rows, cols] = self.shape;
        let start = (h * rows + r) * cols;
        &self.data[start..start + cols]
    }

    /// All values, row-major.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// The values, row-major, as an owned vector.
    pub fn into_vec(self) -> Vec<f32> {
        self.data
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
