//! The one error type of the crate.
//!
//! Each message says what went wrong once, with the offending value and the limit; the
//! error that caused it, when there is one, is its [`source`](std::error::Error::source),
//! never flattened into the message. Print the chain (`alibi` does) for the whole story.

use std::fmt;
use std::sync::Arc;

/// Everything that can go wrong, each variant naming the offending value and the limit.
///
/// On native targets it is `Send + Sync + 'static`, so it crosses threads and fits in
/// `Box<dyn Error + Send + Sync>`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AlibiError {
    /// `heads` was 0.
    #[error("heads must be at least 1, got 0")]
    ZeroHeads,

    /// `total_heads` is smaller than `heads` (x-transformers silently crops; this crate refuses).
    #[error("total_heads ({total_heads}) must be at least heads ({heads}); pass total_heads >= heads or leave it unset")]
    TotalHeadsBelowHeads {
        /// The number of heads with a slope.
        heads: usize,
        /// The requested number of output heads.
        total_heads: usize,
    },

    /// More heads than the slope uniform holds (`total_heads` is bounded by memory only).
    #[error("{what} ({count}) exceeds the supported maximum of {limit} heads")]
    TooManyHeads {
        /// Which count was too large (`heads`).
        what: &'static str,
        /// The count given.
        count: usize,
        /// The largest supported count.
        limit: usize,
    },

    /// A custom slope list whose length is not `heads`.
    #[error("{given} custom slopes given for {heads} heads; pass exactly one slope per head")]
    SlopeCount {
        /// Number of heads.
        heads: usize,
        /// Number of slopes given.
        given: usize,
    },

    /// A slope that is NaN, infinite, or too small for f32 to hold as a normal number
    /// (GPUs may flush subnormals to zero, which would silently change the bias).
    #[error("slope of head {head} is {value}, which is {reason}; every slope must be a finite, normal f32 or zero")]
    InvalidSlope {
        /// The head whose slope is invalid.
        head: usize,
        /// The slope as given (or as computed from `max_bias`), in f64.
        value: f64,
        /// Why it was refused.
        reason: &'static str,
    },

    /// `max_bias` must be finite and positive.
    #[error("max_bias must be finite and > 0, got {0}")]
    InvalidMaxBias(f64),

    /// A sequence length whose distances would not be exact in f32.
    #[error("{what} = {value} exceeds {limit}: distances above 2^24 are not exact in f32")]
    SequenceTooLong {
        /// `i` or `j`.
        what: &'static str,
        /// The length given.
        value: usize,
        /// The largest supported length (2^24).
        limit: usize,
    },

    /// The tensor needs more memory than one buffer of this device may have (or than the
    /// kernel's u32 vec4 index reaches), or more bytes than `u64` counts.
    #[error("a [{heads}, {i}, {j}] bias needs {bytes} bytes, above the limit of {limit} bytes ({limit_name}); request fewer heads or a shorter sequence, or raise the device's limits")]
    TooLarge {
        /// Heads of the tensor.
        heads: usize,
        /// Rows.
        i: usize,
        /// Columns.
        j: usize,
        /// Bytes needed (`u64::MAX` when the count overflows).
        bytes: u64,
        /// The limit that was exceeded.
        limit: u64,
        /// Which limit: `max_buffer_size`, or the kernel's 64 GiB index range.
        limit_name: &'static str,
    },

    /// A single row of the bias does not fit in one storage binding window.
    #[error("one row of {bytes} bytes (j = {j}, padded to a multiple of 4) exceeds the {limit} bytes one storage binding can hold here (max_storage_buffer_binding_size less offset alignment); request a shorter j")]
    RowTooLarge {
        /// Columns.
        j: usize,
        /// Bytes of one row.
        bytes: u64,
        /// The device limit.
        limit: u64,
    },

    /// A caller's buffer cannot hold the tensor: a dense bias at its byte offset
    /// (`encode_into`, `write_into`), or attention scores (`add_to_scores`).
    #[error("the target buffer has {size} bytes but {what} [{heads}, {i}, {j}] needs {needed}")]
    TargetTooSmall {
        /// What the buffer was for: "the dense bias after its byte offset (its bytes rounded
        /// up to a word)" or "the scores [batch x total_heads, i, j]".
        what: &'static str,
        /// Heads of the tensor.
        heads: usize,
        /// Rows.
        i: usize,
        /// Columns.
        j: usize,
        /// Bytes needed.
        needed: u64,
        /// Size of the buffer given.
        size: u64,
    },

    /// A caller's target buffer lacks a usage the call needs.
    #[error("the target buffer's usage {usage:?} lacks {needed:?}; create it with that usage")]
    TargetUsage {
        /// The buffer's usage flags.
        usage: wgpu::BufferUsages,
        /// The flag it needs: `STORAGE` for the kernel, `MAP_WRITE` for a host write.
        needed: wgpu::BufferUsages,
    },

    /// A byte offset into a caller's buffer that the write cannot start at: dense tensors
    /// start on a word (4 bytes; 8, the mapping alignment, for `write_into`).
    #[error("the byte offset {offset} is not a multiple of {alignment}; place the tensor at a multiple of {alignment} bytes")]
    MisalignedOffset {
        /// The offset given.
        offset: u64,
        /// What it must be a multiple of.
        alignment: u64,
    },

    /// A caller's buffer the module's device cannot use: a buffer of another device of the
    /// same wgpu instance (or one destroyed), found by binding it on the module's device
    /// inside an error scope. Nothing was recorded. (wgpu cannot tell a buffer of another
    /// instance apart: do not pass one.)
    #[error("the target buffer cannot be used on the module's device; create it on that device (is it another device's, or destroyed?)")]
    ForeignTarget {
        /// wgpu's answer to binding it on the module's device.
        #[source]
        source: Arc<wgpu::Error>,
    },

    /// The configured [`GenerationPath`](crate::GenerationPath) cannot run on this device.
    #[error("generation path {path:?} is unavailable: {reason}")]
    GenerationPathUnavailable {
        /// The path asked for.
        path: crate::generation::GenerationPath,
        /// Why it cannot run here.
        reason: &'static str,
    },

    /// An attention call the kernel cannot take: its shape, scale, offsets or buffers
    /// ([`AttentionError`](crate::AttentionError) names the value and the rule).
    #[error(transparent)]
    Attention(#[from] crate::attention::AttentionError),

    /// Custom positions whose lengths do not fit together (a batched side whose length is
    /// not a multiple of its batch, two batched sides of different batches), or more of
    /// them than one storage binding of the device holds.
    #[error("{what}")]
    PositionsMismatch {
        /// What does not fit, with the lengths and batches.
        what: String,
    },

    /// A custom position too far from zero for its distances to be exact f32 values.
    #[error("{side} position {index} is {value}, outside -{limit}..={limit} (distances up to 2^24 are exact in f32)")]
    PositionOutOfRange {
        /// `query` or `key`.
        side: &'static str,
        /// Its index among the values given.
        index: usize,
        /// The value.
        value: i32,
        /// The largest magnitude allowed, 2^23.
        limit: i32,
    },

    /// A variant that cannot be given as asked, refused rather than silently given in
    /// another form: f16 scores (`add_to_scores`) on a device without
    /// `wgpu::Features::SHADER_F16`, or an f16 readback of an f32 view (which would round).
    #[error("{what} are unsupported here: {reason}")]
    Unsupported {
        /// What was asked for.
        what: &'static str,
        /// Why this device cannot give it.
        reason: &'static str,
    },

    /// Memory ran out: the device could not create a buffer, or the host could not
    /// allocate a vector. An engine can lower the cache budget
    /// ([`set_cache_budget`](crate::AlibiPositionalBias::set_cache_budget)) and retry.
    #[error("out of {memory} memory: could not allocate {what}{}; lower the cache budget or request a smaller tensor", in_bytes(*.bytes))]
    OutOfMemory {
        /// Device or host memory.
        memory: Memory,
        /// What the memory was for.
        what: &'static str,
        /// Bytes requested when known (`u128`: a host request may not fit `u64`).
        bytes: Option<u128>,
        /// wgpu's out-of-memory error, for device memory.
        #[source]
        source: Option<Arc<wgpu::Error>>,
    },

    /// No adapter matched the request.
    #[error("no GPU adapter found for backends {backends:?}; install a Vulkan or GL driver (e.g. Mesa's lavapipe), or use the CPU path")]
    NoAdapter {
        /// The backends searched.
        backends: wgpu::Backends,
        /// wgpu's answer.
        #[source]
        source: wgpu::RequestAdapterError,
    },

    /// The adapter refused to open a device.
    #[error("the adapter {adapter:?} could not open a device")]
    RequestDevice {
        /// The adapter's name.
        adapter: String,
        /// wgpu's answer.
        #[source]
        source: wgpu::RequestDeviceError,
    },

    /// The device was lost (driver reset, GPU removed, or `destroy()`); every later call of
    /// a module on it returns this. Build a new module on a new device.
    #[error("the GPU device was lost ({reason:?}){}", colon_then(message))]
    DeviceLost {
        /// wgpu's reason.
        reason: wgpu::DeviceLostReason,
        /// The driver's message, often empty.
        message: String,
    },

    /// The GPU reported a validation or internal error while working for this crate (or,
    /// on a device this crate opened, outside any error scope: `operation` says so).
    #[error("the GPU rejected {operation}")]
    Gpu {
        /// What the crate was doing.
        operation: &'static str,
        /// wgpu's error.
        #[source]
        source: Arc<wgpu::Error>,
    },

    /// Mapping a buffer (for readback, or for a host-mapped generation) failed.
    #[error("mapping a buffer for {operation} failed")]
    Map {
        /// What the mapping was for.
        operation: &'static str,
        /// Why it failed.
        #[source]
        source: MapError,
    },

    /// Waiting for the device failed.
    #[error("waiting for the device failed")]
    Poll(#[source] wgpu::PollError),
}

/// Which memory ran out, in [`AlibiError::OutOfMemory`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Memory {
    /// The device's (a buffer).
    Device,
    /// The host's (a vector).
    Host,
}

