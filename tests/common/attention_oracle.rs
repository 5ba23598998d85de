//! The attention oracle: `softmax(q k^T * scale + alibi) v` in f64, written from the
//! definition, sharing no code with the kernel (docs/attention.md is the contract).

/// Everything a call is, in plain numbers.
#[derive(Clone, Debug)]
pub struct Case {
    pub batch: usize,
    pub query_heads: usize,
    pub kv_heads: usize,
    pub queries: usize,
    pub keys: usize,
    pub head_dim: usize,
    /// The module's slopes: heads past them are padding (no bias).
    pub slopes: Vec<f32>,
    pub alibi: bool,
    pub causal: bool,
    pub window: (Option<u32>, Option<u32>),
    pub query_offsets: Vec<i32>,
    pub key_offsets: Vec<i32>,
    pub scale: f64,
}

/// The output `[batch, query_heads, queries, head_dim]` in f64.
pub fn attention(case: &Case, q: &[f32], k: &[f32], v: &[f32]) -> Vec<f64> {
    let (b_n, h_n, g_n, i_n, j_n, d_n) = (
        case.batch,
        case.query_heads,
        case.kv_heads,
        case.queries,
        case.keys,
        case.head_dim,
    );
    let per_group = h_n / g_n;
    let mut out = vec![0.0f64; b_n * h_n * i_n * d_n];
    for b in 0..b_n {
        for h in 0..h_n {
            let kv = h / per_group;
            for r in 0..i_n {
                let query_position =
                    j_n as i64 - i_n as i64 + r as i64 + case.query_offsets[b] as i64;
                let q_row = &q[((b * h_n + h) * i_n + r) * d_n..][..d_n];
                let mut scores = Vec::with_capacity(j_n);
                for key in 0..j_n {
                    let key_position = key as i64 + case.key_offsets[b] as i64;
                    let ahead = key_position - query_position;
                    let hidden = (case.causal && ahead > 0)
                        || case.window.1.is_some_and(|right| ahead > right as i64)
                        || case.window.0.is_some_and(|left| -ahead > left as i64);
                    if hidden {
                        continue;
                    }
                    let k_row = &k[((b * g_n + kv) * j_n + key) * d_n..][..d_n];
                    let dot: f64 = q_row
                        .iter()
                        .zip(k_row)
                        .map(|(&x, &y)| x as f64 * y as f64)
                        .sum();
                    let bias = match case.slopes.get(h) {
                        Some(&slope) if case.alibi => -(ahead.abs() as f64) * slope as f64,
                        _ => 0.0,
                    };
                    scores.push((key, dot * case.scale + bias));
                }
                let Some(max) = scores.iter().map(|&(_, s)| s).reduce(f64::max) else {
                    continue; // no visible key: the row is 0
                };
                let total: f64 = scores.iter().map(|&(_, s)| (s - max).exp()).sum();
                let row = &mut out[((b * h_n + h) * i_n + r) * d_n..][..d_n];
                for &(key, s) in &scores {
                    let p = (s - max).exp() / total;
                    let v_row = &v[((b * g_n + kv) * j_n + key) * d_n..][..d_n];
                    for (o, &x) in row.iter_mut().zip(v_row) {
                        *o += p * x as f64;
                    }
                }
            }
        }
    }
    out
}
