//! The JavaScript API of alibi-wgpu (wasm32 only; empty on other targets): the module as a JS class, for engines
//! that run in the browser and call it from JavaScript.
//!
//! ```js
//! import init, { AlibiPositionalBias } from "./pkg/alibi_wgpu.js";
//! await init();
//! const alibi = await AlibiPositionalBias.create(4, 8);
//! const values = await alibi.forwardToHost(3, 5);  // Float32Array, [8, 3, 5] row-major
//! const view = alibi.forward(3, 5);                // view.buffer is a GPUBuffer
//! const causal = await AlibiPositionalBias.create(4, 8, { causal: true, dtype: "f16" });
//! const atPositions = await alibi.forwardPositionsToHost([0, 1, 2, 4], [0, 1, 2, 3, 5]);
//! // Per side, as Rust's `Positions::shared` / `Positions::batched`: two left-padded rows
//! // of queries against keys shared by both.
//! const rows = alibi.forwardPositions({ values: [0, 1, 2, 0, 0, 1], batch: 2 }, [0, 1, 2]);
//! // Fused attention with the bias in registers: q [8, 3, 64], k and v [8, 5, 64].
//! const y = await alibi.attention(q, k, v, { queries: 3, keys: 5, headDim: 64 });
//! ```
//!
//! Calls go through the module's cache in the order they are made: `forwardToHost` runs
//! its `forward` at once and only the readback is asynchronous, so a JS engine may keep
//! several promises in flight. Every refusal rejects the promise (or throws) with the
//! error's message; nothing panics, and the module stays usable.
#![cfg(target_arch = "wasm32")]

mod attention;
mod convert;
mod dense;

