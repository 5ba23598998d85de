//! Dense requests served from the cache: the cached block that covers a request, and its
//! copy on the GPU into the dense layout, by copy commands or the copy kernel.

use std::sync::Arc;

use crate::cache::Layout;
use crate::dense::{CopySpan, DenseCopies};
use crate::error::Result;
use crate::gpu::bias::dense::{
    copy_spans, plan_dense, span_count, DenseKernel, DenseShape, Source,
};
use crate::gpu::device::scope::{CallErrors, Work};
use crate::module::AlibiPositionalBias;

/// Whether `spans` copy commands of `span_bytes` each beat one pass of the copy kernel over
/// the same bytes (a cached block with padded rows is one span per row).
///
/// On a CPU adapter a command is a memcpy after a fixed cost, and the kernel loads and
/// stores word by word, lane by lane: about 1 µs a command on lavapipe (0.3 µs on
/// llvmpipe's GL) against 0.35 ns a byte for the kernel, so commands pay from spans of
/// about 3 KiB (1 KiB on GL; always in Chromium). Measured there (8 heads, rows of 37 /
/// 101 / 201 / 301 / 1,001 keys, ms, commands / kernel): lavapipe 0.32 / 0.15, 0.69 /
/// 0.27, 1.23 / 0.68, 1.80 / 1.37, 9.4 / 11.2; llvmpipe 0.10 / 0.09, 0.27 / 0.20, 0.56 /
/// 0.60, 0.86 / 1.27, 5.9 / 11.1. One span always goes as a command.
///
/// On a GPU the kernel runs near the memory's speed and a command costs microseconds of
/// recording and a barrier (an H200 on Vulkan: a 1 GiB block copied in 0.86 ms by the
/// kernel, 2.7 ms by one command; 296 rows of 37 keys alike either way), so only a few
/// small spans go as commands, where they save the kernel's dispatch.
fn copy_commands_pay(
    (cpu_adapter, backend): (bool, wgpu::Backend),
    spans: u64,
    span_bytes: u64,
) -> bool {
    if !cpu_adapter {
        return spans <= 16 && spans * span_bytes <= 4 << 20;
    }
    let min_span_bytes = match backend {
        wgpu::Backend::Gl => 1 << 10,
        // Chromium's CPU adapter (SwiftShader under Dawn): commands win at every width
        // measured, 37 to 1,001 keys (301 keys: 3.2 ms against the kernel's 7.1).
        wgpu::Backend::BrowserWebGpu => 0,
        _ => 3 << 10,
    };
    spans == 1 || (spans <= 1 << 16 && span_bytes >= min_span_bytes)
}

/// A cached block a dense request is a copy of: its buffer, the request's layout in it, and
/// the errors of the generation that wrote it.
pub(super) type Cached = (Arc<wgpu::Buffer>, Source, CallErrors);

impl AlibiPositionalBias {
    /// The cached block that copies `shape` in the fewest spans, counted as a hit; `None`
    /// is a miss, and a block whose generation is known to have failed is evicted and
    /// counted as a miss. Where that copy takes a span per row (a slice of padded rows, or
    /// of rows longer than the request's) for the second time in a row, the slice is first
    /// copied once into a dense entry of exactly this shape ([`Layout::Dense`]), which this
    /// request and the same one again copy whole. Not the first time: making the entry costs
    /// more than the copy it saves (lavapipe, `[8, 1000, 1001]`: the copy 9.3 ms, the entry
    /// 30, a copy of it 3.4), so a shape asked once is copied as it is.
    pub(super) fn cached(&mut self, shape: DenseShape) -> Option<Cached> {
        let spans = |rows, cols| span_count(shape, rows, cols);
        self.cache.lookup_dense(shape.rows, shape.cols, spans)?;
        // The entry the lookup found and marked.
        let (cached, spans) = self.peek_cached(shape)?;
        if cached.2.failure_now().is_some() {
            self.evict_failed();
            return None;
        }
        if spans > shape.heads as u64 {
            let shape_ij = Some((shape.rows, shape.cols));
            if std::mem::replace(&mut self.last_row_copy, shape_ij) == shape_ij {
                if let Some(dense) = self.keep_dense(shape, &cached) {
                    return Some(dense);
                }
            }
        }
        Some(cached)
    }

