//! `egress`'s judgement: each row's status from what its probe established
//! and the verdict the rules gave it, the fix a firewall team needs, and
//! the run's verdict and exit code, picked over the failing rows by the one
//! picker.

use super::observe::HostObservations;
use super::picker::{self, Candidate, NoEvidence};
use super::rules::issuer::IssuerExpectation;
use crate::vocab::{
    CheckStatus, EXIT_FAILURE_FOUND, EXIT_INCONCLUSIVE, EXIT_NO_FAILURE, Verdict, VerdictClass,
};
use serde::Serialize;

/// A row's status. `established`: what the probe itself showed (TCP
/// connected, a handshake completed, a datagram answered, a name resolved);
/// `None` when the probe was not attempted. `verdict`: the rules' verdict
/// on the same observation (a completed handshake with a foreign issuer
/// fails). `required`: a failure fails the run; otherwise it warns.
/// An established probe the rules cannot call healthy (a chain whose
/// issuer cannot be verified) warns.
pub fn status(established: Option<bool>, verdict: &Verdict, required: bool) -> CheckStatus {
    match established {
        None => CheckStatus::Skip,
        Some(true) if verdict.class == VerdictClass::Healthy => CheckStatus::Pass,
        Some(true) if !verdict.class.is_failure() => CheckStatus::Warn,
        Some(_) if required => CheckStatus::Fail,
        Some(_) => CheckStatus::Warn,
    }
}

/// What the host rules and the probe rules `check` uses say about one
/// observation (a resolv.conf, a failed lookup, a clock sample, one TLS
/// probe): the worst candidate, or healthy, summarised by the rules' own
/// informational findings, when none fails.
pub fn judge_host(obs: &HostObservations, expect: &IssuerExpectation<'_>) -> Verdict {
    let mut findings = Vec::new();
    let candidates = super::check::host_candidates(obs, expect, &mut findings);
    if candidates.is_empty() {
        let summary = findings
            .iter()
            .map(|f| f.summary.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        return healthy(summary);
    }
    picker::pick(candidates, || NoEvidence {
        summary: String::new(),
        next_steps: vec![],
    })
}

/// A failure seen through an explicit proxy is placed at the proxy: it is
/// the TCP peer, and the device that refuses the tunnel or re-signs the
/// chain (as `pcap` places a CONNECT tunnel's interception).
pub fn through_proxy(mut v: Verdict, proxy: std::net::IpAddr, proxy_hop: Option<u8>) -> Verdict {
    if v.class.is_failure() && v.hop.is_none() {
        v.hop = proxy_hop;
        v.address = Some(proxy);
    }
    v
}

/// Whether the verdict says all is well (callers outside the analysis do
/// not name classes).
pub fn is_healthy(v: &Verdict) -> bool {
    v.class == VerdictClass::Healthy
}

/// A verdict that says all is well: `summary` (what the probe saw).
pub fn healthy(summary: String) -> Verdict {
    Verdict {
        class: VerdictClass::Healthy,
        hop: None,
        address: None,
        confidence: crate::vocab::Confidence::High,
        summary,
        next_steps: vec![],
    }
}

/// The verdict of a row whose probe failed: when the rules found no failure
/// in what it saw (a refused connect without a recording of the reset), the
/// row is `inconclusive`, never `healthy`.
pub fn failed_probe(mut v: Verdict) -> Verdict {
    if v.class == VerdictClass::Healthy {
        v.class = VerdictClass::Inconclusive;
        v.confidence = crate::vocab::Confidence::Low;
    }
    v
}

/// What a firewall (or inspection policy) owner must change for a failing
/// row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FixAction {
    /// Allow the traffic (it is dropped, reset or refused on the way).
    Allow,
    /// Exempt the destination from SSL/TLS inspection.
    ExemptFromInspection,
}

impl FixAction {
    pub fn as_str(self) -> &'static str {
        match self {
            FixAction::Allow => "allow",
            FixAction::ExemptFromInspection => "exempt from TLS inspection",
        }
    }
}

/// The change that fixes a failure of this class, when a firewall or
/// inspection policy can fix it (not a server down, not a clock).
pub fn fix_action(class: VerdictClass) -> Option<FixAction> {
    match class {
        VerdictClass::TcpBlocked
        | VerdictClass::UdpBlocked
        | VerdictClass::RstInjected
        | VerdictClass::TlsBlocked
        | VerdictClass::PathLoss => Some(FixAction::Allow),
        VerdictClass::TlsIntercepted => Some(FixAction::ExemptFromInspection),
        _ => None,
    }
}

