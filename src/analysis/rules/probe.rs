//! What the live probes of one broker showed (`check`): the TLS handshake
//! as the prober saw it, its TCP connect, and the path-MTU search. With a
//! recording, the packets of the same probes are analysed as a capture too;
//! the picker keeps the capture's candidates ahead of these at equal rank
//! (they carry frames).

use crate::analysis::observe::{BrokerObservation, ConnectResult, HelloAnswer, PmtuObservation};
use crate::analysis::picker::{Basis, Candidate};
use crate::analysis::rules::issuer::{self, IssuerExpectation, IssuerJudgement};
use crate::analysis::rules::validity::validity_at;
use crate::vocab::{Confidence, Finding, FindingKind, Severity, Verdict, VerdictClass};
use std::net::IpAddr;

/// Findings and candidates of one broker's probes. `recorded`: the probes'
/// packets were recorded (then TCP outcomes are judged from them, with the
/// resets' TTLs, not from connect()).
pub fn broker(
    b: &BrokerObservation,
    recorded: bool,
    expect: &IssuerExpectation<'_>,
    now_unix: i64,
    out: &mut Vec<Finding>,
) -> Vec<Candidate> {
    let mut candidates = Vec::new();
    let addr = b.address;
    let shown = addr.map_or_else(|| "the broker".to_string(), |a| a.to_string());
    let port = b.port;
    if let Some(t) = &b.tls {
        for p in validity_at(&t.certificates, now_unix) {
            let text = format!("TLS to {shown}: {p} by the local clock.");
            out.push(
                Finding::new(
                    FindingKind::ClockSkew,
                    Severity::Critical,
                    text.clone(),
                    vec![],
                    None,
                )
                .at(None, addr),
            );
            candidates.push(candidate(
                VerdictClass::ClockSkew,
                None,
                addr,
                text,
                vec![super::host::clock_step()],
            ));
        }
        // The one issuer rule, in its own words.
        let issuer = issuer::judge(&t.certificates, t.chain_len, expect)
            .and_then(|j| Some((j.explain(&t.certificates, expect)?, j)));
        let foreign = matches!(issuer, Some((_, IssuerJudgement::Foreign { .. })));
        if let Some((why, IssuerJudgement::Foreign { .. })) = &issuer {
            let text = format!(
                "TLS to {shown}: {why}: SSL inspection re-signs the broker's certificate (the connector pins its chain and fails)."
            );
            out.push(
                Finding::new(
                    FindingKind::TlsIntercepted,
                    Severity::Critical,
                    text.clone(),
                    vec![],
                    None,
                )
                .at(None, addr),
            );
            candidates.push(candidate(
                VerdictClass::TlsIntercepted,
                None,
                addr,
                text,
                vec!["Exempt the Zscaler broker names (co2br.*, *.zpath.net, *.zscaler.net) from SSL inspection.".into()],
            ));
        }
        // A chain the rule could neither pass nor fail (a self-signed leaf
        // claiming the broker's organisation): not healthy, and not proof
        // of interception either.
        if let Some((
            why,
            IssuerJudgement::SelfSignedClaim { .. } | IssuerJudgement::Unverifiable { .. },
        )) = &issuer
        {
            let text = format!("TLS to {shown}: {why}.");
            out.push(
                Finding::new(
                    FindingKind::TlsIssuerUnverified,
                    Severity::Warning,
                    text.clone(),
                    vec![],
                    None,
                )
                .at(None, addr),
            );
            candidates.push(Candidate::new(Verdict {
                class: VerdictClass::Inconclusive,
                hop: None,
                address: addr,
                confidence: Confidence::Low,
                summary: text,
                next_steps: vec![
                    "Run again with --expect-ca FILE, FILE holding the broker's CA certificate(s) in PEM: the chain is then verified, not just named.".into(),
                ],
            }));
        }
        if let Some((answer, words)) = &t.hello_answer {
            let mut text = format!(
                "TLS to {shown}: TCP completes, then the ClientHello{} is answered by {words}.",
                t.sni
                    .as_ref()
                    .map(|s| format!(" (SNI {s})"))
                    .unwrap_or_default(),
            );
            let hop = t.replay.as_ref().and_then(|r| r.1);
            if let Some((summary, _)) = &t.replay {
                text.push(' ');
                text.push_str(summary);
            }
            out.push(
                Finding::new(
                    FindingKind::TlsBlocked,
                    Severity::Critical,
                    text.clone(),
                    vec![],
                    None,
                )
                .at(hop, None),
            );
            candidates.push(
                candidate(
                    VerdictClass::TlsBlocked,
                    hop,
                    None,
                    text,
                    vec!["Allow the broker SNI through the application-layer filter at the named hop (URL/SNI category rules).".into()],
                )
                .basis(if *answer == HelloAnswer::Silence {
                    Basis::TlsSilence
                } else {
                    Basis::Evidence
                })
                .about(addr),
            );
        }
        out.push(
            Finding::new(
                FindingKind::TlsHandshake,
                Severity::Info,
                t.summary.clone(),
                vec![],
                None,
            )
            .at(None, addr),
        );
        // Without a recording the connect result is all there is about
        // TCP: a timeout is still a block; a refusal cannot be placed (the
        // reset's TTL is not visible to connect()), so it is no verdict.
        if !recorded {
            match t.connect {
                ConnectResult::Timeout => {
                    let text = format!(
                        "TCP to {shown}:{port}: the SYNs were not answered (connect timed out); without raw sockets the hop that drops them cannot be named."
                    );
                    out.push(
                        Finding::new(FindingKind::TcpBlocked, Severity::Critical, text.clone(), vec![], None)
                            .at(None, addr),
                    );
                    candidates.push(candidate(VerdictClass::TcpBlocked, None, addr, text, vec![]));
                }
                ConnectResult::Refused => out.push(
                    Finding::new(
                        FindingKind::TcpRefused,
                        Severity::Warning,
                        format!(
                            "TCP to {shown}:{port} was refused by a reset; whether the broker or a device on the way sent it needs the reset's TTL: run as root (or with cap_net_raw) to record it."
                        ),
                        vec![],
                        None,
                    )
                    .at(None, addr),
                ),
                ConnectResult::Connected | ConnectResult::Failed => {}
            }
            if t.completed
                && matches!(issuer, Some((_, IssuerJudgement::Genuine { .. })) | None)
                && !foreign
            {
                candidates.push(Candidate::new(Verdict {
                    class: VerdictClass::Healthy,
                    hop: None,
                    address: None,
                    confidence: Confidence::Low,
                    summary: "The TLS handshake with the broker completed with the expected issuer; without packet recording (no privilege) the path itself was not examined.".into(),
                    next_steps: vec!["Run as root for traces, reset analysis and path MTU.".into()],
                }));
            }
        }
    }
    if let Some(p) = &b.pmtu {
        candidates.extend(pmtu(p, addr, out));
    }
    for e in &b.errors {
        out.push(
            Finding::new(
                FindingKind::ProbeError,
                Severity::Warning,
                format!("{shown}: {e}"),
                vec![],
                None,
            )
            .at(None, addr),
        );
    }
    candidates
}

