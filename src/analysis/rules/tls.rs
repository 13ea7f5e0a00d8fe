//! TLS rules: interception (a foreign issuer, or a peer that answers from a
//! hop before the broker's), ClientHellos answered by a reset or silence,
//! certificates outside their validity at the capture's time (clock skew).
//! Who issued a chain and whether its certificates are valid are the rules
//! of [`super::issuer`] and [`super::validity`], shared with
//! `check`; this module says what they mean for a capture's flows.

use super::issuer::{self, IssuerExpectation, IssuerJudgement};
use super::server_alert::{self, AlertOrigin, ServerAlert};
use super::ttl_probe::ProbePlacement;
use super::validity::{ValidityProblem, validity_at};
use crate::analysis::flows::{FlowRecord, RstAcks, SegmentKind, TcpStage};
use crate::analysis::rst::{RstEvidence, RstOrigin};
use crate::analysis::tls::{CertSummary, Side};
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
    /// What the chain's issuer must be (by name, or a pinned CA).
    pub issuer: IssuerExpectation<'a>,
    /// The broker's hop: from the path, or from its ping replies.
    pub broker_hop: Option<u8>,
    /// Address of a hop (path, or ARP for hop 1) and the frame that shows it.
    pub hop_address: &'a dyn Fn(u8) -> (Option<IpAddr>, Option<u64>),
    /// Where the capture's TTL-limited probes place a filter.
    pub probes: Option<&'a ProbePlacement>,
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

/// Distinct chains whose judgement is remembered per server (beyond, they
/// are judged again: a capture shows one or two chains per server).
const MAX_JUDGED_CHAINS: usize = 64;

/// Client alerts that say the connector rejected the certificate.
const CERT_REJECTED: [u8; 4] = [42, 45, 46, 48];

/// Where TLS went, for the findings: `to 198.18.4.2:443`, or through an
/// explicit proxy `via proxy 10.0.0.1:3128, CONNECT broker:443`.
fn tls_to(f: &FlowRecord, server: IpAddr, port: u16) -> String {
    match f.tunnel() {
        Some(t) => format!("via proxy {}, CONNECT {}", f.server, t.target),
        None => format!("to {server}:{port}"),
    }
}

/// The server refused the offer with a fatal alert (the first such flow).
struct Refusal {
    text: String,
    advice: String,
    frames: Vec<u64>,
    /// The server's hop, when the alert's TTL was compared with it.
    hop: Option<u8>,
    /// The server's address is the refusing end (not through a tunnel).
    address: bool,
    confidence: Confidence,
}

impl Refusal {
    fn of(a: &ServerAlert<'_>, sni: Option<&str>, tunnel: bool, to: String) -> Refusal {
        let (meaning, advice) = server_alert::refusal_advice(a.alert, sni);
        let offer = sni.map_or_else(|| "without SNI".to_string(), |s| format!("SNI {s}"));
        let ip_id = a
            .alert
            .ip_id
            .map(|id| format!(", IP ID {id}"))
            .unwrap_or_default();
        let compared = matches!(a.origin, AlertOrigin::Server { compared: true });
        let origin = if tunnel {
            " through the proxy's tunnel (its TTL is the proxy's: the tunnel's far end refused)"
                .to_string()
        } else if compared {
            format!(
                " with TTL {} (hop {}{ip_id}), in line with the server's SYN-ACK (TTL {}, hop {}): the server's own answer",
                a.ttl.unwrap_or(0),
                a.hop.unwrap_or(0),
                a.server_ttl.unwrap_or(0),
                a.server_hop.unwrap_or(0)
            )
        } else {
            format!(
                "{}; no SYN-ACK in the capture to compare its TTL with",
                a.ttl
                    .map(|t| format!(" with TTL {t}{ip_id}"))
                    .unwrap_or_default()
            )
        };
        Refusal {
            text: format!(
                "TLS {to} is refused by the server: it answered the ClientHello ({offer}) with the fatal alert {} (frame {}){origin}; {meaning}",
                server_alert::alert_label(a.alert),
                a.alert.frame
            ),
            advice,
            frames: Vec::new(),
            hop: (compared && !tunnel).then_some(a.server_hop).flatten(),
            address: !tunnel,
            confidence: if compared || tunnel {
                Confidence::High
            } else {
                Confidence::Medium
            },
        }
    }
}

