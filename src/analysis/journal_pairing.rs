//! The connector's journal beside its capture: each logged close, error or
//! backoff of a control connection is paired with the packet that ended a
//! connection at that moment (a reset toward the connector, the server's
//! FIN, the last SYN of an unanswered attempt), after the clock offset
//! between the two has been estimated from the events themselves.
//!
//! The offset: every (logged event, packet) pair within a day gives a
//! difference; among the most frequent differences (50 ms bins), the one
//! that gives the most events a packet is where the events line up, and
//! the median difference of those events is the offset (the clocks' offset
//! plus the connector's logging delay, which the capture cannot separate). Each event is then paired
//! with the packet closest to that offset, within [`PAIR_TOLERANCE_NS`]:
//! the connector logs one incident in several lines (the socket error,
//! then "control connection closed"), so one packet may answer several.

use super::flows::FlowRecord;
use super::rst::{RstEvidence, RstOrigin};
use serde::Serialize;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

/// A logged event that ends (or fails) a control connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedEvent {
    /// Line number in the journal.
    pub line: u64,
    pub ts_ns: i64,
    /// The event's name as the journal command prints it (`control-closed`...).
    pub event: &'static str,
    /// The broker's address and name, when the line gives them.
    pub address: Option<IpAddr>,
    pub broker: Option<String>,
}

/// What ended a connection in the capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MomentKind {
    InjectedReset,
    ServerReset,
    UnplacedReset,
    ServerFin,
    SynUnanswered,
}

/// A packet that ended a connection to a judged port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketMoment {
    pub frame: u64,
    pub ts_ns: i64,
    pub server: SocketAddr,
    pub kind: MomentKind,
}

/// One logged event and the packet paired with it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JournalPair {
    pub line: u64,
    pub event: &'static str,
    /// The paired packet's frame, its kind and server, and the journal time
    /// minus the packet time as read (before any offset).
    pub frame: Option<u64>,
    pub packet: Option<MomentKind>,
    pub server: Option<SocketAddr>,
    pub delta_ms: Option<f64>,
}

/// The journal on the capture's timeline.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct JournalTimeline {
    /// Journal time minus capture time for the paired events (clock offset
    /// plus logging delay); `None` when nothing lines up.
    pub clock_offset_ms: Option<f64>,
    pub offset_from_pairs: usize,
    pub pairs: Vec<JournalPair>,
    pub events: usize,
    pub paired: usize,
    /// Broker names and addresses the journal names (path context).
    pub brokers: Vec<(String, IpAddr)>,
}

/// How far a paired packet may be from the offset the events show.
pub const PAIR_TOLERANCE_NS: i64 = 1_000_000_000;
/// Bounds of the offset search (events × packets).
const MAX_EVENTS: usize = 2_000;
const MAX_MOMENTS: usize = 5_000;
const BIN_NS: i64 = 50_000_000;
const DAY_NS: i64 = 86_400_000_000_000;

/// The packets that ended connections in the kept flows, with what the
/// reset classification says of each reset.
pub fn moments(flows: &[FlowRecord], rsts: &[RstEvidence]) -> Vec<PacketMoment> {
    let origin: HashMap<u64, RstOrigin> = rsts.iter().map(|r| (r.frame, r.origin)).collect();
    let mut out = Vec::new();
    for f in flows {
        if let Some(r) = f.rsts.iter().find(|r| r.from_server) {
            let kind = match origin.get(&r.packet.frame) {
                Some(RstOrigin::Injected) => MomentKind::InjectedReset,
                Some(RstOrigin::Target) => MomentKind::ServerReset,
                _ => MomentKind::UnplacedReset,
            };
            out.push(PacketMoment {
                frame: r.packet.frame,
                ts_ns: r.packet.ts_ns,
                server: f.server,
                kind,
            });
        } else if let Some(fin) = f.server_fin {
            out.push(PacketMoment {
                frame: fin,
                ts_ns: f.last_ts_ns,
                server: f.server,
                kind: MomentKind::ServerFin,
            });
        } else if f.syn_unanswered()
            && let Some(&last) = f.syn_frames.last()
        {
            out.push(PacketMoment {
                frame: last,
                ts_ns: f.last_ts_ns,
                server: f.server,
                kind: MomentKind::SynUnanswered,
            });
        }
    }
    out.sort_by_key(|m| m.ts_ns);
    out
}

