//! [`ALIBI_WGSL`]: the bias as WGSL functions, for other engines' attention shaders.

/// WGSL functions that compute ALiBi inside your own attention shader, from the slopes
/// alone, with no bias tensor: `shaders/alibi.wgsl`.
///
/// Concatenate it with your shader's source (WGSL has no `#include`; declaration order
/// does not matter). It declares no bindings, no entry point and no override, and every
/// name it declares starts with `alibi_` or `ALIBI_`:
///
/// | function | value |
/// |---|---|
/// | `alibi_bias(slope: f32, query_position: i32, key_position: i32) -> f32` | `f32(-abs(key - query)) * slope` |
/// | `alibi_head_bias(slope, is_padding: bool, query_position, key_position)` | the same, `+0.0` for a padding head |
/// | `alibi_causal_bias(slope, query_position, key_position)` | `alibi_bias`, `-inf` for keys after the query |
/// | `alibi_causal_head_bias(slope, is_padding, query_position, key_position)` | both of the above |
/// | `alibi_query_position(i: u32, j: u32, row: u32) -> i32` | `j - i + row`: queries aligned to the end of the keys, as in `forward(i, j)` |
/// | `alibi_packed_slope(four_slopes: vec4<f32>, head: u32) -> f32` | `four_slopes[head % 4]`, for slopes in a uniform `array<vec4<f32>, N>` (pass `slopes[head / 4]`) |
///
/// Your shader declares where the slopes live and uploads them: the f32 values of
/// [`alibi_slopes`](crate::alibi_slopes) or
/// [`AlibiPositionalBias::slopes`](crate::AlibiPositionalBias::slopes) (or the
/// [`SlopeSource`](crate::SlopeSource) your model uses), never slopes recomputed in WGSL.
///
/// **Exactness**: every value is bit for bit the one [`AlibiPositionalBias::forward`]
/// writes at the same head, row and key, and
/// [`reference::bias_value`](crate::reference::bias_value) gives: the integer distance is
/// negated before its conversion and the one multiplication by the slope, which gives
/// `+0.0` on the diagonal as PyTorch does. So an attention adding `alibi_head_bias` to its
/// scores computes the same bits as the same attention adding the materialized tensor. The
/// product reaches your addition through a `select` on a run-time condition, so that a
/// compiler that contracts `a * b + c` into a fused multiply-add has no multiplication to
/// fuse with your addition (a precaution: lavapipe and llvmpipe do not contract anyway).
/// `tests/attention.rs` checks both claims with `==` on the adapter `WGPU_BACKEND` picks
/// (CI: lavapipe and llvmpipe); run it on the GPUs you ship to. `examples/attention/` is a
/// whole attention shader that uses it.
///
/// [`AlibiPositionalBias::forward`]: crate::AlibiPositionalBias::forward
///
/// ```no_run
/// # fn main() -> Result<(), alibi_wgpu::AlibiError> {
/// // Your engine's attention shader: scores plus ALiBi, the slopes in a storage buffer.
/// const SCORES_WGSL: &str = r"
/// struct Shape { heads: u32, rows: u32, keys: u32 }
/// @group(0) @binding(0) var<uniform> shape: Shape;
/// @group(0) @binding(1) var<storage, read> slopes: array<f32>;
/// @group(0) @binding(2) var<storage, read_write> scores: array<f32>; // [heads, rows, keys]
///
/// @compute @workgroup_size(64)
/// fn add_alibi(@builtin(global_invocation_id) id: vec3<u32>) {
///     let key = id.x;
///     let row = id.y;
///     let head = id.z;
///     if key >= shape.keys || row >= shape.rows || head >= shape.heads { return; }
///     let query = alibi_query_position(shape.rows, shape.keys, row);
///     let index = (head * shape.rows + row) * shape.keys + key;
///     scores[index] += alibi_bias(slopes[head], query, i32(key));
/// }
/// ";
///
/// let gpu = pollster::block_on(alibi_wgpu::open_device(None))?;
/// let source = format!("{}\n{}", alibi_wgpu::ALIBI_WGSL, SCORES_WGSL);
/// let module = gpu.device.create_shader_module(wgpu::ShaderModuleDescriptor {
///     label: Some("scores + alibi"),
///     source: wgpu::ShaderSource::Wgsl(source.into()),
/// });
/// // ... and upload the slopes your model was trained with:
/// let slopes = alibi_wgpu::alibi_slopes(8)?;
/// # let _ = (module, slopes);
/// # Ok(()) }
/// ```
pub const ALIBI_WGSL: &str = include_str!("../shaders/alibi.wgsl");

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::ALIBI_WGSL;
    use crate::gpu::tests::translate::translate_to_every_backend;
    use naga::valid::{Capabilities, ValidationFlags, Validator};

    /// A small engine shader calling every function of the snippet.
    const ENGINE_WGSL: &str = r"
