//! Which packets prove the verdict (`--evidence`): the frames of the
//! findings that support it, and the context a reader — and `pathproof
//! pcap` reading the evidence file — needs to judge them again (the
//! connection's SYN and SYN-ACK, the ClientHello and what answered it, the
//! certificate flight, the DNS exchange), each with why it is there.
//!
//! Pure: it reads the analysis and says which frame numbers, in tiers; the
//! job (`crate::app::evidence`) fetches the bytes, writes the file and
//! checks that the file alone reaches the same verdict, widening to the
//! next tier when it does not.

use super::flows::{FlowRecord, SegmentKind};
use super::tls::Side;
use super::{Analysis, Finding, HopEstimate, RstOrigin, Severity, Verdict, VerdictClass};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// How necessary a frame is, most necessary first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    /// A frame a finding that supports the verdict lists.
    Proof,
    /// Context the rules need to judge the proof again: the connection's
    /// handshake, what a reset answers, the DNS exchange of the broker name.
    Context,
    /// Frames of the other findings: added only when the first two tiers
    /// alone do not reach the same verdict.
    Other,
}

/// One frame chosen, with why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pick {
    pub tier: Tier,
    /// Why it is there (joined into the packet comment).
    pub reasons: Vec<String>,
    /// The analysis knows what this packet is (a reset, a SYN-ACK, a
    /// ClientHello...); otherwise `reasons` only names the finding that
    /// lists it, and the job says what the packet is from its headers.
    pub described: bool,
}

/// The frames chosen and the connections they are about.
#[derive(Clone, Debug, Default)]
pub struct EvidencePlan {
    pub frames: BTreeMap<u64, Pick>,
    /// The connections (client, server) the proof is about: when the tiers
    /// above do not reproduce the verdict, their other packets (the
    /// acknowledgments a black hole or a stall is judged on) are added.
    pub flows: Vec<(SocketAddr, SocketAddr)>,
}

/// Connections whose packets are offered as extra context.
const MAX_FLOWS: usize = 8;

/// Rounds of a traceroute kept per hop when the verdict's hop rests on it.
const TRACE_ROUNDS: usize = 2;

/// Silent TTLs kept beyond a trace's last answering hop (where it stops).
const TRACE_SILENT_TTLS: usize = 2;

impl EvidencePlan {
    /// Adds a frame; `reason` with whether it describes the packet (else
    /// it only names a finding: one such is enough).
    fn add(&mut self, frame: u64, tier: Tier, reason: Option<(String, bool)>) {
        let pick = self.frames.entry(frame).or_insert(Pick {
            tier,
            reasons: Vec::new(),
            described: false,
        });
        pick.tier = pick.tier.min(tier);
        match reason {
            Some((r, true)) if !pick.described => {
                pick.described = true;
                pick.reasons = vec![r];
            }
            Some((r, false)) if pick.reasons.is_empty() => pick.reasons.push(r),
            _ => {}
        }
    }
}

