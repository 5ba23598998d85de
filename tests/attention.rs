#![cfg(not(target_arch = "wasm32"))]
//! ALiBi inside another engine's shader (`alibi_wgpu::ALIBI_WGSL`): an attention computing
//! the bias on the fly from the slopes equals, bit for bit, the same attention reading the
//! tensor `forward` materializes; and the WGSL functions themselves equal the oracle.
//! On whatever adapter `WGPU_BACKEND` selects; no adapter is a failure (tests/common).

mod common;

#[path = "../examples/attention/attention.rs"]
mod attention;

use alibi_wgpu::{reference, ALIBI_WGSL};
use attention::{Attention, Shape, Variant};

/// Runs the three variants of `shape` and checks fused == materialized on every element,
/// and that the bias changed something (the comparison would be vacuous otherwise).
fn check_attention(shape: Shape) {
    let _serial = common::serial();
    let Some(gpu) = common::gpu() else { return };
    let attention = Attention::new(&gpu.device, &gpu.queue, shape, 11)
        .unwrap_or_else(|e| panic!("{shape:?}: {e}"));
    let read = |variant| {
        attention
            .output(variant)
            .unwrap_or_else(|e| panic!("{shape:?}, {variant:?}: {e}"))
    };
    let fused = read(Variant::Fused);
    let materialized = read(Variant::Materialized);
    let plain = read(Variant::Plain);
    let Shape {
        total_heads, i, d, ..
    } = shape;
    assert_eq!(fused.len(), total_heads * i * d);
    assert_eq!(materialized.len(), fused.len());
    assert!(
        fused.iter().all(|x| x.is_finite()),
        "{shape:?}: a fused output is not finite"
    );
    for (index, (f, m)) in fused.iter().zip(&materialized).enumerate() {
        let (h, r, x) = (index / (i * d), index / d % i, index % d);
        assert!(
            f.to_bits() == m.to_bits(),
            "{shape:?}: output (head {h}, row {r}, column {x}): fused {f:?} ({:#010x}), \
             materialized {m:?} ({:#010x})",
            f.to_bits(),
            m.to_bits()
        );
    }
    if shape.j > 1 {
        assert_ne!(fused, plain, "{shape:?}: ALiBi changed nothing");
    }
}

#[test]
fn fused_equals_materialized_with_fewer_queries_than_keys() {
    check_attention(Shape::new(8, 16, 40, 32));
}

#[test]
fn fused_equals_materialized_with_as_many_queries_as_keys() {
    check_attention(Shape::new(8, 64, 64, 64));
}

#[test]
fn fused_equals_materialized_with_more_queries_than_keys() {
    // Query positions below zero: rows 0..i-j sit before the first key.
    check_attention(Shape::new(4, 40, 24, 16));
}

#[test]
fn fused_equals_materialized_for_a_decode_step() {
    // More keys than a workgroup has lanes, and a dimension past them too.
    check_attention(Shape::new(8, 1, 200, 80));
    check_attention(Shape::new(8, 1, 1, 8));
}

#[test]
fn fused_causal_equals_materialized_causal() {
    // The causal module's tensor (every future key of every head -inf) against
    // alibi_causal_head_bias.
    check_attention(Shape::new(8, 32, 32, 32).causal());
    check_attention(Shape::new(6, 20, 75, 16).padded_to(8).causal());
    check_attention(Shape::new(8, 1, 130, 64).causal());
}

#[test]
fn fused_equals_materialized_with_padding_heads() {
    // Slopes of non-power-of-two head counts are not powers of two: their products round.
    check_attention(Shape::new(6, 24, 33, 32).padded_to(8));
    check_attention(Shape::new(5, 7, 13, 24).padded_to(7));
    check_attention(Shape::new(3, 9, 9, 16));
    check_attention(Shape::new(12, 17, 70, 64).padded_to(16));
}

/// Each function of `ALIBI_WGSL` at every (head, query, key) of a grid, written by a tiny
/// shader: `[function][head][query][key]`.
const GRID_WGSL: &str = r"
struct Grid { heads: u32, slope_heads: u32, queries: u32, keys: u32, query0: i32, key0: i32 }
@group(0) @binding(0) var<uniform> grid: Grid;
@group(0) @binding(1) var<storage, read> slopes: array<f32>;
@group(0) @binding(2) var<storage, read_write> values: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let k = id.x;
    let q = id.y;
    let head = id.z;
    if k >= grid.keys || q >= grid.queries || head >= grid.heads {
        return;
    }
    let query = grid.query0 + i32(q);
    let key = grid.key0 + i32(k);
    let slope = slopes[head];
    let padding = head >= grid.slope_heads;
    let cell = (head * grid.queries + q) * grid.keys + k;
    let plane = grid.heads * grid.queries * grid.keys;
    values[cell] = alibi_bias(slope, query, key);
    values[plane + cell] = alibi_head_bias(slope, padding, query, key);
    values[2u * plane + cell] = alibi_causal_bias(slope, query, key);
    values[3u * plane + cell] = alibi_causal_head_bias(slope, padding, query, key);
}
";

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Grid {
    heads: u32,
    slope_heads: u32,
    queries: u32,
    keys: u32,
    query0: i32,
    key0: i32,
}

