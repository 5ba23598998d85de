//! The helpers of the dense tests: a caller's buffer filled with a pattern, and the
//! check that a dense write changed its tensor's bytes and nothing else.

use std::sync::OnceLock;

use alibi_wgpu::{reference, AlibiPositionalBias, BiasDtype, HostBias};

use super::{gpu, read_buffer, spec_f16};

/// A caller's buffer of `size` bytes, each byte a pattern the test can check, with `usage`.
pub fn patterned(device: &wgpu::Device, size: u64, usage: wgpu::BufferUsages) -> wgpu::Buffer {
    let buffer = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("patterned target"),
        size: size.next_multiple_of(4),
        usage,
        mapped_at_creation: true,
    });
    let bytes: Vec<u8> = (0..size.next_multiple_of(4) as usize)
        .map(pattern)
        .collect();
    let mut view = buffer.slice(..).get_mapped_range_mut().unwrap();
    view.copy_from_slice(&bytes);
    drop(view);
    buffer.unmap();
    buffer
}

pub fn pattern(n: usize) -> u8 {
    (n * 7 + 3) as u8 | 1
}

/// Checks `bytes` (a whole buffer): the tensor at `offset`, the pattern elsewhere.
pub fn check_around(bytes: &[u8], offset: usize, tensor: &[u8], context: &str) {
    let end = offset + tensor.len();
    assert!(
        bytes[..offset]
            .iter()
            .enumerate()
            .all(|(n, &b)| b == pattern(n)),
        "{context}: bytes before the tensor changed"
    );
    if bytes[offset..end] != *tensor {
        let at = (offset..end)
            .find(|&n| bytes[n] != tensor[n - offset])
            .unwrap();
        panic!("{context}: byte {} of the tensor differs", at - offset);
    }
    assert!(
        bytes[end..]
            .iter()
            .enumerate()
            .all(|(n, &b)| b == pattern(end + n)),
        "{context}: bytes after the tensor changed"
    );
}

/// A whole buffer of `alibi`'s device read back.
pub fn read_all(alibi: &AlibiPositionalBias, buffer: &wgpu::Buffer) -> Vec<u8> {
    super::read_buffer(alibi.device(), alibi.queue(), buffer)
}

/// A device of the shared device's adapter without `SHADER_F16` (its other features
/// kept): f16 modules on it store f16 in words, rounded in integer arithmetic. Opened once
/// per test binary.
pub fn no_f16_device() -> &'static (wgpu::Device, wgpu::Queue) {
    static DEVICE: OnceLock<(wgpu::Device, wgpu::Queue)> = OnceLock::new();
    DEVICE.get_or_init(|| {
        let shared = gpu().expect("the no-f16 device is opened on the shared device's adapter");
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = pollster::block_on(instance.request_adapter(&Default::default()))
            .expect("the shared device's adapter");
        pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("alibi-wgpu tests, no SHADER_F16"),
            required_features: shared.device.features() - wgpu::Features::SHADER_F16,
            required_limits: adapter.limits(),
            ..Default::default()
        }))
        .unwrap_or_else(|e| panic!("a device without SHADER_F16: {e}"))
    })
}

/// The bytes a module of `dtype` stores for the f32 values `values`, each rounded as
/// docs/semantics.md says ([`spec_f16`] for f16), little-endian.
pub fn element_bytes(values: &[f32], dtype: BiasDtype) -> Vec<u8> {
    match dtype {
        BiasDtype::F16 => values
            .iter()
            .flat_map(|&v| spec_f16(v).to_bits().to_le_bytes())
            .collect(),
        _ => values
            .iter()
            .flat_map(|v| v.to_bits().to_le_bytes())
            .collect(),
    }
}

/// The dense f32 `[heads, i, j]` at the start of `buffer` (usage `COPY_SRC`), read back as
/// a [`HostBias`].
pub fn read_dense(
    module: &AlibiPositionalBias,
    buffer: &wgpu::Buffer,
    shape: [usize; 3],
) -> HostBias {
    let len = shape.iter().product::<usize>();
    let bytes = read_buffer(module.device(), module.queue(), buffer);
    let values: Vec<f32> = bytes[..len * 4]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    // A HostBias of the shape (its values replaced): the crate has no public constructor.
    let host = reference::forward(&[1.0], shape[0], shape[1], shape[2]).expect("a shape");
    let mut values = values.into_iter();
    host.map(|_| values.next().expect("as many values"))
}

/// The oracle's dense bytes for `(i, j)` of `alibi` (causal when it is, in its dtype).
pub fn oracle_bytes(alibi: &AlibiPositionalBias, i: usize, j: usize) -> Vec<u8> {
    let (slopes, total) = (alibi.slopes(), alibi.total_heads());
    let values = if alibi.causal() {
        reference::forward_causal(slopes, total, i, j)
    } else {
        reference::forward(slopes, total, i, j)
    }
    .unwrap();
    element_bytes(values.as_slice(), alibi.dtype())
}
