// Native only: the browser has its own suite, tests/web.rs.
#![cfg(not(target_arch = "wasm32"))]
//! `alibi bench --json`, piped: one JSON object per line, those of a case and of the decode
//! loop with every field docs/command-line.md names (the typed records keep those names), and
//! nothing on stderr (no progress bar when stderr is not a terminal).

mod cli_support;
#[path = "../../tests/common/mod.rs"]
mod common;

use cli_support::succeed;
use serde_json::Value;

const CASE_FIELDS: [&str; 36] = [
    "case",
    "backend",
    "adapter",
    "runs",
    "generation_path",
    "heads",
    "total_heads",
    "i",
    "j",
    "bytes",
    "generate_ms",
    "generate_gb_per_s",
    "copy_ms",
    "generate_over_copy",
    "shader_generate_ms",
    "shader_over_copy",
    "forward_to_host_ms",
    "forward_to_new_host_vec_ms",
    "cpu_path_ms",
    "cache_hit_ns",
    "cache_hit_misses",
    "exact",
    // The engine layout (issue 15): dense against strided, and a dense copy from the cache.
    "strided_fresh_ms",
    "dense_ms",
    "dense_over_strided",
    "dense_into_ms",
    "dense_into_over_strided",
    "strided_into_ms",
    "dense_into_over_strided_into",
    "dense_hit_ms",
    "dense_copy_ms",
    "dense_hit_over_copy",
    "dense_hit_into_ms",
    "dense_copy_into_ms",
    "dense_hit_into_over_copy",
    "dense_exact",
];
const DECODE_FIELDS: [&str; 12] = [
    "case",
    "backend",
    "adapter",
    "runs",
    "generation_path",
    "heads",
    "total_heads",
    "prefill",
    "steps",
    "decode_generations",
    "decode_step_ns",
    "exact",
];

#[test]
fn json_records_keep_their_fields_and_stderr_stays_quiet() {
    let Some(_) = common::gpu() else { return };
    // `succeed` also asserts that stderr is empty: no bar, no warning.
    let stdout = succeed(&[
        "bench",
        "--json",
        "--case",
        "2x4x8x12",
        "--runs",
        "1",
        "--decode-steps",
        "8",
    ]);
    let records: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    // Other kinds of records (issue 9's variants, the attention timings) may come between.
    let only = |kind: &str| {
        let found: Vec<&Value> = records.iter().filter(|r| r["case"] == kind).collect();
        assert_eq!(found.len(), 1, "one {kind} record expected: {stdout}");
        found[0]
    };
    let (case, decode) = (only("forward"), only("decode"));
    for field in CASE_FIELDS {
        assert!(
            case.get(field).is_some(),
            "forward record lacks {field}: {case}"
        );
    }
    for field in DECODE_FIELDS {
        assert!(
            decode.get(field).is_some(),
            "decode record lacks {field}: {decode}"
        );
    }
    assert_eq!(case["case"], "forward");
    assert_eq!(
        [&case["heads"], &case["total_heads"], &case["i"], &case["j"]],
        [2, 4, 8, 12]
    );
    assert_eq!(case["exact"], true);
    assert_eq!(case["dense_exact"], true);
    assert!(
        case["dense_over_strided"].as_f64().is_some_and(|r| r > 0.0),
        "{case}"
    );
    assert!(
        case["dense_hit_over_copy"]
            .as_f64()
            .is_some_and(|r| r > 0.0),
        "{case}"
    );
    assert_eq!(case["cache_hit_misses"], 0);
    assert_eq!(decode["case"], "decode");
    assert_eq!(decode["prefill"], serde_json::json!([512, 512]));
    assert_eq!(decode["steps"], 8);
    assert_eq!(decode["exact"], true);
}

/// `--attention` alone runs only the fused attention: one `fused_attention` record per case,
/// with the ratios and the peak.
#[test]
fn attention_records_alone() {
    let Some(_) = common::gpu() else { return };
    let stdout = succeed(&[
        "bench",
        "--json",
        "--attention",
        "2x8x12x32",
        "--attention",
        "2x1x40x32",
        "--runs",
        "1",
    ]);
    let records: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    assert_eq!(records.len(), 2, "{stdout}");
    for record in &records {
        assert_eq!(record["case"], "fused_attention", "{record}");
        assert_eq!(record["sane"], true, "{record}");
        for field in [
            "fused_ms",
            "plain_ms",
            "fused_over_plain",
            "causal_over_fused",
            "materialized_over_fused",
        ] {
            assert!(
                record[field].as_f64().is_some_and(|x| x > 0.0),
                "{field}: {record}"
            );
        }
        // Rounded to 3 decimals: a tiny case's rate may round to 0.
        for field in ["fused_gflop_per_s", "fraction_of_peak"] {
            assert!(
                record[field].as_f64().is_some_and(|x| x >= 0.0),
                "{field}: {record}"
            );
        }
    }
}
