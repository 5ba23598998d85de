//! The host-side cache of generated biases (docs/semantics.md, "Cache").
//!
//! An entry holds a generated `[total_heads, rows, cols]` tensor. A request `(i, j)` is served
//! by any entry with `rows >= i` and `cols >= j`, as its bottom-right `[.., rows-i.., cols-j..]`
//! slice, which equals a fresh `(i, j)` computation for every such pair (queries are aligned
//! to the end of the keys). The payload type is generic so the policy is tested without a GPU.

/// Default byte budget of the cache: 512 MiB, one `[32, 2048, 2048]` f32 bias.
pub const DEFAULT_CACHE_BUDGET_BYTES: u64 = 512 << 20;

/// Counters of a module's cache, for monitoring and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Requests served from a cached entry (no GPU work, no allocation).
    pub hits: u64,
    /// Requests that needed a new generation.
    pub misses: u64,
    /// Entries dropped: least recently used past the budget, or covered by a larger entry.
    pub evictions: u64,
    /// Entries held now.
    pub entries: usize,
    /// Bytes held now.
    pub bytes: u64,
    /// The budget in bytes: cached tensors plus buffers kept for reuse.
    pub budget_bytes: u64,
    /// Bytes of evicted buffers kept to be reused by the next generations (set by the
    /// module; they count against the budget).
    pub recycled_bytes: u64,
    /// Bytes of readback staging buffers kept (set by the module): at most two buffers,
    /// at most the budget again.
    pub staging_bytes: u64,
    /// The most bytes of cached and recycled buffers the module has held at the end of any
    /// call since its budget was last set: never above the budget (set by the module).
    pub peak_bytes: u64,
}

struct Entry<T> {
    rows: usize,
    cols: usize,
    bytes: u64,
    last_used: u64,
    payload: T,
}

impl<T> Entry<T> {
    fn hit(&self) -> Hit<'_, T> {
        Hit {
            payload: &self.payload,
            rows: self.rows,
            cols: self.cols,
        }
    }
}

/// A cached entry found for a request: its payload and the shape it was generated with.
pub(crate) struct Hit<'a, T> {
    pub payload: &'a T,
    pub rows: usize,
    pub cols: usize,
}

/// LRU cache of generated biases under a byte budget.
pub(crate) struct BiasCache<T> {
    entries: Vec<Entry<T>>,
    clock: u64,
    stats: CacheStats,
}

