//! [`AlibiPositionalBias`]: the module, its configuration, and its cache on the GPU.

use std::sync::{Arc, Mutex};

use crate::bias::{AlibiBias, BiasLayout};
use crate::cache::{BiasCache, CacheStats, DEFAULT_CACHE_BUDGET_BYTES};
use crate::error::{AlibiError, Result};
use crate::generation::GenerationPath;
use crate::gpu::device::{open_device, DeviceHealth, GpuDevice};
use crate::gpu::generator::{plan_windows, GenerateShape, Generator, PlanLimits};
#[cfg(not(target_arch = "wasm32"))]
use crate::gpu::host_write::write_mapped;
use crate::gpu::host_write::Tee;
use crate::gpu::readback::{map_buffer, StagingPool};
use crate::gpu::scope::{gpu_error, run_scoped, PendingErrors};
use crate::host::HostBias;
use crate::reference::{check_heads, check_sequence, for_each_row_chunk, sized_host, MAX_SEQUENCE};
use crate::slopes::SlopeSource;

/// How to build an [`AlibiPositionalBias`]: heads, padding heads, slopes, cache budget and
/// generation path.
///
/// ```
/// use alibi_wgpu::AlibiConfig;
/// let config = AlibiConfig::new(12).total_heads(16).max_bias(8.0).cache_budget_bytes(64 << 20);
/// assert_eq!(config.resolved_total_heads(), 16);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct AlibiConfig {
    heads: usize,
    total_heads: Option<usize>,
    slopes: SlopeSource,
    cache_budget_bytes: u64,
    max_binding_window_bytes: Option<u64>,
    generation_path: GenerationPath,
}

impl AlibiConfig {
    /// `heads` heads with the paper's slopes, no padding heads, the default cache budget.
    pub fn new(heads: usize) -> Self {
        Self {
            heads,
            total_heads: None,
            slopes: SlopeSource::Paper,
            cache_budget_bytes: DEFAULT_CACHE_BUDGET_BYTES,
            max_binding_window_bytes: None,
            generation_path: GenerationPath::Auto,
        }
    }

    /// Output heads; heads past `heads` are zero. Defaults to `heads`.
    pub fn total_heads(mut self, total_heads: usize) -> Self {
        self.total_heads = Some(total_heads);
        self
    }

    /// Where the slopes come from.
    pub fn slopes(mut self, slopes: SlopeSource) -> Self {
        self.slopes = slopes;
        self
    }

    /// ggml's slopes with this `max_bias` (8 gives the paper's).
    pub fn max_bias(self, max_bias: f64) -> Self {
        self.slopes(SlopeSource::MaxBias(max_bias))
    }

    /// One slope per head, as given.
    pub fn custom_slopes(self, slopes: Vec<f32>) -> Self {
        self.slopes(SlopeSource::Custom(slopes))
    }

    /// Byte budget of the cache (default [`DEFAULT_CACHE_BUDGET_BYTES`]); 0 disables it.
    pub fn cache_budget_bytes(mut self, bytes: u64) -> Self {
        self.cache_budget_bytes = bytes;
        self
    }

    /// Bind at most this many bytes of output per dispatch, below the device's
    /// `max_storage_buffer_binding_size`: a way to exercise windowing on small tensors.
    pub fn max_binding_window_bytes(mut self, bytes: u64) -> Self {
        self.max_binding_window_bytes = Some(bytes);
        self
    }

    /// Where generations are computed (default [`GenerationPath::Auto`]).
    pub fn generation_path(mut self, path: GenerationPath) -> Self {
        self.generation_path = path;
        self
    }

    /// The generation path asked for; [`AlibiPositionalBias::generation_path`] says which
    /// one a module resolved it to.
    pub fn requested_generation_path(&self) -> GenerationPath {
        self.generation_path
    }

    /// `total_heads`, or `heads` when unset.
    pub fn resolved_total_heads(&self) -> usize {
        self.total_heads.unwrap_or(self.heads)
    }
}

