//! Reads the input on a second thread, a few chunks ahead of the parser, so
//! the kernel's copy (or gzip's inflate) runs on the other core while this
//! one decodes and analyses.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::Duration;

/// Size of one chunk handed from the reading thread to the parser.
const CHUNK: usize = 1 << 20;
/// Chunks in flight: enough to ride out a slow read, bounded for memory.
const DEPTH: usize = 4;

pub(super) struct ReadAhead {
    chunks: Receiver<io::Result<Vec<u8>>>,
    /// Emptied chunks go back to the reader, so no chunk is allocated twice.
    spent: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
    finished: bool,
    /// Live input (a pipe, a growing file): set from outside to end the
    /// input where it is, even while the reading thread waits for bytes.
    stop: Option<Arc<AtomicBool>>,
    /// Chunks sent by the reading thread and not yet taken (counted before
    /// the send, so never less than what the channel holds).
    queued: Arc<AtomicUsize>,
    /// Live input: set while every byte received so far has been handed to
    /// the parser (the next read would wait), so the frames decoded so far
    /// can go to the analysis instead of waiting for a fuller batch.
    drained: Arc<AtomicBool>,
}

/// How often a live input looks at its stop flag while no bytes come.
const STOP_POLL: Duration = Duration::from_millis(100);

impl ReadAhead {
    pub(super) fn new(input: Box<dyn Read + Send>) -> ReadAhead {
        Self::spawn(input, None)
    }

    /// A live input: each read is handed over as it arrives (a pipe that
    /// trickles must not wait for a whole chunk), and once `stop` is set the
    /// input ends after the bytes already read, although the reading thread
    /// may still be blocked in `read` (it is left to the process's exit).
    pub(super) fn live(input: Box<dyn Read + Send>, stop: Arc<AtomicBool>) -> ReadAhead {
        Self::spawn(input, Some(stop))
    }

    /// See the `drained` field (always false for a file read ahead).
    pub(super) fn drained_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.drained)
    }

    fn spawn(mut input: Box<dyn Read + Send>, stop: Option<Arc<AtomicBool>>) -> ReadAhead {
        let live = stop.is_some();
        let queued = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&queued);
        let (tx, chunks) = sync_channel::<io::Result<Vec<u8>>>(DEPTH);
        let (spent, recycled) = sync_channel::<Vec<u8>>(DEPTH + 2);
        std::thread::spawn(move || {
            loop {
                let mut buf = recycled.try_recv().unwrap_or_default();
                buf.resize(CHUNK, 0);
                let mut filled = 0;
                // Fill the chunk (pipes and gzip return short reads).
                let result = loop {
                    match input.read(&mut buf[filled..]) {
                        Ok(0) => break Ok(()),
                        Ok(n) => {
                            filled += n;
                            if filled == CHUNK || live {
                                break Ok(());
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => break Err(e),
                    }
                };
                buf.truncate(filled);
                let more = filled == CHUNK || (live && filled > 0);
                if filled > 0 {
                    counted.fetch_add(1, Ordering::SeqCst);
                    if tx.send(Ok(buf)).is_err() {
                        return; // The parser is gone.
                    }
                }
                if let Err(e) = result {
                    let _ = tx.send(Err(e));
                    return;
                }
                if !more {
                    return;
                }
            }
        });
        ReadAhead {
            chunks,
            spent,
            current: Vec::new(),
            pos: 0,
            finished: false,
            stop,
            queued,
            drained: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The next chunk; `None` at the end of the input (or once stopped).
    fn next_chunk(&self) -> Option<io::Result<Vec<u8>>> {
        let Some(stop) = &self.stop else {
            return self.chunks.recv().ok();
        };
        loop {
            if stop.load(Ordering::Relaxed) {
                // What already arrived is still read; nothing is waited for.
                return self.chunks.try_recv().ok();
            }
            match self.chunks.recv_timeout(STOP_POLL) {
                Ok(chunk) => return Some(chunk),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }
}

/// A file that is still being written (`pcap --follow`): at its end, waits
/// for more as `tail -f` does, until `stop` is set.
pub(super) struct Follow {
    pub(super) file: std::fs::File,
    pub(super) stop: Arc<AtomicBool>,
}

/// How often a followed file is looked at again at its end.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

impl Read for Follow {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.file.read(out)? {
                0 if !self.stop.load(Ordering::Relaxed) => std::thread::sleep(FOLLOW_POLL),
                n => return Ok(n),
            }
        }
    }
}

impl Read for ReadAhead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            if self.finished {
                return Ok(0);
            }
            match self.next_chunk() {
                Some(Ok(next)) => {
                    self.queued.fetch_sub(1, Ordering::SeqCst);
                    let spent = std::mem::replace(&mut self.current, next);
                    let _ = self.spent.try_send(spent);
                    self.pos = 0;
                }
                Some(Err(e)) => {
                    self.finished = true;
                    return Err(e);
                }
                // The reading thread ended (or the input was stopped): end of input.
                None => self.finished = true,
            }
        }
        let n = out.len().min(self.current.len() - self.pos);
        out[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        if self.stop.is_some() {
            let drained = self.pos == self.current.len() && self.queued.load(Ordering::SeqCst) == 0;
            self.drained.store(drained, Ordering::Relaxed);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that returns a few bytes at a time, then fails.
    struct Trickle {
        left: usize,
        fail: bool,
    }

    impl Read for Trickle {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if self.left == 0 {
                return if self.fail {
                    Err(io::Error::new(io::ErrorKind::UnexpectedEof, "cut"))
                } else {
                    Ok(0)
                };
            }
            let n = out.len().min(self.left).min(7);
            for (i, b) in out[..n].iter_mut().enumerate() {
                *b = ((self.left - i) % 251) as u8;
            }
            self.left -= n;
            Ok(n)
        }
    }

    #[test]
    fn same_bytes_then_end_or_error() {
        let len = 3 * CHUNK + 12_345;
        let mut direct = Vec::new();
        Trickle {
            left: len,
            fail: false,
        }
        .read_to_end(&mut direct)
        .unwrap();
        let mut ahead = Vec::new();
        ReadAhead::new(Box::new(Trickle {
            left: len,
            fail: false,
        }))
        .read_to_end(&mut ahead)
        .unwrap();
        assert_eq!(ahead, direct);

        let mut r = ReadAhead::new(Box::new(Trickle {
            left: 100,
            fail: true,
        }));
        let mut got = Vec::new();
        let e = r.read_to_end(&mut got).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(got.len(), 100);
    }
}
