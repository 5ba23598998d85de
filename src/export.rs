//! Bias tensors as a `.safetensors` file (feature `safetensors`), for numpy and PyTorch.
//!
//! A file holds the tensors of one module's calls in order, each `[total_heads, i, j]`
//! little-endian f32 (or f16, for an f16 module's [`HostBias<half::f16>`]) in C order,
//! named `call-N-IxJ` for the Nth call (from 0), with the module's description in the
//! header's `__metadata__`:
//!
//! | key | value |
//! |---|---|
//! | `heads` | heads with a slope, e.g. `4` |
//! | `total_heads` | output heads, padding included, e.g. `8` |
//! | `slopes` | a JSON array of the f32 slopes, each printed so that it parses back to the same f32 |
//! | `formula` | `bias[h, r, k] = -slope_h * \|k - (j - i + r)\|`, zero for padding heads |
//! | `causal` | `true` when future keys are `-inf` (the formula then says so), else `false` |
//! | `alibi_wgpu_version` | this crate's version |
//!
//! `safetensors.numpy.load_file` and `safetensors.torch.load_file` read it; so does this
//! crate's own dependency, `safetensors::SafeTensors::deserialize`.
//!
//! The header is built and checked by the `safetensors` crate's own types
//! ([`Metadata`]); the values are then streamed to the
//! writer in blocks, so a file of several GiB needs no second copy in memory, and a writer
//! that counts bytes (a progress bar) sees them as they go.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::io::{self, Write};

use safetensors::tensor::{Metadata, TensorInfo};
use safetensors::{Dtype, SafeTensorError};

use crate::error::AlibiError;
use crate::host::HostBias;

/// An element type a file can hold: f32, or `half::f16`.
pub trait Element: Copy + private::Sealed {
    /// Its safetensors dtype.
    const DTYPE: Dtype;
    /// Appends its little-endian bytes.
    fn extend_le(self, bytes: &mut Vec<u8>);
}

impl Element for f32 {
    const DTYPE: Dtype = Dtype::F32;
    fn extend_le(self, bytes: &mut Vec<u8>) {
        bytes.extend(self.to_le_bytes());
    }
}

impl Element for half::f16 {
    const DTYPE: Dtype = Dtype::F16;
    fn extend_le(self, bytes: &mut Vec<u8>) {
        bytes.extend(self.to_le_bytes());
    }
}

mod private {
    /// Only this crate's element types: the file format knows their layout.
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for half::f16 {}
}

/// Values converted to bytes at a time: 256 KiB, enough to keep a write call's cost small
/// and the conversion buffer in cache.
const BLOCK_VALUES: usize = 1 << 16;

