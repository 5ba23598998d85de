//! The `.npy` format of `--out`: what numpy's `np.load` reads back.

use std::io::{self, Write};

use alibi_wgpu::{BiasDtype, HostBias};
use npyz::{Serialize, WriterBuilder as _};

/// Writes `bias` to `writer` as a C-order `.npy` of shape `[total_heads, i, j]` and dtype
/// `<f4`, or `<f2` for `BiasDtype::F16` (whose values `bias` holds as f32: the narrowing is
/// exact). Little-endian on every host, so files compare byte for byte across machines.
pub fn write_npy(writer: impl Write, bias: &HostBias, dtype: BiasDtype) -> io::Result<()> {
    let values = bias.as_slice().iter().copied();
    match dtype {
        BiasDtype::F16 => write_values(writer, bias, "<f2", values.map(half::f16::from_f32)),
        _ => write_values(writer, bias, "<f4", values),
    }
}

/// Writes `values` with the numpy type string `type_str` (npyz's default for a Rust type
/// is native-endian, which would write `>f4` on a big-endian host).
fn write_values<T: Serialize>(
    writer: impl Write,
    bias: &HostBias,
    type_str: &str,
    values: impl Iterator<Item = T>,
) -> io::Result<()> {
    let shape = bias.shape().map(|n| n as u64);
    let type_str = type_str.parse().expect("a valid numpy type string");
    let mut writer = npyz::WriteOptions::<T>::new()
        .dtype(npyz::DType::Plain(type_str))
        .shape(&shape)
        .writer(io::BufWriter::new(writer))
        .begin_nd()?;
    writer.extend(values)?;
    // `finish` flushes the buffered writer and checks the value count against the shape;
    // dropping the writer instead would swallow those errors.
    writer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_values() {
        let slopes = alibi_wgpu::alibi_slopes(1).unwrap();
        let bias = alibi_wgpu::reference::forward(&slopes, 2, 1, 3).unwrap();
        let mut bytes = Vec::new();
        write_npy(&mut bytes, &bias, BiasDtype::F32).unwrap();
        let file = npyz::NpyFile::new(&bytes[..]).unwrap();
        assert_eq!(file.shape(), &[2, 1, 3]);
        assert_eq!(file.order(), npyz::Order::C);
        assert_eq!(file.into_vec::<f32>().unwrap(), bias.as_slice());
    }

    #[test]
    fn f16_files_are_little_endian_f2() {
        let bias = alibi_wgpu::reference::forward_causal(&[0.5], 1, 2, 3).unwrap();
        let mut bytes = Vec::new();
        write_npy(&mut bytes, &bias, BiasDtype::F16).unwrap();
        let file = npyz::NpyFile::new(&bytes[..]).unwrap();
        assert_eq!(file.dtype().descr(), "'<f2'");
        let values: Vec<f32> = file
            .into_vec::<half::f16>()
            .unwrap()
            .into_iter()
            .map(half::f16::to_f32)
            .collect();
        assert_eq!(values, bias.as_slice());
    }
}
