//! Path-MTU probes in a capture: DF echo requests of several sizes to one
//! destination (`ping -M do -s 1472`, tracepath, or `pathproof check`'s own
//! probes), and TCP SYNs carrying padding (pathproof's TCP probes).
//!
//! Evidence of a black hole (detection.md §4): sizes ≥ [`MIN_BIG_SIZE`]
//! sent ≥ [`MIN_SENDS`] times and never answered, with no
//! fragmentation-needed / packet-too-big about them, while smaller probes
//! to the same destination were answered. A fragmentation-needed quoting an
//! echo request is reported as `path-mtu` (the flow rules report those that
//! quote TCP segments).
//!
//! Memory is bounded: [`MAX_DESTS`] destinations, [`MAX_SIZES`] sizes and
//! [`MAX_OUTSTANDING`] unanswered probes each.

use super::rules::pmtu as pmtu_rule;
use crate::packet::{IcmpKind, Packet, Transport};
use crate::vocab::FindingKind;
use crate::vocab::HopEstimate;
use crate::vocab::{Confidence, Finding, Severity, Verdict, VerdictClass};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

pub use super::rules::pmtu::{MIN_BIG_SIZE, MIN_SENDS};
pub const MAX_DESTS: usize = 64;
pub const MAX_SIZES: usize = 512;
pub const MAX_OUTSTANDING: usize = 4_096;
/// Probe frames remembered per size (evidence).
const FRAMES_PER_SIZE: usize = 16;
/// Fragmentation-needed messages remembered per destination.
const MAX_PTB: usize = 16;
/// Echo requests sent with a TTL up to this are TTL-limited localisation
/// probes (a ping or a search uses the default, 64).
const MAX_LOCALISING_TTL: u8 = 32;
/// A probe this close to the end of the capture may have been answered
/// after it: not counted as unanswered.
const END_GRACE_NS: i64 = 1_000_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum ProbeKey {
    Echo { id: u16, seq: u16 },
    Syn { sport: u16, dport: u16, seq: u32 },
}

/// Prober, destination, and whether the probes are TCP SYNs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct DestKey {
    src: IpAddr,
    dst: IpAddr,
    tcp: bool,
}

#[derive(Clone, Debug, Default)]
struct SizeStats {
    sent: u32,
    answered: u32,
    /// Unanswered-candidate frames: the first sends of this size.
    frames: Vec<u64>,
    first_answer_frame: Option<u64>,
}

#[derive(Clone, Copy, Debug)]
struct Outstanding {
    size: u32,
    ts_ns: i64,
    /// TCP payload (a RST acknowledges it too).
    payload_len: u32,
}

#[derive(Clone, Copy, Debug)]
struct PtbSeen {
    from: IpAddr,
    mtu: u32,
    ttl: u8,
    frame: u64,
}

#[derive(Clone, Debug, Default)]
struct DestProbes {
    sizes: BTreeMap<u32, SizeStats>,
    outstanding: HashMap<ProbeKey, Outstanding>,
    ptb: Vec<PtbSeen>,
    ptb_total: u32,
    /// TTL-limited echo requests (IPv4 ID → size and TTL): pathproof's
    /// localisation of a black hole sends the failing size with TTL 1, 2, …
    ttl_limited: HashMap<u16, (u32, u8)>,
    /// Which of them a router answered with time exceeded.
    reached: Vec<Reached>,
}

/// A TTL-limited probe a router answered: the size got that far.
#[derive(Clone, Copy, Debug)]
struct Reached {
    size: u32,
    ttl: u8,
    router: IpAddr,
    frame: u64,
}

/// Streaming state: see the module docs.
#[derive(Clone, Debug, Default)]
pub struct PmtuProbeTracker {
    dests: HashMap<DestKey, DestProbes>,
    last_ts_ns: i64,
}

impl PmtuProbeTracker {
    pub fn new() -> PmtuProbeTracker {
        PmtuProbeTracker::default()
    }

