//! Resets "from" the server, once the reset classification
//! ([`crate::analysis::rst`], README "How a reset is placed") has placed
//! each one: injected by a hop before the server (grouped by that hop:
//! `rst-injected` names the device), sent by the server itself (a refusal
//! before the handshake is `rst-from-target`; a reset of an established
//! connection is a normal close), or not placeable from the evidence.
//! Resets that answer a ClientHello are TLS's and never reach these rules.

use super::server::Server;
use crate::analysis::flows::FlowRecord;
use crate::analysis::rst::{Baseline, RstEvidence, RstOrigin};
use crate::vocab::{Confidence, Finding, FindingKind, Severity, Verdict, VerdictClass};
use std::collections::BTreeMap;

/// Injected resets, grouped by the hop they came from: a finding per hop
/// (the resets, the genuine packets they were compared with, the frame
/// that names the hop), and `rst-injected` at the hop with the most resets
/// (then the most confident).
pub(super) fn injected(s: &Server<'_>, findings: &mut Vec<Finding>) -> Option<Verdict> {
    let (server, port, ip_src, ttl_field) = (s.server, s.port, s.ip_src, s.ttl_field);
    let mut by_hop: BTreeMap<u8, Vec<&RstEvidence>> = BTreeMap::new();
    for (e, _) in &s.evidence {
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
            s.evidence
                .iter()
                .filter(|(e, _)| e.origin == RstOrigin::Injected && e.hop == hop)
                .filter_map(|(_, f)| f.syn_ack.map(|a| a.frame)),
        );
        let confidence = list
            .iter()
            .map(|e| e.confidence)
            .max()
            .unwrap_or(Confidence::Low);
        let (address, address_frame) = s.hop_address(hop);
        frames.extend(address_frame);
        // The genuine packets from the server's address elsewhere (ping replies...).
        if list.iter().any(|e| e.baseline == Baseline::SameAddress)
            && let Some(r) = s.remote
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
                first.genuine_hop.or(s.target_hop),
            ));
        }
    }

    let (hop, n, confidence, ttl, server_hop) = injected_main?;
    let (address, _) = s.hop_address(hop);
    Some(Verdict {
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
            format!(
                "Allow the broker ranges of your cloud on TCP {port} outbound from the connector."
            ),
        ],
    })
}

/// Resets the server itself sent (its own TTL): refusals of attempts that
/// never completed the handshake (`rst-from-target` when no attempt did),
/// and resets of established connections, a normal close for many servers.
pub(super) fn from_target(s: &Server<'_>, findings: &mut Vec<Finding>) -> Option<Verdict> {
    let (server, port, ip_src) = (s.server, s.port, s.ip_src);
    let target_rsts: Vec<&(RstEvidence, &FlowRecord)> = s
        .evidence
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
            .at(s.target_hop.or(Some(e.hop)), Some(server)),
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

    if refused.is_empty() || !s.established.is_empty() {
        return None;
    }
    let e = &refused[0].0;
    let hop = s.target_hop.or(Some(e.hop));
    Some(Verdict {
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
    })
}

/// Resets the evidence cannot place (no genuine packet or path to compare
/// with, or TTLs that prove nothing): reported, and `inconclusive` when
/// they refused attempts and no attempt completed the handshake.
pub(super) fn unattributed(s: &Server<'_>, findings: &mut Vec<Finding>) -> Option<Verdict> {
    let (server, port, ip_src) = (s.server, s.port, s.ip_src);
    let unclear: Vec<&(RstEvidence, &FlowRecord)> = s
        .evidence
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

    if unclear_refusals == 0 || !s.established.is_empty() {
        return None;
    }
    let e = &unclear[0].0;
    Some(Verdict {
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
    })
}