fn compatible(e: &LoggedEvent, m: &PacketMoment) -> bool {
    e.address.is_none_or(|a| a == m.server.ip())
}

/// Estimates the offset and pairs each event with a packet (`moments` in
/// time order, as [`moments`] gives them).
pub fn pair(events: &[LoggedEvent], moments: &[PacketMoment]) -> JournalTimeline {
    let mut brokers: Vec<(String, IpAddr)> = events
        .iter()
        .filter_map(|e| Some((e.broker.clone()?, e.address?)))
        .collect();
    brokers.sort();
    brokers.dedup();
    let offset = estimate_offset(events, moments);
    let mut pairs = Vec::with_capacity(events.len());
    let mut deltas = Vec::new();
    for e in events {
        // Moments are in time order: only those within the tolerance of
        // the offset are looked at.
        let best = offset.and_then(|off| {
            let at = e.ts_ns - off;
            let from = moments.partition_point(|m| m.ts_ns < at - PAIR_TOLERANCE_NS);
            let to = moments.partition_point(|m| m.ts_ns <= at + PAIR_TOLERANCE_NS);
            (from..to)
                .filter(|i| compatible(e, &moments[*i]))
                .map(|i| (i, (at - moments[i].ts_ns).abs()))
                .min_by_key(|(_, err)| *err)
        });
        match best {
            Some((i, _)) => {
                let m = &moments[i];
                let delta = e.ts_ns - m.ts_ns;
                deltas.push(delta);
                pairs.push(JournalPair {
                    line: e.line,
                    event: e.event,
                    frame: Some(m.frame),
                    packet: Some(m.kind),
                    server: Some(m.server),
                    delta_ms: Some(delta as f64 / 1e6),
                });
            }
            None => pairs.push(JournalPair {
                line: e.line,
                event: e.event,
                frame: None,
                packet: None,
                server: None,
                delta_ms: None,
            }),
        }
    }
    deltas.sort_unstable();
    JournalTimeline {
        clock_offset_ms: (!deltas.is_empty()).then(|| deltas[deltas.len() / 2] as f64 / 1e6),
        offset_from_pairs: deltas.len(),
        paired: deltas.len(),
        events: events.len(),
        pairs,
        brokers,
    }
}

