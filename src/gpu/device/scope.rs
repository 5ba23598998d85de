//! Turning wgpu's error scopes into `Result`s, so no device error reaches wgpu's default
//! handler (which panics) and none is silently dropped; out-of-memory becomes
//! [`AlibiError::OutOfMemory`], which an engine can act on.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use crate::error::{AlibiError, Memory, Result};

/// The outcome of a closed error scope. On native backends it is known at once; on the web
/// it arrives later, so it is kept with the call whose work it was ([`CallErrors`]).
#[cfg(not(target_arch = "wasm32"))]
type PendingErrors = Pin<Box<dyn Future<Output = Option<Failure>> + Send>>;
#[cfg(target_arch = "wasm32")]
type PendingErrors = Pin<Box<dyn Future<Output = Option<Failure>>>>;

/// An error of some GPU work, kept so that every later read of the work's results can
/// report it again.
#[derive(Clone, Debug)]
pub(crate) struct Failure {
    work: Work,
    error: Arc<wgpu::Error>,
}

impl Failure {
    pub fn to_error(&self) -> AlibiError {
        self.work.error_arc(self.error.clone())
    }
}

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
        self.error_arc(Arc::new(error))
    }

    fn error_arc(self, error: Arc<wgpu::Error>) -> AlibiError {
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

/// The errors of one call's GPU work: the scopes that have not answered yet (on the web),
/// and once one has, the failure. It travels with what the call produced (the cache entry,
/// its views), so that a failure is reported by the reads of that result and of nothing
/// else, and a failed cache entry is evicted rather than served again.
///
/// The default record is of no work (views of the caller's own buffers, empty views): it
/// allocates nothing, so a cache hit stays free of allocations.
#[derive(Clone, Default)]
pub(crate) struct CallErrors {
    state: Option<Arc<Mutex<CallState>>>,
}

#[derive(Default)]
struct CallState {
    pending: Vec<PendingErrors>,
    failed: Option<Failure>,
    /// Tasks waiting in [`CallErrors::settle`]: the scopes' futures wake only the last task
    /// that polled them, so the task that sees progress wakes the others.
    waiting: Vec<Waker>,
}

impl std::fmt::Debug for CallErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Some(state) = self.lock() else {
            return f.write_str("CallErrors(none)");
        };
        f.debug_struct("CallErrors")
            .field("pending", &state.pending.len())
            .field("failed", &state.failed)
            .finish()
    }
}

impl CallErrors {
    /// A record for a call's work.
    pub fn new() -> Self {
        Self {
            state: Some(Arc::default()),
        }
    }

    fn push(&self, errors: PendingErrors) {
        if let Some(mut state) = self.lock() {
            state.pending.push(errors);
        }
    }

    /// The call's failure if it is known now, without waiting: polls the pending scopes
    /// once.
    pub fn failure_now(&self) -> Option<AlibiError> {
        let mut cx = Context::from_waker(Waker::noop());
        let mut state = self.lock()?;
        state.advance(&mut cx);
        state.failed.as_ref().map(Failure::to_error)
    }

    /// Whether every scope of the call has answered, none with a failure, now: polls the
    /// pending scopes once.
    pub fn succeeded_now(&self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        let Some(mut state) = self.lock() else {
            return true;
        };
        state.advance(&mut cx);
        state.failed.is_none() && state.pending.is_empty()
    }