/// The four functions over `queries` query positions from `query0` and `keys` key
/// positions from `key0`, for `slopes` padded with zero slopes to `heads` heads.
fn run_grid(
    slopes: &[f32],
    heads: usize,
    query0: i32,
    queries: usize,
    key0: i32,
    keys: usize,
) -> Vec<f32> {
    let gpu = common::gpu().expect("checked by the caller");
    let (device, queue) = (&gpu.device, &gpu.queue);
    let mut padded = slopes.to_vec();
    padded.resize(heads, 0.0);
    let grid = Grid {
        heads: heads as u32,
        slope_heads: slopes.len() as u32,
        queries: queries as u32,
        keys: keys as u32,
        query0,
        key0,
    };
    let count = 4 * heads * queries * keys;
    let values = common::scoped(device, "running the grid shader", || {
        let buffer = |usage, bytes: &[u8]| {
            let buffer = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("alibi grid"),
                size: bytes.len() as u64,
                usage: usage | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            queue.write_buffer(&buffer, 0, bytes);
            buffer
        };
        let grid_buffer = buffer(wgpu::BufferUsages::UNIFORM, bytemuck::bytes_of(&grid));
        let slope_buffer = buffer(wgpu::BufferUsages::STORAGE, bytemuck::cast_slice(&padded));
        let values = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("alibi grid values"),
            size: (count * 4) as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("alibi grid"),
            source: wgpu::ShaderSource::Wgsl(format!("{GRID_WGSL}\n{ALIBI_WGSL}").into()),
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("alibi grid"),
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("alibi grid"),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: grid_buffer.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: slope_buffer.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: values.as_entire_binding(),
                },
            ],
        });
        let mut encoder = device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(keys.div_ceil(64) as u32, queries as u32, heads as u32);
        }
        queue.submit([encoder.finish()]);
        values
    });
    bytemuck::cast_slice(&common::read_buffer(device, queue, &values)).to_vec()
}

/// Checks the grid against the oracle: `bias_value` and `causal_bias_value` (-inf for
/// future keys), and in the `_head_` forms +0.0 for padding heads where not masked.
fn check_grid(slopes: &[f32], heads: usize, query0: i32, queries: usize, key0: i32, keys: usize) {
    let _serial = common::serial();
    if common::gpu().is_none() {
        return;
    }
    let values = run_grid(slopes, heads, query0, queries, key0, keys);
    let plane = heads * queries * keys;
    for head in 0..heads {
        let slope = slopes.get(head).copied().unwrap_or(0.0);
        let padding = head >= slopes.len();
        for q in 0..queries {
            for k in 0..keys {
                let query = i64::from(query0) + q as i64;
                let key = i64::from(key0) + k as i64;
                let value = reference::bias_value(slope, query, key);
                let causal = reference::causal_bias_value(slope, query, key);
                let future = key > query;
                let expected = if padding {
                    [value, 0.0, causal, if future { causal } else { 0.0 }]
                } else {
                    [value, value, causal, causal]
                };
                let cell = (head * queries + q) * keys + k;
                for (function, expected) in expected.into_iter().enumerate() {
                    let got = values[function * plane + cell];
                    let name = [
                        "alibi_bias",
                        "alibi_head_bias",
                        "alibi_causal_bias",
                        "alibi_causal_head_bias",
                    ][function];
                    assert!(
                        got.to_bits() == expected.to_bits(),
                        "{name}(slope {slope:?} (head {head}, padding {padding}), query {query}, \
                         key {key}) = {got:?} ({:#010x}), expected {expected:?} ({:#010x})",
                        got.to_bits(),
                        expected.to_bits()
                    );
                }
            }
        }
    }
}

#[test]
fn the_wgsl_functions_equal_the_oracle() {
    // Power-of-two and other head counts (their slopes round in products), padded.
    for (heads, total) in [(8, 8), (6, 8), (12, 12), (5, 7), (1, 2)] {
        let slopes = alibi_wgpu::alibi_slopes(heads).unwrap();
        check_grid(&slopes, total, -3, 11, 0, 70);
    }
}

#[test]
fn the_wgsl_functions_equal_the_oracle_far_from_the_diagonal() {
    // Distances whose products need every bit of the f32, and past 2^24, where the distance
    // itself rounds on its conversion.
    let slopes = alibi_wgpu::alibi_slopes(7).unwrap();
    check_grid(&slopes, 7, 0, 2, 1_000_000, 67);
    check_grid(&slopes, 8, 16_777_000, 3, 0, 5);
    check_grid(&slopes, 7, 0, 2, 16_777_200, 70);
    check_grid(&slopes, 7, 33_554_431, 2, -100, 9);
}

#[test]
fn the_query_position_is_aligned_to_the_end_of_the_keys() {
    let Some(gpu) = common::gpu() else { return };
    // alibi_query_position(i, j, row) for a few (i, j), written by a one-thread shader.
    let cases: [(u32, u32, u32); 5] = [(3, 5, 0), (3, 5, 2), (5, 3, 0), (1, 9, 0), (7, 7, 6)];
    let body: String = cases
        .iter()
        .enumerate()
        .map(|(n, (i, j, row))| {
            format!("    values[{n}] = alibi_query_position({i}u, {j}u, {row}u);\n")
        })
        .collect();
    let source = format!(
        "@group(0) @binding(0) var<storage, read_write> values: array<i32>;\n\
         @compute @workgroup_size(1)\nfn main() {{\n{body}}}\n{ALIBI_WGSL}"
    );
    let device = &gpu.device;
    let values = common::scoped(device, "running the query-position shader", || {
        let values = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("query positions"),
            size: (cases.len() * 4) as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("query positions"),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("query positions"),
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("query positions"),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &[wgpu::BindGroupEntry {
                binding: 0,
                resource: values.as_entire_binding(),
            }],
        });
        let mut encoder = device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(1, 1, 1);
        }
        gpu.queue.submit([encoder.finish()]);
        values
    });
    let got: Vec<i32> =
        bytemuck::cast_slice(&common::read_buffer(device, &gpu.queue, &values)).to_vec();
    let expected: Vec<i32> = cases
        .iter()
        .map(|&(i, j, row)| j as i32 - i as i32 + row as i32)
        .collect();
    assert_eq!(got, expected);
}
