//! The crate in a real browser: headless Chromium on WebGPU (`scripts/web-test` runs it with
//! wasm-bindgen-test). Every result is compared with `==` against the oracle compiled into
//! the same wasm: the vectors of docs/semantics.md, the slopes of 1..64 heads, a few hundred random shapes
//! and call sequences through the cache (decode steps included), and tensors that need
//! more dispatch rows than one dispatch allows.
#![cfg(target_arch = "wasm32")]

#[path = "../../tests/closed_form/mod.rs"]
mod closed_form;

use alibi_wgpu::{
    alibi_slopes, open_device, reference, AlibiBias, AlibiConfig, AlibiPositionalBias, BiasDtype,
    GenerationPath, GpuDevice, HostBias, Positions,
};
use closed_form::closed_form_slopes;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

/// A device of this test's own: the browser's WebGPU adapter, or a failure (never a skip).
async fn gpu() -> GpuDevice {
    match open_device(None).await {
        Ok(gpu) => gpu,
        Err(error) => panic!("no WebGPU adapter in this browser: {error}"),
    }
}

fn module(gpu: &GpuDevice, config: AlibiConfig) -> AlibiPositionalBias {
    let module = AlibiPositionalBias::on_device(gpu, config).expect("a module");
    assert_eq!(
        module.generation_path(),
        GenerationPath::Shader,
        "the web runs the kernel"
    );
    module
}

async fn read(module: &AlibiPositionalBias, view: &AlibiBias) -> HostBias {
    module.read(view).await.expect("readback")
}

/// Panics with the first difference, bit for bit, unless the tensors are equal.
fn assert_same(actual: &HostBias, expected: &HostBias, context: &str) {
    assert_eq!(actual.shape(), expected.shape(), "{context}");
    let differs = actual
        .as_slice()
        .iter()
        .zip(expected.as_slice())
        .position(|(a, e)| a.to_bits() != e.to_bits());
    if let Some(index) = differs {
        panic!(
            "{context}: element {index} is {} ({:#010x}), expected {} ({:#010x})",
            actual.as_slice()[index],
            actual.as_slice()[index].to_bits(),
            expected.as_slice()[index],
            expected.as_slice()[index].to_bits()
        );
    }
}

async fn check_forward(module: &mut AlibiPositionalBias, i: usize, j: usize, context: &str) {
    let view = module.forward(i, j).expect("forward");
    let expected = reference::forward(module.slopes(), module.total_heads(), i, j).expect("oracle");
    assert_same(
        &read(module, &view).await,
        &expected,
        &format!("{context}: forward({i}, {j})"),
    );
}

/// A small xorshift generator: the same shapes on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n) as usize
    }
}

#[wasm_bindgen_test]
async fn spec_worked_example_and_cache_checks() {
    let gpu = gpu().await;
    let mut alibi = module(&gpu, AlibiConfig::new(4).total_heads(8));
    let bias = alibi.forward_to_host(3, 5).await.expect("forward_to_host");
    let distance = [
        [-2.0f32, -1.0, 0.0, -1.0, -2.0],
        [-3.0, -2.0, -1.0, 0.0, -1.0],
        [-4.0, -3.0, -2.0, -1.0, 0.0],
    ];
    for (h, slope) in [0.25f32, 0.0625, 0.015625, 0.00390625, 0.0, 0.0, 0.0, 0.0]
        .into_iter()
        .enumerate()
    {
        for (r, row) in distance.iter().enumerate() {
            let expected: Vec<f32> = row.iter().map(|d| d * slope).collect();
            assert_eq!(bias.row(h, r), &expected[..], "head {h}, row {r}");
        }
    }
    // docs/semantics.md's two checks that tell the bottom-right slice from the wrong one.
    let mut distance = module(&gpu, AlibiConfig::new(1).custom_slopes(vec![1.0]));
    distance.forward(4, 4).expect("forward");
    assert_eq!(
        distance
            .forward_to_host(1, 3)
            .await
            .expect("hit")
            .as_slice(),
        &[-2.0, -1.0, 0.0]
    );
    let mut distance = module(&gpu, AlibiConfig::new(1).custom_slopes(vec![1.0]));
    distance.forward(3, 5).expect("forward");
    let hit = distance.forward_to_host(2, 3).await.expect("hit");
    assert_eq!(hit.as_slice(), &[-1.0, 0.0, -1.0, -2.0, -1.0, 0.0]);
    assert_eq!(distance.cache_stats().hits, 1, "(2, 3) inside (3, 5)");
    let matrix = read(&alibi, &alibi.get_bias(3, 5).expect("get_bias")).await;
    assert_same(
        &matrix,
        &reference::get_bias(3, 5).unwrap(),
        "get_bias(3, 5)",
    );
    assert!(alibi.forward(0, 5).expect("empty").is_empty());
}

