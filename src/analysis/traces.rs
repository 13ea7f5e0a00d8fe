//! Traceroutes found in a capture: pathproof's own probes (the ones
//! `pathproof check` sends while it records), rebuilt into the same
//! [`Trace`] the live tracer makes and interpreted by the same
//! [`interpret`], so `pathproof pcap` reaches the check's conclusion.
//!
//! # Recognition
//!
//! An outgoing packet is a probe when its identity decodes as
//! [`crate::packet::emit`] writes it ([`probe_sighting`]): an ICMP echo
//! request (ident = echo id), a bare TCP SYN (ident = sequence high half) or
//! a UDP datagram (ident and seq in the payload, length `udp_len(seq)`),
//! whose probe sequence carries a round slot ≥ 1 and exactly the packet's
//! TTL ([`ttl_of_seq`]); IPv4 TCP/UDP probes also carry the sequence as IP
//! ID. Probes are grouped by (source, destination, protocol, ident, source
//! port); a group is a trace once it used [`MIN_DISTINCT_TTLS`] TTLs.
//! Answers are matched by the tracer's own [`Matcher::classify`]; an IPv4
//! ICMP error whose quote only names the probe by the IP ID the kernel chose
//! (unprivileged ping sockets) is matched by that ID.
//!
//! # Rebuilding
//!
//! Each probe takes its slot in its round (the round slot of the sequence,
//! unwrapped in capture order) exactly as in the live engine: answered in
//! time ([`TRACE_TIMEOUT`], the engine's default) → complete; answered later
//! → lost with a late answer; never answered → lost (the engine waited its
//! timeout out). Hop
//! statistics come from [`hop_stats`], the engine's own code. Probe and
//! reply frame numbers are the capture's, so every finding's evidence opens
//! in Wireshark.
//!
//! Not recognised: mtr's and traceroute's probes (their sequence does not
//! carry the TTL); IPv6 ICMP and IPv6 UDP time-exceeded answers (the decoded
//! [`Packet`] does not keep the quoted echo id / UDP payload that names the
//! probe on IPv6: those hops look silent).

use super::picker::{self, Candidate as VerdictCandidate, NoEvidence};
use super::rules::path::{Detail, TraceFinding, interpret};
use crate::packet::emit::{seq_from_tcp_seq, udp_len, udp_probe_id};
use crate::packet::{IcmpKind, Packet, TcpFlags, Transport};
use crate::path::{Path, PathSource};
use crate::trace::probe::{Matcher, ProbeRef, ttl_of_seq};
use crate::trace::stats::hop_stats;
use crate::trace::{
    Instant, Probe, ProbeStatus, Reply, Round, Trace, TraceCounters, TraceProtocol,
};
use crate::vocab::{Confidence, Finding, FindingKind, Severity, Verdict, VerdictClass};
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

/// Probes kept over all traces; later ones are counted in
/// [`CaptureTraces::probes_dropped`].
pub const MAX_PROBES: usize = 100_000;
/// Traces reported; further ones are counted in [`CaptureTraces::traces_dropped`].
pub const MAX_TRACES: usize = 16;
/// Probe groups followed at once before they qualify as traces (a stray
/// SYN whose random sequence happens to look like a probe starts one).
const MAX_CANDIDATES: usize = 64;
/// Distinct TTLs toward one destination that make a group of probes a trace.
pub const MIN_DISTINCT_TTLS: u32 = 3;
/// How long a probe waits for its answer: the live engine's default, so a
/// late answer counts as lost here exactly as it did live.
pub const TRACE_TIMEOUT: Duration = Duration::from_secs(1);
/// Round slots of a probe sequence (see [`crate::trace::probe::probe_seq`]).
const ROUND_SLOTS: u32 = 1023;

/// What identifies one trace's probes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TraceKey {
    pub source: IpAddr,
    pub target: IpAddr,
    pub protocol: TraceProtocol,
    pub ident: u16,
    /// TCP/UDP source port (0 for ICMP).
    pub src_port: u16,
}

/// An outgoing packet that is a pathproof probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeSighting {
    pub key: TraceKey,
    pub seq: u16,
    pub ttl: u8,
}

/// Whether `p` (with its transport `payload`) is one of pathproof's probes.
pub fn probe_sighting(p: &Packet, payload: &[u8]) -> Option<ProbeSighting> {
    let v4 = !p.is_v6();
    let (protocol, ident, seq, src_port) = match &p.transport {
        Transport::Icmp(i) => match i.kind {
            // No IP ID check: an unprivileged ping socket lets the kernel choose it.
            IcmpKind::EchoRequest { id, seq } => (TraceProtocol::Icmp, id, seq, 0),
            _ => return None,
        },
        Transport::Tcp(t) => {
            if t.flags != TcpFlags(TcpFlags::SYN) || t.payload_len != 0 {
                return None;
            }
            let ident = (t.seq >> 16) as u16;
            let seq = seq_from_tcp_seq(ident, t.seq)?;
            (
                TraceProtocol::Tcp { port: t.dst_port },
                ident,
                seq,
                t.src_port,
            )
        }
        Transport::Udp {
            src_port,
            dst_port,
            len,
        } => {
            let (ident, seq) = udp_probe_id(payload)?;
            if *len != udp_len(seq) {
                return None;
            }
            (
                TraceProtocol::Udp { port: *dst_port },
                ident,
                seq,
                *src_port,
            )
        }
        Transport::Other { .. } => return None,
    };
    let raw_v4_probe = v4 && protocol != TraceProtocol::Icmp;
    if seq >> 6 == 0 || ttl_of_seq(seq) != p.ttl || (raw_v4_probe && p.ip_id != Some(seq)) {
        return None;
    }
    Some(ProbeSighting {
        key: TraceKey {
            source: p.src,
            target: p.dst,
            protocol,
            ident,
            src_port,
        },
        seq,
        ttl: p.ttl,
    })
}

