//! The connector's journal, judged: what its own lines prove.
//!
//! The journal says what the connector tried and how it failed, not where
//! on the path: its verdicts name no hop (a capture does that).
//!
//! - "Cannot decrypt data from instance_id.crypt" / "Cannot get instance id"
//!   / "fingerprint mismatch": `identity-changed`.
//! - A certificate "not yet valid" or "expired", or a reported time skew
//!   above [`SKEW_THRESHOLD_SECS`]: `clock-skew`.
//! - Any other certificate verification failure (self-signed in the chain,
//!   unable to get the local issuer): `tls-intercepted`, the issuer named.
//! - "DNS resolution failed for NAME" with no connection after it:
//!   `dns-failure`.
//! - An enrollment refused (key invalid, expired, used up; CSR or login
//!   rejected) with none of the causes above and no connection after it:
//!   `enrollment-failed`. With one of them, it is their effect (a wrong
//!   clock or an unresolvable API name fail the enrollment too).
//! - The control connection: **flapping** (at least [`FLAP_MIN_CYCLES`]
//!   up→down cycles: count and period) or failing with no successful
//!   connect (errors, closes, backoff, "not yet connected"), or ending
//!   down after having been up: `tcp-blocked` (medium confidence when it
//!   never came up, low when it flaps or fell: the journal cannot tell a
//!   drop from a reset or from the broker ending it; a capture can). A
//!   close for a redirect is not a failure. These are the effect of any
//!   cause above, and then not a candidate of their own.
//! - Up at the end, no failure after the last connect, no flapping:
//!   `healthy`. Anything else: `inconclusive`.

use crate::analysis::picker::{Candidate, NoEvidence, pick};
use crate::journal::timeline::{TimelineEntry, timeline};
use crate::journal::{EnrollmentReason, Journal, JournalEvent, JournalEventKind};
use crate::vocab::time::human_duration;
use crate::vocab::{Confidence, Finding, FindingKind, Severity, Verdict, VerdictClass};
use std::net::SocketAddr;

/// A reported time skew above this many seconds is clock skew.
pub const SKEW_THRESHOLD_SECS: f64 = 5.0;
/// Up→down cycles of the control connection from which it is flapping.
pub const FLAP_MIN_CYCLES: u64 = 3;

/// The control connection coming up and going down again.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Flapping {
    /// Up→down cycles.
    pub cycles: u64,
    /// Mean time between the cycles' downs, when timestamps say.
    pub period_secs: Option<f64>,
    pub first_line: u64,
    pub last_line: u64,
    /// The broker of the last cycle.
    pub broker: Option<String>,
    pub address: Option<SocketAddr>,
}

/// What the journal proves.
#[derive(Clone, Debug)]
pub struct JournalJudgement {
    pub findings: Vec<Finding>,
    /// The candidate verdicts (for a caller that weighs them with others,
    /// e.g. a capture's).
    pub candidates: Vec<Candidate>,
    pub timeline: Vec<TimelineEntry>,
    pub flapping: Option<Flapping>,
    /// The journal's verdict on its own.
    pub verdict: Verdict,
}

/// A finding whose evidence is journal line numbers (in `frames`; no
/// Wireshark filter).
fn finding(kind: FindingKind, severity: Severity, summary: String, lines: Vec<u64>) -> Finding {
    let mut f = Finding::new(kind, severity, summary, lines, None);
    f.filter = String::new();
    f
}

/// `line 12`, `lines 12, 40, 97`, `lines 12, 40, 97 and 20 more`.
fn lines_hint(lines: &[u64]) -> String {
    match lines {
        [] => String::new(),
        [one] => format!("line {one}"),
        _ => {
            let shown: Vec<String> = lines.iter().take(3).map(u64::to_string).collect();
            let more = lines.len().saturating_sub(3);
            if more > 0 {
                format!("lines {} and {more} more", shown.join(", "))
            } else {
                format!("lines {}", shown.join(", "))
            }
        }
    }
}

