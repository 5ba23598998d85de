//! Everything that talks to wgpu.

pub(crate) mod device;
pub(crate) mod generator;
pub(crate) mod host_write;
pub(crate) mod readback;
pub(crate) mod scope;
