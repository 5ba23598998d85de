// Native only: the browser has its own suite, tests/web.rs.
#![cfg(not(target_arch = "wasm32"))]
//! `alibi info`: the adapters it lists against what wgpu says in this process, and its
//! `auto` against the device and generation path the library really gives.

mod cli_support;
#[path = "../../tests/common/mod.rs"]
mod common;

use alibi_wgpu::{AlibiConfig, AlibiPositionalBias};
use cli_support::succeed;
use serde_json::Value;

#[test]
fn json_names_the_adapter_and_path_that_auto_gives() {
    let Some(gpu) = common::gpu() else { return };
    let report: Value = serde_json::from_str(&succeed(&["info", "--json"])).unwrap();
    let adapters = report["adapters"].as_array().expect("adapters");
    assert!(!adapters.is_empty(), "{report}");
    let picked: Vec<&Value> = adapters
        .iter()
        .filter(|a| a["picked_by_auto"] == true)
        .collect();
    assert_eq!(picked.len(), 1, "{report}");
    let adapter = picked[0];

    // The adapter of the tests' own device (the one WGPU_BACKEND picks), field by field.
    let info = &gpu.adapter_info;
    assert_eq!(adapter["name"], info.name.as_str());
    assert_eq!(
        adapter["backend"],
        format!("{:?}", info.backend).to_lowercase()
    );
    assert_eq!(adapter["device_type"], format!("{:?}", info.device_type));
    assert_eq!(adapter["driver"], info.driver.as_str());
    let limits = gpu.device.limits();
    assert_eq!(adapter["max_buffer_size"], limits.max_buffer_size);
    assert_eq!(
        adapter["max_storage_buffer_binding_size"],
        limits.max_storage_buffer_binding_size
    );
    assert_eq!(
        adapter["max_compute_workgroups_per_dimension"],
        limits.max_compute_workgroups_per_dimension
    );
    // open_device asks for mappable buffers exactly where the adapter has them on a CPU.
    let mappable = gpu
        .device
        .features()
        .contains(wgpu::Features::MAPPABLE_PRIMARY_BUFFERS);
    if info.device_type == wgpu::DeviceType::Cpu {
        assert_eq!(adapter["mappable_primary_buffers"], mappable);
    }
    for flag in ["shader_f16", "timestamp_query", "mappable_primary_buffers"] {
        assert!(adapter[flag].is_boolean(), "{flag}: {adapter}");
    }

    let module = AlibiPositionalBias::on_device(gpu, AlibiConfig::new(1)).unwrap();
    let path = match module.generation_path() {
        alibi_wgpu::GenerationPath::HostMapped => "host-mapped",
        _ => "shader",
    };
    assert_eq!(report["auto"]["adapter"], info.name.as_str());
    assert_eq!(report["auto"]["generation_path"], path, "{report}");
    assert_eq!(report["auto_error"], Value::Null);
}

#[test]
fn text_marks_what_auto_picks() {
    let Some(gpu) = common::gpu() else { return };
    let text = succeed(&["info"]);
    let name = &gpu.adapter_info.name;
    assert!(text.contains(&format!("auto (*): {name}")), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("* ") && l.contains(name.as_str())),
        "{text}"
    );
    for field in [
        "max buffer",
        "max storage binding",
        "max workgroups per dimension",
        "SHADER_F16",
        "TIMESTAMP_QUERY",
        "MAPPABLE_PRIMARY_BUFFERS",
    ] {
        assert!(text.contains(field), "{field}: {text}");
    }
}