    /// The cached block [`cached`](Self::cached) finds for `shape`, with the request's
    /// layout in it, the errors of its generation and the spans its copy takes, neither
    /// counted nor marked as used.
    fn peek_cached(&self, shape: DenseShape) -> Option<(Cached, u64)> {
        let spans = |rows, cols| span_count(shape, rows, cols);
        let hit = self.cache.peek_dense(shape.rows, shape.cols, spans)?;
        let ((buffer, errors), rows, cols) = (hit.payload.clone(), hit.rows, hit.cols);
        let count = spans(rows, cols);
        let dims = [shape.heads, shape.rows, shape.cols];
        let source = Source {
            layout: self.slice_view(buffer.clone(), rows, cols, dims).layout(),
        };
        Some(((buffer, source, errors), count))
    }

    /// Copies the slice `shape` of a cached block into a new cache entry of exactly that
    /// shape, dense, on the queue now, so that the caller's encoder, submitted later, reads
    /// it. The entry's buffer takes copy commands ([`dense_entry_usage`]: no kernel write, so
    /// wgpu does not zero-fill it first), where they pay as for any copy from the cache.
    /// `None`, nothing kept, when the entry would not fit the budget, when the source's
    /// generation has not answered yet (the web: a failure found later would not reach the
    /// copy), or when the device refuses: the request is then copied from the source as it is.
    fn keep_dense(
        &mut self,
        shape: DenseShape,
        (block, source, errors): &Cached,
    ) -> Option<Cached> {
        let bytes = shape.word_bytes()?;
        if bytes > self.cache.stats().budget_bytes || !errors.succeeded_now() {
            return None;
        }
        let what = "alibi dense cache entry";
        let buffer = (self.gpu)
            .create_buffer(what, bytes, dense_entry_usage(), false)
            .ok()?;
        let call = self.gpu.errors.begin_call();
        let mut encoder = self.gpu.device.create_command_encoder(&Default::default());
        let copied = self
            .record_copy(&mut encoder, shape, &buffer, 0, block, *source)
            .ok()?;
        if !copied {
            self.record_generation(&mut encoder, shape, &buffer, 0)
                .ok()?;
        }
        self.gpu
            .run(Work::named("submitting a dense cache entry"), || {
                self.gpu.queue.submit([encoder.finish()]);
            })
            .ok()?;
        let kept_errors = call.record();
        drop(call);
        let buffer = Arc::new(buffer);
        let held = buffer.size();
        let payload = (buffer.clone(), kept_errors.clone());
        let evicted = self
            .cache
            .insert(Layout::Dense, (shape.rows, shape.cols), held, payload);
        self.keep_evicted(evicted);
        let dims = [shape.heads, shape.rows, shape.cols];
        let view = self.slice_view(buffer.clone(), shape.rows, shape.cols, dims);
        let source = Source {
            layout: view.layout(),
        };
        Some((buffer, source, kept_errors))
    }

    /// The copy commands that write the dense `[total_heads, i, j]` bias from the cache into
    /// a target at `byte_offset`, not recorded: for a target this module cannot bind, such as
    /// a `GPUBuffer` made outside wgpu ([`DenseCopies`]). `Some` when a cached tensor covers
    /// `(i, j)` (a hit, counted) and its slice takes at most `max_spans` copies of whole words
    /// (a decode step: one per head; a tensor cached as it is: one). `None` otherwise, with
    /// nothing counted or changed: [`encode_into`](Self::encode_into) or
    /// [`forward_dense`](Self::forward_dense) serve every request.
    ///
    /// ```
    /// # fn main() -> Result<(), alibi_wgpu::AlibiError> {
    /// let mut alibi = pollster::block_on(alibi_wgpu::AlibiPositionalBias::new_default(4, None))?;
    /// alibi.forward(16, 16)?; // a prefill, cached
    /// let copies = alibi.dense_copies(1, 16, 0, 64)?.expect("a hit of whole words");
    /// assert_eq!(copies.spans().len(), 4); // a decode step: one row per head
    /// let target = alibi.device().create_buffer(&wgpu::BufferDescriptor {
    ///     label: None,
    ///     size: 4 * 16 * 4,
    ///     usage: wgpu::BufferUsages::COPY_DST,
    ///     mapped_at_creation: false,
    /// });
    /// let mut encoder = alibi.device().create_command_encoder(&Default::default());
    /// for span in copies.spans() {
    ///     encoder.copy_buffer_to_buffer(copies.source(), span.source_offset, &target, span.target_offset, span.bytes);
    /// }
    /// alibi.queue().submit([encoder.finish()]);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The sequence and size errors of [`forward_dense`](Self::forward_dense).
    pub fn dense_copies(
        &mut self,
        i: usize,
        j: usize,
        byte_offset: u64,
        max_spans: usize,
    ) -> Result<Option<DenseCopies>> {
        let shape = self.dense_shape(self.total_heads, i, j);
        self.dense_request(shape)?;
        // Decided on a peek, so that a declined request counts nothing.
        let Some(((block, source, errors), _)) = self.peek_cached(shape) else {
            return Ok(None);
        };
        if shape.elements() == Some(0) || errors.failure_now().is_some() {
            return Ok(None);
        }
        let Some(spans) = copy_spans(shape, source, byte_offset, |spans, _| {
            spans <= max_spans as u64
        }) else {
            return Ok(None);
        };
        // Taken: counted as a hit and marked as used, as `cached` does.
        let spans_of = |rows, cols| span_count(shape, rows, cols);
        self.cache.lookup_dense(i, j, spans_of);
        let call = self.gpu.errors.begin_call();
        let spans = spans
            .into_iter()
            .map(|(source_offset, target_offset, bytes)| CopySpan {
                source_offset,
                target_offset,
                bytes,
            })
            .collect();
        Ok(Some(DenseCopies {
            source: block,
            spans,
            written: self.check_of(&call, Some(errors)),
        }))
    }

