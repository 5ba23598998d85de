// Native only: the browser has its own suite, tests/web.rs.
#![cfg(not(target_arch = "wasm32"))]
//! `alibi plot`: a PNG decoded back, one heatmap per head, the colour of the diagonal
//! (bias 0) present; the module flags it shares with `alibi bias` (`--causal`'s masked
//! cells in their own colour, `--dtype f16`, `--ggml-max-bias`); refusals in one line,
//! before anything is computed, leaving no file.

mod cli_support;
#[path = "../../tests/common/mod.rs"]
mod common;

use cli_support::{fail, succeed, TempDir};

#[test]
fn draws_a_png_of_every_head() {
    let Some(_) = common::gpu() else { return };
    let tmp = TempDir::new("plot");
    let out = tmp.arg("bias.png");
    let stdout = succeed(&[
        "plot",
        "--heads",
        "4",
        "--total-heads",
        "8",
        "16x16",
        "--out",
        &out,
    ]);
    assert!(stdout.starts_with(&format!("wrote {out} (")), "{stdout}");
    assert!(
        !stdout.contains("the CPU path"),
        "computed on a GPU: {stdout}"
    );
    assert_eq!(tmp.names(), ["bias.png"], "no temporary file is left");

    let picture = image::open(&out).expect("a PNG that decodes").to_rgb8();
    // Eight heads in a 3-column grid: 3 rows, and wider than tall.
    assert!(
        picture.width() > picture.height(),
        "{:?}",
        picture.dimensions()
    );
    // Viridis' top colour (bias 0: the diagonal and the padding heads) is there, and so
    // are darker ones (the steep first head).
    let yellow = [254, 232, 37];
    let pixels: Vec<[u8; 3]> = picture.pixels().map(|p| p.0).collect();
    assert!(pixels.contains(&yellow));
    assert!(
        pixels.iter().any(|p| p[0] < 80 && p[2] > 80),
        "no dark cell"
    );
}

#[test]
fn the_cpu_path_draws_the_same_picture() {
    let Some(_) = common::gpu() else { return };
    let tmp = TempDir::new("plot-cpu");
    let (gpu, cpu) = (tmp.arg("gpu.png"), tmp.arg("cpu.png"));
    succeed(&["plot", "--heads", "3", "5x9", "--out", &gpu]);
    succeed(&[
        "plot",
        "--heads",
        "3",
        "5x9",
        "--out",
        &cpu,
        "--backend",
        "cpu",
    ]);
    let decode = |path: &str| image::open(path).unwrap().to_rgb8();
    // The title names where it was computed; below it, every pixel is the same.
    let (gpu, cpu) = (decode(&gpu), decode(&cpu));
    assert_eq!(gpu.dimensions(), cpu.dimensions());
    let below_title =
        |picture: &image::RgbImage| picture.as_raw()[picture.width() as usize * 3 * 40..].to_vec();
    assert!(below_title(&gpu) == below_title(&cpu));
}

/// The colour of masked (-inf) cells: light coral, outside viridis (`src/heatmap.rs`).
const MASKED: [u8; 3] = [240, 128, 128];

/// The pixels of the PNG at `path`.
fn pixels(path: &str) -> Vec<[u8; 3]> {
    let picture = image::open(path).expect("a PNG that decodes").to_rgb8();
    picture.pixels().map(|p| p.0).collect()
}

#[test]
fn causal_cells_are_drawn_masked() {
    let tmp = TempDir::new("plot-causal");
    let (plain, causal) = (tmp.arg("plain.png"), tmp.arg("causal.png"));
    let args = ["plot", "--backend", "cpu", "--heads", "2", "6x6"];
    succeed(&[&args[..], &["--out", &plain]].concat());
    succeed(&[&args[..], &["--causal", "--out", &causal]].concat());
    assert!(!pixels(&plain).contains(&MASKED), "nothing masked");
    let masked = pixels(&causal).iter().filter(|&&p| p == MASKED).count();
    // 15 of 36 cells per head are future keys, two heads, and the legend's swatch.
    assert!(masked > 1000, "{masked} masked pixels");
}

#[test]
fn f16_and_ggml_slopes_are_drawn() {
    let Some(gpu) = common::gpu() else { return };
    let tmp = TempDir::new("plot-f16");
    let mut backends = vec!["cpu"];
    if common::has_f16(&gpu.device) {
        backends.push("auto");
    }
    for backend in &backends {
        let out = tmp.arg(&format!("{backend}.png"));
        let stdout = succeed(&[
            "plot",
            "--backend",
            backend,
            "--heads",
            "4",
            "--ggml-max-bias",
            "8",
            "--dtype",
            "f16",
            "--causal",
            "9x9",
            "--out",
            &out,
        ]);
        assert!(stdout.starts_with(&format!("wrote {out} (")), "{stdout}");
        assert!(pixels(&out).contains(&MASKED), "{backend}");
    }
    if backends.len() == 2 {
        // The same f16 values, widened, on the adapter and the CPU path.
        let decode = |name: &str| image::open(tmp.join(name)).unwrap().to_rgb8();
        let (gpu, cpu) = (decode("auto.png"), decode("cpu.png"));
        let below_title = |p: &image::RgbImage| p.as_raw()[p.width() as usize * 3 * 40..].to_vec();
        assert!(below_title(&gpu) == below_title(&cpu));
    }
}

#[test]
fn refusals_leave_no_file() {
    let tmp = TempDir::new("plot-refused");
    let png = tmp.arg("b.png");
    for (args, expected) in [
        (
            vec!["--heads", "2", "4x4", "--out", &tmp.arg("b.jpg")],
            "ending in .png",
        ),
        (
            vec!["--heads", "2", "--total-heads", "65", "4x4", "--out", &png],
            "at most 64 heads",
        ),
        (
            vec!["--heads", "2", "0x4", "--out", &png],
            "nothing to draw",
        ),
        (
            vec!["--heads", "0", "4x4", "--out", &png],
            "heads must be at least 1",
        ),
        (
            vec!["--heads", "2", "4x4", "--out", &tmp.arg("missing/b.png")],
            "does not exist",
        ),
        (
            vec!["--heads", "2", "4x", "--out", &png],
            "is not a shape IxJ",
        ),
        (
            vec![
                "--heads",
                "2",
                "--max-bias",
                "8",
                "--ggml-max-bias",
                "8",
                "4x4",
                "--out",
                &png,
            ],
            "cannot be used with",
        ),
        (
            vec!["--heads", "2", "--dtype", "f64", "4x4", "--out", &png],
            "f64",
        ),
    ] {
        let mut all = vec!["plot"];
        all.extend(args);
        let line = fail(&all);
        assert!(line.contains(expected), "{all:?}: {line}");
    }
    assert!(tmp.names().is_empty(), "{:?}", tmp.names());
}
