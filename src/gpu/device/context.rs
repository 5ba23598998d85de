//! What every GPU step of a module needs: the device and queue, the limits its plans
//! respect, its error scopes, and the health of its device.

use crate::dtype::BiasDtype;
use crate::error::{AlibiError, Result};
use crate::gpu::device::health::DeviceHealth;
use crate::gpu::device::limits::PlanLimits;
use crate::gpu::device::scope::{DeferredErrors, Work};
use crate::pool::ByteSize;

pub(crate) struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub limits: PlanLimits,
    /// Whether the device runs on the host's CPU (lavapipe, llvmpipe, SwiftShader), read
    /// once: the plans that differ there ask it on every call.
    pub cpu_adapter: bool,
    /// The device's backend, read once (the cache's copies choose by it on CPU adapters).
    pub backend: wgpu::Backend,
    pub errors: DeferredErrors,
    pub health: DeviceHealth,
}

impl GpuContext {
    /// Polls the device, so that wgpu delivers a loss it has not reported yet, then checks
    /// its health: every call that does GPU work starts here.
    pub fn ensure_alive(&self) -> Result<()> {
        // A poll error means the device is gone or busy; the health check says which.
        let _ = self.device.poll(wgpu::PollType::Poll);
        self.health.check()
    }

    /// `error`, or the device's loss when that is what it really was: polls first, so that
    /// wgpu delivers a loss it has not reported yet.
    pub fn explain(&self, error: AlibiError) -> AlibiError {
        let _ = self.device.poll(wgpu::PollType::Poll);
        self.health.explain(error)
    }

    /// Runs `work` inside error scopes ([`DeferredErrors::run`]); a failure on a device lost
    /// meanwhile is reported as the loss.
    pub fn run<T>(&self, what: Work, work: impl FnOnce() -> T) -> Result<T> {
        self.errors
            .run(&self.device, what, work)
            .map_err(|error| self.explain(error))
    }

    /// Whether the device computes in f16 (`SHADER_F16`); without it f16 biases are
    /// rounded in integer arithmetic and stored in words (`shaders/common/f16_packed.wgsl`).
    pub fn has_f16(&self) -> bool {
        self.device.features().contains(wgpu::Features::SHADER_F16)
    }

    /// Refuses `what` (f16 biases, f16 scores) in `dtype` when the device cannot compute it:
    /// f16 needs `SHADER_F16`.
    pub fn require(&self, dtype: BiasDtype, what: &'static str) -> Result<()> {
        match dtype {
            BiasDtype::F16 if !self.has_f16() => Err(AlibiError::Unsupported {
                what,
                reason: "the device was created without wgpu::Features::SHADER_F16",
            }),
            _ => Ok(()),
        }
    }

    /// A buffer of `bytes` for `what`, out-of-memory reported as such.
    pub fn create_buffer(
        &self,
        what: &'static str,
        bytes: u64,
        usage: wgpu::BufferUsages,
        mapped_at_creation: bool,
    ) -> Result<wgpu::Buffer> {
        self.run(Work::allocating(what, bytes), || {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(what),
                size: bytes,
                usage,
                mapped_at_creation,
            })
        })
    }
}

impl ByteSize for wgpu::Buffer {
    fn bytes(&self) -> u64 {
        self.size()
    }
}
