//! One verdict for a check: the analysis of the recorded packets (the same
//! engine as `pathproof pcap`), plus what only the host and the active
//! probes can tell: resolv.conf permissions, the SNTP offset, the TLS
//! probe's own view (TLS 1.3 chains are encrypted on the wire), the SNI
//! replay and the path-MTU search.
//!
//! A check finding of a kind the capture's analysis already has is not
//! repeated (the capture's has frame numbers). Two host facts outrank every
//! network verdict, because they make the network's answers irrelevant:
//! a resolv.conf the service user cannot read (the connector cannot even
//! resolve its broker), and a local clock off by more than the threshold
//! (the connector rejects genuine certificates: detection.md §6 puts skew
//! ahead of network verdicts).

use super::{BrokerCheck, CheckConfig, ClockSection, ResolvSection, dns, resolv, tls};
use crate::analysis::rules::issuer::IssuerJudgement;
use crate::analysis::rules::validity::validity_at;
use crate::analysis::{Analysis, Confidence, Finding, Severity, Verdict, VerdictClass};
use crate::vocab::FindingKind;

/// Everything the check learnt.
pub struct Inputs<'a> {
    pub cfg: &'a CheckConfig,
    pub resolv: &'a ResolvSection,
    pub lookups: &'a [dns::DnsLookup],
    pub brokers: &'a [BrokerCheck],
    pub clock: &'a ClockSection,
    /// The analysis of the recorded packets, when recording was possible.
    pub analysis: Option<&'a Analysis>,
    /// The local clock (Unix seconds) the certificates are judged against.
    pub now_unix: i64,
}

