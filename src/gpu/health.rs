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

/// What went wrong with a device, recorded once and then reported by every call.
#[derive(Debug)]
enum Problem {
    Lost {
        reason: wgpu::DeviceLostReason,
        message: String,
    },
    /// A GPU error outside any of this crate's error scopes (the caller's own work on a
    /// device this crate opened), which would otherwise reach wgpu's panicking handler.
    Uncaptured(Arc<wgpu::Error>),
}

/// The health of one device, shared by every module on it.
#[derive(Clone, Debug, Default)]
pub(crate) struct DeviceHealth {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    /// Set once a problem is recorded: checking a healthy device is one atomic load, which
    /// keeps a cache hit at tens of nanoseconds.
    troubled: AtomicBool,
    problem: Mutex<Option<Problem>>,
}

impl DeviceHealth {
    /// Installs the device-lost callback and the uncaptured-error handler on a device this
    /// crate opened (replacing wgpu's default handler, which panics).
    pub fn watch(device: &wgpu::Device) -> Self {
        let health = Self::default();
        let lost = health.clone();
        device.set_device_lost_callback(move |reason, message| lost.report_lost(reason, message));
        let uncaptured = health.clone();
        device.on_uncaptured_error(Arc::new(move |error| {
            uncaptured.record(Problem::Uncaptured(Arc::new(error)));
        }));
        health
    }

    fn report_lost(&self, reason: wgpu::DeviceLostReason, message: String) {
        // A loss outranks an earlier uncaptured error: from now on, nothing works.
        let mut problem = self.lock();
        if !matches!(*problem, Some(Problem::Lost { .. })) {
            *problem = Some(Problem::Lost { reason, message });
        }
        self.shared.troubled.store(true, Ordering::Release);
    }

    fn record(&self, new: Problem) {
        self.lock().get_or_insert(new);
        self.shared.troubled.store(true, Ordering::Release);
    }

    /// `Err` once the device is lost, the same error for every later call; on a device this
    /// crate opened, also an error that escaped every scope, reported once, by the next call.
    pub fn check(&self) -> Result<()> {
        if !self.shared.troubled.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut problem = self.lock();
        match problem.take() {
            None => Ok(()),
            Some(Problem::Lost { reason, message }) => {
                let lost = AlibiError::DeviceLost {
                    reason,
                    message: message.clone(),
                };
                *problem = Some(Problem::Lost { reason, message });
                Err(lost)
            }
            Some(Problem::Uncaptured(error)) => {
                // Cleared under the lock, so an error recorded meanwhile sets it again.
                self.shared.troubled.store(false, Ordering::Release);
                Err(AlibiError::Gpu {
                    operation: "work outside this crate's error scopes on its device",
                    source: error,
                })
            }
        }
    }

    /// `error`, unless the device was lost meanwhile: then the loss, which is what the
    /// failure really was (wgpu's errors after a loss name invalid objects, not the loss).
    pub fn explain(&self, error: AlibiError) -> AlibiError {
        match &*self.lock() {
            Some(Problem::Lost { reason, message }) => AlibiError::DeviceLost {
                reason: *reason,
                message: message.clone(),
            },
            _ => error,
        }
    }

    pub fn reporter(&self) -> DeviceLossReporter {
        DeviceLossReporter {
            health: self.clone(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Problem>> {
        self.shared
            .problem
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
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
    health: DeviceHealth,
}

impl DeviceLossReporter {
    /// Records the loss, as wgpu's device-lost callback gives it.
    pub fn report(&self, reason: wgpu::DeviceLostReason, message: &str) {
        self.health.report_lost(reason, message.to_owned());
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
    fn a_loss_outranks_an_uncaptured_error() {
        let health = DeviceHealth::default();
        health.record(Problem::Uncaptured(Arc::new(wgpu::Error::Internal {
            source: Box::new(std::fmt::Error),
            description: "internal".into(),
        })));
        assert!(matches!(health.check(), Err(AlibiError::Gpu { .. })));
        assert!(health.check().is_ok(), "reported once, by the next call");
        health.record(Problem::Uncaptured(Arc::new(wgpu::Error::Internal {
            source: Box::new(std::fmt::Error),
            description: "internal".into(),
        })));
        health.report_lost(wgpu::DeviceLostReason::Unknown, String::new());
        match health.check() {
            Err(error @ AlibiError::DeviceLost { .. }) => {
                assert_eq!(error.to_string(), "the GPU device was lost (Unknown)");
            }
            other => panic!("{other:?}"),
        }
    }
}
