//! Rules: flows, resets and ICMP errors → findings → one verdict.

use super::Gateway;
use super::flows::{FlowRecord, FlowTable, IcmpEvent};
use super::picker::{self, Basis, Candidate, NoEvidence};
use super::rst::{Baseline, RstContext, RstEvidence, RstOrigin, classify};
use crate::packet::IcmpKind;
use crate::path::{Path, PathSource};
use crate::vocab::FindingKind;
use crate::vocab::HopEstimate;
use crate::vocab::{Confidence, Finding, Severity, Verdict, VerdictClass};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};

pub(super) struct Inputs<'a> {
    pub table: &'a FlowTable,
    /// What the broker chain's issuer must be.
    pub issuer: super::rules::issuer::IssuerExpectation<'a>,
    pub dns: &'a super::dns::DnsSummary,
    /// Hop 1 toward each remote address, learnt from ARP.
    pub gateways: &'a HashMap<IpAddr, Gateway>,
    pub path: Option<&'a Path>,
    pub ttl_rewritten: bool,
    pub capture_end_ns: i64,
    /// What the capture's traceroutes show.
    pub traces: &'a super::traces::TraceConclusion,
    pub pmtu_probes: &'a super::pmtu_probes::PmtuProbeTracker,
    /// Servers (address and port) that answered a traceroute SYN probe
    /// with a SYN-ACK: TCP to them works, whatever single connections lost.
    pub probe_answered: &'a HashSet<SocketAddr>,
}

pub(super) struct Conclusion {
    pub verdict: Verdict,
    /// Every candidate verdict, for a command that adds its own (`check`).
    pub candidates: Vec<Candidate>,
    pub findings: Vec<Finding>,
    pub rsts: Vec<RstEvidence>,
}

/// A SYN this close to the end of the capture may simply not have had its
/// answer captured yet; without a retransmission it proves nothing.
const SYN_GRACE_NS: i64 = 1_000_000_000;

/// What one server (broker address) shows.
#[derive(Default)]
struct ServerView<'a> {
    flows: Vec<&'a FlowRecord>,
}

pub(super) fn conclude(inputs: &Inputs<'_>) -> Conclusion {
    let table = inputs.table;
    let mut servers: BTreeMap<IpAddr, ServerView<'_>> = BTreeMap::new();
    for f in &table.finished {
        if table.is_server_port(f.server.port()) {
            servers.entry(f.server.ip()).or_default().flows.push(f);
        }
    }
    let mut findings = Vec::new();
    let mut rsts = Vec::new();
    // Trace failures first: at equal rank they win (they place the hop).
    let mut candidates: Vec<Candidate> = inputs
        .traces
        .failures
        .iter()
        .map(|(server, v)| Candidate::new(v.clone()).about(Some(*server)))
        .collect();
    findings.extend(inputs.traces.findings.iter().cloned());

    if let Some(path) = inputs.path
        && let Some(target) = path.target
        && !servers.is_empty()
        && !servers.contains_key(&target)
    {
        let seen: Vec<String> = servers.keys().map(IpAddr::to_string).collect();
        findings.push(Finding::new(
                    FindingKind::PathMismatch,
                    Severity::Warning,
                    format!(
                        "the path was traced to {target}, but the capture's servers are {}; its hop count is used for them",
                        seen.join(", ")
                    ),
                    Vec::new(),
                    None,
                ));
    }
    if inputs.ttl_rewritten {
        findings.push(Finding::new(
            FindingKind::TtlUnreliable,
            Severity::Warning,
            "every packet toward the connector carries the same TTL, from several sources: a device on the path rewrites TTLs, so hop inference from TTLs is unreliable".into(),
            Vec::new(),
            None,
        ));
    }

    for (&server, view) in &servers {
        let (v, tls) = judge_server(server, view, inputs, &mut findings, &mut rsts);
        candidates.push(v);
        candidates.extend(tls);
    }
    candidates.extend(inputs.traces.healthy.iter().cloned().map(Candidate::new));

    let dns_verdict = super::dns_rules::judge(inputs.dns, &mut findings);
    candidates.extend(dns_verdict.map(Candidate::new));
    candidates.extend(
        super::pmtu_probes::judge(inputs.pmtu_probes, &mut findings)
            .map(|(dst, v)| Candidate::new(v).about(Some(dst))),
    );
    let verdict = picker::pick(candidates.clone(), || {
        no_evidence(servers.is_empty(), table)
    });
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    Conclusion {
        verdict,
        candidates,
        findings,
        rsts,
    }
}

