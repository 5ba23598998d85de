//! The compute pipeline that writes a bias tensor, and the plan that keeps every dispatch
//! within the device's limits (workgroups per dimension, storage binding size).

use crate::error::{AlibiError, Result};

/// The WGSL source of the generator, `shaders/alibi_bias.wgsl`.
pub const GENERATOR_WGSL: &str = include_str!("../../shaders/alibi_bias.wgsl");
/// Entry point of [`GENERATOR_WGSL`].
pub const GENERATOR_ENTRY_POINT: &str = "generate";
/// `@workgroup_size` of the entry point (keep in sync with the WGSL).
pub const WORKGROUP_SIZE: u32 = 256;
/// Columns one workgroup covers along a row: one vec4 per invocation.
pub const COLUMNS_PER_WORKGROUP: usize = WORKGROUP_SIZE as usize * 4;
/// `array<vec4<f32>, SLOPE_VEC4S>` in the WGSL: the slope uniform's length.
pub const SLOPE_VEC4S: usize = crate::slopes::MAX_HEADS / 4;
/// Binding numbers of group 0 (keep in sync with the WGSL).
pub const BINDING_PARAMS: u32 = 0;
/// See [`BINDING_PARAMS`].
pub const BINDING_SLOPES: u32 = 1;
/// See [`BINDING_PARAMS`].
pub const BINDING_BIAS: u32 = 2;

/// Mirror of the WGSL `GenerateParams` uniform.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct GenerateParams {
    /// Rows per head of the generated tensor (I).
    pub rows: u32,
    /// Row length in vec4s (J / 4).
    pub cols4: u32,
    /// First head of this window.
    pub head0: u32,
    /// First row of this window, within each head.
    pub row0: u32,
    /// Position of query row 0: J - I.
    pub query_offset: i32,
    /// Index in vec4s of the first vec4 of the bound window.
    pub window_vec4: u32,
    /// Heads with a slope; the heads after them are zero padding.
    pub slope_heads: u32,
    /// Padding to 32 bytes.
    pub _pad: u32,
}

const _: () = assert!(std::mem::size_of::<GenerateParams>() == 32);

/// The limits a plan must respect, read from the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PlanLimits {
    pub max_buffer_bytes: u64,
    pub max_binding_bytes: u64,
    pub binding_alignment: u64,
    pub max_workgroups_per_dimension: u32,
}

impl PlanLimits {
    pub fn from_device(limits: &wgpu::Limits, binding_override: Option<u64>) -> Self {
        let device_binding = limits.max_storage_buffer_binding_size;
        Self {
            max_buffer_bytes: limits.max_buffer_size,
            max_binding_bytes: binding_override.map_or(device_binding, |o| o.min(device_binding)),
            binding_alignment: u64::from(limits.min_storage_buffer_offset_alignment),
            max_workgroups_per_dimension: limits.max_compute_workgroups_per_dimension,
        }
    }
}

/// One dispatch: a window of whole rows (whole heads, or part of one head) bound at an
/// aligned offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    pub params: GenerateParams,
    pub bind_offset: u64,
    pub bind_size: u64,
    pub groups: [u32; 3],
}

/// The tensor shape a generation writes: `heads` heads with slopes, then zero padding heads
/// up to `total_heads`, each `rows` x `cols`, `cols` a multiple of 4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct GenerateShape {
    pub heads: usize,
    pub total_heads: usize,
    pub rows: usize,
    pub cols: usize,
    /// The `j` the caller asked for (`cols` is it padded, or grown): errors name it.
    pub requested_cols: usize,
}

impl GenerateShape {
    pub fn bytes(&self) -> Option<u64> {
        (self.total_heads as u64)
            .checked_mul(self.rows as u64)?
            .checked_mul(self.cols as u64)?
            .checked_mul(4)
    }
}

