//! The async API, the form that also runs in the browser (where nothing may block): open
//! the default adapter, generate, read back, all awaited.
//!
//! `cargo run --example async_quickstart`. On native, `pollster::block_on` drives the
//! future; on the web, `wasm_bindgen_futures::spawn_local` would run the same `async fn`.

use alibi_wgpu::{AlibiError, AlibiPositionalBias};

/// Everything an async caller does: no `_blocking` call anywhere.
async fn run() -> Result<(), AlibiError> {
    let mut alibi = AlibiPositionalBias::new_default(4, Some(8)).await?;
    if let Some(info) = alibi.adapter_info() {
        println!("adapter: {} ({:?})", info.name, info.backend);
    }

    // `forward` hands out a view of the GPU buffer at once; `read` awaits its copy.
    let bias = alibi.forward(3, 5)?;
    let host = alibi.read(&bias).await?;
    println!("forward(3, 5) -> {:?}", host.shape());
    println!("  head 0, last row: {:?}", host.row(0, 2));
    assert_eq!(host.row(0, 2), &[-1.0, -0.75, -0.5, -0.25, 0.0]);

    // Or both in one call: a decode step, served from the cached (3, 5) tensor.
    let step = alibi.forward_to_host(1, 5).await?;
    assert_eq!(step.row(0, 0), host.row(0, 2));
    println!(
        "forward_to_host(1, 5) == the last row; cache: {:?}",
        alibi.cache_stats()
    );
    Ok(())
}

fn main() -> Result<(), AlibiError> {
    pollster::block_on(run())
}
