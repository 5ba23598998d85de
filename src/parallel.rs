//! The crate's one way of using several cores: rayon's global pool on native targets, one
//! thread in order on the web (where the crate never blocks and spawns nothing).
//!
//! Work is cut into parts of whole grains (rows, or mapping-aligned runs of values) large
//! enough to be worth a task; small jobs stay on the calling thread.

use std::ops::Range;

/// Values below which a part is not worth a task of its own (1 MiB of f32).
const VALUES_PER_PART: usize = 1 << 18;

/// Splits `0..len` into consecutive ranges, each a multiple of `grain` long but the last:
/// one range for a small `len`, otherwise a few per core so that rayon can balance them.
pub(crate) fn split_ranges(len: usize, grain: usize) -> Vec<Range<usize>> {
    let parts = part_count(len);
    if parts <= 1 {
        return std::iter::once(0..len).collect();
    }
    let per_part = len.div_ceil(parts).next_multiple_of(grain.max(1));
    (0..len)
        .step_by(per_part)
        .map(|start| start..(start + per_part).min(len))
        .collect()
}

/// Cuts `data` into consecutive slices that end at each of `ends` (increasing, the last one
/// `data.len()`), so that each part of [`split_ranges`] gets its own slice of an output that
/// is laid out differently (a tee keeps fewer columns per row than it is given).
pub(crate) fn split_at_ends<T>(
    mut data: &mut [T],
    ends: impl IntoIterator<Item = usize>,
) -> Vec<&mut [T]> {
    let mut taken = 0;
    let mut parts = Vec::new();
    for end in ends {
        let (part, rest) = std::mem::take(&mut data).split_at_mut(end - taken);
        parts.push(part);
        data = rest;
        taken = end;
    }
    parts
}

/// Runs `work` on every item, in parallel where there is more than one, and returns the
/// results in order. A panic in `work` reaches the caller.
///
/// Called from a rayon worker (of any pool), it runs in order on that thread: a worker that
/// waits for nested rayon work steals other tasks meanwhile, and a stolen task that takes
/// the lock its caller holds around a module call would deadlock on it.
pub(crate) fn run<I: Send, T: Send>(items: Vec<I>, work: impl Fn(I) -> T + Sync + Send) -> Vec<T> {
    // Rayon runs a single item inline, on this thread, as it should.
    #[cfg(not(target_arch = "wasm32"))]
    if rayon::current_thread_index().is_none() {
        use rayon::prelude::*;
        return items.into_par_iter().map(work).collect();
    }
    items.into_iter().map(work).collect()
}

/// Runs `fill(chunk, first_row)` over consecutive chunks of whole rows of `row_len` values
/// that cover `data`, in parallel when `data` is large.
pub(crate) fn for_each_row_chunk<T: Send>(
    data: &mut [T],
    row_len: usize,
    fill: impl Fn(&mut [T], usize) + Sync + Send,
) {
    if data.is_empty() {
        return;
    }
    let ranges = split_ranges(data.len(), row_len);
    let first_rows: Vec<usize> = ranges.iter().map(|range| range.start / row_len).collect();
    let chunks = split_at_ends(data, ranges.iter().map(|range| range.end));
    run(
        chunks.into_iter().zip(first_rows).collect(),
        |(chunk, row)| fill(chunk, row),
    );
}

/// How many parts `len` values are worth: one per [`VALUES_PER_PART`] (so fewer than two
/// such runs stay whole), at most four per thread of the pool; none on the web.
fn part_count(len: usize) -> usize {
    // The web has no pool: no parts to spread, so `split_ranges` keeps one range.
    #[cfg(target_arch = "wasm32")]
    let threads = 0;
    #[cfg(not(target_arch = "wasm32"))]
    let threads = rayon::current_num_threads();
    (len / VALUES_PER_PART).min(4 * threads)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_in_order_and_respect_the_grain() {
        for len in [0, 1, 1000, 2 * VALUES_PER_PART - 1, (1 << 19) + 5, 3 << 20] {
            let ranges = split_ranges(len, 1024);
            assert_eq!(ranges.first().map(|r| r.start), Some(0));
            assert_eq!(ranges.last().map(|r| r.end), Some(len));
            for pair in ranges.windows(2) {
                assert_eq!(pair[0].end, pair[1].start);
                assert_eq!(pair[0].len() % 1024, 0);
            }
            assert!(
                ranges.len() <= part_count(len).max(1),
                "{len}: {}",
                ranges.len()
            );
        }
    }

    #[test]
    fn parts_are_one_per_mebibyte_and_at_most_four_per_thread() {
        let threads = rayon::current_num_threads();
        assert_eq!(part_count(0), 0);
        assert_eq!(part_count(2 * VALUES_PER_PART - 1), 1);
        assert_eq!(part_count(2 * VALUES_PER_PART), 2.min(4 * threads));
        assert_eq!(part_count(1000 * VALUES_PER_PART), 4 * threads);
        assert_eq!(split_ranges(2 * VALUES_PER_PART - 1, 1).len(), 1);
        assert_eq!(
            split_ranges(1000 * VALUES_PER_PART, 1024).len(),
            4 * threads
        );
    }

    #[test]
    fn several_items_run_on_the_pool_and_one_on_the_caller() {
        let caller = std::thread::current().id();
        let on_caller = |items: Vec<u32>| run(items, |_| std::thread::current().id() == caller);
        assert_eq!(on_caller(vec![0]), [true]);
        assert!(on_caller((0..8).collect()).iter().all(|&same| !same));
        assert!(on_caller(Vec::new()).is_empty());
    }

    #[test]
    fn slices_end_where_asked() {
        let mut data: Vec<u32> = (0..10).collect();
        let parts = split_at_ends(&mut data, [3, 3, 7, 10]);
        let lens: Vec<usize> = parts.iter().map(|p| p.len()).collect();
        assert_eq!(lens, [3, 0, 4, 3]);
        assert_eq!(parts[2], &[3, 4, 5, 6]);
    }

    #[test]
    fn run_keeps_the_order() {
        let out = run((0..100).collect(), |n: u64| n * n);
        assert_eq!(out, (0..100).map(|n| n * n).collect::<Vec<_>>());
    }

    #[test]
    fn inside_a_rayon_worker_the_work_stays_on_that_thread() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let same_thread = pool.install(|| {
            let caller = std::thread::current().id();
            run((0..64).collect(), |_: u32| {
                std::thread::current().id() == caller
            })
        });
        assert!(same_thread.into_iter().all(|same| same));
    }

    #[test]
    fn row_chunks_cover_every_row_once() {
        let (rows, row_len) = (3000, 700);
        let mut data = vec![0u32; rows * row_len];
        for_each_row_chunk(&mut data, row_len, |chunk, first_row| {
            assert_eq!(chunk.len() % row_len, 0);
            for (n, row) in chunk.chunks_exact_mut(row_len).enumerate() {
                row.fill((first_row + n) as u32 + 1);
            }
        });
        for (r, row) in data.chunks_exact(row_len).enumerate() {
            assert!(row.iter().all(|&v| v == r as u32 + 1), "row {r}");
        }
    }
}
