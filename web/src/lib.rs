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
//! ```
//!
//! Calls go through the module's cache in the order they are made: `forwardToHost` runs
//! its `forward` at once and only the readback is asynchronous, so a JS engine may keep
//! several promises in flight. Every refusal rejects the promise (or throws) with the
//! error's message; nothing panics, and the module stays usable.
#![cfg(target_arch = "wasm32")]

use js_sys::{Array, Float32Array, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;

use alibi_wgpu::{
    error_chain, open_device, validate, AlibiBias, AlibiConfig, AlibiError, AlibiPositionalBias,
    BiasDtype, GpuDevice, Positions,
};

/// `AlibiPositionalBias` in JavaScript: the module on a device of its own. Call `free()`
/// when done with it (or let JavaScript's garbage collector): its GPU buffers and device go
/// with it.
#[wasm_bindgen(js_name = AlibiPositionalBias)]
pub struct WebAlibi {
    /// Readbacks in flight hold a `Reader`, not the module, so calls need no lock here:
    /// wasm-bindgen's own borrow flag refuses a call made while another runs.
    module: AlibiPositionalBias,
    gpu: GpuDevice,
}

/// A bias on the GPU, as `forward` returns it: element `(h, r, k)` is element
/// `offset + h * headStride + r * rowStride + k` of `buffer`, an f32 (or an f16 when
/// `dtype` is `"f16"`). It keeps its buffer from
/// being reused by the module until it is freed (`free()`, or garbage collection).
#[wasm_bindgen]
pub struct BiasView {
    view: AlibiBias,
}

#[wasm_bindgen(js_class = AlibiPositionalBias)]
impl WebAlibi {
    /// A module for `heads` heads padded to `totalHeads` (default: `heads`) on the
    /// browser's default WebGPU adapter. `options`: `{ causal: boolean }` masks future keys
    /// with `-Infinity`; `{ dtype: "f16" }` stores f16 (where the adapter has
    /// `shader-f16`; `forwardToHost` still gives a `Float32Array`, of the f16 values).
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
        let config = AlibiConfig::padded(heads, total_heads)
            .causal(causal)
            .dtype(dtype);
        let module = AlibiPositionalBias::on_device(&gpu, config).map_err(js_error)?;
        Ok(Self { module, gpu })
    }

    /// The bias `[totalHeads, i, j]` read back, row-major.
    #[wasm_bindgen(js_name = forwardToHost, unchecked_return_type = "Promise<Float32Array>")]
    pub fn forward_to_host(&mut self, i: f64, j: f64) -> Promise {
        // The cache sees this call now, in call order; only the readback waits.
        let view = match self.forward_view(i, j) {
            Ok(view) => view,
            Err(error) => return Promise::reject(&error.into()),
        };
        let reader = self.module.reader();
        wasm_bindgen_futures::future_to_promise(async move {
            let mut values = Vec::new();
            reader
                .read_into(&view, &mut values)
                .await
                .map_err(|error| JsValue::from(js_error(error)))?;
            Ok(Float32Array::from(&values[..]).into())
        })
    }

    /// The bias at custom positions, `[batch, totalHeads, queries.length / batch,
    /// keys.length / batch]` read back, row-major: `-slope * |key - query|` (x-transformers'
    /// `forward_custom_pos`). Without `batch` both arrays are one sequence's positions;
    /// with it, both hold `batch` sequences' back to back. Positions are integers within
    /// ±2^23.
    #[wasm_bindgen(
        js_name = forwardPositionsToHost,
        unchecked_return_type = "Promise<Float32Array>"
    )]
    pub fn forward_positions_to_host(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ArrayLike<number>")] queries: Vec<f64>,
        #[wasm_bindgen(unchecked_param_type = "ArrayLike<number>")] keys: Vec<f64>,
        batch: Option<f64>,
    ) -> Promise {
        let views = match self.positions_views(&queries, &keys, batch) {
            Ok(views) => views,
            Err(error) => return Promise::reject(&error.into()),
        };
        let reader = self.module.reader();
        wasm_bindgen_futures::future_to_promise(async move {
            let mut all = Vec::new();
            let mut values = Vec::new();
            for view in &views {
                reader
                    .read_into(view, &mut values)
                    .await
                    .map_err(|error| JsValue::from(js_error(error)))?;
                all.extend_from_slice(&values);
            }
            Ok(Float32Array::from(&all[..]).into())
        })
    }

    /// [`forwardPositionsToHost`](Self::forward_positions_to_host)'s bias on the GPU: one
    /// view per batch item, all in one buffer.
    #[wasm_bindgen(js_name = forwardPositions)]
    pub fn forward_positions(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ArrayLike<number>")] queries: Vec<f64>,
        #[wasm_bindgen(unchecked_param_type = "ArrayLike<number>")] keys: Vec<f64>,
        batch: Option<f64>,
    ) -> Result<Vec<BiasView>, JsError> {
        let views = self.positions_views(&queries, &keys, batch)?;
        Ok(views.into_iter().map(|view| BiasView { view }).collect())
    }

    /// The bias `[totalHeads, i, j]` on the GPU, from the cache when it can be.
    pub fn forward(&mut self, i: f64, j: f64) -> Result<BiasView, JsError> {
        Ok(BiasView {
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

    /// `{ hits, misses, evictions, entries, bytes }`.
    #[wasm_bindgen(
        js_name = cacheStats,
        unchecked_return_type = "{ hits: number, misses: number, evictions: number, entries: number, bytes: number }"
    )]
    pub fn cache_stats(&self) -> Object {
        let stats = self.module.cache_stats();
        object(&[
            ("hits", (stats.hits as f64).into()),
            ("misses", (stats.misses as f64).into()),
            ("evictions", (stats.evictions as f64).into()),
            ("entries", (stats.entries as f64).into()),
            ("bytes", (stats.bytes as f64).into()),
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
        queries: &[f64],
        keys: &[f64],
        batch: Option<f64>,
    ) -> Result<Vec<AlibiBias>, JsError> {
        let (queries, keys) = (positions("queries", queries)?, positions("keys", keys)?);
        let side = |values| match batch {
            Some(batch) => count("batch", batch).map(|batch| Positions::batched(values, batch)),
            None => Ok(Positions::shared(values)),
        };
        self.module
            .forward_positions(side(&queries)?, side(&keys)?)
            .map_err(js_error)
    }

    fn forward_view(&mut self, i: f64, j: f64) -> Result<AlibiBias, JsError> {
        let (i, j) = (count("i", i)?, count("j", j)?);
        self.module.forward(i, j).map_err(js_error)
    }
}

#[wasm_bindgen]
impl BiasView {
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

/// A JavaScript number as a count: a whole number from 0 to 2^32 - 1. Anything else (NaN,
/// infinities, fractions, negatives) is refused rather than wrapped or truncated into
/// another size; the module checks the counts it gets against its own limits.
fn count(name: &str, value: f64) -> Result<usize, JsError> {
    if value.is_finite() && value >= 0.0 && value.fract() == 0.0 && value <= f64::from(u32::MAX) {
        Ok(value as usize)
    } else {
        Err(JsError::new(&format!(
            "{name} must be a whole number from 0 to {}, got {value}",
            u32::MAX
        )))
    }
}

/// JavaScript numbers as positions: whole numbers that fit an i32 (the module then checks
/// its own range). Fractions, NaN and infinities are refused, never truncated.
fn positions(name: &str, values: &[f64]) -> Result<Vec<i32>, JsError> {
    values
        .iter()
        .enumerate()
        .map(|(index, &value)| {
            let whole = value.is_finite() && value.fract() == 0.0;
            if whole && value >= f64::from(i32::MIN) && value <= f64::from(i32::MAX) {
                Ok(value as i32)
            } else {
                Err(JsError::new(&format!(
                    "{name}[{index}] must be a whole number, got {value}"
                )))
            }
        })
        .collect()
}

/// `create`'s options: `{ causal?: boolean, dtype?: "f32" | "f16" }`, `undefined` or
/// `null` for none. An unknown key or a value of the wrong type is refused, so a typo
/// does not silently give the default.
fn create_options(options: &JsValue) -> Result<(bool, BiasDtype), JsError> {
    if options.is_undefined() || options.is_null() {
        return Ok((false, BiasDtype::F32));
    }
    let Some(object) = options.dyn_ref::<Object>() else {
        return Err(JsError::new(
            "options must be an object such as { causal: true, dtype: \"f16\" }",
        ));
    };
    let mut chosen = (false, BiasDtype::F32);
    for key in Object::keys(object).iter() {
        let name = key.as_string().unwrap_or_default();
        let value = Reflect::get(object, &key).unwrap_or(JsValue::UNDEFINED);
        match name.as_str() {
            "causal" => {
                chosen.0 = value.as_bool().ok_or_else(|| {
                    JsError::new(&format!(
                        "options.causal must be true or false, got {value:?}"
                    ))
                })?;
            }
            "dtype" => {
                chosen.1 = match value.as_string().as_deref() {
                    Some("f32") => BiasDtype::F32,
                    Some("f16") => BiasDtype::F16,
                    _ => {
                        return Err(JsError::new(&format!(
                            "options.dtype must be \"f32\" or \"f16\", got {value:?}"
                        )))
                    }
                };
            }
            _ => {
                return Err(JsError::new(&format!(
                    "unknown option {name:?}: the options are causal and dtype"
                )))
            }
        }
    }
    Ok(chosen)
}

/// The error as JavaScript sees it: the message, then its causes, on one line.
fn js_error(error: AlibiError) -> JsError {
    JsError::new(&error_chain(&error))
}

/// A plain JS object with these properties.
fn object(properties: &[(&str, JsValue)]) -> Object {
    let object = Object::new();
    for (key, value) in properties {
        // Setting a property of a fresh plain object cannot fail.
        let _ = Reflect::set(&object, &JsValue::from_str(key), value);
    }
    object
}
