//! The engine layout in JavaScript: dense `[totalHeads, i, j]` tensors in `GPUBuffer`s an
//! engine wraps as it is (onnxruntime-web's `Tensor.fromGpuBuffer`), and the dense bias
//! written into the engine's own buffer.

use alibi_wgpu::{AlibiError, DenseBias, DenseCopies, GpuCheck};
use js_sys::{Array, Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::convert::{count, js_error, object, side};
use crate::WebAlibi;

/// WebGPU's `GPUBufferUsage.COPY_DST`.
const COPY_DST: f64 = 8.0;
/// WebGPU copies whole 4-byte words.
const COPY_ALIGNMENT: f64 = 4.0;
/// The most copies `forwardInto` records straight from the cache into the caller's buffer
/// (a decode step of up to 64 heads); more go through the staging buffer, whose copies
/// wgpu records, then one copy. Each costs a call from wasm into JavaScript.
const DIRECT_SPANS: usize = 64;

/// What wrote the source of `forwardInto`'s copies: the cached block's generation, or the
/// staging buffer's write.
enum Written {
    Copies(DenseCopies),
    Staged(GpuCheck),
}

impl Written {
    async fn check(&self) -> alibi_wgpu::Result<()> {
        match self {
            Self::Copies(copies) => copies.check().await,
            Self::Staged(written) => written.check().await,
        }
    }
}

/// The TypeScript type of a dense tensor.
#[wasm_bindgen(typescript_custom_section)]
const DENSE_TENSOR: &str = r#"
/** A dense row-major tensor in a `GPUBuffer` the caller owns, at offset 0: usage
 * `STORAGE | COPY_SRC | COPY_DST`, `shape` `[totalHeads, i, j]` (or `[batch, totalHeads, i, j]`
 * for positions), elements of `dtype`. `check()` resolves once the device accepted the work
 * that wrote it, or rejects with the cause (out of memory, a lost device): this tensor's
 * failure only, reported nowhere else. */
export type DenseTensor = {
  buffer: GPUBuffer;
  shape: number[];
  dtype: "f32" | "f16";
  check(): Promise<void>;
};
"#;

#[wasm_bindgen(js_class = AlibiPositionalBias)]
impl WebAlibi {
    /// The bias `[totalHeads, i, j]`, dense (row stride `j`, head stride `i * j`) at offset 0
    /// of a new `GPUBuffer` the caller owns: from the cache when a cached tensor holds it (a
    /// copy on the GPU), generated otherwise. Wrap it for an engine as it is:
    /// `ort.Tensor.fromGpuBuffer(t.buffer, { dataType: t.dtype === "f16" ? "float16" :
    /// "float32", dims: [1, ...t.shape] })`.
    #[wasm_bindgen(js_name = forwardDense, unchecked_return_type = "DenseTensor")]
    pub fn forward_dense(&mut self, i: f64, j: f64) -> Result<Object, JsError> {
        let (i, j) = (count("i", i)?, count("j", j)?);
        let dense = self.module.forward_dense(i, j).map_err(js_error)?;
        Ok(tensor(dense))
    }

    /// The bias at custom positions, dense `[batch, totalHeads, i, j]` at offset 0 of a new
    /// `GPUBuffer` the caller owns (`batch` is 1 when both sides are shared). Each side is
    /// an array of positions or `{ values, batch }`, as in `forwardPositions`: left-padded
    /// batches give each row its own positions.
    #[wasm_bindgen(js_name = forwardPositionsDense, unchecked_return_type = "DenseTensor")]
    pub fn forward_positions_dense(
        &self,
        #[wasm_bindgen(unchecked_param_type = "PositionsArg")] queries: JsValue,
        #[wasm_bindgen(unchecked_param_type = "PositionsArg")] keys: JsValue,
    ) -> Result<Object, JsError> {
        let (queries, keys) = (side("queries", &queries)?, side("keys", &keys)?);
        let dense = self
            .module
            .forward_positions_dense(queries.positions(), keys.positions())
            .map_err(js_error)?;
        Ok(tensor(dense))
    }

    /// Writes the dense bias `[totalHeads, i, j]` into the caller's `buffer` at
    /// `byteOffset` (a multiple of 4; default 0), as a decode loop reuses one buffer. The
    /// buffer needs `COPY_DST` usage and room for the tensor after the offset. The promise
    /// resolves once the write is queued, or rejects with the cause: a buffer too small, a
    /// misaligned offset, a missing usage, a buffer of another device, or an f16 tensor of
    /// an odd number of elements (WebGPU copies whole 4-byte words: use `forwardDense`). A
    /// refused call leaves the module and its cache as they were.
    #[wasm_bindgen(js_name = forwardInto, unchecked_return_type = "Promise<void>")]
    pub fn forward_into(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "GPUBuffer")] buffer: JsValue,
        i: f64,
        j: f64,
        #[wasm_bindgen(js_name = byteOffset)] byte_offset: Option<f64>,
    ) -> Promise {
        match self.record_into(&buffer, i, j, byte_offset) {
            Ok(done) => done,
            Err(error) => Promise::reject(&error.into()),
        }
    }

    /// Checks the caller's buffer, writes the dense bias (from the cache or generated) into
    /// the staging buffer, and queues its copy into the caller's buffer inside a validation
    /// error scope, whose outcome the returned promise carries. wgpu 30 cannot take a
    /// `GPUBuffer` made outside it (textures only: `create_texture_from_webgpu_handle`),
    /// hence the staging buffer; it is the module's, kept from call to call, because a new
    /// buffer costs Chromium more than the copy (8 x 1024 x 1024 f32: 20 ms against 3.5).
    fn record_into(
        &mut self,
        buffer: &JsValue,
        i: f64,
        j: f64,
        byte_offset: Option<f64>,
    ) -> Result<Promise, JsError> {
        let (i, j) = (count("i", i)?, count("j", j)?);
        let offset = byte_offset.unwrap_or(0.0);
        if !(offset.is_finite() && offset >= 0.0 && offset.fract() == 0.0) {
            return Err(JsError::new(&format!(
                "byteOffset must be a whole number of bytes, got {offset}"
            )));
        }
        if offset % COPY_ALIGNMENT != 0.0 {
            return Err(js_error(AlibiError::MisalignedOffset {
                offset: offset as u64,
                alignment: COPY_ALIGNMENT as u64,
            }));
        }
        let number = |name: &str| Reflect::get(buffer, &name.into()).ok()?.as_f64();
        let (Some(size), Some(usage)) = (number("size"), number("usage")) else {
            return Err(JsError::new("buffer must be a GPUBuffer"));
        };
        if (usage / COPY_DST).floor() % 2.0 == 0.0 {
            return Err(JsError::new(
                "buffer needs GPUBufferUsage.COPY_DST to be written into; create it with that usage",
            ));
        }
        // Sizes are checked before anything is computed, so a refusal costs nothing.
        let dtype = self.module.dtype();
        let bytes = (self.module.total_heads() * i * j * dtype.size()) as f64;
        if offset + bytes > size {
            return Err(JsError::new(&format!(
                "the dense bias [{}, {i}, {j}] needs {bytes} bytes from byteOffset {offset}, \
                 but the buffer holds {size}; make it at least {} bytes",
                self.module.total_heads(),
                offset + bytes
            )));
        }
        if bytes % COPY_ALIGNMENT != 0.0 {
            return Err(JsError::new(&format!(
                "an f16 bias of an odd number of elements ({}) is not a whole number of 4-byte \
                 words, which WebGPU copies; use forwardDense, or an even i * j",
                bytes / 2.0
            )));
        }
        if bytes == 0.0 {
            return Ok(Promise::resolve(&JsValue::UNDEFINED));
        }
        // From the cache with a few copies straight into the caller's buffer (a decode
        // step: one per head); otherwise into the staging buffer, then one copy.
        let direct = self
            .module
            .dense_copies(i, j, offset as u64, DIRECT_SPANS)
            .map_err(js_error)?;
        let (spans, held, written) = match direct {
            Some(copies) => {
                let spans: Vec<_> = copies
                    .spans()
                    .iter()
                    .map(|s| (s.source_offset, s.target_offset, s.bytes))
                    .collect();
                let source = copies.source().clone();
                (spans, source, Written::Copies(copies))
            }
            None => {
                let staging = self.staging(bytes as u64)?;
                let mut encoder = self
                    .module
                    .device()
                    .create_command_encoder(&Default::default());
                let written = self
                    .module
                    .encode_into(&mut encoder, i, j, &staging, 0)
                    .map_err(js_error)?;
                self.module.queue().submit([encoder.finish()]);
                (
                    vec![(0, offset as u64, bytes as u64)],
                    staging,
                    Written::Staged(written),
                )
            }
        };
        let source = held
            .as_webgpu()
            .map(|b| JsValue::from(b.clone()))
            .ok_or_else(|| JsError::new("the module's buffer is not a WebGPU buffer"))?;
        let device = self.device();
        let call = |target: &JsValue, method: &str, args: &[JsValue]| -> Result<JsValue, JsError> {
            let function: Function = Reflect::get(target, &method.into())
                .map_err(|_| JsError::new(&format!("no {method} on the device")))?
                .dyn_into()
                .map_err(|_| JsError::new(&format!("{method} is not a function")))?;
            function
                .apply(target, &args.iter().collect::<Array>())
                .map_err(|error| JsError::new(&format!("{method} failed: {error:?}")))
        };
        // The copies go to the module's own queue after the work wgpu submitted, so they
        // see the values; a buffer of another device is a validation error of this scope,
        // reported by the promise.
        call(&device, "pushErrorScope", &["validation".into()])?;
        let encoder = call(&device, "createCommandEncoder", &[])?;
        for (from, to, length) in spans {
            call(
                &encoder,
                "copyBufferToBuffer",
                &[
                    source.clone(),
                    (from as f64).into(),
                    buffer.clone(),
                    (to as f64).into(),
                    (length as f64).into(),
                ],
            )?;
        }
        let commands = call(&encoder, "finish", &[])?;
        let queue = Reflect::get(&device, &"queue".into()).map_err(|_| JsError::new("no queue"))?;
        call(&queue, "submit", &[Array::of1(&commands).into()])?;
        let scope: Promise = call(&device, "popErrorScope", &[])?
            .dyn_into()
            .map_err(|_| JsError::new("popErrorScope returned no promise"))?;
        // The source (the cached block, or the staging buffer) lives until the copies have
        // run: the promise's closure holds it, should the cache evict it or a larger staging
        // buffer replace it meanwhile; a later call's write into the staging buffer is
        // queued after this copy. The promise rejects with this call's failure: the values'
        // generation or copy, then the write.
        Ok(wasm_bindgen_futures::future_to_promise(async move {
            let written = written.check().await;
            let error = JsFuture::from(scope).await?;
            drop(held);
            written.map_err(js_error)?;
            if error.is_null() || error.is_undefined() {
                return Ok(JsValue::UNDEFINED);
            }
            let message = Reflect::get(&error, &"message".into())
                .ok()
                .and_then(|m| m.as_string())
                .unwrap_or_default();
            Err(JsError::new(&format!(
                "the GPU refused the write into buffer (is it a buffer of this module's \
                 device, alive and unmapped?): {message}"
            ))
            .into())
        }))
    }
}