/// Findings only the host and the active probes can give.
pub fn check_findings(i: &Inputs<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let r = i.resolv;
    match &r.readable {
        resolv::Readability::Unreadable { reason } => out.push(Finding::new(
            FindingKind::ResolvConfUnreadable,
            Severity::Critical,
            format!(
                "The connector's service user {} cannot read {}: {reason}. The connector cannot resolve its brokers, whatever the network does.",
                r.service_user, r.path
            ),
            Vec::new(),
            None,
        )),
        resolv::Readability::NoSuchUser { .. } => out.push(Finding::new(
            FindingKind::ServiceUserUnknown,
            Severity::Info,
            format!(
                "No user {} on this host: whether the connector's service user can read {} was not checked (--service-user names another).",
                r.service_user, r.path
            ),
            Vec::new(),
            None,
        )),
        resolv::Readability::Unknown { reason } => out.push(Finding::new(
            FindingKind::ResolvConfUnchecked,
            Severity::Warning,
            format!("Cannot tell whether {} can read {}: {reason}", r.service_user, r.path),
            Vec::new(),
            None,
        )),
        resolv::Readability::Readable => {}
    }

    for l in i.lookups {
        if let Some(f) = &l.failure {
            out.push(Finding::new(
                FindingKind::DnsFailure,
                Severity::Critical,
                format!("DNS: {f} (after {:.0} ms).", l.elapsed.as_secs_f64() * 1e3),
                Vec::new(),
                None,
            ));
        }
    }

    // The SNTP sample with the smallest delay is the most accurate (RFC 5905).
    let best = i
        .clock
        .ntp
        .iter()
        .filter_map(|a| a.sample.as_ref().map(|s| (a, s)))
        .min_by(|a, b| a.1.delay_secs.total_cmp(&b.1.delay_secs));
    if let Some((answer, s)) = best {
        let behind = s.offset_secs > 0.0;
        let text = format!(
            "SNTP server {} says the local clock is {} by {} (offset {:+.3} s, delay {:.1} ms)",
            answer.server,
            if behind { "behind" } else { "ahead" },
            crate::vocab::time::human_duration(s.offset_secs),
            s.offset_secs,
            s.delay_secs * 1e3
        );
        if s.offset_secs.abs() > i.cfg.skew_threshold.as_secs_f64() {
            out.push(Finding::new(
                FindingKind::ClockOffset,
                Severity::Critical,
                format!(
                    "{text}: more than the {} s threshold; certificates look {} to this host.",
                    i.cfg.skew_threshold.as_secs(),
                    if behind { "not yet valid" } else { "expired" }
                ),
                Vec::new(),
                None,
            ));
        } else {
            out.push(Finding::new(
                FindingKind::ClockOffset,
                Severity::Info,
                format!("{text}."),
                Vec::new(),
                None,
            ));
        }
    }

    for b in i.brokers {
        let addr = b.address;
        if let Some(t) = &b.tls {
            for p in validity_at(&t.certificates, i.now_unix) {
                out.push(
                    Finding::new(
                        FindingKind::ClockSkew,
                        Severity::Critical,
                        format!("TLS to {addr}: {p} by the local clock."),
                        Vec::new(),
                        None,
                    )
                    .at(None, Some(addr)),
                );
            }
            // The issuer rule's verdict, in the rule's own words.
            let explained = t.issuer_class.as_ref().and_then(|j| {
                j.explain(&t.certificates, &i.cfg.issuer_expectation())
                    .map(|why| (j, why))
            });
            match explained {
                Some((IssuerJudgement::Foreign { .. }, why)) => out.push(
                    Finding::new(
                        FindingKind::TlsIntercepted,
                        Severity::Critical,
                        format!(
                            "TLS to {addr}: {why}: SSL inspection re-signs the broker's certificate (the connector pins its chain and fails)."
                        ),
                        Vec::new(),
                        None,
                    )
                    .at(None, Some(addr)),
                ),
                Some((_, why)) => out.push(
                    Finding::new(
                        FindingKind::TlsIssuerUnverified,
                        Severity::Warning,
                        format!("TLS to {addr}: {why}."),
                        Vec::new(),
                        None,
                    )
                    .at(None, Some(addr)),
                ),
                None => {}
            }
            if let Some(o) = &t.outcome
                && o.blocked_after_client_hello()
            {
                {
                    let mut summary = format!(
                        "TLS to {addr}: TCP completes, then the ClientHello{} is answered by {}.",
                        t.sni
                            .as_ref()
                            .map(|s| format!(" (SNI {s})"))
                            .unwrap_or_default(),
                        o
                    );
                    if let Some(rp) = &b.sni_replay {
                        summary.push(' ');
                        summary.push_str(&rp.summary());
                    }
                    out.push(
                        Finding::new(
                            FindingKind::TlsBlocked,
                            Severity::Critical,
                            summary,
                            Vec::new(),
                            None,
                        )
                        .at(b.sni_replay.as_ref().and_then(|r| r.filter_hop()), None),
                    );
                }
            }
            out.push(
                Finding::new(
                    FindingKind::TlsHandshake,
                    Severity::Info,
                    t.summary(),
                    Vec::new(),
                    None,
                )
                .at(None, Some(addr)),
            );
        }
        // Without a recording (no privilege) the connect result is all
        // there is about TCP: a timeout is still a block; a refusal cannot
        // be placed (the reset's TTL is not visible to connect()).
        if i.analysis.is_none()
            && let Some(t) = &b.tls
        {
            match &t.connect {
                tls::ConnectOutcome::Timeout => out.push(
                    Finding::new(
                        FindingKind::TcpBlocked,
                        Severity::Critical,
                        format!(
                            "TCP to {}: the SYNs were not answered (connect timed out); without raw sockets the hop that drops them cannot be named.",
                            t.addr
                        ),
                        Vec::new(),
                        None,
                    )
                    .at(None, Some(addr)),
                ),
                tls::ConnectOutcome::Refused => out.push(
                    Finding::new(
                        FindingKind::TcpRefused,
                        Severity::Warning,
                        format!(
                            "TCP to {} was refused by a reset; whether the broker or a device on the way sent it needs the reset's TTL: run as root (or with cap_net_raw) to record it.",
                            t.addr
                        ),
                        Vec::new(),
                        None,
                    )
                    .at(None, Some(addr)),
                ),
                _ => {}
            }
        }
        if let Some(p) = &b.pmtu {
            if p.blackhole {
                out.push(
                    Finding::new(
                        FindingKind::PmtuBlackhole,
                        Severity::Critical,
                        p.summary(),
                        Vec::new(),
                        None,
                    )
                    .at(p.blackhole_after_hop, p.blackhole_after_address),
                );
            } else if p.reported_mtu.is_some() {
                out.push(
                    Finding::new(
                        FindingKind::PathMtu,
                        Severity::Info,
                        p.summary(),
                        Vec::new(),
                        None,
                    )
                    .at(p.reported_hop, p.reported_by),
                );
            }
        }
        if let Some(t) = &b.trace {
            for f in &t.findings {
                out.push(f.finding.clone());
            }
        }
        for e in &b.errors {
            out.push(
                Finding::new(
                    FindingKind::ProbeError,
                    Severity::Warning,
                    format!("{addr}: {e}"),
                    Vec::new(),
                    None,
                )
                .at(None, Some(addr)),
            );
        }
    }
    out
}