fn ip_field(addr: IpAddr, v4: &str, v6: &str) -> String {
    if addr.is_ipv4() {
        v4.to_string()
    } else {
        v6.to_string()
    }
}

fn judge_server(
    server: IpAddr,
    view: &ServerView<'_>,
    inputs: &Inputs<'_>,
    findings: &mut Vec<Finding>,
    all_rsts: &mut Vec<RstEvidence>,
) -> (Candidate, Option<Candidate>) {
    let table = inputs.table;
    let path = inputs.path;
    let target_hop = path.and_then(|p| p.target_hop);
    let port = view.flows.first().map_or(443, |f| f.server.port());
    let ip_src = ip_field(server, "ip.src", "ipv6.src");
    let ip_dst = ip_field(server, "ip.dst", "ipv6.dst");
    let ttl_field = ip_field(server, "ip.ttl", "ipv6.hlim");
    // A hop's address: from the path, or for hop 1 from the capture's ARP
    // (the gateway that delivered the server's packets), with its frame.
    let hop_address = |hop: u8| -> (Option<IpAddr>, Option<u64>) {
        let from_path = path
            .filter(|p| p.source != PathSource::HopCount)
            .and_then(|p| p.address_at(hop));
        match (from_path, inputs.gateways.get(&server)) {
            (Some(a), _) => (Some(a), None),
            (None, Some(g)) if hop == 1 => (Some(g.address), Some(g.arp_frame)),
            _ => (None, None),
        }
    };

    // Baselines across the capture for this server.
    let server_rtt_ns = view
        .flows
        .iter()
        .filter(|f| f.syn_count == 1)
        .filter_map(|f| Some(f.syn_ack?.ts_ns - f.syn?.ts_ns))
        .filter(|d| *d >= 0)
        .min();
    let server_ip_id_nonzero = view
        .flows
        .iter()
        .any(|f| f.syn_ack.and_then(|s| s.ip_id).is_some_and(|id| id != 0));
    let ctx = RstContext {
        address_ttls: table.remotes.get(&server).map(|r| &r.ttls),
        target_hop,
        ttl_rewritten: inputs.ttl_rewritten,
        server_rtt_ns,
        server_ip_id_nonzero,
    };

    let mut evidence: Vec<(RstEvidence, &FlowRecord)> = Vec::new();
    for f in &view.flows {
        for r in f.rsts.iter().filter(|r| r.from_server) {
            evidence.push((classify(f, r, &ctx), f));
        }
    }

    // TLS first: resets that answer a ClientHello are TLS blocking, judged
    // there, and left out of the TCP rules below.
    let remote = table.remotes.get(&server);
    let broker_hop = target_hop.or_else(|| {
        remote
            .and_then(|r| r.echo_ttls.mode())
            .map(|t| HopEstimate::from_ttl(t).hop)
    });
    let tls = super::tls_rules::judge(
        &view.flows,
        &evidence,
        &super::tls_rules::TlsContext {
            server,
            port,
            issuer: inputs.issuer,
            broker_hop,
            hop_address: &hop_address,
        },
    );
    findings.extend(tls.findings);
    all_rsts.extend(evidence.iter().map(|(e, _)| e.clone()));
    evidence.retain(|(e, _)| !tls.blocking_rsts.contains(&e.frame));
    let tls_verdict = tls.verdict.map(|v| {
        Candidate::new(v)
            .basis(if tls.silent {
                Basis::TlsSilence
            } else {
                Basis::Evidence
            })
            .about(Some(server))
    });

    let answered = view
        .flows
        .iter()
        .filter(|f| f.syn_ack.is_some() || f.server_payload > 0)
        .count()
        + usize::from(
            inputs
                .probe_answered
                .contains(&SocketAddr::new(server, port)),
        );
    let established: Vec<&&FlowRecord> = view.flows.iter().filter(|f| f.established).collect();
    let unanswered: Vec<&&FlowRecord> = view
        .flows
        .iter()
        .filter(|f| {
            f.syn_unanswered()
                && (f.syn_retransmissions() > 0
                    || f.syn
                        .is_some_and(|s| inputs.capture_end_ns - s.ts_ns >= SYN_GRACE_NS))
        })
        .collect();

    // Injected resets, grouped by the hop they came from.
    let mut by_hop: BTreeMap<u8, Vec<&RstEvidence>> = BTreeMap::new();
    for (e, _) in &evidence {
        if e.origin == RstOrigin::Injected {
            by_hop.entry(e.hop).or_default().push(e);
        }
    }
    let mut injected_main: Option<(u8, usize, Confidence, u8, Option<u8>)> = None;
    for (&hop, list) in &by_hop {
        let first = list[0];
        let mut frames: Vec<u64> = Vec::new();
        for e in list {
            frames.push(e.frame);
            frames.extend(e.answers_frame);
        }
        // The genuine packets the comparison used: the SYN-ACKs of those flows.
        frames.extend(
            evidence
                .iter()
                .filter(|(e, _)| e.origin == RstOrigin::Injected && e.hop == hop)
                .filter_map(|(_, f)| f.syn_ack.map(|s| s.frame)),
        );
        let confidence = list
            .iter()
            .map(|e| e.confidence)
            .max()
            .unwrap_or(Confidence::Low);
        let (address, address_frame) = hop_address(hop);
        frames.extend(address_frame);
        // The genuine packets from the server's address elsewhere (ping replies...).
        if list.iter().any(|e| e.baseline == Baseline::SameAddress)
            && let Some(r) = table.remotes.get(&server)
        {
            frames.push(r.first_echo_frame.unwrap_or(r.first_frame));
        }
        let summary = format!(
            "{} TCP reset{} \"from\" {server}:{port} came from hop {hop}{}: {}",
            list.len(),
            if list.len() == 1 { "" } else { "s" },
            address.map(|a| format!(" ({a})")).unwrap_or_default(),
            first.reasons.join("; "),
        );
        let filter = format!(
            "tcp.flags.reset==1 && {ip_src}=={server} && {ttl_field}=={}",
            first.ttl
        );
        findings.push(
            Finding::new(
                FindingKind::RstInjected,
                Severity::Critical,
                summary,
                frames,
                Some(filter),
            )
            .at(Some(hop), address),
        );
        let better = injected_main.is_none_or(|(_, n, c, _, _)| (list.len(), confidence) > (n, c));
        if better {
            injected_main = Some((
                hop,
                list.len(),
                confidence,
                first.ttl,
                first.genuine_hop.or(target_hop),
            ));
        }
    }

    // Resets the server itself sent.
    let target_rsts: Vec<&(RstEvidence, &FlowRecord)> = evidence
        .iter()
        .filter(|(e, _)| e.origin == RstOrigin::Target)
        .collect();
    let refused: Vec<&&(RstEvidence, &FlowRecord)> =
        target_rsts.iter().filter(|(_, f)| !f.established).collect();
    if !refused.is_empty() {
        let e = &refused[0].0;
        let frames: Vec<u64> = refused
            .iter()
            .flat_map(|(e, _)| std::iter::once(e.frame).chain(e.answers_frame))
            .collect();
        findings.push(
            Finding::new(
                FindingKind::RstFromTarget,
                Severity::Warning,
                format!(
                    "{server} itself refused {} connection attempt{} to port {port} with a reset (TTL {} → hop {}: {})",
                    refused.len(),
                    if refused.len() == 1 { "" } else { "s" },
                    e.ttl,
                    e.hop,
                    e.reasons.first().cloned().unwrap_or_default()
                ),
                frames,
                Some(format!("tcp.flags.reset==1 && {ip_src}=={server}")),
            )
            .at(target_hop.or(Some(e.hop)), Some(server)),
        );
    }
    let closing: Vec<u64> = target_rsts
        .iter()
        .filter(|(_, f)| f.established)
        .map(|(e, _)| e.frame)
        .collect();
    if !closing.is_empty() {
        findings.push(Finding::new(
            FindingKind::ServerReset,
            Severity::Info,
            format!(
                "{server} reset {} established connection{} (genuine TTL): a normal way to end a connection for many servers",
                closing.len(),
                if closing.len() == 1 { "" } else { "s" }
            ),
            closing,
            None,
        ));
    }

    // Resets the evidence cannot place.
    let unclear: Vec<&(RstEvidence, &FlowRecord)> = evidence
        .iter()
        .filter(|(e, _)| e.origin == RstOrigin::Unclear)
        .collect();
    let unclear_refusals = unclear.iter().filter(|(_, f)| !f.established).count();
    if !unclear.is_empty() {
        let e = &unclear[0].0;
        findings.push(
            Finding::new(
                FindingKind::RstUnattributed,
                Severity::Warning,
                format!(
                    "{} reset{} from {server}:{port} with TTL {} (hop {}) cannot be attributed: {}",
                    unclear.len(),
                    if unclear.len() == 1 { "" } else { "s" },
                    e.ttl,
                    e.hop,
                    e.reasons.join("; ")
                ),
                unclear.iter().map(|(e, _)| e.frame).collect(),
                Some(format!("tcp.flags.reset==1 && {ip_src}=={server}")),
            )
            .at(Some(e.hop), None),
        );
    }

    // SYNs nobody answered, and the ICMP errors that name a hop.
    let icmp: Vec<&IcmpEvent> = unanswered
        .iter()
        .flat_map(|f| f.icmp_errors.iter())
        .filter(|i| matches!(i.kind, IcmpKind::Unreachable { .. }))
        .collect();
    let icmp_hop = icmp
        .iter()
        .find(|i| {
            matches!(
                i.kind,
                IcmpKind::Unreachable {
                    admin_prohibited: true
                }
            )
        })
        .or(icmp.first())
        .map(|i| (HopEstimate::from_ttl(i.packet.ttl).hop, i.from, **i));
    if let Some((hop, from, i)) = icmp_hop {
        findings.push(
            Finding::new(
                FindingKind::IcmpUnreachable,
                Severity::Warning,
                format!(
                    "{from} (hop {hop}, TTL {}) answered the SYNs to {server}:{port} with ICMP {} code {}{}",
                    i.packet.ttl,
                    if i.v6 { "v6 unreachable" } else { "unreachable" },
                    i.code,
                    if matches!(i.kind, IcmpKind::Unreachable { admin_prohibited: true }) {
                        " (administratively prohibited: a firewall rejects the connection)"
                    } else {
                        ""
                    }
                ),
                icmp.iter().map(|i| i.packet.frame).collect(),
                None,
            )
            .at(Some(hop), Some(from)),
        );
    }
    let syns: u32 = unanswered.iter().map(|f| f.syn_count).sum();
    // Ping replies from the server: the path works for ICMP, whatever TCP does.
    let echo = table
        .remotes
        .get(&server)
        .filter(|r| r.echo_replies > 0)
        .and_then(|r| Some((r.echo_replies, r.first_echo_frame?, r.echo_ttls.mode()?)));
    if let Some((n, frame, ttl)) = echo {
        let hop = HopEstimate::from_ttl(ttl).hop;
        findings.push(
            Finding::new(
                FindingKind::IcmpReachable,
                Severity::Info,
                format!(
                    "{n} ping repl{} from {server} (TTL {ttl} → hop {hop}): the path to the server works for ICMP",
                    if n == 1 { "y" } else { "ies" }
                ),
                vec![frame],
                Some(format!("icmp.type==0 && {ip_src}=={server}")),
            )
            .at(Some(hop), Some(server)),
        );
    }
    if !unanswered.is_empty() {
        let blocked = answered == 0 && evidence.is_empty();
        let summary = format!(
            "{} connection attempt{} to {server}:{port} got no answer: {syns} SYNs ({} retransmissions), no SYN-ACK, no reset{}",
            unanswered.len(),
            if unanswered.len() == 1 { "" } else { "s" },
            syns.saturating_sub(unanswered.len() as u32),
            if blocked {
                ""
            } else {
                ", while other attempts to the same server were answered"
            }
        );
        findings.push(
            Finding::new(
                if blocked { FindingKind::TcpBlocked } else { FindingKind::SynUnanswered },
                if blocked {
                    Severity::Critical
                } else {
                    Severity::Warning
                },
                summary,
                unanswered.iter().flat_map(|f| f.syn_frames.iter().copied()).collect(),
                Some(format!(
                    "tcp.flags.syn==1 && tcp.flags.ack==0 && {ip_dst}=={server} && tcp.dstport=={port}"
                )),
            )
            .at(icmp_hop.map(|h| h.0), icmp_hop.map(|h| h.1)),
        );
    }

    // Path MTU: ICMP "fragmentation needed" / "packet too big" quoting the
    // connector's segments, and full-size segments that vanish without it.
    let is_ptb = |i: &&IcmpEvent| matches!(i.kind, IcmpKind::PacketTooBig { .. });
    let ptb: Vec<&IcmpEvent> = view
        .flows
        .iter()
        .flat_map(|f| f.icmp_errors.iter())
        .filter(is_ptb)
        .collect();
    if let Some(first) = ptb.first() {
        let IcmpKind::PacketTooBig { mtu } = first.kind else {
            unreachable!("filtered on PacketTooBig")
        };
        let hop = HopEstimate::from_ttl(first.packet.ttl).hop;
        findings.push(
            Finding::new(
                FindingKind::PathMtu,
                Severity::Info,
                format!(
                    "{} (hop {hop}, TTL {}) reports a path MTU of {mtu} bytes toward {server} ({} ICMP {} quoting the connector's segments): path-MTU discovery works",
                    first.from,
                    first.packet.ttl,
                    ptb.len(),
                    if first.v6 { "packet-too-big" } else { "fragmentation-needed" }
                ),
                ptb.iter().map(|i| i.packet.frame).collect(),
                None,
            )
            .at(Some(hop), Some(first.from)),
        );
    }
    let holes: Vec<(&FlowRecord, &crate::analysis::retrans::StuckSegment)> = view
        .flows
        .iter()
        .filter_map(|f| {
            let s = f.client_sends.stuck.as_ref()?;
            let acked_later = f
                .server_max_ack
                .is_some_and(|a| crate::analysis::retrans::seq_before(s.seq, a));
            (s.sends >= 4
                && !f.icmp_errors.iter().any(|i| is_ptb(&i))
                && f.server_acked_client_data()
                && !acked_later)
                .then_some((*f, s))
        })
        .collect();
    if let Some((_, s)) = holes.first() {
        findings.push(Finding::new(
            FindingKind::PmtuBlackhole,
            Severity::Critical,
            format!(
                "{} connection{} to {server}:{port}: a {}-byte segment was sent {} times and never acknowledged, with no ICMP fragmentation-needed, while the smaller segments before it were acknowledged: full-size packets vanish on the path (path-MTU black hole)",
                holes.len(),
                if holes.len() == 1 { "" } else { "s" },
                s.len,
                s.sends
            ),
            holes.iter().flat_map(|(_, s)| s.frames.iter().copied()).collect(),
            None,
        ));
    }
    // MSS: a SYN-ACK that advertises less than the SYN offered, at a classic clamp value.
    if let Some(f) = view
        .flows
        .iter()
        .find(|f| matches!((f.syn_mss, f.syn_ack_mss), (Some(a), Some(b)) if b < a && b < 1460))
    {
        let (syn, synack) = (f.syn_mss.unwrap_or(0), f.syn_ack_mss.unwrap_or(0));
        let known = match synack {
            1452 => " (the PPPoE clamp)",
            1380 => " (the Cisco ASA default clamp)",
            1360 => " (a GRE/IPsec clamp)",
            _ => "",
        };
        findings.push(Finding::new(
            FindingKind::MssClamped,
            Severity::Info,
            format!(
                "the SYN offered MSS {syn}, the SYN-ACK from {server} advertises MSS {synack}{known}: a smaller MTU on the server side or a device clamping MSS"
            ),
            [f.syn.map(|s| s.frame), f.syn_ack.map(|s| s.frame)]
                .into_iter()
                .flatten()
                .collect(),
            None,
        ));
    }

    // The connections that worked.
    if !established.is_empty() {
        let ttl = established.iter().find_map(|f| f.server_ttls.mode());
        let hop = ttl.map(|t| HopEstimate::from_ttl(t).hop);
        findings.push(
            Finding::new(
                FindingKind::TcpEstablished,
                Severity::Info,
                format!(
                    "{} of {} connection{} to {server}:{port} completed the handshake{}",
                    established.len(),
                    view.flows.len(),
                    if view.flows.len() == 1 { "" } else { "s" },
                    match (ttl, hop) {
                        (Some(t), Some(h)) => format!(" (server TTL {t} → hop {h})"),
                        _ => String::new(),
                    }
                ),
                established
                    .iter()
                    .filter_map(|f| f.syn_ack.map(|s| s.frame))
                    .collect(),
                Some(format!(
                    "tcp.flags.syn==1 && tcp.flags.ack==1 && {ip_src}=={server}"
                )),
            )
            .at(hop, Some(server)),
        );
    }

    // This server's verdict from TCP; TLS's competes with it in `pick`.
    let tcp_verdict = (|| -> Verdict {
        if let Some((hop, n, confidence, ttl, server_hop)) = injected_main {
            let (address, _) = hop_address(hop);
            return Verdict {
                class: VerdictClass::RstInjected,
                hop: Some(hop),
                address,
                confidence,
                summary: format!(
                    "TCP resets to {server}:{port} are injected at hop {hop}{}: {n} reset{} arrived with TTL {ttl} (hop {hop}){}.",
                    address.map(|a| format!(" ({a})")).unwrap_or_default(),
                    if n == 1 { "" } else { "s" },
                    server_hop
                        .map(|h| format!(" while the server is at hop {h}"))
                        .unwrap_or_default()
                ),
                next_steps: vec![
                    format!(
                        "Show the firewall owner of hop {hop}{} the reset frames: a rule there rejects TCP {port} to {server} with a forged reset.",
                        address.map(|a| format!(" ({a})")).unwrap_or_default()
                    ),
                    "Allow the broker ranges of your cloud on TCP 443 outbound from the connector."
                        .into(),
                ],
            };
        }
        if !unanswered.is_empty() && answered == 0 && evidence.is_empty() {
            let (hop, address) = match icmp_hop {
                Some((h, a, _)) => (Some(h), Some(a)),
                None => (None, None),
            };
            return Verdict {
                class: VerdictClass::TcpBlocked,
                hop,
                address,
                confidence: if unanswered.iter().any(|f| f.syn_retransmissions() > 0) {
                    Confidence::High
                } else {
                    Confidence::Medium
                },
                summary: match icmp_hop {
                    Some((h, a, _)) => format!(
                        "TCP {port} to {server} is blocked at hop {h} ({a}): {} SYNs, no SYN-ACK, and an ICMP unreachable from {a}.",
                        syns
                    ),
                    None => format!(
                        "TCP {port} to {server} is silently dropped: {syns} SYNs in {} attempt{}, no SYN-ACK and no reset{}; a capture alone cannot place a silent drop (trace TCP {port} to find the last hop that answers).",
                        unanswered.len(),
                        if unanswered.len() == 1 { "" } else { "s" },
                        if echo.is_some() {
                            ", while ping replies from the server arrive"
                        } else {
                            ""
                        },
                    ),
                },
                next_steps: vec![
                    format!(
                        "Run `mtr -rwbzc 20 --tcp -P {port} {server}` and `mtr -rwbzc 20 {server}` from the connector: where the TCP trace stops while ICMP goes on, TCP {port} is dropped."
                    ),
                    format!("Check the site firewall for a rule dropping TCP {port} to {server}."),
                ],
            };
        }
        if let Some((_, s)) = holes.first() {
            return Verdict {
            class: VerdictClass::PmtuBlackhole,
            hop: None,
            address: None,
            confidence: Confidence::Medium,
            summary: format!(
                "Full-size packets to {server}:{port} vanish: a {}-byte segment was sent {} times without acknowledgment or ICMP fragmentation-needed while small segments pass: a path-MTU black hole (a link with a smaller MTU whose router's ICMP is dropped).",
                s.len, s.sends
            ),
            next_steps: vec![
                "Find the link with the smaller MTU (tracepath, or pathproof check) and let its ICMP fragmentation-needed through, or clamp the MSS on the site firewall.".into(),
            ],
        };
        }
        if !refused.is_empty() && established.is_empty() {
            let e = &refused[0].0;
            let hop = target_hop.or(Some(e.hop));
            return Verdict {
                class: VerdictClass::RstFromTarget,
                hop,
                address: Some(server),
                confidence: e.confidence,
                summary: format!(
                    "{server} itself refuses TCP {port}: its resets carry its own TTL {} (hop {}), so they are genuine; nothing listens on the port or the server rejects this client.",
                    e.ttl,
                    hop.unwrap_or(e.hop)
                ),
                next_steps: vec![format!(
                    "The path to {server} works; the server side refuses: check that {server} is a current broker address for your cloud and that the service is up."
                )],
            };
        }
        if unclear_refusals > 0 && established.is_empty() {
            let e = &unclear[0].0;
            return Verdict {
            class: VerdictClass::Inconclusive,
            hop: None,
            address: None,
            confidence: Confidence::Low,
            summary: format!(
                "Connections to {server}:{port} are reset, with TTL {} (hop {}), but the capture cannot tell who sent the resets: {}",
                e.ttl,
                e.hop,
                e.reasons.last().cloned().unwrap_or_default()
            ),
            next_steps: vec![
                "Give the broker's hop count (--hops N) or the customer's mtr report (--mtr FILE), or capture a ping to the broker along with the connection attempts.".into(),
            ],
        };
        }
        if !established.is_empty() {
            let hop = established
                .iter()
                .find_map(|f| f.server_ttls.mode())
                .map(|t| HopEstimate::from_ttl(t).hop);
            return Verdict {
                class: VerdictClass::Healthy,
                hop: None,
                address: None,
                confidence: Confidence::High,
                summary: format!(
                    "No failure found: {} connection{} to {server}:{port} completed the TCP handshake{}.",
                    established.len(),
                    if established.len() == 1 { "" } else { "s" },
                    hop.map(|h| format!(" (server at hop {h})"))
                        .unwrap_or_default()
                ),
                next_steps: Vec::new(),
            };
        }
        Verdict {
            class: VerdictClass::Inconclusive,
            hop: None,
            address: None,
            confidence: Confidence::Low,
            summary: format!(
                "Connections to {server}:{port} neither completed nor failed in a way the capture shows (e.g. a SYN at the very end of the capture)."
            ),
            next_steps: vec![
                "Capture longer, from before the connector starts a connection.".into(),
            ],
        }
    })();
    (Candidate::new(tcp_verdict).about(Some(server)), tls_verdict)
}

/// What an inconclusive verdict says when no rule proposed anything.
fn no_evidence(no_servers: bool, table: &FlowTable) -> NoEvidence {
    NoEvidence {
        summary: if no_servers && table.flows_total > 0 {
            "No TCP connection to the broker port in the capture (other TCP traffic only): nothing to judge; use --port if the connector uses another port.".into()
        } else {
            "No TCP connection to the broker port in the capture: nothing to judge.".into()
        },
        next_steps: vec![
            "Capture with `tcpdump -i any -w output.pcap` on the connector while it tries to connect (restart the connector service during the capture).".into(),
        ],
    }
}