/// Splits a generation into windows that each fit one storage binding and one dispatch.
pub(crate) fn plan_windows(shape: GenerateShape, limits: PlanLimits) -> Result<Vec<Window>> {
    let GenerateShape {
        heads,
        total_heads,
        rows,
        cols,
        ..
    } = shape;
    debug_assert!(cols % 4 == 0 && cols > 0 && rows > 0);
    let too_large = |bytes, limit| AlibiError::TooLarge {
        heads: total_heads,
        i: rows,
        j: shape.requested_cols,
        bytes,
        limit,
    };
    let bytes = shape.bytes().unwrap_or(u64::MAX);
    if bytes > limits.max_buffer_bytes {
        return Err(too_large(bytes, limits.max_buffer_bytes));
    }
    // The shader indexes vec4s with u32.
    let max_indexable = (u64::from(u32::MAX) + 1) * 16;
    if bytes > max_indexable {
        return Err(too_large(bytes, max_indexable));
    }
    let row_bytes = cols as u64 * 4;
    // A window starts on a row, 16-byte aligned; its binding starts at the aligned offset
    // below, so up to `alignment - 16` bytes of slack come before it.
    let usable = limits
        .max_binding_bytes
        .saturating_sub(limits.binding_alignment.saturating_sub(16))
        & !15;
    if row_bytes > usable {
        return Err(AlibiError::RowTooLarge {
            j: shape.requested_cols,
            bytes: row_bytes,
            limit: usable,
        });
    }
    let max_groups = limits.max_workgroups_per_dimension as usize;
    let col_groups = cols.div_ceil(COLUMNS_PER_WORKGROUP);
    debug_assert!(
        col_groups <= max_groups,
        "cols <= 2^24 keeps this under 65535"
    );
    let head_bytes = rows as u64 * row_bytes;
    let rows_per_window = ((usable / row_bytes) as usize).min(max_groups).min(rows);

    let mut windows = Vec::new();
    let mut push = |head0: usize, head_count: usize, row0: usize, row_count: usize| {
        let first_vec4 = ((head0 * rows + row0) * cols / 4) as u64;
        let start = first_vec4 * 16;
        let bind_offset = start / limits.binding_alignment * limits.binding_alignment;
        let end = start + ((head_count - 1) * rows + row_count) as u64 * row_bytes;
        windows.push(Window {
            params: GenerateParams {
                rows: rows as u32,
                cols4: (cols / 4) as u32,
                head0: head0 as u32,
                row0: row0 as u32,
                query_offset: cols as i32 - rows as i32,
                window_vec4: (bind_offset / 16) as u32,
                slope_heads: heads as u32,
                _pad: 0,
            },
            bind_offset,
            bind_size: end - bind_offset,
            groups: [col_groups as u32, row_count as u32, head_count as u32],
        });
    };
    if rows <= max_groups && head_bytes <= usable {
        let heads_per_window = ((usable / head_bytes) as usize).min(max_groups);
        for head0 in (0..total_heads).step_by(heads_per_window) {
            push(head0, heads_per_window.min(total_heads - head0), 0, rows);
        }
    } else {
        for head in 0..total_heads {
            for row0 in (0..rows).step_by(rows_per_window) {
                push(head, 1, row0, rows_per_window.min(rows - row0));
            }
        }
    }
    Ok(windows)
}

/// The pipeline and layout, built once per module.
pub(crate) struct Generator {
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
    params_stride: u64,
}

