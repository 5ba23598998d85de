//! Writing bias tensors: the two bias kernels (at the module's positions, at custom ones),
//! their window planner, and the writer that runs them or, on the host path, writes
//! through a mapping.

pub(crate) mod dense;
pub(crate) mod kernel;
pub(crate) mod positions;
pub(crate) mod windows;
pub(crate) mod writer;

pub(crate) use positions::PositionData;
pub(crate) use windows::check_fits;
pub(crate) use writer::{BiasWriter, SlopeUniform};