    /// Records the copy of `source` in `block` as copy commands when its spans are whole
    /// words, else by the copy kernel; `false` (nothing recorded) when no binding window
    /// holds the source: the caller generates the same values instead.
    pub(super) fn record_copy(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        shape: DenseShape,
        target: &wgpu::Buffer,
        byte_offset: u64,
        block: &wgpu::Buffer,
        source: Source,
    ) -> Result<bool> {
        let adapter = (self.gpu.cpu_adapter, self.gpu.backend);
        let pays = |spans, span_bytes| copy_commands_pay(adapter, spans, span_bytes);
        if let Some(spans) = copy_spans(shape, source, byte_offset, pays) {
            self.gpu.run(Work::named("recording a dense copy"), || {
                for (from, to, bytes) in spans {
                    encoder.copy_buffer_to_buffer(block, from, target, to, bytes);
                }
            })?;
            return Ok(true);
        }
        self.record_copy_kernel(encoder, shape, target, byte_offset, block, source)
    }

    /// Records the copy of `source` in `block` by the copy kernel; `false` (nothing
    /// recorded) when no binding window holds the source.
    fn record_copy_kernel(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        shape: DenseShape,
        target: &wgpu::Buffer,
        byte_offset: u64,
        block: &wgpu::Buffer,
        source: Source,
    ) -> Result<bool> {
        let Some(windows) = plan_dense(shape, byte_offset, Some(source), self.gpu.limits)? else {
            return Ok(false);
        };
        self.writer.dense().encode(
            &self.gpu,
            encoder,
            DenseKernel::Copy,
            (self.dtype, self.causal),
            &windows,
            &self.slopes.buffer,
            target,
            &[block],
        )?;
        Ok(true)
    }
}

/// The usage of a dense cache entry's buffer: copied into when it is made, then read by
/// copies only. Never handed out as a view, and never reused for another tensor (the pool's
/// buffers become views, which take no copies): dropped when evicted.
fn dense_entry_usage() -> wgpu::BufferUsages {
    wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST
}

/// A cached block held until the work reading it is done.
pub(super) struct Pinned(#[allow(dead_code)] pub(super) Arc<wgpu::Buffer>);

// SAFETY: the web has one thread, where wgpu's objects are not `Send`; elsewhere they are.
#[cfg(target_arch = "wasm32")]
unsafe impl Send for Pinned {}

#[cfg(test)]
mod tests {
    use super::copy_commands_pay;
    use wgpu::Backend::{BrowserWebGpu, Gl, Metal, Vulkan};

    #[test]
    fn commands_where_they_beat_the_kernel() {
        let cpu = |backend| {
            move |spans, span_bytes| copy_commands_pay((true, backend), spans, span_bytes)
        };
        // lavapipe: rows of 1,001 f32 keys as commands, of 301 by the kernel.
        assert!(cpu(Vulkan)(8_000, 4_004));
        assert!(!cpu(Vulkan)(2_400, 1_204));
        // llvmpipe's GL from 1 KiB, Chromium at any width; one span always, 65,537 never.
        assert!(cpu(Gl)(2_400, 1_204) && !cpu(Gl)(808, 404));
        assert!(cpu(BrowserWebGpu)(296, 148));
        assert!(cpu(Vulkan)(1, 4) && !cpu(BrowserWebGpu)(65_537, 1 << 20));
        // A GPU: a few small spans only.
        let gpu = |spans, span_bytes| copy_commands_pay((false, Metal), spans, span_bytes);
        assert!(gpu(16, 1 << 18) && !gpu(17, 4) && !gpu(2, 4 << 20));
    }
}