#[wasm_bindgen_test]
async fn slopes_of_1_to_64_heads() {
    let gpu = gpu().await;
    for heads in 1..=64 {
        let mut alibi = module(&gpu, AlibiConfig::new(heads));
        assert_eq!(
            alibi.slopes(),
            &closed_form_slopes(heads)[..],
            "heads = {heads}"
        );
        assert_eq!(
            alibi.slopes(),
            &alibi_slopes(heads).unwrap()[..],
            "heads = {heads}"
        );
        check_forward(&mut alibi, 2, 3, &format!("heads = {heads}")).await;
    }
}

#[wasm_bindgen_test]
async fn random_shapes_and_call_sequences_through_the_cache() {
    let gpu = gpu().await;
    let mut rng = Rng(0x0DDB_1A5E_5BAD_5EED);
    let mut alibi = module(
        &gpu,
        AlibiConfig::new(5)
            .total_heads(7)
            .cache_budget_bytes(1 << 20),
    );
    for call in 0..300 {
        let (i, j) = (rng.below(40), rng.below(300));
        check_forward(&mut alibi, i, j, &format!("call {call}")).await;
        if rng.below(10) == 0 {
            alibi.clear_cache();
        }
    }
    let stats = alibi.cache_stats();
    assert!(stats.hits > 10 && stats.misses > 10, "{stats:?}");
}

#[wasm_bindgen_test]
async fn decode_steps_are_served_from_the_cache() {
    let gpu = gpu().await;
    let mut alibi = module(&gpu, AlibiConfig::new(12).total_heads(16));
    check_forward(&mut alibi, 64, 64, "prefill").await;
    let misses = alibi.cache_stats().misses;
    for t in 65..=300 {
        check_forward(&mut alibi, 1, t, "decode").await;
    }
    // 64 keys grow to 128, 256, 512: three generations for 236 steps.
    assert_eq!(alibi.cache_stats().misses - misses, 3);
}

// Binding windows are tested on native adapters, whose devices can be asked for a small
// `max_storage_buffer_binding_size` (tests/common's `windowed_device`); a browser raises such a
// request to WebGPU's default, 128 MiB, too large for a test here. The planner is the same
// Rust code on both.
#[wasm_bindgen_test]
async fn more_rows_than_one_dispatch_allows() {
    let gpu = gpu().await;
    let max_rows = gpu.device.limits().max_compute_workgroups_per_dimension as usize;
    let mut tall = module(&gpu, AlibiConfig::new(1).total_heads(2));
    check_forward(&mut tall, max_rows + 100, 4, "rows past the dispatch limit").await;
}

#[wasm_bindgen_test]
async fn causal_modules_and_custom_positions_in_the_browser() {
    let gpu = gpu().await;
    let mut causal = module(&gpu, AlibiConfig::new(5).total_heads(7).causal(true));
    let mut rng = Rng(0x00c0_ffee);
    for _ in 0..40 {
        let (i, j) = (1 + rng.below(40), 1 + rng.below(300));
        let view = causal.forward(i, j).expect("forward");
        let expected = reference::forward_causal(causal.slopes(), 7, i, j).expect("oracle");
        assert_same(
            &read(&causal, &view).await,
            &expected,
            &format!("causal ({i}, {j})"),
        );
    }
    let queries: Vec<i32> = (0..23).map(|_| rng.below(500) as i32 - 100).collect();
    let keys: Vec<i32> = (0..70).map(|_| rng.below(500) as i32 - 100).collect();
    for module in [&causal, &module(&gpu, AlibiConfig::new(3).total_heads(4))] {
        let views = module
            .forward_positions(Positions::shared(&queries), Positions::shared(&keys))
            .expect("positions");
        let total = module.total_heads();
        let expected =
            reference::forward_positions(module.slopes(), total, &queries, &keys, module.causal())
                .expect("oracle");
        assert_same(&read(module, &views[0]).await, &expected, "positions");
    }
    // f16 on every adapter, shader-f16 or not (SwiftShader has none): the f32 values
    // rounded to nearest, ties to even, bit for bit.
    let mut f16 = module(
        &gpu,
        AlibiConfig::new(2).total_heads(3).dtype(BiasDtype::F16),
    );
    let view = f16.forward(5, 37).expect("f16 forward");
    let got = f16.read_f16(&view).await.expect("f16 read").into_vec();
    let expected = reference::forward(f16.slopes(), 3, 5, 37).expect("oracle");
    let rounded: Vec<u16> = expected
        .as_slice()
        .iter()
        .map(|&x| half::f16::from_f32(x).to_bits())
        .collect();
    let got: Vec<u16> = got.iter().map(|x| x.to_bits()).collect();
    assert_eq!(got, rounded, "f16 (5, 37)");
}

