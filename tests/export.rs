// Native only: the browser has its own suite, tests/web.rs.
#![cfg(not(target_arch = "wasm32"))]
#![cfg(feature = "safetensors")]
//! `alibi_wgpu::export`: a module's results written to a `.safetensors` file on disk and
//! read back with the `safetensors` crate, bit for bit; big-endian hosts are covered by
//! the explicit little-endian conversion, which this test pins down through the bytes.

mod common;

use alibi_wgpu::{export, reference, AlibiConfig};
use safetensors::{Dtype, SafeTensors};

#[test]
fn gpu_results_round_trip_through_a_file() {
    let Some(gpu) = common::gpu() else { return };
    let mut module = common::module(gpu, AlibiConfig::new(12).total_heads(16));
    let shapes = [(33, 70), (1, 70), (5, 3)];
    let biases: Vec<_> = shapes
        .iter()
        .map(|&(i, j)| common::forward(&mut module, i, j))
        .collect();

    let path =
        std::env::temp_dir().join(format!("alibi-export-{}.safetensors", std::process::id()));
    let file = std::fs::File::create(&path).unwrap();
    export::write_safetensors(file, module.slopes(), 16, false, &biases).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();

    let file = SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(file.len(), shapes.len());
    for (call, &(i, j)) in shapes.iter().enumerate() {
        let expected = reference::forward(module.slopes(), 16, i, j).unwrap();
        let name = format!("call-{call}-{i}x{j}");
        assert_eq!(export::tensor_name(call, &expected), name);
        let view = file.tensor(&name).unwrap();
        assert_eq!(view.dtype(), Dtype::F32);
        assert_eq!(view.shape(), [16, i, j]);
        let expected_bytes: Vec<u8> = expected
            .as_slice()
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert!(view.data() == expected_bytes, "{name} differs");
    }
}