use alibi_wgpu::{open_device, validate, AlibiBias, AlibiConfig, AlibiPositionalBias, GpuDevice};
use convert::{count, create_options, js_error, object, side};
use js_sys::{Array, Float32Array, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;

/// `AlibiPositionalBias` in JavaScript: the module on a device of its own. Call `free()`
/// when done with it (or let JavaScript's garbage collector): its GPU buffers and device go
/// with it.
#[wasm_bindgen(js_name = AlibiPositionalBias)]
pub struct WebAlibi {
    /// Readbacks in flight hold neither the module nor the view (`read`'s future owns
    /// what it needs), so calls need no lock here: wasm-bindgen's own borrow flag refuses a
    /// call made while another runs.
    module: AlibiPositionalBias,
    gpu: GpuDevice,
    /// `forwardInto`'s staging buffer, reused from call to call (`dense.rs`).
    staging: Option<wgpu::Buffer>,
}

/// A bias on the GPU, as `forward` returns it: element `(h, r, k)` is element
/// `offset + h * headStride + r * rowStride + k` of `buffer`, an f32 (or an f16 when
/// `dtype` is `"f16"`). It keeps its buffer from
/// being reused by the module until it is freed (`free()`, or garbage collection).
#[wasm_bindgen(js_name = AlibiBias)]
pub struct WebBias {
    view: AlibiBias,
}

#[wasm_bindgen(js_class = AlibiPositionalBias)]
impl WebAlibi {
    /// A module for `heads` heads padded to `totalHeads` (default: `heads`) on the
    /// browser's default WebGPU adapter. `options`: `{ causal: boolean }` masks future keys
    /// with `-Infinity`; `{ dtype: "f16" }` stores f16 (on every adapter; `forwardToHost`
    /// still gives a `Float32Array`, of the f16 values).
    pub async fn create(
        heads: f64,
        #[wasm_bindgen(js_name = totalHeads)] total_heads: Option<f64>,
        #[wasm_bindgen(unchecked_param_type = "{ causal?: boolean, dtype?: \"f32\" | \"f16\" }")]
        options: JsValue,
    ) -> Result<WebAlibi, JsError> {
        let heads = count("heads", heads)?;
        let total_heads = total_heads.map(|n| count("totalHeads", n)).transpose()?;
        let (causal, dtype) = create_options(&options)?;
        // Refused before a device is opened for nothing.
        validate(heads, total_heads.unwrap_or(heads), 0, 0).map_err(js_error)?;
        let has_webgpu = Reflect::get(&js_sys::global(), &"navigator".into())
            .and_then(|navigator| Reflect::get(&navigator, &"gpu".into()))
            .is_ok_and(|gpu| !gpu.is_undefined());
        if !has_webgpu {
            return Err(JsError::new(
                "no WebGPU here (navigator.gpu is missing): use a browser with WebGPU enabled",
            ));
        }
        let gpu = open_device(None).await.map_err(js_error)?;
        let config = AlibiConfig::new(heads)
            .total_heads(total_heads.unwrap_or(heads))
            .causal(causal)
            .dtype(dtype);
        let module = AlibiPositionalBias::on_device(&gpu, config).map_err(js_error)?;
        Ok(Self {
            module,
            gpu,
            staging: None,
        })
    }

    /// The bias `[totalHeads, i, j]` read back, row-major.
    #[wasm_bindgen(js_name = forwardToHost, unchecked_return_type = "Promise<Float32Array>")]
    pub fn forward_to_host(&mut self, i: f64, j: f64) -> Promise {
        // The cache sees this call now, in call order; only the readback waits.
        let view = match self.forward_view(i, j) {
            Ok(view) => view,
            Err(error) => return Promise::reject(&error.into()),
        };
        let reading = self.module.read(&view);
        wasm_bindgen_futures::future_to_promise(async move {
            let values = reading.await.map_err(js_error)?;
            Ok(Float32Array::from(values.as_slice()).into())
        })
    }

    /// The bias at custom positions read back, `[batch, totalHeads, i, j]` row-major:
    /// `-slope * |key - query|` (x-transformers' `forward_custom_pos`). Each side is an
    /// array of integer positions within ±2^23 shared by every batch item, or
    /// `{ values, batch }`: `batch` items' positions back to back (Rust's
    /// `Positions::shared` and `Positions::batched`). `i` and `j` are the positions per
    /// item; two batched sides must agree on the batch.
    #[wasm_bindgen(
        js_name = forwardPositionsToHost,
        unchecked_return_type = "Promise<Float32Array>"
    )]
    pub fn forward_positions_to_host(
        &self,
        #[wasm_bindgen(unchecked_param_type = "PositionsArg")] queries: JsValue,
        #[wasm_bindgen(unchecked_param_type = "PositionsArg")] keys: JsValue,
        #[wasm_bindgen(js_name = removedBatch, unchecked_param_type = "never")]
        removed_batch: Option<f64>,
    ) -> Promise {
        let views = match self.positions_views(&queries, &keys, removed_batch) {
            Ok(views) => views,
            Err(error) => return Promise::reject(&error.into()),
        };
        let readings: Vec<_> = views.iter().map(|view| self.module.read(view)).collect();
        wasm_bindgen_futures::future_to_promise(async move {
            let mut all = Vec::new();
            for reading in readings {
                all.extend_from_slice(reading.await.map_err(js_error)?.as_slice());
            }
            Ok(Float32Array::from(&all[..]).into())
        })
    }

    /// [`forwardPositionsToHost`](Self::forward_positions_to_host)'s bias on the GPU: one
    /// `AlibiBias` per batch item, all in one buffer.
    #[wasm_bindgen(js_name = forwardPositions)]
    pub fn forward_positions(
        &self,
        #[wasm_bindgen(unchecked_param_type = "PositionsArg")] queries: JsValue,
        #[wasm_bindgen(unchecked_param_type = "PositionsArg")] keys: JsValue,
        #[wasm_bindgen(js_name = removedBatch, unchecked_param_type = "never")]
        removed_batch: Option<f64>,
    ) -> Result<Vec<WebBias>, JsError> {
        let views = self.positions_views(&queries, &keys, removed_batch)?;
        Ok(views.into_iter().map(|view| WebBias { view }).collect())
    }

    /// The bias `[totalHeads, i, j]` on the GPU, from the cache when it can be.
    pub fn forward(&mut self, i: f64, j: f64) -> Result<WebBias, JsError> {
        Ok(WebBias {
            view: self.forward_view(i, j)?,
        })
    }

    /// The `GPUDevice` the module works on, to hand to an engine that binds its views.
    #[wasm_bindgen(getter, unchecked_return_type = "GPUDevice")]
    pub fn device(&self) -> JsValue {
        self.gpu
            .device
            .as_webgpu()
            .map_or(JsValue::NULL, |device| device.clone().into())
    }

    /// Sets the cache's memory budget in bytes (0: cache nothing; Rust's
    /// `set_cache_budget`): entries past it are evicted now, least recently used first.
    #[wasm_bindgen(js_name = setCacheBudget)]
    pub fn set_cache_budget(&mut self, bytes: f64) -> Result<(), JsError> {
        if !(bytes.is_finite() && bytes >= 0.0 && bytes.fract() == 0.0) {
            return Err(JsError::new(&format!(
                "the cache budget must be a whole number of bytes, got {bytes}"
            )));
        }
        self.module.set_cache_budget(bytes as u64);
        Ok(())
    }

    /// The cache's counters and memory, Rust's `CacheStats` in camelCase: `{ hits, misses,
    /// evictions, entries, bytes, budgetBytes, recycledBytes, stagingBytes, peakBytes }`.
    #[wasm_bindgen(
        js_name = cacheStats,
        unchecked_return_type = "{ hits: number, misses: number, evictions: number, entries: number, bytes: number, budgetBytes: number, recycledBytes: number, stagingBytes: number, peakBytes: number }"
    )]
    pub fn cache_stats(&self) -> Object {
        let stats = self.module.cache_stats();
        object(&[
            ("hits", (stats.hits as f64).into()),
            ("misses", (stats.misses as f64).into()),
            ("evictions", (stats.evictions as f64).into()),
            ("entries", (stats.entries as f64).into()),
            ("bytes", (stats.bytes as f64).into()),
            ("budgetBytes", (stats.budget_bytes as f64).into()),
            ("recycledBytes", (stats.recycled_bytes as f64).into()),
            ("stagingBytes", (stats.staging_bytes as f64).into()),
            ("peakBytes", (stats.peak_bytes as f64).into()),
        ])
    }

    /// `{ name, backend, deviceType, driver }` of the adapter.
    #[wasm_bindgen(
        js_name = adapterInfo,
        unchecked_return_type = "{ name: string, backend: string, deviceType: string, driver: string }"
    )]
    pub fn adapter_info(&self) -> Object {
        let info = &self.gpu.adapter_info;
        object(&[
            ("name", info.name.as_str().into()),
            ("backend", format!("{:?}", info.backend).into()),
            ("deviceType", format!("{:?}", info.device_type).into()),
            ("driver", info.driver.as_str().into()),
        ])
    }

    fn positions_views(
        &self,
        queries: &JsValue,
        keys: &JsValue,
        removed_batch: Option<f64>,
    ) -> Result<Vec<AlibiBias>, JsError> {
        // The third argument once batched both sides: refused, never ignored (ignoring it
        // would give another shape than the caller asked for).
        if removed_batch.is_some() {
            return Err(JsError::new(
                "forwardPositions takes two arguments: write a batched side as { values, batch }",
            ));
        }
        let (queries, keys) = (side("queries", queries)?, side("keys", keys)?);
        self.module
            .forward_positions(queries.positions(), keys.positions())
            .map_err(js_error)
    }

    fn forward_view(&mut self, i: f64, j: f64) -> Result<AlibiBias, JsError> {
        let (i, j) = (count("i", i)?, count("j", j)?);
        self.module.forward(i, j).map_err(js_error)
    }
}

