//! TLS rules: interception (a foreign issuer, or a peer that answers from a
//! hop before the broker's), ClientHellos answered by a reset or silence,
//! certificates outside their validity at the capture's time (clock skew).

use crate::analysis::flows::FlowRecord;
use crate::analysis::rst::RstEvidence;
use crate::analysis::tls::Side;
use crate::vocab::FindingKind;
use crate::vocab::HopEstimate;
use crate::vocab::time::human_duration;
use crate::vocab::{Confidence, Finding, Severity, Verdict, VerdictClass};
use std::collections::HashSet;
use std::net::IpAddr;

/// What the TLS rules need to know about the server beyond its flows.
pub(super) struct TlsContext<'a> {
    pub server: IpAddr,
    pub port: u16,
    /// Organisation the issuer must name (case-insensitive substring).
    pub expect_issuer: &'a str,
    /// The broker's hop: from the path, or from its ping replies.
    pub broker_hop: Option<u8>,
    /// Address of a hop (path, or ARP for hop 1) and the frame that shows it.
    pub hop_address: &'a dyn Fn(u8) -> (Option<IpAddr>, Option<u64>),
}

#[derive(Default)]
pub(super) struct TlsJudgement {
    pub findings: Vec<Finding>,
    pub verdict: Option<Verdict>,
    /// Resets that answer a ClientHello: judged here, not as TCP resets.
    pub blocking_rsts: HashSet<u64>,
    /// The verdict is `tls-blocked` by silence: no reset, FIN or alert
    /// answered the ClientHello (a black hole may explain it).
    pub silent: bool,
}

/// Client alerts that say the connector rejected the certificate.
const CERT_REJECTED: [u8; 4] = [42, 45, 46, 48];

