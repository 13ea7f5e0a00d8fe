//! One direction of a TCP connection turned back into a byte stream, for the
//! TLS handshake only.
//!
//! Offsets count from the first byte after the SYN (or from the first data
//! segment seen when the capture starts mid-stream). Only the first
//! [`MAX_STREAM`] bytes are kept: a handshake is a few kilobytes, and a
//! bounded window keeps a hostile or broken flow from growing memory.
//!
//! Overlapping data: the first copy of every byte wins (what most IDSs do,
//! and what the receiver usually kept). A later copy that differs is recorded
//! as a conflict: two different bytes for one sequence number is how an
//! injected segment shows.

use super::{Gap, OverlapConflict};
use std::collections::BTreeMap;

/// Stream bytes kept per direction (contiguous from offset 0).
pub const MAX_STREAM: usize = 64 * 1024;
/// First allocation of a direction's contiguous bytes.
const INITIAL_CAPACITY: usize = 4 * 1024;
/// Out-of-order bytes kept ahead of a hole, and how many pieces.
pub(super) const MAX_PENDING_BYTES: usize = 32 * 1024;
const MAX_PENDING_PIECES: usize = 64;
/// Conflicting overlaps described one by one; more are only counted.
const MAX_CONFLICTS: usize = 8;

/// A piece received ahead of a hole.
#[derive(Clone, Debug)]
struct Piece {
    bytes: Vec<u8>,
    frame: u64,
}

#[derive(Clone, Debug, Default)]
pub(super) struct Reassembler {
    /// Sequence number of stream offset 0, once known.
    base: Option<u32>,
    pub syn_seen: bool,
    /// Stream bytes `0..data.len()`, as first received.
    data: Vec<u8>,
    /// Pieces beyond `data`, by offset: never overlapping each other, all
    /// starting after `data.len()` (a piece that reaches `data` is moved in).
    pending: BTreeMap<u64, Piece>,
    pending_bytes: usize,
    /// The buffers were released: later segments are ignored.
    released: bool,
    /// Bytes of `data` when the buffers were released.
    released_len: u64,
    /// A piece had to be dropped (out-of-order budget or window exceeded):
    /// where the stream has a hole it may never fill.
    pub lost: Option<Gap>,
    /// Bytes received again (retransmissions, overlaps), identical or not.
    pub retransmitted: u64,
    pub conflicts: Vec<OverlapConflict>,
    pub conflicts_total: u32,
    /// Segments whose captured payload was shorter than the TCP payload.
    pub truncated: u32,
}

impl Reassembler {
    /// A SYN (or SYN-ACK): the stream starts after its sequence number.
    /// Ignored once data has been placed (a late or repeated SYN must not
    /// move the origin under the bytes already kept).
    pub fn syn(&mut self, seq: u32) {
        if self.data.is_empty() && self.pending.is_empty() && !self.released {
            self.base = Some(seq.wrapping_add(1));
            self.syn_seen = true;
        }
    }

    /// The stream offset of a sequence number, when the origin is known.
    /// Offsets at or beyond 2^31 from the origin are before it (negative):
    /// the window kept is far smaller, so there is no ambiguity.
    pub fn offset_of(&self, seq: u32) -> Option<i64> {
        self.base.map(|b| i64::from(seq.wrapping_sub(b) as i32))
    }

    /// Places the bytes of one segment that starts at `seq`.
    pub fn insert(&mut self, seq: u32, bytes: &[u8], frame: u64) {
        if bytes.is_empty() || self.released {
            return;
        }
        // Mid-stream capture: the first data segment defines the origin
        // (not a bare ACK, whose sequence number may be one byte early for
        // a keep-alive).
        let base = *self.base.get_or_insert(seq);
        let mut start = i64::from(seq.wrapping_sub(base) as i32);
        let mut bytes = bytes;
        if start < 0 {
            // Bytes from before the origin: keep only what reaches past it.
            let skip = usize::try_from(-start).unwrap_or(usize::MAX);
            if skip >= bytes.len() {
                return;
            }
            bytes = &bytes[skip..];
            start = 0;
        }
        let start = start as u64;
        let window = MAX_STREAM as u64;
        if start >= window {
            self.note_lost(frame);
            return;
        }
        let end = (start + bytes.len() as u64).min(window);
        if end < start + bytes.len() as u64 {
            // The part beyond the window is dropped; note it only when it
            // could matter (the kept window is then full anyway).
            bytes = &bytes[..(end - start) as usize];
        }
        self.place(start, bytes, frame);
    }