/// The check's findings (capture's first, then the host's that add
/// something) and its verdict.
pub fn conclude(i: &Inputs<'_>) -> (Verdict, Vec<Finding>) {
    let extra = check_findings(i);
    let mut findings: Vec<Finding> = i.analysis.map(|a| a.findings.clone()).unwrap_or_default();
    let seen: Vec<FindingKind> = findings.iter().map(|f| f.kind).collect();
    let mut added_kinds: Vec<FindingKind> = Vec::new();
    for f in extra {
        // Probe findings count only when the capture did not already prove
        // the same thing with frames.
        if seen.contains(&f.kind) {
            continue;
        }
        added_kinds.push(f.kind);
        findings.push(f);
    }
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));

    let base = i.analysis.map(|a| a.verdict.clone());
    let verdict_of = |f: &Finding, class: VerdictClass, confidence: Confidence| Verdict {
        class,
        hop: f.hop,
        address: f.address,
        confidence,
        summary: f.summary.clone(),
        next_steps: next_steps(class, i.cfg),
    };
    // The host facts first.
    if let Some(f) = findings
        .iter()
        .find(|f| f.kind == FindingKind::ResolvConfUnreadable)
    {
        return (
            verdict_of(f, VerdictClass::DnsFailure, Confidence::High),
            findings,
        );
    }
    if let Some(f) = findings
        .iter()
        .find(|f| f.kind == FindingKind::ClockOffset && f.severity == Severity::Critical)
    {
        // When the capture proved it too (a certificate not yet valid), its
        // verdict carries the frames.
        if let Some(b) = base.as_ref().filter(|b| b.class == VerdictClass::ClockSkew) {
            let mut v = b.clone();
            v.summary = format!("{} {}", v.summary, f.summary);
            return (v, findings);
        }
        return (
            verdict_of(f, VerdictClass::ClockSkew, Confidence::High),
            findings,
        );
    }
    let candidates = findings.iter().filter(|f| {
        f.severity == Severity::Critical
            && added_kinds.contains(&f.kind)
            && f.kind.class().is_some()
    });
    let best_extra =
        candidates.min_by_key(|f| f.kind.class().map_or(usize::MAX, VerdictClass::rank));
    let verdict = match (base, best_extra) {
        (Some(b), Some(f)) => {
            let c = f.kind.class().unwrap_or(VerdictClass::Inconclusive);
            if c.rank() < b.class.rank() {
                verdict_of(f, c, Confidence::Medium)
            } else {
                b
            }
        }
        (Some(b), None) => b,
        (None, Some(f)) => {
            let c = f.kind.class().unwrap_or(VerdictClass::Inconclusive);
            verdict_of(f, c, Confidence::Medium)
        }
        (None, None) => {
            let probed_ok = i.brokers.iter().any(|b| {
                b.tls
                    .as_ref()
                    .is_some_and(|t| matches!(t.outcome, Some(tls::HandshakeOutcome::Completed)))
            });
            if probed_ok {
                Verdict {
                    class: VerdictClass::Healthy,
                    hop: None,
                    address: None,
                    confidence: Confidence::Low,
                    summary: "The TLS handshake with the broker completed with the expected issuer; without packet recording (no privilege) the path itself was not examined.".into(),
                    next_steps: vec!["Run as root for traces, reset analysis and path MTU.".into()],
                }
            } else {
                Verdict {
                    class: VerdictClass::Inconclusive,
                    hop: None,
                    address: None,
                    confidence: Confidence::Low,
                    summary:
                        "Nothing was probed that could decide (no broker address, no recording)."
                            .into(),
                    next_steps: vec!["Run as root, and give a broker name or address.".into()],
                }
            }
        }
    };
    // A chain the issuer rule could neither pass nor fail (a self-signed
    // leaf claiming the broker's organisation): not healthy, and not proof
    // of interception either.
    if verdict.class == VerdictClass::Healthy
        && let Some(f) = findings
            .iter()
            .find(|f| f.kind == FindingKind::TlsIssuerUnverified)
    {
        let v = Verdict {
            class: VerdictClass::Inconclusive,
            hop: None,
            address: f.address,
            confidence: Confidence::Low,
            summary: f.summary.clone(),
            next_steps: vec![
                "Run again with --expect-ca FILE, FILE holding the broker's CA certificate(s) in PEM: the chain is then verified, not just named.".into(),
            ],
        };
        return (v, findings);
    }
    (verdict, findings)
}

