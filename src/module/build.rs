//! Building a module: on a device the caller owns, on one this crate opened, or on the
//! default adapter. Pipelines, layouts and the slope uniforms are made here, once.

use std::sync::Arc;

use super::AlibiPositionalBias;
use crate::cache::BiasCache;
use crate::config::AlibiConfig;
use crate::error::Result;
use crate::gpu::attention::params::AttentionLimits;
use crate::gpu::bias::BiasWriter;
use crate::gpu::device::context::GpuContext;
use crate::gpu::device::health::{DeviceHealth, LossPoll};
use crate::gpu::device::limits::PlanLimits;
use crate::gpu::device::readback::Readback;
use crate::gpu::device::{is_cpu_adapter, open_device, GpuDevice};
use crate::pool::BufferPool;
use crate::validation::check_heads;

/// Evicted buffers a module keeps for reuse at most.
const KEPT_BUFFERS: usize = 4;

impl AlibiPositionalBias {
    /// A module for `heads` heads (padded to `total_heads`) on a device the caller owns.
    pub fn new(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        heads: usize,
        total_heads: Option<usize>,
    ) -> Result<Self> {
        Self::with_config(device, queue, AlibiConfig::padded(heads, total_heads))
    }

    /// A module built from `config` on a device the caller owns.
    pub fn with_config(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        config: AlibiConfig,
    ) -> Result<Self> {
        Self::build(device, queue, None, DeviceHealth::default(), config)
    }

    /// A module on a device opened by [`open_device`](crate::open_device).
    pub fn on_device(gpu: &GpuDevice, config: AlibiConfig) -> Result<Self> {
        Self::build(
            &gpu.device,
            &gpu.queue,
            Some(gpu.adapter_info.clone()),
            gpu.health.clone(),
            config,
        )
    }

    /// A module on the default adapter (`WGPU_BACKEND` picks the backends initialised).
    /// Off the web, `pollster::block_on(AlibiPositionalBias::new_default(8, None))` waits
    /// for it.
    pub async fn new_default(heads: usize, total_heads: Option<usize>) -> Result<Self> {
        let gpu = open_device(None).await?;
        Self::on_device(&gpu, AlibiConfig::padded(heads, total_heads))
    }

    fn build(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        adapter_info: Option<wgpu::AdapterInfo>,
        health: DeviceHealth,
        config: AlibiConfig,
    ) -> Result<Self> {
        let gpu = GpuContext {
            device: device.clone(),
            queue: queue.clone(),
            limits: PlanLimits::from_device(&device.limits()),
            cpu_adapter: is_cpu_adapter(device),
            backend: device.adapter_info().backend,
            errors: Default::default(),
            health,
        };
        gpu.ensure_alive()?;
        let total_heads = config.resolved_total_heads();
        check_heads(config.heads, total_heads)?;
        let slopes = config.slopes.resolve(config.heads)?;
        let path = config.generation_path.resolve(device)?;
        let writer = BiasWriter::new(&gpu, path, config.dtype, config.causal)?;
        let attention_limits = AttentionLimits::new(&gpu);
        let slopes = writer.slopes(&gpu, slopes)?;
        let unit_slope = writer.slopes(&gpu, vec![1.0])?;
        Ok(Self {
            gpu: Arc::new(gpu),
            writer,
            slopes,
            unit_slope,
            heads: config.heads,
            total_heads,
            causal: config.causal,
            dtype: config.dtype,
            adapter_info,
            cache: BiasCache::new(config.cache_budget_bytes),
            pool: BufferPool::new(KEPT_BUFFERS, 0),
            readback: Arc::new(Readback::default()),
            loss_poll: LossPoll::new(),
            peak_bytes: 0,
            score_kernels: Default::default(),
            attention_kernels: Default::default(),
            attention_limits,
            last_row_copy: None,
        })
    }
}
