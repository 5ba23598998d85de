//! Device loss: after `device.destroy()` every call of a module returns
//! `AlibiError::DeviceLost` within a bounded time (no panic, no hang), cache hits included,
//! on a device this crate opened and on an engine's own device that forwards its lost
//! callback; and a new module on a new device works.
//!
//! Each test opens devices of its own: the shared test device must survive.
// Native only: the browser has its own suite, tests/web.rs.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use alibi_wgpu::{open_device, AlibiConfig, AlibiError, AlibiPositionalBias, GenerationPath};

/// How long any call may take once the device is lost.
const BOUND: Duration = Duration::from_secs(10);

fn assert_lost<T>(result: Result<T, AlibiError>, call: &str, started: Instant) {
    let elapsed = started.elapsed();
    match result {
        Err(AlibiError::DeviceLost { reason, .. }) => {
            assert_eq!(reason, wgpu::DeviceLostReason::Destroyed, "{call}");
        }
        Err(other) => panic!("{call} after destroy(): expected DeviceLost, got {other:?}"),
        Ok(_) => panic!("{call} after destroy() succeeded"),
    }
    assert!(elapsed < BOUND, "{call} took {elapsed:?}");
}

/// Destroys the module's device, then makes every kind of call and expects `DeviceLost`
/// from each. Runs in a thread of its own so that a hang fails the test instead of
/// stalling it.
fn every_call_reports_the_loss(mut alibi: AlibiPositionalBias, device: wgpu::Device) {
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        // State from before the loss: a cached tensor, a view, a target buffer.
        let view = alibi.forward(16, 16).expect("forward before the loss");
        pollster::block_on(alibi.read(&view)).expect("readback before the loss");
        let target = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("caller target"),
            size: 4 * 4 * 16 * 16,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | if alibi.generation_path() == GenerationPath::HostMapped {
                    wgpu::BufferUsages::MAP_WRITE
                } else {
                    wgpu::BufferUsages::empty()
                },
            mapped_at_creation: false,
        });
        device.destroy();
        // wgpu delivers the loss at its next poll; a cache hit polls when a millisecond
        // has passed since the module's last poll, on a clock that moves by kernel ticks
        // (up to 4 ms), so it may succeed until then.
        std::thread::sleep(Duration::from_millis(20));
        let mut out = Vec::new();
        for round in 0..2 {
            let call = |name: &str| format!("{name} (round {round})");
            let t = Instant::now();
            assert_lost(alibi.forward(1, 16), &call("forward, a cache hit"), t);
            let t = Instant::now();
            assert_lost(alibi.forward(40, 40), &call("forward, a miss"), t);
            let t = Instant::now();
            assert_lost(
                pollster::block_on(alibi.forward_to_host(1, 8)),
                &call("forward_to_host, a hit"),
                t,
            );
            let t = Instant::now();
            assert_lost(
                pollster::block_on(alibi.forward_to_host_into(50, 50, &mut out)),
                &call("forward_to_host_into, a miss"),
                t,
            );
            let t = Instant::now();
            assert_lost(pollster::block_on(alibi.read(&view)), &call("read"), t);
            let t = Instant::now();
            assert_lost(alibi.get_bias(5, 5), &call("get_bias"), t);
            let mut encoder = device.create_command_encoder(&Default::default());
            let t = Instant::now();
            assert_lost(
                alibi.encode_forward(&mut encoder, 4, 4),
                &call("encode_forward"),
                t,
            );
            let t = Instant::now();
            assert_lost(
                alibi.encode_into(&mut encoder, 4, 4, &target, 0),
                &call("encode_into"),
                t,
            );
            if alibi.generation_path() == GenerationPath::HostMapped {
                let t = Instant::now();
                assert_lost(alibi.write_into(4, 4, &target, 0), &call("write_into"), t);
            }
            // What does not return a Result must not panic either.
            alibi.clear_cache();
            alibi.set_cache_budget(1 << 20);
            let _ = alibi.cached_bias();
            let _ = alibi.cache_stats();
        }
        let _ = done.send(());
    });
    match finished.recv_timeout(BOUND * 6) {
        Ok(()) => {}
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("calls after destroy() hung"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("calls after destroy() panicked"),
    }
}

