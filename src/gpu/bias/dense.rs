//! The dense kernels (`shaders/bias/dense*.wgsl`), users of the windowed dispatch: a bias
//! `[heads, I, j]` with no gap between rows or heads, at a byte offset of any buffer,
//! generated at the module's positions, at custom ones, or copied from a cached strided
//! block. Each is up to six pipelines of one source ([`UnitKind`]): four words per
//! invocation for the body (in long rows, the units inside one row, in workgroups of 128
//! lanes or 256, then the one unit per row that crosses into the next; rows shorter than a
//! workgroup's lanes packed into workgroups, crossing at most one row's end where rows hold
//! four elements or more, else walking element by element), one word for the words at the
//! tensor's edges (`plan.rs` says which words are which).

mod plan;
mod shape;
mod spans;
mod unit;

use std::sync::OnceLock;

pub(crate) use plan::{plan_dense, Source};
#[cfg(test)]
pub(crate) use plan::{ROW_LANES, WIDE_ROW_LANES};
pub(crate) use shape::{check_dense, DenseShape};
pub(crate) use spans::{copy_spans, span_count};
pub(crate) use unit::UnitKind;

use crate::dtype::BiasDtype;
use crate::error::Result;
use crate::gpu::bias::kernel::{POSITION_BINDINGS, POSITION_BINDINGS_WGSL};
use crate::gpu::device::context::GpuContext;
use crate::gpu::dispatch::{Buffers, Extra, KernelSpec, Window, WindowedKernel};

pub(crate) const DENSE_WGSL: &str = include_str!("../../../shaders/bias/dense.wgsl");
pub(crate) const VEC4_WGSL: &str = include_str!("../../../shaders/bias/dense_vec4.wgsl");
pub(crate) const WORD_WGSL: &str = include_str!("../../../shaders/bias/dense_word.wgsl");
pub(crate) const ROW_VEC4_WGSL: &str = include_str!("../../../shaders/bias/dense_row_vec4.wgsl");
pub(crate) const GENERATE_WGSL: &str = include_str!("../../../shaders/bias/dense_generate.wgsl");
pub(crate) const POSITIONS_WGSL: &str = include_str!("../../../shaders/bias/dense_positions.wgsl");
pub(crate) const COPY_WGSL: &str = include_str!("../../../shaders/bias/dense_copy.wgsl");

/// `dense.wgsl`'s `quad`: rows of four elements or more, where four elements cross at
/// most one row's end (selects), or rows of any length (a walk).
const CROSSES_ONCE: &str = "const ONE_CROSSING: bool = true;";
const WALKS: &str = "const ONE_CROSSING: bool = false;";

/// The copy's own binding: the source, windowed like the tensor ([`Window::source`]).
const SOURCE_BINDING: &[Extra] = &[Extra {
    name: "SOURCE",
    ty: wgpu::BufferBindingType::Storage { read_only: true },
    min_bytes: 4,
}];

/// Where a dense kernel's elements come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DenseKernel {
    /// `dense_generate.wgsl`: the module's positions.
    Generate,
    /// `dense_positions.wgsl`: custom positions.
    Positions,
    /// `dense_copy.wgsl`: a cached block.
    Copy,
}

/// Mirror of the WGSL `Params` uniform of `dense.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct DenseParams {
    pub rows: u32,
    pub cols: u32,
    pub head0: u32,
    pub head_row0: u32,
    pub row_count: u32,
    pub grid_rows: u32,
    pub row0_element: u32,
    pub unit_lo: u32,
    pub unit_hi: u32,
    pub tensor_end: u32,
    pub query_offset: i32,
    pub slope_heads: u32,
    pub future_bits: u32,
    pub source_base: u32,
    pub source_head_stride: u32,
    pub source_row_stride: u32,
    /// Units of a one-row window to skip from the row's first (the tail's words).
    pub unit_skip: u32,
    /// `row0_element - (head0 * rows + head_row0) * cols`, mod 2^32: `dense` finds a row's
    /// first element from its head and row alone.
    pub row_base: u32,
}

const _: () = assert!(std::mem::size_of::<DenseParams>() == 72);

