//! Everything that talks to wgpu.

pub(crate) mod context;
pub(crate) mod device;
pub(crate) mod generator;
pub(crate) mod health;
pub(crate) mod host_write;
pub(crate) mod kernel;
pub(crate) mod map;
pub(crate) mod readback;
pub(crate) mod scope;
#[cfg(test)]
mod shader_interface;
pub(crate) mod windows;
pub(crate) mod writer;
