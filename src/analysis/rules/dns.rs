//! DNS rules: does the broker name resolve?

use crate::analysis::dns::{DnsSummary, Outcome};
use crate::vocab::FindingKind;
use crate::vocab::{Confidence, Finding, Severity, Verdict, VerdictClass};

/// Findings about the broker names, and a `dns-failure` verdict when no
/// broker name resolved and at least one failed decisively.
pub fn judge(dns: &DnsSummary, findings: &mut Vec<Finding>) -> Option<Verdict> {
    let outcomes: Vec<_> = dns
        .broker_name_outcomes()
        .into_iter()
        .filter(|o| o.search_expansion_of.is_none())
        .collect();
    let mut any_resolved = false;
    let mut failure: Option<(String, String, Option<std::net::IpAddr>)> = None;
    for o in &outcomes {
        let resolver = o.resolver.map(|r| format!(" from {r}")).unwrap_or_default();
        let (severity, text) = match &o.outcome {
            Outcome::Resolved {
                addresses,
                cname_chain,
            } => {
                any_resolved = true;
                let chain = if cname_chain.is_empty() {
                    String::new()
                } else {
                    format!(" via {}", cname_chain.join(" → "))
                };
                let addrs: Vec<String> = addresses.iter().map(|a| a.to_string()).collect();
                (
                    Severity::Info,
                    format!(
                        "{} resolves{chain} to {}{resolver}",
                        o.name,
                        addrs.join(", ")
                    ),
                )
            }
            Outcome::NxDomain => (
                Severity::Critical,
                format!("{} does not exist: NXDOMAIN{resolver}", o.name),
            ),
            Outcome::ServFail => (
                Severity::Critical,
                format!(
                    "{}: SERVFAIL{resolver} (the resolver could not resolve it)",
                    o.name
                ),
            ),
            Outcome::Refused => (
                Severity::Critical,
                format!(
                    "{}: REFUSED{resolver} (the resolver will not answer this client)",
                    o.name
                ),
            ),
            Outcome::Unanswered => (
                Severity::Critical,
                format!(
                    "{}: {} quer{} and no answer: the resolver{} is not answering",
                    o.name,
                    o.queries,
                    if o.queries == 1 { "y" } else { "ies" },
                    o.resolvers
                        .first()
                        .map(|r| format!(" {r}"))
                        .unwrap_or_default()
                ),
            ),
            Outcome::NoAddress => (
                Severity::Critical,
                format!("{}: NOERROR but no address{resolver}", o.name),
            ),
            Outcome::Truncated => (
                Severity::Warning,
                format!(
                    "{}: truncated answer{resolver} and no TCP retry answered",
                    o.name
                ),
            ),
            Outcome::OtherRcode { rcode } => {
                (Severity::Critical, format!("{}: {rcode}{resolver}", o.name))
            }
            Outcome::Inconclusive => (
                Severity::Info,
                format!("{}: queried, nothing decisive in the capture", o.name),
            ),
        };
        if severity == Severity::Critical && failure.is_none() {
            failure = Some((
                o.name.clone(),
                text.clone(),
                o.resolver.or(o.resolvers.first().copied()),
            ));
        }
        let kind = if severity == Severity::Info {
            FindingKind::DnsLookup
        } else {
            FindingKind::DnsFailure
        };
        let severity = if any_resolved && severity == Severity::Critical {
            Severity::Warning
        } else {
            severity
        };
        findings.push(Finding::new(
            kind,
            severity,
            text,
            o.frames.clone(),
            Some(format!("dns.qry.name == \"{}\"", o.name)),
        ));
    }
    if any_resolved {
        return None;
    }
    let (name, text, resolver) = failure?;
    Some(Verdict {
        class: VerdictClass::DnsFailure,
        hop: None,
        address: resolver,
        confidence: Confidence::High,
        summary: format!(
            "The broker name does not resolve, so the connector cannot reach any broker: {text}."
        ),
        next_steps: vec![format!(
            "Check the connector's resolvers (/etc/resolv.conf) can resolve {name} and that outbound DNS to them is allowed."
        )],
    })
}