/// Chooses the evidence of `verdict` (the analysis's own, or a live
/// command's that rests on the same recording) among the analysis's frames.
pub fn plan(analysis: &Analysis, verdict: &Verdict, findings: &[Finding]) -> EvidencePlan {
    let described = describe(analysis);
    let mut plan = EvidencePlan::default();
    let reason = |frame: u64, f: &Finding| match described.get(&frame) {
        Some(d) => (d.clone(), true),
        None => (
            format!("evidence of {}: {}", f.kind, shorten(&f.summary, 140)),
            false,
        ),
    };
    let known = |frame: &u64| described.get(frame).map(|d| (d.clone(), true));
    for f in findings {
        let tier = if f.kind.class() == Some(verdict.class)
            || (f.severity == Severity::Critical && verdict.class.is_failure())
        {
            Tier::Proof
        } else {
            Tier::Other
        };
        for &frame in &f.frames {
            plan.add(frame, tier, Some(reason(frame, f)));
        }
    }
    // The connections the proof is about, and their handshakes.
    let proof: Vec<u64> = plan
        .frames
        .iter()
        .filter(|(_, p)| p.tier == Tier::Proof)
        .map(|(f, _)| *f)
        .collect();
    for flow in &analysis.flows {
        if plan.flows.len() >= MAX_FLOWS {
            break;
        }
        let frames = flow_frames(flow);
        if !frames.iter().any(|f| proof.binary_search(f).is_ok()) {
            continue;
        }
        plan.flows.push((flow.client, flow.server));
        for frame in context_frames(flow) {
            plan.add(frame, Tier::Context, known(&frame));
        }
    }
    // A hop placed by a traceroute in the capture (the check's own TCP
    // trace and its ICMP control): its first rounds, every hop, so that the
    // file alone rebuilds the trace and places the hop again.
    for it in &analysis.traces.interpreted {
        let trace = &analysis.traces.traces[it.trace];
        let touches = trace.hops.iter().any(|h| {
            h.probe_frames
                .iter()
                .chain(&h.reply_frames)
                .any(|f| proof.binary_search(f).is_ok())
        });
        if !touches {
            continue;
        }
        let traces = std::iter::once(trace).chain(it.control.map(|c| &analysis.traces.traces[c]));
        for t in traces {
            // Every TTL of the first rounds up to a little past the last
            // answering hop, answered or not: the silent ones say where
            // the probes stop.
            let last = t
                .target_hop
                .or_else(|| t.last_answering_hop())
                .map_or(0, usize::from);
            for round in t.rounds.iter().take(TRACE_ROUNDS) {
                for (i, status) in round.probes.iter().enumerate() {
                    let ttl = i + 1;
                    if ttl > last + TRACE_SILENT_TTLS {
                        break;
                    }
                    let (probe, reply) = match status {
                        crate::trace::ProbeStatus::Complete(c) => (c.probe.frame, c.reply.frame),
                        crate::trace::ProbeStatus::Lost(l) => {
                            (l.probe.frame, l.late.as_ref().and_then(|r| r.frame))
                        }
                        _ => continue,
                    };
                    for (frame, what) in [(probe, "probe"), (reply, "answer")] {
                        let Some(f) = frame else { continue };
                        let why = format!(
                            "{what} of the {} trace to {} at TTL {ttl} (its first rounds rebuild the trace)",
                            t.protocol, t.target
                        );
                        plan.add(f, Tier::Context, known(&f).or(Some((why, true))));
                    }
                }
            }
        }
    }
    for e in &analysis.rsts {
        if proof.binary_search(&e.frame).is_ok()
            && let Some(f) = e.answers_frame
        {
            plan.add(f, Tier::Context, known(&f));
        }
    }
    // The lookup of the broker name: the first exchange of each name.
    let mut names = Vec::new();
    for x in &analysis.dns.exchanges {
        if names.contains(&&x.qname) || names.len() >= 2 {
            continue;
        }
        names.push(&x.qname);
        for f in x
            .query_frames
            .iter()
            .take(2)
            .chain(x.responses.iter().map(|r| &r.frame).take(1))
        {
            plan.add(*f, Tier::Context, known(f));
        }
    }
    plan
}

/// The frames a flow record names.
fn flow_frames(flow: &FlowRecord) -> Vec<u64> {
    let mut out: Vec<u64> = flow.syn_frames.to_vec();
    out.extend(flow.syn_ack.map(|p| p.frame));
    out.extend(flow.rsts.iter().map(|r| r.packet.frame));
    out.extend(flow.icmp_errors.iter().map(|i| i.packet.frame));
    out.extend(flow.client_fin);
    out.extend(flow.server_fin);
    if let Some(t) = &flow.tls_observation {
        out.extend(t.client_hello.as_ref().map(|c| c.frame));
        out.extend(t.server_hello.as_ref().map(|s| s.frame));
        out.extend(t.certificate.map(|c| c.frame));
        out.extend(t.alerts.iter().map(|a| a.frame));
        if let Some(c) = &t.connect {
            out.push(c.request_frame);
            out.extend(c.answer.as_ref().map(|a| a.frame));
        }
    }
    out
}

