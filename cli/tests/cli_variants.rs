// Native only: the browser has its own suite, tests/web.rs.
#![cfg(not(target_arch = "wasm32"))]
//! `alibi bias --causal`, `--dtype f16` and `--query-positions/--key-positions` (issue 9): the
//! `.npy` files read back and compared with the oracle bit for bit, on the adapter that
//! `WGPU_BACKEND` picks and on the CPU path, and the refusals, one line each.

mod cli_support;
#[path = "../../tests/common/mod.rs"]
mod common;

use alibi_wgpu::{alibi_slopes, reference, HostBias};
use cli_support::{refuse, succeed, TempDir};

/// The values of a `.npy` file written by `alibi`, as f32 (an f16 file's widened), after
/// checking its dtype and shape.
fn npy(path: &std::path::Path, descr: &str, shape: [usize; 3]) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file = npyz::NpyFile::new(&bytes[..]).unwrap();
    assert_eq!(
        file.dtype().descr(),
        format!("'{descr}'"),
        "{}",
        path.display()
    );
    assert_eq!(file.shape(), shape.map(|n| n as u64), "{}", path.display());
    match descr {
        "<f2" => file
            .into_vec::<half::f16>()
            .unwrap()
            .into_iter()
            .map(half::f16::to_f32)
            .collect(),
        _ => file.into_vec::<f32>().unwrap(),
    }
}

/// docs/semantics.md's f16 of each value, widened: round to nearest even, finite values saturated
/// at ±65504 (written with `half`, apart from the crate).
fn as_f16(bias: &HostBias) -> Vec<u32> {
    bias.as_slice()
        .iter()
        .map(|&v| common::spec_f16(v).to_f32().to_bits())
        .collect()
}

fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn causal_files_equal_the_oracle_on_the_adapter_and_the_cpu_path() {
    let Some(_) = common::gpu() else { return };
    let slopes = alibi_slopes(3).unwrap();
    for backend in ["auto", "cpu"] {
        let tmp = TempDir::new("causal");
        let out = tmp.arg("out/");
        let args = ["bias", "--heads", "3", "--total-heads", "4", "--causal"];
        let stdout = succeed(
            &[
                &args[..],
                &["--backend", backend, "--out", &out, "5x9", "1x12", "2x3"],
            ]
            .concat(),
        );
        assert!(stdout.contains("f32, causal"), "{stdout}");
        for (call, (i, j)) in [(5, 9), (1, 12), (2, 3)].into_iter().enumerate() {
            let path = tmp.join(&format!("out/call-{call}-{i}x{j}.npy"));
            let values = npy(&path, "<f4", [4, i, j]);
            let expected = reference::forward_causal(&slopes, 4, i, j).unwrap();
            assert_eq!(
                bits(&values),
                bits(expected.as_slice()),
                "{backend} {i}x{j}"
            );
        }
    }
}

#[test]
fn f16_files_are_f2_with_the_spec_rounding_on_every_adapter() {
    let Some(_) = common::gpu() else { return };
    let slopes = alibi_slopes(2).unwrap();
    // Distances up to 2^21: head 0's slope, 1/16, takes values past -65504.
    let (i, j) = (2, 1 << 21);
    // On every adapter: in words, rounded exactly, where it lacks SHADER_F16.
    for backend in ["auto", "cpu"] {
        let tmp = TempDir::new("f16");
        let out = tmp.arg("bias.npy");
        let shape = format!("{i}x{j}");
        succeed(&[
            "bias",
            "--heads",
            "2",
            "--dtype",
            "f16",
            "--causal",
            "--backend",
            backend,
            "--out",
            &out,
            &shape,
        ]);
        let values = npy(&tmp.join("bias.npy"), "<f2", [2, i, j]);
        let expected = reference::forward_causal(&slopes, 2, i, j).unwrap();
        assert_eq!(bits(&values), as_f16(&expected), "{backend}");
        assert_eq!(values[0], -65504.0, "{backend}: saturated, not -inf");
    }
}

#[test]
fn positions_give_the_oracle_at_those_positions() {
    let Some(_) = common::gpu() else { return };
    let slopes = alibi_slopes(4).unwrap();
    let queries = [0, 1, 2, 4];
    let keys = [0, 1, 2, 3, 5];
    for (backend, causal) in [("auto", false), ("auto", true), ("cpu", true)] {
        let tmp = TempDir::new("positions");
        let out = tmp.arg("p.npy");
        let mut args = vec![
            "bias",
            "--heads",
            "4",
            "--total-heads",
            "6",
            "--backend",
            backend,
            "--query-positions",
            "0,1,2,4",
            "--key-positions",
            "0,1,2,3,5",
            "--out",
            &out,
        ];
        if causal {
            args.push("--causal");
        }
        let stdout = succeed(&args);
        assert!(stdout.contains("call 0: 4x5 -> [6, 4, 5]"), "{stdout}");
        let values = npy(&tmp.join("p.npy"), "<f4", [6, 4, 5]);
        let expected = reference::forward_positions(&slopes, 6, &queries, &keys, causal).unwrap();
        assert_eq!(
            bits(&values),
            bits(expected.as_slice()),
            "{backend} causal {causal}"
        );
    }
    // Negative positions pass as values, not as flags.
    let stdout = succeed(&[
        "bias",
        "--heads",
        "1",
        "--query-positions",
        "-3,-1",
        "--key-positions",
        "-2,0",
    ]);
    assert!(stdout.contains("call 0: 2x2 -> [1, 2, 2]"), "{stdout}");
}

#[test]
fn bad_variant_arguments_are_refused_before_printing() {
    let line = refuse(&["bias", "--heads", "2", "--query-positions", "1,2", "3x3"]);
    assert!(line.contains("cannot be used with"), "{line}");
    let line = refuse(&["bias", "--heads", "2", "--query-positions", "1,2"]);
    assert!(line.contains("--key-positions"), "{line}");
    let line = refuse(&[
        "bias",
        "--heads",
        "2",
        "--query-positions",
        "1,x",
        "--key-positions",
        "0",
    ]);
    assert!(line.contains("invalid"), "{line}");
    let line = refuse(&[
        "bias",
        "--heads",
        "2",
        "--query-positions",
        "0",
        "--key-positions",
        "0,9000000",
    ]);
    assert!(line.contains("key position 1 is 9000000"), "{line}");
    let line = refuse(&["bias", "--heads", "2", "--dtype", "f64", "3x3"]);
    assert!(line.contains("f64"), "{line}");
    let tmp = TempDir::new("positions-safetensors");
    let out = tmp.arg("p.safetensors");
    let positions = ["--query-positions", "0,1", "--key-positions", "0,1"];
    let line = refuse(&[&["bias", "--heads", "2", "--out", &out][..], &positions[..]].concat());
    assert!(line.contains("write a .npy file instead"), "{line}");
    assert!(tmp.names().is_empty(), "nothing is written");
}
