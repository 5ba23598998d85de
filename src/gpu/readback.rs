//! Copying a (possibly strided) bias view back to the host through reusable staging buffers.

use std::sync::Mutex;

use crate::error::{AlibiError, Result};

/// Staging buffers kept for reuse, at most this many.
const POOLED_STAGING_BUFFERS: usize = 2;
/// Staging sizes are rounded up to a power of two of at least this many bytes, so that
/// repeated readbacks of similar sizes reuse one buffer.
const MIN_STAGING_BYTES: u64 = 64 << 10;

/// A pool of `MAP_READ | COPY_DST` buffers.
#[derive(Default)]
pub(crate) struct StagingPool {
    free: Mutex<Vec<wgpu::Buffer>>,
}

impl StagingPool {
    /// A buffer of at least `bytes`, from the pool or new (never above `max_buffer_bytes`).
    pub fn take(&self, device: &wgpu::Device, bytes: u64, max_buffer_bytes: u64) -> wgpu::Buffer {
        let mut free = self
            .free
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(index) = free.iter().position(|b| {
            b.size() >= bytes && b.size() <= bytes.saturating_mul(2).max(MIN_STAGING_BYTES)
        }) {
            return free.swap_remove(index);
        }
        drop(free);
        let size = bytes
            .max(MIN_STAGING_BYTES)
            .checked_next_power_of_two()
            .unwrap_or(bytes)
            .min(max_buffer_bytes)
            .max(bytes);
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("alibi readback staging"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// Returns an unmapped buffer to the pool.
    pub fn give_back(&self, buffer: wgpu::Buffer) {
        let mut free = self
            .free
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if free.len() < POOLED_STAGING_BUFFERS {
            free.push(buffer);
        }
    }
}

/// Maps `0..bytes` of `buffer` and waits for it: the device is polled on native backends;
/// on the web the browser's event loop completes the map, so nothing blocks there.
pub(crate) async fn map_buffer(
    device: &wgpu::Device,
    buffer: &wgpu::Buffer,
    bytes: u64,
    mode: wgpu::MapMode,
) -> Result<()> {
    let (sender, receiver) = futures_channel::oneshot::channel();
    buffer.map_async(mode, 0..bytes, move |result| {
        // The receiver only goes away if the caller dropped the future; nothing to tell then.
        let _ = sender.send(result);
    });
    #[cfg(not(target_arch = "wasm32"))]
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| AlibiError::DeviceLost(e.to_string()))?;
    #[cfg(target_arch = "wasm32")]
    let _ = device;
    match receiver.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(AlibiError::Map(e.to_string())),
        Err(_) => Err(AlibiError::Map(
            "the map callback was dropped before it ran (device lost?)".into(),
        )),
    }
}