pub(super) fn judge(
    flows: &[&FlowRecord],
    rsts: &[(RstEvidence, &FlowRecord)],
    ctx: &TlsContext<'_>,
) -> TlsJudgement {
    let mut j = TlsJudgement::default();
    let (server, port) = (ctx.server, ctx.port);
    let mut intercepted: Option<(Option<u8>, String, Confidence)> = None;
    let mut intercept_frames = Vec::new();
    let mut blocked: Option<(Option<u8>, String)> = None;
    let mut blocked_silent = false;
    let mut blocked_frames = Vec::new();
    let mut skew: Option<String> = None;
    let mut skew_frames = Vec::new();
    let mut seen_tls13_encrypted = false;
    let mut handshakes = Vec::new();

    for f in flows {
        let Some(obs) = f.tls_observation.as_deref() else {
            continue;
        };
        if obs.not_tls || obs.client_hello.is_none() {
            continue;
        }
        let peer_hop = f.syn_ack.map(|s| HopEstimate::from_ttl(s.ttl).hop);
        let peer_before_broker = match (peer_hop, ctx.broker_hop) {
            (Some(p), Some(b)) => p < b,
            _ => false,
        };
        let rejected_alert = obs.alerts.iter().find(|a| {
            a.from == Side::Client && a.description.is_some_and(|d| CERT_REJECTED.contains(&d))
        });

        // Interception: the issuer, or for TLS 1.3 the peer's hop plus a
        // rejected certificate.
        if let Some(leaf) = obs.certificates.first() {
            let expected = ctx.expect_issuer.to_lowercase();
            let genuine = obs.certificates.iter().any(|c| {
                c.issuer_orgs
                    .iter()
                    .any(|o| o.to_lowercase().contains(&expected))
            });
            if !genuine {
                let ca = leaf
                    .issuer_orgs
                    .first()
                    .cloned()
                    .or(leaf.issuer_cn.clone())
                    .unwrap_or_else(|| leaf.issuer.clone());
                let hop = peer_before_broker.then_some(peer_hop).flatten();
                let mut why = format!(
                    "the certificate for {} is issued by \"{}\" ({}), not {}",
                    leaf.subject_cn.as_deref().unwrap_or(&leaf.subject),
                    ca,
                    leaf.issuer,
                    ctx.expect_issuer
                );
                if let (Some(h), Some(b)) = (hop, ctx.broker_hop) {
                    why.push_str(&format!(
                        "; the TLS peer's SYN-ACK comes from hop {h} (TTL {}) while the broker is at hop {b}: the interceptor sits at hop {h}",
                        f.syn_ack.map_or(0, |s| s.ttl)
                    ));
                }
                if let Some(a) = rejected_alert {
                    why.push_str(&format!(
                        "; the connector rejected it (alert {})",
                        a.description_name.as_deref().unwrap_or("?")
                    ));
                }
                intercept_frames.extend(obs.certificate.map(|c| c.frame));
                intercept_frames.extend(f.syn_ack.map(|s| s.frame));
                intercept_frames.extend(rejected_alert.map(|a| a.frame));
                if intercepted.is_none() {
                    intercepted = Some((hop, why, Confidence::High));
                }
            } else {
                handshakes.push(format!(
                    "{} issued by {}",
                    leaf.subject_cn.as_deref().unwrap_or(&leaf.subject),
                    leaf.issuer_orgs.join(", ")
                ));
            }
        } else if obs.certificates_encrypted {
            seen_tls13_encrypted = true;
            let rejected = rejected_alert
                .map(|a| a.frame)
                .or(obs.likely_encrypted_alert.map(|a| a.frame));
            if let (Some(alert_frame), true) = (rejected, peer_before_broker) {
                intercept_frames.extend([alert_frame]);
                intercept_frames.extend(f.syn_ack.map(|s| s.frame));
                if intercepted.is_none() {
                    intercepted = Some((
                        peer_hop,
                        format!(
                            "TLS 1.3 hides the certificate, but the connector rejected it (frame {alert_frame}) and the TLS peer's SYN-ACK comes from hop {} (TTL {}) while the broker is at hop {}: a TLS proxy at hop {} terminates the connection",
                            peer_hop.unwrap_or(0),
                            f.syn_ack.map_or(0, |s| s.ttl),
                            ctx.broker_hop.unwrap_or(0),
                            peer_hop.unwrap_or(0)
                        ),
                        Confidence::Medium,
                    ));
                }
            }
        }

        // Clock: a certificate outside its validity at the capture's time
        // (the connector's clock stamped the capture).
        if let Some(cert_frame) = obs.certificate {
            let now = cert_frame.ts_ns.div_euclid(1_000_000_000);
            for c in obs.certificates.iter() {
                let text = if c.not_before > now {
                    Some(format!(
                        "the certificate \"{}\" is not yet valid at the capture's time: notBefore {} is {} after it; the connector's clock is behind",
                        c.subject_cn.as_deref().unwrap_or(&c.subject),
                        crate::vocab::time::rfc3339_ns(c.not_before.saturating_mul(1_000_000_000)),
                        human_duration((c.not_before - now) as f64)
                    ))
                } else if c.not_after < now {
                    Some(format!(
                        "the certificate \"{}\" expired {} before the capture's time (notAfter {}); the connector's clock is ahead, or the certificate is stale",
                        c.subject_cn.as_deref().unwrap_or(&c.subject),
                        human_duration((now - c.not_after) as f64),
                        crate::vocab::time::rfc3339_ns(c.not_after.saturating_mul(1_000_000_000))
                    ))
                } else {
                    None
                };
                if let Some(t) = text {
                    skew_frames.push(cert_frame.frame);
                    skew_frames.extend(rejected_alert.map(|a| a.frame));
                    skew.get_or_insert(t);
                }
            }
        }

        // Blocked: a ClientHello and no ServerHello, then a reset, a FIN or silence.
        let ch = obs.client_hello.as_ref().expect("checked above");
        if obs.server_hello.is_none() && obs.hello_retry_request.is_none() {
            let reset = rsts.iter().find(|(e, rf)| {
                std::ptr::eq(*rf, *f) && e.answers_frame.is_some_and(|a| a >= ch.frame)
            });
            let mut silent = false;
            let (hop, how) = if let Some((e, _)) = reset {
                j.blocking_rsts.insert(e.frame);
                blocked_frames.push(e.frame);
                (
                    Some(e.hop),
                    format!(
                        "the ClientHello (SNI {}) was answered by a reset with TTL {} (hop {}){}",
                        ch.sni.as_deref().unwrap_or("none"),
                        e.ttl,
                        e.hop,
                        match e.genuine_hop {
                            Some(g) if g > e.hop => format!(
                                ", while the server's own packets come from hop {g}: a device at hop {} filters on the ClientHello",
                                e.hop
                            ),
                            _ => String::new(),
                        }
                    ),
                )
            } else if let Some(fin) = f.server_fin {
                blocked_frames.push(fin);
                (
                    None,
                    format!(
                        "the ClientHello (SNI {}) was answered by a FIN without a ServerHello",
                        ch.sni.as_deref().unwrap_or("none")
                    ),
                )
            } else if f.client_fin.is_some()
                || f.rsts.iter().any(|r| !r.from_server)
                || obs.client_stream.retransmitted_bytes > 0
            {
                silent = true;
                (
                    None,
                    format!(
                        "the ClientHello (SNI {}) got no answer: the connection was given up without a ServerHello",
                        ch.sni.as_deref().unwrap_or("none")
                    ),
                )
            } else {
                continue;
            };
            blocked_frames.push(ch.frame);
            blocked_frames.extend(f.syn_ack.map(|s| s.frame));
            if blocked.is_none() {
                blocked = Some((hop, how));
                blocked_silent = silent;
            }
        }
        if let Some(s) = obs
            .server_hello
            .as_ref()
            .and_then(|s| s.downgrade_sentinel.map(|d| (s.frame, d)))
        {
            j.findings.push(Finding::new(
                FindingKind::TlsDowngrade,
                Severity::Warning,
                format!("the ServerHello from {server} carries the TLS 1.3 downgrade sentinel ({:?}): a device rewrote the ClientHello to an older version", s.1),
                vec![s.0],
                None,
            ));
        }
    }

    if let Some((hop, why, confidence)) = intercepted {
        let (address, arp) = hop.map_or((None, None), ctx.hop_address);
        intercept_frames.extend(arp);
        j.findings.push(
            Finding::new(
                FindingKind::TlsIntercepted,
                Severity::Critical,
                why.clone(),
                intercept_frames,
                None,
            )
            .at(hop, address),
        );
        j.verdict = Some(Verdict {
            class: VerdictClass::TlsIntercepted,
            hop,
            address,
            confidence,
            summary: format!(
                "TLS to {server}:{port} is intercepted{}: {why}.",
                match (hop, address) {
                    (Some(h), Some(a)) => format!(" at hop {h} ({a})"),
                    (Some(h), None) => format!(" at hop {h}"),
                    _ => String::new(),
                }
            ),
            next_steps: vec![format!(
                "Exempt the broker traffic (TCP {port} to the cloud's broker ranges) from SSL inspection on the interceptor; the connector pins the broker's certificate and cannot work through it."
            )],
        });
    } else if let Some((hop, how)) = blocked {
        j.silent = blocked_silent;
        let (address, arp) = hop.map_or((None, None), ctx.hop_address);
        blocked_frames.extend(arp);
        j.findings.push(
            Finding::new(
                FindingKind::TlsBlocked,
                Severity::Critical,
                format!("TCP to {server}:{port} completes, but {how}"),
                blocked_frames,
                None,
            )
            .at(hop, address),
        );
        j.verdict = Some(Verdict {
            class: VerdictClass::TlsBlocked,
            hop,
            address,
            confidence: if hop.is_some() { Confidence::High } else { Confidence::Medium },
            summary: format!("TLS to {server}:{port} is blocked{}: TCP completes, but {how}.", match (hop, address) {
                (Some(h), Some(a)) => format!(" at hop {h} ({a})"),
                (Some(h), None) => format!(" at hop {h}"),
                _ => String::new(),
            }),
            next_steps: vec![
                "An application-layer filter (SNI or TLS inspection policy) rejects the broker's name: allow it on that device.".into(),
            ],
        });
    } else if let Some(text) = skew {
        j.findings.push(Finding::new(
            FindingKind::ClockSkew,
            Severity::Critical,
            text.clone(),
            skew_frames,
            None,
        ));
        j.verdict = Some(Verdict {
            class: VerdictClass::ClockSkew,
            hop: None,
            address: None,
            confidence: Confidence::High,
            summary: format!("The connector's clock is wrong: {text}."),
            next_steps: vec!["Synchronise the connector's clock (chronyd/ntpd to a reachable NTP server) and restart the connector service.".into()],
        });
    }
    if seen_tls13_encrypted {
        j.findings.push(Finding::new(
            FindingKind::Tls13Encrypted,
            Severity::Info,
            format!("TLS 1.3 to {server}: the certificates are encrypted in the capture; interception is judged from the TLS peer's hop and the connector's alerts"),
            Vec::new(),
            None,
        ));
    }
    if !handshakes.is_empty() && j.verdict.is_none() {
        j.findings.push(Finding::new(
            FindingKind::TlsHandshake,
            Severity::Info,
            format!("TLS to {server}:{port}: {}", handshakes[0]),
            Vec::new(),
            None,
        ));
    }
    j
}
