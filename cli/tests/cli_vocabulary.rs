// Native only: the browser has its own suite, tests/web.rs.
#![cfg(not(target_arch = "wasm32"))]
//! One vocabulary: the module's flags are one group, the same in `bias` and `plot` (their
//! help says the same words); the API's names (`--query-positions`, `--key-positions`,
//! `--generation-path`) are the ones shown, and the first spellings (`--positions-q`,
//! `--positions-k`, `--generation`) still work, hidden, with the same results.

mod cli_support;
#[path = "../../tests/common/mod.rs"]
mod common;

use cli_support::{fail, succeed, TempDir};

/// The module group's flags.
const MODULE_FLAGS: [&str; 8] = [
    "--heads",
    "--total-heads",
    "--max-bias",
    "--ggml-max-bias",
    "--causal",
    "--dtype",
    "--generation-path",
    "--backend",
];

/// The help of `flag` in `help` (`--help`'s long form): its option line and every line
/// up to the next option.
fn paragraph(help: &str, flag: &str) -> String {
    let options = help
        .split_once("Options:\n")
        .map_or("", |(_, options)| options);
    let is_option = |line: &str| {
        let indent = line.len() - line.trim_start().len();
        indent <= 6 && line.trim_start().starts_with('-')
    };
    let mut lines = options.lines().skip_while(|line| {
        !(is_option(line) && line.trim_start().split([' ', ',']).next() == Some(flag))
    });
    let first = lines
        .next()
        .unwrap_or_else(|| panic!("no {flag} in:\n{help}"));
    let rest: Vec<&str> = lines.take_while(|line| !is_option(line)).collect();
    format!("{first}\n{}", rest.join("\n"))
        .trim_end()
        .to_owned()
}

#[test]
fn bias_and_plot_share_the_module_flags_word_for_word() {
    let bias = succeed(&["bias", "--help"]);
    let plot = succeed(&["plot", "--help"]);
    for flag in MODULE_FLAGS {
        let text = paragraph(&bias, flag);
        assert!(text.lines().count() > 1, "{flag} has a description: {text}");
        assert_eq!(text, paragraph(&plot, flag), "{flag}");
    }
}

#[test]
fn the_first_spellings_still_work() {
    let tmp = TempDir::new("aliases");
    let run = |name: &str, positions: [&str; 2]| {
        let out = tmp.arg(name);
        let args = [
            "bias",
            "--backend",
            "cpu",
            "--heads",
            "3",
            "--causal",
            positions[0],
            "-2,0,5",
            positions[1],
            "0,1,2,3",
            "--out",
            &out,
        ];
        let stdout = succeed(&args);
        (stdout, std::fs::read(tmp.join(name)).unwrap())
    };
    let new = run("new.npy", ["--query-positions", "--key-positions"]);
    let old = run("old.npy", ["--positions-q", "--positions-k"]);
    assert_eq!(new.1, old.1, "the same file");
    assert_eq!(
        new.0.replace("new.npy", "old.npy"),
        old.0,
        "the same report"
    );
    // The old spelling names the new one when the pair is incomplete.
    let line = fail(&["bias", "--heads", "2", "--positions-q", "1,2"]);
    assert!(line.contains("--key-positions"), "{line}");
}

#[test]
fn generation_is_generation_path() {
    let Some(_) = common::gpu() else { return };
    let tmp = TempDir::new("generation-alias");
    for (subcommand, flag) in [("bias", "--generation-path"), ("bias", "--generation")] {
        let out = tmp.arg(&format!("{}.npy", flag.trim_start_matches('-')));
        let stdout = succeed(&[
            subcommand, "--heads", "2", flag, "shader", "5x7", "--out", &out,
        ]);
        assert!(stdout.contains("generation Shader)"), "{flag}: {stdout}");
    }
    let new = std::fs::read(tmp.join("generation-path.npy")).unwrap();
    let old = std::fs::read(tmp.join("generation.npy")).unwrap();
    assert_eq!(new, old);
    for flag in ["--generation-path", "--generation"] {
        let png = tmp.arg("g.png");
        succeed(&["plot", "--heads", "2", flag, "shader", "5x7", "--out", &png]);
    }
    // bench takes it too; a bad value is refused with the new name.
    let line = fail(&["bench", "--generation", "sideways"]);
    assert!(line.contains("--generation-path"), "{line}");
}
