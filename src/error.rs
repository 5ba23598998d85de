//! The one error type of the crate.

/// Everything that can go wrong, each variant naming the offending value and the limit.
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

    /// The tensor needs more memory than one buffer of this device may have.
    #[error("a [{heads}, {i}, {j}] bias needs {bytes} bytes, above this device's max_buffer_size of {limit} bytes; request fewer heads or a shorter sequence, or raise the device's limits")]
    TooLarge {
        /// Heads of the tensor.
        heads: usize,
        /// Rows.
        i: usize,
        /// Columns.
        j: usize,
        /// Bytes needed.
        bytes: u64,
        /// The device limit that was exceeded.
        limit: u64,
    },

    /// The host could not allocate the output vector.
    #[error("could not allocate {bytes} bytes of host memory for a [{heads}, {i}, {j}] bias")]
    HostAlloc {
        /// Heads of the tensor.
        heads: usize,
        /// Rows.
        i: usize,
        /// Columns.
        j: usize,
        /// Bytes requested.
        bytes: u128,
    },

    /// A single row of the bias does not fit in one storage binding window.
    #[error("one row of {bytes} bytes (j = {j}, padded to a multiple of 4) exceeds the {limit} bytes one storage binding can hold here (max_storage_buffer_binding_size, or max_binding_window_bytes, less offset alignment); request a shorter j")]
    RowTooLarge {
        /// Columns.
        j: usize,
        /// Bytes of one row.
        bytes: u64,
        /// The device limit.
        limit: u64,
    },

    /// A caller's target buffer cannot hold the bias.
    #[error("the target buffer has {size} bytes but a [{heads}, {i}, {j}] bias needs {needed} (rows padded to a multiple of 4 columns)")]
    TargetTooSmall {
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
    #[error(
        "the target buffer's usage {usage} lacks {needed}; create it with BufferUsages::{needed}"
    )]
    TargetUsage {
        /// The buffer's usage flags.
        usage: String,
        /// The flag it needs: `STORAGE` for the kernel, `MAP_WRITE` for a host write.
        needed: &'static str,
    },

    /// The configured [`GenerationPath`](crate::GenerationPath) cannot run on this device.
    #[error("generation path {path:?} is unavailable: {reason}")]
    GenerationPathUnavailable {
        /// The path asked for.
        path: crate::GenerationPath,
        /// Why it cannot run here.
        reason: &'static str,
    },

    /// No adapter matched the request.
    #[error("no GPU adapter found ({0}); install a Vulkan or GL driver (e.g. Mesa's lavapipe), or use the CPU reference")]
    NoAdapter(String),

    /// The adapter refused to open a device.
    #[error("could not open a device: {0}")]
    RequestDevice(String),

    /// The device was lost (driver reset, GPU removed, or destroyed).
    #[error("the GPU device was lost: {0}")]
    DeviceLost(String),

    /// The GPU reported an error (validation, out of memory, internal) while working for this crate.
    #[error("GPU error: {0}")]
    Gpu(String),

    /// Mapping a buffer (for readback, or for a host-mapped generation) failed.
    #[error("mapping a buffer failed: {0}")]
    Map(String),
}

/// Result alias of the crate.
pub type Result<T, E = AlibiError> = std::result::Result<T, E>;