/// Why a file could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The slopes and total heads describe no valid module (no heads, or fewer total heads
    /// than heads): the library's own message.
    #[error(transparent)]
    Module(#[from] AlibiError),

    /// A tensor's head count is not the file's `total_heads`.
    #[error("call {call} has {got} heads but the file's total_heads is {expected}: every tensor of one file comes from one module")]
    HeadCount {
        /// The call, from 0.
        call: usize,
        /// Its first dimension.
        got: usize,
        /// The `total_heads` given for the file.
        expected: usize,
    },

    /// The `safetensors` crate refused the header (for example, one too large).
    #[error("invalid safetensors header")]
    Header(#[source] SafeTensorError),

    /// Writing failed.
    #[error("cannot write the safetensors data")]
    Io(#[source] io::Error),
}

/// The name of the `call`th tensor in a file: `call-N-IxJ`, e.g. `call-1-1x5`.
pub fn tensor_name<T: Copy>(call: usize, bias: &HostBias<T>) -> String {
    let [_, i, j] = bias.shape();
    format!("call-{call}-{i}x{j}")
}

/// Writes `biases` (the calls of one module with `slopes` and `total_heads`, causal or
/// not, in order) to `writer` as a `.safetensors` file: see the [module docs](self) for its layout and
/// metadata. The writer is not flushed; wrap a file in a [`std::io::BufWriter`] or not, as
/// you like (values go out in 256 KiB blocks).
///
/// # Errors
/// [`ExportError::Module`] for slopes and heads that no module has, [`ExportError::HeadCount`]
/// for a tensor of another module, [`ExportError::Header`] when the `safetensors` crate
/// refuses the header, [`ExportError::Io`] when writing fails.
///
/// # Example
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use alibi_wgpu::{alibi_slopes, cpu, export};
///
/// let slopes = alibi_slopes(4)?;
/// let prefill = cpu::forward(&slopes, 8, 3, 5)?;
/// let step = cpu::forward(&slopes, 8, 1, 5)?;
/// let bytes = export::to_safetensors(&slopes, 8, false, &[&prefill, &step])?;
///
/// let file = safetensors::SafeTensors::deserialize(&bytes)?;
/// assert_eq!(file.tensor("call-1-1x5")?.shape(), &[8, 1, 5]);
/// # Ok(()) }
/// ```
pub fn write_safetensors<T: Element, B: Borrow<HostBias<T>>>(
    mut writer: impl Write,
    slopes: &[f32],
    total_heads: usize,
    causal: bool,
    biases: &[B],
) -> Result<(), ExportError> {
    let header = header(slopes, total_heads, causal, biases)?;
    writer
        .write_all(&(header.len() as u64).to_le_bytes())
        .and_then(|()| writer.write_all(&header))
        .map_err(ExportError::Io)?;
    let size = size_of::<T>();
    let mut block = Vec::with_capacity(BLOCK_VALUES.min(largest(biases)) * size);
    for bias in biases {
        for values in bias.borrow().as_slice().chunks(BLOCK_VALUES) {
            // safetensors is little-endian whatever the host; on a little-endian host this
            // loop compiles to a copy.
            block.clear();
            for &value in values {
                value.extend_le(&mut block);
            }
            writer.write_all(&block).map_err(ExportError::Io)?;
        }
    }
    Ok(())
}

/// [`write_safetensors`] into a new vector: the whole file, e.g. to offer as a download on
/// the web.
///
/// # Errors
/// As [`write_safetensors`], except that a vector cannot fail to take the bytes.
pub fn to_safetensors<T: Element, B: Borrow<HostBias<T>>>(
    slopes: &[f32],
    total_heads: usize,
    causal: bool,
    biases: &[B],
) -> Result<Vec<u8>, ExportError> {
    let mut bytes = Vec::new();
    write_safetensors(&mut bytes, slopes, total_heads, causal, biases)?;
    Ok(bytes)
}

/// The JSON header, padded with spaces to a multiple of 8 bytes as the format (and the
/// `safetensors` crate's own writer) does, so the data that follows stays aligned.
fn header<T: Element, B: Borrow<HostBias<T>>>(
    slopes: &[f32],
    total_heads: usize,
    causal: bool,
    biases: &[B],
) -> Result<Vec<u8>, ExportError> {
    crate::validation::validate(slopes.len(), total_heads, 0, 0)?;
    let mut tensors = Vec::with_capacity(biases.len());
    let mut offset = 0;
    for (call, bias) in biases.iter().enumerate() {
        let bias = bias.borrow();
        let shape = bias.shape();
        if shape[0] != total_heads {
            return Err(ExportError::HeadCount {
                call,
                got: shape[0],
                expected: total_heads,
            });
        }
        let bytes = bias.len() * size_of::<T>();
        let info = TensorInfo {
            dtype: T::DTYPE,
            shape: shape.to_vec(),
            data_offsets: (offset, offset + bytes),
        };
        offset += bytes;
        tensors.push((tensor_name(call, bias), info));
    }
    let metadata = Metadata::new(Some(describe(slopes, total_heads, causal)), tensors)
        .map_err(ExportError::Header)?;
    let mut header = serde_json::to_vec(&metadata)
        .map_err(|error| ExportError::Header(SafeTensorError::JsonError(error)))?;
    header.resize(header.len().next_multiple_of(8), b' ');
    Ok(header)
}

/// The `__metadata__` map: see the module docs.
fn describe(slopes: &[f32], total_heads: usize, causal: bool) -> HashMap<String, String> {
    // Rust prints the shortest decimal that parses back to the same f32, which is also a
    // valid JSON number: `json.loads` then `numpy.float32` recovers every slope exactly.
    let slope_list: Vec<String> = slopes.iter().map(f32::to_string).collect();
    HashMap::from([
        ("heads".to_owned(), slopes.len().to_string()),
        ("total_heads".to_owned(), total_heads.to_string()),
        ("slopes".to_owned(), format!("[{}]", slope_list.join(", "))),
        ("formula".to_owned(), formula(causal).to_owned()),
        ("causal".to_owned(), causal.to_string()),
        (
            "alibi_wgpu_version".to_owned(),
            env!("CARGO_PKG_VERSION").to_owned(),
        ),
    ])
}

/// The `formula` entry: docs/semantics.md's, with the mask when `causal`.
fn formula(causal: bool) -> &'static str {
    if causal {
        "bias[h, r, k] = -slope_h * |k - (j - i + r)|, zero for h >= heads; -inf where k > j - i + r"
    } else {
        "bias[h, r, k] = -slope_h * |k - (j - i + r)|, zero for h >= heads"
    }
}

/// The most values any one tensor holds, to size the conversion block.
fn largest<T: Copy, B: Borrow<HostBias<T>>>(biases: &[B]) -> usize {
    biases
        .iter()
        .map(|bias| bias.borrow().len())
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{alibi_slopes, reference};

    #[test]
    fn header_is_aligned_and_names_each_call() {
        let slopes = alibi_slopes(3).unwrap();
        let a = reference::forward(&slopes, 4, 2, 3).unwrap();
        let b = reference::forward(&slopes, 4, 0, 7).unwrap();
        let bytes = to_safetensors(&slopes, 4, false, &[a.clone(), b]).unwrap();
        let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        assert_eq!(header_len % 8, 0);
        assert_eq!(bytes.len(), 8 + header_len + a.len() * 4);
        let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let mut names = file.names();
        names.sort_unstable();
        assert_eq!(names, ["call-0-2x3", "call-1-0x7"]);
        let data = file.tensor("call-0-2x3").unwrap();
        let values: Vec<f32> = data
            .data()
            .chunks(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        assert_eq!(values, a.as_slice());
    }

    #[test]
    fn f16_tensors_are_f16_and_causal_is_recorded() {
        let slopes = alibi_slopes(2).unwrap();
        let bias = reference::forward_causal(&slopes, 2, 2, 3).unwrap();
        let narrow = bias.clone().map(half::f16::from_f32);
        let bytes = to_safetensors(&slopes, 2, true, &[&narrow]).unwrap();
        let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let tensor = file.tensor("call-0-2x3").unwrap();
        assert_eq!(tensor.dtype(), Dtype::F16);
        let values: Vec<f32> = tensor
            .data()
            .chunks(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect();
        assert_eq!(values, bias.as_slice());
        let (_, metadata) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        let described = metadata.metadata().as_ref().unwrap();
        assert_eq!(described["causal"], "true");
    }

    #[test]
    fn refuses_what_no_module_makes() {
        let slopes = alibi_slopes(2).unwrap();
        let two = reference::forward(&slopes, 2, 1, 1).unwrap();
        let three = reference::forward(&slopes, 3, 1, 1).unwrap();
        assert!(matches!(
            to_safetensors(&slopes, 2, false, &[&two, &three]),
            Err(ExportError::HeadCount {
                call: 1,
                got: 3,
                expected: 2
            })
        ));
        assert!(matches!(
            to_safetensors(&slopes, 1, false, &[&two]),
            Err(ExportError::Module(AlibiError::TotalHeadsBelowHeads { .. }))
        ));
        assert!(matches!(
            to_safetensors::<f32, HostBias>(&[], 1, false, &[]),
            Err(ExportError::Module(AlibiError::ZeroHeads))
        ));
    }
}
