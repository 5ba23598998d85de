//! What `alibi bench` reports: one typed record per case and one for the decode loop,
//! printed as a table row or as one JSON object per line (`--json`).
//!
//! The JSON field names are an interface: scripts and `tests/cli.rs` read them, and the
//! docs/command-line.md lists them. Renaming a field here renames it there.

use serde::Serialize;

/// One JSON line: what was measured where, then the measurements.
#[derive(Debug, Serialize)]
pub struct Record<'a, T> {
    /// `forward` for a case, `decode` for the decode loop.
    pub case: &'static str,
    /// The adapter's backend, lowercase (`vulkan`, `gl`, ...).
    pub backend: &'a str,
    /// The adapter's name.
    pub adapter: &'a str,
    /// Timed runs per figure; each figure is their median.
    pub runs: usize,
    /// The measurements.
    #[serde(flatten)]
    pub report: &'a T,
}

/// What every record of one run shares: where it was measured, and how often.
#[derive(Debug)]
pub struct Tags<'a> {
    /// The adapter's backend, lowercase.
    pub backend: &'a str,
    /// The adapter's name.
    pub adapter: &'a str,
    /// Timed runs per figure.
    pub runs: usize,
}

impl<'a> Tags<'a> {
    /// The record of `report`, of kind `case`.
    pub fn record<T>(&self, case: &'static str, report: &'a T) -> Record<'a, T> {
        Record {
            case,
            backend: self.backend,
            adapter: self.adapter,
            runs: self.runs,
            report,
        }
    }
}

/// The measurements of one case `[total_heads, i, j]`.
#[derive(Debug, Serialize)]
pub struct CaseReport {
    /// Where the module generates: `HostMapped` or `Shader`.
    pub generation_path: String,
    /// Heads with a slope.
    pub heads: usize,
    /// Output heads, padding included.
    pub total_heads: usize,
    /// Queries.
    pub i: usize,
    /// Keys.
    pub j: usize,
    /// Bytes one generation writes (rows padded to a multiple of 4 columns), and one copy
    /// moves.
    pub bytes: u64,
    /// One generation on the module's path, finished.
    pub generate_ms: f64,
    /// `bytes` over `generate_ms`.
    pub generate_gb_per_s: f64,
    /// A copy of the same bytes on the same device, finished.
    pub copy_ms: f64,
    /// `generate_ms` over `copy_ms`.
    pub generate_over_copy: f64,
    /// One generation by the WGSL kernel, whatever the path.
    pub shader_generate_ms: f64,
    /// `shader_generate_ms` over `copy_ms`.
    pub shader_over_copy: f64,
    /// `forward` plus readback into a reused vector, cache cleared.
    pub forward_to_host_ms: f64,
    /// The same into a new vector (page faults included).
    pub forward_to_new_host_vec_ms: f64,
    /// `alibi_wgpu::cpu::forward_into` into a reused vector.
    pub cpu_path_ms: f64,
    /// A repeated `forward(i, j)`, served from the cache.
    pub cache_hit_ns: f64,
    /// Misses among those repeats: 0 unless the cache is broken.
    pub cache_hit_misses: u64,
    /// The GPU's readback and the CPU path's result both equal the oracle.
    pub exact: bool,
    /// The strided `forward(i, j)`, fresh: nothing cached or kept for reuse, so it
    /// allocates its tensor; finished.
    pub strided_fresh_ms: f64,
    /// `forward_dense(i, j)`, fresh as above (the engine layout, into a new buffer).
    pub dense_ms: f64,
    /// `dense_ms` over `strided_fresh_ms`.
    pub dense_over_strided: f64,
    /// `encode_into` a caller's buffer allocated once, fresh: the dense kernel without a
    /// new buffer (whose allocation and zeroing by wgpu `dense_ms` includes).
    pub dense_into_ms: f64,
    /// `dense_into_ms` over `strided_fresh_ms`.
    pub dense_into_over_strided: f64,
    /// `encode_into` the same buffer, fresh, for `[total_heads, i, j]` with `j` rounded up
    /// to a multiple of 4: rows of whole vec4s from byte 0, the strided kernel's tensor for
    /// `forward(i, j)`, which that kernel writes.
    pub strided_into_ms: f64,
    /// `dense_into_ms` over `strided_into_ms`: the dense kernel over the strided one, both
    /// into a buffer allocated once.
    pub dense_into_over_strided_into: f64,
    /// `forward_dense(i, j)` with the cache holding `(i, j)`: a copy on the GPU.
    pub dense_hit_ms: f64,
    /// A device copy of the same bytes into a new buffer, finished.
    pub dense_copy_ms: f64,
    /// `dense_hit_ms` over `dense_copy_ms`.
    pub dense_hit_over_copy: f64,
    /// `encode_into` a caller's buffer allocated once with the cache holding `(i, j)`: the
    /// copy from the cache alone (commands or the copy kernel), no allocation.
    pub dense_hit_into_ms: f64,
    /// A device copy of the same bytes into that same buffer, finished.
    pub dense_copy_into_ms: f64,
    /// `dense_hit_into_ms` over `dense_copy_into_ms`: the copy's own cost, which
    /// allocation (large and uneven on real GPUs) does not blur.
    pub dense_hit_into_over_copy: f64,
    /// Both dense results equal the oracle, bit for bit.
    pub dense_exact: bool,
}