/// ALiBi positional bias on a wgpu device: x-transformers' `AlibiPositionalBias(heads,
/// total_heads)` with an exact cache (SPEC).
///
/// Pipelines, layouts and the slope uniform are built once, in the constructor. On the
/// shader path `forward` records and submits GPU work but never waits for it; on the
/// host-mapped path of CPU adapters ([`GenerationPath`]) the host writes the values before
/// it returns. Reading back is `async` (with blocking wrappers off the web).
///
/// ```no_run
/// # fn main() -> Result<(), alibi_wgpu::AlibiError> {
/// let mut alibi = alibi_wgpu::AlibiPositionalBias::new_default_blocking(8, None)?;
/// let bias = alibi.forward(16, 16)?; // [8, 16, 16] on the GPU
/// let step = alibi.forward(1, 16)?; // served from the cache: the last query row
/// let host = alibi.read_blocking(&step)?;
/// assert_eq!(host.row(0, 0)[15], 0.0);
/// # let _ = bias; Ok(()) }
/// ```
pub struct AlibiPositionalBias {
    device: wgpu::Device,
    queue: wgpu::Queue,
    adapter_info: Option<wgpu::AdapterInfo>,
    health: Option<DeviceHealth>,
    heads: usize,
    total_heads: usize,
    slopes: Vec<f32>,
    generation_path: GenerationPath,
    generator: Generator,
    slope_buffer: wgpu::Buffer,
    /// A single slope of 1.0: `get_bias` is the generator with this slope.
    unit_slope_buffer: wgpu::Buffer,
    limits: PlanLimits,
    cache: BiasCache<Arc<wgpu::Buffer>>,
    /// Evicted cache buffers that nobody else holds, kept for the next miss: a new buffer
    /// costs an allocation and wgpu's zero-fill, which on lavapipe doubles a generation.
    recycled: Vec<wgpu::Buffer>,
    staging: StagingPool,
    pending_errors: Mutex<Vec<PendingErrors>>,
}

impl AlibiPositionalBias {
    /// A module for `heads` heads (padded to `total_heads`) on a device the caller owns.
    pub fn new(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        heads: usize,
        total_heads: Option<usize>,
    ) -> Result<Self> {
        let mut config = AlibiConfig::new(heads);
        config.total_heads = total_heads;
        Self::with_config(device, queue, config)
    }

    /// A module built from `config` on a device the caller owns.
    pub fn with_config(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        config: AlibiConfig,
    ) -> Result<Self> {
        Self::build(device, queue, None, None, config)
    }

    /// A module on a device opened by [`open_device`](crate::open_device).
    pub fn on_device(gpu: &GpuDevice, config: AlibiConfig) -> Result<Self> {
        gpu.health.check()?;
        Self::build(
            &gpu.device,
            &gpu.queue,
            Some(gpu.adapter_info.clone()),
            Some(gpu.health.clone()),
            config,
        )
    }

    /// A module on the default adapter (`WGPU_BACKEND` picks the backend).
    pub async fn new_default(heads: usize, total_heads: Option<usize>) -> Result<Self> {
        let mut config = AlibiConfig::new(heads);
        config.total_heads = total_heads;
        let gpu = open_device(None).await?;
        Self::on_device(&gpu, config)
    }

