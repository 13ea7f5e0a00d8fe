//! The TCP handshake with one server: SYNs nobody answered, and the
//! connections that completed. Unanswered SYNs are `tcp-blocked` when the
//! server answered no attempt and sent no reset: a silent drop, which a
//! capture alone cannot place (an ICMP unreachable names its sender's hop;
//! a trace places the rest); when another attempt was answered, or a reset
//! came, they are only reported. Completed handshakes make the server `healthy` when no
//! other rule found a failure.

use super::icmp::Unreachable;
use super::server::Server;
use crate::vocab::{
    Confidence, Finding, FindingKind, HopEstimate, Severity, Verdict, VerdictClass,
};

/// Connection attempts whose SYNs got no answer: `tcp-blocked` when nothing
/// answered the server's port and no reset came (`unreachable` places it at
/// the ICMP sender's hop; `pinged`: ping replies from the server arrived).
pub(super) fn unanswered(
    s: &Server<'_>,
    unreachable: Option<Unreachable>,
    pinged: bool,
    findings: &mut Vec<Finding>,
) -> Option<Verdict> {
    let (server, port, ip_dst) = (s.server, s.port, s.ip_dst);
    let unanswered = &s.unanswered;
    if unanswered.is_empty() {
        return None;
    }
    let syns: u32 = unanswered.iter().map(|f| f.syn_count).sum();
    let blocked = s.answered == 0 && s.evidence.is_empty();
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
            if blocked {
                FindingKind::TcpBlocked
            } else {
                FindingKind::SynUnanswered
            },
            if blocked {
                Severity::Critical
            } else {
                Severity::Warning
            },
            summary,
            unanswered
                .iter()
                .flat_map(|f| f.syn_frames.iter().copied())
                .collect(),
            Some(format!(
                "tcp.flags.syn==1 && tcp.flags.ack==0 && {ip_dst}=={server} && tcp.dstport=={port}"
            )),
        )
        .at(unreachable.map(|u| u.hop), unreachable.map(|u| u.from)),
    );

    if !blocked {
        return None;
    }
    Some(Verdict {
        class: VerdictClass::TcpBlocked,
        hop: unreachable.map(|u| u.hop),
        address: unreachable.map(|u| u.from),
        confidence: if unanswered.iter().any(|f| f.syn_retransmissions() > 0) {
            Confidence::High
        } else {
            Confidence::Medium
        },
        summary: match unreachable {
            Some(Unreachable { hop: h, from: a }) => format!(
                "TCP {port} to {server} is blocked at hop {h} ({a}): {} SYNs, no SYN-ACK, and an ICMP unreachable from {a}.",
                syns
            ),
            None => format!(
                "TCP {port} to {server} is silently dropped: {syns} SYNs in {} attempt{}, no SYN-ACK and no reset{}; a capture alone cannot place a silent drop (trace TCP {port} to find the last hop that answers).",
                unanswered.len(),
                if unanswered.len() == 1 { "" } else { "s" },
                if pinged {
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
    })
}

/// The connections that worked: reported with the server's hop (its
/// SYN-ACK's TTL), and `healthy` when any completed the handshake.
pub(super) fn established(s: &Server<'_>, findings: &mut Vec<Finding>) -> Option<Verdict> {
    let (server, port, ip_src) = (s.server, s.port, s.ip_src);
    let established = &s.established;
    if established.is_empty() {
        return None;
    }
    let ttl = established.iter().find_map(|f| f.server_ttls.mode());
    let hop = ttl.map(|t| HopEstimate::from_ttl(t).hop);
    // Connections the capture joined after their handshake prove that TCP
    // works, but not that a handshake completed: counted apart.
    let handshakes = established.iter().filter(|f| f.syn_ack.is_some()).count();
    let mid_stream = established.len() - handshakes;
    let joined = match mid_stream {
        0 => String::new(),
        1 => "; 1 was already open when the capture started (data both ways)".to_string(),
        n => format!("; {n} were already open when the capture started (data both ways)"),
    };
    findings.push(
        Finding::new(
            FindingKind::TcpEstablished,
            Severity::Info,
            format!(
                "{handshakes} of {} connection{} to {server}:{port} completed the handshake{}{joined}",
                s.flows.len(),
                if s.flows.len() == 1 { "" } else { "s" },
                match (ttl, hop) {
                    (Some(t), Some(h)) => format!(" (server TTL {t} → hop {h})"),
                    _ => String::new(),
                }
            ),
            established
                .iter()
                .filter_map(|f| f.syn_ack.map(|a| a.frame).or(Some(f.first_frame)))
                .collect(),
            Some(format!(
                "tcp.flags.syn==1 && tcp.flags.ack==1 && {ip_src}=={server}"
            )),
        )
        .at(hop, Some(server)),
    );
    Some(Verdict {
        class: VerdictClass::Healthy,
        hop: None,
        address: None,
        confidence: Confidence::High,
        summary: if handshakes > 0 {
            format!(
                "No failure found: {handshakes} connection{} to {server}:{port} completed the TCP handshake{}{joined}.",
                if handshakes == 1 { "" } else { "s" },
                hop.map(|h| format!(" (server at hop {h})"))
                    .unwrap_or_default()
            )
        } else {
            format!(
                "No failure found: {mid_stream} connection{} to {server}:{port} carried data both ways{}, but the capture started after their handshakes.",
                if mid_stream == 1 { "" } else { "s" },
                hop.map(|h| format!(" (server at hop {h})"))
                    .unwrap_or_default()
            )
        },
        next_steps: Vec::new(),
    })
}
