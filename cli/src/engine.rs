//! What computes the tensors of `alibi bias` and `alibi plot`: one module on a GPU, so later
//! shapes may come from its cache, or the CPU path (`alibi_wgpu::cpu`) when there is no
//! adapter. The CLI has no async runtime, so it waits on the library's async readbacks
//! with `pollster`.

use alibi_wgpu::{cpu, AlibiError, AlibiPositionalBias, BiasDtype, HostBias, Positions};

use crate::backend::{BackendChoice, Compute};
use crate::module_args::ModuleSpec;
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
    /// Resolves `--backend` and builds the module there: what the device refuses (a
    /// generation path it lacks) is refused here, before anything is printed.
    pub fn open(backend: BackendChoice, spec: &ModuleSpec) -> Result<Self, AlibiError> {
        Ok(match backend.open()? {
            Compute::Gpu(gpu) => Engine::Gpu(Box::new(GpuEngine {
                module: AlibiPositionalBias::on_device(&gpu, spec.config())?,
                adapter: gpu.adapter_info.clone(),
            })),
            // The spec, not the configuration: the CLI knows what it asked for.
            Compute::Cpu => Engine::Cpu(CpuEngine {
                slopes: spec.slopes.clone(),
                total_heads: spec.total_heads,
                causal: spec.causal,
                dtype: spec.dtype,
            }),
        })
    }

    /// The adapter's name, or that the CPU path computes: for `alibi plot`'s captions.
    pub fn adapter_name(&self) -> String {
        match self {
            Engine::Gpu(gpu) => gpu.adapter.name.clone(),
            Engine::Cpu(_) => "the CPU path".to_owned(),
        }
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
            Engine::Gpu(gpu) => pollster::block_on(gpu.module.forward_to_host(i, j)),
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
                pollster::block_on(gpu.module.read(&views[0]))
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
