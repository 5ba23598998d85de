//! The worked example of docs/semantics.md on the default adapter: heads = 4, total_heads = 8, i = 3, j = 5,
//! then a decode step served from the cache.
//!
//! `cargo run --example quickstart` (set `WGPU_BACKEND=vulkan` or `gl` to pick a backend).

use alibi_wgpu::{AlibiError, AlibiPositionalBias};

fn main() -> Result<(), AlibiError> {
    let mut alibi = pollster::block_on(AlibiPositionalBias::new_default(4, Some(8)))?;
    if let Some(info) = alibi.adapter_info() {
        println!("adapter: {} ({:?})", info.name, info.backend);
    }
    println!("slopes: {:?}", alibi.slopes());

    let bias = pollster::block_on(alibi.forward_to_host(3, 5))?;
    println!("forward(3, 5) -> {:?}", bias.shape());
    // The worked example of docs/semantics.md: head 0 is the distance part times 0.25.
    assert_eq!(bias.row(0, 0), &[-0.5, -0.25, 0.0, -0.25, -0.5]);
    for h in [0, 1, 4] {
        for r in 0..3 {
            println!("  head {h} row {r}: {:?}", bias.row(h, r));
        }
    }

    // A decode step after the prefill: the last query row, from the cached tensor.
    let step = alibi.forward(1, 5)?;
    let step = pollster::block_on(alibi.read(&step))?;
    println!("forward(1, 5) head 0: {:?}", step.row(0, 0));
    assert_eq!(
        step.row(0, 0),
        bias.row(0, 2),
        "the bottom-right slice, not the top-left"
    );
    println!("cache: {:?}", alibi.cache_stats());
    Ok(())
}
