//! One server (broker address) of a capture: what every TCP rule reads
//! about it, computed once ([`Server`]: its flows, the resets from its
//! address classified, its baselines, where its hops are), the rules called
//! in the order their findings are reported, and the server's one TCP
//! verdict ([`tcp_verdict`]); TLS's verdict competes with it in the picker.

use crate::analysis::Gateway;
use crate::analysis::conclude::Inputs;
use crate::analysis::flows::{FlowRecord, RemoteBaseline};
use crate::analysis::picker::{Basis, Candidate};
use crate::analysis::rst::{RstContext, RstEvidence, RstOrigin, classify, ip_id_copies_systematic};
use crate::path::{Path, PathSource};
use crate::vocab::{Confidence, Finding, HopEstimate, Verdict, VerdictClass};
use std::net::{IpAddr, SocketAddr};

use super::{icmp, rst, syn, ttl_probe};

/// A SYN this close to the end of the capture may simply not have had its
/// answer captured yet; without a retransmission it proves nothing.
const SYN_GRACE_NS: i64 = 1_000_000_000;

/// What the rules know of one server, computed once before any judges.
pub(super) struct Server<'a> {
    pub server: IpAddr,
    /// The judged port: the first flow's (443 without flows).
    pub port: u16,
    pub flows: &'a [&'a FlowRecord],
    /// The server address's genuine packets across the capture.
    pub remote: Option<&'a RemoteBaseline>,
    /// The broker's hop from the path.
    pub target_hop: Option<u8>,
    /// Where the capture's TTL-limited probes place a filter.
    pub probes: Option<ttl_probe::ProbePlacement>,
    /// Resets from the server's address, classified, with their flows.
    /// Those that answer a ClientHello are TLS's: [`judge`] leaves them out
    /// before the TCP rules run.
    pub evidence: Vec<(RstEvidence, &'a FlowRecord)>,
    /// Attempts the server answered (SYN-ACK or data), and one more when it
    /// answered a traceroute SYN probe of the port with a SYN-ACK.
    pub answered: usize,
    pub established: Vec<&'a FlowRecord>,
    /// Attempts whose SYNs got no answer: retransmitted, or sent at least
    /// [`SYN_GRACE_NS`] before the capture ends.
    pub unanswered: Vec<&'a FlowRecord>,
    /// Display-filter fields for the server's address family.
    pub ip_src: &'static str,
    pub ip_dst: &'static str,
    pub ttl_field: &'static str,
    path: Option<&'a Path>,
    gateway: Option<&'a Gateway>,
}

fn ip_field(addr: IpAddr, v4: &'static str, v6: &'static str) -> &'static str {
    if addr.is_ipv4() { v4 } else { v6 }
}

