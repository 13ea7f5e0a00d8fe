//! Reads the input on a second thread, a few chunks ahead of the parser, so
//! the kernel's copy (or gzip's inflate) runs on the other core while this
//! one decodes and analyses.

use std::io::{self, Read};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

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
}

impl ReadAhead {
    pub(super) fn new(mut input: Box<dyn Read + Send>) -> ReadAhead {
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
                            if filled == CHUNK {
                                break Ok(());
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => break Err(e),
                    }
                };
                buf.truncate(filled);
                let more = filled == CHUNK;
                if filled > 0 && tx.send(Ok(buf)).is_err() {
                    return; // The parser is gone.
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
        }
    }
}

impl Read for ReadAhead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            if self.finished {
                return Ok(0);
            }
            match self.chunks.recv() {
                Ok(Ok(next)) => {
                    let spent = std::mem::replace(&mut self.current, next);
                    let _ = self.spent.try_send(spent);
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.finished = true;
                    return Err(e);
                }
                // The reading thread ended: end of input.
                Err(_) => self.finished = true,
            }
        }
        let n = out.len().min(self.current.len() - self.pos);
        out[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
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
