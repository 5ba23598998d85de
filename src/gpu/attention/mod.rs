//! The attention kernels on the GPU: a call's plan (`plan.rs`), its uniform and the limits
//! it respects (`params.rs`), its runs within one binding and one grid (`chunks.rs`), its
//! pipelines and recording (`kernel.rs`), and the registers of one row written out for a
//! head dimension (`rows.rs`).

pub(crate) mod chunks;
pub(crate) mod kernel;
pub(crate) mod params;
pub(crate) mod plan;
pub(crate) mod rows;
