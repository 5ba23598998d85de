//! The Rust mirrors of the kernels' per-window uniforms, member by member, for
//! `shader_interface.rs` to hold against the layouts naga reads from the WGSL.

use std::mem::{offset_of, size_of};

use crate::gpu::attention::plan::FlashParams;
use crate::gpu::bias::dense::DenseParams;
use crate::gpu::bias::kernel::{GenerateParams, PositionLayout};
use crate::gpu::scores::ScoreParams;
use naga::Scalar;

/// A uniform struct as Rust lays it out: its size and `(member, offset, scalar)`.
pub(crate) type Uniform = (usize, Vec<(&'static str, usize, Scalar)>);

/// The [`Uniform`] of a `#[repr(C)]` struct, whose fields are listed with their scalars.
macro_rules! uniform {
    ($ty:ty { $($field:ident: $scalar:ident),* $(,)? }) => {
        (size_of::<$ty>(), vec![$((stringify!($field), offset_of!($ty, $field), Scalar::$scalar)),*])
    };
}

pub(super) fn dense_params() -> Uniform {
    uniform!(DenseParams {
        rows: U32,
        cols: U32,
        head0: U32,
        head_row0: U32,
        row_count: U32,
        grid_rows: U32,
        row0_element: U32,
        unit_lo: U32,
        unit_hi: U32,
        tensor_end: U32,
        query_offset: I32,
        slope_heads: U32,
        future_bits: U32,
        source_base: U32,
        source_head_stride: U32,
        source_row_stride: U32,
        unit_skip: U32,
        row_base: U32,
    })
}

pub(super) fn generate_params() -> Uniform {
    uniform!(GenerateParams {
        rows: U32,
        cols4: U32,
        head0: U32,
        row0: U32,
        query_offset: I32,
        window_vec4: U32,
        slope_heads: U32,
        future_bits: U32,
    })
}

pub(super) fn score_params() -> Uniform {
    uniform!(ScoreParams {
        rows: U32,
        cols: U32,
        head0: U32,
        row0: U32,
        query_offset: I32,
        lead: U32,
        slope_heads: U32,
        future_bits: U32,
        batch_count: U32,
        batch_stride: U32,
        head_stride: U32,
        scale: F32,
    })
}

pub(super) fn position_layout() -> Uniform {
    uniform!(PositionLayout {
        heads: U32,
        query_stride: U32,
        key_stride: U32,
        key_pad: U32
    })
}

/// The attention kernels' uniform, every variant's.
pub(super) fn flash_params() -> Uniform {
    uniform!(FlashParams {
        batch: U32,
        heads_q: U32,
        heads_kv: U32,
        group: U32,
        rows: U32,
        keys: U32,
        group_rows: U32,
        row_tiles: U32,
        splits: U32,
        keys_per_split: U32,
        groups_x: U32,
        slope_heads: U32,
        scale: F32,
        window_left: I32,
        window_right: I32,
        combine_groups_x: U32,
        pair0: U32,
        pairs: U32,
        q_window: U32,
        kv_window: U32,
        tile0: U32,
        run_tiles: U32,
        split0: U32,
        run_splits: U32,
    })
}
