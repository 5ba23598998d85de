//! `--out`: where the tensors go, and writing them as `.npy` files.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use alibi_wgpu::HostBias;
use npyz::WriterBuilder as _;

use crate::error::CliError;
use crate::shape::Shape;

/// Where `--out` sends the tensors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// No `--out`: summaries only.
    Nowhere,
    /// `--out FILE.npy`: the one tensor of a single shape.
    File(PathBuf),
    /// `--out DIR/`: `DIR/call-N-IxJ.npy` for the Nth shape, from 0.
    Dir(PathBuf),
}

impl Destination {
    /// Interprets `--out` for `shapes` requests: a path ending in a separator, or an
    /// existing directory, is a directory; anything else is a single file, which only makes
    /// sense for a single shape.
    pub fn from_arg(out: Option<&Path>, shapes: usize) -> Result<Self, CliError> {
        let Some(out) = out else {
            return Ok(Destination::Nowhere);
        };
        let ends_in_separator = out
            .as_os_str()
            .as_encoded_bytes()
            .last()
            .is_some_and(|&byte| std::path::is_separator(char::from(byte)));
        if ends_in_separator || out.is_dir() {
            return Ok(Destination::Dir(out.to_owned()));
        }
        if shapes != 1 {
            return Err(CliError::Usage(format!(
                "--out {} names one file but {shapes} shapes were given; end the path with `/` to write one file per shape",
                out.display()
            )));
        }
        Ok(Destination::File(out.to_owned()))
    }

    /// Creates the output directory (and its parents), so that a bad path fails before
    /// any work is done.
    pub fn prepare(&self) -> Result<(), CliError> {
        if let Destination::Dir(dir) = self {
            std::fs::create_dir_all(dir).map_err(|source| CliError::Io {
                action: "create directory",
                path: dir.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// The file of the `call`th request, `None` when nothing is written.
    pub fn path_for(&self, call: usize, shape: Shape) -> Option<PathBuf> {
        match self {
            Destination::Nowhere => None,
            Destination::File(file) => Some(file.clone()),
            Destination::Dir(dir) => Some(dir.join(format!("call-{call}-{shape}.npy"))),
        }
    }
}

/// Writes `bias` to `path` as a C-order `.npy` of shape `[total_heads, i, j]` and dtype
/// `<f4` (little-endian f32 on every host, so files compare byte for byte across machines).
pub fn write_npy(path: &Path, bias: &HostBias) -> Result<(), CliError> {
    let io_error = |source| CliError::Io {
        action: "write",
        path: path.to_owned(),
        source,
    };
    let file = File::create(path).map_err(io_error)?;
    let shape = bias.shape().map(|n| n as u64);
    let mut writer = npyz::WriteOptions::<f32>::new()
        .dtype(little_endian_f32())
        .shape(&shape)
        .writer(BufWriter::new(file))
        .begin_nd()
        .map_err(io_error)?;
    writer
        .extend(bias.as_slice().iter().copied())
        .map_err(io_error)?;
    // `finish` flushes the buffered writer and checks the value count against the shape;
    // dropping the writer instead would swallow those errors.
    writer.finish().map_err(io_error)
}

/// The numpy dtype `<f4`. npyz's default for `f32` is native-endian, which would write
/// `>f4` on a big-endian host.
fn little_endian_f32() -> npyz::DType {
    let type_str = "<f4".parse().expect("`<f4` is a valid numpy type string");
    npyz::DType::Plain(type_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_paths() {
        let shape = Shape { i: 5, j: 8 };
        assert_eq!(
            Destination::from_arg(None, 3).unwrap(),
            Destination::Nowhere
        );
        let dir = Destination::from_arg(Some(Path::new("some/dir/")), 2).unwrap();
        assert_eq!(
            dir.path_for(1, shape),
            Some(Path::new("some/dir/call-1-5x8.npy").to_owned())
        );
        let file = Destination::from_arg(Some(Path::new("bias.npy")), 1).unwrap();
        assert_eq!(file.path_for(0, shape), Some(PathBuf::from("bias.npy")));
        assert!(Destination::from_arg(Some(Path::new("bias.npy")), 2).is_err());
    }
}
