//! `SlopeSource::GgmlF32` against llama.cpp's own lines (`ggml_compute_forward_soft_max_f32`
//! in ggml's CPU backend), compiled here with the system C compiler at -O2 and run: every
//! slope of 1..64 heads at several `max_bias`, bit for bit. A missing C compiler fails the
//! test; it never skips.
#![cfg(not(target_arch = "wasm32"))]

use std::process::Command;

use alibi_wgpu::SlopeSource;

/// llama.cpp's slope computation, as its CPU backend writes it, printing the bits of every
/// slope for `max_bias` in argv[1] and heads 1..64.
const LLAMA_CPP_SLOPES: &str = r#"
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    const float max_bias = strtof(argv[1], NULL);
    for (uint32_t n_head = 1; n_head <= 64; n_head++) {
        const uint32_t n_head_log2 = 1u << (uint32_t) floor(log2(n_head));
        const float m0 = powf(2.0f, -(max_bias       ) / n_head_log2);
        const float m1 = powf(2.0f, -(max_bias / 2.0f) / n_head_log2);
        for (uint32_t h = 0; h < n_head; h++) {
            const float slope = h < n_head_log2 ? powf(m0, h + 1) : powf(m1, 2*(h - n_head_log2) + 1);
            uint32_t bits;
            memcpy(&bits, &slope, sizeof bits);
            printf("%u %u %08x\n", n_head, h, bits);
        }
    }
    return 0;
}
"#;

#[test]
fn ggml_f32_slopes_equal_llama_cpp_bit_for_bit() {
    let dir = std::env::temp_dir().join(format!("alibi-ggml-slopes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let source = dir.join("slopes.c");
    let program = dir.join("slopes");
    std::fs::write(&source, LLAMA_CPP_SLOPES).expect("writing the C source");
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let compiled = Command::new(&compiler)
        .args(["-O2", "-o"])
        .arg(&program)
        .arg(&source)
        .arg("-lm")
        .status()
        .unwrap_or_else(|e| panic!("running the C compiler `{compiler}` (set CC to another): {e}"));
    assert!(
        compiled.success(),
        "compiling llama.cpp's slope lines failed"
    );
    let mut compared = 0;
    for max_bias in ["4", "8", "16", "0.5", "2.5", "7.3", "12.75"] {
        let output = Command::new(&program)
            .arg(max_bias)
            .output()
            .expect("running it");
        assert!(output.status.success());
        let stdout = String::from_utf8(output.stdout).expect("text");
        let mut lines = stdout.lines();
        for heads in 1..=64usize {
            let ours = SlopeSource::GgmlF32(max_bias.parse().unwrap())
                .resolve(heads)
                .unwrap_or_else(|e| panic!("max_bias {max_bias}, {heads} heads: {e}"));
            for (h, slope) in ours.iter().enumerate() {
                let line = lines.next().expect("a line per slope");
                let expected = format!("{heads} {h} {:08x}", slope.to_bits());
                assert_eq!(
                    line, expected,
                    "max_bias {max_bias}: llama.cpp vs this crate ({slope})"
                );
                compared += 1;
            }
        }
    }
    assert_eq!(compared, 7 * 2080);
    let _ = std::fs::remove_dir_all(&dir);
}
