//! Whether a module's device still works: device loss, and on devices this crate opened,
//! errors that escaped every error scope.
//!
//! wgpu reports a lost device through one callback per device, which it calls from its next
//! poll of the device (after `destroy()`, once the queue is empty), and after the loss it
//! hands out invalid objects without reporting errors for them, so only that callback can
//! tell. Modules therefore poll before any GPU work, and before a cache hit when a
//! millisecond has passed since their last poll ([`LossPoll`]).
//! On a device this crate opened ([`open_device`](crate::open_device)) the crate installs
//! it; on an engine's own device the engine owns the callback and forwards the loss through
//! a [`DeviceLossReporter`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::{AlibiError, Result};
use crate::gpu::device::scope::Work;

/// The health of one device, shared by every module on it.
///
/// The loss and the error that escaped every scope live apart: wgpu requires the device-lost
/// callback to be `Send` on every target, and a `wgpu::Error` is not on the web.
#[derive(Clone, Debug, Default)]
pub(crate) struct DeviceHealth {
    loss: Arc<Loss>,
    uncaptured: Arc<Uncaptured>,
}

/// The loss, once reported: it stays.
#[derive(Debug, Default)]
struct Loss {
    /// Set once the loss is recorded: checking a healthy device is two atomic loads, which
    /// keeps a cache hit at tens of nanoseconds.
    reported: AtomicBool,
    reason_and_message: Mutex<Option<(wgpu::DeviceLostReason, String)>>,
}

/// A GPU error outside any of this crate's error scopes (the caller's own work on a device
/// this crate opened), which would otherwise reach wgpu's panicking handler; reported once.
/// Kept as its kind and description: the handler must be `Send + Sync` on every target,
/// and the error itself is not on the web. The description spells out wgpu's whole chain.
#[derive(Debug, Default)]
struct Uncaptured {
    pending: AtomicBool,
    error: Mutex<Option<(ErrorKind, String)>>,
}

#[derive(Clone, Copy, Debug)]
enum ErrorKind {
    OutOfMemory,
    Validation,
    Internal,
}

/// The description of an uncaptured error, as the source of the error rebuilt from it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Described(String);

impl DeviceHealth {
    /// Installs the device-lost callback and the uncaptured-error handler on a device this
    /// crate opened (replacing wgpu's default handler, which panics).
    pub fn watch(device: &wgpu::Device) -> Self {
        let health = Self::default();
        let loss = health.loss.clone();
        device.set_device_lost_callback(move |reason, message| loss.report(reason, message));
        let uncaptured = health.uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |error| uncaptured.record(error)));
        health
    }

    /// `Err` once the device is lost, the same error for every later call; on a device this
    /// crate opened, also an error that escaped every scope, reported once, by the next call.
    pub fn check(&self) -> Result<()> {
        if let Some(lost) = self.loss.error() {
            return Err(lost);
        }
        match self.uncaptured.take() {
            Some(error) => Err(Work::named("work outside this crate's error scopes").error(error)),
            None => Ok(()),
        }
    }

    /// `error`, unless the device was lost meanwhile: then the loss, which is what the
    /// failure really was (wgpu's errors after a loss name invalid objects, not the loss).
    pub fn explain(&self, error: AlibiError) -> AlibiError {
        self.loss.error().unwrap_or(error)
    }

    pub fn reporter(&self) -> DeviceLossReporter {
        DeviceLossReporter {
            loss: self.loss.clone(),
        }
    }
}

impl Loss {
    fn report(&self, reason: wgpu::DeviceLostReason, message: String) {
        let mut recorded = lock(&self.reason_and_message);
        // The first report stands: a later callback cannot change what calls already said.
        if recorded.is_none() {
            *recorded = Some((reason, message));
        }
        self.reported.store(true, Ordering::Release);
    }

    fn error(&self) -> Option<AlibiError> {
        if !self.reported.load(Ordering::Acquire) {
            return None;
        }
        lock(&self.reason_and_message)
            .as_ref()
            .map(|(reason, message)| AlibiError::DeviceLost {
                reason: *reason,
                message: message.clone(),
            })
    }
}

impl Uncaptured {
    fn record(&self, error: wgpu::Error) {
        let kind = match error {
            wgpu::Error::OutOfMemory { .. } => ErrorKind::OutOfMemory,
            wgpu::Error::Validation { .. } => ErrorKind::Validation,
            wgpu::Error::Internal { .. } => ErrorKind::Internal,
        };
        lock(&self.error).get_or_insert((kind, error.to_string()));
        self.pending.store(true, Ordering::Release);
    }

