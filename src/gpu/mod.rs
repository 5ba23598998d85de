//! Everything that talks to wgpu.

pub(crate) mod device;
pub(crate) mod generator;
pub(crate) mod readback;
pub(crate) mod scope;
