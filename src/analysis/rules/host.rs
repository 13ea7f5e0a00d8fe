//! The host's own facts: whether the connector's service user can read
//! resolv.conf, the clock's SNTP offset, and failed DNS lookups. These
//! cannot be in a capture; `check` (and `egress`) observe them.

use crate::analysis::observe::{ClockObservation, LookupFailure, ResolvAccess, ResolvObservation};
use crate::analysis::picker::{Basis, Candidate};
use crate::vocab::time::human_duration;
use crate::vocab::{Confidence, Finding, FindingKind, Severity, Verdict, VerdictClass};

/// resolv.conf readability: unreadable is a DNS failure whatever the
/// network does (the connector cannot resolve its brokers).
pub fn resolv(r: &ResolvObservation, out: &mut Vec<Finding>) -> Option<Candidate> {
    let (kind, severity, text) = match &r.access {
        ResolvAccess::Readable => return None,
        ResolvAccess::Unreadable { reason } => (
            FindingKind::ResolvConfUnreadable,
            Severity::Critical,
            format!(
                "The connector's service user {} cannot read {}: {reason}. The connector cannot resolve its brokers, whatever the network does.",
                r.service_user, r.path
            ),
        ),
        ResolvAccess::NoSuchUser => (
            FindingKind::ServiceUserUnknown,
            Severity::Info,
            format!(
                "No user {} on this host: whether the connector's service user can read {} was not checked (--service-user names another).",
                r.service_user, r.path
            ),
        ),
        ResolvAccess::Unknown { reason } => (
            FindingKind::ResolvConfUnchecked,
            Severity::Warning,
            format!(
                "Cannot tell whether {} can read {}: {reason}",
                r.service_user, r.path
            ),
        ),
    };
    out.push(Finding::new(kind, severity, text.clone(), Vec::new(), None));
    (kind == FindingKind::ResolvConfUnreadable).then(|| {
        Candidate::new(Verdict {
            class: VerdictClass::DnsFailure,
            hop: None,
            address: None,
            confidence: Confidence::High,
            summary: text,
            next_steps: vec![
                format!(
                    "Make the resolver configuration readable by the connector's user: `chmod 644 {}` (and check `sudo -u {} cat {}`).",
                    r.path, r.service_user, r.path
                ),
                "Check that the resolvers in resolv.conf answer for the broker names (`dig co2br.<cloud> @<resolver>`).".into(),
            ],
        })
        .basis(Basis::ResolvUnreadable)
    })
}

/// The SNTP sample with the smallest delay is the most accurate (RFC
/// 5905); an offset above the threshold is clock skew, which outranks the
/// network (the connector rejects genuine certificates).
pub fn clock(c: &ClockObservation, out: &mut Vec<Finding>) -> Option<Candidate> {
    let s = c
        .samples
        .iter()
        .min_by(|a, b| a.delay_secs.total_cmp(&b.delay_secs))?;
    let behind = s.offset_secs > 0.0;
    let text = format!(
        "SNTP server {} says the local clock is {} by {} (offset {:+.3} s, delay {:.1} ms)",
        s.server,
        if behind { "behind" } else { "ahead" },
        human_duration(s.offset_secs),
        s.offset_secs,
        s.delay_secs * 1e3
    );
    if s.offset_secs.abs() <= c.threshold.as_secs_f64() {
        out.push(Finding::new(
            FindingKind::ClockOffset,
            Severity::Info,
            format!("{text}."),
            Vec::new(),
            None,
        ));
        return None;
    }
    let summary = format!(
        "{text}: more than the {} s threshold; certificates look {} to this host.",
        c.threshold.as_secs(),
        if behind { "not yet valid" } else { "expired" }
    );
    out.push(Finding::new(
        FindingKind::ClockOffset,
        Severity::Critical,
        summary.clone(),
        Vec::new(),
        None,
    ));
    Some(
        Candidate::new(Verdict {
            class: VerdictClass::ClockSkew,
            hop: None,
            address: None,
            confidence: Confidence::High,
            summary,
            next_steps: vec![clock_step()],
        })
        .basis(Basis::ClockOffset),
    )
}

