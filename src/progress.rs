//! A progress bar on standard error (indicatif) for work that takes more
//! than a second; nothing at all when standard error is not a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Work shorter than this shows no bar.
const SHOW_AFTER: Duration = Duration::from_secs(1);
const TICK: Duration = Duration::from_millis(100);

/// What the bar counts.
pub enum Unit {
    /// Bytes of one capture, out of its size when known; read from `counter`.
    Bytes {
        total: Option<u64>,
        counter: Arc<AtomicU64>,
    },
    /// Captures done, out of `total` (advanced with [`Bar::inc`]).
    Captures { total: u64 },
}

pub struct Bar {
    bar: ProgressBar,
    done: Arc<AtomicBool>,
    ticker: Option<std::thread::JoinHandle<()>>,
}

impl Bar {
    /// Starts the bar, hidden until [`SHOW_AFTER`] has passed (and for good
    /// when standard error is not a terminal).
    pub fn start(unit: Unit) -> Bar {
        let (bar, counter) = match unit {
            Unit::Bytes { total, counter } => {
                let template = if total.is_some() {
                    "{bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
                } else {
                    "{spinner} {bytes} read, {bytes_per_sec}"
                };
                let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::hidden());
                bar.set_style(
                    ProgressStyle::with_template(template)
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                (bar, Some(counter))
            }
            Unit::Captures { total } => {
                let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
                bar.set_style(
                    ProgressStyle::with_template("{bar:30} {pos}/{len} captures, {elapsed}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                (bar, None)
            }
        };
        let done = Arc::new(AtomicBool::new(false));
        let ticker = std::io::stderr().is_terminal().then(|| {
            let (bar, done) = (bar.clone(), Arc::clone(&done));
            std::thread::spawn(move || {
                let started = Instant::now();
                let mut shown = false;
                while !done.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    if !shown && started.elapsed() >= SHOW_AFTER {
                        bar.set_draw_target(ProgressDrawTarget::stderr());
                        shown = true;
                    }
                    if let Some(c) = &counter {
                        bar.set_position(c.load(Ordering::Relaxed));
                    }
                    if shown {
                        bar.tick();
                    }
                }
            })
        });
        Bar { bar, done, ticker }
    }

    pub fn inc(&self) {
        self.bar.inc(1);
    }

    /// Removes the bar before the report is printed.
    pub fn finish(mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
        self.bar.finish_and_clear();
    }
}