/// The offset that lines up the most events with a packet (see the
/// module). The most frequent differences (50 ms bins) are the candidates;
/// each is scored by how many events have a packet within a bin of it (a
/// capture with many connections makes wrong differences frequent too, but
/// not for every event at once); the median difference of the events the
/// best candidate lines up is the offset.
fn estimate_offset(events: &[LoggedEvent], moments: &[PacketMoment]) -> Option<i64> {
    const CANDIDATES: usize = 64;
    let mut bins: HashMap<i64, u32> = HashMap::new();
    for e in events.iter().take(MAX_EVENTS) {
        for m in moments.iter().take(MAX_MOMENTS) {
            let d = e.ts_ns - m.ts_ns;
            if d.abs() < DAY_NS && compatible(e, m) {
                *bins.entry(d.div_euclid(BIN_NS)).or_default() += 1;
            }
        }
    }
    let mut top: Vec<(i64, u32)> = bins.into_iter().collect();
    // The bin itself breaks the last tie (a bin and its negative, equally
    // frequent): the map's order differs from run to run, and the first of
    // two equal candidates wins below.
    top.sort_unstable_by_key(|(bin, n)| (std::cmp::Reverse(*n), bin.abs(), *bin));
    top.truncate(CANDIDATES);
    // Score: events lined up, then the tightest spread of their
    // differences around the median (a true offset lines events up within
    // the logging delay; a period of the events' rhythm lines them up
    // loosely), then the smallest offset.
    let mut best: Option<(usize, i64, i64, Vec<i64>)> = None;
    for (bin, _) in top {
        let center = bin * BIN_NS + BIN_NS / 2;
        let mut matched = Vec::new();
        for e in events.iter().take(MAX_EVENTS) {
            let at = e.ts_ns - center;
            let from = moments.partition_point(|m| m.ts_ns < at - BIN_NS);
            let to = moments.partition_point(|m| m.ts_ns <= at + BIN_NS);
            if let Some(m) = moments[from..to]
                .iter()
                .filter(|m| compatible(e, m))
                .min_by_key(|m| (at - m.ts_ns).abs())
            {
                matched.push(e.ts_ns - m.ts_ns);
            }
        }
        if matched.is_empty() {
            continue;
        }
        matched.sort_unstable();
        let median = matched[matched.len() / 2];
        let spread: i64 = matched.iter().map(|d| (d - median).abs()).sum();
        let better = best.as_ref().is_none_or(|(n, sp, med, _)| {
            (
                matched.len(),
                std::cmp::Reverse(spread),
                std::cmp::Reverse(median.abs()),
            ) > (*n, std::cmp::Reverse(*sp), std::cmp::Reverse(med.abs()))
        });
        if better {
            best = Some((matched.len(), spread, median, matched));
        }
    }
    best.map(|(_, _, median, _)| median)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(line: u64, ms: i64) -> LoggedEvent {
        LoggedEvent {
            line,
            ts_ns: ms * 1_000_000,
            event: "control-closed",
            address: None,
            broker: None,
        }
    }

    fn mo(frame: u64, ms: i64) -> PacketMoment {
        PacketMoment {
            frame,
            ts_ns: ms * 1_000_000,
            server: "198.18.4.2:443".parse().unwrap(),
            kind: MomentKind::InjectedReset,
        }
    }

    #[test]
    fn events_pair_with_their_resets_across_a_clock_offset() {
        // The journal's clock runs 2 h 0.3 s ahead, each line 4 ms after
        // its reset; resets every 500 ms, and one unrelated reset.
        let off = 7_200_300;
        let moments: Vec<PacketMoment> = [1_000, 1_500, 2_000, 9_000]
            .iter()
            .enumerate()
            .map(|(i, t)| mo(10 + i as u64, *t))
            .collect();
        let events: Vec<LoggedEvent> = [1_000, 1_500, 2_000]
            .iter()
            .enumerate()
            .map(|(i, t)| ev(i as u64 + 1, t + off + 4))
            .collect();
        let t = pair(&events, &moments);
        assert_eq!(t.paired, 3);
        assert_eq!(
            t.pairs.iter().map(|p| p.frame).collect::<Vec<_>>(),
            vec![Some(10), Some(11), Some(12)]
        );
        assert_eq!(t.clock_offset_ms, Some((off + 4) as f64));
        // The error and the close of one incident share its reset.
        let mut both = events.clone();
        both.push(LoggedEvent {
            line: 9,
            ts_ns: events[1].ts_ns + 2_000_000,
            ..ev(9, 0)
        });
        both.sort_by_key(|e| e.ts_ns);
        let t = pair(&both, &moments);
        assert_eq!(
            t.pairs.iter().map(|p| p.frame).collect::<Vec<_>>(),
            vec![Some(10), Some(11), Some(11), Some(12)]
        );
    }

    /// One event 3 s from two resets, one before and one after: the two
    /// offsets score alike, and the answer must not depend on the order of
    /// the map the candidates are counted in (a new order per map).
    #[test]
    fn an_offset_tied_with_its_negative_is_chosen_the_same_way_every_time() {
        let events = [ev(1, 10_000)];
        let moments = [mo(1, 7_000), mo(2, 13_000)];
        let offsets: std::collections::BTreeSet<Option<i64>> = (0..32)
            .map(|_| estimate_offset(&events, &moments))
            .collect();
        assert_eq!(
            offsets.into_iter().collect::<Vec<_>>(),
            vec![Some(-3_000_000_000)]
        );
    }

    #[test]
    fn nothing_to_pair_with_is_said() {
        let t = pair(&[ev(1, 5_000)], &[]);
        assert_eq!((t.paired, t.clock_offset_ms), (0, None));
        assert_eq!(t.pairs[0].frame, None);
    }
}
