//! [`GenerationPath`]: whether the WGSL kernel or the host's cores compute a generation.

use crate::error::{AlibiError, Result};

/// Where [`forward`](crate::AlibiPositionalBias::forward) and
/// [`get_bias`](crate::AlibiPositionalBias::get_bias) compute the values they generate.
/// Both paths write the same bytes (the tests compare them bit for bit); they differ in
/// speed, and in that the host path fills the buffer before `forward` returns.
///
/// ```
/// use alibi_wgpu::{AlibiConfig, GenerationPath};
/// let config = AlibiConfig::new(8).generation_path(GenerationPath::Shader);
/// assert_eq!(config.requested_generation_path(), GenerationPath::Shader);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum GenerationPath {
    /// [`HostMapped`](Self::HostMapped) on a CPU adapter (`wgpu::DeviceType::Cpu`:
    /// lavapipe, llvmpipe, WARP, SwiftShader) whose device has
    /// `wgpu::Features::MAPPABLE_PRIMARY_BUFFERS` ([`open_device`](crate::open_device)
    /// requests it there), [`Shader`](Self::Shader) everywhere else.
    #[default]
    Auto,
    /// The WGSL compute kernel, `shaders/alibi_bias.wgsl`: the path of every real GPU.
    Shader,
    /// The host's cores run the CPU path's row loop ([`crate::cpu`]) and write the values straight into
    /// the device buffer through a mapping. On a CPU adapter the device's memory is host
    /// memory and its emulated shader cores store one SIMD lane at a time, so this is the
    /// faster path there (the README's performance table has the figures). Cached buffers
    /// then also have `MAP_WRITE` usage, which needs the device feature
    /// `MAPPABLE_PRIMARY_BUFFERS`; not available on the web.
    HostMapped,
}

impl GenerationPath {
    /// The path a module on `device` takes: [`Shader`](Self::Shader) or
    /// [`HostMapped`](Self::HostMapped), never `Auto`.
    ///
    /// # Errors
    /// [`AlibiError::GenerationPathUnavailable`] for `HostMapped` on a device without
    /// `MAPPABLE_PRIMARY_BUFFERS`, or on the web.
    pub fn resolve(self, device: &wgpu::Device) -> Result<Self> {
        let host_mappable = cfg!(not(target_arch = "wasm32"))
            && device
                .features()
                .contains(wgpu::Features::MAPPABLE_PRIMARY_BUFFERS);
        match self {
            Self::Auto if host_mappable && is_cpu_adapter(device) => Ok(Self::HostMapped),
            Self::Auto | Self::Shader => Ok(Self::Shader),
            Self::HostMapped if host_mappable => Ok(Self::HostMapped),
            Self::HostMapped => Err(AlibiError::GenerationPathUnavailable {
                path: self,
                reason: if cfg!(target_arch = "wasm32") {
                    "the web has no mappable storage buffers"
                } else {
                    "the device was created without wgpu::Features::MAPPABLE_PRIMARY_BUFFERS"
                },
            }),
        }
    }
}

/// Whether the device runs on the host's CPU, where host-written memory is device memory.
fn is_cpu_adapter(device: &wgpu::Device) -> bool {
    device.adapter_info().device_type == wgpu::DeviceType::Cpu
}
