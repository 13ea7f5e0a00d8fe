//! `check`'s judgement: the analysis of the recorded packets (the same
//! engine as `pathproof pcap`) and what only the host and the active probes
//! can tell, through the one picker.
//!
//! A probe finding of a kind the capture's analysis already has is not
//! repeated (the capture's has frame numbers), and the capture's candidates
//! come first, so at equal rank its verdict stands.

use super::observe::HostObservations;
use super::picker::{self, Candidate, NoEvidence};
use super::rules::issuer::IssuerExpectation;
use super::rules::{host, probe};
use super::{Analysis, TraceJudgement};
use crate::vocab::{Finding, FindingKind, Verdict};

/// The check's verdict and findings (the capture's first, then the host's
/// and the probes' that add something), worst first.
pub fn judge_check(
    obs: &HostObservations,
    capture: Option<&Analysis>,
    traces: &[&TraceJudgement],
    expect: &IssuerExpectation<'_>,
) -> (Verdict, Vec<Finding>) {
    let mut extra = Vec::new();
    let mut candidates: Vec<Candidate> = Vec::new();
    // The live traces' findings and failures (with a recording, the
    // capture's analysis of the same probes has them too, with frames).
    for t in traces {
        extra.extend(t.findings.iter().map(|f| f.finding.clone()));
        if t.verdict.class.is_failure() {
            candidates.push(Candidate::new(t.verdict.clone()));
        }
    }
    candidates.extend(host_candidates(obs, expect, &mut extra));

    let mut findings: Vec<Finding> = capture.map(|a| a.findings.clone()).unwrap_or_default();
    let seen: Vec<FindingKind> = findings.iter().map(|f| f.kind).collect();
    findings.extend(extra.into_iter().filter(|f| !seen.contains(&f.kind)));
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));

    // The capture's candidates first: at equal rank the picker keeps the
    // first given (the capture's, with frames) unless a later one places
    // the hop the capture could not.
    let mut all: Vec<Candidate> = capture.map(|a| a.candidates.clone()).unwrap_or_default();
    all.extend(candidates);
    let verdict = picker::pick(all, || NoEvidence {
        summary: "Nothing was probed that could decide (no broker address, no recording).".into(),
        next_steps: vec!["Run as root, and give a broker name or address.".into()],
    });
    (verdict, findings)
}