impl Generator {
    pub fn new(device: &wgpu::Device) -> Self {
        let descriptor = wgpu::ShaderModuleDescriptor {
            label: Some("alibi_bias.wgsl"),
            source: wgpu::ShaderSource::Wgsl(GENERATOR_WGSL.into()),
        };
        // SAFETY: the shader's only dynamic index is its store `bias[row_start + col4]`, and
        // `plan_windows` places every such index of every window inside that window's
        // binding (its tests check each index of many plans). Without wgpu's runtime
        // bounds checks the store is a quarter faster on lavapipe, where stores dominate.
        let module = unsafe {
            device.create_shader_module_trusted(descriptor, wgpu::ShaderRuntimeChecks::unchecked())
        };
        let uniform = |binding, size: usize| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: false,
                min_binding_size: wgpu::BufferSize::new(size as u64),
            },
            count: None,
        };
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("alibi generator"),
            entries: &[
                uniform(BINDING_PARAMS, std::mem::size_of::<GenerateParams>()),
                uniform(BINDING_SLOPES, SLOPE_VEC4S * 16),
                wgpu::BindGroupLayoutEntry {
                    binding: BINDING_BIAS,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage { read_only: false },
                        has_dynamic_offset: false,
                        min_binding_size: wgpu::BufferSize::new(16),
                    },
                    count: None,
                },
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("alibi generator"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("alibi generator"),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some(GENERATOR_ENTRY_POINT),
            compilation_options: Default::default(),
            cache: None,
        });
        let alignment = u64::from(device.limits().min_uniform_buffer_offset_alignment);
        Self {
            pipeline,
            layout,
            params_stride: (std::mem::size_of::<GenerateParams>() as u64)
                .next_multiple_of(alignment),
        }
    }

    /// A slope uniform holding `slopes` (at most `MAX_HEADS`), zero after them.
    pub fn slope_buffer(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        slopes: &[f32],
    ) -> wgpu::Buffer {
        let mut padded = vec![0.0f32; SLOPE_VEC4S * 4];
        padded[..slopes.len()].copy_from_slice(slopes);
        let buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("alibi slopes"),
            size: (padded.len() * 4) as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        queue.write_buffer(&buffer, 0, bytemuck::cast_slice(&padded));
        buffer
    }

    /// Records the generation of `windows` into `output`, a buffer of at least the bytes of
    /// the shape they were planned for; every element of that shape is written.
    pub fn encode(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        encoder: &mut wgpu::CommandEncoder,
        slopes: &wgpu::Buffer,
        windows: &[Window],
        output: &wgpu::Buffer,
    ) {
        let stride = self.params_stride as usize;
        let mut params = vec![0u8; stride * windows.len()];
        for (slot, window) in params.chunks_exact_mut(stride).zip(windows) {
            slot[..std::mem::size_of::<GenerateParams>()]
                .copy_from_slice(bytemuck::bytes_of(&window.params));
        }
        let params_buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("alibi generate params"),
            size: params.len() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        // Written through the queue, so it lands before any encoder submitted after it.
        queue.write_buffer(&params_buffer, 0, &params);

        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("alibi generate"),
            timestamp_writes: None,
        });
        pass.set_pipeline(&self.pipeline);
        for (index, window) in windows.iter().enumerate() {
            let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("alibi generate window"),
                layout: &self.layout,
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: BINDING_PARAMS,
                        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: &params_buffer,
                            offset: index as u64 * self.params_stride,
                            size: wgpu::BufferSize::new(
                                std::mem::size_of::<GenerateParams>() as u64
                            ),
                        }),
                    },
                    wgpu::BindGroupEntry {
                        binding: BINDING_SLOPES,
                        resource: slopes.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: BINDING_BIAS,
                        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: output,
                            offset: window.bind_offset,
                            size: wgpu::BufferSize::new(window.bind_size),
                        }),
                    },
                ],
            });
            pass.set_bind_group(0, &bind_group, &[]);
            let [x, y, z] = window.groups;
            pass.dispatch_workgroups(x, y, z);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAVAPIPE: PlanLimits = PlanLimits {
        max_buffer_bytes: 1 << 32,
        max_binding_bytes: 1 << 27,
        binding_alignment: 256,
        max_workgroups_per_dimension: 65535,
    };

    fn shape(heads: usize, rows: usize, cols: usize) -> GenerateShape {
        GenerateShape {
            heads,
            total_heads: heads,
            rows,
            cols,
            requested_cols: cols,
        }
    }

    /// Every vec4 of every head is covered exactly once, within its binding.
    fn assert_covers_exactly(shape: GenerateShape, limits: PlanLimits, windows: &[Window]) {
        let cols4 = shape.cols / 4;
        let mut written = vec![0u8; shape.total_heads * shape.rows * cols4];
        for w in windows {
            assert!(w.bind_size <= limits.max_binding_bytes);
            assert_eq!(w.bind_offset % limits.binding_alignment, 0);
            assert!(w
                .groups
                .iter()
                .all(|&g| g >= 1 && g <= limits.max_workgroups_per_dimension));
            let p = w.params;
            for h in 0..w.groups[2] {
                for y in 0..w.groups[1] {
                    let row_start = ((p.head0 + h) * p.rows + p.row0 + y) * p.cols4;
                    for c4 in 0..p.cols4 {
                        let index = (row_start + c4) as usize;
                        let local = (index - p.window_vec4 as usize) as u64;
                        assert!((local + 1) * 16 <= w.bind_size, "{w:?}");
                        written[index] += 1;
                    }
                }
            }
        }
        assert!(written.iter().all(|&n| n == 1));
    }

    #[test]
    fn small_tensors_are_one_window() {
        let s = shape(8, 64, 64);
        let windows = plan_windows(s, LAVAPIPE).unwrap();
        assert_eq!(windows.len(), 1);
        assert_covers_exactly(s, LAVAPIPE, &windows);
    }

    #[test]
    fn large_tensors_are_split_into_bindable_windows() {
        let tight = PlanLimits {
            max_binding_bytes: 4096,
            ..LAVAPIPE
        };
        for s in [
            shape(3, 10, 40),
            shape(5, 7, 100),
            shape(2, 30, 512),
            shape(4, 1, 900),
        ] {
            let windows = plan_windows(s, tight).unwrap();
            assert!(windows.len() > 1, "{s:?}");
            assert_covers_exactly(s, tight, &windows);
        }
    }

    #[test]
    fn rows_beyond_the_dispatch_limit_are_split() {
        let few_groups = PlanLimits {
            max_workgroups_per_dimension: 7,
            ..LAVAPIPE
        };
        let s = shape(2, 20, 8);
        let windows = plan_windows(s, few_groups).unwrap();
        assert_covers_exactly(s, few_groups, &windows);
    }

    #[test]
    fn the_issue_example_fits_lavapipe_in_windows() {
        // heads = 32, i = j = 2048: 512 MiB in windows of 7 heads (112 MiB each).
        let windows = plan_windows(shape(32, 2048, 2048), LAVAPIPE).unwrap();
        assert_eq!(windows.len(), 5);
        assert!(windows.iter().all(|w| w.bind_size <= 1 << 27));
    }

    #[test]
    fn refusals_name_the_limit() {
        let small = PlanLimits {
            max_buffer_bytes: 1 << 20,
            ..LAVAPIPE
        };
        assert!(matches!(
            plan_windows(shape(32, 2048, 2048), small),
            Err(AlibiError::TooLarge { bytes, limit, .. }) if bytes == 1 << 29 && limit == 1 << 20
        ));
        let narrow = PlanLimits {
            max_binding_bytes: 1024,
            ..LAVAPIPE
        };
        assert!(matches!(
            plan_windows(shape(1, 1, 4096), narrow),
            Err(AlibiError::RowTooLarge { j: 4096, .. })
        ));
    }
}
