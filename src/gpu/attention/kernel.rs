//! The attention kernels' WGSL, pipelines and recording: `flash` over the keys, and with
//! key splits `combine` after it, in one compute pass. One pipeline pair per
//! [`FlashVariant`], built on first use and kept by the module.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use super::chunks::Span;
use super::plan::{FlashParams, FlashPlan, FlashVariant, ROWS_PER_GROUP};
use super::rows::rows_wgsl;
use crate::dtype::BiasDtype;
use crate::error::Result;
use crate::gpu::device::context::GpuContext;
use crate::gpu::device::scope::Work;
use crate::gpu::dispatch::wgsl::SLOPE_VEC4S;
use crate::wgsl::ALIBI_WGSL;

pub(crate) const F32_WGSL: &str = include_str!("../../../shaders/attention/f32.wgsl");
pub(crate) const F16_WGSL: &str = include_str!("../../../shaders/attention/f16.wgsl");
pub(crate) const FLASH_WGSL: &str = include_str!("../../../shaders/attention/flash.wgsl");
pub(crate) const COMBINE_WGSL: &str = include_str!("../../../shaders/attention/combine.wgsl");
pub(crate) const DECODE_WGSL: &str = include_str!("../../../shaders/attention/decode.wgsl");

/// The kernels' bindings, in this order from 0; WGSL names them `BINDING_{name}`.
const BINDINGS: [(&str, Binding); 9] = [
    ("PARAMS", Binding::Uniform),
    ("SLOPES", Binding::Uniform),
    ("OUT", Binding::Storage { read_only: false }),
    ("Q", Binding::Storage { read_only: true }),
    ("K", Binding::Storage { read_only: true }),
    ("V", Binding::Storage { read_only: true }),
    ("OFFSETS", Binding::Storage { read_only: true }),
    ("PARTIAL", Binding::Storage { read_only: false }),
    ("BIAS", Binding::Storage { read_only: true }),
];

#[derive(Clone, Copy)]
enum Binding {
    Uniform,
    Storage { read_only: bool },
}

/// The whole WGSL source of `variant`: its element file first (`enable f16;` precedes every
/// declaration), the constants, ALIBI_WGSL, then the two kernels.
pub(crate) fn source(variant: FlashVariant) -> String {
    let mut source = match variant.dtype {
        BiasDtype::F32 => F32_WGSL,
        BiasDtype::F16 => F16_WGSL,
    }
    .to_owned();
    source.push_str("\n// Written by src/attention/kernel.rs.\n");
    let u32s = [
        ("HEAD_DIM", variant.head_dim),
        ("D4", variant.head_dim / 4),
        ("LANES", variant.lanes()),
        ("ROWS_PER_GROUP", ROWS_PER_GROUP),
        ("KEYS_PER_TILE", variant.keys_per_tile),
        ("BIAS_MODE", variant.bias_mode),
        ("SLOPE_VEC4S", SLOPE_VEC4S as u32),
    ];
    // Writing to a String cannot fail.
    for (name, value) in u32s {
        let _ = writeln!(source, "const {name}: u32 = {value}u;");
    }
    for (binding, (name, _)) in BINDINGS.iter().enumerate() {
        let _ = writeln!(source, "const BINDING_{name}: u32 = {binding}u;");
    }
    let _ = writeln!(source, "const CAUSAL: bool = {};", variant.causal);
    let _ = writeln!(source, "const SPLIT: bool = {};", variant.split);
    let decode = if variant.decode { DECODE_WGSL } else { "" };
    for part in [ALIBI_WGSL, FLASH_WGSL, COMBINE_WGSL, decode] {
        source.push('\n');
        source.push_str(part);
    }
    source.push('\n');
    source.push_str(&rows_wgsl(
        variant.rows_per_invocation,
        variant.head_dim / 4,
    ));
    source
}

/// A variant's two pipelines (`flash` or `decode`, and `combine`) and their layout.
pub(crate) struct FlashPipelines {
    flash: wgpu::ComputePipeline,
    combine: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
}

/// The pipelines a module has built, by variant.
#[derive(Default)]
pub(crate) struct FlashKernels {
    built: Mutex<HashMap<FlashVariant, Arc<FlashPipelines>>>,
}

/// The buffers one call binds.
pub(crate) struct FlashBuffers<'a> {
    pub slopes: &'a wgpu::Buffer,
    pub q: &'a wgpu::Buffer,
    pub k: &'a wgpu::Buffer,
    pub v: &'a wgpu::Buffer,
    pub out: &'a wgpu::Buffer,
    pub offsets: &'a wgpu::Buffer,
    /// The split partials, or any small storage buffer without splits.
    pub partial: &'a wgpu::Buffer,
    /// The materialized bias, or any small storage buffer without one.
    pub bias: &'a wgpu::Buffer,
}

