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
