//! Independent jobs spread over a fixed number of threads, results kept in input order.
//! Jobs take what they need by reference; this module owns no state between calls.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// The threads a build uses: one per core.
pub fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// Runs `job(index, item)` for every item on up to `threads` threads (the caller's
/// included) and returns the results in the items' order.
pub fn map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    job: impl Fn(usize, &T) -> R + Sync,
) -> Vec<R> {
    let results: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let work = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= items.len() {
            break;
        }
        let r = job(i, &items[i]);
        *results[i].lock().expect("a job panicked") = Some(r);
    };
    std::thread::scope(|s| {
        for _ in 1..threads.min(items.len()) {
            s.spawn(work);
        }
        work();
    });
    results
        .into_iter()
        .map(|m| {
            m.into_inner()
                .expect("a job panicked")
                .expect("every job ran")
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test's I/O error panics; nobody reads it
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_input_order_on_any_thread_count() {
        let items: Vec<u64> = (0..100).collect();
        for threads in [1, 2, 7, 200] {
            let got = map(&items, threads, |i, x| (i as u64, x * x));
            let want: Vec<(u64, u64)> = items.iter().map(|x| (*x, x * x)).collect();
            assert_eq!(got, want, "{threads} threads");
        }
        assert!(map(&[] as &[u8], 2, |_, x| *x).is_empty());
    }
}
