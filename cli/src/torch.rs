//! PyTorch's `scaled_dot_product_attention` with the ALiBi bias as `attn_mask`, on the
//! host's cores, for `alibi bench`'s attention cases: run by the Python interpreter that
//! `ALIBI_BENCH_PYTHON` names (default `python3`) where it imports torch; `None` otherwise.

use std::process::Command;

use crate::attention_bench::AttentionCase;

/// Times each case's SDPA (f32, the bias built as x-transformers' `AlibiPositionalBias`
/// does, outside the timing): the median of `runs` runs after a warm-up, milliseconds.
const SCRIPT: &str = r#"
import json, sys, time, math
import torch
import torch.nn.functional as F
runs = int(sys.argv[1])
out = []
for case in json.loads(sys.argv[2]):
    h, i, j, d = case
    slopes = torch.tensor([2 ** (-8 * (n + 1) / h) for n in range(h)]).view(h, 1, 1)
    q = torch.rand(1, h, i, d) - 0.5
    k = torch.rand(1, h, j, d) - 0.5
    v = torch.rand(1, h, j, d) - 0.5
    rows = torch.arange(j - i, j).view(i, 1)
    cols = torch.arange(j).view(1, j)
    bias = -(cols - rows).abs().float() * slopes
    times = []
    for n in range(runs + 1):
        start = time.perf_counter()
        F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        times.append((time.perf_counter() - start) * 1e3)
    times = sorted(times[1:])
    out.append(times[len(times) // 2])
print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "ms": out}))
"#;

/// PyTorch's times for `cases`, one per case, or `None` where PyTorch cannot run here;
/// also its version and thread count.
pub fn torch_times(cases: &[AttentionCase], runs: usize) -> Option<(String, Vec<f64>)> {
    let python = std::env::var("ALIBI_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let shapes: Vec<[usize; 4]> = cases.iter().map(|c| [c.heads, c.i, c.j, c.d]).collect();
    let output = Command::new(python)
        .args([
            "-c",
            SCRIPT,
            &runs.to_string(),
            &serde_json::to_string(&shapes).ok()?,
        ])
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
    let times: Vec<f64> = report["ms"]
        .as_array()?
        .iter()
        .filter_map(|x| x.as_f64())
        .collect();
    let about = format!(
        "torch {} on {} threads",
        report["torch"].as_str()?,
        report["threads"]
    );
    (times.len() == cases.len()).then_some((about, times))
}