    /// Blocking [`AlibiPositionalBias::new_default`] (not on the web).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new_default_blocking(heads: usize, total_heads: Option<usize>) -> Result<Self> {
        pollster::block_on(Self::new_default(heads, total_heads))
    }

    fn build(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        adapter_info: Option<wgpu::AdapterInfo>,
        health: Option<DeviceHealth>,
        config: AlibiConfig,
    ) -> Result<Self> {
        let total_heads = config.resolved_total_heads();
        check_heads(config.heads, total_heads)?;
        let slopes = config.slopes.resolve(config.heads)?;
        let generation_path = config.generation_path.resolve(device)?;
        let ((generator, slope_buffer, unit_slope_buffer), pending) = run_scoped(device, || {
            (
                Generator::new(device),
                Generator::slope_buffer(device, queue, &slopes),
                Generator::slope_buffer(device, queue, &[1.0]),
            )
        })?;
        Ok(Self {
            device: device.clone(),
            queue: queue.clone(),
            adapter_info,
            health,
            heads: config.heads,
            total_heads,
            slopes,
            generation_path,
            generator,
            slope_buffer,
            unit_slope_buffer,
            limits: PlanLimits::from_device(&device.limits(), config.max_binding_window_bytes),
            cache: BiasCache::new(config.cache_budget_bytes),
            recycled: Vec::new(),
            staging: StagingPool::default(),
            pending_errors: Mutex::new(pending.into_iter().collect()),
        })
    }

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

    /// The f32 slopes uploaded to the GPU, one per head.
    pub fn slopes(&self) -> &[f32] {
        &self.slopes
    }

    /// The path its generations take: [`GenerationPath::Shader`] or
    /// [`GenerationPath::HostMapped`], as the configuration's path resolved on this device.
    pub fn generation_path(&self) -> GenerationPath {
        self.generation_path
    }

    /// The adapter, when the module opened its own device.
    pub fn adapter_info(&self) -> Option<&wgpu::AdapterInfo> {
        self.adapter_info.as_ref()
    }

    /// The device the module works on.
    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    /// The queue the module submits to.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    /// Hit, miss, eviction and byte counters of the cache.
    pub fn cache_stats(&self) -> CacheStats {
        CacheStats {
            recycled_bytes: self.recycled.iter().map(wgpu::Buffer::size).sum(),
            ..self.cache.stats()
        }
    }

    /// Changes the cache's byte budget (cached tensors plus buffers kept for reuse),
    /// evicting least recently used entries to meet it.
    pub fn set_cache_budget(&mut self, bytes: u64) {
        let evicted = self.cache.set_budget(bytes);
        self.recycle(evicted);
    }

    /// Drops every cached bias (views already handed out stay valid). Their buffers are
    /// kept, within the budget, for the next generations.
    pub fn clear_cache(&mut self) {
        let evicted = self.cache.clear();
        self.recycle(evicted);
    }

    /// The bias `[total_heads, i, j]` on the GPU (SPEC "forward").
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
        check_sequence(i, j)?;
        self.check_health()?;
        let shape = [self.total_heads, i, j];
        if i == 0 || j == 0 {
            return Ok((self.empty_view(shape), false));
        }
        let alignment = self.limits.binding_alignment;
        if let Some(hit) = self.cache.lookup(i, j) {
            let view = slice_view(hit.payload.clone(), hit.rows, hit.cols, shape, alignment);
            return Ok((view, false));
        }
        let generated = self.shape_to_generate(i, j);
        // The view is whole rows of the generated tensor (only the keys ever grow), which
        // is what the tee assumes.
        debug_assert_eq!(generated.rows, i);
        let bytes = generated.bytes().unwrap_or(u64::MAX);
        let tee = match host {
            Some(out) if self.generation_path == GenerationPath::HostMapped => {
                sized_host(out, self.total_heads, i, j)?;
                Some(Tee { out, j })
            }
            _ => None,
        };
        let teed = tee.is_some();
        let reuse = self.take_recycled(bytes);
        let buffer = self.generate_with(self.module_slopes(), generated, None, reuse, tee)?;
        let evicted = self.cache.insert(i, generated.cols, bytes, buffer.clone());
        self.recycle(evicted);
        let view = slice_view(buffer, i, generated.cols, shape, alignment);
        Ok((view, teed))
    }

    /// Records the generation of a fresh, uncached `[total_heads, i, j]` bias into the
    /// caller's encoder; the view is valid once the caller submits it.
    pub fn encode_forward(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        i: usize,
        j: usize,
    ) -> Result<AlibiBias> {
        let shape = [self.total_heads, i, j];
        let Some(generated) = self.uncached_request(i, j)? else {
            return Ok(self.empty_view(shape));
        };
        let cols = generated.cols;
        let buffer =
            self.generate_with(self.module_slopes(), generated, Some(encoder), None, None)?;
        Ok(slice_view(
            buffer,
            i,
            cols,
            shape,
            self.limits.binding_alignment,
        ))
    }

    /// Records the generation of an uncached `[total_heads, i, j]` bias into the caller's
    /// encoder, written to the caller's `target` buffer (usage `STORAGE`, at least
    /// `total_heads * i * ceil4(j) * 4` bytes: rows are padded to a multiple of 4 columns,
    /// the view starts `ceil4(j) - j` columns in). For engines that manage their own memory.
    pub fn encode_into(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        i: usize,
        j: usize,
        target: &wgpu::Buffer,
    ) -> Result<AlibiBias> {
        let shape = [self.total_heads, i, j];
        let Some(generated) = self.uncached_request(i, j)? else {
            return Ok(self.empty_view(shape));
        };
        let cols = generated.cols;
        check_target(target, generated, wgpu::BufferUsages::STORAGE, "STORAGE")?;
        let windows = plan_windows(generated, self.limits)?;
        let ((), pending) = run_scoped(&self.device, || {
            self.generator.encode(
                &self.device,
                &self.queue,
                encoder,
                &self.slope_buffer,
                &windows,
                target,
            )
        })?;
        self.defer_errors(pending);
        Ok(slice_view(
            Arc::new(target.clone()),
            i,
            cols,
            shape,
            self.limits.binding_alignment,
        ))
    }

    /// Writes an uncached `[total_heads, i, j]` bias into the caller's `target` from the
    /// host, through a mapping, as [`GenerationPath::HostMapped`] does for `forward`: the
    /// counterpart of [`encode_into`](Self::encode_into) for engines on a CPU adapter.
    /// `target` needs `MAP_WRITE` usage and the size `encode_into` documents. A shader can
    /// bind the view only if `target` also has `STORAGE` (which, with `MAP_WRITE`, takes
    /// the device feature `MAPPABLE_PRIMARY_BUFFERS`); without it the view is for copies and
    /// readback. Blocks until the device lets the buffer be mapped, then writes on every
    /// core, and leaves it unmapped; not on the web. `target` must not be mapped already:
    /// that is an [`AlibiError::Map`], after which wgpu may still see the buffer as mapping
    /// until the caller unmaps it.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn write_into(&self, i: usize, j: usize, target: &wgpu::Buffer) -> Result<AlibiBias> {
        let shape = [self.total_heads, i, j];
        let Some(generated) = self.uncached_request(i, j)? else {
            return Ok(self.empty_view(shape));
        };
        check_target(
            target,
            generated,
            wgpu::BufferUsages::MAP_WRITE,
            "MAP_WRITE",
        )?;
        self.write_on_host(&self.slopes, generated, target, false, None)?;
        Ok(slice_view(
            Arc::new(target.clone()),
            i,
            generated.cols,
            shape,
            self.limits.binding_alignment,
        ))
    }

    /// The distance matrix `[1, i, j]`, `-|k - (j - i + r)|`, uncached (SPEC "get_bias").
    pub fn get_bias(&self, i: usize, j: usize) -> Result<AlibiBias> {
        let shape = [1, i, j];
        let Some(exact) = self.uncached_request(i, j)? else {
            return Ok(self.empty_view(shape));
        };
        let generated = GenerateShape {
            heads: 1,
            total_heads: 1,
            ..exact
        };
        let cols = generated.cols;
        let unit = Slopes {
            buffer: &self.unit_slope_buffer,
            values: &[1.0],
        };
        let buffer = self.generate_with(unit, generated, None, None, None)?;
        Ok(slice_view(
            buffer,
            i,
            cols,
            shape,
            self.limits.binding_alignment,
        ))
    }

    /// The most recently used cached tensor, whole (`[total_heads, I, J]` for the `(I, J)`
    /// it was generated for), like x-transformers' `self.bias`.
    pub fn cached_bias(&self) -> Option<AlibiBias> {
        let hit = self.cache.most_recent()?;
        let shape = [self.total_heads, hit.rows, hit.cols];
        Some(slice_view(
            hit.payload.clone(),
            hit.rows,
            hit.cols,
            shape,
            self.limits.binding_alignment,
        ))
    }

    /// Reads a view back into a caller-owned host tensor.
    pub async fn read(&self, bias: &AlibiBias) -> Result<HostBias> {
        let mut data = Vec::new();
        self.read_into(bias, &mut data).await?;
        Ok(HostBias::new(bias.shape(), data))
    }

    /// Reads a view back into `out` (resized, then overwritten row-major `[heads, i, j]`),
    /// reusing its capacity: a loop that reads into one vector pays for its pages once.
    pub async fn read_into(&self, bias: &AlibiBias, out: &mut Vec<f32>) -> Result<()> {
        self.check_health()?;
        self.await_pending_errors().await?;
        let Some(buffer) = bias.buffer() else {
            out.clear();
            return Ok(());
        };
        let spans = bias.spans();
        let total: u64 = spans.iter().map(|&(_, len)| len).sum();
        let staging = self
            .staging
            .take(&self.device, total, self.limits.max_buffer_bytes);
        let ((), pending) = run_scoped(&self.device, || {
            let mut encoder = self.device.create_command_encoder(&Default::default());
            let mut destination = 0;
            for &(source, len) in &spans {
                encoder.copy_buffer_to_buffer(buffer, source, &staging, destination, len);
                destination += len;
            }
            self.queue.submit([encoder.finish()]);
        })?;
        if let Some(pending) = pending {
            if let Some(error) = pending.await {
                return Err(gpu_error(error));
            }
        }
        map_buffer(&self.device, &staging, total, wgpu::MapMode::Read).await?;
        {
            let mapped = staging
                .get_mapped_range(0..total)
                .map_err(|e| AlibiError::Map(e.to_string()))?;
            let [heads, i, j] = bias.shape();
            // The gather writes every element: a reused vector needs no zeroing first.
            sized_host(out, heads, i, j)?;
            gather(&mapped, bias, spans.len() == 1, out);
        }
        staging.unmap();
        self.staging.give_back(staging);
        Ok(())
    }

    /// Blocking [`AlibiPositionalBias::read_into`] (not on the web).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_into_blocking(&self, bias: &AlibiBias, out: &mut Vec<f32>) -> Result<()> {
        pollster::block_on(self.read_into(bias, out))
    }

    /// Blocking [`AlibiPositionalBias::read`] (not on the web).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_blocking(&self, bias: &AlibiBias) -> Result<HostBias> {
        pollster::block_on(self.read(bias))
    }

    /// [`forward`](Self::forward) then [`read`](Self::read) (see
    /// [`forward_to_host_into`](Self::forward_to_host_into)).
    pub async fn forward_to_host(&mut self, i: usize, j: usize) -> Result<HostBias> {
        let mut data = Vec::new();
        self.forward_to_host_into(i, j, &mut data).await?;
        Ok(HostBias::new([self.total_heads, i, j], data))
    }

    /// [`forward`](Self::forward) then [`read_into`](Self::read_into). On the host-mapped
    /// path a miss copies the values into `out` as it writes them to the device, so there
    /// is nothing to read back (and, as in `forward`, it may block its thread while the
    /// device finishes with a reused buffer: that path exists only off the web).
    pub async fn forward_to_host_into(
        &mut self,
        i: usize,
        j: usize,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        let (bias, teed) = self.forward_teeing(i, j, Some(&mut *out))?;
        if teed {
            // What read_into would report: errors of earlier submissions.
            return self.await_pending_errors().await;
        }
        self.read_into(&bias, out).await
    }

    /// Blocking [`AlibiPositionalBias::forward_to_host_into`] (not on the web).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn forward_to_host_into_blocking(
        &mut self,
        i: usize,
        j: usize,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        pollster::block_on(self.forward_to_host_into(i, j, out))
    }

    /// Blocking [`AlibiPositionalBias::forward_to_host`] (not on the web).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn forward_to_host_blocking(&mut self, i: usize, j: usize) -> Result<HostBias> {
        pollster::block_on(self.forward_to_host(i, j))
    }

    /// Checks an uncached request and gives the tensor to generate; `None` when it is empty.
    fn uncached_request(&self, i: usize, j: usize) -> Result<Option<GenerateShape>> {
        check_sequence(i, j)?;
        self.check_health()?;
        Ok((i > 0 && j > 0).then(|| self.exact_shape(i, j)))
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
            && plan_windows(grown, self.limits).is_ok();
        if grown.cols > exact.cols && fits {
            grown
        } else {
            exact
        }
    }

    /// A kept buffer of at least `bytes` (and at most twice that, so memory is not wasted
    /// on small tensors), removed from the pool.
    fn take_recycled(&mut self, bytes: u64) -> Option<wgpu::Buffer> {
        let index = self
            .recycled
            .iter()
            .enumerate()
            .filter(|(_, b)| b.size() >= bytes && b.size() / 2 <= bytes)
            .min_by_key(|(_, b)| b.size())
            .map(|(index, _)| index)?;
        Some(self.recycled.swap_remove(index))
    }

    /// Keeps the evicted buffers that no view holds any more, newest first, while cached
    /// and kept bytes stay within the budget.
    fn recycle(&mut self, evicted: Vec<Arc<wgpu::Buffer>>) {
        const KEPT_BUFFERS: usize = 4;
        for buffer in evicted {
            if let Ok(buffer) = Arc::try_unwrap(buffer) {
                self.recycled.insert(0, buffer);
            }
        }
        self.recycled.truncate(KEPT_BUFFERS);
        let budget = self.cache.stats().budget_bytes;
        let mut held = self.cache.stats().bytes;
        self.recycled.retain(|buffer| {
            held += buffer.size();
            held <= budget
        });
    }

    fn module_slopes(&self) -> Slopes<'_> {
        Slopes {
            buffer: &self.slope_buffer,
            values: &self.slopes,
        }
    }

    /// Usage of the buffers the module generates into. No COPY_DST: nothing handed out can
    /// overwrite a cached bias except a read_write storage binding or, on the host-mapped
    /// path, a mapping, both of which the docs forbid.
    fn buffer_usage(&self) -> wgpu::BufferUsages {
        let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
        match self.generation_path {
            GenerationPath::HostMapped => usage | wgpu::BufferUsages::MAP_WRITE,
            _ => usage,
        }
    }

    /// Generates `shape` into `reuse` or a new buffer: on the host-mapped path (unless an
    /// encoder is given) written from the host, with a copy into `tee` if given; otherwise
    /// recorded in `encoder`, or in an encoder of its own that it submits (`tee` must then be
    /// `None`). Every element of the shape is written (padding heads included), so a reused
    /// buffer needs no clearing.
    fn generate_with(
        &self,
        slopes: Slopes<'_>,
        shape: GenerateShape,
        encoder: Option<&mut wgpu::CommandEncoder>,
        reuse: Option<wgpu::Buffer>,
        tee: Option<Tee<'_>>,
    ) -> Result<Arc<wgpu::Buffer>> {
        let windows = plan_windows(shape, self.limits)?;
        let bytes = shape.bytes().unwrap_or(u64::MAX);
        #[cfg(not(target_arch = "wasm32"))]
        if self.generation_path == GenerationPath::HostMapped && encoder.is_none() {
            let (buffer, mapped) = match reuse {
                Some(buffer) => (buffer, false),
                None => (self.create_bias_buffer(bytes, true)?, true),
            };
            self.write_on_host(slopes.values, shape, &buffer, mapped, tee)?;
            return Ok(Arc::new(buffer));
        }
        debug_assert!(tee.is_none(), "only the host-mapped path tees");
        let buffer = match reuse {
            Some(buffer) => buffer,
            None => self.create_bias_buffer(bytes, false)?,
        };
        let ((), pending) = run_scoped(&self.device, || match encoder {
            Some(encoder) => self.generator.encode(
                &self.device,
                &self.queue,
                encoder,
                slopes.buffer,
                &windows,
                &buffer,
            ),
            None => {
                let mut encoder = self.device.create_command_encoder(&Default::default());
                self.generator.encode(
                    &self.device,
                    &self.queue,
                    &mut encoder,
                    slopes.buffer,
                    &windows,
                    &buffer,
                );
                self.queue.submit([encoder.finish()]);
            }
        })?;
        self.defer_errors(pending);
        Ok(Arc::new(buffer))
    }

    fn create_bias_buffer(&self, bytes: u64, mapped_at_creation: bool) -> Result<wgpu::Buffer> {
        let (buffer, pending) = run_scoped(&self.device, || {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("alibi bias"),
                size: bytes,
                usage: self.buffer_usage(),
                mapped_at_creation,
            })
        })?;
        self.defer_errors(pending);
        Ok(buffer)
    }

    /// Writes `shape` into `buffer` from the host: maps it for writing first unless it is
    /// already mapped (at creation), waiting for the device to finish earlier work on it.
    #[cfg(not(target_arch = "wasm32"))]
    fn write_on_host(
        &self,
        slopes: &[f32],
        shape: GenerateShape,
        buffer: &wgpu::Buffer,
        mapped: bool,
        tee: Option<Tee<'_>>,
    ) -> Result<()> {
        let bytes = shape.bytes().unwrap_or(u64::MAX);
        if !mapped {
            // On failure a module's own buffer is dropped with the error; a caller's may
            // stay marked as mapping in wgpu (write_into says so).
            let (mapping, pending) = run_scoped(&self.device, || {
                pollster::block_on(map_buffer(
                    &self.device,
                    buffer,
                    bytes,
                    wgpu::MapMode::Write,
                ))
            })?;
            self.defer_errors(pending);
            mapping?;
        }
        write_mapped(buffer, shape, slopes, tee)
    }

    fn defer_errors(&self, pending: Option<PendingErrors>) {
        if let Some(pending) = pending {
            self.pending_errors
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(pending);
        }
    }

    fn empty_view(&self, shape: [usize; 3]) -> AlibiBias {
        AlibiBias {
            buffer: None,
            shape,
            layout: BiasLayout::default(),
            binding_alignment: self.limits.binding_alignment,
        }
    }

    fn check_health(&self) -> Result<()> {
        self.health.as_ref().map_or(Ok(()), DeviceHealth::check)
    }

    /// On the web, errors of earlier submissions arrive late; they are reported here.
    async fn await_pending_errors(&self) -> Result<()> {
        let pending: Vec<_> = std::mem::take(
            &mut *self
                .pending_errors
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        for errors in pending {
            if let Some(error) = errors.await {
                return Err(gpu_error(error));
            }
        }
        Ok(())
    }
}

