//! The `.npy` format of `--out`: what numpy's `np.load` reads back.

use std::io::{self, Write};

use alibi_wgpu::HostBias;
use npyz::WriterBuilder as _;

/// Writes `bias` to `writer` as a C-order `.npy` of shape `[total_heads, i, j]` and dtype
/// `<f4` (little-endian f32 on every host, so files compare byte for byte across machines).
pub fn write_npy(writer: impl Write, bias: &HostBias) -> io::Result<()> {
    let shape = bias.shape().map(|n| n as u64);
    let mut writer = npyz::WriteOptions::<f32>::new()
        .dtype(little_endian_f32())
        .shape(&shape)
        .writer(io::BufWriter::new(writer))
        .begin_nd()?;
    writer.extend(bias.as_slice().iter().copied())?;
    // `finish` flushes the buffered writer and checks the value count against the shape;
    // dropping the writer instead would swallow those errors.
    writer.finish()
}

/// The numpy dtype `<f4`. npyz's default for `f32` is native-endian, which would write
/// `>f4` on a big-endian host.
fn little_endian_f32() -> npyz::DType {
    let type_str = "<f4".parse().expect("`<f4` is a valid numpy type string");
    npyz::DType::Plain(type_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_values() {
        let slopes = alibi_wgpu::alibi_slopes(1).unwrap();
        let bias = alibi_wgpu::reference::forward(&slopes, 2, 1, 3).unwrap();
        let mut bytes = Vec::new();
        write_npy(&mut bytes, &bias).unwrap();
        let file = npyz::NpyFile::new(&bytes[..]).unwrap();
        assert_eq!(file.shape(), &[2, 1, 3]);
        assert_eq!(file.order(), npyz::Order::C);
        assert_eq!(file.into_vec::<f32>().unwrap(), bias.as_slice());
    }
}
