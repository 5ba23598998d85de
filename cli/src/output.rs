//! `--out`: where the tensors go, checked before anything is computed, and written so that a
//! run either puts all of its files in place or leaves none behind.
//!
//! The rule, for a run with `--out`:
//! 1. Before a device is opened or anything computed, [`Output::prepare`] checks the
//!    destination: a file's directory must exist, `DIR/` is created (with its missing
//!    parents), no file to be written may be an existing directory, and a file can be
//!    created there. Any of these failing is the run's one error line.
//! 2. Each tensor, once computed, is written to a hidden temporary file in the same
//!    directory (`.NAME.alibi-PID-N.tmp`), never to its final path. A `.safetensors` file
//!    holds every shape, so its tensors are kept in memory until the last one is computed,
//!    then written to their temporary file together (with the slopes in its metadata).
//! 3. Only when every shape has been computed and written does [`Output::commit`] rename the
//!    temporary files into place, in order. A rename within one directory replaces its
//!    target at once, so an existing file is either left untouched or fully replaced.
//! 4. On any failure before that (a shape the device cannot hold, a full disk, a closed
//!    stdout), dropping the [`Output`] removes the temporary files and the directories that
//!    step 1 created, if they are still empty: a failed run leaves nothing of its own. Should
//!    a rename itself fail (the directory was removed meanwhile), the files renamed before it
//!    are removed too. Only a killed process (SIGKILL, power loss) can leave a hidden
//!    temporary file behind.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use alibi_wgpu::{export, BiasDtype, HostBias};

pub use crate::destination::Destination;
use crate::error::CliError;
use crate::npy::write_npy;
use crate::progress;
use crate::shape::Shape;

/// The files of one run, staged as the module doc's rule says: written under temporary
/// names as the shapes are computed, renamed into place by [`Output::commit`], removed when
/// dropped uncommitted.
pub struct Output {
    destination: Destination,
    /// Directories that [`Output::prepare`] created, outermost first.
    created_dirs: Vec<PathBuf>,
    /// Files written so far under their temporary names, with the paths they will take.
    staged: Vec<Staged>,
    /// The module's slopes, total heads and mask, for a `.safetensors` file's metadata.
    slopes: Vec<f32>,
    total_heads: usize,
    causal: bool,
    /// The element type the files hold (the tensors given are f32 values of it).
    dtype: BiasDtype,
    /// The tensors of a `.safetensors` file, kept until [`Output::commit`] writes them.
    held: Vec<HostBias>,
}

/// One written tensor awaiting its rename.
struct Staged {
    temporary: PathBuf,
    path: PathBuf,
}

impl Output {
    /// Checks `destination` for `shapes` (step 1 of the module doc's rule), creating `DIR/`,
    /// for a module with `slopes`, `total_heads` and `causal` (which a `.safetensors` file
    /// records), whose tensors are written as `dtype`.
    pub fn prepare(
        destination: Destination,
        shapes: &[Shape],
        slopes: &[f32],
        total_heads: usize,
        causal: bool,
        dtype: BiasDtype,
    ) -> Result<Self, CliError> {
        let mut output = Output {
            destination,
            created_dirs: Vec::new(),
            staged: Vec::new(),
            slopes: slopes.to_vec(),
            total_heads,
            causal,
            dtype,
            held: Vec::new(),
        };
        let (Some(arg), Some(dir)) = (output.destination.arg(), output.destination.dir()) else {
            return Ok(output);
        };
        let (arg, dir) = (arg.to_owned(), dir.to_owned());
        let refuse = |reason: String, source: Option<io::Error>| CliError::Out {
            path: arg.clone(),
            reason,
            source,
        };
        if matches!(output.destination, Destination::Dir(_)) {
            // Created here, so that a bad DIR fails before any work; removed again if the
            // run fails.
            output.create_dir(&dir, refuse)?;
        } else {
            // A file's directory is not created: a typo in it should not make a tree.
            match fs::metadata(&dir) {
                Ok(metadata) if metadata.is_dir() => {}
                Ok(_) => {
                    return Err(refuse(
                        format!("{} is not a directory", dir.display()),
                        None,
                    ))
                }
                Err(error) if error.kind() == io::ErrorKind::NotFound => {
                    return Err(refuse(
                        format!("directory {} does not exist", dir.display()),
                        None,
                    ))
                }
                Err(error) => {
                    return Err(refuse(
                        format!("cannot reach directory {}", dir.display()),
                        Some(error),
                    ))
                }
            }
        }
        for (call, &shape) in shapes.iter().enumerate() {
            if let Some(path) = output.destination.path_for(call, shape) {
                if path.is_dir() {
                    return Err(refuse(format!("{} is a directory", path.display()), None));
                }
            }
        }
        // Writable: the same kind of file that step 2 creates, removed at once.
        let (probe, _) = create_temporary(&dir, "probe").map_err(|error| {
            refuse(
                format!("cannot create a file in directory {}", dir.display()),
                Some(error),
            )
        })?;
        fs::remove_file(&probe).map_err(|error| {
            refuse(
                format!("cannot remove the test file {}", probe.display()),
                Some(error),
            )
        })?;
        Ok(output)
    }

