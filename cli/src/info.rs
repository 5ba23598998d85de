//! `alibi info`: every adapter wgpu finds, what matters about each for this crate, and what
//! `auto` picks.
//!
//! The adapters are those of the backends that `WGPU_BACKEND` selects (all of them when it
//! is unset), the same search `--backend auto` makes. What `auto` picks is not guessed:
//! `info` opens the device exactly as `alibi bias` does (`alibi_wgpu::open_device`) and
//! asks the library which generation path a module there takes
//! (`GenerationPath::Auto.resolve`).

use std::io::Write;

use alibi_wgpu::{open_device, AlibiError, GenerationPath};
use serde::Serialize;

use crate::error::CliError;

/// Arguments of `alibi info`.
#[derive(clap::Args, Debug)]
pub struct InfoArgs {
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Everything `info` reports.
#[derive(Debug, Serialize)]
struct Report {
    /// The backends searched, lowercase.
    backends: Vec<String>,
    /// Every adapter found, in wgpu's order.
    adapters: Vec<Adapter>,
    /// What `auto` picks; `None` when it finds no adapter.
    auto: Option<Auto>,
    /// Why `auto` has no adapter, or why its device did not open.
    auto_error: Option<String>,
}

/// One adapter.
#[derive(Debug, Serialize)]
struct Adapter {
    name: String,
    backend: String,
    device_type: String,
    driver: String,
    driver_info: String,
    /// PCI vendor and device ids (0 where the backend has none).
    vendor: u32,
    device: u32,
    /// The largest buffer: bounds the largest tensor.
    max_buffer_size: u64,
    /// The largest storage binding: larger tensors are generated in several windows.
    max_storage_buffer_binding_size: u64,
    /// Bounds each dispatch axis.
    max_compute_workgroups_per_dimension: u32,
    /// f16 in shaders (f16 biases converted by WGSL's `f16()`; without it they are rounded
    /// in integer arithmetic).
    shader_f16: bool,
    /// GPU timestamps (for profiling the kernel).
    timestamp_query: bool,
    /// Mappable storage buffers: the host-mapped generation path, on CPU adapters.
    mappable_primary_buffers: bool,
    /// Whether `auto` picks this adapter.
    picked_by_auto: bool,
}

/// The adapter `auto` picks, and where a module on it generates.
#[derive(Debug, Serialize)]
struct Auto {
    adapter: String,
    backend: String,
    generation_path: String,
}

/// Runs `alibi info`.
pub fn run(args: &InfoArgs) -> Result<(), CliError> {
    let report = survey()?;
    let mut stdout = std::io::stdout().lock();
    let text = if args.json {
        serde_json::to_string_pretty(&report).map_err(|e| CliError::Usage(e.to_string()))?
    } else {
        describe(&report)
    };
    writeln!(stdout, "{text}").map_err(CliError::Stdout)
}

/// Enumerates the adapters and opens `auto`'s device.
fn survey() -> Result<Report, CliError> {
    let descriptor = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    let backends = descriptor.backends;
    let instance = wgpu::Instance::new(descriptor);
    let found = pollster::block_on(instance.enumerate_adapters(backends));

    let (auto, auto_info, auto_error) = match pollster::block_on(open_device(None)) {
        Ok(gpu) => {
            let path = GenerationPath::Auto.resolve(&gpu.device)?;
            let auto = Auto {
                adapter: gpu.adapter_info.name.clone(),
                backend: backend_name(gpu.adapter_info.backend),
                generation_path: path_name(path).to_owned(),
            };
            (Some(auto), Some(gpu.adapter_info), None)
        }
        // No adapter is an answer here, not a failure: `alibi bias` then uses the CPU path.
        Err(error @ (AlibiError::NoAdapter { .. } | AlibiError::RequestDevice { .. })) => {
            (None, None, Some(alibi_wgpu::error_chain(&error)))
        }
        Err(error) => return Err(error.into()),
    };

    let adapters = found
        .iter()
        .map(|adapter| {
            let info = adapter.get_info();
            let limits = adapter.limits();
            let features = adapter.features();
            Adapter {
                picked_by_auto: auto_info.as_ref() == Some(&info),
                backend: backend_name(info.backend),
                device_type: format!("{:?}", info.device_type),
                vendor: info.vendor,
                device: info.device,
                max_buffer_size: limits.max_buffer_size,
                max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
                max_compute_workgroups_per_dimension: limits.max_compute_workgroups_per_dimension,
                shader_f16: features.contains(wgpu::Features::SHADER_F16),
                timestamp_query: features.contains(wgpu::Features::TIMESTAMP_QUERY),
                mappable_primary_buffers: features
                    .contains(wgpu::Features::MAPPABLE_PRIMARY_BUFFERS),
                name: info.name,
                driver: info.driver,
                driver_info: info.driver_info,
            }
        })
        .collect();
    Ok(Report {
        backends: backends
            .iter_names()
            .map(|(name, _)| name.to_lowercase())
            .collect(),
        adapters,
        auto,
        auto_error,
    })
}

/// The text form of the report.
fn describe(report: &Report) -> String {
    let mut lines = vec![format!(
        "{} adapter{} (backends searched: {}; WGPU_BACKEND narrows them)",
        report.adapters.len(),
        if report.adapters.len() == 1 { "" } else { "s" },
        report.backends.join(", ")
    )];
    for (n, adapter) in report.adapters.iter().enumerate() {
        let mark = if adapter.picked_by_auto { "*" } else { " " };
        let yes_no = |present| if present { "yes" } else { "no" };
        // GL reports no driver name, only its version string.
        let driver = [adapter.driver.as_str(), adapter.driver_info.as_str()]
            .into_iter()
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        lines.push(format!(
            "{mark} {n}: {} ({}, {}), driver: {driver}",
            adapter.name, adapter.backend, adapter.device_type
        ));
        lines.push(format!(
            "    max buffer {}, max storage binding {}, max workgroups per dimension {}",
            bytes(adapter.max_buffer_size),
            bytes(adapter.max_storage_buffer_binding_size),
            adapter.max_compute_workgroups_per_dimension
        ));
        lines.push(format!(
            "    SHADER_F16 {}, TIMESTAMP_QUERY {}, MAPPABLE_PRIMARY_BUFFERS {}",
            yes_no(adapter.shader_f16),
            yes_no(adapter.timestamp_query),
            yes_no(adapter.mappable_primary_buffers)
        ));
    }
    lines.push(match (&report.auto, &report.auto_error) {
        (Some(auto), _) => format!(
            "auto (*): {} ({}), generation path {}",
            auto.adapter, auto.backend, auto.generation_path
        ),
        (None, error) => format!(
            "auto: no adapter ({}); alibi bias and plot use the CPU path",
            error.as_deref().unwrap_or("none found")
        ),
    });
    lines.join("\n")
}

/// `vulkan`, `metal`, `dx12`, `gl`, `browserwebgpu`, ...
fn backend_name(backend: wgpu::Backend) -> String {
    format!("{backend:?}").to_lowercase()
}

/// The `--generation-path` spelling of a resolved path.
fn path_name(path: GenerationPath) -> &'static str {
    match path {
        GenerationPath::HostMapped => "host-mapped",
        _ => "shader",
    }
}

/// `2 GiB (2147483648 bytes)`: the unit a person reads, and the exact count.
fn bytes(count: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    match UNITS.iter().find(|(_, size)| count >= *size) {
        Some((unit, size)) => {
            format!(
                "{} {unit} ({count} bytes)",
                round2(count as f64 / *size as f64)
            )
        }
        None => format!("{count} bytes"),
    }
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_read_both_ways() {
        assert_eq!(bytes(128 << 20), "128 MiB (134217728 bytes)");
        assert_eq!(bytes((1 << 31) - 1), "2 GiB (2147483647 bytes)");
        assert_eq!(bytes(512), "512 bytes");
    }
}