impl<'a> Server<'a> {
    fn new(server: IpAddr, flows: &'a [&'a FlowRecord], inputs: &Inputs<'a>) -> Server<'a> {
        let target_hop = inputs.path.and_then(|p| p.target_hop);
        let port = flows.first().map_or(443, |f| f.server.port());
        let remote = inputs.table.remotes.get(&server);

        // Baselines across the capture for this server.
        let server_rtt_ns = flows
            .iter()
            .filter(|f| f.syn_count == 1)
            .filter_map(|f| Some(f.syn_ack?.ts_ns - f.syn?.ts_ns))
            .filter(|d| *d >= 0)
            .min();
        let server_ip_id_nonzero = flows
            .iter()
            .any(|f| f.syn_ack.and_then(|s| s.ip_id).is_some_and(|id| id != 0));
        let genuine_hop = remote
            .and_then(|r| r.ttls.mode())
            .or_else(|| flows.iter().find_map(|f| f.server_ttls.mode()))
            .map(|t| HopEstimate::from_ttl(t).hop);
        let probes = ttl_probe::place(flows, genuine_hop.or(target_hop));
        let ctx = RstContext {
            address_ttls: remote.map(|r| &r.ttls),
            target_hop,
            ttl_rewritten: inputs.ttl_rewritten,
            server_rtt_ns,
            server_ip_id_nonzero,
            port_listening: flows.iter().any(|f| f.syn_ack.is_some()),
            ip_id_copies_systematic: ip_id_copies_systematic(
                flows
                    .iter()
                    .flat_map(|f| f.rsts.iter().filter(|r| r.from_server)),
            ),
            probe_hop: probes
                .as_ref()
                .map(|p| (p.hop, p.probe_frame, p.why_not_server.as_str())),
        };
        let mut evidence: Vec<(RstEvidence, &FlowRecord)> = Vec::new();
        for f in flows {
            for r in f.rsts.iter().filter(|r| r.from_server) {
                evidence.push((classify(f, r, &ctx), f));
            }
        }
        unplace_randomised_ttls(&mut evidence, probes.as_ref());

        let answered = flows
            .iter()
            .filter(|f| f.syn_ack.is_some() || f.server_payload > 0)
            .count()
            + usize::from(
                inputs
                    .probe_answered
                    .contains(&SocketAddr::new(server, port)),
            );
        let established = flows.iter().copied().filter(|f| f.established).collect();
        let unanswered = flows
            .iter()
            .copied()
            .filter(|f| {
                f.syn_unanswered()
                    && (f.syn_retransmissions() > 0
                        || f.syn
                            .is_some_and(|s| inputs.capture_end_ns - s.ts_ns >= SYN_GRACE_NS))
            })
            .collect();
        Server {
            server,
            port,
            flows,
            probes,
            remote,
            target_hop,
            evidence,
            answered,
            established,
            unanswered,
            ip_src: ip_field(server, "ip.src", "ipv6.src"),
            ip_dst: ip_field(server, "ip.dst", "ipv6.dst"),
            ttl_field: ip_field(server, "ip.ttl", "ipv6.hlim"),
            path: inputs.path,
            gateway: inputs.gateways.get(&server),
        }
    }

    /// A hop's address: from the path, or for hop 1 from the capture's ARP
    /// (the gateway that delivered the server's packets), with its frame.
    pub fn hop_address(&self, hop: u8) -> (Option<IpAddr>, Option<u64>) {
        let from_path = self
            .path
            .filter(|p| p.source != PathSource::HopCount)
            .and_then(|p| p.address_at(hop));
        match (from_path, self.gateway) {
            (Some(a), _) => (Some(a), None),
            (None, Some(g)) if hop == 1 => (Some(g.address), Some(g.arp_frame)),
            _ => (None, None),
        }
    }
}

/// Injected resets whose TTLs imply hops spread over more than two hops
/// come from a device that randomises its TTL (one injector, not several):
/// their TTL places nothing, only the probes (if any) do.
fn unplace_randomised_ttls(
    evidence: &mut [(RstEvidence, &FlowRecord)],
    probes: Option<&ttl_probe::ProbePlacement>,
) {
    let hops: Vec<u8> = evidence
        .iter()
        .filter(|(e, _)| e.origin == RstOrigin::Injected && e.answers_probe_ttl.is_none())
        .map(|(e, _)| e.hop)
        .collect();
    let (Some(lo), Some(hi)) = (hops.iter().min(), hops.iter().max()) else {
        return;
    };
    let mut distinct = hops.clone();
    distinct.sort_unstable();
    distinct.dedup();
    if hi - lo <= 2 || distinct.len() < 3 {
        return;
    }
    let spread = format!(
        "the injected resets' TTLs imply {} different hops, from {lo} to {hi}: the injector randomises its TTL, so TTL arithmetic cannot place it",
        distinct.len()
    );
    for (e, _) in evidence
        .iter_mut()
        .filter(|(e, _)| e.origin == RstOrigin::Injected)
    {
        e.placed_hop = probes.map(|p| p.hop);
        e.reasons.push(spread.clone());
    }
}

