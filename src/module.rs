//! [`AlibiPositionalBias`]: the module. It owns the cache and its memory, and hands the
//! work to the pieces beside it: the writer (`gpu/bias/writer.rs`) generates, the readback
//! (`gpu/device/readback.rs`) copies to the host, the pool (`pool.rs`) keeps evicted buffers.

use std::sync::Arc;

use crate::bias::AlibiBias;
use crate::cache::{BiasCache, CacheStats, Layout};
use crate::dtype::BiasDtype;
use crate::error::Result;
use crate::generation::{GenerateShape, GenerationPath};
use crate::gpu::bias::{check_fits, BiasWriter, SlopeUniform};
use crate::gpu::device::context::GpuContext;
use crate::gpu::device::health::{DeviceLossReporter, LossPoll};
use crate::gpu::device::readback::Readback;
use crate::gpu::device::scope::CallErrors;
use crate::host::{sized_host, Tee};
use crate::pool::BufferPool;
use crate::validation::{check_sequence, MAX_SEQUENCE};

pub use positions::Positions;

mod attention;
mod build;
mod dense;
mod positions;
pub(crate) mod scores;
mod to_host;
mod uncached;
mod views;

/// ALiBi positional bias on a wgpu device: x-transformers' `AlibiPositionalBias(heads,
/// total_heads)` with an exact cache (docs/semantics.md).
///
/// Pipelines, layouts and the slope uniform are built once, in the constructor. On the
/// shader path `forward` records and submits GPU work but never waits for it; on the
/// host-mapped path of CPU adapters ([`GenerationPath`]) the host writes the values before
/// it returns. Reading back is `async` (with blocking wrappers off the web).
///
/// ```no_run
/// # fn main() -> Result<(), alibi_wgpu::AlibiError> {
/// let mut alibi = pollster::block_on(alibi_wgpu::AlibiPositionalBias::new_default(8, None))?;
/// let bias = alibi.forward(16, 16)?; // [8, 16, 16] on the GPU
/// let step = alibi.forward(1, 16)?; // served from the cache: the last query row
/// let host = pollster::block_on(alibi.read(&step))?;
/// assert_eq!(host.row(0, 0)[15], 0.0);
/// # let _ = bias; Ok(()) }
/// ```
///
/// # Sharing it between threads
///
/// On native targets a module is `Send + Sync`. The calls that use the cache (`forward`,
/// `forward_to_host`, the cache controls) take `&mut self`; readback and the uncached calls
/// take `&self`. Share one module behind a lock (`Mutex`, or `RwLock` to read back from
/// several threads at once):
///
/// ```no_run
/// use std::sync::{Arc, Mutex};
/// # fn main() -> Result<(), alibi_wgpu::AlibiError> {
/// let alibi = pollster::block_on(alibi_wgpu::AlibiPositionalBias::new_default(8, None))?;
/// let alibi = Arc::new(Mutex::new(alibi));
/// let workers: Vec<_> = (1..=4)
///     .map(|n| {
///         let alibi = Arc::clone(&alibi);
///         std::thread::spawn(move || {
///             let mut alibi = alibi.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
///             pollster::block_on(alibi.forward_to_host(1, 64 * n))
///         })
///     })
///     .collect();
/// for worker in workers {
///     let bias = worker.join().expect("the worker finished")?;
///     assert_eq!(bias.shape()[0], 8);
/// }
/// # Ok(()) }
/// ```
///
/// # Memory
///
/// Between calls a module holds at most its cache budget
/// ([`AlibiConfig::cache_budget_bytes`](crate::AlibiConfig::cache_budget_bytes)) in cached
/// tensors and evicted buffers kept for reuse, as much again at most in readback staging
/// buffers, and nothing else; during a call, also the result it returns.
/// [`cache_stats`](Self::cache_stats) reports the peak. An [`AlibiBias`] the caller holds
/// keeps its buffer from being reused: keep the view (or a clone of it) alive while
/// anything you recorded but have not submitted yet reads its buffer. A `wgpu::Buffer`
/// cloned out of a view does not hold it. Work already submitted is safe: a reused buffer
/// is written after it, in queue order or by waiting for it.
///
/// # Device loss
///
/// Once the device is lost every call returns
/// [`AlibiError::DeviceLost`](crate::AlibiError::DeviceLost), cache hits included. wgpu
/// delivers a loss (after `destroy()`, once its queue is empty) at its next poll of the
/// device: the module polls before every call that does GPU work, and before a cache hit
/// when a millisecond has passed since its last poll (on a coarse clock), so a hit can
/// still succeed within a few milliseconds of the loss. A module built by
/// [`on_device`](Self::on_device) or [`new_default`](Self::new_default) learns of the loss
/// by itself (do not replace the device-lost callback of a
/// [`GpuDevice`](crate::GpuDevice)'s device: wgpu keeps one per device); on your own
/// device, forward your device-lost callback to
/// [`device_loss_reporter`](Self::device_loss_reporter).
pub struct AlibiPositionalBias {
    /// Shared with the readbacks in flight (see `Reader`).
    gpu: Arc<GpuContext>,
    writer: BiasWriter,
    slopes: SlopeUniform,
    /// A single slope of 1.0: `get_bias` is the generator with this slope.
    unit_slope: SlopeUniform,
    heads: usize,
    total_heads: usize,
    causal: bool,
    dtype: BiasDtype,
    adapter_info: Option<wgpu::AdapterInfo>,
    /// Each entry with the errors of the call that generated it: a failed entry is
    /// evicted when next found, never served.
    cache: BiasCache<(Arc<wgpu::Buffer>, CallErrors)>,
    /// Evicted buffers kept for reuse.
    pool: BufferPool<wgpu::Buffer>,
    readback: Arc<Readback>,
    loss_poll: LossPoll,
    /// The most bytes of cached and pooled buffers held at the end of any call.
    peak_bytes: u64,
    /// The `add_to_scores` kernels, built on first use.
    score_kernels: crate::gpu::scores::ScoreKernels,
    /// The attention pipelines built so far, by variant.
    attention_kernels: crate::gpu::attention::kernel::FlashKernels,
    /// The device limits and traits every attention plan respects, read once.
    attention_limits: crate::gpu::attention::params::AttentionLimits,
    /// The shape of the last dense request copied from the cache a span per row: the same
    /// shape again keeps a dense cache entry (`module/dense/copy.rs`).
    last_row_copy: Option<(usize, usize)>,
}

