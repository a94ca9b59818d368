//! The install's threads: a parallel map for per-wheel work, and a pool that drains a list of
//! tasks biggest first.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use pysfx_format::on_threads;

/// Locks a mutex, taking its data even if another thread panicked holding it.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `items.iter().map(work)` on `threads` threads, results in order. The items `weight` makes
/// heaviest are taken first, so that no thread is left alone with a heavy one at the end.
pub(crate) fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    weight: impl Fn(&T) -> u64,
    work: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&index| std::cmp::Reverse(weight(&items[index])));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, R)>> = Mutex::new(Vec::with_capacity(items.len()));
    on_threads(threads.min(items.len()), &|| {
        while let Some(&index) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
            let result = work(&items[index]);
            lock(&results).push((index, result));
        }
    });
    let mut results = results
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    results.sort_by_key(|(index, _)| *index);
    results.into_iter().map(|(_, result)| result).collect()
}

/// Runs `tasks` (each with its size) on `threads` threads, biggest first. Each thread makes its
/// own state with `start`, runs `work(state, task)` for the tasks it takes and hands its state
/// to `end`. The first error stops every thread and is returned.
pub(crate) fn drain<T: Sync, S, E: Send>(
    mut tasks: Vec<(T, u64)>,
    threads: usize,
    start: impl Fn() -> S + Sync,
    work: impl Fn(&mut S, &T) -> Result<(), E> + Sync,
    end: impl Fn(S) + Sync,
) -> Result<(), E> {
    tasks.sort_by_key(|task| std::cmp::Reverse(task.1));
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<E>> = Mutex::new(None);
    on_threads(threads.min(tasks.len()), &|| {
        let mut state = start();
        while !failed.load(Ordering::Relaxed) {
            let index = next.fetch_add(1, Ordering::Relaxed);
            let Some((task, _)) = tasks.get(index) else {
                break;
            };
            if let Err(error) = work(&mut state, task) {
                failed.store(true, Ordering::Relaxed);
                lock(&first_error).get_or_insert(error);
                break;
            }
        }
        end(state);
    });
    let first_error = first_error
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    match first_error {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_map_keeps_the_order() {
        let items: Vec<u32> = (0..100).collect();
        assert_eq!(
            parallel_map(&items, 4, |item| u64::from(*item % 7), |item| item * 2),
            items.iter().map(|item| item * 2).collect::<Vec<_>>()
        );
    }

    #[test]
    fn drain_runs_every_task_once_or_stops_at_an_error() {
        let tasks: Vec<(u64, u64)> = (0..50).map(|i| (i, i)).collect();
        let done = Mutex::new(Vec::new());
        drain(
            tasks.clone(),
            3,
            Vec::new,
            |mine: &mut Vec<u64>, task| -> Result<(), ()> {
                mine.push(*task);
                Ok(())
            },
            |mine| lock(&done).extend(mine),
        )
        .expect("no error");
        let mut done = done.into_inner().expect("lock");
        done.sort();
        assert_eq!(done, (0..50).collect::<Vec<_>>());
        let result = drain(
            tasks,
            3,
            || (),
            |_, task| if *task == 7 { Err(*task) } else { Ok(()) },
            |_| {},
        );
        assert_eq!(result, Err(7));
    }
}