/// The slopes of a generation: the uniform buffer the kernel reads, and the same values for
/// the host-mapped path.
#[derive(Clone, Copy)]
struct Slopes<'a> {
    buffer: &'a wgpu::Buffer,
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    values: &'a [f32],
}

/// Checks that a caller's buffer has `usage` and room for `shape`.
fn check_target(
    target: &wgpu::Buffer,
    shape: GenerateShape,
    usage: wgpu::BufferUsages,
    usage_name: &'static str,
) -> Result<()> {
    if !target.usage().contains(usage) {
        return Err(AlibiError::TargetUsage {
            usage: format!("{:?}", target.usage()),
            needed: usage_name,
        });
    }
    let needed = shape.bytes().unwrap_or(u64::MAX);
    if target.size() < needed {
        return Err(AlibiError::TargetTooSmall {
            heads: shape.total_heads,
            i: shape.rows,
            j: shape.requested_cols,
            needed,
            size: target.size(),
        });
    }
    Ok(())
}

/// The bottom-right `[.., rows-i.., cols-j..]` view of a generated `[.., rows, cols]` tensor.
fn slice_view(
    buffer: Arc<wgpu::Buffer>,
    rows: usize,
    cols: usize,
    shape: [usize; 3],
    alignment: u64,
) -> AlibiBias {
    let [_, i, j] = shape;
    AlibiBias {
        buffer: Some(buffer),
        shape,
        layout: BiasLayout {
            offset: ((rows - i) * cols + (cols - j)) as u64,
            head_stride: (rows * cols) as u64,
            row_stride: cols as u64,
        },
        binding_alignment: alignment,
    }
}