#[wasm_bindgen(js_class = AlibiBias)]
impl WebBias {
    /// The `GPUBuffer` holding the view.
    #[wasm_bindgen(getter, unchecked_return_type = "GPUBuffer | null")]
    pub fn buffer(&self) -> JsValue {
        self.view
            .buffer()
            .and_then(wgpu::Buffer::as_webgpu)
            .map_or(JsValue::NULL, |buffer| buffer.clone().into())
    }

    /// `"f32"` or `"f16"`: the type of `buffer`'s elements.
    #[wasm_bindgen(getter, unchecked_return_type = "\"f32\" | \"f16\"")]
    pub fn dtype(&self) -> String {
        self.view.dtype().name().to_owned()
    }

    /// Index of element `(0, 0, 0)` in `buffer`, in elements.
    #[wasm_bindgen(getter)]
    pub fn offset(&self) -> f64 {
        self.view.layout().offset as f64
    }

    /// Distance between heads, in elements.
    #[wasm_bindgen(getter, js_name = headStride)]
    pub fn head_stride(&self) -> f64 {
        self.view.layout().head_stride as f64
    }

    /// Distance between rows, in elements.
    #[wasm_bindgen(getter, js_name = rowStride)]
    pub fn row_stride(&self) -> f64 {
        self.view.layout().row_stride as f64
    }

    /// `[heads, i, j]`.
    #[wasm_bindgen(getter, unchecked_return_type = "[number, number, number]")]
    pub fn shape(&self) -> Array {
        self.view
            .shape()
            .iter()
            .map(|&n| JsValue::from(n as f64))
            .collect()
    }
}
