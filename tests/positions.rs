//! The bias at custom positions (issue 9, x-transformers' `forward_custom_pos`) against the
//! oracle, bit for bit: shared and batched positions, any order, repeats and negatives,
//! causal and f16 modules, small binding windows, on every generation path.
// Native only: the browser has its own suite, tests/web.rs.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use alibi_wgpu::{
    reference, AlibiConfig, AlibiError, AlibiPositionalBias, BiasDtype, HostBias, Positions,
    MAX_POSITION,
};
use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};

const CASES: u32 = 32;

/// The f32 values an f16 module's element holds, by the rule of docs/semantics.md (round to nearest
/// even, finite values saturated at ±65504), written with `half` apart from the crate.
fn as_stored(dtype: BiasDtype, expected: HostBias) -> Vec<f32> {
    let values = expected.into_vec();
    match dtype {
        BiasDtype::F16 => values
            .into_iter()
            .map(|v| common::spec_f16(v).to_f32())
            .collect(),
        _ => values,
    }
}

/// One batch item's positions.
fn item(values: &[i32], batched: bool, item: usize, per_item: usize) -> &[i32] {
    if batched {
        &values[item * per_item..(item + 1) * per_item]
    } else {
        values
    }
}

/// Every view of `forward_positions` read back equals the oracle for its batch item.
fn positions_match(
    module: &AlibiPositionalBias,
    queries: (&[i32], Option<usize>),
    keys: (&[i32], Option<usize>),
) -> Result<(), TestCaseError> {
    fn side((values, batch): (&[i32], Option<usize>)) -> Positions<'_> {
        match batch {
            Some(batch) => Positions::batched(values, batch),
            None => Positions::shared(values),
        }
    }
    let context = format!(
        "causal {}, {}, {:?}, heads {}/{}, queries {queries:?}, keys {keys:?}",
        module.causal(),
        module.dtype(),
        module.generation_path(),
        module.heads(),
        module.total_heads()
    );
    let views = module
        .forward_positions(side(queries), side(keys))
        .map_err(|e| TestCaseError::fail(format!("{context}: {e}")))?;
    let batch = queries.1.or(keys.1).unwrap_or(1);
    prop_assert_eq!(views.len(), batch);
    let i = queries.0.len() / queries.1.unwrap_or(1).max(1);
    let j = keys.0.len() / keys.1.unwrap_or(1).max(1);
    for (b, view) in views.iter().enumerate() {
        prop_assert_eq!(view.shape(), [module.total_heads(), i, j]);
        let host = pollster::block_on(module.read(view))
            .map_err(|e| TestCaseError::fail(format!("{context}: reading: {e}")))?;
        let expected = reference::forward_positions(
            module.slopes(),
            module.total_heads(),
            item(queries.0, queries.1.is_some(), b, i),
            item(keys.0, keys.1.is_some(), b, j),
            module.causal(),
        )
        .unwrap();
        let shape = expected.shape();
        let stored = HostBias::clone(&expected);
        let stored = as_stored(module.dtype(), stored);
        let got: Vec<u32> = host.as_slice().iter().map(|v| v.to_bits()).collect();
        let want: Vec<u32> = stored.iter().map(|v| v.to_bits()).collect();
        if got != want {
            let difference = common::mismatch_values(shape, host.as_slice(), &expected);
            return Err(TestCaseError::fail(format!(
                "{context}, item {b}: {}",
                difference.unwrap_or_else(|| "differs from the f16 rounding".into())
            )));
        }
    }
    Ok(())
}

fn positions(max_len: usize) -> impl Strategy<Value = Vec<i32>> {
    prop::collection::vec(
        prop_oneof![-40i32..300, -MAX_POSITION..=MAX_POSITION],
        1..=max_len,
    )
}