/// Copies the view's rows, row-major, from the staging bytes (its spans, back to back: one
/// for all heads when `single_span`, else one per head) into `out`, which has exactly the
/// view's length; rows are split across cores.
fn gather(staging: &[u8], bias: &AlibiBias, single_span: bool, out: &mut [f32]) {
    let [_, i, j] = bias.shape();
    let layout = bias.layout();
    let head_span = (i - 1) * layout.row_stride as usize + j;
    // Staging element where row `global_row` (= h * i + r) of the view starts.
    let row_start = |global_row: usize| {
        let (h, r) = (global_row / i, global_row % i);
        let head_start = if single_span {
            h * layout.head_stride as usize
        } else {
            h * head_span
        };
        head_start + r * layout.row_stride as usize
    };
    for_each_row_chunk(out, j, |chunk, first_row| {
        if bias.is_contiguous() {
            let start = first_row * j * 4;
            copy_from_bytes(chunk, &staging[start..start + chunk.len() * 4]);
            return;
        }
        for (n, row) in chunk.chunks_exact_mut(j).enumerate() {
            let start = row_start(first_row + n) * 4;
            copy_from_bytes(row, &staging[start..start + j * 4]);
        }
    });
}

/// Copies little-endian f32 bytes. Mapped memory is aligned in practice, so this is one
/// memcpy; an unaligned mapping takes the value-by-value path instead of failing.
fn copy_from_bytes(out: &mut [f32], bytes: &[u8]) {
    match bytemuck::try_cast_slice::<u8, f32>(bytes) {
        Ok(values) => out.copy_from_slice(values),
        Err(_) => {
            for (value, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *value = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
    }
}
