//! Turning wgpu's error scopes into `Result`s, so no device error reaches wgpu's default
//! handler (which panics) and none is silently dropped.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use crate::error::AlibiError;

/// The outcome of a closed error scope. On native backends it is known at once; on the web
/// it arrives later, so it is kept and awaited before the next readback.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) type PendingErrors = Pin<Box<dyn Future<Output = Option<wgpu::Error>> + Send>>;
#[cfg(target_arch = "wasm32")]
pub(crate) type PendingErrors = Pin<Box<dyn Future<Output = Option<wgpu::Error>>>>;

/// Runs `work` inside out-of-memory, validation and internal error scopes.
///
/// Returns `Err` when an error is already known; `Ok(Some(pending))` when the backend
/// reports later (the web); `Ok(None)` when the work was clean.
pub(crate) fn run_scoped<T>(
    device: &wgpu::Device,
    work: impl FnOnce() -> T,
) -> Result<(T, Option<PendingErrors>), AlibiError> {
    let out_of_memory = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let internal = device.push_error_scope(wgpu::ErrorFilter::Internal);
    let value = work();
    // Scopes pop in reverse order of their push.
    let internal = internal.pop();
    let validation = validation.pop();
    let out_of_memory = out_of_memory.pop();
    let mut errors: PendingErrors = Box::pin(async move {
        let internal = internal.await;
        let validation = validation.await;
        let out_of_memory = out_of_memory.await;
        out_of_memory.or(validation).or(internal)
    });
    match errors
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(None) => Ok((value, None)),
        Poll::Ready(Some(error)) => Err(gpu_error(error)),
        Poll::Pending => Ok((value, Some(errors))),
    }
}

pub(crate) fn gpu_error(error: wgpu::Error) -> AlibiError {
    match error {
        wgpu::Error::OutOfMemory { .. } => AlibiError::Gpu(format!("out of memory: {error}")),
        other => AlibiError::Gpu(other.to_string()),
    }
}