    /// Creates `dir` and its missing parents, remembering each one created.
    fn create_dir(
        &mut self,
        dir: &Path,
        refuse: impl Fn(String, Option<io::Error>) -> CliError,
    ) -> Result<(), CliError> {
        let mut missing = Vec::new();
        let mut next = Some(dir);
        while let Some(candidate) = next {
            if candidate.as_os_str().is_empty() || candidate.exists() {
                break;
            }
            missing.push(candidate);
            next = candidate.parent();
        }
        for candidate in missing.into_iter().rev() {
            match fs::create_dir(candidate) {
                Ok(()) => self.created_dirs.push(candidate.to_owned()),
                // Made by someone else meanwhile: theirs, not to be removed.
                Err(error)
                    if error.kind() == io::ErrorKind::AlreadyExists && candidate.is_dir() => {}
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                    return Err(refuse(
                        format!("{} exists and is not a directory", candidate.display()),
                        None,
                    ))
                }
                Err(error) => {
                    return Err(refuse(
                        format!("cannot create directory {}", candidate.display()),
                        Some(error),
                    ))
                }
            }
        }
        if !dir.is_dir() {
            return Err(refuse(
                format!("{} is not a directory", dir.display()),
                None,
            ));
        }
        Ok(())
    }

    /// Writes the `call`th tensor under a temporary name (step 2), or keeps it for the
    /// `.safetensors` file; nothing without `--out`.
    pub fn write(&mut self, call: usize, shape: Shape, bias: &HostBias) -> Result<(), CliError> {
        if matches!(self.destination, Destination::Safetensors(_)) {
            // A copy: the caller's tensor is dropped after this call, and the file needs
            // all of them at once (its header lists every tensor before the first value).
            self.held.push(bias.clone());
            return Ok(());
        }
        let Some(path) = self.destination.path_for(call, shape) else {
            return Ok(());
        };
        let bar = progress::writing(&path.display().to_string(), self.bytes_of(bias));
        let file = self.stage(&path)?;
        write_npy(bar.wrap_write(file), bias, self.dtype).map_err(|source| CliError::Io {
            action: "write",
            path,
            source,
        })
    }

    /// Writes the kept tensors as the `.safetensors` file, under a temporary name.
    fn write_safetensors(&mut self) -> Result<(), CliError> {
        let Destination::Safetensors(path) = &self.destination else {
            return Ok(());
        };
        let path = path.clone();
        let held = std::mem::take(&mut self.held);
        let bytes = held.iter().map(|bias| self.bytes_of(bias)).sum();
        let bar = progress::writing(&path.display().to_string(), bytes);
        let (slopes, total_heads, causal) = (self.slopes.clone(), self.total_heads, self.causal);
        // No buffer: the values go out in 256 KiB blocks already.
        let file = bar.wrap_write(self.stage(&path)?);
        match self.dtype {
            // The values are f16 values already: the narrowing is exact.
            BiasDtype::F16 => {
                let narrow: Vec<HostBias<half::f16>> = held
                    .into_iter()
                    .map(|bias| bias.map(half::f16::from_f32))
                    .collect();
                export::write_safetensors(file, &slopes, total_heads, causal, &narrow)
            }
            _ => export::write_safetensors(file, &slopes, total_heads, causal, &held),
        }
        .map_err(|source| CliError::Export { path, source })
    }

    /// Creates the temporary file for `path` and records it, before anything is written,
    /// so that a failed write is removed too.
    fn stage(&mut self, path: &Path) -> Result<File, CliError> {
        let io_error = |source| CliError::Io {
            action: "write",
            path: path.to_owned(),
            source,
        };
        let dir = self
            .destination
            .dir()
            .ok_or_else(|| io_error(io::Error::other("no directory to write in")))?;
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let (temporary, file) = create_temporary(dir, &name).map_err(io_error)?;
        self.staged.push(Staged {
            temporary,
            path: path.to_owned(),
        });
        Ok(file)
    }

    /// The bytes of `bias`'s values in a file.
    fn bytes_of(&self, bias: &HostBias) -> u64 {
        (bias.len() * self.dtype.size()) as u64
    }

    /// Renames every written file into place (step 3) and returns their paths, in order.
    pub fn commit(mut self) -> Result<Vec<PathBuf>, CliError> {
        self.write_safetensors()?;
        let staged = std::mem::take(&mut self.staged);
        for (done, file) in staged.iter().enumerate() {
            if let Err(source) = fs::rename(&file.temporary, &file.path) {
                for placed in &staged[..done] {
                    let _ = fs::remove_file(&placed.path);
                }
                for waiting in &staged[done..] {
                    let _ = fs::remove_file(&waiting.temporary);
                }
                // Dropping `self` now removes the directories `prepare` created, if empty.
                return Err(CliError::Io {
                    action: "write",
                    path: file.path.clone(),
                    source,
                });
            }
        }
        self.created_dirs.clear();
        Ok(staged.into_iter().map(|file| file.path).collect())
    }
}

impl Drop for Output {
    /// Step 4: a run that did not commit leaves nothing behind.
    fn drop(&mut self) {
        // Best effort: the run's own error is the one to report.
        for file in &self.staged {
            let _ = fs::remove_file(&file.temporary);
        }
        // Innermost first; `remove_dir` only removes an empty directory, so nothing that
        // someone else put there meanwhile is lost.
        for dir in self.created_dirs.iter().rev() {
            let _ = fs::remove_dir(dir);
        }
    }
}

/// Creates a new, hidden file for `name` in `dir`: `.NAME.alibi-PID-N.tmp` with the first
/// N that is free (`create_new`, so an existing file is never reused or truncated).
fn create_temporary(dir: &Path, name: &str) -> io::Result<(PathBuf, File)> {
    let pid = std::process::id();
    let mut attempt = 0;
    loop {
        let path = dir.join(format!(".{name}.alibi-{pid}-{attempt}.tmp"));
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((path, file)),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => {
                attempt += 1;
            }
            Err(error) => return Err(error),
        }
    }
}
