//! Retransmitted large segments in one direction: the signal of a path-MTU
//! black hole (full-size segments vanish, small ones pass, no ICMP).

/// Payload size from which a segment counts as large: it needs an MTU near
/// 1500, while a ClientHello or an ACK does not.
pub const LARGE_PAYLOAD: u32 = 1_000;
/// Frames kept for the most retransmitted large segment.
const MAX_FRAMES: usize = 8;
/// Recent large segments remembered to find the original of a retransmission.
const RECENT: usize = 4;

/// The large segment sent most often.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StuckSegment {
    pub seq: u32,
    pub len: u32,
    /// Copies sent: the original and its retransmissions.
    pub sends: u32,
    pub frames: Vec<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SendHistory {
    /// Next sequence number after the highest byte sent so far.
    next_seq: Option<u32>,
    recent_large: [(u32, u64); RECENT],
    recent_at: usize,
    /// Data segments that repeated bytes already sent.
    pub retransmissions: u32,
    pub largest_payload: u32,
    pub stuck: Option<StuckSegment>,
}

/// `a` comes before `b` in sequence space (RFC 1982 arithmetic).
pub fn seq_before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

impl SendHistory {
    pub fn on_data(&mut self, seq: u32, len: u32, frame: u64) {
        if len == 0 {
            return;
        }
        self.largest_payload = self.largest_payload.max(len);
        let end = seq.wrapping_add(len);
        let is_retransmission = self.next_seq.is_some_and(|next| seq_before(seq, next));
        if is_retransmission {
            self.retransmissions += 1;
            if len >= LARGE_PAYLOAD {
                self.on_large_retransmission(seq, len, frame);
            }
        } else if len >= LARGE_PAYLOAD {
            self.recent_large[self.recent_at % RECENT] = (seq, frame);
            self.recent_at += 1;
        }
        if self.next_seq.is_none_or(|next| seq_before(next, end)) {
            self.next_seq = Some(end);
        }
    }

    fn on_large_retransmission(&mut self, seq: u32, len: u32, frame: u64) {
        match &mut self.stuck {
            Some(s) if s.seq == seq => {
                s.sends += 1;
                if s.frames.len() < MAX_FRAMES {
                    s.frames.push(frame);
                }
            }
            // A new candidate replaces one that was retransmitted only once.
            Some(s) if s.sends > 2 => {}
            _ => {
                let original = self
                    .recent_large
                    .iter()
                    .find(|(s, f)| *s == seq && *f != 0)
                    .map(|(_, f)| *f);
                let mut frames: Vec<u64> = original.into_iter().collect();
                frames.push(frame);
                self.stuck = Some(StuckSegment {
                    seq,
                    len,
                    sends: 2,
                    frames,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_full_size_segment_sent_four_times() {
        let mut h = SendHistory::default();
        h.on_data(1, 200, 1);
        h.on_data(201, 1448, 2);
        h.on_data(1649, 1448, 3);
        for f in 4..7 {
            h.on_data(201, 1448, f);
        }
        let s = h.stuck.unwrap();
        assert_eq!((s.seq, s.len, s.sends), (201, 1448, 4));
        assert_eq!(s.frames, vec![2, 4, 5, 6]);
        assert_eq!(h.retransmissions, 3);
    }

    #[test]
    fn small_retransmissions_and_wraparound() {
        let mut h = SendHistory::default();
        h.on_data(u32::MAX - 100, 200, 1);
        h.on_data(99, 50, 2);
        h.on_data(u32::MAX - 100, 200, 3);
        assert_eq!(h.retransmissions, 1);
        assert!(h.stuck.is_none());
        assert!(seq_before(u32::MAX, 5));
    }
}
