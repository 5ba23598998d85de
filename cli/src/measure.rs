//! Timed GPU primitives shared by `alibi bench` and the criterion benches (which include
//! this file by path), so both measure exactly the same thing.

use std::time::Instant;

use alibi_wgpu::{AlibiError, AlibiPositionalBias, GenerationPath};

/// Blocks until the device has finished all submitted work.
pub fn wait_idle(device: &wgpu::Device) -> Result<(), AlibiError> {
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .map(|_| ())
        .map_err(AlibiError::Poll)
}

/// The bytes of `buffer` (which needs `COPY_SRC`), read back through a staging buffer;
/// `None` when the copy or the mapping fails.
pub fn read_buffer(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    buffer: &wgpu::Buffer,
) -> Option<Vec<u8>> {
    let size = buffer.size();
    let staging = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("bench readback"),
        size,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = device.create_command_encoder(&Default::default());
    encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, size);
    queue.submit([encoder.finish()]);
    let (sender, receiver) = std::sync::mpsc::channel();
    staging.map_async(wgpu::MapMode::Read, .., move |result| {
        let _ = sender.send(result);
    });
    if wait_idle(device).is_err() || !matches!(receiver.recv(), Ok(Ok(()))) {
        return None;
    }
    let bytes = staging
        .get_mapped_range(..)
        .ok()
        .map(|bytes| bytes.to_vec());
    staging.unmap();
    bytes
}

/// Pre-allocated buffers for one shape: the generation target and a copy source of the
/// same size, so that neither the generation nor its baseline copy pays for allocation or
/// wgpu's zero-fill of new buffers inside a timed run.
pub struct Rig {
    target: wgpu::Buffer,
    copy_source: wgpu::Buffer,
    bytes: u64,
    i: usize,
    j: usize,
}

impl Rig {
    /// Buffers for the dense `[total_heads, i, j]` bias (`encode_into`'s, at offset 0; the
    /// bytes of `forward(i, j)`'s generation when `j` is a multiple of 4), rounded up to a
    /// word; the target is mappable when the module takes the host-mapped path.
    pub fn new(alibi: &AlibiPositionalBias, i: usize, j: usize) -> Result<Self, AlibiError> {
        let bytes = ((alibi.total_heads() * i * j * alibi.dtype().size()) as u64)
            .next_multiple_of(4)
            .max(4);
        let device = alibi.device();
        let buffer = |label, usage| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes,
                usage,
                mapped_at_creation: false,
            })
        };
        let mut target_usage = wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST;
        if alibi.generation_path() == GenerationPath::HostMapped {
            target_usage |= wgpu::BufferUsages::MAP_WRITE;
        }
        let rig = Self {
            target: buffer("bench target", target_usage),
            copy_source: buffer(
                "bench copy source",
                wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            ),
            bytes,
            i,
            j,
        };
        // Touch both once: wgpu zero-fills a buffer on its first use.
        rig.copy(alibi)?;
        Ok(rig)
    }

    /// Bytes written by one generation (and by one copy).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// One dense generation into the target on the module's path, finished when it
    /// returns: the host-mapped path's write (which maps the buffer first), or the kernel's
    /// dispatches.
    pub fn generate(&self, alibi: &mut AlibiPositionalBias) -> Result<(), AlibiError> {
        match alibi.generation_path() {
            GenerationPath::HostMapped => alibi.write_into(self.i, self.j, &self.target, 0),
            _ => self.generate_with_shader(alibi),
        }
    }

    /// One dense generation into the target by the WGSL kernel, submitted and waited for,
    /// whatever the module's path. The cache is cleared first: `encode_into` copies what
    /// the cache holds.
    pub fn generate_with_shader(&self, alibi: &mut AlibiPositionalBias) -> Result<(), AlibiError> {
        alibi.clear_cache();
        let device = alibi.device().clone();
        let mut encoder = device.create_command_encoder(&Default::default());
        alibi.encode_into(&mut encoder, self.i, self.j, &self.target, 0)?;
        alibi.queue().submit([encoder.finish()]);
        wait_idle(&device)
    }

    /// One copy of the same byte count on the same device, submitted and waited for.
    pub fn copy(&self, alibi: &AlibiPositionalBias) -> Result<(), AlibiError> {
        let device = alibi.device();
        let mut encoder = device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(&self.copy_source, 0, &self.target, 0, self.bytes);
        alibi.queue().submit([encoder.finish()]);
        wait_idle(device)
    }
}

/// The wall time of `f`, in milliseconds.
pub fn time_ms(mut f: impl FnMut() -> Result<(), AlibiError>) -> Result<f64, AlibiError> {
    let start = Instant::now();
    f()?;
    Ok(start.elapsed().as_secs_f64() * 1e3)
}

/// The median of `values` (NaN when empty).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// `value` rounded to 3 decimals, for the reports.
pub fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}
