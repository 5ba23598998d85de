//! Turning wgpu's error scopes into `Result`s, so no device error reaches wgpu's default
//! handler (which panics) and none is silently dropped; out-of-memory becomes
//! [`AlibiError::OutOfMemory`], which an engine can act on.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use crate::error::{AlibiError, Memory, Result};

/// The outcome of a closed error scope. On native backends it is known at once; on the web
/// it arrives later, so it is kept and awaited before the next readback.
#[cfg(not(target_arch = "wasm32"))]
type PendingErrors = Pin<Box<dyn Future<Output = Option<AlibiError>> + Send>>;
#[cfg(target_arch = "wasm32")]
type PendingErrors = Pin<Box<dyn Future<Output = Option<AlibiError>>>>;

/// What a piece of GPU work was, for its errors: the operation, and for a buffer creation
/// the bytes asked for (so out-of-memory says how much).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Work {
    pub operation: &'static str,
    pub bytes: Option<u64>,
}

impl Work {
    pub const fn named(operation: &'static str) -> Self {
        Self {
            operation,
            bytes: None,
        }
    }

    pub const fn allocating(operation: &'static str, bytes: u64) -> Self {
        Self {
            operation,
            bytes: Some(bytes),
        }
    }

    /// The crate's error for wgpu's `error` during this work.
    pub fn error(self, error: wgpu::Error) -> AlibiError {
        let error = Arc::new(error);
        match &*error {
            wgpu::Error::OutOfMemory { .. } => AlibiError::OutOfMemory {
                memory: Memory::Device,
                what: self.operation,
                bytes: self.bytes.map(u128::from),
                source: Some(error),
            },
            _ => AlibiError::Gpu {
                operation: self.operation,
                source: error,
            },
        }
    }
}

/// Errors of GPU work whose scopes answer later (the web), awaited before the next readback.
#[derive(Default)]
pub(crate) struct DeferredErrors {
    pending: Mutex<Vec<PendingErrors>>,
}

impl DeferredErrors {
    /// Runs `work` inside out-of-memory, validation and internal error scopes: `Err` when an
    /// error is already known; otherwise the value, and on the web the scopes' outcome is
    /// kept for [`settle`](Self::settle).
    pub fn run<T>(&self, device: &wgpu::Device, what: Work, work: impl FnOnce() -> T) -> Result<T> {
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
            out_of_memory
                .or(validation)
                .or(internal)
                .map(|e| what.error(e))
        });
        match errors
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(None) => Ok(value),
            Poll::Ready(Some(error)) => Err(error),
            Poll::Pending => {
                self.lock().push(errors);
                Ok(value)
            }
        }
    }

    /// The first error of earlier work whose scopes had not answered yet, if any.
    pub async fn settle(&self) -> Result<()> {
        let pending = std::mem::take(&mut *self.lock());
        for errors in pending {
            if let Some(error) = errors.await {
                return Err(error);
            }
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<PendingErrors>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("driver says no")]
    struct DriverError;

    #[test]
    fn out_of_memory_is_typed_with_its_bytes_and_source() {
        let error = Work::allocating("the bias buffer", 1 << 30).error(wgpu::Error::OutOfMemory {
            source: Box::new(DriverError),
        });
        match &error {
            AlibiError::OutOfMemory {
                memory: Memory::Device,
                what: "the bias buffer",
                bytes,
                source: Some(_),
            } => assert_eq!(*bytes, Some(1 << 30)),
            other => panic!("{other:?}"),
        }
        let source = std::error::Error::source(&error).expect("a source");
        assert!(matches!(
            source.downcast_ref::<Arc<wgpu::Error>>().map(|e| &**e),
            Some(wgpu::Error::OutOfMemory { .. })
        ));
    }

    #[test]
    fn out_of_memory_outside_an_allocation_names_no_byte_count() {
        let error = Work::named("the bias generation").error(wgpu::Error::OutOfMemory {
            source: Box::new(DriverError),
        });
        assert!(matches!(error, AlibiError::OutOfMemory { bytes: None, .. }));
        assert_eq!(
            error.to_string(),
            "out of device memory: could not allocate the bias generation; lower the cache \
             budget or request a smaller tensor"
        );
    }

    #[test]
    fn validation_errors_keep_wgpus_error_as_the_source() {
        let error = Work::named("generating the bias").error(wgpu::Error::Validation {
            source: Box::new(DriverError),
            description: "Validation Error: bad binding".into(),
        });
        assert_eq!(error.to_string(), "the GPU rejected generating the bias");
        let source = std::error::Error::source(&error).expect("a source");
        assert_eq!(source.to_string(), "Validation Error: bad binding");
    }
}
