//! `--backend`: which wgpu backend computes the bias, or the CPU reference.

use std::io::Write as _;

use alibi_wgpu::{open_device_blocking, AlibiError, GenerationPath, GpuDevice};

/// The choices of `--backend`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    /// The default adapter (`WGPU_BACKEND` picks the backend); the CPU reference, with a
    /// note on stderr, when there is no adapter at all.
    #[default]
    Auto,
    /// A Vulkan adapter, or an error.
    Vulkan,
    /// An OpenGL (ES) adapter, or an error.
    Gl,
    /// The CPU reference, no GPU.
    Cpu,
}

/// Where the bias is computed once `--backend` is resolved.
pub enum Compute {
    /// On this wgpu device (boxed: it is much larger than the other variant).
    Gpu(Box<GpuDevice>),
    /// With `alibi_wgpu::reference`, on the CPU.
    Cpu,
}

impl BackendChoice {
    /// Opens what this choice names.
    ///
    /// A backend named explicitly must exist: silently computing elsewhere would make a
    /// "test on Vulkan" run prove nothing. Only `auto` falls back to the CPU, and only when
    /// no adapter exists at all (an adapter that fails to open a device is an error).
    pub fn open(self) -> Result<Compute, AlibiError> {
        let backends = match self {
            BackendChoice::Cpu => return Ok(Compute::Cpu),
            BackendChoice::Auto => None,
            BackendChoice::Vulkan => Some(wgpu::Backends::VULKAN),
            BackendChoice::Gl => Some(wgpu::Backends::GL),
        };
        match open_device_blocking(backends) {
            Ok(gpu) => Ok(Compute::Gpu(Box::new(gpu))),
            Err(AlibiError::NoAdapter(detail)) if self == BackendChoice::Auto => {
                // On stderr, as one line: stdout stays the result, and the fallback is
                // never silent.
                let _ = writeln!(
                    std::io::stderr(),
                    "alibi: no GPU adapter ({detail}); using the CPU reference"
                );
                Ok(Compute::Cpu)
            }
            Err(error) => Err(error),
        }
    }
}

/// The choices of `--generation`: where a GPU module computes what it generates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum GenerationChoice {
    /// The host-mapped path on CPU adapters that allow it (lavapipe's Vulkan), the kernel
    /// elsewhere.
    #[default]
    Auto,
    /// The WGSL kernel, on every adapter.
    Shader,
    /// The host's cores, writing through a mapping; an error where the device cannot.
    HostMapped,
}

impl From<GenerationChoice> for GenerationPath {
    fn from(choice: GenerationChoice) -> Self {
        match choice {
            GenerationChoice::Auto => GenerationPath::Auto,
            GenerationChoice::Shader => GenerationPath::Shader,
            GenerationChoice::HostMapped => GenerationPath::HostMapped,
        }
    }
}
