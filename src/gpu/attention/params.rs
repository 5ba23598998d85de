//! What a planned attention call hands the GPU and what bounds it: the kernels' uniform
//! (`FlashParams`), the device limits a plan respects, and the dispatch grid of a count
//! of workgroups.

use crate::gpu::device::context::GpuContext;

/// The uniform of both attention kernels; `Params` in shaders/attention/flash.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct FlashParams {
    pub batch: u32,
    pub heads_q: u32,
    pub heads_kv: u32,
    pub group: u32,
    pub rows: u32,
    pub keys: u32,
    pub group_rows: u32,
    pub row_tiles: u32,
    pub splits: u32,
    pub keys_per_split: u32,
    pub groups_x: u32,
    pub slope_heads: u32,
    pub scale: f32,
    pub window_left: i32,
    pub window_right: i32,
    pub combine_groups_x: u32,
    /// The run's first (batch item, key/value head) pair and its pairs (`chunks.rs`).
    pub pair0: u32,
    pub pairs: u32,
    /// Where the run's windows of q (and the output) and of k (and v) start, in vec4s
    /// of the tensors (mod 2^32).
    pub q_window: u32,
    pub kv_window: u32,
    /// The run's first row tile and its row tiles, first key range (split) and key ranges.
    pub tile0: u32,
    pub run_tiles: u32,
    pub split0: u32,
    pub run_splits: u32,
}

const _: () = assert!(std::mem::size_of::<FlashParams>() == 96);

/// The device limits a plan respects.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AttentionLimits {
    pub max_binding_bytes: u64,
    pub max_buffer_bytes: u64,
    pub max_workgroups_per_dimension: u32,
    pub binding_alignment: u64,
    pub workgroup_storage_bytes: u32,
    /// Workgroups that keep the device busy: fewer, and the keys are split across more.
    pub busy_workgroups: u32,
    /// A CPU adapter (lavapipe, llvmpipe, SwiftShader): its invocations take several query
    /// rows each ([`rows_per_invocation`]).
    pub cpu: bool,
}

impl AttentionLimits {
    /// The limits of `gpu`'s device.
    pub fn new(gpu: &GpuContext) -> Self {
        let cpu = gpu.cpu_adapter;
        Self {
            max_binding_bytes: gpu.limits.max_binding_bytes,
            max_buffer_bytes: gpu.limits.max_buffer_bytes,
            max_workgroups_per_dimension: gpu.limits.max_workgroups_per_dimension,
            binding_alignment: gpu.limits.binding_alignment,
            workgroup_storage_bytes: gpu.device.limits().max_compute_workgroup_storage_size,
            // A CPU adapter runs one workgroup per core at a time; a GPU wants hundreds.
            busy_workgroups: if cpu {
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                4 * cores as u32
            } else {
                1024
            },
            cpu,
        }
    }
}

/// A 2-D grid of `count` workgroups, at most `max` along each side (the caller checked
/// `count <= max * max`).
pub(crate) fn grid(count: u128, max: u32) -> [u32; 3] {
    let x = count.min(max as u128).max(1);
    let y = count.div_ceil(x).max(1);
    [x as u32, y as u32, 1]
}
