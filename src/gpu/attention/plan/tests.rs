//! The attention planner: tiles, splits, runs and refusals.
use super::*;

const LIMITS: AttentionLimits = AttentionLimits {
    max_binding_bytes: 1 << 27,
    max_buffer_bytes: 1 << 30,
    max_workgroups_per_dimension: 65535,
    binding_alignment: 256,
    workgroup_storage_bytes: 16384,
    busy_workgroups: 64,
    cpu: false,
};

fn settings(total_heads: usize) -> FlashSettings {
    FlashSettings {
        total_heads,
        slope_heads: total_heads,
        causal: false,
        bias_mode: 1,
        dtype: BiasDtype::F32,
        scale: None,
        window: (None, None),
    }
}

fn shape(query_heads: usize, kv_heads: usize, i: usize, j: usize, d: usize) -> AttentionShape {
    AttentionShape {
        batch: 1,
        query_heads,
        kv_heads,
        queries: i,
        keys: j,
        head_dim: d,
    }
}

#[test]
fn tiles_fit_the_workgroup_memory() {
    assert_eq!(keys_per_tile(64, 16384), 32);
    assert_eq!(keys_per_tile(128, 16384), 16);
    assert_eq!(keys_per_tile(80, 16384), 16);
}

#[test]
fn a_decode_step_splits_its_keys_and_a_prefill_does_not() {
    let decode = plan(shape(16, 16, 1, 4096, 64), settings(16), LIMITS)
        .unwrap()
        .unwrap();
    assert!(decode.variant.decode && decode.variant.split, "{decode:?}");
    assert!(decode.params.splits > 1, "{decode:?}");
    let per = decode.params.keys_per_split;
    assert_eq!(per % 4, 0);
    assert!(decode.params.splits as u64 * per as u64 >= 4096);
    assert!((decode.params.splits as u64 - 1) * (per as u64) < 4096);
    let prefill = plan(shape(16, 16, 1024, 1024, 64), settings(16), LIMITS)
        .unwrap()
        .unwrap();
    assert_eq!(prefill.params.splits, 1);
    assert!(!prefill.variant.decode && !prefill.variant.split);
    assert_eq!(prefill.params.row_tiles, 16);
}

#[test]
fn refusals_name_the_value() {
    let refused = |s, settings| plan(s, settings, LIMITS).unwrap_err().to_string();
    assert!(refused(shape(4, 4, 3, 3, 66), settings(4)).contains("head dimension 66"));
    assert!(refused(shape(6, 4, 3, 3, 64), settings(6)).contains("multiple of key/value heads (4)"));
    assert!(refused(shape(4, 4, 3, 3, 64), settings(8)).contains("total_heads (8)"));
    let huge = shape(4096, 4096, 1 << 12, 1, 128);
    assert!(refused(huge, settings(4096)).contains("max_buffer_size"));
    // Query rows and keys of one key/value head, each past a binding.
    let long = shape(4, 4, 1 << 18, 1 << 18, 128);
    assert!(refused(long, settings(4)).contains("the q rows of one key/value head"));
    let huge = FlashSettings {
        window: (Some(u32::MAX), Some(1 << 26)),
        ..settings(4)
    };
    let planned = plan(shape(4, 4, 3, 3, 64), huge, LIMITS).unwrap().unwrap();
    assert_eq!(
        (planned.params.window_left, planned.params.window_right),
        (-1, -1)
    );
    let nan = FlashSettings {
        scale: Some(f32::NAN),
        ..settings(4)
    };
    assert!(refused(shape(4, 4, 3, 3, 64), nan).contains("scale"));
}

#[test]
fn tensors_past_one_binding_are_cut_into_runs() {
    // q and k of 256 MiB each, 4 MiB per key/value head, over a 128 MiB binding.
    let planned = plan(shape(64, 64, 8192, 8192, 128), settings(64), LIMITS)
        .unwrap()
        .unwrap();
    let pairs: Vec<_> = planned
        .chunks()
        .iter()
        .map(|c| (c.params.pair0, c.params.pairs))
        .collect();
    assert_eq!(pairs, [(0, 31), (31, 31), (62, 2)]);
    let whole = plan(shape(16, 16, 1024, 1024, 64), settings(16), LIMITS)
        .unwrap()
        .unwrap();
    assert_eq!(whole.chunks().len(), 1);
}