fn verdict(
    class: VerdictClass,
    confidence: Confidence,
    summary: String,
    steps: Vec<String>,
) -> Verdict {
    Verdict {
        class,
        hop: None,
        address: None,
        confidence,
        summary,
        next_steps: steps,
    }
}

fn at(e: &JournalEvent) -> String {
    match e.ts_ns {
        Some(ns) => crate::vocab::time::rfc3339_ns(ns),
        None => format!("line {}", e.line),
    }
}

fn broker_words(broker: &Option<String>, address: Option<SocketAddr>) -> String {
    match (broker, address) {
        (Some(b), Some(a)) => format!("{b} ({a})"),
        (Some(b), None) => b.clone(),
        (None, Some(a)) => a.to_string(),
        (None, None) => "the broker".into(),
    }
}

fn identity_steps() -> Vec<String> {
    vec![
        "Re-provision the connector: `sudo systemctl stop zpa-connector`; `sudo rm -f /opt/zscaler/var/instance_id.crypt /opt/zscaler/var/*.crypt`; write the provisioning key as one plain line `3|api.private.zscaler.com|KEY` to /opt/zscaler/var/provision_key (chmod 644); `sudo systemctl start zpa-connector`.".into(),
        "Its hardware fingerprint changed (a cloned VM, a new MAC address, a resized disk, a migration): never clone an enrolled connector, pin a static MAC, and delete the old connector entry in the admin portal.".into(),
    ]
}

fn enrollment_steps() -> Vec<String> {
    vec![
        "In the admin portal, check the provisioning key: # of Enrolled Connectors below Maximum # of Connectors (max usage), not expired, not deleted, bound to the intended App Connector Group; raise the maximum or create a new key.".into(),
        "Write the key with the service stopped: one plain line in /opt/zscaler/var/provision_key (chmod 644), straight quotes only (an editor or chat that makes them curly corrupts it), then `sudo systemctl start zpa-connector`.".into(),
    ]
}

fn dns_steps(names: &[String]) -> Vec<String> {
    let name = names.first().map_or("co2br.prod.zpath.net", String::as_str);
    vec![
        "Check that the connector's service user can read /etc/resolv.conf (`sudo -u zscaler cat /etc/resolv.conf`; chmod 644).".into(),
        format!("Check that its resolvers resolve the cloud's names: `dig {name}` and `dig co2br.prod.zpath.net` (or `pathproof check`)."),
    ]
}

fn clock_steps() -> Vec<String> {
    vec![super::host::clock_step()]
}

fn intercept_steps(issuer: Option<&str>) -> Vec<String> {
    vec![
        format!(
            "Exempt the connector's traffic to the brokers (*.zpath.net, *.zscaler.com, *.zscaler.net, *.zpatwo.net) from SSL inspection on the device whose CA {}: the connector pins its certificates.",
            issuer.map_or("re-signs them".to_string(), |i| format!("is \"{i}\""))
        ),
        "`pathproof check` on the connector shows the chain and places the hop.".into(),
    ]
}

fn tcp_steps(flapping: bool) -> Vec<String> {
    let mut s = vec![
        "Capture while it fails (`sudo tcpdump -i any -w output.pcap port 443`) and run `pathproof pcap output.pcap --journal journal.txt` on it with this journal (`journalctl -u zpa-connector -o short-precise > journal.txt`): it pairs each logged close with the packet that ended it, tells a drop from an injected reset or the broker's own refusal, and places the hop.".into(),
        "Check the firewalls on the way, and on the host (`sudo iptables -nvL`), for outbound TCP 443 to the brokers.".into(),
    ];
    if flapping {
        s.push("If the connector was deleted in the admin portal, the cloud ends each connection at once: re-provision it (stop the service, `rm -rf /opt/zscaler/var/*`, a new provisioning key, start).".into());
    }
    s
}

