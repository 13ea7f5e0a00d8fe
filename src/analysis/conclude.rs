//! The capture's conclusion: capture-wide findings, each server judged by
//! the rules ([`super::rules::server`]), the capture's traceroutes, DNS and
//! path-MTU probes as candidates, then the one picker's verdict.

use super::Gateway;
use super::flows::{FlowRecord, FlowTable};
use super::picker::{self, Candidate, NoEvidence};
use super::rst::RstEvidence;
use crate::path::Path;
use crate::vocab::FindingKind;
use crate::vocab::{Finding, Severity, Verdict};
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
    /// The capture's frames, IP or not (zero when the source is not a capture).
    pub frame_counts: super::FrameCounts,
    pub ip_packets: u64,
}

pub(super) struct Conclusion {
    pub verdict: Verdict,
    /// Every candidate verdict, for a command that adds its own (`check`).
    pub candidates: Vec<Candidate>,
    pub findings: Vec<Finding>,
    pub rsts: Vec<RstEvidence>,
}

/// What one server (broker address) shows.
#[derive(Default)]
struct ServerView<'a> {
    flows: Vec<&'a FlowRecord>,
}

pub(super) fn conclude(inputs: &Inputs<'_>) -> Conclusion {
    let table = inputs.table;
    let mut servers: BTreeMap<IpAddr, ServerView<'_>> = BTreeMap::new();
    for f in &table.finished {
        if table.is_judged(f) {
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
        let (v, tls) =
            super::rules::server::judge(server, &view.flows, inputs, &mut findings, &mut rsts);
        candidates.push(v);
        candidates.extend(tls);
    }
    candidates.extend(inputs.traces.healthy.iter().cloned().map(Candidate::new));

    let dns_verdict = super::rules::dns::judge(inputs.dns, &mut findings);
    candidates.extend(dns_verdict.map(Candidate::new));
    candidates.extend(super::rules::dns_hijack::judge(
        inputs.dns,
        table,
        &mut findings,
    ));
    candidates.extend(
        super::pmtu_probes::judge(inputs.pmtu_probes, &mut findings)
            .map(|(dst, v)| Candidate::new(v).about(Some(dst))),
    );
    let verdict = picker::pick(candidates.clone(), || {
        no_evidence(servers.is_empty(), inputs)
    });
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    Conclusion {
        verdict,
        candidates,
        findings,
        rsts,
    }
}

/// What an inconclusive verdict says when no rule proposed anything: why
/// there was nothing to judge, naming the frames that carry no IP.
fn no_evidence(no_servers: bool, inputs: &Inputs<'_>) -> NoEvidence {
    let table = inputs.table;
    let counts = &inputs.frame_counts;
    let non_ip = counts.non_ip.total();
    let capture_step = "Capture with `tcpdump -i any -w output.pcap` on the connector while it tries to connect (restart the connector service during the capture).".to_string();
    if inputs.ip_packets == 0 && non_ip > 0 {
        return NoEvidence {
            summary: format!(
                "{non_ip} of {} frames carry no IP ({}): nothing here can show the path to the broker.",
                counts.frames.max(non_ip),
                counts.non_ip.describe()
            ),
            next_steps: vec![format!(
                "{capture_step} Capture on the interface that carries the connector's IP traffic (with PPPoE, the PPP interface or its Ethernet: pathproof reads both)."
            )],
        };
    }
    let elsewhere = no_servers.then(|| other_ports(table)).flatten();
    let mut summary = if let Some(e) = &elsewhere {
        e.clone()
    } else if no_servers && table.flows_total > 0 {
        "No TCP connection to the broker port in the capture (other TCP traffic only): nothing to judge; use --port if the connector uses another port.".to_string()
    } else {
        "No TCP connection to the broker port in the capture: nothing to judge.".to_string()
    };
    if non_ip > 0 {
        summary.push_str(&format!(
            " {non_ip} of {} frames carry no IP ({}).",
            counts.frames.max(non_ip),
            counts.non_ip.describe()
        ));
    }
    NoEvidence {
        summary,
        next_steps: vec![capture_step],
    }
}

/// What the capture shows on ports that are not judged, when the judged
/// ones show nothing: "No TCP to port 443; TLS seen on 8443 (12 flows),
/// resets on 80 (3): run with --port 8443." The ports suggested are those
/// with TLS (most flows first, three at most), else those with resets.
fn other_ports(table: &FlowTable) -> Option<String> {
    let ports = &table.other_ports;
    if ports.is_empty() {
        return None;
    }
    let judged: Vec<String> = table.server_ports().iter().map(u16::to_string).collect();
    let mut tls: Vec<_> = ports.values().filter(|a| a.tls_flows > 0).collect();
    tls.sort_by_key(|a| (std::cmp::Reverse(a.tls_flows), a.port));
    let mut resets: Vec<_> = ports.values().filter(|a| a.resets > 0).collect();
    resets.sort_by_key(|a| (std::cmp::Reverse(a.resets), a.port));
    let list = |items: &[&super::flows::PortActivity],
                count: fn(&super::flows::PortActivity) -> u64,
                unit: &str| {
        let shown: Vec<String> = items
            .iter()
            .take(5)
            .map(|a| {
                let n = count(a);
                let unit = if unit.is_empty() {
                    String::new()
                } else {
                    format!(" {unit}{}", if n == 1 { "" } else { "s" })
                };
                format!("{} ({n}{unit})", a.port)
            })
            .collect();
        let more = items.len().saturating_sub(5);
        let more = if more > 0 {
            format!(" and {more} more port{}", if more == 1 { "" } else { "s" })
        } else {
            String::new()
        };
        format!("{}{more}", shown.join(", "))
    };
    let mut seen = Vec::new();
    if !tls.is_empty() {
        seen.push(format!(
            "TLS seen on {}",
            list(&tls, |a| a.tls_flows, "flow")
        ));
    }
    if !resets.is_empty() {
        seen.push(format!("resets on {}", list(&resets, |a| a.resets, "")));
    }
    let suggest = if tls.is_empty() { &resets } else { &tls };
    let run: Vec<String> = suggest
        .iter()
        .take(3)
        .map(|a| format!("--port {}", a.port))
        .collect();
    Some(format!(
        "No TCP to port {} in the capture; {}: run with {}.",
        judged.join(", "),
        seen.join(", "),
        run.join(" ")
    ))
}
