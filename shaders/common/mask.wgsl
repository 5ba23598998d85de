// The causal mask: future keys (key position after the query's) of every head, padding
// heads included, get -inf when `CAUSAL`.
//
// CAUSAL is a constant Rust writes into the source (`src/gpu/dispatch/wgsl.rs`), not a
// uniform flag, so that a plain module's kernel carries no mask at all: on lavapipe, where
// the bias kernel's time is its stores, the mask's select costs 5 to 8% (a branch around
// it, so that only the vec4s that hold future keys select, cost 18%).

// Which of four keys at `offsets` from their query are masked.
fn future4(offsets: vec4<i32>) -> vec4<bool> {
    return (offsets > vec4<i32>(0)) & vec4<bool>(CAUSAL);
}

// What a masked key gets: `future_bits` are the bits of -inf, 0xff800000, from the window's
// uniform (WGSL has no infinity literal, and a constant one would not pass naga's
// evaluator). The element file's `to_masked4` stores a masked vec4 (the f16 files convert
// and mask in the order their saturation needs).
fn masked1(value: Element, masked: bool, future_bits: u32) -> Element {
    return select(value, Element(bitcast<f32>(future_bits)), masked);
}