fn instant(ts_ns: i64) -> Instant {
    Instant::from_nanos(u64::try_from(ts_ns).unwrap_or(0))
}

/// One group of probes being rebuilt.
#[derive(Clone)]
struct Candidate {
    key: TraceKey,
    matcher: Matcher,
    /// Rounds in capture order; `Round::index` is the unwrapped round
    /// number (rounds the capture missed are absent).
    rounds: Vec<Round>,
    /// Position in `rounds` of the latest probe with each sequence number
    /// (what the engine's `round_of_seq` finds: the latest round with the slot).
    by_seq: HashMap<u16, usize>,
    /// IPv4 ID of each probe as captured → its sequence number.
    by_ip_id: HashMap<u16, u16>,
    /// Bit t − 1 set: TTL t was probed.
    ttls: u64,
    probes: usize,
    first_ns: i64,
    last_ns: i64,
    target_hop: Option<u8>,
    highest_answered: Option<u8>,
    counters: TraceCounters,
}

impl Candidate {
    fn new(key: TraceKey, ts_ns: i64) -> Candidate {
        Candidate {
            key,
            matcher: Matcher {
                source: key.source,
                target: key.target,
                protocol: key.protocol,
                ident: key.ident,
                src_port: key.src_port,
            },
            rounds: Vec::new(),
            by_seq: HashMap::new(),
            by_ip_id: HashMap::new(),
            ttls: 0,
            probes: 0,
            first_ns: ts_ns,
            last_ns: ts_ns,
            target_hop: None,
            highest_answered: None,
            counters: TraceCounters::default(),
        }
    }

    fn qualified(&self) -> bool {
        self.ttls.count_ones() >= MIN_DISTINCT_TTLS
    }

    /// The round a probe with round slot `slot` belongs to: the latest
    /// round with that slot among the last few (probes reordered by the
    /// capture), else the next round with that slot.
    fn round_for(&mut self, slot: u32, at: Instant) -> usize {
        let slot_of = |index: u32| index % ROUND_SLOTS + 1;
        let recent = self.rounds.len().saturating_sub(4);
        if let Some(pos) = (recent..self.rounds.len())
            .rev()
            .find(|&i| slot_of(self.rounds[i].index) == slot)
        {
            return pos;
        }
        let index = match self.rounds.last() {
            Some(last) => {
                let ahead = (slot + ROUND_SLOTS - slot_of(last.index)) % ROUND_SLOTS;
                last.index.saturating_add(ahead)
            }
            None => slot - 1,
        };
        self.rounds.push(Round {
            index,
            started_at: at,
            probes: Vec::new(),
        });
        self.rounds.len() - 1
    }

    /// Records a probe; false when it was already recorded (a packet the
    /// capture saw twice).
    fn on_probe(&mut self, p: &Packet, s: &ProbeSighting) -> bool {
        let at = instant(p.ts_ns);
        let pos = self.round_for(u32::from(s.seq >> 6), at);
        let round = &mut self.rounds[pos];
        let slot = usize::from(s.ttl - 1);
        if round.probes.len() <= slot {
            round.probes.resize(slot + 1, ProbeStatus::NotSent);
        }
        if round.probes[slot] != ProbeStatus::NotSent {
            return false;
        }
        round.probes[slot] = ProbeStatus::Awaited(Probe {
            seq: s.seq,
            round: round.index,
            ttl: s.ttl,
            protocol: self.key.protocol,
            sent_at: at,
            frame: Some(p.frame),
        });
        self.by_seq.insert(s.seq, pos);
        if let Some(id) = p.ip_id {
            self.by_ip_id.insert(id, s.seq);
        }
        self.ttls |= 1 << (s.ttl - 1);
        self.probes += 1;
        self.counters.sent += 1;
        self.last_ns = self.last_ns.max(p.ts_ns);
        true
    }

