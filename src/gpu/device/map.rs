//! Mapping a buffer and waiting for it, the one asynchronous step of the crate.

use crate::error::{AlibiError, MapError, Result};

/// Maps `0..bytes` of `buffer` and waits for it: the device is polled on native backends;
/// on the web the browser's event loop completes the map, so nothing blocks there.
/// `operation` names what the mapping is for, in its errors.
pub(crate) async fn map_buffer(
    device: &wgpu::Device,
    buffer: &wgpu::Buffer,
    bytes: u64,
    mode: wgpu::MapMode,
    operation: &'static str,
) -> Result<()> {
    let (sender, receiver) = futures_channel::oneshot::channel();
    buffer.map_async(mode, 0..bytes, move |result| {
        // The receiver only goes away if the caller dropped the future; nothing to tell then.
        let _ = sender.send(result);
    });
    #[cfg(not(target_arch = "wasm32"))]
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(AlibiError::Poll)?;
    #[cfg(target_arch = "wasm32")]
    let _ = device;
    let failed = |source| AlibiError::Map { operation, source };
    match receiver.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(failed(MapError::Async(error))),
        Err(_) => Err(failed(MapError::CallbackDropped)),
    }
}