pub(super) fn judge(
    flows: &[&FlowRecord],
    rsts: &[(RstEvidence, &FlowRecord)],
    ctx: &TlsContext<'_>,
) -> TlsJudgement {
    let mut j = TlsJudgement::default();
    let (server, port) = (ctx.server, ctx.port);
    // Hop, why, confidence, what TLS went to, and for a tunnel the CONNECT
    // target's port and the proxy's address.
    #[allow(clippy::type_complexity)]
    let mut intercepted: Option<(
        Option<u8>,
        String,
        Confidence,
        String,
        Option<(u16, IpAddr)>,
    )> = None;
    let mut intercept_frames = Vec::new();
    let mut blocked: Option<(Option<u8>, String, String)> = None;
    let mut refused: Option<Refusal> = None;
    let mut blocked_silent = false;
    let mut blocked_sni = false;
    let mut blocked_frames = Vec::new();
    let mut skew: Option<String> = None;
    let mut skew_frames = Vec::new();
    let mut seen_tls13_encrypted = false;
    let mut handshakes = Vec::new();
    let mut unverified: Option<(String, Vec<u64>)> = None;
    // ClientHello frame, ServerHello frame, sentinel, where TLS went.
    let mut downgrades: Vec<(u64, u64, _, String)> = Vec::new();
    // Judgements per distinct chain: connections to one server share the
    // decoded chain, and the pinned check verifies signatures.
    let mut judged: Vec<(*const CertSummary, usize, Option<IssuerJudgement>)> = Vec::new();
    // Each flow's resets, in their order, found once: looking through every
    // reset for each flow made this quadratic in the kept flows (a tenth
    // of the run's serial end on the 2 GB real-traffic capture).
    let mut rsts_of: rustc_hash::FxHashMap<*const FlowRecord, Vec<&RstEvidence>> =
        rustc_hash::FxHashMap::default();
    for (e, rf) in rsts {
        rsts_of.entry(std::ptr::from_ref(*rf)).or_default().push(e);
    }

    for f in flows {
        let Some(obs) = f.tls_observation.as_deref() else {
            continue;
        };
        if obs.not_tls || obs.client_hello.is_none() {
            continue;
        }
        let peer_hop = f.syn_ack.map(|s| HopEstimate::from_ttl(s.ttl).hop);
        let tunnel = f.tunnel();
        let to = tls_to(f, server, port);
        // Through an explicit proxy the TCP peer is always the proxy: its
        // hop says nothing about who terminates the tunnel's TLS.
        let peer_before_broker = match (peer_hop, ctx.broker_hop) {
            (Some(p), Some(b)) => p < b && tunnel.is_none(),
            _ => false,
        };
        let rejected_alert = obs.alerts.iter().find(|a| {
            a.from == Side::Client && a.description.is_some_and(|d| CERT_REJECTED.contains(&d))
        });

        // Interception: the issuer, or for TLS 1.3 the peer's hop plus a
        // rejected certificate.
        if let Some(leaf) = obs.certificates.first() {
            let chain = &obs.certificates[..];
            let key = (chain.as_ptr(), chain.len());
            let judgement = match judged.iter().find(|(p, n, _)| (*p, *n) == key) {
                Some((_, _, j)) => j.clone(),
                None => {
                    let j = issuer::judge(chain, obs.certificates_total, &ctx.issuer);
                    if judged.len() < MAX_JUDGED_CHAINS {
                        judged.push((key.0, key.1, j.clone()));
                    }
                    j
                }
            };
            let explained = judgement
                .as_ref()
                .and_then(|j| j.explain(chain, &ctx.issuer));
            match (&judgement, explained) {
                (Some(IssuerJudgement::Foreign { .. }), Some(mut why)) => {
                    // Through a proxy, the proxy is the device to name: it
                    // re-signs, or lets a device behind it do so.
                    let hop = if tunnel.is_some() {
                        peer_hop
                    } else {
                        peer_before_broker.then_some(peer_hop).flatten()
                    };
                    if tunnel.is_some() {
                        why.push_str(&format!(
                            "; the TLS runs through the explicit proxy {}{} (CONNECT {}): the proxy, or a device behind it, re-signs the broker's certificate",
                            f.server,
                            hop.map(|h| format!(" at hop {h}")).unwrap_or_default(),
                            tunnel.map_or("", |t| t.target.as_str())
                        ));
                    } else if let (Some(h), Some(b)) = (hop, ctx.broker_hop) {
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
                    // Through a proxy: the CONNECT and its 200 show where the TLS runs.
                    if let Some(t) = tunnel {
                        intercept_frames.push(t.request_frame);
                        intercept_frames.extend(t.answer.as_ref().map(|a| a.frame));
                    }
                    if intercepted.is_none() {
                        intercepted = Some((
                            hop,
                            why,
                            Confidence::High,
                            to.clone(),
                            tunnel.map(|t| (t.port, f.server.ip())),
                        ));
                    }
                }
                (Some(j @ IssuerJudgement::Genuine { .. }), _) => {
                    handshakes.push(format!(
                        "{to}: {} issued by {} ({})",
                        leaf.subject_cn.as_deref().unwrap_or(&leaf.subject),
                        leaf.issuer_orgs.join(", "),
                        match j.check() {
                            issuer::IssuerCheck::ByName => "issuer checked by name only",
                            issuer::IssuerCheck::PinnedCa => "chain verified up to the pinned CA",
                        }
                    ));
                }
                (_, Some(why)) => {
                    // Neither genuine nor provably foreign.
                    let u = unverified.get_or_insert_with(|| (format!("{to}: {why}"), Vec::new()));
                    u.1.extend(obs.certificate.map(|c| c.frame));
                    u.1.extend(rejected_alert.map(|a| a.frame));
                }
                _ => {}
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
                        to.clone(),
                        None,
                    ));
                }
            }
        }

        // Clock: a certificate outside its validity at the capture's time
        // (the connector's clock stamped the capture).
        if let Some(cert_frame) = obs.certificate {
            let now = cert_frame.ts_ns.div_euclid(1_000_000_000);
            for p in validity_at(&obs.certificates, now) {
                let text = match p {
                    ValidityProblem::NotYetValid {
                        subject,
                        by_s,
                        not_before,
                        ..
                    } => format!(
                        "the certificate \"{subject}\" is not yet valid at the capture's time: notBefore {} is {} after it; the connector's clock is behind",
                        crate::vocab::time::rfc3339_ns(not_before.saturating_mul(1_000_000_000)),
                        human_duration(by_s as f64)
                    ),
                    ValidityProblem::Expired {
                        subject,
                        ago_s,
                        not_after,
                        ..
                    } => format!(
                        "the certificate \"{subject}\" expired {} before the capture's time (notAfter {}); the connector's clock is ahead, or the certificate is stale",
                        human_duration(ago_s as f64),
                        crate::vocab::time::rfc3339_ns(not_after.saturating_mul(1_000_000_000))
                    ),
                };
                skew_frames.push(cert_frame.frame);
                skew_frames.extend(rejected_alert.map(|a| a.frame));
                skew.get_or_insert(text);
            }
        }

        // A fatal alert from the server's side: the server refusing the
        // offer when it comes from the server's hop (or through a proxy's
        // tunnel, whose far end the TTLs cannot place).
        let ch = obs.client_hello.as_ref().expect("checked above");
        let alert = server_alert::server_alert(f, obs);
        // An alert from a hop before the server's packets, or from a TCP
        // peer before the broker's hop (a device that terminates TCP and
        // refuses in the broker's name): a device's answer, not the
        // broker's. Through a tunnel neither can be told.
        let alert_before_server = match alert.map(|a| (a.origin, a)) {
            _ if tunnel.is_some() => None,
            Some((AlertOrigin::BeforeServer { hop, server_hop }, a)) => Some((
                hop,
                format!(
                    "while the server's own packets come from hop {server_hop} (TTL {})",
                    a.server_ttl.unwrap_or(0)
                ),
            )),
            Some((AlertOrigin::Server { .. }, a)) if peer_before_broker => {
                peer_hop.zip(ctx.broker_hop).map(|(h, b)| {
                    (
                        h,
                        format!(
                            "as the TLS peer's SYN-ACK (TTL {}), while the broker is at hop {b}",
                            a.server_ttl.unwrap_or(0)
                        ),
                    )
                })
            }
            _ => None,
        };
        if let Some(a) = alert
            && alert_before_server.is_none()
        {
            let mut frames = vec![ch.frame, a.alert.frame];
            frames.extend(f.syn_ack.map(|s| s.frame));
            if refused.is_none() {
                refused = Some(Refusal::of(
                    &a,
                    ch.sni.as_deref(),
                    tunnel.is_some(),
                    to.clone(),
                ));
            }
            if let Some(r) = refused.as_mut() {
                r.frames.extend(frames);
            }
            continue;
        }

        // Blocked: a ClientHello and no ServerHello, then a reset, a FIN,
        // an alert from a hop before the server's, or silence — on a
        // connection whose handshake completed (or that the capture joined
        // mid-stream with the server talking). A ClientHello first sent with
        // a lower TTL than the connector's usual (a probe) that the server
        // never acknowledged says nothing by a FIN or silence. (The server's
        // acknowledgment must cover the ClientHello's bytes: a measurement's
        // kernel, which never sent them, closes with a FIN right after the
        // SYN, and the server acknowledges only that FIN.)
        let tcp_completed = f.syn_ack.is_some() || (f.syn.is_none() && f.server_payload > 0);
        let only_probes = f
            .probes
            .iter()
            .find(|p| p.frame == ch.frame)
            .is_some_and(|p| !f.server_acked_up_to(p.seq.wrapping_add(p.len)));
        if obs.server_hello.is_none() && obs.hello_retry_request.is_none() && tcp_completed {
            // A reset answers the ClientHello only before any FIN and
            // without acknowledging the FIN: a reset that answers the close
            // is judged by the TCP rules.
            let answering: Vec<&RstEvidence> = rsts_of
                .get(&std::ptr::from_ref(*f))
                .into_iter()
                .flatten()
                .copied()
                .filter(|e| {
                    e.answers_frame.is_some_and(|a| a >= ch.frame)
                        && e.answers != Some(SegmentKind::Fin)
                        && e.acks != RstAcks::Fin
                        && !matches!(e.stage, TcpStage::Closing | TcpStage::Closed)
                })
                .collect();
            let mut silent = false;
            let sni = ch
                .sni
                .as_deref()
                .map_or_else(|| "without SNI".to_string(), |s| format!("SNI {s}"));
            let (hop, how) = if let (Some((hop, baseline)), Some(a)) = (&alert_before_server, alert)
            {
                blocked_frames.push(a.alert.frame);
                (
                    Some(*hop),
                    format!(
                        "the ClientHello ({sni}) was answered by a fatal alert {} with TTL {} (hop {hop}) {baseline}: a device at hop {hop} answers in the server's name",
                        server_alert::alert_label(a.alert),
                        a.ttl.unwrap_or(0),
                    ),
                )
            } else if let Some(e) = answering.first().copied() {
                // Every copy of the reset is evidence (a burst of three is three).
                for r in &answering {
                    j.blocking_rsts.insert(r.frame);
                    blocked_frames.push(r.frame);
                }
                let mut ttls: Vec<String> = answering.iter().map(|r| r.ttl.to_string()).collect();
                ttls.dedup();
                let resets = match answering.len() {
                    1 => "a reset".to_string(),
                    n => format!("{n} resets"),
                };
                let mut probe = e
                    .answers_probe_ttl
                    .map(|t| format!(" sent with TTL {t}"))
                    .unwrap_or_default();
                // The probes that place it: the copy that reached the
                // device, and the one before it that expired at a router.
                if let Some(p) = ctx.probes.filter(|p| Some(p.hop) == e.placed_hop) {
                    blocked_frames.push(p.probe_frame);
                    if let Some((ttl, frame, addr)) = p.below {
                        blocked_frames.push(frame);
                        probe.push_str(&format!(
                            " (the copy with TTL {ttl} expired at {addr}, frame {frame})"
                        ));
                    }
                }
                (
                    e.placed_hop.filter(|_| e.origin != RstOrigin::Target),
                    format!(
                        "the ClientHello ({sni}){probe} was answered by {resets} with TTL {}{}",
                        ttls.join(", "),
                        match (e.origin, e.placed_hop, e.genuine_hop) {
                            (RstOrigin::Injected, Some(h), _) if e.answers_probe_ttl.is_some() =>
                                format!(
                                    ": the copies sent with a lower TTL were not, so a device at hop {h} filters on the ClientHello"
                                ),
                            (RstOrigin::Injected, Some(h), Some(g)) if g > h => format!(
                                " (hop {h}), while the server's own packets come from hop {g}: a device at hop {h} filters on the ClientHello"
                            ),
                            (RstOrigin::Injected, None, _) => format!(
                                ", forged, placing no hop ({})",
                                e.reasons.last().cloned().unwrap_or_default()
                            ),
                            (_, Some(h), _) => format!(" (hop {h})"),
                            (_, None, _) =>
                                format!(" (hop {} if its initial TTL is {})", e.hop, e.initial_ttl),
                        }
                    ),
                )
            } else if let Some(fin) = f.server_fin.filter(|_| !only_probes) {
                blocked_frames.push(fin);
                (
                    None,
                    format!("the ClientHello ({sni}) was answered by a FIN without a ServerHello"),
                )
            } else if !only_probes
                && (f.client_fin.is_some()
                    || f.rsts.iter().any(|r| !r.from_server)
                    || obs.client_stream.retransmitted_bytes > 0)
            {
                silent = true;
                (
                    None,
                    format!(
                        "the ClientHello ({sni}) got no answer: the connection was given up without a ServerHello"
                    ),
                )
            } else {
                continue;
            };
            blocked_frames.push(ch.frame);
            blocked_frames.extend(f.syn_ack.map(|s| s.frame));
            if blocked.is_none() {
                blocked = Some((hop, how, to.clone()));
                blocked_silent = silent;
                blocked_sni = ch.sni.is_some();
            }
        }
        // The sentinel is what a TLS 1.3 server must send when it is
        // offered less: a sign of tampering only when 1.3 was offered.
        if let Some(s) = obs
            .server_hello
            .as_ref()
            .and_then(|s| s.downgrade_sentinel.map(|d| (s.frame, d)))
            .filter(|_| ch.offers_tls13)
        {
            downgrades.push((ch.frame, s.0, s.1, to.clone()));
        }
    }
    // One finding for all of a server's downgraded handshakes (a busy
    // server shows hundreds), with the count and the first frames.
    if let Some((ch_frame, sh_frame, sentinel, to)) = downgrades.first() {
        let n = downgrades.len();
        let more = if n > 1 {
            format!(" ({n} connections, the first shown)")
        } else {
            String::new()
        };
        j.findings.push(Finding::new(
            FindingKind::TlsDowngrade,
            Severity::Warning,
            format!("TLS {to}: the ClientHello offered TLS 1.3 (frame {ch_frame}), but the ServerHello (frame {sh_frame}) carries the TLS 1.3 downgrade sentinel ({sentinel:?}){more}: a device rewrote the ClientHello to an older version"),
            downgrades.iter().flat_map(|d| [d.0, d.1]).collect(),
            Some("tls.handshake.type == 2 && tls.handshake.random contains \"DOWNGRD\"".into()),
        ));
    }

    if let Some((hop, why, confidence, to, tunnel)) = intercepted {
        // Through a proxy, its address is the device's (it is the TCP peer).
        let (address, arp) = match tunnel {
            Some((_, proxy)) => (Some(proxy), None),
            None => hop.map_or((None, None), ctx.hop_address),
        };
        let tunnel_port = tunnel.map(|t| t.0);
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
                "TLS {to} is intercepted{}: {why}.",
                match (hop, address) {
                    (Some(h), Some(a)) => format!(" at hop {h} ({a})"),
                    (Some(h), None) => format!(" at hop {h}"),
                    _ => String::new(),
                }
            ),
            next_steps: vec![format!(
                "Exempt the broker traffic (TCP {} to the cloud's broker ranges) from SSL inspection on the interceptor{}; the connector pins the broker's certificate and cannot work through it.",
                tunnel_port.unwrap_or(port),
                if tunnel_port.is_some() {
                    " (the explicit proxy's SSL inspection policy)"
                } else {
                    ""
                }
            )],
        });
    } else if let Some((hop, how, to)) = blocked {
        j.silent = blocked_silent;
        let (address, arp) = hop.map_or((None, None), ctx.hop_address);
        blocked_frames.extend(arp);
        j.findings.push(
            Finding::new(
                FindingKind::TlsBlocked,
                Severity::Critical,
                format!("TCP {to} completes, but {how}"),
                blocked_frames,
                None,
            )
            .at(hop, address),
        );
        j.verdict = Some(Verdict {
            class: VerdictClass::TlsBlocked,
            hop,
            address,
            confidence: if hop.is_some() {
                Confidence::High
            } else {
                Confidence::Medium
            },
            summary: format!(
                "TLS {to} is blocked{}: TCP completes, but {how}.",
                match (hop, address) {
                    (Some(h), Some(a)) => format!(" at hop {h} ({a})"),
                    (Some(h), None) => format!(" at hop {h}"),
                    _ => String::new(),
                }
            ),
            next_steps: {
                let mut steps = vec![if blocked_sni {
                    "An application-layer filter (SNI or TLS inspection policy) rejects the broker's name: allow it on that device.".to_string()
                } else {
                    "A device on the way ends TLS handshakes to the broker (a TLS or application-layer policy on that device): allow the broker traffic there.".to_string()
                }];
                if hop.is_none() {
                    steps.push(format!(
                        "Place the device: run `pathproof trace --tcp -p {port} {server}` from the connector, or capture with the broker's hop known (--hops N / --mtr FILE)."
                    ));
                }
                steps
            },
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
    // A refusal is the verdict when nothing above is; else it stays as
    // evidence (a warning).
    if let Some(r) = refused {
        let decides = j.verdict.is_none();
        j.findings.push(
            Finding::new(
                FindingKind::TlsRefused,
                if decides {
                    Severity::Critical
                } else {
                    Severity::Warning
                },
                r.text.clone(),
                r.frames,
                None,
            )
            .at(r.hop, r.address.then_some(server)),
        );
        if decides {
            j.verdict = Some(Verdict {
            class: VerdictClass::TlsRefused,
            hop: r.hop,
            address: r.address.then_some(server),
            confidence: r.confidence,
            summary: format!("{}.", r.text),
            next_steps: vec![
                r.advice,
                "Not a network filter: the ClientHello reached the server and the server answered it; look at what it refused, not at the path.".into(),
            ],
        });
        }
    }
    if let Some((why, frames)) = unverified {
        j.findings.push(Finding::new(
            FindingKind::TlsIssuerUnverified,
            Severity::Warning,
            format!("TLS {why}"),
            frames,
            None,
        ));
        // Not "healthy" (the chain is not shown to be the broker's), not
        // "intercepted" (nothing proves it is not): undecided.
        if j.verdict.is_none() {
            j.verdict = Some(Verdict {
                class: VerdictClass::Inconclusive,
                hop: None,
                address: None,
                confidence: Confidence::Low,
                summary: format!("TLS {why}."),
                next_steps: vec![
                    "Run again with --expect-ca FILE, FILE holding the broker's CA certificate(s) in PEM: the chain is then verified, not just named.".into(),
                ],
            });
        }
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
            format!("TLS {}", handshakes[0]),
            Vec::new(),
            None,
        ));
    }
    j
}