@group(0) @binding(0) var<uniform> slopes: array<vec4<f32>, 2>;
@group(0) @binding(1) var<storage, read_write> values: array<f32>;

@compute @workgroup_size(8)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let head = id.x % 8u;
    let slope = alibi_packed_slope(slopes[head / 4u], head);
    let query = alibi_query_position(3u, 5u, id.y);
    let key = i32(id.z);
    let padding = head >= 6u;
    values[id.x] = alibi_bias(slope, query, key)
        + alibi_head_bias(slope, padding, query, key)
        + alibi_causal_bias(slope, query, key)
        + alibi_causal_head_bias(slope, padding, query, key)
        + alibi_neg_inf(key);
}
";

    fn parse_and_validate(source: &str, capabilities: Capabilities) -> naga::Module {
        let module = naga::front::wgsl::parse_str(source).unwrap_or_else(|e| {
            panic!(
                "does not parse:\n{}",
                e.emit_to_string_with_path(source, "alibi.wgsl + engine")
            )
        });
        Validator::new(ValidationFlags::all(), capabilities)
            .validate(&module)
            .unwrap_or_else(|e| {
                panic!(
                    "does not validate with {capabilities:?}:\n{}",
                    e.emit_to_string_with_path(source, "alibi.wgsl + engine")
                )
            });
        module
    }

    #[test]
    fn the_constant_is_the_shader_file() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/alibi.wgsl");
        assert_eq!(std::fs::read_to_string(path).unwrap(), ALIBI_WGSL);
    }

    #[test]
    fn concatenated_with_an_engine_shader_it_validates_and_translates() {
        let path = std::path::Path::new("alibi.wgsl + engine");
        for source in [
            format!("{ALIBI_WGSL}\n{ENGINE_WGSL}"),
            format!("{ENGINE_WGSL}\n{ALIBI_WGSL}"),
        ] {
            translate_to_every_backend(path, &source);
        }
    }

    #[test]
    fn the_snippet_alone_declares_no_binding_entry_point_or_override() {
        let module = parse_and_validate(ALIBI_WGSL, Capabilities::default());
        assert!(module.entry_points.is_empty());
        assert!(module.global_variables.is_empty());
        assert!(module.overrides.is_empty());
        let names = module
            .functions
            .iter()
            .filter_map(|(_, f)| f.name.as_deref())
            .chain(
                module
                    .constants
                    .iter()
                    .filter_map(|(_, c)| c.name.as_deref()),
            );
        for name in names {
            assert!(
                name.starts_with("alibi_") || name.starts_with("ALIBI_"),
                "{name} could clash with an engine's names"
            );
        }
        for function in [
            "alibi_bias",
            "alibi_head_bias",
            "alibi_causal_bias",
            "alibi_causal_head_bias",
            "alibi_query_position",
            "alibi_packed_slope",
        ] {
            assert!(
                module
                    .functions
                    .iter()
                    .any(|(_, f)| f.name.as_deref() == Some(function)),
                "no {function}"
            );
        }
    }
}
