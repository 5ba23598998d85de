//! The cache policy, on payloads of names: no GPU.

use super::*;

fn insert(
    cache: &mut BiasCache<&'static str>,
    rows: usize,
    cols: usize,
    name: &'static str,
) -> Vec<&'static str> {
    cache.insert(Layout::Strided, (rows, cols), (rows * cols) as u64, name)
}

#[test]
fn serves_any_request_inside_an_entry() {
    let mut cache = BiasCache::new(1 << 20);
    insert(&mut cache, 16, 16, "prefill");
    let hit = cache.lookup(1, 16).unwrap();
    assert_eq!((*hit.payload, hit.rows, hit.cols), ("prefill", 16, 16));
    assert!(cache.lookup(3, 5).is_some());
    assert!(cache.lookup(17, 16).is_none());
    assert!(cache.lookup(16, 17).is_none());
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses), (2, 2));
}

#[test]
fn prefers_the_smallest_covering_entry() {
    let mut cache = BiasCache::new(1 << 20);
    insert(&mut cache, 100, 10, "tall");
    insert(&mut cache, 10, 100, "wide");
    insert(&mut cache, 20, 20, "square");
    assert_eq!(*cache.lookup(5, 5).unwrap().payload, "square");
    assert_eq!(*cache.lookup(5, 50).unwrap().payload, "wide");
}

#[test]
fn a_covering_entry_replaces_the_entries_it_covers() {
    let mut cache = BiasCache::new(1 << 20);
    insert(&mut cache, 4, 4, "small");
    insert(&mut cache, 2, 8, "wide");
    assert_eq!(insert(&mut cache, 8, 8, "big"), vec!["small", "wide"]);
    let stats = cache.stats();
    assert_eq!((stats.entries, stats.evictions, stats.bytes), (1, 2, 64));
}

#[test]
fn evicts_least_recently_used_past_the_budget() {
    let mut cache = BiasCache::new(250);
    insert(&mut cache, 10, 10, "a");
    insert(&mut cache, 1, 100, "b");
    assert!(cache.lookup(10, 10).is_some()); // "a" is now the most recent
    insert(&mut cache, 100, 1, "c");
    assert_eq!(*cache.lookup(10, 10).unwrap().payload, "a");
    assert!(
        cache.lookup(1, 100).is_none(),
        "b was the least recently used"
    );
    assert!(cache.stats().bytes <= 250);
    let not_kept = insert(&mut cache, 20, 20, "too big for the budget");
    assert_eq!(not_kept, vec!["too big for the budget"]);
    assert!(cache.lookup(20, 20).is_none());
}

#[test]
fn shrinking_the_budget_evicts() {
    let mut cache = BiasCache::new(1000);
    insert(&mut cache, 10, 10, "a");
    insert(&mut cache, 1, 120, "b");
    assert_eq!(cache.set_budget(150), vec!["a"]);
    assert_eq!(cache.stats().entries, 1);
    assert_eq!(cache.clear(), vec!["b"]);
    assert_eq!(cache.stats().bytes, 0);
}

#[test]
fn decode_grows_geometrically() {
    let mut cache = BiasCache::new(u64::MAX);
    insert(&mut cache, 512, 512, "prefill");
    let mut generations = 0;
    for t in 1..=4096 {
        if cache.lookup(1, t).is_none() {
            let cols = cache.growth_target(1, t);
            insert(&mut cache, 1, cols, "decode");
            generations += 1;
        }
    }
    assert_eq!(generations, 3); // 1024, 2048, 4096
    assert_eq!(cache.growth_target(7, 7), 7, "no entry to extend: exact");
}

/// A dense copy's spans with 8 heads: one for the whole tensor, one per head for rows
/// of the right length, one per row otherwise.
fn spans(i: usize, j: usize) -> impl Fn(usize, usize) -> u64 {
    move |rows, cols| match (rows == i, cols == j) {
        (true, true) => 1,
        (_, true) => 8,
        _ => 8 * i as u64,
    }
}