    /// Which probe `p` answers, if any.
    fn classify(&self, p: &Packet) -> Option<(u16, crate::trace::ReplyKind)> {
        // No raw bytes here: the matcher falls back on the quoted header's
        // fields (TCP sequence, IPv4 ID), which is all IPv4 probes need.
        if let Some((ProbeRef::Seq(seq), kind)) = self.matcher.classify(p, &[])
            && self.by_seq.contains_key(&seq)
        {
            return Some((seq, kind));
        }
        // The quote names the probe by an IP ID the kernel chose: find the
        // probe that carried it, and let the matcher judge the rest.
        let icmp = p.icmp()?;
        let quoted = icmp.quoted?;
        let seq = *self.by_ip_id.get(&quoted.ip_id?)?;
        let mut named = *p;
        if let Transport::Icmp(i) = &mut named.transport
            && let Some(q) = &mut i.quoted
        {
            q.ip_id = Some(seq);
            q.tcp_seq = None;
        }
        match self.matcher.classify(&named, &[]) {
            Some((ProbeRef::Seq(s), kind)) if s == seq => Some((s, kind)),
            _ => None,
        }
    }

    /// An answer: the probe's slot changes as in the live engine.
    fn on_answer(&mut self, p: &Packet) -> bool {
        let Some((seq, kind)) = self.classify(p) else {
            return false;
        };
        let Some(&pos) = self.by_seq.get(&seq) else {
            return false;
        };
        let ttl = ttl_of_seq(seq);
        let reply = Reply {
            from: p.src,
            kind,
            ttl: p.ttl,
            ip_id: p.ip_id,
            received_at: instant(p.ts_ns),
            frame: Some(p.frame),
            probe_seq: seq,
            quoted_ttl: p.icmp().and_then(|i| i.quoted).map(|q| q.ttl),
            tcp: p.tcp().copied(),
        };
        let Some(slot) = self.rounds[pos].probes.get_mut(usize::from(ttl - 1)) else {
            return false;
        };
        if slot.probe().is_none_or(|p| p.seq != seq) {
            return false;
        }
        let first_answer = match slot {
            ProbeStatus::Awaited(probe) => {
                let probe = *probe;
                if reply.received_at <= probe.deadline(TRACE_TIMEOUT) {
                    *slot = ProbeStatus::Complete(probe.complete(reply));
                    self.counters.answered += 1;
                } else {
                    let mut lost = probe.lost();
                    lost.late = Some(reply);
                    *slot = ProbeStatus::Lost(lost);
                    self.counters.late += 1;
                }
                true
            }
            ProbeStatus::Complete(c) => {
                c.duplicates += 1;
                self.counters.duplicates += 1;
                false
            }
            ProbeStatus::Lost(l) => {
                l.duplicates += 1;
                self.counters.duplicates += 1;
                false
            }
            ProbeStatus::NotSent | ProbeStatus::Skipped | ProbeStatus::Failed(_) => return false,
        };
        self.last_ns = self.last_ns.max(p.ts_ns);
        if first_answer {
            self.highest_answered = self.highest_answered.max(Some(ttl));
            if reply.is_target_answer(self.key.target) && self.target_hop.is_none_or(|t| ttl < t) {
                self.target_hop = Some(ttl);
            }
        }
        true
    }

    /// The trace, as the engine would have returned it. Probes never
    /// answered are lost, even when the capture's last packet came before
    /// their deadline: the engine waited the timeout out for them (a capture
    /// ends with its last packet, not when the recorder stopped). A capture
    /// cut in the middle of a trace thus loses at most the last round's
    /// unanswered probes, one per hop, and one lost probe is never a verdict.
    fn into_trace(mut self) -> Trace {
        for round in &mut self.rounds {
            for slot in &mut round.probes {
                if let ProbeStatus::Awaited(p) = *slot {
                    *slot = ProbeStatus::Lost(p.lost());
                }
            }
        }
        let first_ttl = (self.ttls.trailing_zeros() + 1) as u8;
        let hops = match self.target_hop.or(self.highest_answered) {
            Some(last) if last >= first_ttl => {
                hop_stats(&self.rounds, first_ttl, last, self.key.target)
            }
            _ => Vec::new(),
        };
        Trace {
            target: self.key.target,
            source: self.key.source,
            protocol: self.key.protocol,
            timeout: TRACE_TIMEOUT,
            started_at: instant(self.first_ns),
            finished_at: instant(self.last_ns),
            rounds: self.rounds,
            target_hop: self.target_hop,
            hops,
            // The capture holds the packets; frames point into it.
            packets: Vec::new(),
            counters: self.counters,
        }
    }
}

/// Follows the probes and answers of a capture, in bounded memory.
#[derive(Clone, Default)]
pub struct TraceTracker {
    candidates: Vec<Candidate>,
    by_key: HashMap<TraceKey, usize>,
    probes: usize,
    probes_dropped: u64,
    duplicate_probes: u64,
}

impl TraceTracker {
    pub fn new() -> TraceTracker {
        TraceTracker::default()
    }

    /// A decoded packet and its transport payload.
    pub fn push(&mut self, p: &Packet, payload: &[u8]) {
        if let Some(s) = probe_sighting(p, payload) {
            self.on_probe(p, &s);
            return;
        }
        if self.candidates.is_empty() {
            return;
        }
        let answer = match &p.transport {
            Transport::Icmp(i) => !matches!(i.kind, IcmpKind::EchoRequest { .. } | IcmpKind::Other),
            Transport::Tcp(t) => t.flags.ack(),
            _ => false,
        };
        if !answer {
            return;
        }
        for c in &mut self.candidates {
            if c.key.source == p.dst && c.on_answer(p) {
                break;
            }
        }
    }

