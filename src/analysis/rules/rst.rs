//! Resets "from" the server, once the reset classification
//! ([`crate::analysis::rst`], README "How a reset is placed") has placed
//! each one: injected by a hop before the server (grouped by that hop:
//! `rst-injected` names the device), sent by the server itself (a refusal
//! before the handshake is `rst-from-target`; a reset of an established
//! connection is a normal close), or not placeable from the evidence.
//! Resets that answer a ClientHello are TLS's and never reach these rules.

use super::server::Server;
use crate::analysis::flows::FlowRecord;
use crate::analysis::rst::{Baseline, ForgingSign, RstEvidence, RstOrigin};
use crate::vocab::{Confidence, Finding, FindingKind, Severity, Verdict, VerdictClass};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Injected resets, grouped by where the evidence places them: a finding
/// per hop (the resets, the genuine packets they were compared with, the
/// frame that names the hop) and one for the forged resets nothing places;
/// `rst-injected` counts them all and names the hop the TTL-limited probes
/// place, else the hop with the most resets (then the most confident), else
/// no hop and why.
pub(super) fn injected(s: &Server<'_>, findings: &mut Vec<Finding>) -> Option<Verdict> {
    let (server, port, ip_src, ttl_field) = (s.server, s.port, s.ip_src, s.ttl_field);
    let mut by_hop: BTreeMap<Option<u8>, Vec<&RstEvidence>> = BTreeMap::new();
    for (e, _) in &s.evidence {
        if e.origin == RstOrigin::Injected {
            by_hop.entry(e.placed_hop).or_default().push(e);
        }
    }
    let total: usize = by_hop.values().map(Vec::len).sum();
    let mut main: Option<(Option<u8>, usize, Confidence, Option<u8>)> = None;
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
                .filter(|(e, _)| e.origin == RstOrigin::Injected && e.placed_hop == hop)
                .filter_map(|(_, f)| f.syn_ack.map(|a| a.frame)),
        );
        let confidence = list
            .iter()
            .map(|e| e.confidence)
            .max()
            .unwrap_or(Confidence::Low);
        let (address, address_frame) = match hop {
            Some(h) => probe_or_path_address(s, h),
            None => (None, None),
        };
        frames.extend(address_frame);
        // The probes that place it: the copy that reached the device and
        // the one before it that expired at a router.
        if let Some(p) = s.probes.as_ref().filter(|p| Some(p.hop) == hop) {
            frames.push(p.probe_frame);
            frames.extend(p.below.map(|(_, f, _)| f));
        }
        // The genuine packets from the server's address elsewhere (ping replies...).
        if list.iter().any(|e| e.baseline == Baseline::SameAddress)
            && let Some(r) = s.remote
        {
            frames.push(r.first_echo_frame.unwrap_or(r.first_frame));
        }
        let mut ttls: Vec<u8> = list.iter().map(|e| e.ttl).collect();
        ttls.sort_unstable();
        ttls.dedup();
        let where_ = match hop {
            Some(h) => format!(
                " came from hop {h}{}",
                address.map(|a| format!(" ({a})")).unwrap_or_default()
            ),
            None => " were forged, but nothing in the capture places the device".to_string(),
        };
        let summary = format!(
            "{} TCP reset{} \"from\" {server}:{port}{where_} (TTL {}): {}",
            list.len(),
            if list.len() == 1 { "" } else { "s" },
            list_u8(&ttls),
            first.reasons.join("; "),
        );
        let filter = format!(
            "tcp.flags.reset==1 && {ip_src}=={server} && {ttl_field} in {{{}}}",
            list_u8(&ttls)
        );
        findings.push(
            Finding::new(
                FindingKind::RstInjected,
                Severity::Critical,
                summary,
                frames,
                Some(filter),
            )
            .at(hop, address),
        );
        let by_probe = hop.is_some() && s.probes.as_ref().map(|p| p.hop) == hop;
        let better = match main {
            None => true,
            Some((h, n, c, _)) => {
                let rank = |hop: Option<u8>, n: usize, c: Confidence| {
                    (
                        hop.is_some() && s.probes.as_ref().map(|p| p.hop) == hop,
                        hop.is_some(),
                        n,
                        c,
                    )
                };
                (by_probe, hop.is_some(), list.len(), confidence) > rank(h, n, c)
            }
        };
        if better {
            main = Some((
                hop,
                list.len(),
                confidence,
                first.genuine_hop.or(s.target_hop),
            ));
        }
    }

    let (hop, n, confidence, server_hop) = main?;
    let (address, _) = hop.map_or((None, None), |h| probe_or_path_address(s, h));
    let at = match hop {
        Some(h) => format!(
            " at hop {h}{}",
            address.map(|a| format!(" ({a})")).unwrap_or_default()
        ),
        None => String::new(),
    };
    let placed_by = match (hop, s.probes.as_ref()) {
        (Some(h), Some(p)) if p.hop == h => format!(
            ": the connector's copy sent with TTL {h} (frame {}) was the first answered by a reset (frame {}){}, and {}",
            p.probe_frame,
            p.reset_frame,
            p.below
                .map(|(t, f, a)| format!(", the copy with TTL {t} expired at {a} (frame {f})"))
                .unwrap_or_default(),
            p.why_not_server
        ),
        (Some(h), _) => {
            let ttls = by_hop
                .get(&Some(h))
                .map(|l| {
                    let mut t: Vec<u8> = l.iter().map(|e| e.ttl).collect();
                    t.sort_unstable();
                    t.dedup();
                    list_u8(&t)
                })
                .unwrap_or_default();
            format!(
                ": {} arrived with TTL {ttls} (hop {h}){}",
                if n == total {
                    "they".to_string()
                } else {
                    format!("{n} of them")
                },
                server_hop
                    .map(|sh| format!(" while the server is at hop {sh}"))
                    .unwrap_or_default()
            )
        }
        (None, _) => {
            let why = by_hop
                .get(&None)
                .and_then(|l| l.first())
                .and_then(|e| e.reasons.last().cloned())
                .unwrap_or_default();
            format!(": no hop, because {why}")
        }
    };
    let signs: Vec<&str> = by_hop
        .values()
        .flatten()
        .flat_map(|e| e.signs.iter())
        .map(|s| sign_name(*s))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    Some(Verdict {
        class: VerdictClass::RstInjected,
        hop,
        address,
        confidence,
        summary: format!(
            "TCP resets to {server}:{port} are injected{at}: {total} reset{} forged{}{placed_by}.",
            if total == 1 { " was" } else { "s were" },
            if signs.is_empty() {
                String::new()
            } else {
                format!(" (signs: {})", signs.join(", "))
            },
        ),
        next_steps: vec![
            match hop {
                Some(h) => format!(
                    "Show the firewall owner of hop {h}{} the reset frames: a rule there rejects TCP {port} to {server} with a forged reset.",
                    address.map(|a| format!(" ({a})")).unwrap_or_default()
                ),
                None => format!(
                    "Place the injector: run `pathproof trace --tcp -p {port} {server}` from the connector, or capture with the broker's hop known (--hops N / --mtr FILE)."
                ),
            },
            format!(
                "Allow the broker ranges of your cloud on TCP {port} outbound from the connector."
            ),
        ],
    })
}

/// A hop's address: the router that answered the TTL-limited probe there,
/// else the path's or the gateway's.
fn probe_or_path_address(s: &Server<'_>, hop: u8) -> (Option<IpAddr>, Option<u64>) {
    match s.probes.as_ref() {
        Some(p) if p.hop == hop && p.address.is_some() => (p.address, None),
        _ => s.hop_address(hop),
    }
}

fn list_u8(values: &[u8]) -> String {
    values
        .iter()
        .map(u8::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn sign_name(s: ForgingSign) -> &'static str {
    match s {
        ForgingSign::IpIdCopied => "IP ID copied",
        ForgingSign::ServerContinued => "the server went on after it",
        ForgingSign::ReservedBits => "reserved bits set",
        ForgingSign::TtlVariesInBurst => "TTL varies in a burst",
        ForgingSign::SynResetWhileListening => "SYN reset while the port listens",
        ForgingSign::WindowCopied => "window copied",
        ForgingSign::FasterThanServer => "faster than the server",
        ForgingSign::RejectFingerprint => "REJECT fingerprint",
    }
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
