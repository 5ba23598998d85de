//! `dense_copies`: the copy commands that write a dense bias from the cache, for a target
//! the module cannot bind. Recorded by the test as a caller records them, they write the
//! oracle's bytes at the offset and nothing around them; a hit is counted once, and a
//! declined request (a miss, too many spans, spans that are not whole words) counts nothing.

mod common;

use alibi_wgpu::{AlibiConfig, BiasDtype, GenerationPath};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;

#[derive(Clone, Debug)]
struct Case {
    path: GenerationPath,
    dtype: BiasDtype,
    causal: bool,
    prefill: Option<(usize, usize)>,
    i: usize,
    j: usize,
    offset_words: u64,
    max_spans: usize,
}

fn cases(paths: Vec<GenerationPath>) -> impl Strategy<Value = Case> {
    (
        (
            prop::sample::select(paths),
            prop::sample::select(vec![BiasDtype::F32, BiasDtype::F16]),
            any::<bool>(),
        ),
        prop::option::of((0usize..40, 0usize..80)),
        (1usize..24, 1usize..60, 0u64..12),
        prop::sample::select(vec![1usize, 5, 64, usize::MAX]),
    )
        .prop_map(
            |((path, dtype, causal), prefill, (i, j, offset_words), max_spans)| Case {
                path,
                dtype,
                causal,
                prefill: prefill.map(|(a, b)| (i.max(a), j.max(b))),
                i,
                j,
                offset_words,
                max_spans,
            },
        )
}

#[test]
fn copies_write_the_oracle_or_decline_uncounted() {
    let Some(gpu) = common::gpu() else { return };
    let mut runner = TestRunner::new(common::proptest_config(96));
    runner
        .run(&cases(common::generation_paths(gpu)), |case| {
            let config = AlibiConfig::new(3)
                .total_heads(5)
                .causal(case.causal)
                .dtype(case.dtype)
                .generation_path(case.path);
            let mut alibi = common::module(gpu, config);
            if let Some((a, b)) = case.prefill {
                alibi.forward(a, b).unwrap();
            }
            let (i, j) = (case.i, case.j);
            let offset = case.offset_words * 4;
            let before = alibi.cache_stats();
            let copies = alibi.dense_copies(i, j, offset, case.max_spans).unwrap();
            let after = alibi.cache_stats();
            let context = format!("{case:?}");
            let Some(copies) = copies else {
                assert_eq!(
                    (after.hits, after.misses),
                    (before.hits, before.misses),
                    "{context}"
                );
                // f32 spans are whole words: only a miss or more spans than allowed (a row
                // per span at most) decline them.
                let declined = case.prefill.is_none() || case.max_spans < 5 * i;
                assert!(case.dtype == BiasDtype::F16 || declined, "{context}");
                return Ok(());
            };
            assert!(
                case.prefill.is_some(),
                "{context}: copies without a cached tensor"
            );
            assert_eq!(
                (after.hits, after.misses),
                (before.hits + 1, before.misses),
                "{context}"
            );
            assert!(copies.spans().len() <= case.max_spans, "{context}");
            let tensor = common::oracle_bytes(&alibi, i, j);
            let usage = wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC;
            let target =
                common::patterned(alibi.device(), offset + tensor.len() as u64 + 12, usage);
            let mut encoder = alibi.device().create_command_encoder(&Default::default());
            for span in copies.spans() {
                encoder.copy_buffer_to_buffer(
                    copies.source(),
                    span.source_offset,
                    &target,
                    span.target_offset,
                    span.bytes,
                );
            }
            alibi.queue().submit([encoder.finish()]);
            pollster::block_on(copies.check()).unwrap();
            common::check_around(
                &common::read_all(&alibi, &target),
                offset as usize,
                &tensor,
                &context,
            );
            Ok(())
        })
        .unwrap();
}

/// A dense request that copies a span per row from a strided block (padded rows), asked
/// twice in a row, keeps a dense entry of its shape: the same request again is one copy of
/// the whole tensor, from the JavaScript path's `dense_copies` too; strided views still come
/// from the strided block.
#[test]
fn a_slice_of_padded_rows_is_kept_dense_and_then_copied_whole() {
    let Some(gpu) = common::gpu() else { return };
    for path in common::generation_paths(gpu) {
        for dtype in [BiasDtype::F32, BiasDtype::F16] {
            let config = AlibiConfig::new(3)
                .total_heads(5)
                .dtype(dtype)
                .generation_path(path);
            let mut alibi = common::module(gpu, config);
            alibi.forward(40, 40).unwrap();
            let (i, j) = (20, 37); // rows of 37 in rows of 40: 100 spans
            assert!(alibi.dense_copies(i, j, 0, 99).unwrap().is_none());
            let tensor = common::oracle_bytes(&alibi, i, j);
            let context = format!("{path:?} {dtype}");
            // Once: copied a row at a time. Twice: kept, then copied whole.
            for (hits, entries) in [(1, 1), (2, 2)] {
                let dense = alibi.forward_dense(i, j).unwrap();
                let stats = alibi.cache_stats();
                assert_eq!((stats.hits, stats.entries), (hits, entries), "{context}");
                assert!(common::read_all(&alibi, dense.buffer())[..tensor.len()] == tensor[..]);
            }
            let copies = alibi.dense_copies(i, j, 0, 1).unwrap();
            // f16 rows of 37 keys: 740 half words, a whole number of words.
            let copies = copies.unwrap_or_else(|| panic!("{context}: one span"));
            assert_eq!(copies.spans().len(), 1, "{context}");
            let again = alibi.forward_dense(i, j).unwrap();
            assert!(common::read_all(&alibi, again.buffer())[..tensor.len()] == tensor[..]);
            let stats = alibi.cache_stats();
            assert_eq!((stats.hits, stats.entries), (4, 2), "{context}");
            let view = alibi.forward(i, j).unwrap();
            assert_eq!(
                view.layout().row_stride,
                40,
                "{context}: strided views stay strided"
            );
        }
    }
}
