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
            candidates.push(prove(
                FindingKind::ClockSkew,
                format!("TLS to {shown}: {p} by the local clock."),
                (None, addr),
                vec![super::host::clock_step()],
                out,
            ));
        }
        // The one issuer rule, in its own words.
        let issuer = issuer::judge(&t.certificates, t.chain_len, expect)
            .and_then(|j| Some((j.explain(&t.certificates, expect)?, j)));
        let foreign = matches!(issuer, Some((_, IssuerJudgement::Foreign { .. })));
        if let Some((why, IssuerJudgement::Foreign { .. })) = &issuer {
            candidates.push(prove(
                FindingKind::TlsIntercepted,
                format!(
                    "TLS to {shown}: {why}: SSL inspection re-signs the broker's certificate (the connector pins its chain and fails)."
                ),
                (None, addr),
                vec!["Exempt the Zscaler broker names (co2br.*, *.zpath.net, *.zscaler.net) from SSL inspection.".into()],
                out,
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
            candidates.push(
                prove(
                    FindingKind::TlsBlocked,
                    text,
                    (hop, None),
                    vec!["Allow the broker SNI through the application-layer filter at the named hop (URL/SNI category rules).".into()],
                    out,
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
                ConnectResult::Timeout => candidates.push(prove(
                    FindingKind::TcpBlocked,
                    format!(
                        "TCP to {shown}:{port}: the SYNs were not answered (connect timed out); without raw sockets the hop that drops them cannot be named."
                    ),
                    (None, addr),
                    vec![],
                    out,
                )),
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
                    summary: "The TLS handshake with the broker completed with the expected issuer; without raw sockets nothing was recorded, so no reset or drop on the path was examined (the report lists what was not done).".into(),
                    next_steps: vec!["Run as root (or give the binary cap_net_raw) for the TCP trace, the recording and the reset analysis.".into()],
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
    let mss = p.largest_passing.map(|l| {
        l.saturating_sub(if addr.is_some_and(|a| a.is_ipv6()) {
            60
        } else {
            40
        })
    });
    Some(
        prove(
            FindingKind::PmtuBlackhole,
            p.summary.clone(),
            (p.blackhole_after_hop, p.blackhole_after_address),
            vec![format!(
                "Let ICMP fragmentation-needed (type 3 code 4) through at the named hop, or clamp the TCP MSS on the narrow link{}.",
                mss.map(|m| format!(" to {m}")).unwrap_or_default()
            )],
            out,
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

/// A critical finding without frames (the probes' own result) and the
/// candidate verdict of its kind's class, at `(hop, address)`.
fn prove(
    kind: FindingKind,
    text: String,
    (hop, address): (Option<u8>, Option<IpAddr>),
    next_steps: Vec<String>,
    out: &mut Vec<Finding>,
) -> Candidate {
    out.push(Finding::new(kind, Severity::Critical, text.clone(), vec![], None).at(hop, address));
    candidate(
        kind.class().unwrap_or(VerdictClass::Inconclusive),
        hop,
        address,
        text,
        next_steps,
    )
}