    fn on_probe(&mut self, p: &Packet, s: &ProbeSighting) {
        let index = match self.by_key.get(&s.key) {
            Some(&i) => i,
            None => match self.make_room() {
                Some(()) => {
                    self.candidates.push(Candidate::new(s.key, p.ts_ns));
                    self.by_key.insert(s.key, self.candidates.len() - 1);
                    self.candidates.len() - 1
                }
                None => {
                    self.probes_dropped += 1;
                    return;
                }
            },
        };
        if self.probes >= MAX_PROBES {
            self.probes_dropped += 1;
            return;
        }
        if self.candidates[index].on_probe(p, s) {
            self.probes += 1;
        } else {
            self.duplicate_probes += 1;
        }
    }

    /// Room for one more candidate: when full, the group that least looks
    /// like a trace (fewest TTLs, then oldest) goes, unless every group is
    /// already a trace.
    fn make_room(&mut self) -> Option<()> {
        if self.candidates.len() < MAX_CANDIDATES {
            return Some(());
        }
        let (i, _) = self
            .candidates
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.qualified())
            .min_by_key(|(_, c)| (c.ttls.count_ones(), c.last_ns))?;
        let gone = self.candidates.swap_remove(i);
        self.probes -= gone.probes;
        self.probes_dropped += gone.probes as u64;
        self.by_key.remove(&gone.key);
        if let Some(moved) = self.candidates.get(i) {
            self.by_key.insert(moved.key, i);
        }
        Some(())
    }

    /// Rebuilds and interprets the traces.
    pub fn finish(self) -> CaptureTraces {
        let mut traces_dropped = 0u64;
        let mut qualified: Vec<Candidate> = Vec::new();
        for c in self.candidates.into_iter().filter(Candidate::qualified) {
            if qualified.len() < MAX_TRACES {
                qualified.push(c);
            } else {
                traces_dropped += 1;
            }
        }
        qualified.sort_by_key(|c| c.first_ns);
        let traces: Vec<Trace> = qualified.into_iter().map(|c| c.into_trace()).collect();
        let interpreted = interpret_all(&traces);
        CaptureTraces {
            traces,
            interpreted,
            probes_dropped: self.probes_dropped,
            duplicate_probes: self.duplicate_probes,
            traces_dropped,
        }
    }
}

/// A trace interpreted as `pathproof trace` interprets it.
#[derive(Clone, Debug, PartialEq)]
pub struct InterpretedTrace {
    /// Index in [`CaptureTraces::traces`].
    pub trace: usize,
    /// The ICMP trace to the same target used as its control.
    pub control: Option<usize>,
    pub findings: Vec<TraceFinding>,
}

/// The traceroutes of a capture.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CaptureTraces {
    /// Rebuilt traces, in the order of their first probe. Their frame
    /// numbers are the capture's; `packets` is empty (the capture has them).
    pub traces: Vec<Trace>,
    /// Every trace except the ICMP ones serving as a control.
    pub interpreted: Vec<InterpretedTrace>,
    /// Probes not kept ([`MAX_PROBES`], or groups given up for room).
    pub probes_dropped: u64,
    /// Probes seen twice (a capture on several interfaces).
    pub duplicate_probes: u64,
    /// Traces beyond [`MAX_TRACES`].
    pub traces_dropped: u64,
}

/// Pairs each TCP/UDP trace with an ICMP trace to the same target (its
/// control) and interprets every trace that is not someone's control.
fn interpret_all(traces: &[Trace]) -> Vec<InterpretedTrace> {
    let control_of = |t: &Trace| {
        traces.iter().position(|c| {
            c.protocol == TraceProtocol::Icmp && c.target == t.target && c.source == t.source
        })
    };
    let mut controls: Vec<usize> = Vec::new();
    let mut out = Vec::new();
    for (i, t) in traces.iter().enumerate() {
        if t.protocol == TraceProtocol::Icmp {
            continue;
        }
        let control = control_of(t);
        controls.extend(control);
        out.push(InterpretedTrace {
            trace: i,
            control,
            findings: interpret(t, control.map(|c| &traces[c])),
        });
    }
    for (i, t) in traces.iter().enumerate() {
        if t.protocol == TraceProtocol::Icmp && !controls.contains(&i) {
            out.push(InterpretedTrace {
                trace: i,
                control: None,
                findings: interpret(t, None),
            });
        }
    }
    out.sort_by_key(|t| t.trace);
    out
}

/// What the traces add to the conclusion.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TraceConclusion {
    /// The trace findings, as analysis findings (same kind, severity, hop,
    /// address and frames as the live trace's).
    pub findings: Vec<Finding>,
    /// Failures the traces prove, with the traced target; they outrank a
    /// flow verdict of the same class (they place the hop).
    pub failures: Vec<(IpAddr, Verdict)>,
    /// Traces that reached their target with no critical finding; they rank
    /// below the flows' own healthy verdicts.
    pub healthy: Vec<Verdict>,
}

