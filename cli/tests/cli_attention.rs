// Native only: the browser has its own suite, tests/web.rs.
#![cfg(not(target_arch = "wasm32"))]
//! `alibi attention`: .npy files in, .npy out, against the f64 oracle of the library's own
//! tests (tests/common/attention_oracle.rs); refusals are one line on stderr, a non-zero
//! exit and no output file.

mod cli_support;
#[path = "../../tests/common/mod.rs"]
mod common;
#[path = "../../tests/common/attention_oracle.rs"]
mod oracle;

use std::path::Path;

use cli_support::{refuse, succeed, TempDir};
use npyz::WriterBuilder as _;

fn write_f32(path: &Path, shape: &[u64], values: &[f32]) {
    let file = std::fs::File::create(path).unwrap();
    let mut writer = npyz::WriteOptions::<f32>::new()
        .default_dtype()
        .shape(shape)
        .writer(std::io::BufWriter::new(file))
        .begin_nd()
        .unwrap();
    writer.extend(values.iter().copied()).unwrap();
    writer.finish().unwrap();
}

fn read_f32(path: &Path) -> (Vec<u64>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap();
    let file = npyz::NpyFile::new(&bytes[..]).unwrap();
    (file.shape().to_vec(), file.into_vec::<f32>().unwrap())
}

fn values(len: usize, seed: u32) -> Vec<f32> {
    (0..len)
        .map(|n| {
            ((n as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8) as f32
                / (1u32 << 23) as f32
                - 1.0
        })
        .collect()
}

/// Batched grouped-query attention, causal with a window, against the oracle.
#[test]
fn attention_files_equal_the_oracle() {
    let Some(_) = common::gpu() else { return };
    let tmp = TempDir::new("attention");
    let (batch, heads, total, kv, i, j, d) =
        (2usize, 5usize, 6usize, 3usize, 7usize, 19usize, 32usize);
    let q = values(batch * total * i * d, 1);
    let k = values(batch * kv * j * d, 2);
    let v = values(batch * kv * j * d, 3);
    write_f32(
        &tmp.join("q.npy"),
        &[batch as u64, total as u64, i as u64, d as u64],
        &q,
    );
    write_f32(
        &tmp.join("k.npy"),
        &[batch as u64, kv as u64, j as u64, d as u64],
        &k,
    );
    write_f32(
        &tmp.join("v.npy"),
        &[batch as u64, kv as u64, j as u64, d as u64],
        &v,
    );
    succeed(&[
        "attention",
        "--heads",
        "5",
        "--total-heads",
        "6",
        "--kv-heads",
        "3",
        "--causal",
        "--window-left",
        "9",
        "--scale",
        "0.2",
        "--q",
        &tmp.arg("q.npy"),
        "--k",
        &tmp.arg("k.npy"),
        "--v",
        &tmp.arg("v.npy"),
        "--out",
        &tmp.arg("y.npy"),
    ]);
    let (shape, got) = read_f32(&tmp.join("y.npy"));
    assert_eq!(shape, vec![batch as u64, total as u64, i as u64, d as u64]);
    let case = oracle::Case {
        batch,
        query_heads: total,
        kv_heads: kv,
        queries: i,
        keys: j,
        head_dim: d,
        slopes: alibi_wgpu::alibi_slopes(heads).unwrap(),
        alibi: true,
        causal: true,
        window: (Some(9), None),
        query_offsets: vec![0; batch],
        key_offsets: vec![0; batch],
        scale: 0.2f32 as f64,
    };
    let expected = oracle::attention(&case, &q, &k, &v);
    let worst = got
        .iter()
        .zip(&expected)
        .map(|(&g, &e)| (g as f64 - e).abs())
        .fold(0.0, f64::max);
    assert!(worst <= 1e-5, "|error| {worst}");
}

/// Bad shapes, a T not a multiple of G, a missing file: one line, no output file.
#[test]
fn attention_refusals_leave_no_file() {
    let Some(_) = common::gpu() else { return };
    let tmp = TempDir::new("attention-refusals");
    write_f32(&tmp.join("q.npy"), &[4, 3, 8], &values(4 * 3 * 8, 1));
    write_f32(&tmp.join("k.npy"), &[4, 5, 8], &values(4 * 5 * 8, 2));
    write_f32(&tmp.join("k2.npy"), &[4, 5, 16], &values(4 * 5 * 16, 2));
    let run = |extra: &[&str], k: &str| {
        let mut args = vec!["attention", "--heads", "4"];
        args.extend_from_slice(extra);
        let (q, k, y) = (tmp.arg("q.npy"), tmp.arg(k), tmp.arg("y.npy"));
        args.extend_from_slice(&["--q", &q, "--k", &k, "--v", &k, "--out", &y]);
        refuse(&args)
    };
    let line = run(&["--kv-heads", "3"], "k.npy");
    assert!(line.contains("--kv-heads"), "{line}");
    let line = run(&[], "k2.npy");
    assert!(line.contains("head dimension"), "{line}");
    let line = run(&["--total-heads", "6"], "k.npy");
    assert!(line.contains("Q has 4 heads"), "{line}");
    let line = run(&[], "missing.npy");
    assert!(line.contains("missing.npy"), "{line}");
    let line = run(&["--dtype", "f16"], "k.npy");
    assert!(line.contains("<f2"), "{line}");
    assert!(!tmp.join("y.npy").exists());
    assert!(!tmp.join("y.npy.partial").exists());
}
