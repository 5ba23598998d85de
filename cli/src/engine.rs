//! What computes `alibi bias`'s tensors: one module on a GPU, so later shapes may come from
//! its cache, or the CPU path (`alibi_wgpu::cpu`) when there is no adapter.

use alibi_wgpu::{
    cpu, AlibiConfig, AlibiError, AlibiPositionalBias, BiasDtype, HostBias, Positions,
};

use crate::backend::{BackendChoice, Compute};
use crate::shape::Shape;

/// What computes the shapes.
pub enum Engine {
    /// On a GPU (boxed: it is much larger than the other variant).
    Gpu(Box<GpuEngine>),
    /// The CPU path: no cache, each shape computed as a fresh module would.
    Cpu(CpuEngine),
}

/// The CPU side of [`Engine`]: the module's configuration, for `alibi_wgpu::cpu`.
pub struct CpuEngine {
    /// One slope per head with a slope.
    slopes: Vec<f32>,
    /// Output heads, padding included.
    total_heads: usize,
    /// Future keys masked.
    causal: bool,
    /// The element type whose values are given (as f32).
    dtype: BiasDtype,
}

/// The GPU side of [`Engine`].
pub struct GpuEngine {
    /// One module for every shape, so that later shapes may be served from its cache.
    module: AlibiPositionalBias,
    /// The adapter the module's device was opened on.
    adapter: wgpu::AdapterInfo,
}

impl Engine {
    /// Resolves `--backend` and builds the module there.
    pub fn open(
        backend: BackendChoice,
        config: AlibiConfig,
        slopes: &[f32],
    ) -> Result<Self, AlibiError> {
        Ok(match backend.open()? {
            Compute::Gpu(gpu) => Engine::Gpu(Box::new(GpuEngine {
                module: AlibiPositionalBias::on_device(&gpu, config)?,
                adapter: gpu.adapter_info.clone(),
            })),
            Compute::Cpu => Engine::Cpu(CpuEngine {
                slopes: slopes.to_vec(),
                total_heads: config.resolved_total_heads(),
                causal: config.is_causal(),
                dtype: config.requested_dtype(),
            }),
        })
    }

    /// The adapter's name and backend, or that the CPU path is in use.
    pub fn describe(&self) -> String {
        match self {
            Engine::Gpu(gpu) => format!(
                "{} (backend {}, generation {:?})",
                gpu.adapter.name,
                gpu.adapter.backend,
                gpu.module.generation_path()
            ),
            Engine::Cpu(_) => "none (CPU path)".to_owned(),
        }
    }

    /// The `[total_heads, i, j]` bias of `shape`, on the host: f32 values (an f16 bias's
    /// widened, exactly).
    pub fn forward(&mut self, shape: Shape) -> Result<HostBias, AlibiError> {
        let (i, j) = (shape.i, shape.j);
        match self {
            Engine::Gpu(gpu) => gpu.module.forward_to_host_blocking(i, j),
            Engine::Cpu(cpu) => {
                let bias = if cpu.causal {
                    cpu::forward_causal(&cpu.slopes, cpu.total_heads, i, j)
                } else {
                    cpu::forward(&cpu.slopes, cpu.total_heads, i, j)
                };
                bias.map(|bias| cpu.round(bias))
            }
        }
    }

    /// The `[total_heads, len(queries), len(keys)]` bias at these positions, on the host.
    pub fn forward_positions(
        &mut self,
        queries: &[i32],
        keys: &[i32],
    ) -> Result<HostBias, AlibiError> {
        match self {
            Engine::Gpu(gpu) => {
                let views = gpu
                    .module
                    .forward_positions(Positions::shared(queries), Positions::shared(keys))?;
                gpu.module.read_blocking(&views[0])
            }
            Engine::Cpu(cpu) => {
                let (slopes, total_heads) = (&cpu.slopes, cpu.total_heads);
                cpu::forward_positions(slopes, total_heads, queries, keys, cpu.causal)
                    .map(|bias| cpu.round(bias))
            }
        }
    }

    /// The cache counters, or why there are none.
    pub fn cache_summary(&self) -> String {
        match self {
            Engine::Gpu(gpu) => {
                let stats = gpu.module.cache_stats();
                format!("hits {}, misses {}", stats.hits, stats.misses)
            }
            Engine::Cpu(_) => "none (the CPU path computes every shape afresh)".to_owned(),
        }
    }
}

impl CpuEngine {
    /// What a module of the configured type would hold for these f32 values (the CPU path
    /// computes f32).
    fn round(&self, bias: HostBias) -> HostBias {
        match self.dtype {
            BiasDtype::F32 => bias,
            dtype => bias.map(|value| dtype.round(value)),
        }
    }
}