    pub fn push(&mut self, p: &Packet) {
        self.last_ts_ns = self.last_ts_ns.max(p.ts_ns);
        match &p.transport {
            Transport::Icmp(i) => match i.kind {
                // TTL-limited probes place a black hole; they are not
                // expected to be answered by the destination.
                IcmpKind::EchoRequest { .. } if p.df && p.ttl <= MAX_LOCALISING_TTL => {
                    self.ttl_limited(p)
                }
                IcmpKind::EchoRequest { id, seq } if p.df => {
                    self.sent(p, false, ProbeKey::Echo { id, seq }, 0)
                }
                IcmpKind::TimeExceeded if !self.dests.is_empty() => self.time_exceeded(p, i.quoted),
                IcmpKind::EchoReply { id, seq } if !self.dests.is_empty() => {
                    self.answered(p, false, ProbeKey::Echo { id, seq }, |_, _| false)
                }
                IcmpKind::PacketTooBig { mtu } if !self.dests.is_empty() => {
                    let Some(q) = i.quoted else { return };
                    let tcp = match q.protocol {
                        1 | 58 => false,
                        6 => true,
                        _ => return,
                    };
                    let key = DestKey {
                        src: q.src,
                        dst: q.dst,
                        tcp,
                    };
                    if let Some(d) = self.dests.get_mut(&key) {
                        d.ptb_total += 1;
                        if d.ptb.len() < MAX_PTB {
                            d.ptb.push(PtbSeen {
                                from: p.src,
                                mtu,
                                ttl: p.ttl,
                                frame: p.frame,
                            });
                        }
                    }
                }
                _ => {}
            },
            Transport::Tcp(t) => {
                let (syn, ack, rst) = (t.flags.syn(), t.flags.ack(), t.flags.rst());
                if syn && !ack && p.df && t.payload_len > 0 {
                    let key = ProbeKey::Syn {
                        sport: t.src_port,
                        dport: t.dst_port,
                        seq: t.seq,
                    };
                    self.sent(p, true, key, t.payload_len);
                } else if ack && (syn || rst) && !self.dests.is_empty() {
                    // SYN-ACK acknowledges the SYN only; a RST also the data.
                    let (sport, dport, acked) = (t.dst_port, t.src_port, t.ack);
                    let direct = ProbeKey::Syn {
                        sport,
                        dport,
                        seq: acked.wrapping_sub(1),
                    };
                    self.answered(p, true, direct, |o, k| match k {
                        ProbeKey::Syn {
                            sport: s,
                            dport: d,
                            seq,
                        } => {
                            let next = seq.wrapping_add(1);
                            s == sport
                                && d == dport
                                && (acked == next || acked == next.wrapping_add(o.payload_len))
                        }
                        ProbeKey::Echo { .. } => false,
                    })
                }
            }
            _ => {}
        }
    }

    // Rare packets: kept out of line so that `push`, called for every
    // packet, stays small enough to inline into the per-packet loop.
    #[cold]
    #[inline(never)]
    fn ttl_limited(&mut self, p: &Packet) {
        let Some(id) = p.ip_id else { return };
        let dest = DestKey {
            src: p.src,
            dst: p.dst,
            tcp: false,
        };
        if let Some(d) = self.dests.get_mut(&dest)
            && (d.ttl_limited.len() < MAX_OUTSTANDING || d.ttl_limited.contains_key(&id))
        {
            d.ttl_limited.insert(id, (p.ip_len, p.ttl));
        }
    }

    #[cold]
    #[inline(never)]
    fn time_exceeded(&mut self, p: &Packet, quoted: Option<crate::packet::QuotedHeader>) {
        let Some(q) = quoted.filter(|q| q.protocol == 1) else {
            return;
        };
        let Some(id) = q.ip_id else { return };
        let dest = DestKey {
            src: q.src,
            dst: q.dst,
            tcp: false,
        };
        let Some(d) = self.dests.get_mut(&dest) else {
            return;
        };
        if let Some(&(size, ttl)) = d.ttl_limited.get(&id)
            && d.reached.len() < MAX_OUTSTANDING
        {
            d.reached.push(Reached {
                size,
                ttl,
                router: p.src,
                frame: p.frame,
            });
        }
    }

