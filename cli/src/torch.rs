//! PyTorch's `scaled_dot_product_attention` with the ALiBi bias as `attn_mask`, for `alibi
//! bench`'s attention cases: run by the Python interpreter that `ALIBI_BENCH_PYTHON` names
//! (default `python3`) where it imports torch, on the host's cores or on the torch device
//! that `ALIBI_BENCH_TORCH_DEVICE` names (`cuda`: the same GPU as a Vulkan adapter, where
//! there is one); `None` otherwise.

use std::process::Command;

use crate::attention_bench::AttentionCase;

/// Times each case's SDPA (f32 on the named device, the bias built as x-transformers' `AlibiPositionalBias`
/// does, outside the timing): the median of `runs` runs after a warm-up, milliseconds.
const SCRIPT: &str = r#"
import json, sys, time, math
import torch
import torch.nn.functional as F
runs = int(sys.argv[1])
device = torch.device(sys.argv[3])
sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
out = []
for case in json.loads(sys.argv[2]):
    h, i, j, d = case
    slopes = torch.tensor([2 ** (-8 * (n + 1) / h) for n in range(h)]).view(h, 1, 1)
    q = (torch.rand(1, h, i, d) - 0.5).to(device)
    k = (torch.rand(1, h, j, d) - 0.5).to(device)
    v = (torch.rand(1, h, j, d) - 0.5).to(device)
    rows = torch.arange(j - i, j).view(i, 1)
    cols = torch.arange(j).view(1, j)
    bias = (-(cols - rows).abs().float() * slopes).to(device)
    times = []
    for n in range(runs + 1):
        sync()
        start = time.perf_counter()
        F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    times = sorted(times[1:])
    out.append(times[len(times) // 2])
where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} threads"
print(json.dumps({"torch": torch.__version__, "where": where, "ms": out}))
"#;

/// PyTorch's times for `cases`, one per case, or `None` where PyTorch cannot run here (or
/// lacks the named device); also its version and where it ran.
pub fn torch_times(cases: &[AttentionCase], runs: usize) -> Option<(String, Vec<f64>)> {
    let python = std::env::var("ALIBI_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let device = std::env::var("ALIBI_BENCH_TORCH_DEVICE").unwrap_or_else(|_| "cpu".into());
    let shapes: Vec<[usize; 4]> = cases.iter().map(|c| [c.heads, c.i, c.j, c.d]).collect();
    let output = Command::new(python)
        .args([
            "-c",
            SCRIPT,
            &runs.to_string(),
            &serde_json::to_string(&shapes).ok()?,
            &device,
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
        "torch {} on {}",
        report["torch"].as_str()?,
        report["where"].as_str()?
    );
    (times.len() == cases.len()).then_some((about, times))
}