    fn place(&mut self, start: u64, bytes: &[u8], frame: u64) {
        let end = start + bytes.len() as u64;
        let have = self.data.len() as u64;
        let mut conflict: Option<(u64, u64)> = None;
        // Narrows a differing overlap [a, b) to its first..last differing byte.
        let mut note = |a: u64, old: &[u8], new: &[u8]| {
            let differs = |(x, y): (&u8, &u8)| x != y;
            let Some(first) = old.iter().zip(new).position(differs) else {
                return;
            };
            let last = old.iter().zip(new).rposition(differs).unwrap_or(first);
            let (a, b) = (a + first as u64, a + last as u64 + 1);
            conflict = Some(match conflict {
                Some((s, e)) => (s.min(a), e.max(b)),
                None => (a, b),
            });
        };
        // Against the contiguous bytes.
        let mut from = start;
        if start < have {
            let b = end.min(have);
            self.retransmitted += b - start;
            note(
                start,
                &self.data[start as usize..b as usize],
                &bytes[..(b - start) as usize],
            );
            from = b;
        }
        // Against the pieces waiting beyond a hole: collect the uncovered spans.
        // Inline: nearly every segment leaves one span, and this runs per segment.
        let mut spans: smallvec::SmallVec<[(u64, u64); 4]> = smallvec::SmallVec::new();
        let mut cursor = from;
        if from < end {
            for (&k, p) in self.pending.range(..end) {
                let pe = k + p.bytes.len() as u64;
                if pe <= cursor {
                    continue;
                }
                if k > cursor {
                    spans.push((cursor, k));
                }
                let a = k.max(cursor);
                let b = pe.min(end);
                self.retransmitted += b - a;
                note(
                    a,
                    &p.bytes[(a - k) as usize..(b - k) as usize],
                    &bytes[(a - start) as usize..(b - start) as usize],
                );
                cursor = pe;
            }
            if cursor < end {
                spans.push((cursor, end));
            }
        }
        if let Some((a, b)) = conflict {
            self.conflicts_total = self.conflicts_total.saturating_add(1);
            if self.conflicts.len() < MAX_CONFLICTS {
                self.conflicts.push(OverlapConflict {
                    frame,
                    offset: a,
                    len: b - a,
                });
            }
        }
        for (a, b) in spans {
            let piece = &bytes[(a - start) as usize..(b - start) as usize];
            if a == self.data.len() as u64 {
                if self.data.capacity() == 0 {
                    // One allocation holds most handshakes (a ClientHello, a
                    // server flight with a short chain) without regrowing.
                    self.data.reserve(piece.len().max(INITIAL_CAPACITY));
                }
                self.data.extend_from_slice(piece);
            } else if self.pending.len() < MAX_PENDING_PIECES
                && self.pending_bytes + piece.len() <= MAX_PENDING_BYTES
            {
                self.pending_bytes += piece.len();
                self.pending.insert(
                    a,
                    Piece {
                        bytes: piece.to_vec(),
                        frame,
                    },
                );
            } else {
                self.note_lost(frame);
            }
        }
        // Pieces that now touch the contiguous bytes join them.
        while let Some(entry) = self.pending.first_entry() {
            if *entry.key() != self.data.len() as u64 {
                break;
            }
            let p = entry.remove();
            self.pending_bytes -= p.bytes.len();
            self.data.extend_from_slice(&p.bytes);
        }
    }

    fn note_lost(&mut self, frame: u64) {
        if self.lost.is_none() {
            let offset = self.data.len() as u64;
            self.lost = Some(Gap {
                offset,
                missing_bytes: self.pending.keys().next().map(|k| k - offset),
                next_frame: Some(frame),
            });
        }
    }

    /// The contiguous bytes from offset 0.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Contiguous bytes reassembled so far (kept or already released).
    pub fn len(&self) -> u64 {
        self.released_len.max(self.data.len() as u64)
    }

    /// Where the contiguous stream stops before bytes that did arrive: the
    /// hole parsing is waiting on.
    pub fn gap(&self) -> Option<Gap> {
        if let Some((&k, p)) = self.pending.iter().next() {
            let offset = self.data.len() as u64;
            return Some(Gap {
                offset,
                missing_bytes: Some(k - offset),
                next_frame: Some(p.frame),
            });
        }
        self.lost
    }

    /// Frees the buffers: the handshake is over (or never will be parsed).
    /// Counters and the origin stay; later segments are ignored.
    pub fn release(&mut self) {
        self.released_len = self.len();
        self.released = true;
        self.data = Vec::new();
        self.pending = BTreeMap::new();
        self.pending_bytes = 0;
    }

    pub fn released(&self) -> bool {
        self.released
    }

    /// Bytes held in memory (for the bound test).
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.data.capacity() + self.pending_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(base: u32) -> Reassembler {
        let mut r = Reassembler::default();
        r.syn(base.wrapping_sub(1));
        r
    }