    fn sent(&mut self, p: &Packet, tcp: bool, key: ProbeKey, payload_len: u32) {
        let dest = DestKey {
            src: p.src,
            dst: p.dst,
            tcp,
        };
        let full = self.dests.len() >= MAX_DESTS;
        let d = match self.dests.get_mut(&dest) {
            Some(d) => d,
            None if !full => self.dests.entry(dest).or_default(),
            None => return,
        };
        if d.outstanding.len() >= MAX_OUTSTANDING && !d.outstanding.contains_key(&key) {
            return;
        }
        if d.sizes.len() >= MAX_SIZES && !d.sizes.contains_key(&p.ip_len) {
            return;
        }
        let s = d.sizes.entry(p.ip_len).or_default();
        s.sent += 1;
        if s.frames.len() < FRAMES_PER_SIZE {
            s.frames.push(p.frame);
        }
        d.outstanding.insert(
            key,
            Outstanding {
                size: p.ip_len,
                ts_ns: p.ts_ns,
                payload_len,
            },
        );
    }

    /// An answer from `p.src` to `p.dst` to the probe `direct`, or else to
    /// the one `matches` names (a scan, for RSTs that acknowledge data).
    fn answered(
        &mut self,
        p: &Packet,
        tcp: bool,
        direct: ProbeKey,
        matches: impl Fn(&Outstanding, ProbeKey) -> bool,
    ) {
        let dest = DestKey {
            src: p.dst,
            dst: p.src,
            tcp,
        };
        let Some(d) = self.dests.get_mut(&dest) else {
            return;
        };
        let key = if d.outstanding.contains_key(&direct) {
            direct
        } else {
            let Some(key) = d
                .outstanding
                .iter()
                .find(|(k, o)| matches(o, **k))
                .map(|(k, _)| *k)
            else {
                return;
            };
            key
        };
        let Some(o) = d.outstanding.remove(&key) else {
            return;
        };
        if let Some(s) = d.sizes.get_mut(&o.size) {
            s.answered += 1;
            s.first_answer_frame.get_or_insert(p.frame);
        }
    }
}

/// What one destination's probes show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeVerdict {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub tcp: bool,
    /// Smallest failing size and its sends.
    pub failing: u32,
    pub failing_sent: u32,
    pub largest_answered: u32,
    pub frames: Vec<u64>,
    /// The last hop TTL-limited probes of the failing size reach, and the
    /// router there: the packets are lost after it.
    pub after_hop: Option<(u8, IpAddr)>,
}