#[cfg(test)]
pub(super) mod tests {
    //! What the issuer rule's judgements become for a capture: a TLS 1.2
    //! connection with a chain in clear, pushed through the analyzer.

    use crate::analysis::rules::issuer::PinnedCas;
    use crate::analysis::rules::issuer::tests::{Ca, intermediate, leaf_by, root};
    use crate::analysis::{Analysis, AnalysisOptions, Analyzer, FindingKind, VerdictClass};
    use crate::packet::testing::{packet, tcp_info};
    use crate::packet::{TcpFlags, Transport};
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
    use std::sync::Arc;

    const CLIENT: &str = "10.0.0.2:40000";
    const SERVER: &str = "198.18.4.2:443";
    /// Late 2026, inside rcgen's default validity.
    const T0_MS: i64 = 1_790_000_000_000;

    /// A TLS record (also for the sibling `tls_cases` tests).
    pub(in crate::analysis::rules) fn record(content: u8, body: &[u8]) -> Vec<u8> {
        let mut r = vec![content, 3, 3];
        r.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
        r.extend_from_slice(body);
        r
    }

    /// A handshake message (also for the sibling `tls_cases` tests).
    pub(in crate::analysis::rules) fn message(t: u8, body: &[u8]) -> Vec<u8> {
        let n = body.len();
        let mut m = vec![t, (n >> 16) as u8, (n >> 8) as u8, n as u8];
        m.extend_from_slice(body);
        m
    }

