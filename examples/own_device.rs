//! An engine that owns its `wgpu::Device` and command encoder: the bias is recorded into
//! the engine's encoder, then read by the engine's own shader in the same submission.
//!
//! `cargo run --example own_device`. The engine's shader here sums each row of the bias (a
//! stand-in for adding it to attention scores); the sums are checked against the oracle's
//! values summed in the same order, bit for bit.

use alibi_wgpu::{reference, AlibiConfig, AlibiPositionalBias};
use wgpu::util::DeviceExt as _;

/// The engine's shader: one invocation per (head, query row), summing the row's keys. The
/// bias is read through the strided layout that `AlibiBias::binding()` gives.
const ROW_SUM_WGSL: &str = r"
struct Layout {
    offset: u32,      // f32 elements from the binding's start to element (0, 0, 0)
    head_stride: u32,
    row_stride: u32,
    heads: u32,
    rows: u32,
    cols: u32,
}

@group(0) @binding(0) var<storage, read> bias: array<f32>;
@group(0) @binding(1) var<uniform> view: Layout;
@group(0) @binding(2) var<storage, read_write> sums: array<f32>;

@compute @workgroup_size(64)
fn row_sums(@builtin(global_invocation_id) id: vec3<u32>) {
    let row = id.x;
    if row >= view.heads * view.rows {
        return;
    }
    let h = row / view.rows;
    let r = row % view.rows;
    let start = view.offset + h * view.head_stride + r * view.row_stride;
    var sum = 0.0;
    for (var k = 0u; k < view.cols; k++) {
        sum += bias[start + k];
    }
    sums[row] = sum;
}
";

const HEADS: usize = 8;
const TOTAL_HEADS: usize = 12;
const I: usize = 16;
const J: usize = 40;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The engine's own device, opened its own way (here: the adapter WGPU_BACKEND picks).
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = pollster::block_on(instance.request_adapter(&Default::default()))?;
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("engine"),
        ..Default::default()
    }))?;
    println!("engine's adapter: {}", adapter.get_info().name);

    // The module borrows the engine's device: pipelines and slopes are built here, once.
    let config = AlibiConfig::new(HEADS).total_heads(TOTAL_HEADS);
    let alibi = AlibiPositionalBias::with_config(&device, &queue, config)?;
    // wgpu keeps one device-lost callback per device: the engine's forwards the loss, so
    // the module's calls fail with `DeviceLost` instead of using a dead device.
    let reporter = alibi.device_loss_reporter();
    device.set_device_lost_callback(move |reason, message| reporter.report(reason, &message));

    // The engine's pipeline.
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("row sums"),
        source: wgpu::ShaderSource::Wgsl(ROW_SUM_WGSL.into()),
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some("row sums"),
        layout: None,
        module: &module,
        entry_point: Some("row_sums"),
        compilation_options: Default::default(),
        cache: None,
    });

    // One encoder for everything: the bias generation, then the engine's pass reading it.
    let mut encoder = device.create_command_encoder(&Default::default());
    let bias = alibi.encode_forward(&mut encoder, I, J)?;
    // (`encode_into(&mut encoder, I, J, &buffer, offset)` writes the dense tensor into a
    // buffer of the engine's instead.)
    let binding = bias.binding().expect("a non-empty bias");
    let layout = binding.layout;
    let uniform = [
        layout.offset,
        layout.head_stride,
        layout.row_stride,
        TOTAL_HEADS as u64,
        I as u64,
        J as u64,
    ]
    .map(|n| u32::try_from(n).expect("fits a u32"));
    let uniform = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("layout"),
        contents: bytemuck::cast_slice(&uniform),
        usage: wgpu::BufferUsages::UNIFORM,
    });
    let rows = TOTAL_HEADS * I;
    let sums_bytes = (rows * size_of::<f32>()) as u64;
    let sums = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("sums"),
        size: sums_bytes,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let readback = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("sums readback"),
        size: sums_bytes,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("row sums"),
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[
            wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(binding.binding.clone()),
            },
            wgpu::BindGroupEntry {
                binding: 1,
                resource: uniform.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 2,
                resource: sums.as_entire_binding(),
            },
        ],
    });
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(rows.div_ceil(64) as u32, 1, 1);
    }
    encoder.copy_buffer_to_buffer(&sums, 0, &readback, 0, sums_bytes);
    // `bias` stays alive until this submission: the module must not reuse its buffer.
    queue.submit([encoder.finish()]);

    readback.slice(..).map_async(wgpu::MapMode::Read, |result| {
        result.expect("map the sums");
    });
    device.poll(wgpu::PollType::wait_indefinitely())?;
    let gpu_sums: Vec<f32> = bytemuck::cast_slice(&readback.slice(..).get_mapped_range()?).to_vec();
    drop(bias);

    // The oracle's rows, summed left to right in f32 like the shader: equal bit for bit.
    let expected = reference::forward(alibi.slopes(), TOTAL_HEADS, I, J)?;
    let expected_sums: Vec<f32> = (0..TOTAL_HEADS)
        .flat_map(|h| (0..I).map(move |r| (h, r)))
        .map(|(h, r)| expected.row(h, r).iter().fold(0.0, |sum, v| sum + v))
        .collect();
    assert!(
        gpu_sums == expected_sums,
        "the engine's shader read other values"
    );
    println!("row sums of head 0: {:?}", &gpu_sums[..I]);
    println!("all {rows} row sums == the oracle's, read through AlibiBias::binding()");
    Ok(())
}
