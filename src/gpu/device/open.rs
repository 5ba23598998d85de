//! Opening a device when the caller does not bring one.

use crate::error::{AlibiError, Result};
use crate::generation::GenerationPath;
use crate::gpu::device::health::DeviceHealth;

/// A device this crate opened, with the adapter it came from.
///
/// Engines that already own a device pass theirs to
/// [`AlibiPositionalBias::new`](crate::AlibiPositionalBias::new) instead.
#[derive(Clone, Debug)]
pub struct GpuDevice {
    /// The device.
    pub device: wgpu::Device,
    /// Its queue.
    pub queue: wgpu::Queue,
    /// The adapter it was opened on (name, backend, driver).
    pub adapter_info: wgpu::AdapterInfo,
    pub(crate) health: DeviceHealth,
}

/// Opens the default adapter of `backends` (or of the `WGPU_BACKEND` environment variable
/// when `None`; only those backends are initialised), with the adapter's own limits, so
/// that large biases can use the largest buffers it allows and an engine that adopts the
/// device (onnxruntime-web, transformers.js) gets every limit the adapter has; the features
/// engines use where the adapter has them (`SHADER_F16`, `TIMESTAMP_QUERY`, `SUBGROUP`; wgpu
/// 30 cannot request WebGPU's `subgroups`, so a browser device lacks that one); and, on a
/// CPU adapter, `MAPPABLE_PRIMARY_BUFFERS` for
/// [`GenerationPath::HostMapped`](crate::GenerationPath::HostMapped).
///
/// The device is watched: once it is lost, every module on it returns
/// [`AlibiError::DeviceLost`], and a GPU error outside this crate's error scopes (your own
/// work on `device`) is reported once, by the next call of a module on it, instead of
/// panicking in wgpu. Do not replace the device's lost callback or uncaptured-error handler
/// (wgpu keeps one of each): the modules would stop hearing of a loss.
pub async fn open_device(backends: Option<wgpu::Backends>) -> Result<GpuDevice> {
    let mut descriptor = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    if let Some(backends) = backends {
        descriptor.backends = backends;
    }
    let requested = descriptor.backends;
    let instance = wgpu::Instance::new(descriptor);
    let adapter = instance
        .request_adapter(&wgpu::RequestAdapterOptions::default())
        .await
        .map_err(|source| AlibiError::NoAdapter {
            backends: requested,
            source,
        })?;
    let info = adapter.get_info();
    // On a CPU adapter, device memory is host memory: mappable storage buffers let
    // `GenerationPath::Auto` write biases from the host (see `GenerationPath::HostMapped`).
    // Elsewhere the feature is left off; on a discrete GPU it can slow storage buffers down.
    let host_mappable = wgpu::Features::MAPPABLE_PRIMARY_BUFFERS;
    let mut required_features = if info.device_type == wgpu::DeviceType::Cpu {
        adapter.features() & host_mappable
    } else {
        wgpu::Features::empty()
    };
    // f16 stores (`BiasDtype::F16`, native f16 in the kernels), and what engines sharing the
    // device use: timestamps for their profilers, subgroups for their matmuls.
    let for_engines =
        wgpu::Features::SHADER_F16 | wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::SUBGROUP;
    required_features |= adapter.features() & for_engines;
    let (device, queue) = adapter
        .request_device(&wgpu::DeviceDescriptor {
            label: Some("alibi-wgpu"),
            required_features,
            required_limits: adapter.limits(),
            ..Default::default()
        })
        .await
        .map_err(|source| AlibiError::RequestDevice {
            adapter: info.name.clone(),
            source,
        })?;
    let health = DeviceHealth::watch(&device);
    Ok(GpuDevice {
        device,
        queue,
        adapter_info: info,
        health,
    })
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
pub(crate) fn is_cpu_adapter(device: &wgpu::Device) -> bool {
    device.adapter_info().device_type == wgpu::DeviceType::Cpu
}