    fn hello(t: u8, ciphers: &[u8]) -> Vec<u8> {
        let mut b = vec![3, 3];
        b.extend_from_slice(&[7; 32]);
        b.push(0); // session id
        b.extend_from_slice(ciphers);
        b.extend_from_slice(if t == 1 { &[1, 0] } else { &[0] });
        message(t, &b)
    }

    fn u24(n: usize) -> [u8; 3] {
        [(n >> 16) as u8, (n >> 8) as u8, n as u8]
    }

    /// ServerHello, Certificate (`chain`, leaf first), ServerHelloDone.
    fn server_flight(chain: &[&[u8]]) -> Vec<u8> {
        let mut list = Vec::new();
        for c in chain {
            list.extend_from_slice(&u24(c.len()));
            list.extend_from_slice(c);
        }
        let mut cert = u24(list.len()).to_vec();
        cert.extend(list);
        let mut hs = hello(2, &[0xc0, 0x2f]);
        hs.extend(message(11, &cert));
        hs.extend(message(14, &[]));
        record(22, &hs)
    }

    /// One connection that presents `chain`, analysed with `options`.
    fn analyse(chain: &[&[u8]], options: &AnalysisOptions) -> Analysis {
        let mut a = Analyzer::new(options);
        let mut frame = 0;
        let mut push = |ms: i64, out: bool, flags: u8, seq: u32, payload: &[u8]| {
            frame += 1;
            let (src, dst) = if out {
                (CLIENT, SERVER)
            } else {
                (SERVER, CLIENT)
            };
            let tcp = tcp_info(src, dst, flags, seq, payload.len() as u32);
            let ttl = if out { 64 } else { 60 };
            let p = packet(frame, T0_MS + ms, src, dst, ttl, Transport::Tcp(tcp));
            a.push_with_payload(&p, payload);
        };
        let ack = TcpFlags::ACK;
        let psh = TcpFlags::PSH | TcpFlags::ACK;
        push(0, true, TcpFlags::SYN, 1000, b"");
        push(10, false, TcpFlags::SYN | ack, 5000, b"");
        push(11, true, ack, 1001, b"");
        let ch = record(22, &hello(1, &[0, 2, 0xc0, 0x2f]));
        push(12, true, psh, 1001, &ch);
        push(22, false, psh, 5001, &server_flight(chain));
        push(23, true, ack, 1001 + ch.len() as u32, b"");
        a.finish(None)
    }

