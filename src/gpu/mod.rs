//! Everything that talks to wgpu.

pub(crate) mod context;
pub(crate) mod device;
pub(crate) mod generator;
pub(crate) mod health;
#[cfg(not(target_arch = "wasm32"))]
pub(crate) mod host_write;
pub(crate) mod kernel;
pub(crate) mod map;
pub(crate) mod positions;
pub(crate) mod readback;
pub(crate) mod scope;
pub(crate) mod scores;
#[cfg(all(test, not(target_arch = "wasm32")))]
pub(crate) mod shader_interface;
pub(crate) mod windows;
pub(crate) mod writer;