/// The one way to say how to fix a wrong clock.
pub fn clock_step() -> String {
    "Synchronise the connector's clock (chrony/ntpd/timesyncd; allow UDP 123 to the NTP servers), then restart the connector.".into()
}

/// A failed lookup of a broker or NTP name.
pub fn lookup(l: &LookupFailure, out: &mut Vec<Finding>) -> Candidate {
    let finding = super::dns_lookup::failure_finding(&l.failure, l.elapsed);
    let text = finding.summary.clone();
    out.push(finding);
    Candidate::new(Verdict {
        class: VerdictClass::DnsFailure,
        hop: None,
        address: None,
        confidence: Confidence::Medium,
        summary: text,
        next_steps: vec![
            "Check that the resolvers answer for the broker names (`dig co2br.<cloud> @<resolver>`), over UDP and TCP 53.".into(),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::observe::ClockSample;
    use std::time::Duration;

    fn clock_obs(offsets: &[(f64, f64)]) -> ClockObservation {
        ClockObservation {
            samples: offsets
                .iter()
                .map(|&(o, d)| ClockSample {
                    server: "198.18.10.2".into(),
                    offset_secs: o,
                    delay_secs: d,
                })
                .collect(),
            threshold: Duration::from_secs(60),
        }
    }

    #[test]
    fn offset_over_the_threshold_is_skew_and_says_which_way() {
        let mut f = Vec::new();
        let c = clock(&clock_obs(&[(360.0, 0.001)]), &mut f).expect("a candidate");
        assert_eq!(c.verdict.class, VerdictClass::ClockSkew);
        assert_eq!(c.basis, Basis::ClockOffset);
        assert!(
            c.verdict.summary.contains("behind by 6 min 0 s"),
            "{}",
            c.verdict.summary
        );
        assert!(c.verdict.summary.contains("not yet valid"));
        let mut f = Vec::new();
        let c = clock(&clock_obs(&[(-400.0, 0.001)]), &mut f).unwrap();
        assert!(
            c.verdict.summary.contains("ahead by 6 min 40 s"),
            "{}",
            c.verdict.summary
        );
        assert!(c.verdict.summary.contains("expired"));
    }

    #[test]
    fn small_offset_is_information_and_the_best_sample_counts() {
        let mut f = Vec::new();
        // The far sample has the larger delay: the near one counts.
        assert!(clock(&clock_obs(&[(500.0, 0.5), (0.2, 0.001)]), &mut f).is_none());
        assert_eq!(f.len(), 1);
        assert_eq!(
            (f[0].kind, f[0].severity),
            (FindingKind::ClockOffset, Severity::Info)
        );
        assert!(f[0].summary.contains("behind by 0.2 s"), "{}", f[0].summary);
    }

    #[test]
    fn unreadable_resolv_conf_is_a_dns_failure_host_fact() {
        let mut f = Vec::new();
        let r = ResolvObservation {
            path: "/etc/resolv.conf".into(),
            service_user: "zscaler".into(),
            access: ResolvAccess::Unreadable {
                reason: "mode 0600".into(),
            },
        };
        let c = resolv(&r, &mut f).expect("a candidate");
        assert_eq!(
            (c.verdict.class, c.basis),
            (VerdictClass::DnsFailure, Basis::ResolvUnreadable)
        );
        assert!(
            c.verdict
                .summary
                .contains("zscaler cannot read /etc/resolv.conf")
        );
        let mut f = Vec::new();
        let ok = ResolvObservation {
            access: ResolvAccess::Readable,
            ..r
        };
        assert!(resolv(&ok, &mut f).is_none());
        assert!(f.is_empty());
    }
}