    fn by_name() -> AnalysisOptions {
        AnalysisOptions::default()
    }

    fn pinned(cas: &[&Ca]) -> AnalysisOptions {
        let pem: String = cas.iter().map(|c| c.pem()).collect();
        AnalysisOptions {
            expect_ca: Some(Arc::new(PinnedCas::from_pem(pem.as_bytes(), "t").unwrap())),
            ..AnalysisOptions::default()
        }
    }

    fn summary_of(a: &Analysis, kind: FindingKind) -> Option<&str> {
        a.findings
            .iter()
            .find(|f| f.kind == kind)
            .map(|f| f.summary.as_str())
    }

    #[test]
    fn genuine_chain_is_healthy_and_says_how_it_was_checked() {
        let zroot = root(Some("Zscaler Inc."), "Zscaler Root CA");
        let zinter = intermediate(Some("Zscaler Inc."), "Zscaler Intermediate", &zroot);
        let leaf = leaf_by(&zinter);
        let a = analyse(&[&leaf, zinter.der()], &by_name());
        assert_eq!(a.verdict.class, VerdictClass::Healthy, "{:?}", a.verdict);
        let s = summary_of(&a, FindingKind::TlsHandshake).unwrap();
        assert!(s.ends_with("(issuer checked by name only)"), "{s}");
        let a = analyse(&[&leaf, zinter.der()], &pinned(&[&zroot]));
        assert_eq!(a.verdict.class, VerdictClass::Healthy, "{:?}", a.verdict);
        let s = summary_of(&a, FindingKind::TlsHandshake).unwrap();
        assert!(s.ends_with("(chain verified up to the pinned CA)"), "{s}");
    }