#[test]
fn dense_requests_take_the_entry_of_fewest_spans_strided_ones_only_strided() {
    let mut cache = BiasCache::new(1 << 20);
    insert(&mut cache, 40, 40, "strided");
    let dense = cache.insert(Layout::Dense, (37, 37), 37 * 37, "dense");
    assert!(dense.is_empty(), "layouts do not replace each other");
    assert_eq!(
        *cache.lookup_dense(37, 37, spans(37, 37)).unwrap().payload,
        "dense"
    );
    assert_eq!(
        *cache.lookup_dense(20, 37, spans(20, 37)).unwrap().payload,
        "dense"
    );
    assert_eq!(
        *cache.peek_dense(20, 40, spans(20, 40)).unwrap().payload,
        "strided"
    );
    // Per row from either: the smaller.
    assert_eq!(
        *cache.lookup_dense(5, 5, spans(5, 5)).unwrap().payload,
        "dense"
    );
    assert_eq!(*cache.lookup(37, 37).unwrap().payload, "strided");
    assert_eq!(*cache.most_recent().unwrap().payload, "strided");
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses), (4, 0), "a peek counts nothing");
    // A larger strided entry replaces the strided one only.
    assert_eq!(insert(&mut cache, 48, 48, "larger"), vec!["strided"]);
    assert_eq!(
        *cache.lookup_dense(37, 37, spans(37, 37)).unwrap().payload,
        "dense"
    );
    let wider = cache.insert(Layout::Dense, (37, 41), 37 * 41, "wider");
    assert_eq!(wider, vec!["dense"]);
}

#[test]
fn growth_extends_strided_entries_only() {
    let mut cache = BiasCache::new(1 << 20);
    let _ = cache.insert(Layout::Dense, (4, 7), 28, "dense");
    assert_eq!(cache.growth_target(1, 9), 9);
    assert!(cache.lookup(1, 7).is_none() && cache.most_recent().is_none());
}

#[test]
fn the_default_budget_holds_one_32_head_2048_square_tensor() {
    assert_eq!(DEFAULT_CACHE_BUDGET_BYTES, 32 * 2048 * 2048 * 4);
}

#[test]
fn most_recent_is_the_last_inserted_or_looked_up() {
    let mut cache = BiasCache::new(1 << 20);
    assert!(cache.most_recent().is_none());
    insert(&mut cache, 4, 8, "a");
    insert(&mut cache, 8, 4, "b");
    let recent = cache.most_recent().unwrap();
    assert_eq!((*recent.payload, recent.rows, recent.cols), ("b", 8, 4));
    assert!(cache.lookup(2, 8).is_some());
    assert_eq!(*cache.most_recent().unwrap().payload, "a");
}

#[test]
fn growth_extends_only_entries_with_fewer_keys() {
    let mut cache = BiasCache::new(1 << 20);
    insert(&mut cache, 4, 8, "a");
    assert_eq!(
        cache.growth_target(2, 8),
        8,
        "keys already there: nothing to extend"
    );
    assert_eq!(cache.growth_target(2, 9), 16);
    assert_eq!(
        cache.growth_target(5, 9),
        9,
        "more rows than the entry: exact"
    );
    assert_eq!(
        cache.growth_target(4, 30),
        30,
        "beyond twice the keys: the request"
    );
}

#[test]
fn a_tensor_of_exactly_the_budget_is_kept_and_entries_that_fill_it_stay() {
    let mut cache = BiasCache::new(200);
    assert!(insert(&mut cache, 1, 100, "a").is_empty());
    assert!(
        insert(&mut cache, 100, 1, "b").is_empty(),
        "100 + 100 fills 200 exactly"
    );
    assert_eq!((cache.stats().entries, cache.stats().evictions), (2, 0));
    let evicted = insert(&mut cache, 10, 20, "whole budget");
    assert_eq!(evicted.len(), 2);
    assert_eq!(cache.stats().evictions, 2, "each eviction is counted");
    assert_eq!((cache.stats().entries, cache.stats().bytes), (1, 200));
}

#[test]
fn without_lookups_the_oldest_insertion_is_evicted_first() {
    // Five tensors of 100 bytes, none inside another, under a budget of three: the
    // eviction order is the insertion order, whatever their places in the list.
    let mut cache = BiasCache::new(300);
    for (rows, cols, name) in [(1, 100, "a"), (100, 1, "b"), (10, 10, "c")] {
        assert!(insert(&mut cache, rows, cols, name).is_empty());
    }
    assert_eq!(insert(&mut cache, 2, 50, "d"), vec!["a"]);
    assert_eq!(insert(&mut cache, 50, 2, "e"), vec!["b"]);
    assert_eq!(insert(&mut cache, 4, 25, "f"), vec!["c"]);
    assert_eq!(cache.stats().evictions, 3);
}
