//! Runs the egress probes concurrently: at most `width` at once, started
//! no faster than one per `spacing`, each with its own deadline inside.
//!
//! Plain threads, not tokio: every probe is a short blocking exchange the
//! project already has (rustls on a blocking socket, the raw-socket tracer,
//! the DNS and SNTP clients), so an async runtime would run them through
//! `spawn_blocking` on the same kind of threads. A few dozen threads for a
//! few seconds cost less than a runtime (measured in the README).

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How many probes run at once, and how fast new ones start.
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    /// Probes in flight at most (each holds one or two sockets).
    pub width: usize,
    /// Time between two probe starts (a rate limit).
    pub spacing: Duration,
}

impl Default for Pace {
    fn default() -> Pace {
        // 24 sockets at most, 50 new probes a second at most.
        Pace {
            width: 24,
            spacing: Duration::from_millis(20),
        }
    }
}

/// A probe to run: it owns what it needs or borrows the run's config.
pub type Job<'a, T> = Box<dyn FnOnce() -> T + Send + 'a>;

/// Runs every job and returns their results in the jobs' order. A job that
/// panics gives `on_panic`'s value for its index instead of aborting the run.
pub fn run_all<T: Send>(
    jobs: Vec<Job<'_, T>>,
    pace: Pace,
    on_panic: impl Fn(usize) -> T + Sync,
) -> Vec<T> {
    let n = jobs.len();
    let slots: Vec<Mutex<Option<Job<'_, T>>>> =
        jobs.into_iter().map(|j| Mutex::new(Some(j))).collect();
    let results: Vec<Mutex<Option<T>>> = (0..n).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let next_start = Mutex::new(Instant::now());
    std::thread::scope(|s| {
        for _ in 0..pace.width.clamp(1, n.max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return;
                    }
                    // The rate limit: claim the next start time, then wait for it.
                    let start = {
                        let mut t = next_start.lock().unwrap_or_else(|e| e.into_inner());
                        let start = (*t).max(Instant::now());
                        *t = start + pace.spacing;
                        start
                    };
                    std::thread::sleep(start.saturating_duration_since(Instant::now()));
                    let job = slots[i].lock().unwrap_or_else(|e| e.into_inner()).take();
                    let Some(job) = job else { continue };
                    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job))
                        .unwrap_or_else(|_| on_panic(i));
                    *results[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(out);
                }
            });
        }
    });
    results
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .unwrap_or_else(|| on_panic(i))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_job_order_and_the_width_holds() {
        let running = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let jobs: Vec<Job<'_, usize>> = (0..20usize)
            .map(|i| {
                let running = &running;
                let most = &most;
                Box::new(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20 - i as u64));
                    running.fetch_sub(1, Ordering::SeqCst);
                    i * 10
                }) as Box<dyn FnOnce() -> usize + Send>
            })
            .collect();
        let pace = Pace {
            width: 4,
            spacing: Duration::ZERO,
        };
        let out = run_all(jobs, pace, |_| usize::MAX);
        assert_eq!(out, (0..20).map(|i| i * 10).collect::<Vec<_>>());
        assert!(most.load(Ordering::SeqCst) <= 4);
    }

    #[test]
    fn the_rate_limit_spaces_the_starts_and_a_panic_is_one_result() {
        let started = Instant::now();
        let jobs: Vec<Box<dyn FnOnce() -> u8 + Send>> = vec![
            Box::new(|| 1),
            Box::new(|| panic!("probe bug")),
            Box::new(|| 3),
            Box::new(|| 4),
        ];
        let pace = Pace {
            width: 8,
            spacing: Duration::from_millis(30),
        };
        let out = run_all(jobs, pace, |_| 0);
        assert_eq!(out, vec![1, 0, 3, 4]);
        // Four starts, 30 ms apart: the last one no sooner than 90 ms.
        assert!(started.elapsed() >= Duration::from_millis(90));
    }
}