impl<T> BiasCache<T> {
    pub fn new(budget_bytes: u64) -> Self {
        Self {
            entries: Vec::new(),
            clock: 0,
            stats: CacheStats {
                budget_bytes,
                ..CacheStats::default()
            },
        }
    }

    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    /// The smallest entry covering `(i, j)`, marked as used. Counts a hit or a miss.
    /// Allocates nothing: the entries are few and scanned in place.
    pub fn lookup(&mut self, i: usize, j: usize) -> Option<Hit<'_, T>> {
        self.clock += 1;
        let Some(index) = self.covering(i, j) else {
            self.stats.misses += 1;
            return None;
        };
        self.stats.hits += 1;
        let entry = &mut self.entries[index];
        entry.last_used = self.clock;
        Some(entry.hit())
    }

    /// The entry [`lookup`](Self::lookup) would find for `(i, j)`, without counting or
    /// marking it: a caller that may still decline it.
    pub fn peek(&self, i: usize, j: usize) -> Option<Hit<'_, T>> {
        Some(self.entries[self.covering(i, j)?].hit())
    }

    /// The index of the smallest entry covering `(i, j)`.
    fn covering(&self, i: usize, j: usize) -> Option<usize> {
        (0..self.entries.len())
            .filter(|&n| self.entries[n].rows >= i && self.entries[n].cols >= j)
            .min_by_key(|&n| self.entries[n].bytes)
    }

    /// The most recently used entry.
    pub fn most_recent(&self) -> Option<Hit<'_, T>> {
        self.entries
            .iter()
            .max_by_key(|e| e.last_used)
            .map(Entry::hit)
    }

    /// Key count to generate for a miss `(i, j)`: when the request extends the keys of an
    /// entry that already covers its rows (a decode step past the cached length), grow
    /// geometrically to twice that entry's keys, so that a decode loop of n steps generates
    /// only O(log n) times. Otherwise exactly `j`.
    pub fn growth_target(&self, i: usize, j: usize) -> usize {
        self.entries
            .iter()
            .filter(|e| e.rows >= i && e.cols < j)
            .map(|e| e.cols.saturating_mul(2))
            .max()
            .map_or(j, |grown| grown.max(j))
    }

    /// Inserts a generated entry, dropping entries it covers and then the least recently
    /// used ones until the budget holds. An entry larger than the whole budget is not kept.
    /// Returns the payloads that left the cache (the new one too, when it was not kept),
    /// so that their memory can be reused.
    #[must_use = "evicted payloads are returned for reuse"]
    pub fn insert(&mut self, rows: usize, cols: usize, bytes: u64, payload: T) -> Vec<T> {
        if bytes > self.stats.budget_bytes {
            return vec![payload];
        }
        let mut evicted: Vec<T> = self
            .entries
            .extract_if(.., |e| e.rows <= rows && e.cols <= cols)
            .map(|e| e.payload)
            .collect();
        self.stats.evictions += evicted.len() as u64;
        self.recount();
        evicted.extend(self.evict_until_fits(bytes));
        self.clock += 1;
        self.entries.push(Entry {
            rows,
            cols,
            bytes,
            last_used: self.clock,
            payload,
        });
        self.recount();
        evicted
    }

    /// Changes the budget, evicting least recently used entries to meet it; returns them.
    #[must_use = "evicted payloads are returned for reuse"]
    pub fn set_budget(&mut self, budget_bytes: u64) -> Vec<T> {
        self.stats.budget_bytes = budget_bytes;
        self.evict_until_fits(0)
    }

    /// Counts the last lookup's hit as a miss: its entry could not be served.
    pub fn hit_was_a_miss(&mut self) {
        self.stats.hits -= 1;
        self.stats.misses += 1;
    }

    /// Drops the entries whose payload `failed` says is unusable, counted as evictions,
    /// and returns them.
    #[must_use = "evicted payloads are returned for reuse"]
    pub fn remove_where(&mut self, mut failed: impl FnMut(&T) -> bool) -> Vec<T> {
        let removed: Vec<T> = self
            .entries
            .extract_if(.., |e| failed(&e.payload))
            .map(|e| e.payload)
            .collect();
        self.stats.evictions += removed.len() as u64;
        self.recount();
        removed
    }

    /// Drops every entry and returns them; counters other than entries and bytes are kept.
    #[must_use = "evicted payloads are returned for reuse"]
    pub fn clear(&mut self) -> Vec<T> {
        let evicted = self.entries.drain(..).map(|e| e.payload).collect();
        self.recount();
        evicted
    }

    fn evict_until_fits(&mut self, incoming: u64) -> Vec<T> {
        let mut evicted = Vec::new();
        while self.stats.bytes + incoming > self.stats.budget_bytes {
            let Some(oldest) = self
                .entries
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(index, _)| index)
            else {
                break;
            };
            evicted.push(self.entries.swap_remove(oldest).payload);
            self.stats.evictions += 1;
            self.recount();
        }
        evicted
    }

    fn recount(&mut self) {
        self.stats.entries = self.entries.len();
        self.stats.bytes = self.entries.iter().map(|e| e.bytes).sum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insert(
        cache: &mut BiasCache<&'static str>,
        rows: usize,
        cols: usize,
        name: &'static str,
    ) -> Vec<&'static str> {
        cache.insert(rows, cols, (rows * cols) as u64, name)
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
}
