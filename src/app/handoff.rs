//! The queue of batches between the decoding thread and the analysis: a
//! bounded single-producer single-consumer queue that wakes a blocked side
//! in bursts, not once per item.
//!
//! Why not `std::sync::mpsc::sync_channel`: when the analysis is the slower
//! stage the queue is full, and a full `sync_channel` wakes its sender on
//! every `recv`; the sender fills the one free slot and sleeps again. That
//! is a futex wake and a context switch per batch, thousands per second, 3
//! to 5 % of each thread's time on the benchmark captures (perf). Here the
//! producer, once blocked on a full queue, is woken only when the queue has
//! drained to half (hysteresis), and a consumer waiting on an empty queue
//! only once `wake_at` items are queued (1 for a live input, where latency
//! matters; more for a file). No crate we know of offers the hysteresis
//! (crossbeam-channel and flume wake per item too).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// Creates a queue holding at most `capacity` items; a consumer waiting on
/// the empty queue is woken once `wake_at` items are queued (or the
/// producer is gone).
pub(crate) fn bounded<T>(capacity: usize, wake_at: usize) -> (Producer<T>, Consumer<T>) {
    let capacity = capacity.max(1);
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::with_capacity(capacity),
            producer_waiting: false,
            consumer_waiting: false,
            producer_gone: false,
            consumer_gone: false,
        }),
        not_empty: Condvar::new(),
        not_full: Condvar::new(),
        capacity,
        resume_at: capacity / 2,
        wake_at: wake_at.clamp(1, capacity),
    });
    (
        Producer {
            shared: Arc::clone(&shared),
        },
        Consumer { shared },
    )
}

struct Shared<T> {
    state: Mutex<State<T>>,
    not_empty: Condvar,
    not_full: Condvar,
    capacity: usize,
    /// A blocked producer is woken when the queue is down to this many.
    resume_at: usize,
    /// A waiting consumer is woken when the queue holds this many.
    wake_at: usize,
}

struct State<T> {
    queue: VecDeque<T>,
    producer_waiting: bool,
    consumer_waiting: bool,
    producer_gone: bool,
    consumer_gone: bool,
}

impl<T> Shared<T> {
    /// The state; nothing panics while holding the lock, but a poisoned
    /// lock still holds a consistent queue.
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The sending half (the decoding thread).
pub(crate) struct Producer<T> {
    shared: Arc<Shared<T>>,
}

/// The receiving half (the analysis).
pub(crate) struct Consumer<T> {
    shared: Arc<Shared<T>>,
}

/// Why [`Consumer::recv_timeout`] returned without an item.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RecvTimeout {
    /// Nothing came in time; the producer may still send.
    Timeout,
    /// The producer is gone and the queue is empty.
    Disconnected,
}

impl<T> Producer<T> {
    /// Queues `item`, waiting while the queue is full. Gives the item back
    /// when the consumer is gone.
    pub(crate) fn send(&self, item: T) -> Result<(), T> {
        let sh = &*self.shared;
        let mut s = sh.lock();
        while s.queue.len() >= sh.capacity && !s.consumer_gone {
            s.producer_waiting = true;
            s = sh.not_full.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
        if s.consumer_gone {
            return Err(item);
        }
        s.queue.push_back(item);
        if s.consumer_waiting && s.queue.len() >= sh.wake_at {
            s.consumer_waiting = false;
            sh.not_empty.notify_one();
        }
        Ok(())
    }
}

impl<T> Drop for Producer<T> {
    fn drop(&mut self) {
        let mut s = self.shared.lock();
        s.producer_gone = true;
        s.consumer_waiting = false;
        self.shared.not_empty.notify_all();
    }
}

impl<T> Consumer<T> {
    /// The next item, waiting for one; `None` once the producer is gone
    /// and everything it sent was received.
    pub(crate) fn recv(&self) -> Option<T> {
        self.recv_within(None).ok()
    }

    /// As [`Consumer::recv`], waiting at most `timeout`.
    pub(crate) fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeout> {
        self.recv_within(Some(timeout))
    }

