// Native only: the browser has its own suite, tests/web.rs.
#![cfg(not(target_arch = "wasm32"))]
//! `alibi bias --out FILE.safetensors`: the file read back with the `safetensors` crate,
//! every tensor compared with the oracle of a fresh module, the metadata checked, and the
//! refusals that leave nothing behind. (scripts/python-interop reads the same files with
//! Python's `safetensors.numpy`.)

mod cli_support;
#[path = "../../tests/common/mod.rs"]
mod common;

use alibi_wgpu::{alibi_slopes, max_bias_slopes, reference, HostBias};
use cli_support::{fail, succeed, TempDir};
use safetensors::{Dtype, SafeTensors};

/// The tensor `name` of `file` as f32 values, after checking its dtype and shape.
fn tensor(file: &SafeTensors<'_>, name: &str, shape: [usize; 3]) -> Vec<f32> {
    let view = file.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(view.dtype(), Dtype::F32, "{name}");
    assert_eq!(view.shape(), shape, "{name}");
    view.data()
        .chunks_exact(4)
        .map(|bytes| f32::from_le_bytes(bytes.try_into().unwrap()))
        .collect()
}

/// Bit patterns, so that `-0.0 != +0.0` as docs/semantics.md requires (PyTorch gives `+0.0`).
fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

fn assert_holds(file: &SafeTensors<'_>, name: &str, expected: &HostBias) {
    let values = tensor(file, name, expected.shape());
    assert_eq!(bits(&values), bits(expected.as_slice()), "{name}");
}

#[test]
fn one_file_holds_every_shape_with_its_metadata() {
    let Some(_) = common::gpu() else { return };
    let tmp = TempDir::new("safetensors");
    let out = tmp.arg("bias.safetensors");
    let stdout = succeed(&[
        "bias",
        "--heads",
        "4",
        "--total-heads",
        "8",
        "3x5",
        "1x5",
        "10x10",
        "0x4",
        "--out",
        &out,
    ]);
    assert!(stdout.contains(&format!("wrote {out}")), "{stdout}");
    assert!(stdout.contains("cache: hits 1, misses 2"), "{stdout}");
    assert_eq!(
        tmp.names(),
        ["bias.safetensors"],
        "no temporary file is left"
    );

    let bytes = std::fs::read(&out).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mut names = file.names();
    names.sort_unstable();
    assert_eq!(
        names,
        ["call-0-3x5", "call-1-1x5", "call-2-10x10", "call-3-0x4"]
    );
    let slopes = alibi_slopes(4).unwrap();
    for (name, (i, j)) in names.iter().zip([(3, 5), (1, 5), (10, 10), (0, 4)]) {
        assert_holds(&file, name, &reference::forward(&slopes, 8, i, j).unwrap());
    }

    let (_, metadata) = SafeTensors::read_metadata(&bytes).unwrap();
    let metadata = metadata.metadata().clone().expect("__metadata__");
    assert_eq!(metadata["heads"], "4");
    assert_eq!(metadata["total_heads"], "8");
    assert_eq!(metadata["slopes"], "[0.25, 0.0625, 0.015625, 0.00390625]");
    assert_eq!(metadata["alibi_wgpu_version"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn slopes_in_the_metadata_read_back_exactly() {
    // --max-bias 3 gives slopes with long decimal expansions: the text must still parse
    // back to the very same f32s.
    let tmp = TempDir::new("safetensors-slopes");
    let out = tmp.arg("b.safetensors");
    succeed(&[
        "bias",
        "--heads",
        "6",
        "--max-bias",
        "3",
        "2x7",
        "--backend",
        "cpu",
        "--out",
        &out,
    ]);
    let bytes = std::fs::read(&out).unwrap();
    let (_, metadata) = SafeTensors::read_metadata(&bytes).unwrap();
    let text = &metadata.metadata().as_ref().unwrap()["slopes"];
    let parsed: Vec<f32> = serde_json::from_str(text).unwrap();
    let slopes = max_bias_slopes(6, 3.0).unwrap();
    assert_eq!(bits(&parsed), bits(&slopes), "{text}");
    let file = SafeTensors::deserialize(&bytes).unwrap();
    assert_holds(
        &file,
        "call-0-2x7",
        &reference::forward(&slopes, 6, 2, 7).unwrap(),
    );
}

#[test]
fn a_failed_run_writes_no_safetensors_file() {
    let tmp = TempDir::new("safetensors-fail");
    let out = tmp.arg("b.safetensors");
    std::fs::write(&out, b"old").unwrap();
    // The second shape is beyond MAX_SEQUENCE: refused before anything is computed.
    let line = fail(&["bias", "--heads", "2", "3x5", "1x16777217", "--out", &out]);
    assert!(line.contains("16777217"), "{line}");
    // The first shape computes on the CPU path, the second cannot be allocated: the
    // failure comes after a tensor was kept, and still leaves the old file alone.
    let line = fail(&[
        // [256, 2^24, 2^24] is 2^58 bytes: more than any address space, refused at once.
        "bias",
        "--heads",
        "4",
        "--total-heads",
        "256",
        "1x1",
        "16777216x16777216",
        "--backend",
        "cpu",
        "--out",
        &out,
    ]);
    assert!(!line.is_empty());
    assert_eq!(std::fs::read(&out).unwrap(), b"old");
    assert_eq!(tmp.names(), ["b.safetensors"], "no temporary file is left");
}