impl CaptureTraces {
    /// Probe frames of TCP traces: the flow table takes each probe for a
    /// connection attempt; these are not connections.
    pub fn tcp_probe_frames(&self) -> std::collections::HashSet<u64> {
        self.traces
            .iter()
            .filter(|t| matches!(t.protocol, TraceProtocol::Tcp { .. }))
            .flat_map(|t| t.rounds.iter().flat_map(|r| r.probes.iter()))
            .filter_map(|s| s.probe()?.frame)
            .collect()
    }

    /// Findings and verdicts for [`super::conclude`].
    pub fn conclusion(&self) -> TraceConclusion {
        let mut out = TraceConclusion::default();
        for it in &self.interpreted {
            let t = &self.traces[it.trace];
            for f in &it.findings {
                let mut finding = f.finding.clone();
                finding.summary =
                    format!("trace {} to {}: {}", t.protocol, t.target, finding.summary);
                out.findings.push(finding);
            }
            let (failures, healthy) = trace_verdicts(t, &it.findings);
            out.healthy.extend(healthy);
            out.failures
                .extend(failures.into_iter().map(|v| (t.target, v)));
        }
        out
    }

    /// A path from the capture's traces, for the reset and TLS rules, when
    /// the user gave none or only a hop count (`user`). Target: the first
    /// traced address among `servers`, else the first traced one. Hops: the
    /// ICMP trace that reached it (a TCP middlebox cannot shorten it), else
    /// a trace that reached it without a middlebox answering, else the
    /// longest. The user's hop count wins for the target's hop.
    pub fn path(&self, servers: &[IpAddr], user: Option<&Path>) -> Option<Path> {
        if user.is_some_and(|p| p.source != PathSource::HopCount) {
            return None;
        }
        let target = self
            .traces
            .iter()
            .map(|t| t.target)
            .find(|t| servers.contains(t))
            .or_else(|| self.traces.first().map(|t| t.target))?;
        let to_target = || {
            self.traces
                .iter()
                .enumerate()
                .filter(|(_, t)| t.target == target)
        };
        let middlebox = |i: usize| {
            self.interpreted.iter().any(|it| {
                it.trace == i
                    && it
                        .findings
                        .iter()
                        .any(|f| matches!(f.detail, Detail::MiddleboxAnswer { .. }))
            })
        };
        let (_, chosen) = to_target()
            .find(|(_, t)| t.protocol == TraceProtocol::Icmp && t.reached())
            .or_else(|| to_target().find(|(i, t)| t.reached() && !middlebox(*i)))
            .or_else(|| to_target().max_by_key(|(_, t)| t.hops.len()))?;
        Some(Path {
            source: PathSource::CaptureTrace,
            target: Some(target),
            target_hop: user.and_then(|p| p.target_hop).or(chosen.target_hop),
            hops: chosen.hops.iter().map(|h| h.path_hop()).collect(),
        })
    }
}

/// The verdicts one trace proposes: the failures its critical findings
/// prove, and "healthy" when it reached its target with nothing critical.
fn trace_verdicts(t: &Trace, findings: &[TraceFinding]) -> (Vec<Verdict>, Option<Verdict>) {
    let failures = findings
        .iter()
        .filter(|f| f.finding.severity == Severity::Critical)
        .filter_map(|f| failure_verdict(t, f))
        .collect();
    // A target that answers with resets only is not healthy, confirmed or not.
    let critical = findings.iter().any(|f| {
        f.finding.severity == Severity::Critical || f.finding.kind == FindingKind::RstFromTarget
    });
    let healthy = match (t.target_hop, critical) {
        (Some(hop), false) => Some(Verdict {
            class: VerdictClass::Healthy,
            hop: None,
            address: None,
            confidence: Confidence::Medium,
            summary: format!(
                "No failure found: the {} trace reached {} at hop {hop} without real loss.",
                t.protocol, t.target
            ),
            next_steps: Vec::new(),
        }),
        _ => None,
    };
    (failures, healthy)
}

/// A live trace judged: its findings (most severe first), its verdict and
/// the finding that decided it.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceJudgement {
    pub findings: Vec<TraceFinding>,
    pub verdict: Verdict,
    /// The kind of the finding the verdict rests on (`target-reached` for
    /// a healthy trace), when one.
    pub deciding: Option<FindingKind>,
}