/// `{ buffer, shape, dtype, check }` of a dense tensor, its `GPUBuffer` handed to
/// JavaScript.
fn tensor(dense: DenseBias) -> Object {
    let check = check_function(dense.written());
    let shape: Array = dense
        .shape()
        .iter()
        .map(|&n| JsValue::from(n as f64))
        .collect();
    let dtype = dense.dtype().name();
    let buffer = dense
        .into_buffer()
        .as_webgpu()
        .map_or(JsValue::NULL, |buffer| buffer.clone().into());
    object(&[
        ("buffer", buffer),
        ("shape", shape.into()),
        ("dtype", dtype.into()),
        ("check", check),
    ])
}

/// A JavaScript `check()` that returns a promise of the call's [`GpuCheck`], each time it
/// is called; the function goes with the garbage collector.
fn check_function(written: GpuCheck) -> JsValue {
    Closure::<dyn Fn() -> Promise>::new(move || {
        let written = written.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            written.check().await.map_err(js_error)?;
            Ok(JsValue::UNDEFINED)
        })
    })
    .into_js_value()
}

impl WebAlibi {
    /// The staging buffer of `forwardInto`, at least `bytes` long: the one kept, or a new
    /// one of twice the size or more (a decode loop grows its tensor a row at a time), which
    /// replaces it.
    fn staging(&mut self, bytes: u64) -> Result<wgpu::Buffer, JsError> {
        if let Some(kept) = self.staging.as_ref().filter(|b| b.size() >= bytes) {
            return Ok(kept.clone());
        }
        let device = self.module.device();
        let max = device.limits().max_buffer_size;
        if bytes > max {
            return Err(JsError::new(&format!(
                "the dense bias needs {bytes} bytes, more than the device's largest buffer \
                 ({max} bytes, maxBufferSize)"
            )));
        }
        let kept = self.staging.as_ref().map_or(0, wgpu::Buffer::size);
        let size = bytes.max(kept * 2).max(1 << 16).min(max);
        let staging = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("alibi forwardInto staging"),
            size,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_DST
                | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        self.staging = Some(staging.clone());
        Ok(staging)
    }
}
