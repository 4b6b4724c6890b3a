//! A large batch cut into parts, each run through the whole plan, by the calling thread and
//! helper threads together (the way onnxruntime runs its parallel sections: the caller works,
//! helpers join).
//!
//! Why not rayon's global pool: a caller outside it blocks while the pool's threads work, so
//! for a moment three threads want two cores. Traced on this two-core machine, in one run in
//! ten of a 6 ms diabetes batch the second pool thread was queued behind a busy one and
//! started 3 to 5 ms late (or two parts shared a core), and the batch took 9 to 12 ms. Here
//! the caller takes parts itself, so only as many threads as cores ever run, and parts are
//! taken one at a time, so a late helper simply takes fewer.

use std::cell::Cell;
use std::ops::Range;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Rows of a part at least, and the multiple part bounds fall on (the tree operator scores
/// rows in blocks of 64).
const PART_ROWS: usize = 512;
const PART_ALIGN: usize = 64;
/// Parts per working thread: more parts than threads, so that a thread slowed down (or a
/// helper that wakes late) leaves its share to the others.
const PARTS_PER_THREAD: usize = 4;

thread_local! {
    static IN_PART: Cell<bool> = const { Cell::new(false) };
}

/// Whether this thread is running a part of a cut batch: an operator should then keep its
/// rows on this thread (the other threads run the other parts).
pub fn in_part() -> bool {
    IN_PART.with(Cell::get)
}

/// Helper threads: one fewer than rayon's global pool has (the caller is the other), `None`
/// on a single core.
fn helpers() -> Option<&'static rayon::ThreadPool> {
    static HELPERS: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    HELPERS
        .get_or_init(|| {
            let n = rayon::current_num_threads().saturating_sub(1);
            if n == 0 {
                return None;
            }
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .thread_name(|i| format!("batch-part-{i}"))
                .build()
                .ok()
        })
        .as_ref()
}

/// The parts `n` rows are cut into when helpers exist: one range (all rows) otherwise.
pub fn cut(n: usize) -> Vec<Range<usize>> {
    let parts = helpers().map_or(1, |h| PARTS_PER_THREAD * (h.current_num_threads() + 1));
    part_bounds(n, parts)
}

/// `run(part)` for every part, by the calling thread and the helpers; results in part order
/// (`None` only if a part never ran, which would be a bug here).
pub fn run_parts<T: Send + Sync>(
    parts: &[Range<usize>],
    run: impl Fn(Range<usize>) -> T + Sync,
) -> Option<Vec<T>> {
    let slots: Vec<OnceLock<T>> = parts.iter().map(|_| OnceLock::new()).collect();
    let next = AtomicUsize::new(0);
    let work = || {
        let was = IN_PART.with(|f| f.replace(true));
        loop {
            let p = next.fetch_add(1, Ordering::Relaxed);
            let Some(rows) = parts.get(p) else { break };
            // Each part is taken by exactly one thread, so its slot is empty.
            let _ = slots[p].set(run(rows.clone()));
        }
        IN_PART.with(|f| f.set(was));
    };
    match helpers() {
        Some(pool) if parts.len() > 1 => pool.in_place_scope(|scope| {
            for _ in 0..pool.current_num_threads() {
                scope.spawn(|_| work());
            }
            work();
        }),
        _ => work(),
    }
    slots.into_iter().map(OnceLock::into_inner).collect()
}

/// `n` rows cut into at most `parts` consecutive ranges of at least PART_ROWS rows, every
/// bound but the last a multiple of PART_ALIGN.
fn part_bounds(n: usize, parts: usize) -> Vec<Range<usize>> {
    let parts = parts.min(n / PART_ROWS).max(1);
    let bound = |p: usize| {
        if p == parts {
            n
        } else {
            p * n / parts / PART_ALIGN * PART_ALIGN
        }
    };
    (0..parts).map(|p| bound(p)..bound(p + 1)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_the_rows_in_order_on_block_bounds() {
        for (n, parts) in [
            (4096, 8),
            (10_000, 8),
            (10_000, 3),
            (5000, 64),
            (600, 8),
            (1, 8),
        ] {
            let bounds = part_bounds(n, parts);
            assert!(
                !bounds.is_empty() && bounds.len() <= parts,
                "{n} rows, {parts}"
            );
            assert_eq!(bounds[0].start, 0);
            assert_eq!(bounds[bounds.len() - 1].end, n);
            for pair in bounds.windows(2) {
                assert_eq!(pair[0].end, pair[1].start);
                assert_eq!(pair[0].end % PART_ALIGN, 0);
            }
            if bounds.len() > 1 {
                assert!(bounds.iter().all(|r| r.len() >= PART_ROWS - PART_ALIGN));
            }
        }
        assert_eq!(part_bounds(10_000, 8).len(), 8);
        assert_eq!(part_bounds(5000, 64).len(), 9);
    }

    #[test]
    fn every_part_runs_once_in_a_part_and_results_keep_part_order() {
        let parts = part_bounds(20_000, 16);
        let runs = AtomicUsize::new(0);
        let out = run_parts(&parts, |rows| {
            runs.fetch_add(1, Ordering::Relaxed);
            assert!(in_part());
            rows.start
        })
        .expect("every part ran");
        assert_eq!(runs.load(Ordering::Relaxed), parts.len());
        let starts: Vec<usize> = parts.iter().map(|r| r.start).collect();
        assert_eq!(out, starts);
        assert!(!in_part(), "the flag is the caller's again after the batch");
    }
}