impl PmtuProbeTracker {
    /// Black holes per destination (sorted by destination).
    fn black_holes(&self) -> Vec<ProbeVerdict> {
        let mut keys: Vec<&DestKey> = self.dests.keys().collect();
        keys.sort();
        let cutoff = self.last_ts_ns - END_GRACE_NS;
        let mut out = Vec::new();
        for key in keys {
            let d = &self.dests[key];
            if d.ptb_total > 0 {
                continue;
            }
            // Unanswered sends per size, minus those too close to the end.
            let recent = |size: u32| {
                d.outstanding
                    .values()
                    .filter(|o| o.size == size && o.ts_ns > cutoff)
                    .count() as u32
            };
            let counts: Vec<pmtu_rule::SizeCount> = d
                .sizes
                .iter()
                .map(|(&size, st)| pmtu_rule::SizeCount {
                    size,
                    sent: st.sent.saturating_sub(recent(size)),
                    answered: st.answered,
                })
                .collect();
            let Some(hole) = pmtu_rule::black_hole(&counts) else {
                continue;
            };
            let (size, largest_answered) = (hole.failing, hole.largest_answered);
            // Evidence: the failing sizes' first sends.
            let failing: Vec<(u32, &SizeStats)> = d
                .sizes
                .range(largest_answered + 1..)
                .filter(|(size, s)| {
                    **size >= MIN_BIG_SIZE && s.sent.saturating_sub(recent(**size)) >= MIN_SENDS
                })
                .map(|(size, s)| (*size, s))
                .collect();
            let stats = &d.sizes[&size];
            // Where: the last hop TTL-limited probes of a failing size reach.
            let reached: Vec<(u8, (IpAddr, u64))> = d
                .reached
                .iter()
                .filter(|r| r.size >= size)
                .map(|r| (r.ttl, (r.router, r.frame)))
                .collect();
            let after = pmtu_rule::last_hop_reached(&reached);
            let mut frames: Vec<u64> = failing.iter().flat_map(|(_, s)| s.frames.clone()).collect();
            frames.extend(
                d.sizes
                    .get(&largest_answered)
                    .and_then(|s| s.first_answer_frame),
            );
            frames.extend(after.map(|(_, (_, frame))| frame));
            out.push(ProbeVerdict {
                src: key.src,
                dst: key.dst,
                tcp: key.tcp,
                failing: size,
                failing_sent: stats.sent,
                largest_answered,
                frames,
                after_hop: after.map(|(hop, (router, _))| (hop, router)),
            });
        }
        out
    }
}

