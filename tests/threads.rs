//! One module shared by 8 threads, 2,000 random calls each: every result equals the oracle
//! with `==`. Calls that use the cache take the write lock of an `RwLock`, readbacks and
//! `get_bias` the read lock, so readbacks run concurrently with each other; between a
//! thread's calls the others' misses evict and recycle buffers, and the views a thread holds
//! across calls must survive that.
// Native only: the browser has its own suite, tests/web.rs.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::Rng;

use std::io::Write as _;
use std::sync::RwLock;

use alibi_wgpu::{reference, AlibiBias, AlibiConfig, AlibiPositionalBias, HostBias};

const THREADS: u64 = 8;
const CALLS_PER_THREAD: u64 = 2_000;
/// Views a thread keeps across its calls, read back again later.
const HELD_VIEWS: usize = 4;

/// The oracle, computed afresh for every check (a memo of every shape would hold gigabytes).
struct Oracle {
    slopes: Vec<f32>,
    total_heads: usize,
}

impl Oracle {
    /// `forward(i, j)`, or `get_bias(i, j)` when `distance_only`.
    fn expected(&self, i: usize, j: usize, distance_only: bool) -> HostBias {
        let computed = if distance_only {
            reference::get_bias(i, j)
        } else {
            reference::forward(&self.slopes, self.total_heads, i, j)
        };
        computed.expect("the oracle accepts every shape of this test")
    }
}

fn check(actual: &HostBias, expected: &HostBias, context: &str) -> Result<(), String> {
    common::mismatch(actual, expected).map_or(Ok(()), |d| Err(format!("{context}: {d}")))
}

/// One thread's calls; the first failure is returned with the call that caused it.
fn run_thread(
    seed: u64,
    alibi: &RwLock<AlibiPositionalBias>,
    oracle: &Oracle,
) -> Result<(), String> {
    let mut rng = Rng::seeded(seed);
    let mut host = Vec::new();
    let mut held: Vec<(AlibiBias, usize, usize)> = Vec::new();
    for call in 0..CALLS_PER_THREAD {
        // Up to 64 queries by 8,192 keys: up to 12 MiB with 6 heads, mostly far less.
        let (i, j) = (rng.length(6), rng.length(13));
        let context = |what: &str| format!("thread {seed}, call {call}: {what}({i}, {j})");
        match rng.next() % 4 {
            0 => {
                pollster::block_on(alibi.write().unwrap().forward_to_host_into(i, j, &mut host))
                    .map_err(|e| format!("{}: {e}", context("forward_to_host_into")))?;
                let shape = [oracle.total_heads, i, j];
                let expected = oracle.expected(i, j, false);
                if let Some(d) = common::mismatch_values(shape, &host, &expected) {
                    return Err(format!("{}: {d}", context("forward_to_host_into")));
                }
            }
            1 | 2 => {
                let view = alibi
                    .write()
                    .unwrap()
                    .forward(i, j)
                    .map_err(|e| format!("{}: {e}", context("forward")))?;
                // The readback holds neither the module nor its lock while it waits.
                let reading = alibi.read().unwrap().read(&view);
                let actual = pollster::block_on(reading)
                    .map_err(|e| format!("{}: {e}", context("reading forward")))?;
                check(&actual, &oracle.expected(i, j, false), &context("forward"))?;
                if held.len() < HELD_VIEWS {
                    held.push((view, i, j));
                } else {
                    held[call as usize % HELD_VIEWS] = (view, i, j);
                }
            }
            _ => {
                let alibi = alibi.read().unwrap();
                let view = alibi
                    .get_bias(i, j)
                    .map_err(|e| format!("{}: {e}", context("get_bias")))?;
                let actual = pollster::block_on(alibi.read(&view))
                    .map_err(|e| format!("{}: {e}", context("reading get_bias")))?;
                check(&actual, &oracle.expected(i, j, true), &context("get_bias"))?;
            }
        }
        // Now and then, read back a view held since an earlier call.
        if call % 50 == 49 {
            for (view, vi, vj) in &held {
                let reading = alibi.read().unwrap().read(view);
                let actual = pollster::block_on(reading)
                    .map_err(|e| format!("thread {seed}: re-reading ({vi}, {vj}): {e}"))?;
                let context = format!(
                    "thread {seed}, call {call}: a view of ({vi}, {vj}) held since earlier"
                );
                check(&actual, &oracle.expected(*vi, *vj, false), &context)?;
            }
        }
    }
    Ok(())
}

#[test]
fn eight_threads_share_one_module_and_every_result_is_exact() {
    let Some(gpu) = common::gpu() else { return };
    // A budget of a few tensors, so the threads' misses evict each other's cached tensors
    // and the pool recycles buffers all the time.
    let config = AlibiConfig::new(5)
        .total_heads(6)
        .cache_budget_bytes(16 << 20);
    let alibi = common::module(gpu, config);
    let oracle = Oracle {
        slopes: alibi.slopes().to_vec(),
        total_heads: alibi.total_heads(),
    };
    let alibi = RwLock::new(alibi);
    let failures: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (1..=THREADS)
            .map(|seed| {
                let (alibi, oracle) = (&alibi, &oracle);
                scope.spawn(move || run_thread(seed, alibi, oracle))
            })
            .collect();
        workers
            .into_iter()
            .filter_map(|worker| match worker.join() {
                Ok(result) => result.err(),
                Err(_) => Some("a thread panicked".to_owned()),
            })
            .collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let alibi = alibi.into_inner().unwrap();
    let stats = alibi.cache_stats();
    // Past libtest's capture: the figures of this run, for the logs.
    let _ = writeln!(
        std::io::stderr(),
        "threads: {THREADS} x {CALLS_PER_THREAD} calls on {:?}, every result exact; \
         cache {stats:?}",
        alibi.generation_path()
    );
    assert!(
        stats.hits > 0 && stats.misses > 0 && stats.evictions > 0,
        "{stats:?}"
    );
    assert!(stats.peak_bytes <= stats.budget_bytes, "{stats:?}");
}