    #[test]
    fn in_order_and_reverse() {
        let msg: Vec<u8> = (0..100u8).collect();
        let mut a = r(1000);
        for (i, c) in msg.chunks(7).enumerate() {
            a.insert(1000 + (i * 7) as u32, c, i as u64);
        }
        assert_eq!(a.data(), &msg[..]);
        let mut b = r(1000);
        let chunks: Vec<_> = msg.chunks(7).enumerate().collect();
        for (i, c) in chunks.iter().rev() {
            b.insert(1000 + (i * 7) as u32, c, *i as u64);
            if *i > 0 {
                assert!(b.data().is_empty());
                assert_eq!(b.gap().unwrap().offset, 0);
            }
        }
        assert_eq!(b.data(), &msg[..]);
        assert!(b.gap().is_none());
        assert_eq!(b.conflicts_total, 0);
    }

    #[test]
    fn first_copy_wins_and_conflicts_are_noted() {
        let mut a = r(0);
        a.insert(0, b"hello", 1);
        a.insert(0, b"hello world", 2); // retransmission carrying more
        a.insert(6, b"WORLD", 3); // rewrite of kept bytes
        assert_eq!(a.data(), b"hello world");
        assert_eq!(a.conflicts_total, 1);
        assert_eq!(
            a.conflicts[0],
            OverlapConflict {
                frame: 3,
                offset: 6,
                len: 5
            }
        );
        assert_eq!(a.retransmitted, 10);
    }

    #[test]
    fn overlap_with_pending_pieces() {
        let mut a = r(0);
        a.insert(10, b"KLMNO", 1);
        a.insert(20, b"UVWXY", 2);
        // Covers the hole, both pieces (one byte different) and beyond.
        a.insert(5, b"fghijKLMNOpqrstUVWxYz", 3);
        assert_eq!(a.data(), b"");
        a.insert(0, b"abcde", 4);
        assert_eq!(a.data(), b"abcdefghijKLMNOpqrstUVWXYz");
        assert_eq!(a.conflicts_total, 1);
        assert_eq!(a.conflicts[0].offset, 23);
    }

    #[test]
    fn wraps_around_2_pow_32() {
        let mut a = r(u32::MAX - 2);
        a.insert(u32::MAX - 2, b"abc", 1);
        a.insert(0, b"def", 2);
        a.insert(3, b"ghi", 3);
        assert_eq!(a.data(), b"abcdefghi");
        // Out of order across the wrap.
        let mut b = r(u32::MAX - 2);
        b.insert(3, b"ghi", 1);
        b.insert(0, b"def", 2);
        b.insert(u32::MAX - 2, b"abc", 3);
        assert_eq!(b.data(), b"abcdefghi");
    }

    #[test]
    fn old_bytes_before_origin_are_trimmed() {
        let mut a = r(100);
        a.insert(95, b"01234abc", 1);
        assert_eq!(a.data(), b"abc");
        a.insert(50, b"x", 2);
        assert_eq!(a.data(), b"abc");
    }

    #[test]
    fn mid_stream_takes_first_data_segment() {
        let mut a = Reassembler::default();
        a.insert(5000, b"abc", 1);
        a.insert(5003, b"def", 2);
        assert!(!a.syn_seen);
        assert_eq!(a.data(), b"abcdef");
    }

    #[test]
    fn memory_is_bounded() {
        let mut a = r(0);
        // Every other 1000-byte block: a hole before each.
        for i in 0..200u32 {
            a.insert(1 + i * 2000, &[7u8; 1000], u64::from(i));
            assert!(a.held() <= MAX_PENDING_BYTES + 64);
        }
        assert!(a.lost.is_some());
        assert_eq!(a.gap().unwrap().offset, 0);
        // A far jump is dropped, not stored.
        let mut b = r(0);
        b.insert(10_000_000, b"far", 1);
        assert!(b.data().is_empty());
        assert_eq!(b.gap().unwrap().next_frame, Some(1));
        // The window: bytes past MAX_STREAM are not kept.
        let mut c = r(0);
        for i in 0..100u32 {
            c.insert(i * 1000, &[1u8; 1000], u64::from(i));
        }
        assert_eq!(c.data().len(), MAX_STREAM);
    }

    #[test]
    fn release_frees_and_ignores_later_data() {
        let mut a = r(0);
        a.insert(0, b"abc", 1);
        a.release();
        assert_eq!(a.held(), 0);
        a.insert(3, b"def", 2);
        assert_eq!(a.len(), 3);
        assert_eq!(a.offset_of(3), Some(3));
    }
}