impl DenseKernel {
    /// The kernel storing `dtype` in `unit`s, masking future keys when `causal`. f16 is
    /// always rounded in integer arithmetic (`f16_packed.wgsl`): the words are assembled
    /// from bits, on every device.
    pub fn spec(self, unit: UnitKind, dtype: BiasDtype, causal: bool) -> KernelSpec {
        let units: &[&'static str] = match unit {
            UnitKind::Row | UnitKind::WideRow => &[ROW_VEC4_WGSL, WALKS],
            UnitKind::Crossing | UnitKind::Packed => &[VEC4_WGSL, CROSSES_ONCE],
            UnitKind::PackedWalk => &[VEC4_WGSL, WALKS],
            UnitKind::Word => &[WORD_WGSL, WALKS],
        };
        let (values, extras): (&[&'static str], _) = match self {
            Self::Generate => (&[GENERATE_WGSL], &[][..]),
            Self::Positions => (&[POSITION_BINDINGS_WGSL, POSITIONS_WGSL], POSITION_BINDINGS),
            Self::Copy => (&[COPY_WGSL], SOURCE_BINDING),
        };
        let parts = units
            .iter()
            .chain(&[DENSE_WGSL])
            .chain(values)
            .copied()
            .collect();
        KernelSpec {
            entry_point: unit.entry_point(),
            dtype,
            f16_words: true,
            causal,
            parts,
            window_min_bytes: unit.bytes(),
            extras,
        }
    }
}

type Kernel = WindowedKernel<DenseParams>;

/// A module's dense kernels, each built on first use: `[kernel][unit]`.
#[derive(Default)]
pub(crate) struct DenseKernels {
    built: [[OnceLock<Kernel>; UnitKind::ALL.len()]; 3],
}

impl DenseKernels {
    fn get(
        &self,
        gpu: &GpuContext,
        kernel: DenseKernel,
        unit: UnitKind,
        dtype: BiasDtype,
        causal: bool,
    ) -> Result<&Kernel> {
        let cell = &self.built[kernel as usize][unit as usize];
        if let Some(built) = cell.get() {
            return Ok(built);
        }
        let spec = kernel.spec(unit, dtype, causal);
        let built = match kernel {
            // SAFETY: the generation's only dynamic index is the store `window[unit]` (and
            // the edge's read of the same word), which the kernel keeps inside
            // `unit_lo..unit_hi`: by testing `unit_hi`, or in the row grid by ending each
            // row's units at its last whole unit, which `plan_dense` places at or before
            // `unit_hi` (`Planner::body` asserts it); and `plan_dense` places those units
            // inside the window's binding (its tests run every plan's grid on the host and
            // check each unit against its binding).
            DenseKernel::Generate => unsafe { Kernel::new_unchecked(gpu, &spec)? },
            // They read the caller's positions or a source window, also beyond the
            // tensor's end at its edge: wgpu keeps its bounds checks.
            _ => Kernel::new(gpu, &spec)?,
        };
        Ok(cell.get_or_init(|| built))
    }

    /// Records `kernel`'s windows into `encoder`, writing `target`; `extras` are the
    /// kernel's own buffers (the positions' three, or the copy's source).
    #[allow(clippy::too_many_arguments)]
    pub fn encode(
        &self,
        gpu: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        kernel: DenseKernel,
        (dtype, causal): (BiasDtype, bool),
        windows: &[(UnitKind, Window<DenseParams>)],
        slopes: &wgpu::Buffer,
        target: &wgpu::Buffer,
        extras: &[&wgpu::Buffer],
    ) -> Result<()> {
        // Each kind's windows, in the kinds' order, in one pass.
        let mut kinds = Vec::new();
        for unit in UnitKind::ALL {
            let mine: Vec<_> = windows
                .iter()
                .filter(|(kind, _)| *kind == unit)
                .map(|(_, window)| *window)
                .collect();
            if !mine.is_empty() {
                kinds.push((self.get(gpu, kernel, unit, dtype, causal)?, mine));
            }
        }
        let kinds: Vec<_> = kinds
            .iter()
            .map(|(kernel, windows)| (*kernel, windows.as_slice()))
            .collect();
        let buffers = Buffers {
            slopes,
            tensor: target,
            extras,
        };
        Kernel::encode_each(gpu, encoder, "recording a dense bias", &kinds, buffers)
    }
}