fn next_steps(class: VerdictClass, cfg: &CheckConfig) -> Vec<String> {
    match class {
        VerdictClass::DnsFailure => vec![
            format!(
                "Make the resolver configuration readable by the connector's user: `chmod 644 /etc/resolv.conf` (and check `sudo -u {} cat /etc/resolv.conf`).",
                cfg.service_user
            ),
            "Check that the resolvers in resolv.conf answer for the broker names (`dig co2br.<cloud> @<resolver>`).".into(),
        ],
        VerdictClass::ClockSkew => vec![
            "Synchronise the connector's clock (chrony/ntpd/timesyncd; allow UDP 123 to the NTP servers), then restart the connector.".into(),
        ],
        VerdictClass::TlsIntercepted => vec![
            "Exempt the Zscaler broker names (co2br.*, *.zpath.net, *.zscaler.net) from SSL inspection.".into(),
        ],
        VerdictClass::TlsBlocked => vec![
            "Allow the broker SNI through the application-layer filter at the named hop (URL/SNI category rules).".into(),
        ],
        VerdictClass::PmtuBlackhole => vec![
            "Let ICMP fragmentation-needed (type 3 code 4) through at the named hop, or clamp the TCP MSS on the narrow link.".into(),
        ],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{AnalysisOptions, Analyzer};
    use crate::check::{NtpAnswer, sntp};
    use std::net::{IpAddr, SocketAddr};

    const NOW: i64 = 1_790_000_000;

    fn resolv(readable: resolv::Readability) -> ResolvSection {
        ResolvSection {
            path: "/etc/resolv.conf".into(),
            nameservers: vec!["198.18.10.2".parse().unwrap()],
            search: vec![],
            service_user: "zscaler".into(),
            readable,
            error: None,
        }
    }

    fn clock(offset_secs: Option<f64>) -> ClockSection {
        ClockSection {
            local_time: String::new(),
            ntp: offset_secs
                .map(|o| NtpAnswer {
                    server: "198.18.10.2".into(),
                    sample: Some(sntp::SntpSample {
                        server: "198.18.10.2:123".parse().unwrap(),
                        offset_secs: o,
                        delay_secs: 0.001,
                        stratum: 2,
                        reference_id: "LAB".into(),
                        leap: 0,
                        version: 4,
                    }),
                    error: None,
                })
                .into_iter()
                .collect(),
            ntp_source: "--ntp",
        }
    }

    /// A leaf certificate issued by `issuer_org`'s CA, valid from
    /// `not_before` for a day after NOW; self-signed when `self_signed`.
    fn cert(issuer_org: &str, not_before: i64, self_signed: bool) -> Vec<u8> {
        use rcgen::{CertificateParams, DistinguishedName, DnType, Issuer, KeyPair};
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec!["broker1a.lab1.test".to_string()]).unwrap();
        let mut dn = DistinguishedName::new();
        if self_signed {
            dn.push(DnType::OrganizationName, issuer_org);
        }
        dn.push(DnType::CommonName, "broker1a.lab1.test");
        p.distinguished_name = dn;
        p.not_before =
            rcgen::date_time_ymd(1970, 1, 1) + std::time::Duration::from_secs(not_before as u64);
        p.not_after = rcgen::date_time_ymd(1970, 1, 1)
            + std::time::Duration::from_secs((NOW + 86_400) as u64);
        if self_signed {
            return p.self_signed(&key).unwrap().der().to_vec();
        }
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, issuer_org);
        dn.push(DnType::CommonName, format!("{issuer_org} CA"));
        ca.distinguished_name = dn;
        let issuer = Issuer::new(ca, KeyPair::generate().unwrap());
        p.signed_by(&key, &issuer).unwrap().der().to_vec()
    }

    fn broker(issuer_org: &str, not_before: i64) -> BrokerCheck {
        broker_with(cert(issuer_org, not_before, false))
    }

    fn broker_with(der: Vec<u8>) -> BrokerCheck {
        let addr: SocketAddr = "198.18.4.2:443".parse().unwrap();
        let (chain, certificates) = tls::decode_chain(&[der]);
        let mut probe = tls::TlsProbe {
            addr,
            sni: Some("broker1a.lab1.test".into()),
            connect: tls::ConnectOutcome::Connected,
            outcome: Some(tls::HandshakeOutcome::Completed),
            version: Some("TLS 1.2".into()),
            cipher: None,
            client_cert_requested: Some(false),
            alpn: None,
            issuer_class: None,
            chain,
            certificates,
            post_handshake_alert: None,
            connect_ms: Some(0.3),
            handshake_ms: Some(2.0),
        };
        probe.judge_issuer(&CheckConfig::default().issuer_expectation());
        BrokerCheck {
            address: addr.ip(),
            name: None,
            trace: None,
            tls: Some(probe),
            sni_replay: None,
            pmtu: None,
            errors: vec![],
        }
    }

    fn run(
        readable: resolv::Readability,
        offset: Option<f64>,
        brokers: &[BrokerCheck],
        analysis: Option<&Analysis>,
    ) -> (Verdict, Vec<Finding>) {
        let cfg = CheckConfig::default();
        let r = resolv(readable);
        let c = clock(offset);
        conclude(&Inputs {
            cfg: &cfg,
            resolv: &r,
            lookups: &[],
            brokers,
            clock: &c,
            analysis,
            now_unix: NOW,
        })
    }

    #[test]
    fn genuine_broker_without_recording_is_healthy_with_low_confidence() {
        let (v, f) = run(
            resolv::Readability::Readable,
            Some(0.2),
            &[broker("Zscaler Inc", NOW - 3600)],
            None,
        );
        assert_eq!(v.class, VerdictClass::Healthy);
        assert_eq!(v.confidence, Confidence::Low);
        assert!(
            f.iter()
                .any(|f| f.kind == FindingKind::ClockOffset && f.severity == Severity::Info)
        );
    }

    #[test]
    fn unreadable_resolv_conf_outranks_everything() {
        let (v, _) = run(
            resolv::Readability::Unreadable {
                reason: "mode 0600".into(),
            },
            Some(400.0),
            &[broker("Safemarch Inc", NOW + 400)],
            None,
        );
        assert_eq!(v.class, VerdictClass::DnsFailure);
        assert!(
            v.summary.contains("zscaler cannot read /etc/resolv.conf"),
            "{}",
            v.summary
        );
    }

    #[test]
    fn sntp_offset_over_the_threshold_is_clock_skew_and_says_which_way() {
        let (v, f) = run(
            resolv::Readability::Readable,
            Some(360.0),
            &[broker("Zscaler Inc", NOW + 350)],
            None,
        );
        assert_eq!(v.class, VerdictClass::ClockSkew);
        assert!(v.summary.contains("behind by 6 min 0 s"), "{}", v.summary);
        // The certificate's notBefore is the other proof.
        assert!(f.iter().any(|f| f.kind == FindingKind::ClockSkew
            && f.summary.contains("not valid for another 350 s")));
        // Below the threshold the offset is only information.
        let (v, _) = run(resolv::Readability::Readable, Some(-30.0), &[], None);
        assert_eq!(v.class, VerdictClass::Inconclusive);
    }

    #[test]
    fn foreign_issuer_from_the_probe_beats_a_healthy_capture() {
        let empty = Analyzer::new(&AnalysisOptions::default()).finish(None);
        assert_eq!(empty.verdict.class, VerdictClass::Inconclusive);
        let (v, f) = run(
            resolv::Readability::Readable,
            None,
            &[broker("Safemarch Inc", NOW - 3600)],
            Some(&empty),
        );
        assert_eq!(v.class, VerdictClass::TlsIntercepted);
        assert!(v.summary.contains("Safemarch Inc"), "{}", v.summary);
        assert_eq!(v.address, Some(IpAddr::from([198, 18, 4, 2])));
        assert!(f.iter().any(|f| f.kind == FindingKind::TlsHandshake));
    }

    #[test]
    fn a_self_signed_leaf_claiming_the_broker_is_inconclusive_not_healthy() {
        let b = broker_with(cert("Zscaler Inc", NOW - 3600, true));
        let (v, f) = run(resolv::Readability::Readable, Some(0.2), &[b], None);
        assert_eq!(v.class, VerdictClass::Inconclusive);
        assert!(v.summary.contains("self-signed"), "{}", v.summary);
        assert!(v.next_steps[0].contains("--expect-ca"));
        let w = f
            .iter()
            .find(|f| f.kind == FindingKind::TlsIssuerUnverified)
            .expect("a warning");
        assert_eq!(w.severity, Severity::Warning);
        assert!(!f.iter().any(|f| f.kind == FindingKind::TlsIntercepted));
    }

    #[test]
    fn a_capture_finding_is_not_repeated_by_the_probe() {
        let mut a = Analyzer::new(&AnalysisOptions::default()).finish(None);
        a.findings.push(Finding::new(
            FindingKind::TlsIntercepted,
            Severity::Critical,
            "from the capture".into(),
            vec![7],
            None,
        ));
        let (_, f) = run(
            resolv::Readability::Readable,
            None,
            &[broker("Safemarch Inc", NOW - 3600)],
            Some(&a),
        );
        let n = f
            .iter()
            .filter(|f| f.kind == FindingKind::TlsIntercepted)
            .count();
        assert_eq!(n, 1);
        assert_eq!(f[0].frames, vec![7]);
    }
}