#[test]
fn custom_positions_equal_the_oracle() {
    let Some(gpu) = common::gpu() else { return };
    let strategy = (
        proptest::sample::select(common::generation_paths(gpu)),
        proptest::sample::select(common::dtypes(gpu)),
        any::<bool>(),
        (1usize..=10, 0usize..=3),
        1usize..=3,
        (positions(24), any::<bool>()),
        (positions(70), any::<bool>()),
        prop::option::of(1024u64..4096),
    );
    let mut runner = TestRunner::new(common::proptest_config(CASES));
    let result = runner.run(
        &strategy,
        |(path, dtype, causal, (heads, pad), batch, (queries, qb), (keys, kb), window)| {
            let config = AlibiConfig::new(heads)
                .total_heads(heads + pad)
                .causal(causal)
                .dtype(dtype)
                .generation_path(path);
            let module = common::windowed_module(gpu, window, config);
            // A batched side repeats its positions, shifted, per item.
            let batched = |values: &[i32], on: bool| -> (Vec<i32>, Option<usize>) {
                if !on {
                    return (values.to_vec(), None);
                }
                let all = (0..batch as i32)
                    .flat_map(|b| values.iter().map(move |v| (v + 7 * b).min(MAX_POSITION)))
                    .collect();
                (all, Some(batch))
            };
            let (q, qbatch) = batched(&queries, qb);
            let (k, kbatch) = batched(&keys, kb);
            positions_match(&module, (&q, qbatch), (&k, kbatch))
        },
    );
    if let Err(error) = result {
        panic!("{error}");
    }
}

#[test]
fn the_issue_example_and_the_module_positions() {
    let Some(gpu) = common::gpu() else { return };
    for path in common::generation_paths(gpu) {
        let mut module = common::module(
            gpu,
            AlibiConfig::new(4).total_heads(6).generation_path(path),
        );
        // queries 0,1,2,4 against keys 0,1,2,3,5.
        positions_match(&module, (&[0, 1, 2, 4], None), (&[0, 1, 2, 3, 5], None)).unwrap();
        // The module's own positions (queries at j - i + r) give forward's values.
        let (i, j) = (5usize, 9usize);
        let queries: Vec<i32> = (0..i as i32).map(|r| (j - i) as i32 + r).collect();
        let keys: Vec<i32> = (0..j as i32).collect();
        let views = module
            .forward_positions(Positions::shared(&queries), Positions::shared(&keys))
            .unwrap();
        let at_positions = common::read(&module, &views[0]);
        let forward = common::forward(&mut module, i, j);
        common::assert_same(&at_positions, &forward, "positions j - i + r");
    }
}

#[test]
fn refusals_are_typed() {
    let Some(gpu) = common::gpu() else { return };
    let module = common::module(gpu, AlibiConfig::new(2));
    let shared = Positions::shared(&[0, 1]);
    assert!(matches!(
        module.forward_positions(Positions::batched(&[0, 1, 2], 2), shared),
        Err(AlibiError::PositionsMismatch { .. })
    ));
    assert!(matches!(
        module.forward_positions(
            Positions::batched(&[0, 1], 2),
            Positions::batched(&[0, 1, 2], 3)
        ),
        Err(AlibiError::PositionsMismatch { .. })
    ));
    assert!(matches!(
        module.forward_positions(shared, Positions::shared(&[MAX_POSITION + 1])),
        Err(AlibiError::PositionOutOfRange {
            side: "key",
            index: 0,
            ..
        })
    ));
    let empty = module
        .forward_positions(Positions::shared(&[]), shared)
        .unwrap();
    assert_eq!(
        (empty.len(), empty[0].shape(), empty[0].is_empty()),
        (1, [2, 0, 2], true)
    );
    assert!(module
        .forward_positions(Positions::batched(&[], 0), shared)
        .unwrap()
        .is_empty());
    // An empty side splits into any batch: 2^64 - 1 empty views are refused, not a panic.
    assert!(matches!(
        module.forward_positions(Positions::batched(&[], usize::MAX), shared),
        Err(AlibiError::OutOfMemory { .. })
    ));
}