/// A flow's handshake and TLS exchange: what the rules judge a reset, a
/// certificate or a stall against.
fn context_frames(flow: &FlowRecord) -> Vec<u64> {
    let mut out: Vec<u64> = flow.syn_frames.first().copied().into_iter().collect();
    out.extend(flow.syn_ack.map(|p| p.frame));
    if let Some(t) = &flow.tls_observation {
        if let Some(c) = &t.connect {
            out.push(c.request_frame);
            out.extend(c.answer.as_ref().map(|a| a.frame));
        }
        out.extend(t.client_hello.as_ref().map(|c| c.frame));
        out.extend(t.server_hello.as_ref().map(|s| s.frame));
        out.extend(t.certificate.map(|c| c.frame));
        out.extend(t.server_hello_done.map(|c| c.frame));
        out.extend(t.alerts.iter().map(|a| a.frame));
    }
    out
}

/// What each frame the analysis knows is, in words, for the packet
/// comments.
fn describe(a: &Analysis) -> BTreeMap<u64, String> {
    let mut d: BTreeMap<u64, String> = BTreeMap::new();
    let mut put = |frame: u64, text: String| {
        d.entry(frame).or_insert(text);
    };
    for e in &a.rsts {
        let server_hop = e.genuine_hop.or(e.target_hop);
        let text = match e.origin {
            RstOrigin::Injected => {
                let mut t = format!("the forged reset (TTL {}, hop {}", e.ttl, e.hop);
                if let Some(h) = server_hop {
                    t.push_str(&format!("; the server is at hop {h}"));
                }
                t.push(')');
                if let Some(p) = e.placed_hop.filter(|p| *p != e.hop) {
                    t.push_str(&format!(", placed at hop {p} by the TTL-limited copies"));
                }
                t
            }
            RstOrigin::Target => format!(
                "the server's own reset (TTL {}, hop {}{})",
                e.ttl,
                e.hop,
                server_hop.map_or(String::new(), |h| format!(
                    ", as its genuine packets: hop {h}"
                ))
            ),
            RstOrigin::Unclear => {
                format!("a reset of unclear origin (TTL {}, hop {})", e.ttl, e.hop)
            }
        };
        put(e.frame, format!("{text} \"from\" {}", e.server));
        if let Some(f) = e.answers_frame {
            let what = match e.answers {
                Some(SegmentKind::Syn) => "SYN",
                Some(SegmentKind::SynAck) => "SYN-ACK",
                Some(SegmentKind::Data) => "data segment",
                Some(SegmentKind::Ack) => "ACK",
                Some(SegmentKind::Fin) => "FIN",
                None => "segment",
            };
            put(
                f,
                format!(
                    "the connector's {what} that the reset in frame {} answers",
                    e.frame
                ),
            );
        }
    }
    for fl in &a.flows {
        let to = fl.server;
        let answered = fl.syn_ack.is_some();
        for (i, f) in fl.syn_frames.iter().enumerate() {
            let text = match (i, answered) {
                (0, true) => format!("the connector's SYN to {to}"),
                (0, false) => format!("the connector's SYN to {to}: never answered by a SYN-ACK"),
                (i, _) => format!("the connector's SYN to {to}, sent again (try {})", i + 1),
            };
            put(*f, text);
        }
        if let Some(p) = fl.syn_ack {
            let h = HopEstimate::from_ttl(p.ttl).hop;
            let rsts = if fl.rsts.is_empty() {
                ""
            } else {
                ": the genuine packet the resets are compared with"
            };
            put(
                p.frame,
                format!("the SYN-ACK \"from\" {to} (TTL {}, hop {h}){rsts}", p.ttl),
            );
        }
        for i in &fl.icmp_errors {
            put(
                i.packet.frame,
                format!(
                    "ICMP type {} code {} from {} (TTL {}, hop {}) about the connection to {to}",
                    i.icmp_type,
                    i.code,
                    i.from,
                    i.packet.ttl,
                    HopEstimate::from_ttl(i.packet.ttl).hop
                ),
            );
        }
        if let Some(f) = fl.client_fin {
            put(f, format!("the connector's FIN to {to}"));
        }
        if let Some(f) = fl.server_fin {
            put(f, format!("the FIN \"from\" {to}"));
        }
        let Some(t) = &fl.tls_observation else {
            continue;
        };
        if let Some(c) = &t.connect {
            put(
                c.request_frame,
                format!(
                    "the connector's request to the proxy {to}: CONNECT {}",
                    c.target
                ),
            );
            if let Some(a) = &c.answer {
                put(a.frame, format!("the proxy's answer: {}", a.status_line));
            }
        }
        if let Some(c) = &t.client_hello {
            let sni = c
                .sni
                .as_deref()
                .map_or("no SNI".to_string(), |s| format!("SNI {s}"));
            put(c.frame, format!("the connector's TLS ClientHello ({sni})"));
        }
        if let Some(s) = &t.server_hello {
            put(
                s.frame,
                format!("the ServerHello that answered it ({})", s.version),
            );
        }
        if let Some(c) = t.certificate {
            let chain = match t.certificates.first() {
                Some(leaf) => format!(
                    ": {} certificate(s), the leaf {} issued by {}",
                    t.certificates_total, leaf.subject, leaf.issuer
                ),
                None => String::new(),
            };
            put(c.frame, format!("the server's certificate flight{chain}"));
        }
        if let Some(f) = t.server_hello_done {
            put(
                f.frame,
                "the end of the server's TLS flight (ServerHelloDone)".into(),
            );
        }
        for al in &t.alerts {
            let from = match al.from {
                Side::Client => "the connector",
                Side::Server => "the server side",
            };
            let name = al.description_name.as_deref().unwrap_or("encrypted");
            let ttl = al.ttl.map_or(String::new(), |t| {
                format!(" (TTL {t}, hop {})", HopEstimate::from_ttl(t).hop)
            });
            put(al.frame, format!("a TLS alert from {from}: {name}{ttl}"));
        }
    }
    for x in &a.dns.exchanges {
        let answered = !x.responses.is_empty();
        for (i, f) in x.query_frames.iter().enumerate() {
            let again = if i > 0 { ", sent again" } else { "" };
            let never = if answered { "" } else { ": never answered" };
            put(
                *f,
                format!(
                    "the DNS query {} {} to {}{again}{never}",
                    x.qtype, x.qname, x.server
                ),
            );
        }
        for r in &x.responses {
            let mut t = format!(
                "the DNS answer for {} from {}: {}",
                x.qname, x.server, r.rcode
            );
            if !r.cname_chain.is_empty() {
                t.push_str(&format!(", CNAME {}", r.cname_chain.join(" → ")));
            }
            if !r.addresses.is_empty() {
                let list: Vec<String> = r.addresses.iter().map(|a| a.to_string()).collect();
                t.push_str(&format!(", addresses {}", list.join(", ")));
            }
            put(r.frame, t);
        }
    }
    d
}