impl FlashKernels {
    fn get(&self, gpu: &GpuContext, variant: FlashVariant) -> Result<Arc<FlashPipelines>> {
        let mut built = self.built.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(pipelines) = built.get(&variant) {
            return Ok(pipelines.clone());
        }
        let pipelines = gpu.run(Work::named("building the attention kernels"), || {
            build(&gpu.device, variant)
        })?;
        let pipelines = Arc::new(pipelines);
        built.insert(variant, pipelines.clone());
        Ok(pipelines)
    }

    /// Records `plan` into `encoder`: the flash pass, then the combine pass with splits.
    pub fn encode(
        &self,
        gpu: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        plan: &FlashPlan,
        buffers: FlashBuffers<'_>,
    ) -> Result<()> {
        let pipelines = self.get(gpu, plan.variant)?;
        gpu.run(Work::named("recording an attention"), || {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("alibi attention"),
                timestamp_writes: None,
            });
            for chunk in plan.chunks() {
                let params = params_buffer(&gpu.device, &chunk.params);
                let whole = |buffer| (buffer, Span { offset: 0, size: 0 });
                let resources = [
                    whole(&params),
                    whole(buffers.slopes),
                    (buffers.out, chunk.query),
                    (buffers.q, chunk.query),
                    (buffers.k, chunk.key),
                    (buffers.v, chunk.key),
                    whole(buffers.offsets),
                    whole(buffers.partial),
                    match plan.bias_bytes {
                        Some(size) => (buffers.bias, Span { offset: 0, size }),
                        None => whole(buffers.bias),
                    },
                ];
                // The caller's tensors are bound at their run's window, never past it: a
                // larger buffer may exceed one binding's limit where the window does not.
                let entries: Vec<_> = resources
                    .iter()
                    .enumerate()
                    .map(|(binding, (buffer, span))| wgpu::BindGroupEntry {
                        binding: binding as u32,
                        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer,
                            offset: span.offset,
                            size: wgpu::BufferSize::new(span.size),
                        }),
                    })
                    .collect();
                let bind_group = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("alibi attention"),
                    layout: &pipelines.layout,
                    entries: &entries,
                });
                pass.set_bind_group(0, &bind_group, &[]);
                pass.set_pipeline(&pipelines.flash);
                let [x, y, z] = chunk.groups;
                pass.dispatch_workgroups(x, y, z);
                if let Some([x, y, z]) = chunk.combine_groups {
                    // A later dispatch of the same pass sees the partials the first wrote
                    // (and the next run's flash pass sees this combine's reads done).
                    pass.set_pipeline(&pipelines.combine);
                    pass.dispatch_workgroups(x, y, z);
                }
            }
        })
    }
}

fn params_buffer(device: &wgpu::Device, params: &FlashParams) -> wgpu::Buffer {
    use wgpu::util::DeviceExt as _;
    device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("alibi attention params"),
        contents: bytemuck::bytes_of(params),
        usage: wgpu::BufferUsages::UNIFORM,
    })
}

fn build(device: &wgpu::Device, variant: FlashVariant) -> FlashPipelines {
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("alibi attention"),
        source: wgpu::ShaderSource::Wgsl(source(variant).into()),
    });
    let entries: Vec<_> = BINDINGS
        .iter()
        .enumerate()
        .map(|(binding, (_, kind))| wgpu::BindGroupLayoutEntry {
            binding: binding as u32,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: match *kind {
                    Binding::Uniform => wgpu::BufferBindingType::Uniform,
                    Binding::Storage { read_only } => {
                        wgpu::BufferBindingType::Storage { read_only }
                    }
                },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        })
        .collect();
    let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("alibi attention"),
        entries: &entries,
    });
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some("alibi attention"),
        bind_group_layouts: &[Some(&layout)],
        immediate_size: 0,
    });
    let pipeline = |entry_point| {
        device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(entry_point),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some(entry_point),
            compilation_options: Default::default(),
            cache: None,
        })
    };
    FlashPipelines {
        flash: pipeline(if variant.decode { "decode" } else { "flash" }),
        combine: pipeline("combine"),
        layout,
    }
}

/// Variants that cover every part of the source: each head dimension class, causal or not,
/// every bias mode, split or not, f32 and f16, one to four rows per invocation, and decode.
#[cfg(test)]
pub(crate) fn sample_variants(dtype: BiasDtype) -> Vec<FlashVariant> {
    let mut variants = Vec::new();
    for head_dim in [4, 32, 64, 80, 96, 128] {
        for (causal, bias_mode, split, rows_per_invocation, decode) in [
            (false, 1, false, 1, false),
            (true, 0, true, 2, false),
            (true, 2, false, 4, false),
            (false, 1, true, 1, true),
            (true, 2, true, 1, true),
        ] {
            variants.push(FlashVariant {
                head_dim,
                keys_per_tile: super::plan::keys_per_tile(head_dim, 16384),
                causal,
                bias_mode,
                split,
                dtype,
                rows_per_invocation,
                decode,
            });
        }
    }
    variants
}
