//! Per-hop statistics, mtr-style, from the rounds of a trace.
//!
//! # Counting rules
//!
//! - **sent**: probes at the hop's TTL that were sent and are decided
//!   (answered or timed out). Skipped, failed and still-awaited probes are
//!   not counted.
//! - **received**: probes answered within the timeout. Duplicate answers
//!   (duplicated packets, the target retransmitting its SYN-ACK) never count
//!   twice.
//! - **late**: a first answer after the timeout. The probe stays **lost** and
//!   its RTT is not used. Reasons: every probe, in every round including the
//!   last, gets the same window, so loss figures compare across hops and
//!   rounds and a run's length is bounded; and an answer after the timeout
//!   is often made by the far end's retransmission timer (a Linux server
//!   resends its SYN-ACK after 1 s when the first was lost on the way back),
//!   so its "RTT" is a timer and counting it as received would hide
//!   return-path loss as latency (the `mtr --tcp` trap). The late answer's
//!   address, TTL and kind are still listed: they show who is at the hop.
//! - **loss %** = (sent − received) / sent.
//! - RTTs in milliseconds over in-time answers: last (latest round), average,
//!   best, worst, and the sample standard deviation (n − 1; 0 for one sample).

use super::engine::Round;
use super::probe::{ProbeStatus, Reply, ReplyKind};
use crate::vocab::HopEstimate;
use std::net::IpAddr;

/// RTT summary of a hop, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RttStats {
    pub last_ms: f64,
    pub avg_ms: f64,
    pub best_ms: f64,
    pub worst_ms: f64,
    pub stdev_ms: f64,
}

/// An address that answered at a hop (several under ECMP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddrSeen {
    pub addr: IpAddr,
    /// Answers from it (in time or late).
    pub replies: u32,
}

/// A reply TTL seen at a hop, and the hop it implies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TtlSeen {
    pub ttl: u8,
    pub replies: u32,
    pub estimate: HopEstimate,
}

/// A kind of answer seen at a hop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KindSeen {
    pub kind: ReplyKind,
    pub replies: u32,
}

/// One hop (probe TTL) of a trace.
#[derive(Clone, Debug, PartialEq)]
pub struct HopStats {
    /// The probe TTL (traceroute hop number).
    pub hop: u8,
    pub sent: u32,
    pub received: u32,
    pub loss_pct: f64,
    pub late: u32,
    pub duplicates: u32,
    /// `None` when nothing answered in time.
    pub rtt: Option<RttStats>,
    /// Most frequent first.
    pub addrs: Vec<AddrSeen>,
    pub reply_ttls: Vec<TtlSeen>,
    pub kinds: Vec<KindSeen>,
    /// The target's address answered at this hop.
    pub target: bool,
    /// Frame numbers of the probes sent at this hop.
    pub probe_frames: Vec<u64>,
    /// Frame numbers of their answers (in time and late).
    pub reply_frames: Vec<u64>,
}

impl HopStats {
    /// This hop as a hop of a [`crate::path::Path`] (names and ASN unknown).
    pub fn path_hop(&self) -> crate::path::Hop {
        crate::path::Hop {
            hop: self.hop,
            addresses: self.addrs.iter().map(|a| a.addr).collect(),
            names: Vec::new(),
            asn: None,
            stats: self.rtt.as_ref().map(|r| crate::path::HopStats {
                loss_pct: self.loss_pct,
                sent: self.sent,
                last_ms: r.last_ms,
                avg_ms: r.avg_ms,
                best_ms: r.best_ms,
                worst_ms: r.worst_ms,
                stdev_ms: r.stdev_ms,
            }),
        }
    }

    pub fn lost(&self) -> u32 {
        self.sent - self.received
    }

    /// No answer at all (mtr's `???`).
    pub fn is_silent(&self) -> bool {
        self.received == 0 && self.late == 0
    }

    /// 95% Wilson interval of the loss ratio (0..=1).
    pub fn loss_interval(&self) -> (f64, f64) {
        wilson_interval(self.lost(), self.sent)
    }

    /// The most frequent address.
    pub fn addr(&self) -> Option<IpAddr> {
        self.addrs.first().map(|a| a.addr)
    }

    pub fn saw(&self, kind: impl Fn(ReplyKind) -> bool) -> bool {
        self.kinds.iter().any(|k| kind(k.kind))
    }
}

/// 95% Wilson score interval for `failures` in `trials` (ratio 0..=1);
/// (0, 1) for no trials.
pub fn wilson_interval(failures: u32, trials: u32) -> (f64, f64) {
    if trials == 0 {
        return (0.0, 1.0);
    }
    const Z: f64 = 1.959_963_984_540_054;
    let n = f64::from(trials);
    let p = f64::from(failures) / n;
    let z2 = Z * Z;
    let denom = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denom;
    let half = Z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    let low = if failures == 0 {
        0.0
    } else {
        (center - half).max(0.0)
    };
    let high = if failures == trials {
        1.0
    } else {
        (center + half).min(1.0)
    };
    (low, high)
}