/// The first `max` characters of `s`, with an ellipsis when cut.
pub fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// What failed, as a path diagram draws it (`--html`): the verdict class
/// read once, here, so that the report names no class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Culprit {
    /// A device forges resets in the server's name: an arrow from the hop
    /// that really sent them.
    ForgedReset,
    /// A device answers the TLS handshake with its own certificate chain.
    Interceptor,
    /// Large packets vanish after the hop (path-MTU black hole).
    BlackHole,
    /// Packets dropped or refused on the way (TCP, UDP, TLS filter).
    Filter,
    /// Packets lost from the hop onward.
    Loss,
    /// The server itself refuses.
    Server,
    /// The resolver: no broker name resolves.
    Resolver,
    /// The connector host itself (clock, identity, enrollment).
    Host,
    /// Nothing failed, or nothing decides.
    Nothing,
}

pub fn culprit(class: VerdictClass) -> Culprit {
    match class {
        VerdictClass::RstInjected => Culprit::ForgedReset,
        VerdictClass::TlsIntercepted => Culprit::Interceptor,
        VerdictClass::PmtuBlackhole => Culprit::BlackHole,
        VerdictClass::TcpBlocked | VerdictClass::UdpBlocked | VerdictClass::TlsBlocked => {
            Culprit::Filter
        }
        VerdictClass::PathLoss => Culprit::Loss,
        VerdictClass::RstFromTarget | VerdictClass::TlsRefused => Culprit::Server,
        VerdictClass::DnsFailure => Culprit::Resolver,
        VerdictClass::ClockSkew
        | VerdictClass::IdentityChanged
        | VerdictClass::EnrollmentFailed => Culprit::Host,
        VerdictClass::Healthy | VerdictClass::Inconclusive => Culprit::Nothing,
    }
}