    /// The error recorded, rebuilt, if any: it is then forgotten.
    fn take(&self) -> Option<wgpu::Error> {
        if !self.pending.load(Ordering::Acquire) {
            return None;
        }
        let mut error = lock(&self.error);
        // Cleared under the lock: an error recorded after this sets it again.
        self.pending.store(false, Ordering::Release);
        let (kind, description) = error.take()?;
        let source = Box::new(Described(description.clone()));
        Some(match kind {
            ErrorKind::OutOfMemory => wgpu::Error::OutOfMemory { source },
            ErrorKind::Validation => wgpu::Error::Validation {
                source,
                description,
            },
            ErrorKind::Internal => wgpu::Error::Internal {
                source,
                description,
            },
        })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Tells modules that their device was lost, for engines that own the device and its
/// (single) device-lost callback: call [`report`](Self::report) from that callback, and
/// every later call of those modules returns [`AlibiError::DeviceLost`] at once.
///
/// ```no_run
/// # fn engine(device: &wgpu::Device, queue: &wgpu::Queue) -> Result<(), alibi_wgpu::AlibiError> {
/// let alibi = alibi_wgpu::AlibiPositionalBias::new(device, queue, 8, None)?;
/// let reporter = alibi.device_loss_reporter();
/// device.set_device_lost_callback(move |reason, message| {
///     reporter.report(reason, &message);
///     // ... the engine's own handling of the loss
/// });
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct DeviceLossReporter {
    loss: Arc<Loss>,
}

impl DeviceLossReporter {
    /// Records the loss, as wgpu's device-lost callback gives it.
    pub fn report(&self, reason: wgpu::DeviceLostReason, message: &str) {
        self.loss.report(reason, message.to_owned());
    }
}

/// When a module polls its device before a cache hit, so that a loss reaches it within a
/// bounded time without a poll on every hit (a hit takes tens of nanoseconds, a poll one to
/// several hundred): once [`LossPoll::INTERVAL`] has passed since its last poll, read on a
/// coarse clock (a few nanoseconds a read, with the kernel tick's resolution, 1 to 4 ms on
/// Linux). On the web the browser delivers the loss by itself.
#[derive(Debug)]
pub(crate) struct LossPoll {
    #[cfg(not(target_arch = "wasm32"))]
    next: coarsetime::Instant,
}

impl LossPoll {
    /// The interval between polls before cache hits; with the clock's resolution, the
    /// longest a hit can go on succeeding after its device was lost is a few milliseconds.
    #[cfg(not(target_arch = "wasm32"))]
    pub const INTERVAL: std::time::Duration = std::time::Duration::from_millis(1);

    pub fn new() -> Self {
        Self {
            #[cfg(not(target_arch = "wasm32"))]
            next: coarsetime::Instant::now_without_cache_update(),
        }
    }

    /// The module has just polled: the next poll is due an interval from now.
    pub fn polled(&mut self) {
        #[cfg(not(target_arch = "wasm32"))]
        {
            self.next = coarsetime::Instant::now_without_cache_update() + Self::interval();
        }
    }

    /// Whether a poll is due now; if so, the next one is due an interval later.
    pub fn due(&mut self) -> bool {
        #[cfg(not(target_arch = "wasm32"))]
        {
            let now = coarsetime::Instant::now_without_cache_update();
            if now >= self.next {
                self.next = now + Self::interval();
                return true;
            }
        }
        false
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn interval() -> coarsetime::Duration {
        coarsetime::Duration::from(Self::INTERVAL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reported_loss_fails_every_later_check_and_explains_errors() {
        let health = DeviceHealth::default();
        assert!(health.check().is_ok());
        let other = || AlibiError::InvalidMaxBias(0.0);
        assert!(matches!(
            health.explain(other()),
            AlibiError::InvalidMaxBias(_)
        ));
        health
            .reporter()
            .report(wgpu::DeviceLostReason::Destroyed, "gone");
        for _ in 0..2 {
            match health.check() {
                Err(error @ AlibiError::DeviceLost { .. }) => {
                    assert_eq!(
                        error.to_string(),
                        "the GPU device was lost (Destroyed): gone"
                    );
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            health.explain(other()),
            AlibiError::DeviceLost { .. }
        ));
    }

    #[test]
    fn polls_are_due_once_per_interval() {
        let mut poll = LossPoll::new();
        // The coarse clock moves by kernel ticks (up to 4 ms): wait well past one.
        let past = LossPoll::INTERVAL + std::time::Duration::from_millis(10);
        assert!(poll.due(), "the first call polls");
        assert!(!poll.due(), "not again at once");
        std::thread::sleep(past);
        assert!(poll.due());
        assert!(!poll.due());
        std::thread::sleep(past);
        poll.polled();
        assert!(!poll.due(), "a poll made elsewhere counts");
    }

    #[test]
    fn an_uncaptured_error_is_reported_once_and_a_loss_outranks_it() {
        let internal = || wgpu::Error::Internal {
            source: Box::new(std::fmt::Error),
            description: "internal".into(),
        };
        let health = DeviceHealth::default();
        health.uncaptured.record(internal());
        assert!(matches!(health.check(), Err(AlibiError::Gpu { .. })));
        assert!(health.check().is_ok(), "reported once, by the next call");
        health.uncaptured.record(internal());
        health
            .loss
            .report(wgpu::DeviceLostReason::Unknown, String::new());
        for _ in 0..2 {
            match health.check() {
                Err(error @ AlibiError::DeviceLost { .. }) => {
                    assert_eq!(error.to_string(), "the GPU device was lost (Unknown)");
                }
                other => panic!("{other:?}"),
            }
        }
        health
            .reporter()
            .report(wgpu::DeviceLostReason::Destroyed, "later");
        assert!(
            matches!(
                health.check(),
                Err(AlibiError::DeviceLost {
                    reason: wgpu::DeviceLostReason::Unknown,
                    ..
                })
            ),
            "the first report stands"
        );
    }
}