/// Judges one server: its findings (in the order they are reported), every
/// reset from its address into `all_rsts`, its TCP verdict and the others
/// proposed: TLS's, and an explicit proxy's refusal of CONNECT tunnels.
pub(in crate::analysis) fn judge(
    server: IpAddr,
    flows: &[&FlowRecord],
    inputs: &Inputs<'_>,
    findings: &mut Vec<Finding>,
    all_rsts: &mut Vec<RstEvidence>,
) -> (Candidate, Vec<Candidate>) {
    let mut s = Server::new(server, flows, inputs);

    // TLS first: resets that answer a ClientHello are TLS blocking, judged
    // there, and left out of the TCP rules below.
    let broker_hop = s.target_hop.or_else(|| {
        s.remote
            .and_then(|r| r.echo_ttls.mode())
            .map(|t| HopEstimate::from_ttl(t).hop)
    });
    let tls = super::tls::judge(
        s.flows,
        &s.evidence,
        &super::tls::TlsContext {
            server,
            port: s.port,
            issuer: inputs.issuer,
            broker_hop,
            hop_address: &|hop| s.hop_address(hop),
            probes: s.probes.as_ref(),
        },
    );
    findings.extend(tls.findings);
    all_rsts.extend(s.evidence.iter().map(|(e, _)| e.clone()));
    s.evidence
        .retain(|(e, _)| !tls.blocking_rsts.contains(&e.frame));
    let tls_verdict = tls.verdict.map(|v| {
        Candidate::new(v)
            .basis(if tls.silent {
                Basis::TlsSilence
            } else {
                Basis::Evidence
            })
            .about(Some(server))
    });

    // An explicit proxy that refused CONNECT tunnels to the broker.
    let proxy = super::proxy::refused(&s, findings).map(|v| Candidate::new(v).about(Some(server)));

    // The TCP rules, in the order their findings are reported (the final
    // sort by severity is stable: equals keep this order). The unanswered
    // SYNs' rule places a block with what the ICMP rules found.
    let injected = rst::injected(&s, findings);
    let refused = rst::from_target(&s, findings);
    let unattributed = rst::unattributed(&s, findings);
    let unreachable = icmp::unreachable(&s, findings);
    let pinged = icmp::ping_replies(&s, findings);
    let blocked = syn::unanswered(&s, unreachable, pinged, findings);
    icmp::path_mtu(&s, findings);
    let black_hole = icmp::black_hole(&s, findings);
    icmp::mss_clamped(&s, findings);
    let healthy = syn::established(&s, findings);

    let tcp = tcp_verdict(
        &s,
        Proposals {
            injected,
            blocked,
            black_hole,
            refused,
            unattributed,
            healthy,
        },
    );
    (
        Candidate::new(tcp).about(Some(server)),
        tls_verdict.into_iter().chain(proxy).collect(),
    )
}

/// The verdict each TCP rule proposes for the server, if any.
struct Proposals {
    injected: Option<Verdict>,
    blocked: Option<Verdict>,
    black_hole: Option<Verdict>,
    refused: Option<Verdict>,
    unattributed: Option<Verdict>,
    healthy: Option<Verdict>,
}

/// This server's verdict from TCP (TLS's competes with it in the picker):
/// the first proposal in this order.
///
/// 1. `rst-injected` ([`rst::injected`]): resets from a hop before the
///    server, the hop with the most (then the most confident) resets.
/// 2. `tcp-blocked` ([`syn::unanswered`]): SYNs unanswered, no attempt
///    answered, no reset left to judge.
/// 3. `pmtu-blackhole` ([`icmp::black_hole`]): a full-size segment resent
///    without acknowledgment or ICMP while smaller ones passed.
/// 4. `rst-from-target` ([`rst::from_target`]): the server refused
///    attempts and none completed the handshake.
/// 5. `inconclusive` ([`rst::unattributed`]): attempts refused by resets
///    that cannot be attributed, and none completed the handshake.
/// 6. `healthy` ([`syn::established`]): some connection completed the
///    handshake.
/// 7. Otherwise `inconclusive`: nothing completed and nothing failed in a
///    way the capture shows.
fn tcp_verdict(s: &Server<'_>, p: Proposals) -> Verdict {
    [
        p.injected,
        p.blocked,
        p.black_hole,
        p.refused,
        p.unattributed,
        p.healthy,
    ]
    .into_iter()
    .flatten()
    .next()
    .unwrap_or_else(|| Verdict {
        class: VerdictClass::Inconclusive,
        hop: None,
        address: None,
        confidence: Confidence::Low,
        summary: format!(
            "Connections to {}:{} neither completed nor failed in a way the capture shows (e.g. a SYN at the very end of the capture).",
            s.server, s.port
        ),
        next_steps: vec!["Capture longer, from before the connector starts a connection.".into()],
    })
}
