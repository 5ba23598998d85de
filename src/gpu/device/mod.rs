//! The device side every kernel stands on: the context a module's GPU steps share, opening
//! a device, its health and error scopes, the limits plans respect, mapping and readback.

pub(crate) mod context;
pub(crate) mod health;
pub(crate) mod limits;
pub(crate) mod map;
mod open;
pub(crate) mod readback;
pub(crate) mod scope;

pub use health::DeviceLossReporter;
pub(crate) use open::is_cpu_adapter;
pub use open::{open_device, GpuDevice};
