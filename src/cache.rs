//! The host-side cache of generated biases (docs/semantics.md, "Cache").
//!
//! An entry holds a generated `[total_heads, rows, cols]` tensor. A request `(i, j)` is served
//! by any entry with `rows >= i` and `cols >= j`, as its bottom-right `[.., rows-i.., cols-j..]`
//! slice, which equals a fresh `(i, j)` computation for every such pair (queries are aligned
//! to the end of the keys). An entry is laid out as `forward` generates ([`Layout::Strided`],
//! rows padded for whole vec4s) or as a dense request was served ([`Layout::Dense`]); a dense
//! request takes whichever entry it copies in the fewest spans. The payload type is generic
//! so the policy is tested without a GPU.

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

/// How a cached tensor is laid out, which decides the requests it serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Layout {
    /// `forward`'s tensors, rows padded to a multiple of 4 columns: they serve every
    /// request, the strided views included.
    Strided,
    /// A dense request's tensor, rows of exactly its keys, kept where copying it from a
    /// strided one took a span per row: it serves dense requests (copies) only.
    Dense,
}

struct Entry<T> {
    layout: Layout,
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

    /// The smallest strided entry covering `(i, j)`, marked as used. Counts a hit or a miss.
    /// Allocates nothing: the entries are few and scanned in place.
    pub fn lookup(&mut self, i: usize, j: usize) -> Option<Hit<'_, T>> {
        self.take(i, j, strided_only)
    }

    /// The entry covering `(i, j)` that a dense copy takes in the fewest spans (`spans` of
    /// an entry's rows and columns; then the smallest), of either layout, marked as used.
    /// Counts a hit or a miss.
    pub fn lookup_dense(
        &mut self,
        i: usize,
        j: usize,
        spans: impl Fn(usize, usize) -> u64,
    ) -> Option<Hit<'_, T>> {
        self.take(i, j, |e| Some(spans(e.rows, e.cols)))
    }

    /// The entry [`lookup_dense`](Self::lookup_dense) would find for `(i, j)`, without
    /// counting or marking it: a caller that may still decline it.
    pub fn peek_dense(
        &self,
        i: usize,
        j: usize,
        spans: impl Fn(usize, usize) -> u64,
    ) -> Option<Hit<'_, T>> {
        let index = self.covering(i, j, |e| Some(spans(e.rows, e.cols)))?;
        Some(self.entries[index].hit())
    }

    fn take(
        &mut self,
        i: usize,
        j: usize,
        rank: impl Fn(&Entry<T>) -> Option<u64>,
    ) -> Option<Hit<'_, T>> {
        self.clock += 1;
        let Some(index) = self.covering(i, j, rank) else {
            self.stats.misses += 1;
            return None;
        };
        self.stats.hits += 1;
        let entry = &mut self.entries[index];
        entry.last_used = self.clock;
        Some(entry.hit())
    }

    /// The index of the entry covering `(i, j)` of the lowest `rank` (`None`: not
    /// eligible), the smallest among equals.
    fn covering(
        &self,
        i: usize,
        j: usize,
        rank: impl Fn(&Entry<T>) -> Option<u64>,
    ) -> Option<usize> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.rows >= i && e.cols >= j)
            .filter_map(|(n, e)| Some((rank(e)?, e.bytes, n)))
            .min()
            .map(|(_, _, n)| n)
    }

    /// The most recently used strided entry.
    pub fn most_recent(&self) -> Option<Hit<'_, T>> {
        self.entries
            .iter()
            .filter(|e| e.layout == Layout::Strided)
            .max_by_key(|e| e.last_used)
            .map(Entry::hit)
    }

    /// Key count to generate for a miss `(i, j)`: when the request extends the keys of a
    /// strided entry that already covers its rows (a decode step past the cached length), grow
    /// geometrically to twice that entry's keys, so that a decode loop of n steps generates
    /// only O(log n) times. Otherwise exactly `j`.
    pub fn growth_target(&self, i: usize, j: usize) -> usize {
        self.entries
            .iter()
            .filter(|e| e.layout == Layout::Strided && e.rows >= i && e.cols < j)
            .map(|e| e.cols.saturating_mul(2))
            .max()
            .map_or(j, |grown| grown.max(j))
    }

    /// Inserts an entry of `layout`, dropping the entries of that layout it covers and then
    /// the least recently used ones until the budget holds. An entry larger than the whole
    /// budget is not kept. Returns the payloads that left the cache (the new one too, when
    /// it was not kept), so that their memory can be reused.
    #[must_use = "evicted payloads are returned for reuse"]
    pub fn insert(
        &mut self,
        layout: Layout,
        (rows, cols): (usize, usize),
        bytes: u64,
        payload: T,
    ) -> Vec<T> {
        if bytes > self.stats.budget_bytes {
            return vec![payload];
        }
        let mut evicted: Vec<T> = self
            .entries
            .extract_if(.., |e| {
                e.layout == layout && e.rows <= rows && e.cols <= cols
            })
            .map(|e| e.payload)
            .collect();
        self.stats.evictions += evicted.len() as u64;
        self.recount();
        evicted.extend(self.evict_until_fits(bytes));
        self.clock += 1;
        self.entries.push(Entry {
            layout,
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

/// The rank of [`BiasCache::lookup`]: strided entries, all equal.
fn strided_only<T>(entry: &Entry<T>) -> Option<u64> {
    (entry.layout == Layout::Strided).then_some(0)
}

#[cfg(test)]
mod tests;