/// The decode loop: a `(512, 512)` prefill, then `forward(1, t)` for t = 1..=steps.
#[derive(Debug, Serialize)]
pub struct DecodeReport {
    /// Where the module generates: `HostMapped` or `Shader`.
    pub generation_path: String,
    /// Heads with a slope.
    pub heads: usize,
    /// Output heads, padding included.
    pub total_heads: usize,
    /// The prefill's `(i, j)`.
    pub prefill: [usize; 2],
    /// Decode steps.
    pub steps: usize,
    /// Generations in the whole loop, prefill included (cache misses).
    pub decode_generations: u64,
    /// Median host time of one step.
    pub decode_step_ns: f64,
    /// Every checked step equals the oracle.
    pub exact: bool,
}

impl CaseReport {
    /// The row of the table that `alibi bench` prints without `--json`.
    pub fn table_row(&self) -> String {
        let path = match self.generation_path.as_str() {
            "HostMapped" => "host-mapped",
            "Shader" => "shader",
            other => other,
        };
        format!(
            "{:<22} {:>7.1} {:>11} {:>8.2} {:>7.2} {:>8.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>11.2} {:>8.0} {:>9.2} {:>9.2} {:>10.2} {:>9.2} {:>10.2} {:>6}",
            format!("{} heads [{}, {}, {}]", self.heads, self.total_heads, self.i, self.j),
            self.bytes as f64 / (1u64 << 20) as f64,
            path,
            self.generate_ms,
            self.generate_gb_per_s,
            self.copy_ms,
            self.generate_over_copy,
            self.shader_over_copy,
            self.forward_to_host_ms,
            self.forward_to_new_host_vec_ms,
            self.cpu_path_ms,
            self.cache_hit_ns,
            self.dense_over_strided,
            self.dense_into_over_strided,
            self.dense_into_over_strided_into,
            self.dense_hit_over_copy,
            self.dense_hit_into_over_copy,
            self.exact && self.dense_exact,
        )
    }
}

impl DecodeReport {
    /// The line `alibi bench` prints after the table without `--json`.
    pub fn summary(&self) -> String {
        format!(
            "decode: heads {} (total {}), prefill ({}, {}), {} steps forward(1, t): {} GPU generations, median {} ns per step, exact: {}",
            self.heads,
            self.total_heads,
            self.prefill[0],
            self.prefill[1],
            self.steps,
            self.decode_generations,
            self.decode_step_ns,
            self.exact
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_record_is_flat_json() {
        let report = DecodeReport {
            generation_path: "Shader".to_owned(),
            heads: 12,
            total_heads: 16,
            prefill: [512, 512],
            steps: 4,
            decode_generations: 2,
            decode_step_ns: 50.0,
            exact: true,
        };
        let tags = Tags {
            backend: "vulkan",
            adapter: "llvmpipe",
            runs: 3,
        };
        let record = tags.record("decode", &report);
        let json: serde_json::Value = serde_json::to_value(&record).unwrap();
        assert_eq!(json["case"], "decode");
        assert_eq!(json["prefill"], serde_json::json!([512, 512]));
        assert_eq!(json["decode_generations"], 2);
        assert_eq!(json["exact"], true);
        assert!(json.get("report").is_none(), "{json}");
    }
}
