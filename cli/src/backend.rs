//! `--backend`: which wgpu backend computes the bias, or the CPU path.

use alibi_wgpu::{open_device, AlibiError, GpuDevice};

/// The choices of `--backend`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    /// The default adapter (`WGPU_BACKEND` picks the backend); the CPU path, with a note
    /// on stderr, when there is no adapter at all.
    #[default]
    Auto,
    /// A Vulkan adapter, or an error.
    Vulkan,
    /// An OpenGL (ES) adapter, or an error.
    Gl,
    /// The CPU path (`alibi_wgpu::cpu`, the host's cores), no GPU.
    Cpu,
}

/// Where the bias is computed once `--backend` is resolved.
pub enum Compute {
    /// On this wgpu device (boxed: it is much larger than the other variant).
    Gpu(Box<GpuDevice>),
    /// With `alibi_wgpu::cpu`, on the host's cores.
    Cpu,
}

impl BackendChoice {
    /// Opens what this choice names, for `alibi bias` and `alibi plot`.
    ///
    /// A backend named explicitly must exist: silently computing elsewhere would make a
    /// "test on Vulkan" run prove nothing. Only `auto` falls back to the CPU, and only when
    /// no adapter exists at all (an adapter that fails to open a device is an error).
    pub fn open(self) -> Result<Compute, AlibiError> {
        match self.open_gpu() {
            Ok(Some(gpu)) => Ok(Compute::Gpu(Box::new(gpu))),
            Ok(None) => Ok(Compute::Cpu),
            Err(AlibiError::NoAdapter { backends, source }) if self == BackendChoice::Auto => {
                // On stderr, as one line: stdout stays the result, and the fallback is
                // never silent.
                crate::error::note(&format!(
                    "no GPU adapter for backends {backends:?} ({}); using the CPU path",
                    alibi_wgpu::error_chain(&source)
                ));
                Ok(Compute::Cpu)
            }
            Err(error) => Err(error),
        }
    }

    /// A device on the adapter this choice names, `None` for `cpu`; never a fallback, so
    /// `auto` without an adapter is the library's `NoAdapter` error (`alibi bench`, which
    /// measures an adapter, has nothing to fall back to).
    pub fn open_gpu(self) -> Result<Option<GpuDevice>, AlibiError> {
        let backends = match self {
            BackendChoice::Cpu => return Ok(None),
            BackendChoice::Auto => None,
            BackendChoice::Vulkan => Some(wgpu::Backends::VULKAN),
            BackendChoice::Gl => Some(wgpu::Backends::GL),
        };
        // The CLI has no async runtime: it waits for the device here.
        pollster::block_on(open_device(backends)).map(Some)
    }
}