/// Findings (`pmtu-blackhole`, and `path-mtu` for fragmentation-needed
/// quoting echo requests) and a `pmtu-blackhole` verdict.
pub fn judge(t: &PmtuProbeTracker, findings: &mut Vec<Finding>) -> Option<(IpAddr, Verdict)> {
    let mut keys: Vec<&DestKey> = t.dests.keys().filter(|k| !k.tcp).collect();
    keys.sort();
    for key in keys {
        let d = &t.dests[key];
        let Some(first) = d.ptb.first() else { continue };
        let hop = HopEstimate::from_ttl(first.ttl).hop;
        findings.push(
            Finding::new(
                FindingKind::PathMtu,
                Severity::Info,
                format!(
                    "{} (hop {hop}, TTL {}) reports a path MTU of {} bytes toward {} ({} ICMP {} quoting echo requests): path-MTU discovery works",
                    first.from,
                    first.ttl,
                    first.mtu,
                    key.dst,
                    d.ptb_total,
                    if key.dst.is_ipv6() {
                        "packet-too-big"
                    } else {
                        "fragmentation-needed"
                    }
                ),
                d.ptb.iter().map(|p| p.frame).collect(),
                None,
            )
            .at(Some(hop), Some(first.from)),
        );
    }
    let holes = t.black_holes();
    for h in &holes {
        let what = if h.tcp {
            "TCP SYNs with data"
        } else {
            "echo requests"
        };
        let (len, dst) = if h.dst.is_ipv6() {
            ("ipv6.plen", "ipv6.dst")
        } else {
            ("ip.len", "ip.dst")
        };
        let proto = match (h.tcp, h.dst.is_ipv6()) {
            (true, _) => "tcp.flags.syn==1 && tcp.flags.ack==0",
            (false, false) => "icmp.type==8",
            (false, true) => "icmpv6.type==128",
        };
        let min_len = if h.dst.is_ipv6() {
            h.failing.saturating_sub(40)
        } else {
            h.failing
        };
        findings.push(Finding::new(
            FindingKind::PmtuBlackhole,
            Severity::Critical,
            format!(
                "{what} of {} bytes with DF to {} unanswered ({} sent), {} bytes answered, no ICMP fragmentation-needed: packets larger than {} bytes vanish on the path (path-MTU black hole); the largest answered size is {}",
                h.failing, h.dst, h.failing_sent, h.largest_answered, h.largest_answered, h.largest_answered
            ),
            h.frames.clone(),
            Some(format!("{proto} && {dst}=={} && {len}>={min_len}", h.dst)),
        )
        .at(h.after_hop.map(|(hop, _)| hop), h.after_hop.map(|(_, router)| router)));
    }
    let h = holes.first()?;
    let placed = h
        .after_hop
        .map(|(hop, router)| format!(" They are lost after hop {hop} ({router}): TTL-limited probes of the failing size reach it and no farther."))
        .unwrap_or_default();
    Some((
        h.dst,
        Verdict {
            class: VerdictClass::PmtuBlackhole,
            hop: h.after_hop.map(|(hop, _)| hop),
            address: h.after_hop.map(|(_, router)| router),
            confidence: if h.failing_sent >= 2 * MIN_SENDS {
                Confidence::High
            } else {
                Confidence::Medium
            },
            summary: format!(
                "Packets larger than {} bytes to {} vanish without ICMP fragmentation-needed while smaller ones are answered: a path-MTU black hole ({} {}-byte probes with DF unanswered).{placed}",
                h.largest_answered, h.dst, h.failing_sent, h.failing
            ),
            next_steps: vec![{
                let mss = h
                    .largest_answered
                    .saturating_sub(if h.dst.is_ipv6() { 60 } else { 40 });
                match h.after_hop {
                    Some((hop, router)) => format!(
                        "Let ICMP fragmentation-needed through at hop {hop} ({router}) and check the MTU of its link toward {}, or clamp the MSS on the site firewall to {mss}.",
                        h.dst
                    ),
                    None => format!(
                        "Find the hop: `tracepath -n {}` or `pathproof check` localise the link after which large packets stop; then let ICMP fragmentation-needed through there, or clamp the MSS on the site firewall to {mss}.",
                        h.dst
                    ),
                }
            }],
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::testing::{packet, tcp_info};
    use crate::packet::{IcmpInfo, QuotedHeader, TcpFlags};

    const ME: &str = "198.18.200.2:0";
    const BROKER: &str = "198.18.201.2:0";

    fn icmp(kind: IcmpKind, quoted: Option<QuotedHeader>) -> Transport {
        let (icmp_type, code) = match kind {
            IcmpKind::EchoRequest { .. } => (8, 0),
            IcmpKind::EchoReply { .. } => (0, 0),
            IcmpKind::PacketTooBig { .. } => (3, 4),
            _ => (11, 0),
        };
        Transport::Icmp(IcmpInfo {
            v6: false,
            icmp_type,
            code,
            kind,
            quoted,
        })
    }

    /// `ping -M do` of `size` bytes (IP length) with `seq`, answered or not.
    fn ping(
        t: &mut PmtuProbeTracker,
        frame: &mut u64,
        ms: i64,
        size: u32,
        seq: u16,
        answered: bool,
    ) {
        *frame += 1;
        let mut p = packet(
            *frame,
            ms,
            ME,
            BROKER,
            64,
            icmp(IcmpKind::EchoRequest { id: 7, seq }, None),
        );
        p.ip_len = size;
        t.push(&p);
        if answered {
            *frame += 1;
            let mut r = packet(
                *frame,
                ms + 5,
                BROKER,
                ME,
                60,
                icmp(IcmpKind::EchoReply { id: 7, seq }, None),
            );
            r.ip_len = size;
            t.push(&r);
        }
    }

    /// An unrelated packet later on: the capture goes on.
    fn later(t: &mut PmtuProbeTracker, ms: i64) {
        let c = "198.18.200.2:40000";
        let s = "198.18.201.9:443";
        t.push(&packet(
            99,
            ms,
            c,
            s,
            64,
            Transport::Tcp(tcp_info(c, s, TcpFlags::ACK, 1, 0)),
        ));
    }

    fn run(t: &PmtuProbeTracker) -> (Vec<Finding>, Option<Verdict>) {
        let mut f = Vec::new();
        let v = judge(t, &mut f).map(|(_, v)| v);
        (f, v)
    }

    #[test]
    fn big_pings_unanswered_small_answered_is_a_black_hole() {
        let mut t = PmtuProbeTracker::new();
        let mut frame = 0;
        let mut seq = 0;
        for (i, (size, ok)) in [
            (1500, false),
            (1500, false),
            (1500, false),
            (1400, true),
            (1400, true),
        ]
        .into_iter()
        .enumerate()
        {
            seq += 1;
            ping(&mut t, &mut frame, i as i64 * 1000, size, seq, ok);
        }
        later(&mut t, 9_000);
        let (f, v) = run(&t);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].kind, FindingKind::PmtuBlackhole);
        assert_eq!(f[0].severity, Severity::Critical);
        assert!(
            f[0].summary.starts_with(
                "echo requests of 1500 bytes with DF to 198.18.201.2 unanswered (3 sent), 1400 bytes answered, no ICMP fragmentation-needed"
            ),
            "{}",
            f[0].summary
        );
        // The three unanswered requests and the first answer to 1400.
        assert_eq!(f[0].frames, vec![1, 2, 3, 5]);
        let v = v.unwrap();
        assert_eq!(v.class, VerdictClass::PmtuBlackhole);
        assert!(v.summary.contains("larger than 1400 bytes"));
    }

    #[test]
    fn lossy_path_is_not_a_black_hole() {
        // Half of the small pings lost too: three large ones unanswered is
        // what that loss does one time in eight, not a black hole.
        let mut t = PmtuProbeTracker::new();
        let (mut frame, mut seq) = (0, 0);
        let sizes = [
            (84, true),
            (84, false),
            (84, true),
            (84, false),
            (1400, true),
        ];
        let big = [(1500, false), (1500, false), (1500, false)];
        for (i, (size, ok)) in sizes.into_iter().chain(big).enumerate() {
            seq += 1;
            ping(&mut t, &mut frame, i as i64 * 1000, size, seq, ok);
        }
        later(&mut t, 12_000);
        let (f, v) = run(&t);
        assert!(
            f.iter().all(|f| f.kind != FindingKind::PmtuBlackhole),
            "{f:#?}"
        );
        assert!(v.is_none());
        // Eight large probes lost at that rate (0.4 %) are a black hole.
        for i in 0..5 {
            seq += 1;
            ping(&mut t, &mut frame, 13_000 + i * 1000, 1500, seq, false);
        }
        later(&mut t, 30_000);
        let (f, _) = run(&t);
        assert!(
            f.iter().any(|f| f.kind == FindingKind::PmtuBlackhole),
            "{f:#?}"
        );
    }

    #[test]
    fn not_a_black_hole() {
        // Too few sends, a frag-needed, nothing answered at all, small
        // sizes only, the unanswered ones at the very end of the capture.
        /// Name, pings (IP length, answered), a frag-needed after them.
        type Case = (&'static str, Vec<(u32, bool)>, bool);
        let cases: [Case; 5] = [
            (
                "two sends",
                vec![(1500, false), (1500, false), (1400, true)],
                false,
            ),
            (
                "frag-needed",
                vec![(1500, false); 3]
                    .into_iter()
                    .chain([(1400, true)])
                    .collect(),
                true,
            ),
            ("nothing answered", vec![(1500, false); 4], false),
            (
                "small sizes",
                vec![(900, false), (900, false), (900, false), (100, true)],
                false,
            ),
            (
                "a bigger size answered",
                vec![(1400, false), (1400, false), (1400, false), (1500, true)],
                false,
            ),
        ];
        for (name, pings, ptb) in cases {
            let mut t = PmtuProbeTracker::new();
            let mut frame = 0;
            for (i, (size, ok)) in pings.into_iter().enumerate() {
                ping(&mut t, &mut frame, i as i64 * 1000, size, i as u16 + 1, ok);
            }
            if ptb {
                let q = QuotedHeader {
                    src: "198.18.200.2".parse().unwrap(),
                    dst: "198.18.201.2".parse().unwrap(),
                    protocol: 1,
                    ttl: 63,
                    ip_id: Some(1),
                    src_port: None,
                    dst_port: None,
                    tcp_seq: None,
                };
                frame += 1;
                t.push(&packet(
                    frame,
                    100,
                    "198.18.200.130:0",
                    ME,
                    254,
                    icmp(IcmpKind::PacketTooBig { mtu: 1400 }, Some(q)),
                ));
            }
            later(&mut t, 20_000);
            let (f, v) = run(&t);
            assert!(v.is_none(), "{name}: {f:#?}");
            if ptb {
                assert_eq!(f.len(), 1);
                assert_eq!(f[0].kind, FindingKind::PathMtu);
                assert_eq!((f[0].hop, f[0].severity), (Some(2), Severity::Info));
                assert!(
                    f[0].summary
                        .contains("path MTU of 1400 bytes toward 198.18.201.2")
                );
            } else {
                assert!(f.is_empty(), "{name}: {f:#?}");
            }
        }
        // Unanswered at the very end: maybe answered after the capture.
        let mut t = PmtuProbeTracker::new();
        let mut frame = 0;
        ping(&mut t, &mut frame, 0, 1400, 1, true);
        for s in 2..5 {
            ping(&mut t, &mut frame, 500, 1500, s, false);
        }
        assert!(run(&t).1.is_none());
    }

    #[test]
    fn tcp_syn_probes_answered_by_rst_acknowledging_the_data() {
        let mut t = PmtuProbeTracker::new();
        let (c, s) = ("198.18.200.2:50000", "198.18.201.2:443");
        let mut frame = 0;
        let mut syn = |t: &mut PmtuProbeTracker, ms: i64, seq: u32, size: u32, answered: bool| {
            frame += 1;
            let payload = size - 44;
            let mut p = packet(
                frame,
                ms,
                c,
                s,
                64,
                Transport::Tcp(tcp_info(c, s, TcpFlags::SYN, seq, payload)),
            );
            p.ip_len = size;
            t.push(&p);
            if answered {
                frame += 1;
                let mut info = tcp_info(s, c, TcpFlags::RST | TcpFlags::ACK, 0, 0);
                info.ack = seq.wrapping_add(1 + payload);
                t.push(&packet(frame, ms + 1, s, c, 61, Transport::Tcp(info)));
            }
        };
        for (i, (size, ok)) in [(1500, false), (1500, false), (1500, false), (1400, true)]
            .into_iter()
            .enumerate()
        {
            syn(
                &mut t,
                i as i64 * 1000,
                0x5150_0000 + i as u32 + 1,
                size,
                ok,
            );
        }
        syn(&mut t, 10_000, 0x5150_0100, 1200, true);
        let (f, v) = run(&t);
        assert!(v.is_some(), "{f:#?}");
        assert!(
            f[0].summary.starts_with("TCP SYNs with data of 1500 bytes"),
            "{}",
            f[0].summary
        );
    }

    #[test]
    fn memory_is_bounded() {
        let mut t = PmtuProbeTracker::new();
        let mut frame = 0;
        for i in 0..(MAX_OUTSTANDING as u32 + 100) {
            ping(
                &mut t,
                &mut frame,
                i64::from(i),
                1000 + i % 2000,
                i as u16,
                false,
            );
        }
        let d = t.dests.values().next().unwrap();
        assert!(d.outstanding.len() <= MAX_OUTSTANDING);
        assert!(d.sizes.len() <= MAX_SIZES);
        for i in 0..(MAX_DESTS + 10) {
            let mut p = packet(
                1,
                0,
                ME,
                &format!("198.18.201.{}:0", i % 250),
                64,
                icmp(IcmpKind::EchoRequest { id: 1, seq: 1 }, None),
            );
            p.ip_len = 1500 + (i / 250) as u32;
            t.push(&p);
        }
        assert!(t.dests.len() <= MAX_DESTS);
    }
}