    /// Waits for every scope of the call: its failure, if any.
    pub async fn settle(&self) -> Result<()> {
        std::future::poll_fn(|cx| {
            let Some(mut state) = self.lock() else {
                return Poll::Ready(Ok(()));
            };
            let progressed = state.advance(cx);
            let done = state.failed.is_some() || state.pending.is_empty();
            if progressed || done {
                for waker in state.waiting.drain(..) {
                    waker.wake();
                }
            }
            if done {
                return Poll::Ready(match &state.failed {
                    Some(failure) => Err(failure.to_error()),
                    None => Ok(()),
                });
            }
            if !state.waiting.iter().any(|w| w.will_wake(cx.waker())) {
                state.waiting.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }

    fn lock(&self) -> Option<std::sync::MutexGuard<'_, CallState>> {
        let state = self.state.as_ref()?;
        Some(state.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl CallState {
    /// Polls the pending scopes: the answered ones leave, the first failure is kept (then
    /// nothing more needs waiting for). Whether any answered.
    fn advance(&mut self, cx: &mut Context<'_>) -> bool {
        let before = self.pending.len();
        let mut failed = None;
        self.pending
            .retain_mut(|errors| match errors.as_mut().poll(cx) {
                Poll::Ready(outcome) => {
                    failed = failed.take().or(outcome);
                    false
                }
                Poll::Pending => true,
            });
        if self.failed.is_none() {
            self.failed = failed;
        }
        if self.failed.is_some() {
            self.pending.clear();
        }
        self.pending.len() != before
    }
}

/// Runs GPU work inside error scopes, and keeps the outcomes that answer later (the web)
/// with the call the work belongs to ([`CallScope`]).
pub(crate) struct DeferredErrors {
    /// The call recording work now, on this module.
    current: Mutex<Option<CallErrors>>,
    /// Work outside any call (building the module): every read waits for it, since every
    /// result depends on it.
    untied: CallErrors,
}

/// While alive, the work [`DeferredErrors::run`] runs belongs to its call: the errors that
/// answer later go to [`record`](Self::record). Dropping it ends the call (the previous
/// one, if calls nest, resumes).
pub(crate) struct CallScope<'a> {
    errors: &'a DeferredErrors,
    record: CallErrors,
    previous: Option<CallErrors>,
}

impl CallScope<'_> {
    /// The call's errors, to attach to what it produced.
    pub fn record(&self) -> CallErrors {
        self.record.clone()
    }
}

impl Drop for CallScope<'_> {
    fn drop(&mut self) {
        *self.errors.lock() = self.previous.take();
    }
}

impl Default for DeferredErrors {
    fn default() -> Self {
        Self {
            current: Mutex::default(),
            untied: CallErrors::new(),
        }
    }
}

impl DeferredErrors {
    /// Starts a call: the work run until the returned scope is dropped is its work. A call
    /// must not hold its scope across an `.await` (a scope is synchronous work).
    pub fn begin_call(&self) -> CallScope<'_> {
        let record = CallErrors::new();
        let previous = self.lock().replace(record.clone());
        CallScope {
            errors: self,
            record,
            previous,
        }
    }

    /// Runs `work` inside out-of-memory, validation and internal error scopes: `Err` when an
    /// error is already known; otherwise the value, and on the web the scopes' outcome is
    /// kept with the current call ([`begin_call`](Self::begin_call)), or for work outside any
    /// call with the module's own work ([`settle_untied`](Self::settle_untied)).
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
                .map(|error| Failure {
                    work: what,
                    error: Arc::new(error),
                })
        });
        match errors
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(None) => Ok(value),
            Poll::Ready(Some(failure)) => Err(failure.to_error()),
            Poll::Pending => {
                self.keep(errors);
                Ok(value)
            }
        }
    }

    /// Keeps scopes that have not answered with the current call, or the module's own work.
    fn keep(&self, errors: PendingErrors) {
        match &*self.lock() {
            Some(call) => call.push(errors),
            None => self.untied.push(errors),
        }
    }

    /// Waits for the work done outside any call (building the module's pipelines and
    /// uniforms), which every result depends on.
    pub async fn settle_untied(&self) -> Result<()> {
        self.untied.settle().await
    }

    /// The record of the work done outside any call, for results that outlive the module's
    /// borrow (a dense tensor checks it after the module is gone).
    pub fn untied(&self) -> CallErrors {
        self.untied.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<CallErrors>> {
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests;
