//! `--out`: what the path names (one `.npy` file, one `.safetensors` file for every shape, or
//! a directory of `.npy` files), decided before anything is computed.

use std::path::{Path, PathBuf};

use crate::error::CliError;
use crate::shape::Shape;

/// Where `--out` sends the tensors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// No `--out`: summaries only.
    Nowhere,
    /// `--out FILE.npy` (or any name but `*.safetensors`): the one tensor of a single shape.
    File(PathBuf),
    /// `--out FILE.safetensors`: every shape's tensor in one file, `call-N-IxJ` for the Nth
    /// (see `alibi_wgpu::export`).
    Safetensors(PathBuf),
    /// `--out DIR/`: `DIR/call-N-IxJ.npy` for the Nth shape, from 0.
    Dir(PathBuf),
}

impl Destination {
    /// Interprets `--out` for `shapes` requests: a path ending in a separator, or an
    /// existing directory, is a directory; a `.safetensors` file takes any number of
    /// shapes; any other file is a `.npy`, which only makes sense for a single shape.
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
        if out.file_name().is_some() && out.extension() == Some("safetensors".as_ref()) {
            return Ok(Destination::Safetensors(out.to_owned()));
        }
        if shapes != 1 {
            return Err(CliError::Usage(format!(
                "--out {} names one .npy file but {shapes} shapes were given; end the path with `/` to write one file per shape, or name a .safetensors file to hold them all",
                out.display()
            )));
        }
        if out.file_name().is_none() {
            return Err(CliError::Usage(format!(
                "--out {} names no file; give a file name, or a directory ending in `/`",
                out.display()
            )));
        }
        Ok(Destination::File(out.to_owned()))
    }

    /// The final path of the `call`th request, `None` when nothing is written.
    pub fn path_for(&self, call: usize, shape: Shape) -> Option<PathBuf> {
        match self {
            Destination::Nowhere => None,
            Destination::File(file) | Destination::Safetensors(file) => Some(file.clone()),
            Destination::Dir(dir) => Some(dir.join(format!("call-{call}-{shape}.npy"))),
        }
    }

    /// What was given to `--out`.
    pub fn arg(&self) -> Option<&Path> {
        match self {
            Destination::Nowhere => None,
            Destination::File(path) | Destination::Safetensors(path) | Destination::Dir(path) => {
                Some(path)
            }
        }
    }

    /// The directory the files go in: the file's parent (`.` for a bare file name), or DIR.
    pub fn dir(&self) -> Option<&Path> {
        match self {
            Destination::Nowhere => None,
            Destination::File(file) | Destination::Safetensors(file) => match file.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => Some(parent),
                _ => Some(Path::new(".")),
            },
            Destination::Dir(dir) => Some(dir),
        }
    }
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
        assert_eq!(file.dir(), Some(Path::new(".")));
        assert!(Destination::from_arg(Some(Path::new("bias.npy")), 2).is_err());
        let tensors = Destination::from_arg(Some(Path::new("out/bias.safetensors")), 3).unwrap();
        assert_eq!(
            tensors,
            Destination::Safetensors(PathBuf::from("out/bias.safetensors"))
        );
        assert_eq!(
            tensors.path_for(2, shape),
            Some(PathBuf::from("out/bias.safetensors"))
        );
        assert_eq!(
            Destination::from_arg(Some(Path::new("bias.safetensors/")), 1).unwrap(),
            Destination::Dir(PathBuf::from("bias.safetensors/"))
        );
    }
}