#[cfg(not(target_arch = "wasm32"))]
const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<AlibiPositionalBias>();
};

impl AlibiPositionalBias {
    /// x-transformers' static `_get_slopes(heads)`: the paper's slopes, f64 rounded once.
    pub fn get_slopes(heads: usize) -> Result<Vec<f32>> {
        crate::slopes::alibi_slopes(heads)
    }

    /// Heads with a slope.
    pub fn heads(&self) -> usize {
        self.heads
    }

    /// Output heads (`heads` plus zero padding heads).
    pub fn total_heads(&self) -> usize {
        self.total_heads
    }

    /// Whether future keys are masked with `-inf` ([`AlibiConfig::causal`](crate::AlibiConfig::causal)).
    pub fn causal(&self) -> bool {
        self.causal
    }

    /// The element type of its biases ([`AlibiConfig::dtype`](crate::AlibiConfig::dtype)).
    pub fn dtype(&self) -> BiasDtype {
        self.dtype
    }

    /// The f32 slopes uploaded to the GPU, one per head.
    pub fn slopes(&self) -> &[f32] {
        &self.slopes.values
    }

    /// The path its generations take: [`GenerationPath::Shader`] or
    /// [`GenerationPath::HostMapped`], as the configuration's path resolved on this device.
    pub fn generation_path(&self) -> GenerationPath {
        self.writer.path()
    }

    /// The adapter, when the module opened its own device.
    pub fn adapter_info(&self) -> Option<&wgpu::AdapterInfo> {
        self.adapter_info.as_ref()
    }

    /// The device the module works on.
    pub fn device(&self) -> &wgpu::Device {
        &self.gpu.device
    }

