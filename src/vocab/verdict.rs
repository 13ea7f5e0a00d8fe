//! Verdict classes, the one verdict a command ends with, and its exit code.

use super::Confidence;
use serde::Serialize;
use std::fmt;
use std::net::IpAddr;

/// The failure class of a verdict. The kebab-case strings are a stable
/// interface (JSON `verdict.class`), documented in the README.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VerdictClass {
    Healthy,
    RstInjected,
    RstFromTarget,
    TcpBlocked,
    UdpBlocked,
    TlsBlocked,
    TlsIntercepted,
    /// The TLS server itself refused the offer (a fatal alert from the
    /// server's own hop answering the ClientHello): not a filter.
    TlsRefused,
    ClockSkew,
    PmtuBlackhole,
    DnsFailure,
    PathLoss,
    /// The connector cannot prove its identity any more: its sealed
    /// instance id no longer decrypts (cloned VM, changed hardware
    /// fingerprint). Seen in the connector's journal.
    IdentityChanged,
    /// The cloud rejects the connector's enrollment (provisioning key used
    /// up, invalid, expired or deleted; CSR or login refused). Seen in the
    /// connector's journal.
    EnrollmentFailed,
    Inconclusive,
}

impl VerdictClass {
    pub fn as_str(self) -> &'static str {
        match self {
            VerdictClass::Healthy => "healthy",
            VerdictClass::RstInjected => "rst-injected",
            VerdictClass::RstFromTarget => "rst-from-target",
            VerdictClass::TcpBlocked => "tcp-blocked",
            VerdictClass::UdpBlocked => "udp-blocked",
            VerdictClass::TlsBlocked => "tls-blocked",
            VerdictClass::TlsIntercepted => "tls-intercepted",
            VerdictClass::TlsRefused => "tls-refused",
            VerdictClass::ClockSkew => "clock-skew",
            VerdictClass::PmtuBlackhole => "pmtu-blackhole",
            VerdictClass::DnsFailure => "dns-failure",
            VerdictClass::PathLoss => "path-loss",
            VerdictClass::IdentityChanged => "identity-changed",
            VerdictClass::EnrollmentFailed => "enrollment-failed",
            VerdictClass::Inconclusive => "inconclusive",
        }
    }

    /// Position in [`RANKING`]: lower wins when several verdicts compete.
    pub fn rank(self) -> usize {
        RANKING
            .iter()
            .position(|r| *r == self)
            .unwrap_or(RANKING.len())
    }

    /// A failure was found (exit code 1), as opposed to healthy/inconclusive.
    pub fn is_failure(self) -> bool {
        !matches!(self, VerdictClass::Healthy | VerdictClass::Inconclusive)
    }

    /// `failure`, `no-failure` or `inconclusive` (the `trace --json`
    /// verdict's `status`).
    pub fn status(self) -> &'static str {
        match self {
            VerdictClass::Healthy => "no-failure",
            VerdictClass::Inconclusive => "inconclusive",
            _ => "failure",
        }
    }

    /// The process exit code of a command that ends with this verdict: the
    /// one place exit codes are derived (README "Exit codes").
    pub fn exit_code(self) -> u8 {
        match self {
            VerdictClass::Healthy => EXIT_NO_FAILURE,
            VerdictClass::Inconclusive => EXIT_INCONCLUSIVE,
            _ => EXIT_FAILURE_FOUND,
        }
    }
}

/// No failure found (`healthy`).
pub const EXIT_NO_FAILURE: u8 = 0;
/// A failure was found: any class but `healthy` and `inconclusive`.
pub const EXIT_FAILURE_FOUND: u8 = 1;
/// Bad input or usage, or a missing privilege; no verdict.
pub const EXIT_BAD_INPUT: u8 = 2;
/// The evidence does not decide.
pub const EXIT_INCONCLUSIVE: u8 = 3;

/// Which verdict wins when several servers or checks disagree: the most
/// specific proof of a failure first; `healthy` only when nothing else.
/// A server's own refusal (`tls-refused`, `rst-from-target`) ranks below
/// what a device on the path does: the path is what pathproof proves.
///
/// The connector's own failures (`identity-changed`, `enrollment-failed`,
/// from its journal) rank after clock skew (a wrong clock makes enrollment
/// fail too) and before a server's refusal: with them, the connector never
/// gets as far as the network being able to matter.
pub const RANKING: [VerdictClass; 15] = [
    VerdictClass::RstInjected,
    VerdictClass::TlsIntercepted,
    VerdictClass::TlsBlocked,
    VerdictClass::TcpBlocked,
    VerdictClass::UdpBlocked,
    VerdictClass::PmtuBlackhole,
    VerdictClass::ClockSkew,
    VerdictClass::IdentityChanged,
    VerdictClass::EnrollmentFailed,
    VerdictClass::TlsRefused,
    VerdictClass::RstFromTarget,
    VerdictClass::DnsFailure,
    VerdictClass::PathLoss,
    VerdictClass::Inconclusive,
    VerdictClass::Healthy,
];

impl fmt::Display for VerdictClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The conclusion of an analysis.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Verdict {
    pub class: VerdictClass,
    /// The failing hop, when the evidence places it.
    pub hop: Option<u8>,
    /// The failing hop's address (or the target's, for `rst-from-target`).
    pub address: Option<IpAddr>,
    pub confidence: Confidence,
    /// One sentence.
    pub summary: String,
    pub next_steps: Vec<String>,
}

impl Verdict {
    /// See [`VerdictClass::exit_code`].
    pub fn exit_code(&self) -> u8 {
        self.class.exit_code()
    }

    /// The capture could be read only up to frame `read` (it is damaged
    /// from frame `from` on). Evidence of a failure in the frames read still
    /// stands; "healthy" does not, since the rest was not seen.
    pub fn note_damage(&mut self, read: u64, from: u64) {
        let step = format!(
            "Get an undamaged copy of the capture: frames from {from} on could not be read (a copy cut short or altered in transit?)."
        );
        if self.class == VerdictClass::Healthy {
            self.class = VerdictClass::Inconclusive;
            self.confidence = Confidence::Low;
            self.summary = format!(
                "Nothing wrong in the {read} frames that could be read, but the capture is damaged from frame {from} on and the rest was not analysed."
            );
            self.next_steps.insert(0, step);
        } else {
            self.next_steps.push(step);
        }
    }
}

#[cfg(test)]
mod damage_tests {
    use super::*;

    fn verdict(class: VerdictClass) -> Verdict {
        Verdict {
            class,
            hop: Some(2),
            address: None,
            confidence: Confidence::High,
            summary: "s".into(),
            next_steps: vec![],
        }
    }

    #[test]
    fn healthy_becomes_inconclusive_and_failures_stand() {
        let mut v = verdict(VerdictClass::Healthy);
        v.note_damage(10, 11);
        assert_eq!(v.class, VerdictClass::Inconclusive);
        assert_eq!(v.confidence, Confidence::Low);
        assert!(v.summary.contains("10 frames"), "{}", v.summary);
        assert!(v.next_steps[0].contains("from 11 on"));

        let mut v = verdict(VerdictClass::RstInjected);
        v.note_damage(10, 11);
        assert_eq!(v.class, VerdictClass::RstInjected);
        assert_eq!(v.hop, Some(2));
        assert_eq!(v.summary, "s");
        assert_eq!(v.next_steps.len(), 1);
    }
}
