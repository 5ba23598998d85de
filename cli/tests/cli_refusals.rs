// Native only: the browser has its own suite, tests/web.rs.
#![cfg(not(target_arch = "wasm32"))]
//! Every refusal comes before the first line of stdout: bad shapes (bad positions:
//! `cli_variants.rs`), an unwritable --out, and what only the device can refuse (a tensor above its buffer
//! limits, f16 without SHADER_F16, a generation path it lacks), for `bias`, `plot` and
//! `bench`. Each is exactly one line on stderr, with nothing on stdout and no file.

mod cli_support;
#[path = "../../tests/common/mod.rs"]
mod common;

use cli_support::{refuse, succeed, TempDir};

/// Far above any device's max_buffer_size (64 heads of 10^10 f32), yet within the
/// library's sequence limit: only the device can refuse it.
const TOO_LARGE: &str = "100000x100000";

#[test]
fn bias_refuses_a_tensor_too_large_for_the_device_before_printing() {
    let Some(_) = common::gpu() else { return };
    let tmp = TempDir::new("too-large");
    let out = tmp.arg("x.npy");
    let line = refuse(&["bias", "--heads", "64", TOO_LARGE, "--out", &out]);
    assert!(line.contains("above the limit"), "{line}");
    assert!(line.contains("max_buffer_size"), "{line}");
    // Also when earlier shapes fit: they are computed, but nothing is printed or kept.
    let dir = tmp.arg("dir/");
    let line = refuse(&[
        "bias", "--heads", "64", "2x2", "3x3", TOO_LARGE, "--out", &dir,
    ]);
    assert!(line.contains("above the limit"), "{line}");
    assert!(tmp.names().is_empty(), "{:?}", tmp.names());
}

#[test]
fn bias_and_plot_refuse_what_the_device_lacks_before_printing() {
    // What GL lacks where it is llvmpipe's; without a GL adapter there is nothing to lack.
    let Ok(gl) = pollster::block_on(alibi_wgpu::open_device(Some(wgpu::Backends::GL))) else {
        eprintln!("SKIPPED: no GL adapter");
        return;
    };
    let features = gl.device.features();
    let tmp = TempDir::new("device-lacks");
    let png = tmp.arg("b.png");
    if !features.contains(wgpu::Features::SHADER_F16) {
        // Not refused: f16 on every adapter (in words, rounded exactly, without SHADER_F16).
        let base = ["--backend", "gl", "--heads", "2", "--dtype", "f16"];
        succeed(&[&["bias"][..], &base, &["3x3"]].concat());
    }
    if !features.contains(wgpu::Features::MAPPABLE_PRIMARY_BUFFERS) {
        let base = [
            "--backend",
            "gl",
            "--heads",
            "2",
            "--generation-path",
            "host-mapped",
        ];
        let line = refuse(&[&["bias"][..], &base, &["3x3"]].concat());
        assert!(line.contains("HostMapped is unavailable"), "{line}");
        let line = refuse(&[&["plot"][..], &base, &["3x3", "--out", &png]].concat());
        assert!(line.contains("HostMapped is unavailable"), "{line}");
        let line = refuse(&[
            "bench",
            "--backend",
            "gl",
            "--generation-path",
            "host-mapped",
            "--case",
            "2x2x4x4",
            "--runs",
            "1",
        ]);
        assert!(line.contains("HostMapped is unavailable"), "{line}");
    }
    assert!(tmp.names().is_empty(), "{:?}", tmp.names());
}

#[test]
fn bad_requests_are_refused_before_printing() {
    let tmp = TempDir::new("bad-requests");
    let out = tmp.arg("p.npy");
    let missing = tmp.arg("missing/p.npy");
    for (args, expected) in [
        (
            vec!["bias", "--heads", "2", "3x3", "16777217x1", "--out", &out],
            "i = 16777217 exceeds",
        ),
        (
            vec!["bias", "--heads", "2", "3x3", "--out", &missing],
            "does not exist",
        ),
        (
            vec![
                "bias",
                "--heads",
                "2",
                "--backend",
                "cpu",
                "--dtype",
                "f16",
                "3x3",
                "--out",
                &missing,
            ],
            "does not exist",
        ),
        (
            vec!["plot", "--heads", "2", "16777217x1", "--out", &out],
            "i = 16777217 exceeds",
        ),
        // The decode loop's last step is a request too.
        (
            vec!["bench", "--decode-steps", "16777217"],
            "j = 16777217 exceeds",
        ),
    ] {
        let line = refuse(&args);
        assert!(line.contains(expected), "{args:?}: {line}");
    }
    assert!(tmp.names().is_empty(), "{:?}", tmp.names());
}

#[test]
fn plot_and_bench_refuse_a_tensor_too_large_for_the_device_before_printing() {
    let Some(_) = common::gpu() else { return };
    let tmp = TempDir::new("too-large-plot");
    let png = tmp.arg("b.png");
    let line = refuse(&["plot", "--heads", "64", TOO_LARGE, "--out", &png]);
    assert!(line.contains("above the limit"), "{line}");
    assert!(tmp.names().is_empty(), "{:?}", tmp.names());
    // The table's header is not printed before a case the device cannot hold.
    let line = refuse(&[
        "bench",
        "--case",
        "2x2x4x4",
        "--case",
        &format!("64x64x{TOO_LARGE}"),
        "--runs",
        "1",
        "--decode-steps",
        "0",
    ]);
    assert!(line.contains("above the limit"), "{line}");
}
