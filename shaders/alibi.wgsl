// ALiBi inside your own attention shader: alibi-wgpu's bias, computed on the fly from the
// slopes alone, with no bias tensor.
//
// How to include it: WGSL has no #include, so concatenate this text with your shader before
// creating the module. From Rust it is `alibi_wgpu::ALIBI_WGSL`:
//
//     let source = format!("{}\n{}", alibi_wgpu::ALIBI_WGSL, MY_ATTENTION_WGSL);
//
// WGSL does not care about declaration order, so it may go before or after your code. It
// declares no bindings, no entry point and no override; every name starts with `alibi_` or
// `ALIBI_`. Your shader declares where the slopes live (a uniform `array<vec4<f32>, N>`
// packed four to a vec4, or a storage `array<f32>`) and passes one slope per call.
//
// The slopes: upload the crate's f32 values, `alibi_wgpu::alibi_slopes(heads)` or
// `AlibiPositionalBias::slopes()` (whatever `SlopeSource` the module was configured with),
// never slopes recomputed in WGSL: `pow` and `exp2` on a GPU are not exact. Heads past the slopes
// (`heads <= head < total_heads`) are padding: pass `is_padding = true` to the `_head_`
// functions (or give them slope 0.0 and accept -0.0 for +0.0, which no softmax can see).
//
// The exactness contract: for the same slope and positions every function returns the bits
// that `AlibiPositionalBias::forward` writes and `alibi_wgpu::reference::bias_value` gives,
//
//     bias = f32(-|key - query|) * slope
//
// the integer distance negated before the conversion and the one f32 multiplication (the
// same value as -(slope * distance), and +0.0 on the diagonal, as PyTorch gives). A score
// `score + bias` is then the same f32 as `score + materialized_bias[h, r, k]`.
//
// One caution: shader compilers may contract a multiplication followed by an addition into
// one fused multiply-add (SPIR-V allows it wherever NoContraction is absent, and WGSL has no
// way to ask for that decoration). `score + alibi_bias(...)` could then become
// fma(f32(-d), slope, score), which rounds once instead of twice and is not the value of an
// attention reading the materialized bias. Every function here therefore returns its
// product through a `select` on a run-time condition (the causal mask, padding heads, or a
// never-true `distance < 0` that a compiler cannot fold, since `abs` of the most negative
// i32 is negative), so that the caller's addition receives a selected value, not a
// multiplication it could fuse. That is a precaution, not a proof: lavapipe and llvmpipe do
// not contract even without it. `tests/attention.rs` checks, on the adapter
// `WGPU_BACKEND` picks (CI: lavapipe and llvmpipe), that an attention computing the bias
// here equals, bit for bit, the same attention reading `forward`'s tensor; run it on the
// GPUs you ship to.

// Bits of -infinity. WGSL has no infinity literal and a const-expression may not be
// infinite, so `alibi_neg_inf` builds it at run time from these bits.
const ALIBI_NEG_INF_BITS: u32 = 0xff800000u;

// -infinity, from a value the shader compiler sees only at run time (a const-expression
// that evaluates to an infinity is a shader-creation error). `runtime` is any run-time
// integer: its bits are masked away.
fn alibi_neg_inf(runtime: i32) -> f32 {
    return bitcast<f32>(ALIBI_NEG_INF_BITS | (bitcast<u32>(runtime) & 0u));
}

// Position of query row `row` of a `forward(i, j)` call: the queries aligned to the end of
// the keys, as in a KV-cache decode (`j - i + row`; negative rows when i > j). Key column
// `k` sits at position `k`.
fn alibi_query_position(i: u32, j: u32, row: u32) -> i32 {
    return i32(j) - i32(i) + i32(row);
}

// The slope of head `head` from slopes packed four to a vec4 (a uniform `array<f32>` would
// have a 16-byte stride): pass `slopes[head / 4u]`.
fn alibi_packed_slope(four_slopes: vec4<f32>, head: u32) -> f32 {
    return four_slopes[head % 4u];
}

// `f32(-distance) * slope`, or `replacement` where `replace` holds: the product leaves
// through a select on a run-time condition, so that it stays one rounded product (see the
// caution above).
fn alibi_rounded(slope: f32, distance: i32, replacement: f32, replace: bool) -> f32 {
    let product = f32(-distance) * slope;
    return select(product, replacement, replace);
}

// The ALiBi bias of a key at `key_position` for a query at `query_position`, with `slope`:
// `f32(-|key - query|) * slope`, exactly the crate's value (+0.0 on the diagonal).
fn alibi_bias(slope: f32, query_position: i32, key_position: i32) -> f32 {
    let distance = abs(key_position - query_position);
    // Never true for positions a module accepts, but a compiler cannot prove it (`abs`
    // wraps at the most negative i32): the select stays, and with it the rounded product.
    return alibi_rounded(slope, distance, 0.0, distance < 0);
}

// `alibi_bias` for head `head` of a module whose heads from `slope_heads` on are padding:
// +0.0 for those (x-transformers pads with zeros), `alibi_bias` below them.
fn alibi_head_bias(slope: f32, is_padding: bool, query_position: i32, key_position: i32) -> f32 {
    let distance = abs(key_position - query_position);
    return alibi_rounded(slope, distance, 0.0, is_padding);
}

// The causal form: `alibi_bias` for the present and past keys (key_position <=
// query_position), -infinity for every future key, so that the mask is fused in. A row
// whose keys are all in the future is all -infinity: a softmax over it is NaN, as it is for
// the materialized causal bias.
fn alibi_causal_bias(slope: f32, query_position: i32, key_position: i32) -> f32 {
    let distance = abs(key_position - query_position);
    let future = key_position > query_position;
    return alibi_rounded(slope, distance, alibi_neg_inf(key_position), future);
}

// `alibi_causal_bias` with padding heads: +0.0 for past and present keys of a padding head,
// -infinity for future keys of every head.
fn alibi_causal_head_bias(
    slope: f32,
    is_padding: bool,
    query_position: i32,
    key_position: i32,
) -> f32 {
    let distance = abs(key_position - query_position);
    let future = key_position > query_position;
    let replacement = select(0.0, alibi_neg_inf(key_position), future);
    return alibi_rounded(slope, distance, replacement, future || is_padding);
}