/// Failures of the TLS layer (TCP itself worked).
pub fn is_tls_layer(class: VerdictClass) -> bool {
    matches!(
        class,
        VerdictClass::TlsBlocked | VerdictClass::TlsIntercepted | VerdictClass::TlsRefused
    )
}

/// The run's verdict: the worst failing required row's (their verdicts as
/// candidates, in row order), healthy when every required row passed.
pub fn judge_rows(failing: Vec<Verdict>, attempted: usize) -> Verdict {
    let none = || NoEvidence {
        summary: if attempted == 0 {
            "Nothing could be checked: no destination resolved and no address was given.".into()
        } else {
            "Every required check passed.".into()
        },
        next_steps: vec![],
    };
    if failing.is_empty() {
        let n = none();
        return Verdict {
            class: if attempted == 0 {
                VerdictClass::Inconclusive
            } else {
                VerdictClass::Healthy
            },
            hop: None,
            address: None,
            confidence: crate::vocab::Confidence::High,
            summary: n.summary,
            next_steps: n.next_steps,
        };
    }
    picker::pick(failing.into_iter().map(Candidate::new).collect(), none)
}

/// The exit code of an egress run: 0 every required check passed, 1 one
/// failed, 3 nothing could be checked (2, bad input, is the command line's).
pub fn exit_code(statuses: &[(CheckStatus, bool)]) -> u8 {
    if statuses
        .iter()
        .any(|(s, required)| *required && *s == CheckStatus::Fail)
    {
        EXIT_FAILURE_FOUND
    } else if statuses.iter().all(|(s, _)| *s == CheckStatus::Skip) {
        EXIT_INCONCLUSIVE
    } else {
        EXIT_NO_FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::Confidence;

    fn v(class: VerdictClass, hop: Option<u8>) -> Verdict {
        Verdict {
            class,
            hop,
            address: None,
            confidence: Confidence::High,
            summary: class.as_str().into(),
            next_steps: vec![],
        }
    }

    #[test]
    fn status_follows_the_probe_and_the_rules() {
        let ok = v(VerdictClass::Healthy, None);
        let bad = v(VerdictClass::TlsIntercepted, Some(2));
        let unsure = v(VerdictClass::Inconclusive, None);
        assert_eq!(status(Some(true), &ok, true), CheckStatus::Pass);
        // A completed handshake the issuer rule rejects fails.
        assert_eq!(status(Some(true), &bad, true), CheckStatus::Fail);
        // An issuer that cannot be verified warns.
        assert_eq!(status(Some(true), &unsure, true), CheckStatus::Warn);
        // A refused connect with no placed verdict still fails.
        assert_eq!(status(Some(false), &unsure, true), CheckStatus::Fail);
        assert_eq!(status(Some(false), &unsure, false), CheckStatus::Warn);
        assert_eq!(status(None, &ok, true), CheckStatus::Skip);
    }

    #[test]
    fn the_run_verdict_and_exit_code() {
        let picked = judge_rows(
            vec![
                v(VerdictClass::UdpBlocked, Some(2)),
                v(VerdictClass::TlsIntercepted, Some(2)),
            ],
            5,
        );
        assert_eq!(picked.class, VerdictClass::TlsIntercepted);
        assert_eq!(judge_rows(vec![], 5).class, VerdictClass::Healthy);
        assert_eq!(judge_rows(vec![], 0).class, VerdictClass::Inconclusive);
        use CheckStatus::*;
        assert_eq!(exit_code(&[(Pass, true), (Warn, false)]), 0);
        assert_eq!(exit_code(&[(Pass, true), (Fail, true)]), 1);
        assert_eq!(exit_code(&[(Pass, true), (Fail, false)]), 0);
        assert_eq!(exit_code(&[(Skip, true), (Skip, true)]), 3);
        assert_eq!(exit_code(&[]), 3);
    }

    #[test]
    fn a_failed_probe_is_never_healthy() {
        let v = failed_probe(v(VerdictClass::Healthy, None));
        assert_eq!(v.class, VerdictClass::Inconclusive);
        let v = failed_probe(v_tcp());
        assert_eq!(v.class, VerdictClass::TcpBlocked);
    }

    fn v_tcp() -> Verdict {
        v(VerdictClass::TcpBlocked, Some(2))
    }

    #[test]
    fn fixes() {
        assert_eq!(
            fix_action(VerdictClass::RstInjected),
            Some(FixAction::Allow)
        );
        assert_eq!(
            fix_action(VerdictClass::TlsIntercepted),
            Some(FixAction::ExemptFromInspection)
        );
        assert_eq!(fix_action(VerdictClass::ClockSkew), None);
        assert_eq!(fix_action(VerdictClass::Healthy), None);
    }
}