/// The path-MTU search: a black hole placed after the last hop the large
/// probes reach, or an MTU reported by a hop (information).
fn pmtu(p: &PmtuObservation, addr: Option<IpAddr>, out: &mut Vec<Finding>) -> Option<Candidate> {
    if !p.blackhole {
        if p.reported_mtu.is_some() {
            out.push(
                Finding::new(
                    FindingKind::PathMtu,
                    Severity::Info,
                    p.summary.clone(),
                    vec![],
                    None,
                )
                .at(p.reported_hop, p.reported_by),
            );
        }
        return None;
    }
    out.push(
        Finding::new(
            FindingKind::PmtuBlackhole,
            Severity::Critical,
            p.summary.clone(),
            vec![],
            None,
        )
        .at(p.blackhole_after_hop, p.blackhole_after_address),
    );
    let mss = p.largest_passing.map(|l| {
        l.saturating_sub(if addr.is_some_and(|a| a.is_ipv6()) {
            60
        } else {
            40
        })
    });
    Some(
        candidate(
            VerdictClass::PmtuBlackhole,
            p.blackhole_after_hop,
            p.blackhole_after_address,
            p.summary.clone(),
            vec![format!(
                "Let ICMP fragmentation-needed (type 3 code 4) through at the named hop, or clamp the TCP MSS on the narrow link{}.",
                mss.map(|m| format!(" to {m}")).unwrap_or_default()
            )],
        )
        .about(addr),
    )
}

fn candidate(
    class: VerdictClass,
    hop: Option<u8>,
    address: Option<IpAddr>,
    summary: String,
    next_steps: Vec<String>,
) -> Candidate {
    Candidate::new(Verdict {
        class,
        hop,
        address,
        confidence: Confidence::Medium,
        summary,
        next_steps,
    })
}
