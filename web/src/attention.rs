//! Fused attention with ALiBi in registers, in JavaScript: `attention(q, k, v, shape,
//! options?)` from `Float32Array`s to a `Float32Array` (Rust's `attention`; the encoder form
//! needs wgpu buffers, which JavaScript's `GPUBuffer`s cannot become in wgpu 30).

use alibi_wgpu::{AttentionOptions, AttentionShape};
use js_sys::{Float32Array, Int32Array, Promise, Reflect};
use wasm_bindgen::prelude::*;

use crate::convert::{count, js_error};
use crate::WebAlibi;

/// The TypeScript types of the arguments.
#[wasm_bindgen(typescript_custom_section)]
const ATTENTION_TYPES: &str = r#"
/** The shape of an attention call: q and the output [batch, totalHeads, queries, headDim],
 * k and v [batch, kvHeads, keys, headDim]; batch defaults to 1, kvHeads to totalHeads. */
export type AttentionShape = { batch?: number; kvHeads?: number; queries: number; keys: number; headDim: number };
/** scale defaults to 1 / sqrt(headDim); a window side left out is unlimited; offsets are one
 * per batch item, added to the query and key positions (left-padded items). */
export type AttentionOptions = {
  scale?: number;
  windowLeft?: number;
  windowRight?: number;
  queryOffsets?: number[] | Int32Array;
  keyOffsets?: number[] | Int32Array;
};
"#;

#[wasm_bindgen(js_class = AlibiPositionalBias)]
impl WebAlibi {
    /// `softmax(q k^T * scale + alibi) v` with the module's ALiBi computed in registers (no
    /// bias tensor), causal when the module is: f32 arrays in, a `Float32Array` out. The
    /// promise rejects with the cause (a shape that does not fit, a head dimension the
    /// kernel does not take, arrays of the wrong length).
    #[wasm_bindgen(unchecked_return_type = "Promise<Float32Array>")]
    pub fn attention(
        &self,
        q: Float32Array,
        k: Float32Array,
        v: Float32Array,
        #[wasm_bindgen(unchecked_param_type = "AttentionShape")] shape: JsValue,
        #[wasm_bindgen(unchecked_param_type = "AttentionOptions")] options: JsValue,
    ) -> Promise {
        let call = || -> Result<_, JsError> {
            let shape = attention_shape(&shape, self.module.total_heads())?;
            let options = attention_options(&options)?;
            let (q, k, v) = (q.to_vec(), k.to_vec(), v.to_vec());
            Ok(self.module.attention(&q, &k, &v, shape, &options))
        };
        let reading = match call() {
            Ok(reading) => reading,
            Err(error) => return Promise::reject(&error.into()),
        };
        wasm_bindgen_futures::future_to_promise(async move {
            let values = reading.await.map_err(js_error)?;
            Ok(Float32Array::from(&values[..]).into())
        })
    }
}

/// A property of a JS object: `None` when absent or undefined.
fn property(object: &JsValue, name: &str) -> Option<JsValue> {
    Reflect::get(object, &name.into())
        .ok()
        .filter(|value| !value.is_undefined() && !value.is_null())
}

fn number(object: &JsValue, name: &str) -> Result<Option<f64>, JsError> {
    property(object, name)
        .map(|value| {
            value
                .as_f64()
                .ok_or_else(|| JsError::new(&format!("{name} must be a number")))
        })
        .transpose()
}

fn attention_shape(shape: &JsValue, total_heads: usize) -> Result<AttentionShape, JsError> {
    if !shape.is_object() {
        return Err(JsError::new(
            "shape must be an object such as { queries: 1, keys: 16, headDim: 64 }",
        ));
    }
    let required = |name: &str| -> Result<usize, JsError> {
        let value = number(shape, name)?
            .ok_or_else(|| JsError::new(&format!("shape.{name} is missing")))?;
        count(&format!("shape.{name}"), value)
    };
    let optional = |name: &str, default: usize| -> Result<usize, JsError> {
        number(shape, name)?.map_or(Ok(default), |value| count(&format!("shape.{name}"), value))
    };
    Ok(AttentionShape {
        batch: optional("batch", 1)?,
        query_heads: total_heads,
        kv_heads: optional("kvHeads", total_heads)?,
        queries: required("queries")?,
        keys: required("keys")?,
        head_dim: required("headDim")?,
    })
}

fn attention_options(options: &JsValue) -> Result<AttentionOptions<'static>, JsError> {
    let mut parsed = AttentionOptions::new();
    if options.is_undefined() || options.is_null() {
        return Ok(parsed);
    }
    if !options.is_object() {
        return Err(JsError::new(
            "options must be an object such as { windowLeft: 128 }",
        ));
    }
    if let Some(scale) = number(options, "scale")? {
        parsed = parsed.scale(scale as f32);
    }
    let side = |name: &str| -> Result<Option<u32>, JsError> {
        number(options, name)?
            .map(|value| count(&format!("options.{name}"), value).map(|n| n as u32))
            .transpose()
    };
    parsed = parsed.window(side("windowLeft")?, side("windowRight")?);
    let offsets = |name: &str| -> Result<Option<Vec<i32>>, JsError> {
        property(options, name)
            .map(|value| {
                let values: Vec<f64> = if let Some(array) = value.dyn_ref::<Int32Array>() {
                    array.to_vec().into_iter().map(f64::from).collect()
                } else if let Some(array) = value.dyn_ref::<js_sys::Array>() {
                    array
                        .iter()
                        .map(|x| x.as_f64().unwrap_or(f64::NAN))
                        .collect()
                } else {
                    return Err(JsError::new(&format!("options.{name} must be an array")));
                };
                values
                    .into_iter()
                    .map(|x| {
                        if x.fract() == 0.0 && x.abs() <= f64::from(i32::MAX) {
                            Ok(x as i32)
                        } else {
                            Err(JsError::new(&format!(
                                "options.{name} must hold whole numbers, got {x}"
                            )))
                        }
                    })
                    .collect()
            })
            .transpose()
    };
    let (queries, keys) = (offsets("queryOffsets")?, offsets("keyOffsets")?);
    if queries.is_some() || keys.is_some() {
        // A side left out is all zeros, one per batch item of the other.
        let batch = queries.as_ref().or(keys.as_ref()).map_or(0, Vec::len);
        parsed = parsed.offsets(
            queries.unwrap_or_else(|| vec![0; batch]),
            keys.unwrap_or_else(|| vec![0; batch]),
        );
    }
    Ok(parsed)
}