/// Judges a trace and its control trace with the path rules and the one
/// picker: the same verdicts as for pathproof's traceroutes found in a
/// capture (`pathproof pcap` of the `--save` file agrees).
pub fn judge_trace(trace: &Trace, control: Option<&Trace>) -> TraceJudgement {
    let findings = interpret(trace, control);
    let (failures, healthy) = trace_verdicts(trace, &findings);
    let candidates = failures
        .into_iter()
        .chain(healthy)
        .map(|v| VerdictCandidate::new(v).about(Some(trace.target)))
        .collect();
    let top = findings.first().map(|f| &f.finding);
    let verdict = picker::pick(candidates, || NoEvidence {
        summary: top.map_or_else(
            || {
                format!(
                    "{} never answered and nothing on the way explains why",
                    trace.target
                )
            },
            |f| f.summary.clone(),
        ),
        next_steps: match top.map(|f| f.kind) {
            Some(FindingKind::TcpProxy) => vec![format!(
                "A device answers TCP in the name of {}: run `pathproof check` to see whether it intercepts TLS.",
                trace.target
            )],
            _ => vec![format!(
                "Trace with TCP to the broker port (the default, with its ICMP control trace), or capture on the connector while it connects to {}.",
                trace.target
            )],
        },
    });
    let deciding = match verdict.class {
        VerdictClass::Healthy => Some(FindingKind::TargetReached),
        c => findings
            .iter()
            .map(|f| f.finding.kind)
            .find(|k| k.class() == Some(c))
            .or_else(|| findings.first().map(|f| f.finding.kind)),
    };
    TraceJudgement {
        findings,
        verdict,
        deciding,
    }
}

