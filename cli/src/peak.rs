//! The adapter's multiply-add peak, measured: a kernel whose invocations do nothing but
//! independent vec4 multiply-adds in registers, so that the attention's FLOP rate can be
//! given as a fraction of what this adapter can do at all.

use alibi_wgpu::{AlibiError, GpuDevice};

use crate::measure::{median, time_ms, wait_idle};

/// Workgroups, invocations each, loop trips, and vec4 multiply-adds per trip.
const GROUPS: u32 = 1024;
const LANES: u32 = 64;
const TRIPS: u32 = 4096;
const CHAINS: u32 = 8;

const PEAK_WGSL: &str = r#"
@group(0) @binding(0) var<storage, read_write> sink: array<vec4<f32>>;

@compute @workgroup_size(64)
fn peak(@builtin(global_invocation_id) id: vec3<u32>) {
    let seed = f32(id.x) * 1e-9;
    var a0 = vec4<f32>(seed); var a1 = a0 + 1.0; var a2 = a0 + 2.0; var a3 = a0 + 3.0;
    var a4 = a0 + 4.0; var a5 = a0 + 5.0; var a6 = a0 + 6.0; var a7 = a0 + 7.0;
    let m = vec4<f32>(0.999999);
    let c = vec4<f32>(1e-7);
    for (var n = 0u; n < TRIPS; n++) {
        a0 = fma(a0, m, c); a1 = fma(a1, m, c); a2 = fma(a2, m, c); a3 = fma(a3, m, c);
        a4 = fma(a4, m, c); a5 = fma(a5, m, c); a6 = fma(a6, m, c); a7 = fma(a7, m, c);
    }
    // One store, so that nothing is optimized away.
    sink[id.x] = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7));
}
"#;

/// GFLOP/s of the multiply-add loop on `gpu`: the median of `runs` runs after a warm-up.
pub fn measure_peak(gpu: &GpuDevice, runs: usize) -> Result<f64, AlibiError> {
    let device = &gpu.device;
    let source = format!("const TRIPS: u32 = {TRIPS}u;\n{PEAK_WGSL}");
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("bench peak"),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some("bench peak"),
        layout: None,
        module: &module,
        entry_point: Some("peak"),
        compilation_options: Default::default(),
        cache: None,
    });
    let sink = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("bench peak sink"),
        size: (GROUPS * LANES * 16) as u64,
        usage: wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("bench peak"),
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[wgpu::BindGroupEntry {
            binding: 0,
            resource: sink.as_entire_binding(),
        }],
    });
    let mut times = Vec::new();
    for round in 0..=runs {
        let ms = time_ms(|| {
            let mut encoder = device.create_command_encoder(&Default::default());
            {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                pass.set_pipeline(&pipeline);
                pass.set_bind_group(0, &bind_group, &[]);
                pass.dispatch_workgroups(GROUPS, 1, 1);
            }
            gpu.queue.submit([encoder.finish()]);
            wait_idle(device)
        })?;
        if round > 0 {
            times.push(ms);
        }
    }
    let flops = f64::from(GROUPS * LANES) * f64::from(TRIPS) * f64::from(CHAINS) * 4.0 * 2.0;
    Ok(flops / median(times) / 1e6)
}
