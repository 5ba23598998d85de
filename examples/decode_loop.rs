//! A KV-cache decode loop: one prefill of the prompt, then one query per generated token,
//! each step's bias served from the module's cache.
//!
//! `cargo run --release --example decode_loop`. The cache serves a request inside a cached
//! tensor as its bottom-right slice (exact, since queries are aligned to the end of the
//! keys) and, when a step outgrows it, generates twice the keys: a thousand steps cost a
//! handful of generations, which the cache statistics show.

use std::time::Instant;

use alibi_wgpu::{reference, AlibiConfig, AlibiPositionalBias, GpuDevice};

const PROMPT: usize = 512;
const NEW_TOKENS: usize = 1024;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let gpu: GpuDevice = pollster::block_on(alibi_wgpu::open_device(None))?;
    println!(
        "adapter: {} ({:?})",
        gpu.adapter_info.name, gpu.adapter_info.backend
    );
    // 12 heads with slopes, padded to 16 (a model with 16 attention heads, 4 without ALiBi).
    let mut alibi = AlibiPositionalBias::on_device(&gpu, AlibiConfig::new(12).total_heads(16))?;

    // Prefill: the whole prompt attends to itself.
    let prefill = alibi.forward(PROMPT, PROMPT)?;
    println!(
        "prefill forward({PROMPT}, {PROMPT}) -> {:?}",
        prefill.shape()
    );

    let start = Instant::now();
    let mut last = None;
    for t in 1..=NEW_TOKENS {
        let keys = PROMPT + t;
        // One new query against every key so far: `[16, 1, keys]`, a view into the cache.
        let step = alibi.forward(1, keys)?;
        // An engine would bind `step` in its attention shader here (see `own_device`).
        if t % 256 == 0 {
            let stats = alibi.cache_stats();
            println!(
                "step {t:>4}: forward(1, {keys}), {} generations so far, {} hits",
                stats.misses, stats.hits
            );
        }
        last = Some(step);
    }
    let per_step = start.elapsed() / NEW_TOKENS as u32;
    println!("{NEW_TOKENS} steps, {per_step:?} per step on the host");

    // The last step, read back, equals the oracle's fresh computation bit for bit.
    let last = pollster::block_on(alibi.read(&last.expect("at least one step")))?;
    let keys = PROMPT + NEW_TOKENS;
    let expected = reference::forward(alibi.slopes(), 16, 1, keys)?;
    assert!(
        last == expected,
        "the cached step differs from a fresh computation"
    );
    println!("last step == reference::forward(1, {keys})");
    println!("cache: {:?}", alibi.cache_stats());
    Ok(())
}
