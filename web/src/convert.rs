//! JavaScript values in, JavaScript values out: counts, positions, `create`'s options and
//! errors, each refused with a message that names the argument rather than wrapped,
//! truncated or ignored.

use alibi_wgpu::{error_chain, AlibiError, BiasDtype, Positions};
use js_sys::{Object, Reflect};
use wasm_bindgen::prelude::*;

/// The type of a side of `forwardPositions`, for TypeScript.
#[wasm_bindgen(typescript_custom_section)]
const POSITIONS_ARG: &str = r#"
/** One side of `forwardPositions`: integer positions shared by every batch item, or
 * `{ values, batch }`, `batch` items' positions back to back (Rust's `Positions::shared`
 * and `Positions::batched`). */
export type PositionsArg = ArrayLike<number> | { values: ArrayLike<number>; batch: number };
"#;

/// One side of `forwardPositions`, owned: its positions and, when batched, the batch.
pub(crate) struct Side {
    values: Vec<i32>,
    batch: Option<usize>,
}

impl Side {
    pub fn positions(&self) -> Positions<'_> {
        match self.batch {
            Some(batch) => Positions::batched(&self.values, batch),
            None => Positions::shared(&self.values),
        }
    }
}

/// A side of `forwardPositions` (`name` is `queries` or `keys`): an array-like of numbers,
/// or `{ values, batch }`.
pub(crate) fn side(name: &str, value: &JsValue) -> Result<Side, JsError> {
    let batched = value.is_object()
        && !js_sys::Array::is_array(value)
        && Reflect::has(value, &"values".into()).unwrap_or(false);
    if !batched {
        let values = numbers(name, value)?;
        return Ok(Side {
            values: positions(name, &values)?,
            batch: None,
        });
    }
    let object: &Object = value.unchecked_ref();
    for key in Object::keys(object).iter() {
        let key = key.as_string().unwrap_or_default();
        if key != "values" && key != "batch" {
            return Err(JsError::new(&format!(
                "unknown key {key:?} in {name}: a batched side is {{ values, batch }}"
            )));
        }
    }
    let get = |key: &str| Reflect::get(value, &key.into()).unwrap_or(JsValue::UNDEFINED);
    let values_name = format!("{name}.values");
    let values = numbers(&values_name, &get("values"))?;
    let batch = get("batch")
        .as_f64()
        .ok_or_else(|| JsError::new(&format!("{name}.batch must be a number of batch items")))?;
    Ok(Side {
        values: positions(&values_name, &values)?,
        batch: Some(count(&format!("{name}.batch"), batch)?),
    })
}

/// An array-like of numbers (an `Array` or a typed array) as f64s.
fn numbers(name: &str, value: &JsValue) -> Result<Vec<f64>, JsError> {
    let length = Reflect::get(value, &"length".into())
        .ok()
        .and_then(|length| length.as_f64())
        .filter(|_| value.is_object());
    let Some(length) = length else {
        return Err(JsError::new(&format!(
            "{name} must be an array of positions or {{ values, batch }}"
        )));
    };
    (0..count(&format!("{name}.length"), length)?)
        .map(|index| {
            Reflect::get_u32(value, index as u32)
                .ok()
                .and_then(|element| element.as_f64())
                .ok_or_else(|| JsError::new(&format!("{name}[{index}] must be a number")))
        })
        .collect()
}

/// A JavaScript number as a count: a whole number from 0 to 2^32 - 1. Anything else (NaN,
/// infinities, fractions, negatives) is refused rather than wrapped or truncated into
/// another size; the module checks the counts it gets against its own limits.
pub(crate) fn count(name: &str, value: f64) -> Result<usize, JsError> {
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
pub(crate) fn create_options(options: &JsValue) -> Result<(bool, BiasDtype), JsError> {
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
pub(crate) fn js_error(error: AlibiError) -> JsError {
    JsError::new(&error_chain(&error))
}

/// A plain JS object with these properties.
pub(crate) fn object(properties: &[(&str, JsValue)]) -> Object {
    let object = Object::new();
    for (key, value) in properties {
        // Setting a property of a fresh plain object cannot fail.
        let _ = Reflect::set(&object, &JsValue::from_str(key), value);
    }
    object
}