/// A new module on a new device computes the worked example of docs/semantics.md.
fn a_new_device_works() {
    let gpu = pollster::block_on(open_device(None)).expect("a new device");
    let mut alibi = AlibiPositionalBias::on_device(
        &gpu,
        AlibiConfig::new(4)
            .total_heads(8)
            .generation_path(common::generation_path_from_env()),
    )
    .expect("a module on the new device");
    let host = pollster::block_on(alibi.forward_to_host(3, 5)).expect("forward_to_host");
    assert_eq!(host.row(0, 0), &[-0.5, -0.25, 0.0, -0.25, -0.5]);
    common::assert_same(&host, &common::expected(&alibi, 3, 5), "on a new device");
}

#[test]
fn a_device_opened_by_the_crate_reports_its_loss_on_every_call() {
    let Some(_) = common::gpu() else { return };
    let gpu = pollster::block_on(open_device(None)).expect("a device of this test's own");
    let config = AlibiConfig::new(4).generation_path(common::generation_path_from_env());
    let alibi = AlibiPositionalBias::on_device(&gpu, config.clone()).expect("a module");
    let sibling = AlibiPositionalBias::on_device(&gpu, config.clone()).expect("a second module");
    every_call_reports_the_loss(alibi, gpu.device.clone());
    // Every module on the device knows, and so does a module built after the loss.
    let mut sibling = sibling;
    assert_lost(
        sibling.forward(2, 2),
        "a sibling module's forward",
        Instant::now(),
    );
    assert_lost(
        AlibiPositionalBias::on_device(&gpu, config),
        "a new module on the lost device",
        Instant::now(),
    );
    a_new_device_works();
}

#[test]
fn an_engines_own_device_reports_its_loss_through_the_reporter() {
    let Some(shared) = common::gpu() else { return };
    // The engine opens its device itself, with the features the crate would ask for.
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter =
        pollster::block_on(instance.request_adapter(&Default::default())).expect("an adapter");
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        required_features: shared.device.features(),
        required_limits: adapter.limits(),
        ..Default::default()
    }))
    .expect("the engine's device");
    let config = AlibiConfig::new(4).generation_path(common::generation_path_from_env());
    let alibi = AlibiPositionalBias::with_config(&device, &queue, config).expect("a module");
    let reporter = alibi.device_loss_reporter();
    device.set_device_lost_callback(move |reason, message| reporter.report(reason, &message));
    every_call_reports_the_loss(alibi, device);
    a_new_device_works();
}

#[test]
fn cache_hits_learn_of_the_loss_within_milliseconds() {
    let Some(_) = common::gpu() else { return };
    let gpu = pollster::block_on(open_device(None)).expect("a device of this test's own");
    let config = AlibiConfig::new(4).generation_path(common::generation_path_from_env());
    let mut alibi = AlibiPositionalBias::on_device(&gpu, config).expect("a module");
    alibi.forward(16, 16).expect("forward before the loss");
    // wgpu delivers the loss once the queue is empty: let the generation finish first.
    gpu.device
        .poll(wgpu::PollType::wait_indefinitely())
        .expect("waiting for the generation");
    gpu.device.destroy();
    let destroyed = Instant::now();
    let mut hits = 0u64;
    loop {
        match alibi.forward(1, 16) {
            Ok(_) => hits += 1,
            Err(AlibiError::DeviceLost { .. }) => break,
            Err(other) => panic!("a cache hit after destroy(): {other:?}"),
        }
        assert!(
            destroyed.elapsed() < BOUND,
            "cache hits still succeed {BOUND:?} after destroy()"
        );
    }
    let elapsed = destroyed.elapsed();
    // Past libtest's capture: the figure of this run, for the logs.
    let _ = std::io::Write::write_fmt(
        &mut std::io::stderr(),
        format_args!("device loss: cache hits learned of it after {elapsed:?} ({hits} hits)\n"),
    );
    assert!(
        elapsed < Duration::from_millis(50),
        "{elapsed:?}, {hits} hits"
    );
    assert_lost(alibi.forward(1, 16), "the next hit", Instant::now());
}