/// The verdict a critical trace finding makes, for the classes a trace can
/// prove: real loss, TCP or UDP blocked (silently after the last answering
/// hop, or rejected by a hop), a reset injected in the target's name, the
/// target refusing the port.
fn failure_verdict(t: &Trace, f: &TraceFinding) -> Option<Verdict> {
    let target = t.target;
    let port = t.protocol.port().unwrap_or(443);
    let shown = |a: Option<IpAddr>| a.map(|a| format!(" ({a})")).unwrap_or_default();
    // A blocked protocol is the class of that protocol.
    let (blocked, proto) = match t.protocol {
        TraceProtocol::Udp { .. } => (VerdictClass::UdpBlocked, "UDP"),
        _ => (VerdictClass::TcpBlocked, "TCP"),
    };
    let (class, hop, address, confidence, summary, next_steps) = match (&f.detail, t.protocol) {
        (
            Detail::RealLoss {
                from_hop,
                to_target,
                lost,
                sent,
                ci_low_pct,
                ci_high_pct,
                ..
            },
            _,
        ) => (
            VerdictClass::PathLoss,
            Some(*from_hop),
            f.finding.address,
            if *to_target {
                Confidence::High
            } else {
                Confidence::Medium
            },
            format!(
                "Packets toward {target} are lost from hop {from_hop}{} on: {lost} of {sent} {} probes lost at the end of the path (95% interval {ci_low_pct:.0}–{ci_high_pct:.0}%), and every hop from {from_hop} on loses alike.",
                shown(f.finding.address),
                t.protocol
            ),
            vec![format!(
                "Show the owner of hop {from_hop}{} the trace: the loss starts on the link into it.",
                shown(f.finding.address)
            )],
        ),
        (
            Detail::ProtocolBlocked {
                last_hop,
                control_target_hop,
                next_hop_addr,
                ..
            },
            TraceProtocol::Tcp { .. } | TraceProtocol::Udp { .. },
        ) => {
            // The drop is after the last hop that answered: in that router
            // (a FORWARD-chain rule runs after the TTL check, so the router
            // still answers probes that expire there) or on the link to the
            // next. The verdict names the last answering hop, as `pathproof
            // trace` does, and the summary names both.
            let after = last_hop.map_or_else(|| "0 (this host)".to_string(), |h| h.to_string());
            let next = last_hop.map_or(1, |h| h.saturating_add(1));
            (
                blocked,
                *last_hop,
                f.finding.address,
                Confidence::High,
                format!(
                    "{proto} {port} to {target} is dropped after hop {after}{}, before hop {next}{}: the {proto} trace gets no answer beyond hop {after} while ICMP reaches {target} at hop {control_target_hop}.",
                    shown(f.finding.address),
                    shown(*next_hop_addr),
                ),
                vec![format!(
                    "Check the firewalls of hop {after}{} and hop {next}{} for a rule dropping {proto} {port} to {target}.",
                    shown(f.finding.address),
                    shown(*next_hop_addr)
                )],
            )
        }
        (
            Detail::Unreachable {
                hop,
                admin_prohibited,
                code,
            },
            TraceProtocol::Tcp { .. } | TraceProtocol::Udp { .. },
        ) => (
            blocked,
            Some(*hop),
            f.finding.address,
            if *admin_prohibited {
                Confidence::High
            } else {
                Confidence::Medium
            },
            format!(
                "{proto} {port} to {target} is rejected at hop {hop}{}: {}.",
                shown(f.finding.address),
                if *admin_prohibited {
                    "ICMP administratively prohibited".to_string()
                } else {
                    format!("ICMP unreachable (code {code}), and the target never answered")
                }
            ),
            vec![format!(
                "Check the firewall and the routes at hop {hop}{} for what rejects {proto} {port} to {target}.",
                shown(f.finding.address)
            )],
        ),
        (Detail::Refused { hop, port }, _) => (
            VerdictClass::RstFromTarget,
            Some(*hop),
            Some(target),
            Confidence::High,
            format!(
                "{target} refuses TCP {port}: its own resets (from hop {hop}, where the trace reaches it) answer every SYN."
            ),
            vec![format!(
                "Nothing on the path blocks it: the service on {target}:{port} is not listening or rejects this client; check the broker address (DNS) and the cloud's status."
            )],
        ),
        (
            Detail::MiddleboxAnswer {
                hop,
                kind: crate::trace::ReplyKind::TcpRst,
                router,
                control_target_hop,
                ..
            },
            _,
        ) => (
            VerdictClass::RstInjected,
            Some(*hop),
            *router,
            if control_target_hop.is_some() {
                Confidence::High
            } else {
                Confidence::Medium
            },
            format!(
                "TCP resets to {target}:{port} are injected at hop {hop}{}: {}",
                shown(*router),
                f.finding.summary
            ),
            vec![format!(
                "Show the firewall owner of hop {hop}{} the reset frames: a rule there rejects TCP {port} to {target} with a forged reset.",
                shown(*router)
            )],
        ),
        _ => return None,
    };
    Some(Verdict {
        class,
        hop,
        address,
        confidence,
        summary,
        next_steps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::emit::{ProbeKind, ProbeSpec, emit, tcp_seq};
    use crate::packet::testing::{packet, tcp_info};
    use crate::packet::{Direction, decode_ip};
    use crate::trace::probe::probe_seq;
    use etherparse::{Icmpv4Type, PacketBuilder, icmpv4};

    const SRC: [u8; 4] = [10, 0, 0, 2];
    const DST: [u8; 4] = [198, 18, 4, 2];

    fn probe_bytes(kind: ProbeKind, ttl: u8, seq: u16) -> Vec<u8> {
        emit(&ProbeSpec {
            src: IpAddr::from(SRC),
            dst: IpAddr::from(DST),
            ttl,
            ident: 0x3131,
            seq,
            kind,
        })
        .unwrap()
        .bytes
    }

    fn decoded(frame: u64, ms: i64, bytes: &[u8]) -> (Packet, Vec<u8>) {
        let d = decode_ip(frame, ms * 1_000_000, Direction::Unknown, bytes).unwrap();
        (d.packet, d.payload.to_vec())
    }

    /// Time exceeded from 10.0.<ttl>.1 quoting `probe` (IP header + 8 bytes).
    fn time_exceeded(probe: &[u8], ttl: u8) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ipv4([10, 0, ttl, 1], SRC, 255 - ttl)
            .icmpv4(Icmpv4Type::TimeExceeded(
                icmpv4::TimeExceededCode::TtlExceededInTransit,
            ))
            .write(&mut out, &probe[..28])
            .unwrap();
        out
    }

    const SYN: ProbeKind = ProbeKind::TcpSyn {
        src_port: 50505,
        dst_port: 443,
        mss: 1460,
    };

    #[test]
    fn probes_of_every_kind_are_recognised() {
        for kind in [
            ProbeKind::IcmpEcho,
            SYN,
            ProbeKind::Udp {
                src_port: 50505,
                dst_port: 33434,
            },
        ] {
            let seq = probe_seq(7, 5);
            let (p, payload) = decoded(1, 0, &probe_bytes(kind, 5, seq));
            let s = probe_sighting(&p, &payload).expect("a probe");
            assert_eq!((s.seq, s.ttl, s.key.ident), (seq, 5, 0x3131));
            assert_eq!(s.key.target, IpAddr::from(DST));
        }
    }

    #[test]
    fn ordinary_packets_are_not_probes() {
        // A connection's SYN: random ISN, TTL 64 that its low bits do not carry.
        let mut t = tcp_info(
            "10.0.0.2:40000",
            "198.18.4.2:443",
            TcpFlags::SYN,
            0x9abc_def0,
            0,
        );
        let syn = packet(
            1,
            0,
            "10.0.0.2:40000",
            "198.18.4.2:443",
            64,
            Transport::Tcp(t),
        );
        assert_eq!(probe_sighting(&syn, &[]), None);
        // The right low bits but another IP ID (raw probes carry the seq there).
        t.seq = tcp_seq(0x1234, probe_seq(0, 64));
        let mut syn = packet(
            1,
            0,
            "10.0.0.2:40000",
            "198.18.4.2:443",
            64,
            Transport::Tcp(t),
        );
        assert_eq!(probe_sighting(&syn, &[]), None);
        syn.ip_id = Some(probe_seq(0, 64));
        assert!(probe_sighting(&syn, &[]).is_some());
        // A SYN-ACK, and a probe whose TTL is not the one its seq carries.
        let (mut p, _) = decoded(1, 0, &probe_bytes(SYN, 5, probe_seq(0, 5)));
        p.ttl = 4;
        assert_eq!(probe_sighting(&p, &[]), None);
        t.flags = TcpFlags(TcpFlags::SYN | TcpFlags::ACK);
        let sa = packet(
            1,
            0,
            "10.0.0.2:40000",
            "198.18.4.2:443",
            64,
            Transport::Tcp(t),
        );
        assert_eq!(probe_sighting(&sa, &[]), None);
    }

    /// Probes at TTLs 1..=3 of `rounds` rounds from `first_round`, one
    /// second apart, each answered after 2 ms by time exceeded.
    fn feed(tracker: &mut TraceTracker, first_round: u32, rounds: u32) {
        let mut frame = 0;
        for r in first_round..first_round + rounds {
            for ttl in 1..=3u8 {
                let bytes = probe_bytes(SYN, ttl, probe_seq(r, ttl));
                let ms = i64::from(r) * 1000 + i64::from(ttl);
                frame += 1;
                let (p, payload) = decoded(frame, ms, &bytes);
                tracker.push(&p, &payload);
                frame += 1;
                let (a, payload) = decoded(frame, ms + 2, &time_exceeded(&bytes, ttl));
                tracker.push(&a, &payload);
            }
        }
    }

    #[test]
    fn rounds_unwrap_across_the_slot_wrap() {
        let mut tracker = TraceTracker::new();
        feed(&mut tracker, 1020, 6);
        let out = tracker.finish();
        assert_eq!(out.traces.len(), 1);
        let t = &out.traces[0];
        let index: Vec<u32> = t.rounds.iter().map(|r| r.index).collect();
        assert_eq!(index, [1020, 1021, 1022, 1023, 1024, 1025]);
        assert_eq!(t.hops.len(), 3);
        assert!(t.hops.iter().all(|h| (h.sent, h.received) == (6, 6)));
        assert_eq!(t.hops[0].probe_frames, [1, 7, 13, 19, 25, 31]);
        assert_eq!(t.hops[0].reply_frames, [2, 8, 14, 20, 26, 32]);
        // Not the target: the last answering hop ends it.
        assert_eq!(t.target_hop, None);
    }

    #[test]
    fn late_and_duplicate_answers_count_as_live() {
        let mut tracker = TraceTracker::new();
        let seqs = [probe_seq(0, 1), probe_seq(0, 2), probe_seq(0, 3)];
        let probes: Vec<Vec<u8>> = (1..=3u8)
            .map(|t| probe_bytes(SYN, t, seqs[usize::from(t - 1)]))
            .collect();
        for (i, b) in probes.iter().enumerate() {
            let (p, payload) = decoded(i as u64 + 1, 0, b);
            tracker.push(&p, &payload);
            // Seen twice (two interfaces): one probe.
            tracker.push(&p, &payload);
        }
        // Hop 1 in time, twice; hop 2 after 1.5 s (late); hop 3 never.
        for (frame, ms, ttl) in [(10, 5, 1), (11, 6, 1), (12, 1500, 2)] {
            let (a, payload) = decoded(frame, ms, &time_exceeded(&probes[ttl - 1], ttl as u8));
            tracker.push(&a, &payload);
        }
        let out = tracker.finish();
        assert_eq!(out.duplicate_probes, 3);
        let t = &out.traces[0];
        let h: Vec<_> = t
            .hops
            .iter()
            .map(|h| (h.sent, h.received, h.late, h.duplicates))
            .collect();
        assert_eq!(h, [(1, 1, 0, 1), (1, 0, 1, 0)]);
        assert_eq!(t.counters.late, 1);
    }

    #[test]
    fn quote_named_by_a_kernel_ip_id_still_matches() {
        // An unprivileged ping socket: the kernel chose the IPv4 ID.
        let mut tracker = TraceTracker::new();
        for ttl in 1..=3u8 {
            let mut bytes = probe_bytes(ProbeKind::IcmpEcho, ttl, probe_seq(0, ttl));
            bytes[4..6].copy_from_slice(&(0x7000 + u16::from(ttl)).to_be_bytes());
            let (p, payload) = decoded(u64::from(ttl) * 2 - 1, 0, &bytes);
            tracker.push(&p, &payload);
            let (a, payload) = decoded(u64::from(ttl) * 2, 3, &time_exceeded(&bytes, ttl));
            tracker.push(&a, &payload);
        }
        let out = tracker.finish();
        let t = &out.traces[0];
        assert_eq!(t.protocol, TraceProtocol::Icmp);
        assert_eq!(t.hops.len(), 3);
        assert!(t.hops.iter().all(|h| h.received == 1), "{:?}", t.hops);
    }

    #[test]
    fn stray_groups_give_way_and_probes_are_bounded() {
        let mut tracker = TraceTracker::new();
        // Many one-TTL groups (other idents), then a real trace.
        for ident in 0..(MAX_CANDIDATES as u16 + 10) {
            let b = emit(&ProbeSpec {
                src: IpAddr::from(SRC),
                dst: IpAddr::from(DST),
                ttl: 1,
                ident,
                seq: probe_seq(0, 1),
                kind: SYN,
            })
            .unwrap()
            .bytes;
            let (p, payload) = decoded(1, 0, &b);
            tracker.push(&p, &payload);
        }
        assert_eq!(tracker.candidates.len(), MAX_CANDIDATES);
        feed(&mut tracker, 0, 2);
        let out = tracker.finish();
        assert_eq!(out.traces.len(), 1);
        assert_eq!(out.probes_dropped, 11);
        assert_eq!(out.traces[0].counters.sent, 6);
    }
}