    #[test]
    fn a_foreign_ca_above_a_zscaler_named_one_is_interception() {
        let corp = root(Some("Acme Corp"), "Acme Root");
        let fake = intermediate(Some("Zscaler Inc."), "Zscaler Intermediate", &corp);
        let leaf = leaf_by(&fake);
        let a = analyse(&[&leaf, fake.der()], &by_name());
        assert_eq!(a.verdict.class, VerdictClass::TlsIntercepted);
        assert!(
            a.verdict.summary.contains(
                "chains to \"Acme Corp\": certificate 1 of the chain (O=Zscaler Inc., CN=Zscaler Intermediate) is issued by O=Acme Corp, CN=Acme Root, not Zscaler (issuer checked by name only)"
            ),
            "{}",
            a.verdict.summary
        );
    }

    #[test]
    fn a_same_name_impostor_passes_by_name_and_fails_pinned() {
        let zroot = root(Some("Zscaler Inc."), "Zscaler Root CA");
        let twin = root(Some("Zscaler Inc."), "Zscaler Root CA");
        let leaf = leaf_by(&twin);
        let a = analyse(&[&leaf], &by_name());
        assert_eq!(a.verdict.class, VerdictClass::Healthy);
        let a = analyse(&[&leaf], &pinned(&[&zroot]));
        assert_eq!(a.verdict.class, VerdictClass::TlsIntercepted);
        assert!(
            a.verdict.summary.contains(
                "which does not chain to the pinned CA (O=Zscaler Inc., CN=Zscaler Root CA)"
            ),
            "{}",
            a.verdict.summary
        );
    }

    #[test]
    fn a_self_signed_leaf_claiming_zscaler_is_inconclusive_with_a_warning() {
        let mut p = CertificateParams::new(vec!["co2br.prod.zpath.net".to_string()]).unwrap();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "Zscaler Inc.");
        dn.push(DnType::CommonName, "co2br.prod.zpath.net");
        p.distinguished_name = dn;
        let leaf = p.self_signed(&KeyPair::generate().unwrap()).unwrap();
        let a = analyse(&[leaf.der()], &by_name());
        assert_eq!(
            a.verdict.class,
            VerdictClass::Inconclusive,
            "{:?}",
            a.verdict
        );
        assert!(a.verdict.next_steps[0].contains("--expect-ca"));
        let w = a
            .findings
            .iter()
            .find(|f| f.kind == FindingKind::TlsIssuerUnverified)
            .expect("a warning");
        assert_eq!(w.severity, crate::vocab::Severity::Warning);
        assert!(w.summary.contains("self-signed"), "{}", w.summary);
        assert_eq!(w.frames, vec![5], "the Certificate's frame");
        assert!(summary_of(&a, FindingKind::TlsIntercepted).is_none());
        assert!(summary_of(&a, FindingKind::TlsHandshake).is_none());
    }
}