/// The host's and the probes' candidates (resolv.conf, failed lookups, the
/// clock, each broker's probes), their findings added to `extra`.
pub(crate) fn host_candidates(
    obs: &HostObservations,
    expect: &IssuerExpectation<'_>,
    extra: &mut Vec<Finding>,
) -> Vec<Candidate> {
    let mut candidates = Vec::new();
    if let Some(r) = &obs.resolv {
        candidates.extend(host::resolv(r, extra));
    }
    for l in &obs.lookup_failures {
        candidates.push(host::lookup(l, extra));
    }
    if let Some(c) = &obs.clock {
        candidates.extend(host::clock(c, extra));
    }
    for b in &obs.brokers {
        candidates.extend(probe::broker(b, obs.recorded, expect, obs.now_unix, extra));
    }
    candidates
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::observe::{
        BrokerObservation, ClockObservation, ClockSample, ConnectResult, HelloAnswer,
        PmtuObservation, ResolvAccess, ResolvObservation, TlsProbeObservation,
    };
    use crate::analysis::tls::decode_certificate;
    use crate::analysis::{AnalysisOptions, Analyzer};
    use crate::vocab::{Confidence, Severity, VerdictClass};
    use std::net::IpAddr;
    use std::time::Duration;

    fn broker_ip() -> IpAddr {
        "198.18.4.2".parse().unwrap()
    }

    const NOW: i64 = 1_790_000_000;

    /// A leaf issued by `issuer_org`'s CA (self-signed when asked), valid
    /// from `not_before` to a day after NOW.
    fn cert(issuer_org: &str, not_before: i64, self_signed: bool) -> Vec<u8> {
        use rcgen::{CertificateParams, DistinguishedName, DnType, Issuer, KeyPair};
        let epoch = rcgen::date_time_ymd(1970, 1, 1);
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec!["broker1a.lab1.test".to_string()]).unwrap();
        let mut dn = DistinguishedName::new();
        if self_signed {
            dn.push(DnType::OrganizationName, issuer_org);
        }
        dn.push(DnType::CommonName, "broker1a.lab1.test");
        p.distinguished_name = dn;
        p.not_before = epoch + Duration::from_secs(not_before as u64);
        p.not_after = epoch + Duration::from_secs((NOW + 86_400) as u64);
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

    fn tls_of(der: Vec<u8>) -> TlsProbeObservation {
        TlsProbeObservation {
            sni: Some("broker1a.lab1.test".into()),
            connect: ConnectResult::Connected,
            completed: true,
            hello_answer: None,
            certificates: vec![decode_certificate(0, &der).unwrap()],
            chain_len: 1,
            summary: "SNI broker1a.lab1.test: TLS 1.3".into(),
            replay: None,
        }
    }

    /// A probe of a chain from `org`, valid since `not_before`.
    fn tls(org: &str, not_before: i64) -> TlsProbeObservation {
        tls_of(cert(org, not_before, false))
    }

    fn obs(
        access: ResolvAccess,
        offset: Option<f64>,
        brokers: Vec<BrokerObservation>,
    ) -> HostObservations {
        HostObservations {
            resolv: Some(ResolvObservation {
                path: "/etc/resolv.conf".into(),
                service_user: "zscaler".into(),
                access,
            }),
            lookup_failures: vec![],
            clock: Some(ClockObservation {
                samples: offset
                    .map(|o| ClockSample {
                        server: "198.18.10.2".into(),
                        offset_secs: o,
                        delay_secs: 0.001,
                    })
                    .into_iter()
                    .collect(),
                threshold: Duration::from_secs(60),
            }),
            brokers,
            recorded: false,
            now_unix: NOW,
        }
    }

    fn broker(t: TlsProbeObservation) -> BrokerObservation {
        BrokerObservation {
            address: Some(broker_ip()),
            port: 443,
            tls: Some(t),
            pmtu: None,
            errors: vec![],
        }
    }

    fn judge(o: &HostObservations, capture: Option<&Analysis>) -> (Verdict, Vec<Finding>) {
        let expect = IssuerExpectation {
            org: "Zscaler",
            pinned: None,
        };
        judge_check(o, capture, &[], &expect)
    }

    #[test]
    fn genuine_broker_without_recording_is_healthy_with_low_confidence() {
        let (v, f) = judge(
            &obs(
                ResolvAccess::Readable,
                Some(0.2),
                vec![broker(tls("Zscaler Inc", NOW - 3600))],
            ),
            None,
        );
        assert_eq!(
            (v.class, v.confidence),
            (VerdictClass::Healthy, Confidence::Low)
        );
        assert!(
            f.iter()
                .any(|f| f.kind == FindingKind::ClockOffset && f.severity == Severity::Info)
        );
    }

    #[test]
    fn unreadable_resolv_conf_outranks_everything() {
        let (v, _) = judge(
            &obs(
                ResolvAccess::Unreadable {
                    reason: "mode 0600".into(),
                },
                Some(400.0),
                vec![broker(tls("Safemarch Inc", NOW + 400))],
            ),
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
    fn clock_offset_outranks_the_network_and_nothing_probed_is_inconclusive() {
        let (v, f) = judge(
            &obs(
                ResolvAccess::Readable,
                Some(360.0),
                vec![broker(tls("Zscaler Inc", NOW + 350))],
            ),
            None,
        );
        assert_eq!(v.class, VerdictClass::ClockSkew);
        assert!(v.summary.contains("behind by 6 min 0 s"), "{}", v.summary);
        assert!(f.iter().any(|f| f.kind == FindingKind::ClockSkew
            && f.summary.contains("not valid for another 350 s")));
        let (v, _) = judge(&obs(ResolvAccess::Readable, Some(-30.0), vec![]), None);
        assert_eq!(v.class, VerdictClass::Inconclusive);
    }

    #[test]
    fn foreign_issuer_from_the_probe_beats_a_healthy_capture() {
        let empty = Analyzer::new(&AnalysisOptions::default()).finish(None);
        assert_eq!(empty.verdict.class, VerdictClass::Inconclusive);
        let mut o = obs(
            ResolvAccess::Readable,
            None,
            vec![broker(tls("Safemarch Inc", NOW - 3600))],
        );
        o.recorded = true;
        let (v, f) = judge(&o, Some(&empty));
        assert_eq!(v.class, VerdictClass::TlsIntercepted);
        assert!(v.summary.contains("Safemarch Inc"), "{}", v.summary);
        assert_eq!(v.address, Some(broker_ip()));
        assert!(f.iter().any(|f| f.kind == FindingKind::TlsHandshake));
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
        let mut o = obs(
            ResolvAccess::Readable,
            None,
            vec![broker(tls("Safemarch Inc", NOW - 3600))],
        );
        o.recorded = true;
        let (_, f) = judge(&o, Some(&a));
        let n = f
            .iter()
            .filter(|f| f.kind == FindingKind::TlsIntercepted)
            .count();
        assert_eq!(n, 1);
        assert_eq!(f[0].frames, vec![7]);
    }

    #[test]
    fn a_black_hole_the_probes_place_explains_the_silent_tls_stall() {
        let mut t = tls("Zscaler Inc", NOW - 3600);
        t.completed = false;
        t.hello_answer = Some((HelloAnswer::Silence, "silence".into()));
        let mut b = broker(t);
        b.pmtu = Some(PmtuObservation {
            blackhole: true,
            blackhole_after_hop: Some(2),
            blackhole_after_address: Some("198.18.2.2".parse().unwrap()),
            reported_mtu: None,
            reported_by: None,
            reported_hop: None,
            largest_passing: Some(1400),
            summary: "1401-byte packets vanish after hop 2".into(),
        });
        let mut o = obs(ResolvAccess::Readable, None, vec![b]);
        o.recorded = true;
        let (v, f) = judge(&o, None);
        assert_eq!((v.class, v.hop), (VerdictClass::PmtuBlackhole, Some(2)));
        assert!(v.summary.contains("ClientHello"), "{}", v.summary);
        // The stall stays as supporting evidence.
        assert!(f.iter().any(|f| f.kind == FindingKind::TlsBlocked));
        // A reset is an answer: no black hole explains it.
        if let Some(t) = o.brokers[0].tls.as_mut() {
            t.hello_answer = Some((HelloAnswer::Reset, "a reset".into()));
        }
        let (v, _) = judge(&o, None);
        assert_eq!(v.class, VerdictClass::TlsBlocked);
    }

    #[test]
    fn a_self_signed_leaf_claiming_the_broker_is_inconclusive_not_healthy() {
        let b = broker(tls_of(cert("Zscaler Inc", NOW - 3600, true)));
        let (v, f) = judge(&obs(ResolvAccess::Readable, Some(0.2), vec![b]), None);
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
}
