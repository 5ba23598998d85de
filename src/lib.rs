//! # alibi-wgpu
//!
//! Exact ALiBi attention biases (the `AlibiPositionalBias` module of x-transformers) from
//! WGSL compute shaders, on any wgpu adapter: Vulkan, Metal, DX12, OpenGL and WebGPU.
//!
//! ALiBi ("Train Short, Test Long", Press, Smith & Lewis, 2021) adds a per-head linear
//! penalty on the query–key distance to the attention scores. With `heads` heads that have
//! a slope, padded with zero heads to `total_heads`, `forward(i, j)` returns the
//! `[total_heads, i, j]` tensor
//!
//! ```text
//! bias[h, r, k] = -slope_h * |k - (j - i + r)|      for h < heads
//! bias[h, r, k] = 0                                 for heads <= h < total_heads
//! ```
//!
//! where query row `r` sits at position `j - i + r` (queries aligned to the end of the
//! keys, as in a KV-cache decode) and key column `k` at position `k`. With `c` the largest
//! power of two at most `heads`, head `h` has the slope `2^(-8 (h+1) / c)` for `h < c`,
//! and `2^(-4 (2 (h-c) + 1) / c)` after (every other slope of `2c`), computed in f64 and
//! rounded once to f32. Each value is the f32 product `(-distance) as f32 * slope`: every
//! value equals the PyTorch reference bit for bit, and the cache never serves a wrong
//! slice.
//!
//! * [`AlibiPositionalBias`]: the module on a wgpu device (yours, or one it opens).
//! * [`GenerationPath`]: the WGSL kernel, or, on CPU adapters, the host's cores writing
//!   the same bytes straight into device memory.
//! * [`cpu`]: the same bias from the host's cores, for machines without an adapter.
//! * [`reference`](mod@reference): the oracle every path is tested against, one element at
//!   a time.
//! * [`alibi_slopes`], [`max_bias_slopes`], [`SlopeSource`]: the slopes.
//! * Inside an attention: causal biases and f16 output ([`AlibiConfig::causal`],
//!   [`AlibiConfig::dtype`]), custom positions
//!   ([`AlibiPositionalBias::forward_positions`]), the bias added into your scores
//!   ([`AlibiPositionalBias::add_to_scores`]), and [`ALIBI_WGSL`], the same bias computed
//!   inside your own shader.
//! * `export` (feature `safetensors`): tensors as a `.safetensors` file for numpy and
//!   PyTorch.
//!
//! On the default adapter (this example runs in the crate's tests, on Mesa's lavapipe in
//! CI; it needs an adapter):
//!
//! ```
//! # fn main() -> Result<(), alibi_wgpu::AlibiError> {
//! use alibi_wgpu::AlibiPositionalBias;
//!
//! let mut alibi = pollster::block_on(AlibiPositionalBias::new_default(4, Some(8)))?;
//! let bias = pollster::block_on(alibi.forward_to_host(3, 5))?;
//! assert_eq!(bias.shape(), [8, 3, 5]);
//! // Head 0's slope is 2^-2; query row 0 sits at position 5 - 3 + 0 = 2.
//! assert_eq!(bias.row(0, 0), &[-0.5, -0.25, 0.0, -0.25, -0.5]);
//! assert_eq!(bias.row(7, 2), &[0.0; 5]); // a padding head
//!
//! // A decode step: one query against the same keys, served from the cache.
//! let step = alibi.forward(1, 5)?;
//! assert_eq!(pollster::block_on(alibi.read(&step))?.row(0, 0), bias.row(0, 2));
//! assert_eq!(alibi.cache_stats().hits, 1);
//! # Ok(()) }
//! ```
//!
//! Without an adapter, the CPU path gives the same values:
//!
//! ```
//! # fn main() -> Result<(), alibi_wgpu::AlibiError> {
//! let slopes = alibi_wgpu::alibi_slopes(4)?; // [2^-2, 2^-4, 2^-6, 2^-8]
//! let bias = alibi_wgpu::cpu::forward(&slopes, 8, 3, 5)?;
//! assert_eq!(bias.row(0, 2), &[-1.0, -0.75, -0.5, -0.25, 0.0]);
//! # Ok(()) }
//! ```

#![deny(missing_docs)]
// On the web wgpu's objects are neither `Send` nor `Sync` (there is one thread): the
// crate's `Arc`s, which share buffers, errors and the GPU context between threads on native
// targets, hold them there all the same.
#![cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]

/// The README's Rust examples, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// The Rust guide's examples (docs/rust-api.md), compiled and run as doctests too.
#[cfg(doctest)]
#[doc = include_str!("../docs/rust-api.md")]
pub struct RustGuideDoctests;

mod attention;
mod bias;
mod cache;
mod config;
pub mod cpu;
mod dense;
mod dtype;
mod error;
#[cfg(feature = "safetensors")]
pub mod export;
mod generation;
mod gpu;
mod host;
mod module;
mod parallel;
mod pool;
pub mod reference;
mod rows;
mod slopes;
mod validation;
mod wgsl;

pub use attention::{
    AttentionBias, AttentionBuffers, AttentionError, AttentionOptions, AttentionShape,
};
pub use bias::{AlibiBias, BiasBinding, BiasLayout};
pub use cache::{CacheStats, DEFAULT_CACHE_BUDGET_BYTES};
pub use config::AlibiConfig;
pub use dense::{CopySpan, DenseBias, DenseCopies, GpuCheck};
pub use dtype::BiasDtype;
pub use error::{error_chain, AlibiError, MapError, Memory, Result};
pub use generation::GenerationPath;
pub use gpu::device::{open_device, DeviceLossReporter, GpuDevice};
pub use host::HostBias;
pub use module::scores::AttentionScores;
pub use module::{AlibiPositionalBias, Positions};
pub use slopes::{alibi_slopes, max_bias_slopes, SlopeSource};
pub use validation::{validate, MAX_HEADS, MAX_POSITION, MAX_SEQUENCE};
pub use wgsl::ALIBI_WGSL;

/// The `half` crate, whose `f16` f16 readbacks hold ([`AlibiPositionalBias::read_f16`]):
/// re-exported so that callers need not match its version.
pub use half;