#[test]
fn rows_past_one_binding_run_in_row_tiles() {
    // 2^18 query rows of d 128: 128 MiB of q per head, past a 128 MiB binding less its
    // alignment: two runs of row tiles per head.
    let planned = plan(shape(4, 4, 1 << 18, 64, 128), settings(4), LIMITS)
        .unwrap()
        .unwrap();
    let chunks = planned.chunks();
    let tiles: Vec<_> = chunks
        .iter()
        .map(|c| (c.params.pair0, c.params.tile0, c.params.run_tiles))
        .collect();
    assert_eq!(tiles[..2], [(0, 0, 4095), (0, 4095, 1)]);
    assert_eq!(chunks.len(), 8);
    assert!(chunks.iter().all(|c| c.query.size <= 1 << 27));
}

#[test]
fn keys_past_one_binding_run_in_key_ranges() {
    // A decode step against 2^19 keys of d 128: 256 MiB of keys per head, a 128 MiB binding.
    let planned = plan(shape(4, 4, 1, 1 << 19, 128), settings(4), LIMITS)
        .unwrap()
        .unwrap();
    let chunks = planned.chunks();
    assert_eq!(chunks.len(), 4 * 3, "three key runs for each of four heads");
    assert!(chunks.iter().all(|c| c.key.size <= 1 << 27));
    let combined = chunks.iter().filter(|c| c.combine_groups.is_some()).count();
    assert_eq!(combined, 4, "one combine per head, after its last key run");
}

#[test]
fn combine_takes_a_lane_per_row() {
    let busy = AttentionLimits {
        busy_workgroups: 1024,
        ..LIMITS
    };
    for (query_heads, queries) in [(1, 64), (8, 200)] {
        let planned = plan(
            shape(query_heads, query_heads, queries, 8192, 64),
            settings(query_heads),
            busy,
        )
        .unwrap()
        .unwrap();
        assert!(planned.variant.split);
        let rows = (query_heads * queries) as u32;
        let lanes = planned.variant.lanes();
        let [x, y, z] = planned.chunks()[0].combine_groups.unwrap();
        assert_eq!(x * y * z, rows.div_ceil(lanes), "{query_heads}x{queries}");
    }
}

#[test]
fn split_partials_fit_one_binding() {
    let small = AttentionLimits {
        // 1 MiB of keys; 17 KiB of partials per split, 128 splits wanted.
        max_binding_bytes: 2 << 20,
        busy_workgroups: 1024,
        ..LIMITS
    };
    let planned = plan(shape(1, 1, 64, 4096, 64), settings(1), small)
        .unwrap()
        .unwrap();
    let p = planned.params;
    assert!(planned.partial_bytes <= 2 << 20, "{planned:?}");
    assert!(p.splits > 1 && p.splits < 128, "{p:?}");
    assert_eq!(p.keys_per_split % planned.variant.keys_per_tile, 0);
    assert!(p.splits * p.keys_per_split >= 4096);
}

#[test]
fn nothing_to_compute_is_no_plan() {
    assert!(plan(shape(4, 2, 0, 5, 64), settings(4), LIMITS)
        .unwrap()
        .is_none());
    assert!(plan(shape(4, 2, 5, 0, 64), settings(4), LIMITS)
        .unwrap()
        .is_none());
}

#[test]
fn query_rows_past_a_binding_take_row_tiles_rather_than_parallel_splits() {
    // A GPU (1,024 busy workgroups) with 64 KiB bindings: 20 row tiles would split the
    // keys five ways for parallelism, but one pair's 600 rows (75 KiB) need row tiles,
    // whose split partials could not fit: no parallel splits (on GPUs this call was refused).
    let gpu = AttentionLimits {
        max_binding_bytes: 64 << 10,
        binding_alignment: 32,
        workgroup_storage_bytes: 49152,
        busy_workgroups: 1024,
        ..LIMITS
    };
    let long_queries = AttentionShape {
        batch: 2,
        ..shape(2, 1, 300, 150, 32)
    };
    for dtype in [BiasDtype::F32, BiasDtype::F16] {
        let planned = plan(
            long_queries,
            FlashSettings {
                dtype,
                ..settings(2)
            },
            gpu,
        )
        .unwrap()
        .unwrap();
        assert_eq!(planned.params.splits, 1, "{dtype:?}");
        assert!(!planned.variant.split, "{dtype:?}");
    }
    // Rows that fit a binding still split their keys to keep the GPU busy.
    let short = plan(shape(1, 1, 64, 256, 32), settings(1), gpu)
        .unwrap()
        .unwrap();
    assert!(short.params.splits > 1, "{:?}", short.params);
}
