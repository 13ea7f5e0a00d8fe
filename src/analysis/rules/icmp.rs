//! ICMP about one server, and the size of its packets. Unreachables that
//! quote the unanswered SYNs name the hop that rejects them
//! (administratively prohibited: a firewall); ping replies from the server
//! show the path works for ICMP whatever TCP does. Path MTU:
//! fragmentation-needed / packet-too-big quoting the connector's segments
//! shows that path-MTU discovery works, and a full-size segment that
//! vanishes without it, while smaller ones pass, is a black hole
//! (`pmtu-blackhole`; a capture alone cannot place it). A SYN-ACK that
//! advertises a smaller MSS than the SYN offered shows a smaller MTU or a
//! clamp on the way.

use super::server::Server;
use crate::analysis::flows::{FlowRecord, IcmpEvent};
use crate::analysis::retrans::{StuckSegment, seq_before};
use crate::packet::IcmpKind;
use crate::vocab::{
    Confidence, Finding, FindingKind, HopEstimate, Severity, Verdict, VerdictClass,
};
use std::net::IpAddr;

/// The ICMP unreachable that answered the unanswered SYNs: the hop that
/// sent it (from its TTL) and its address.
#[derive(Clone, Copy)]
pub(super) struct Unreachable {
    pub hop: u8,
    pub from: IpAddr,
}

/// ICMP unreachables quoting the unanswered SYNs: the administratively
/// prohibited one if any (a firewall rejects the connection), else the
/// first, names the hop.
pub(super) fn unreachable(s: &Server<'_>, findings: &mut Vec<Finding>) -> Option<Unreachable> {
    let (server, port) = (s.server, s.port);
    let icmp: Vec<&IcmpEvent> = s
        .unanswered
        .iter()
        .flat_map(|f| f.icmp_errors.iter())
        .filter(|i| matches!(i.kind, IcmpKind::Unreachable { .. }))
        .collect();
    let (hop, from, i) = icmp
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
        .map(|i| (HopEstimate::from_ttl(i.packet.ttl).hop, i.from, **i))?;
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
    Some(Unreachable { hop, from })
}

/// Ping replies from the server: the path works for ICMP, whatever TCP
/// does. True when they are reported.
pub(super) fn ping_replies(s: &Server<'_>, findings: &mut Vec<Finding>) -> bool {
    let server = s.server;
    let ip_src = s.ip_src;
    let echo = s
        .remote
        .filter(|r| r.echo_replies > 0)
        .and_then(|r| Some((r.echo_replies, r.first_echo_frame?, r.echo_ttls.mode()?)));
    let Some((n, frame, ttl)) = echo else {
        return false;
    };
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
            // Echo reply: ICMP type 0, ICMPv6 type 129.
            Some(if server.is_ipv4() {
                format!("icmp.type==0 && {ip_src}=={server}")
            } else {
                format!("icmpv6.type==129 && {ip_src}=={server}")
            }),
        )
        .at(Some(hop), Some(server)),
    );
    true
}

fn is_ptb(i: &IcmpEvent) -> bool {
    matches!(i.kind, IcmpKind::PacketTooBig { .. })
}

/// ICMP "fragmentation needed" / "packet too big" quoting the connector's
/// segments: information, path-MTU discovery works (the reporting hop and
/// the MTU named).
pub(super) fn path_mtu(s: &Server<'_>, findings: &mut Vec<Finding>) {
    let server = s.server;
    let ptb: Vec<&IcmpEvent> = s
        .flows
        .iter()
        .flat_map(|f| f.icmp_errors.iter())
        .filter(|i| is_ptb(i))
        .collect();
    let Some(first) = ptb.first() else {
        return;
    };
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

/// Full-size segments that vanish without ICMP: the same large segment sent
/// four times or more, never acknowledged (not even later), no
/// fragmentation-needed for the flow, while the server acknowledged the
/// connector's smaller segments before it. `pmtu-blackhole`, unplaced.
pub(super) fn black_hole(s: &Server<'_>, findings: &mut Vec<Finding>) -> Option<Verdict> {
    let (server, port) = (s.server, s.port);
    let holes: Vec<(&FlowRecord, &StuckSegment)> = s
        .flows
        .iter()
        .filter_map(|f| {
            let stuck = f.client_sends.stuck.as_ref()?;
            let acked_later = f.server_max_ack.is_some_and(|a| seq_before(stuck.seq, a));
            (stuck.sends >= 4
                && !f.icmp_errors.iter().any(is_ptb)
                && f.server_acked_client_data()
                && !acked_later)
                .then_some((*f, stuck))
        })
        .collect();
    let (_, stuck) = holes.first()?;
    findings.push(Finding::new(
        FindingKind::PmtuBlackhole,
        Severity::Critical,
        format!(
            "{} connection{} to {server}:{port}: a {}-byte segment was sent {} times and never acknowledged, with no ICMP fragmentation-needed, while the smaller segments before it were acknowledged: full-size packets vanish on the path (path-MTU black hole)",
            holes.len(),
            if holes.len() == 1 { "" } else { "s" },
            stuck.len,
            stuck.sends
        ),
        holes.iter().flat_map(|(_, s)| s.frames.iter().copied()).collect(),
        None,
    ));
    Some(Verdict {
        class: VerdictClass::PmtuBlackhole,
        hop: None,
        address: None,
        confidence: Confidence::Medium,
        summary: format!(
            "Full-size packets to {server}:{port} vanish: a {}-byte segment was sent {} times without acknowledgment or ICMP fragmentation-needed while small segments pass: a path-MTU black hole (a link with a smaller MTU whose router's ICMP is dropped).",
            stuck.len, stuck.sends
        ),
        next_steps: vec![
            "Find the link with the smaller MTU (tracepath, or pathproof check) and let its ICMP fragmentation-needed through, or clamp the MSS on the site firewall.".into(),
        ],
    })
}

/// MSS: the first SYN-ACK that advertises less than its SYN offered and
/// less than 1460 (the classic clamp values are named).
pub(super) fn mss_clamped(s: &Server<'_>, findings: &mut Vec<Finding>) {
    let server = s.server;
    let Some(f) = s
        .flows
        .iter()
        .find(|f| matches!((f.syn_mss, f.syn_ack_mss), (Some(a), Some(b)) if b < a && b < 1460))
    else {
        return;
    };
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