/// Judges a parsed journal: findings, candidates, timeline, flapping and
/// the journal's own verdict.
pub fn judge_journal(j: &Journal) -> JournalJudgement {
    use JournalEventKind as K;
    let mut findings = Vec::new();
    let mut candidates: Vec<Candidate> = Vec::new();

    let lines_of = |f: &dyn Fn(&JournalEvent) -> bool| -> Vec<u64> {
        j.events.iter().filter(|e| f(e)).map(|e| e.line).collect()
    };

    // Control connection: the up/down state machine.
    let is_up = |e: &JournalEvent| {
        matches!(
            e.kind,
            K::ControlConnected
                | K::ControlState {
                    connected: true,
                    ..
                }
        )
    };
    let is_down = |e: &JournalEvent| match &e.kind {
        K::ConnectionError | K::Backoff | K::NotConnected => true,
        K::ControlState { connected, .. } => !connected,
        K::ControlClosed { reason } => !reason.as_deref().is_some_and(|r| r.contains("REDIRECT")),
        _ => false,
    };
    let mut state: Option<bool> = None;
    let mut cycle_downs: Vec<&JournalEvent> = Vec::new();
    let mut last_up: Option<usize> = None;
    // The first up event of the current up run.
    let mut up_since: Option<usize> = None;
    let mut downs_after_last_up: Vec<u64> = Vec::new();
    let mut all_downs: Vec<u64> = Vec::new();
    for (i, e) in j.events.iter().enumerate() {
        if is_up(e) {
            if state != Some(true) {
                up_since = Some(i);
            }
            state = Some(true);
            last_up = Some(i);
            downs_after_last_up.clear();
        } else if matches!(&e.kind, K::Redirect)
            || matches!(&e.kind, K::ControlClosed { reason: Some(r) } if r.contains("REDIRECT"))
        {
            // A redirect ends the connection without a failure: the next
            // connect starts a new up run, and no cycle is counted.
            if state == Some(true) {
                state = None;
            }
        } else if is_down(e) {
            if state == Some(true) {
                cycle_downs.push(e);
            }
            state = Some(false);
            downs_after_last_up.push(e.line);
            all_downs.push(e.line);
        }
    }
    let ends_up = state == Some(true);
    let ever_up = last_up.is_some();
    let cycles = cycle_downs.len() as u64;
    let flapping = (cycles >= FLAP_MIN_CYCLES).then(|| {
        let ts: Vec<i64> = cycle_downs.iter().filter_map(|e| e.ts_ns).collect();
        let period_secs = (ts.len() >= 2).then(|| {
            (i128::from(ts[ts.len() - 1]) - i128::from(ts[0])) as f64 / 1e9 / (ts.len() - 1) as f64
        });
        let last = cycle_downs[cycle_downs.len() - 1];
        Flapping {
            cycles,
            period_secs,
            first_line: cycle_downs[0].line,
            last_line: last.line,
            broker: last.broker.clone(),
            address: last.address,
        }
    });
    // Whether a connection came up after a line.
    let up_after = |line: u64| j.events.iter().any(|e| e.line > line && is_up(e));

    // Identity.
    let identity = lines_of(&|e| matches!(e.kind, K::IdentityChanged));
    if !identity.is_empty() {
        let summary = format!(
            "The connector cannot decrypt its sealed identity (instance_id.crypt) ({}): its hardware fingerprint changed, so it cannot prove who it is to the cloud.",
            lines_hint(&identity)
        );
        findings.push(finding(
            FindingKind::IdentityChanged,
            Severity::Critical,
            summary.clone(),
            identity.clone(),
        ));
        candidates.push(Candidate::new(verdict(
            VerdictClass::IdentityChanged,
            Confidence::High,
            summary,
            identity_steps(),
        )));
    }

    // Clock: certificates not yet valid / expired, reported skew.
    let not_yet = lines_of(&|e| matches!(e.kind, K::CertNotYetValid));
    let expired = lines_of(&|e| matches!(e.kind, K::CertExpired));
    let mut clock_cause = false;
    if !not_yet.is_empty() || !expired.is_empty() {
        let mut parts = Vec::new();
        if !not_yet.is_empty() {
            parts.push(format!("not yet valid ({})", lines_hint(&not_yet)));
        }
        if !expired.is_empty() {
            parts.push(format!("expired ({})", lines_hint(&expired)));
        }
        let summary = format!(
            "The connector finds the cloud's certificate {}: its clock is wrong.",
            parts.join(" and ")
        );
        let lines: Vec<u64> = not_yet.iter().chain(&expired).copied().collect();
        findings.push(finding(
            FindingKind::ClockSkew,
            Severity::Critical,
            summary.clone(),
            lines,
        ));
        candidates.push(Candidate::new(verdict(
            VerdictClass::ClockSkew,
            Confidence::High,
            summary,
            clock_steps(),
        )));
        clock_cause = true;
    }
    let skews: Vec<(&JournalEvent, f64)> = j
        .events
        .iter()
        .filter_map(|e| match e.kind {
            K::TimeSkew { secs } => Some((e, secs)),
            _ => None,
        })
        .collect();
    if let Some((worst, secs)) = skews
        .iter()
        .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
        .copied()
    {
        let text = format!(
            "The connector reports a time skew of at most {} ({secs:+.3} s at line {}; {} reports)",
            human_duration(secs),
            worst.line,
            skews.len()
        );
        if secs.abs() > SKEW_THRESHOLD_SECS {
            let summary = format!("{text}: more than {SKEW_THRESHOLD_SECS} s, its clock is wrong.");
            findings.push(finding(
                FindingKind::ClockSkew,
                Severity::Critical,
                summary.clone(),
                vec![worst.line],
            ));
            candidates.push(Candidate::new(verdict(
                VerdictClass::ClockSkew,
                Confidence::High,
                summary,
                clock_steps(),
            )));
            clock_cause = true;
        } else {
            findings.push(finding(
                FindingKind::ConnectorTimeSkew,
                Severity::Info,
                format!("{text}."),
                vec![worst.line],
            ));
        }
    }

    // Interception.
    let untrusted: Vec<&JournalEvent> = j
        .events
        .iter()
        .filter(|e| matches!(e.kind, K::CertUntrusted { .. }))
        .collect();
    if let Some(first) = untrusted.first() {
        let issuer = untrusted.iter().find_map(|e| match &e.kind {
            K::CertUntrusted { issuer } => issuer.clone(),
            _ => None,
        });
        let lines: Vec<u64> = untrusted.iter().map(|e| e.line).collect();
        let summary = format!(
            "The connector rejects the certificate presented for {}: {} ({}). Something on the way re-signs the broker's certificate (SSL inspection).",
            broker_words(&first.broker, first.address),
            match &issuer {
                Some(i) => format!("issued by \"{i}\", not by Zscaler"),
                None => "its chain does not verify".to_string(),
            },
            lines_hint(&lines)
        );
        let mut f = finding(
            FindingKind::TlsIntercepted,
            Severity::Critical,
            summary.clone(),
            lines,
        );
        f.address = first.address.map(|a| a.ip());
        findings.push(f);
        candidates.push(
            Candidate::new(verdict(
                VerdictClass::TlsIntercepted,
                Confidence::High,
                summary,
                intercept_steps(issuer.as_deref()),
            ))
            .about(first.address.map(|a| a.ip())),
        );
    }

    // DNS.
    let dns: Vec<(&JournalEvent, &String)> = j
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            K::DnsFailed { name } => Some((e, name)),
            _ => None,
        })
        .collect();
    let mut dns_cause = false;
    if let Some((last, _)) = dns.last() {
        let mut names: Vec<String> = Vec::new();
        for (_, n) in &dns {
            if !names.contains(n) {
                names.push((*n).clone());
            }
        }
        let lines: Vec<u64> = dns.iter().map(|(e, _)| e.line).collect();
        if up_after(last.line) {
            findings.push(finding(
                FindingKind::DnsFailure,
                Severity::Warning,
                format!(
                    "DNS resolution of {} failed ({}), but the control connection came up after it.",
                    names.join(", "),
                    lines_hint(&lines)
                ),
                lines,
            ));
        } else {
            let summary = format!(
                "The connector cannot resolve {} ({}).",
                names.join(", "),
                lines_hint(&lines)
            );
            findings.push(finding(
                FindingKind::DnsFailure,
                Severity::Critical,
                summary.clone(),
                lines,
            ));
            candidates.push(Candidate::new(verdict(
                VerdictClass::DnsFailure,
                Confidence::High,
                summary,
                dns_steps(&names),
            )));
            dns_cause = true;
        }
    }
    let resolved: Vec<u64> = lines_of(&|e| matches!(e.kind, K::NameResolved { .. }));
    if !resolved.is_empty() {
        let mut names: Vec<&str> = Vec::new();
        let mut addrs = 0usize;
        for e in &j.events {
            if let K::NameResolved { name, addresses } = &e.kind {
                if !names.contains(&name.as_str()) {
                    names.push(name);
                }
                addrs += addresses.len();
            }
        }
        findings.push(finding(
            FindingKind::DnsLookup,
            Severity::Info,
            format!(
                "The connector resolved {} ({addrs} addresses; {}).",
                names.join(", "),
                lines_hint(&resolved)
            ),
            resolved,
        ));
    }

    // Enrollment.
    let enroll: Vec<(&JournalEvent, &EnrollmentReason)> = j
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            K::EnrollmentFailed { reason } => Some((e, reason)),
            _ => None,
        })
        .collect();
    let other_cause = clock_cause || dns_cause || !untrusted.is_empty() || !identity.is_empty();
    if let Some((last, _)) = enroll.last() {
        let lines: Vec<u64> = enroll.iter().map(|(e, _)| e.line).collect();
        let mut why: Vec<String> = Vec::new();
        for (_, r) in &enroll {
            let w = match r {
                EnrollmentReason::KeyAlreadyEnrolled => {
                    "the provisioning key has already been enrolled".to_string()
                }
                EnrollmentReason::KeyInvalid => {
                    "the provisioning key is invalid or expired".to_string()
                }
                EnrollmentReason::CsrRejected { status } => {
                    format!("the certificate request was refused (HTTP {status})")
                }
                EnrollmentReason::LoginRejected { status } => {
                    format!("the login was refused (HTTP {status})")
                }
                EnrollmentReason::Failed => "certificate enrollment failed".to_string(),
            };
            if !why.contains(&w) {
                why.push(w);
            }
        }
        let text = format!("Enrollment: {} ({})", why.join("; "), lines_hint(&lines));
        if other_cause {
            findings.push(finding(
                FindingKind::EnrollmentFailed,
                Severity::Warning,
                format!("{text}; explained by the failure above."),
                lines,
            ));
        } else if up_after(last.line) {
            findings.push(finding(
                FindingKind::EnrollmentFailed,
                Severity::Warning,
                format!("{text}; the control connection came up after it."),
                lines,
            ));
        } else {
            let summary = format!(
                "The cloud rejects the connector's enrollment: {}.",
                why.join("; ")
            );
            findings.push(finding(
                FindingKind::EnrollmentFailed,
                Severity::Critical,
                format!("{text}."),
                lines,
            ));
            candidates.push(Candidate::new(verdict(
                VerdictClass::EnrollmentFailed,
                Confidence::High,
                summary,
                enrollment_steps(),
            )));
        }
    }

    // Certificate expiry of the connector's own certificate.
    if let Some((e, secs)) = j.events.iter().rev().find_map(|e| match e.kind {
        K::CertExpiresIn { secs } => Some((e, secs)),
        _ => None,
    }) {
        let severity = if secs < 30 * 86_400 {
            Severity::Warning
        } else {
            Severity::Info
        };
        findings.push(finding(
            FindingKind::ConnectorCertExpiry,
            severity,
            format!(
                "The connector's certificate expires in {} (line {}).",
                human_duration(secs as f64),
                e.line
            ),
            vec![e.line],
        ));
    }

    // The control connection.
    let any_cause = !candidates.is_empty();
    let last_named = j
        .events
        .iter()
        .rev()
        .find(|e| (is_up(e) || is_down(e)) && (e.broker.is_some() || e.address.is_some()));
    let (broker, address) = last_named.map_or((None, None), |e| (e.broker.clone(), e.address));
    let words = broker_words(&broker, address);
    let mut control: Option<(Verdict, FindingKind)> = None;
    if let Some(f) = &flapping {
        let period = f.period_secs.map_or(String::new(), |p| {
            format!(", every {} on average", human_duration(p))
        });
        let summary = format!(
            "The control connection to {words} flaps: {} connect/close cycles{period} (lines {} to {}); the journal cannot tell who ends them.",
            f.cycles, f.first_line, f.last_line
        );
        control = Some((
            verdict(
                VerdictClass::TcpBlocked,
                Confidence::Low,
                summary,
                tcp_steps(true),
            ),
            FindingKind::ControlFlapping,
        ));
    } else if !ever_up && !all_downs.is_empty() {
        let summary = format!(
            "The control connection to {words} never came up: {} failures (errors, closes, backoff, not connected; {}).",
            all_downs.len(),
            lines_hint(&all_downs)
        );
        control = Some((
            verdict(
                VerdictClass::TcpBlocked,
                Confidence::Medium,
                summary,
                tcp_steps(false),
            ),
            FindingKind::ControlDown,
        ));
    } else if ever_up && !ends_up && !downs_after_last_up.is_empty() {
        let up = &j.events[last_up.unwrap_or(0)];
        let summary = format!(
            "The control connection to {words} was up until {} and then failed {} times without coming back ({}).",
            at(up),
            downs_after_last_up.len(),
            lines_hint(&downs_after_last_up)
        );
        control = Some((
            verdict(
                VerdictClass::TcpBlocked,
                Confidence::Low,
                summary,
                tcp_steps(false),
            ),
            FindingKind::ControlDown,
        ));
    }
    if let Some((v, kind)) = control {
        let lines = if kind == FindingKind::ControlFlapping {
            cycle_downs.iter().map(|e| e.line).collect()
        } else {
            downs_after_last_up.clone()
        };
        let lines = if lines.is_empty() {
            all_downs.clone()
        } else {
            lines
        };
        if any_cause {
            findings.push(finding(
                kind,
                Severity::Warning,
                format!("{} Explained by the failure above.", v.summary),
                lines,
            ));
        } else {
            let mut f = finding(kind, Severity::Critical, v.summary.clone(), lines);
            f.address = address.map(|a| a.ip());
            findings.push(f);
            candidates.push(Candidate::new(v).about(address.map(|a| a.ip())));
        }
    } else if ends_up {
        let up = &j.events[up_since.or(last_up).unwrap_or(0)];
        if !all_downs.is_empty() {
            findings.push(finding(
                FindingKind::ControlDown,
                Severity::Warning,
                format!(
                    "The control connection failed {} times before it came back ({}).",
                    all_downs.len(),
                    lines_hint(&all_downs)
                ),
                all_downs.clone(),
            ));
        }
        let summary = format!(
            "The control connection to {words} is up since {} (line {}) and stays up.",
            at(up),
            up.line
        );
        findings.push(finding(
            FindingKind::ControlUp,
            Severity::Info,
            summary.clone(),
            vec![up.line],
        ));
        candidates.push(
            Candidate::new(verdict(
                VerdictClass::Healthy,
                Confidence::Medium,
                summary,
                Vec::new(),
            ))
            .about(address.map(|a| a.ip())),
        );
    }

    let counts = j.counts;
    let verdict = pick(candidates.clone(), || {
        NoEvidence {
        summary: format!(
            "The journal shows no control connection and no failure pathproof knows ({} lines, {} recognised, {} unknown).",
            counts.lines, counts.recognised, counts.unknown
        ),
        next_steps: vec![
            "Dump the connector's journal over the time of the problem: `sudo journalctl -u zpa-connector --since \"YYYY-MM-DD HH:MM\" > journal.txt` (or `-o json`).".into(),
            "Run `pathproof check` on the connector.".into(),
        ],
    }
    });
    JournalJudgement {
        findings,
        candidates,
        timeline: timeline(j),
        flapping,
        verdict,
    }
}