#[wasm_bindgen_test]
async fn refusals_leave_the_module_usable() {
    let gpu = gpu().await;
    assert!(AlibiPositionalBias::on_device(&gpu, AlibiConfig::new(0)).is_err());
    let mut alibi = module(&gpu, AlibiConfig::new(2));
    assert!(alibi.forward(1 << 25, 1).is_err());
    assert!(alibi.forward(1 << 24, 1 << 24).is_err());
    check_forward(&mut alibi, 3, 5, "after refusals").await;
}

/// A generation that fails on the GPU, its error answering later (as every WebGPU error
/// scope does): its read rejects with the cause, other calls' reads (made before and after)
/// are unaffected, and the failed cache entry is evicted, not served again.
///
/// The failure is a validation error inside the generation's own submission: the test
/// destroys the buffer of a cached tensor, evicts it (the module keeps evicted buffers for
/// reuse) and asks for the same shape again, so the new generation writes into the
/// destroyed buffer. (An out-of-memory generation would take the same path, through the
/// out-of-memory scope; provoking one in SwiftShader has not been tried yet.)
#[wasm_bindgen_test]
async fn a_failed_generation_is_reported_by_its_own_reads_only() {
    let gpu = gpu().await;
    let mut alibi = module(&gpu, AlibiConfig::new(4));
    let (heads, i, j) = (alibi.total_heads(), 4, 16);
    let expected = reference::forward(alibi.slopes(), heads, i, j).expect("oracle");
    let before = alibi.get_bias(3, 5).expect("get_bias");
    let victim = alibi.forward(i, j).expect("forward");
    assert_same(
        &read(&alibi, &victim).await,
        &expected,
        "before the failure",
    );
    victim.buffer().expect("a buffer").destroy();
    drop(victim);
    alibi.clear_cache();
    // Reuses the destroyed buffer: the submission is invalid, which WebGPU says later.
    let failed = alibi
        .forward(i, j)
        .expect("the error answers after forward returns");
    let after = alibi.get_bias(2, 7).expect("get_bias");
    assert_same(
        &read(&alibi, &before).await,
        &reference::get_bias(3, 5).expect("oracle"),
        "a call made before the failure",
    );
    match alibi.read(&failed).await {
        // The cause: the generation's own submission, rejected by WebGPU.
        Err(alibi_wgpu::AlibiError::Gpu { operation, .. }) => {
            assert_eq!(operation, "submitting the bias generation");
        }
        other => panic!("the failed generation's read: {other:?}"),
    }
    // Its next read says the same.
    assert!(alibi.read(&failed).await.is_err());
    assert_same(
        &read(&alibi, &after).await,
        &reference::get_bias(2, 7).expect("oracle"),
        "a call made after the failure",
    );
    // The failed entry is not served again: the same shape is generated anew.
    let misses = alibi.cache_stats().misses;
    let again = alibi.forward(i, j).expect("forward");
    assert_eq!(alibi.cache_stats().misses, misses + 1, "regenerated");
    assert_same(&read(&alibi, &again).await, &expected, "after the failure");
    // The regenerated entry is served from the cache as usual.
    check_forward(&mut alibi, 2, 9, "a hit after the failure").await;
}

/// A device destroyed between a forward and its read: the read rejects with the loss,
/// later calls too, and nothing panics.
#[wasm_bindgen_test]
async fn a_device_destroyed_mid_run_rejects_the_read() {
    let gpu = gpu().await;
    let mut alibi = module(&gpu, AlibiConfig::new(4));
    let view = alibi.forward(8, 64).expect("forward");
    alibi.device().destroy();
    match alibi.read(&view).await {
        Err(alibi_wgpu::AlibiError::DeviceLost { .. }) => {}
        other => panic!("the read after destroy(): {other:?}"),
    }
    assert!(matches!(
        alibi.forward(3, 200),
        Err(alibi_wgpu::AlibiError::DeviceLost { .. })
    ));
    assert!(matches!(
        alibi.read(&view).await,
        Err(alibi_wgpu::AlibiError::DeviceLost { .. })
    ));
}

#[path = "attention/mod.rs"]
mod attention;