    fn recv_within(&self, timeout: Option<Duration>) -> Result<T, RecvTimeout> {
        let sh = &*self.shared;
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        let mut s = sh.lock();
        loop {
            if let Some(item) = s.queue.pop_front() {
                if s.producer_waiting && s.queue.len() <= sh.resume_at {
                    s.producer_waiting = false;
                    sh.not_full.notify_one();
                }
                return Ok(item);
            }
            if s.producer_gone {
                return Err(RecvTimeout::Disconnected);
            }
            // The queue is empty: a producer waiting on a full queue cannot
            // be (it would have been woken at `resume_at`).
            s.consumer_waiting = true;
            s = match deadline {
                None => sh.not_empty.wait(s).unwrap_or_else(PoisonError::into_inner),
                Some(d) => {
                    let left = d.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        // (Items below `wake_at` were taken at the top of
                        // the loop, after the wait that timed out.)
                        s.consumer_waiting = false;
                        return Err(RecvTimeout::Timeout);
                    }
                    sh.not_empty
                        .wait_timeout(s, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
    }
}

impl<T> Drop for Consumer<T> {
    fn drop(&mut self) {
        let mut s = self.shared.lock();
        s.consumer_gone = true;
        s.producer_waiting = false;
        // Items never received are freed now, not when the producer ends.
        s.queue.clear();
        self.shared.not_full.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_arrive_in_order_then_none_once_the_producer_is_gone() {
        let (tx, rx) = bounded(4, 3);
        let producer = std::thread::spawn(move || {
            for i in 0..1000 {
                tx.send(i).expect("consumer alive");
            }
        });
        let got: Vec<i32> = std::iter::from_fn(|| rx.recv()).collect();
        producer.join().expect("producer");
        assert_eq!(got, (0..1000).collect::<Vec<_>>());
        assert_eq!(rx.recv(), None);
    }

    #[test]
    fn items_below_the_wake_threshold_are_flushed_when_the_producer_ends() {
        let (tx, rx) = bounded(64, 8);
        let producer = std::thread::spawn(move || {
            tx.send(1).expect("consumer alive");
            tx.send(2).expect("consumer alive");
        });
        assert_eq!(rx.recv(), Some(1));
        assert_eq!(rx.recv(), Some(2));
        assert_eq!(rx.recv(), None);
        producer.join().expect("producer");
    }

    #[test]
    fn the_queue_never_holds_more_than_its_capacity() {
        let (tx, rx) = bounded(3, 1);
        for i in 0..3 {
            tx.send(i).expect("room");
        }
        let producer = std::thread::spawn(move || tx.send(3));
        while !rx.shared.lock().producer_waiting {
            std::thread::yield_now();
        }
        // The fourth send waits until the queue drains to half (one item):
        // it cannot be queued before two receives.
        assert_eq!(rx.recv(), Some(0));
        assert_eq!(rx.shared.lock().queue.len(), 2);
        assert_eq!(rx.recv(), Some(1));
        assert_eq!(producer.join().expect("producer"), Ok(()));
        assert_eq!(rx.recv(), Some(2));
        assert_eq!(rx.recv(), Some(3));
        assert_eq!(rx.recv(), None);
    }

    #[test]
    fn send_gives_the_item_back_once_the_consumer_is_gone() {
        let (tx, rx) = bounded(1, 1);
        tx.send(1).expect("room");
        let producer = std::thread::spawn(move || tx.send(2));
        drop(rx);
        assert_eq!(producer.join().expect("producer"), Err(2));
    }

    #[test]
    fn recv_timeout_hands_over_what_is_below_the_threshold() {
        let (tx, rx) = bounded(8, 4);
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(1)),
            Err(RecvTimeout::Timeout)
        );
        tx.send(7).expect("room");
        assert_eq!(rx.recv_timeout(Duration::from_millis(1)), Ok(7));
        drop(tx);
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(1)),
            Err(RecvTimeout::Disconnected)
        );
    }
}