    /// The queue the module submits to.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.gpu.queue
    }

    /// A handle that tells this module (and every module built on the same
    /// [`GpuDevice`](crate::GpuDevice)) that the device was lost: call it from your device-lost callback
    /// when the device is yours (see [`DeviceLossReporter`]).
    pub fn device_loss_reporter(&self) -> DeviceLossReporter {
        self.gpu.health.reporter()
    }

    /// Hit, miss and eviction counters, and the bytes held: cached, recycled, staging,
    /// and the peak.
    pub fn cache_stats(&self) -> CacheStats {
        CacheStats {
            recycled_bytes: self.pool.bytes(),
            staging_bytes: self.readback.staging_bytes(),
            peak_bytes: self.peak_bytes,
            ..self.cache.stats()
        }
    }

    /// Changes the byte budget, evicting least recently used entries and dropping kept
    /// buffers to meet it. The peak of [`cache_stats`](Self::cache_stats) starts again from
    /// what is held now.
    pub fn set_cache_budget(&mut self, bytes: u64) {
        let evicted = self.cache.set_budget(bytes);
        self.peak_bytes = 0;
        self.keep_evicted(evicted);
        self.readback.trim(bytes);
    }

    /// Drops every cached bias (views already handed out stay valid). Their buffers are
    /// kept, within the budget, for the next generations.
    pub fn clear_cache(&mut self) {
        let evicted = self.cache.clear();
        self.keep_evicted(evicted);
    }

    /// The bias `[total_heads, i, j]` on the GPU (docs/semantics.md, "Forward").
    ///
    /// A request inside a cached tensor is its bottom-right slice: no GPU work, no
    /// allocation. A miss generates (and caches) a new tensor; when the request extends the
    /// keys of a cached one, as a decode step does, the new tensor has twice its keys, so a
    /// decode loop generates O(log n) times. The result is always what a fresh module
    /// returns for `(i, j)`. On the shader path the GPU work is submitted, not waited for.
    /// On the host-mapped path (CPU adapters, native only) the values are written when it
    /// returns, and a miss that reuses an evicted buffer first waits, blocking, for the
    /// device to finish any work still using that buffer.
    pub fn forward(&mut self, i: usize, j: usize) -> Result<AlibiBias> {
        self.forward_teeing(i, j, None).map(|(view, _)| view)
    }

    /// [`forward`](Self::forward); when `host` is given and the request is a miss on the
    /// host-mapped path, `host` also receives the view's values from the same writes, and
    /// the flag says so (the caller then has no readback to do).
    fn forward_teeing(
        &mut self,
        i: usize,
        j: usize,
        host: Option<&mut Vec<f32>>,
    ) -> Result<(AlibiBias, bool)> {
        self.gpu.health.check()?;
        let polled = self.loss_poll.due();
        if polled {
            self.gpu.ensure_alive()?;
        }
        check_sequence(i, j)?;
        let shape = [self.total_heads, i, j];
        if i == 0 || j == 0 {
            return Ok((self.empty_view(shape), false));
        }
        if let Some(hit) = self.cache.lookup(i, j) {
            let ((buffer, errors), rows, cols) = (hit.payload.clone(), hit.rows, hit.cols);
            // A generation known to have failed (its errors answer later on the web) is
            // evicted and generated again.
            if errors.failure_now().is_none() {
                let view = self.slice_view(buffer, rows, cols, shape);
                return Ok((AlibiBias { errors, ..view }, false));
            }
            self.evict_failed();
        }
        // A miss polls before GPU work, unless the loss poll above just did.
        if !polled {
            self.gpu.ensure_alive()?;
            self.loss_poll.polled();
        }
        let generated = self.shape_to_generate(i, j);
        // The view is whole rows of the generated tensor (only the keys ever grow), which
        // is what the tee assumes.
        debug_assert_eq!(generated.rows, i);
        // Refused by the device before anything is allocated for it, on the host included.
        check_fits(generated, self.gpu.limits)?;
        let tee = match host {
            Some(out) if self.writer.path() == GenerationPath::HostMapped => {
                sized_host(out, self.total_heads, i, j)?;
                Some(Tee { out, j })
            }
            _ => None,
        };
        let teed = tee.is_some();
        let reuse = self.pool.take(generated.bytes().unwrap_or(u64::MAX));
        let call = self.gpu.errors.begin_call();
        let buffer = self
            .writer
            .generate(&self.gpu, &self.slopes, generated, reuse, tee)?;
        let errors = call.record();
        drop(call);
        // A reused buffer may be up to twice the tensor: the cache counts what it holds.
        let held = buffer.size();
        let buffer = Arc::new(buffer);
        let evicted = self.cache.insert(
            Layout::Strided,
            (i, generated.cols),
            held,
            (buffer.clone(), errors.clone()),
        );
        self.keep_evicted(evicted);
        let view = self.slice_view(buffer, i, generated.cols, shape);
        Ok((AlibiBias { errors, ..view }, teed))
    }

    /// The most recently used cached tensor, whole (`[total_heads, I, J]` for the `(I, J)`
    /// it was generated for), like x-transformers' `self.bias`.
    pub fn cached_bias(&self) -> Option<AlibiBias> {
        let hit = self.cache.most_recent()?;
        let shape = [self.total_heads, hit.rows, hit.cols];
        let (buffer, errors) = hit.payload.clone();
        let view = self.slice_view(buffer, hit.rows, hit.cols, shape);
        Some(AlibiBias { errors, ..view })
    }

    /// The module's tensor for `(i, j)`, rows padded to a multiple of 4 columns so every
    /// row is vec4-aligned (the view then starts `cols - j` columns in).
    fn exact_shape(&self, i: usize, j: usize) -> GenerateShape {
        GenerateShape {
            heads: self.heads,
            total_heads: self.total_heads,
            rows: i,
            cols: j.next_multiple_of(4),
            requested_cols: j,
            causal: self.causal,
            dtype: self.dtype,
        }
    }

    /// What to generate for a miss: the cache's growth target when the grown tensor fits
    /// the cache budget and the device (buffer size and binding windows), else exactly
    /// `(i, j)`, so growth never refuses a request a fresh module would serve.
    fn shape_to_generate(&self, i: usize, j: usize) -> GenerateShape {
        let exact = self.exact_shape(i, j);
        let grown = GenerateShape {
            cols: self.cache.growth_target(i, j).next_multiple_of(4),
            ..exact
        };
        let fits = grown.cols <= MAX_SEQUENCE
            && grown
                .bytes()
                .is_some_and(|bytes| bytes <= self.cache.stats().budget_bytes)
            && check_fits(grown, self.gpu.limits).is_ok();
        if grown.cols > exact.cols && fits {
            grown
        } else {
            exact
        }
    }

    /// Evicts the cached generations known to have failed, after a lookup found one: the
    /// hit is counted as a miss, and their buffers are not reused (a failed allocation's
    /// buffer is invalid).
    pub(super) fn evict_failed(&mut self) {
        drop(self.cache.remove_where(|(_, e)| e.failure_now().is_some()));
        self.cache.hit_was_a_miss();
    }

    /// Keeps evicted buffers nobody holds in the pool, within what the budget leaves after
    /// the cache, and records the peak of what the module holds.
    fn keep_evicted(&mut self, evicted: Vec<(Arc<wgpu::Buffer>, CallErrors)>) {
        let stats = self.cache.stats();
        // A failed generation's buffer may be invalid, and a dense entry's takes copies
        // (the pool's become views): they are dropped, not reused.
        let buffers = evicted
            .into_iter()
            .filter(|(buffer, errors)| {
                errors.failure_now().is_none()
                    && !buffer.usage().contains(wgpu::BufferUsages::COPY_DST)
            })
            .map(|(buffer, _)| buffer)
            .collect();
        self.pool
            .keep(buffers, stats.budget_bytes.saturating_sub(stats.bytes));
        self.peak_bytes = self.peak_bytes.max(stats.bytes + self.pool.bytes());
    }
}