impl fmt::Display for Memory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Memory::Device => "device",
            Memory::Host => "host",
        })
    }
}

/// Why a mapping failed, in [`AlibiError::Map`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MapError {
    /// `map_async` reported failure.
    #[error(transparent)]
    Async(#[from] wgpu::BufferAsyncError),
    /// The mapped range could not be viewed.
    #[error(transparent)]
    Range(#[from] wgpu::MapRangeError),
    /// wgpu dropped the callback without calling it (the device went away).
    #[error("the map callback was dropped before it ran")]
    CallbackDropped,
}

fn in_bytes(bytes: Option<u128>) -> String {
    bytes.map_or_else(String::new, |bytes| format!(" ({bytes} bytes)"))
}

fn colon_then(message: &str) -> String {
    if message.trim().is_empty() {
        String::new()
    } else {
        format!(": {}", message.trim())
    }
}

impl AlibiError {
    /// The error for a host vector of `values` f32 values (the product overflowing `usize`
    /// included) that could not be allocated.
    pub(crate) fn host_out_of_memory(values: u128, what: &'static str) -> Self {
        Self::host_out_of_memory_bytes(values.saturating_mul(4), what)
    }

    /// [`AlibiError::OutOfMemory`] of the host, for `bytes`.
    pub(crate) fn host_out_of_memory_bytes(bytes: u128, what: &'static str) -> Self {
        AlibiError::OutOfMemory {
            memory: Memory::Host,
            what,
            bytes: Some(bytes),
            source: None,
        }
    }
}

/// The message of `error`, then the message of each of its sources, joined with ": ", each
/// folded onto one line: an error as one line for a log, a terminal or JavaScript.
///
/// A source whose text the line already contains is left out: wgpu's error descriptions
/// repeat their own sources' text, and a message may quote its cause. What remains says
/// each thing once, outermost first, as in "cannot write out/call-0-3x5.npy: No space left
/// on device (os error 28)".
///
/// ```
/// let error = alibi_wgpu::validate(0, 1, 1, 1).unwrap_err();
/// assert_eq!(alibi_wgpu::error_chain(&error), "heads must be at least 1, got 0");
/// ```
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut line = fold(&error.to_string());
    let mut next = error.source();
    while let Some(source) = next {
        let text = fold(&source.to_string());
        if !text.is_empty() && !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        next = source.source();
    }
    line
}

/// `text` on one line: each line trimmed, blank ones dropped, the rest joined by spaces.
fn fold(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    lines.join(" ")
}

/// Result alias of the crate.
pub type Result<T, E = AlibiError> = std::result::Result<T, E>;

#[cfg(not(target_arch = "wasm32"))]
const _: () = {
    const fn shareable<T: Send + Sync + 'static>() {}
    shareable::<AlibiError>();
};

#[cfg(test)]
mod tests;