fn bump<T: PartialEq>(list: &mut Vec<(T, u32)>, key: T) {
    match list.iter_mut().find(|(k, _)| *k == key) {
        Some((_, n)) => *n += 1,
        None => list.push((key, 1)),
    }
}

/// Statistics of hops `first..=last` over `rounds`.
pub fn hop_stats(rounds: &[Round], first: u8, last: u8, target: IpAddr) -> Vec<HopStats> {
    (first..=last)
        .map(|ttl| one_hop(rounds, ttl, target))
        .collect()
}

fn one_hop(rounds: &[Round], ttl: u8, target: IpAddr) -> HopStats {
    let (mut sent, mut received, mut late, mut duplicates) = (0u32, 0u32, 0u32, 0u32);
    let mut rtts: Vec<f64> = Vec::new();
    let (mut addrs, mut ttls, mut kinds) = (Vec::new(), Vec::new(), Vec::new());
    let (mut probe_frames, mut reply_frames) = (Vec::new(), Vec::new());
    let mut is_target = false;
    let mut note = |reply: &Reply| {
        bump(&mut addrs, reply.from);
        bump(&mut ttls, reply.ttl);
        bump(&mut kinds, reply.kind);
        reply_frames.extend(reply.frame);
        is_target |= reply.is_target_answer(target);
    };
    for round in rounds {
        let Some(status) = round.status(ttl) else {
            continue;
        };
        match status {
            ProbeStatus::Complete(c) => {
                sent += 1;
                received += 1;
                duplicates += c.duplicates;
                rtts.push(c.rtt().as_secs_f64() * 1e3);
                probe_frames.extend(c.probe.frame);
                note(&c.reply);
            }
            ProbeStatus::Lost(l) => {
                sent += 1;
                duplicates += l.duplicates;
                probe_frames.extend(l.probe.frame);
                if let Some(reply) = &l.late {
                    late += 1;
                    note(reply);
                }
            }
            ProbeStatus::NotSent
            | ProbeStatus::Awaited(_)
            | ProbeStatus::Skipped
            | ProbeStatus::Failed(_) => {}
        }
    }
    HopStats {
        hop: ttl,
        sent,
        received,
        loss_pct: if sent == 0 {
            0.0
        } else {
            100.0 * f64::from(sent - received) / f64::from(sent)
        },
        late,
        duplicates,
        rtt: rtt_stats(&rtts),
        addrs: by_count(addrs)
            .into_iter()
            .map(|(addr, replies)| AddrSeen { addr, replies })
            .collect(),
        reply_ttls: by_count(ttls)
            .into_iter()
            .map(|(ttl, replies)| TtlSeen {
                ttl,
                replies,
                estimate: HopEstimate::from_ttl(ttl),
            })
            .collect(),
        kinds: by_count(kinds)
            .into_iter()
            .map(|(kind, replies)| KindSeen { kind, replies })
            .collect(),
        target: is_target,
        probe_frames,
        reply_frames,
    }
}

/// Most frequent first; ties keep first-seen order (the sort is stable).
fn by_count<T>(mut list: Vec<(T, u32)>) -> Vec<(T, u32)> {
    list.sort_by_key(|e| std::cmp::Reverse(e.1));
    list
}

/// RTT summary of samples in round order.
fn rtt_stats(samples: &[f64]) -> Option<RttStats> {
    let (&last, n) = (samples.last()?, samples.len() as f64);
    let avg = samples.iter().sum::<f64>() / n;
    let var = if samples.len() > 1 {
        samples.iter().map(|s| (s - avg).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    Some(RttStats {
        last_ms: last,
        avg_ms: avg,
        best_ms: samples.iter().copied().fold(f64::INFINITY, f64::min),
        worst_ms: samples.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        stdev_ms: var.sqrt(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_reference_values() {
        // Reference: 3 of 10 → 0.108–0.603; 0 of 20 → 0–0.161; 30 of 100 → 0.219–0.396.
        let close = |(a, b): (f64, f64), (x, y): (f64, f64)| {
            assert!((a - x).abs() < 1e-3 && (b - y).abs() < 1e-3, "{a} {b}")
        };
        close(wilson_interval(3, 10), (0.108, 0.603));
        close(wilson_interval(0, 20), (0.0, 0.161));
        close(wilson_interval(30, 100), (0.219, 0.396));
        close(wilson_interval(10, 10), (0.722, 1.0));
        assert_eq!(wilson_interval(0, 0), (0.0, 1.0));
    }

    #[test]
    fn rtt_summary() {
        let s = rtt_stats(&[2.0, 4.0, 6.0]).unwrap();
        assert_eq!(
            (s.last_ms, s.avg_ms, s.best_ms, s.worst_ms),
            (6.0, 4.0, 2.0, 6.0)
        );
        assert!((s.stdev_ms - 2.0).abs() < 1e-12);
        assert_eq!(rtt_stats(&[5.0]).unwrap().stdev_ms, 0.0);
        assert!(rtt_stats(&[]).is_none());
    }
}
