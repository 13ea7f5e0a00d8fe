//! Findings and the one verdict an analysis ends with.

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
    TlsBlocked,
    TlsIntercepted,
    ClockSkew,
    PmtuBlackhole,
    DnsFailure,
    PathLoss,
    Inconclusive,
}

impl VerdictClass {
    pub fn as_str(self) -> &'static str {
        match self {
            VerdictClass::Healthy => "healthy",
            VerdictClass::RstInjected => "rst-injected",
            VerdictClass::RstFromTarget => "rst-from-target",
            VerdictClass::TcpBlocked => "tcp-blocked",
            VerdictClass::TlsBlocked => "tls-blocked",
            VerdictClass::TlsIntercepted => "tls-intercepted",
            VerdictClass::ClockSkew => "clock-skew",
            VerdictClass::PmtuBlackhole => "pmtu-blackhole",
            VerdictClass::DnsFailure => "dns-failure",
            VerdictClass::PathLoss => "path-loss",
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
}

/// Which verdict wins when several servers or checks disagree: the most
/// specific proof of a failure first; `healthy` only when nothing else.
pub const RANKING: [VerdictClass; 11] = [
    VerdictClass::RstInjected,
    VerdictClass::TlsIntercepted,
    VerdictClass::TlsBlocked,
    VerdictClass::TcpBlocked,
    VerdictClass::PmtuBlackhole,
    VerdictClass::ClockSkew,
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    Low,
    Medium,
    High,
}

/// Frames listed per finding; beyond this the filter matches them by content.
pub const MAX_FRAMES_LISTED: usize = 64;

/// One observation with its evidence.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    /// Stable kebab-case kind: a verdict class or an evidence kind such as
    /// `syn-unanswered`, `rst-unattributed`, `ttl-unreliable`.
    pub kind: &'static str,
    pub severity: Severity,
    pub hop: Option<u8>,
    pub address: Option<IpAddr>,
    pub summary: String,
    /// Frame numbers that prove it (as Wireshark numbers them), at most
    /// [`MAX_FRAMES_LISTED`]; `frames_total` counts them all.
    pub frames: Vec<u64>,
    pub frames_total: usize,
    /// A Wireshark display filter that shows the evidence.
    pub filter: String,
}

impl Finding {
    /// A finding whose filter lists its frames, or, when there are too many,
    /// uses `content_filter` (a filter that matches them by content).
    pub fn new(
        kind: &'static str,
        severity: Severity,
        summary: String,
        mut frames: Vec<u64>,
        content_filter: Option<String>,
    ) -> Finding {
        frames.sort_unstable();
        frames.dedup();
        let frames_total = frames.len();
        let filter = match content_filter {
            Some(f) if frames_total > MAX_FRAMES_LISTED => f,
            _ if frames.is_empty() => String::new(),
            _ => frame_filter(&frames[..frames_total.min(MAX_FRAMES_LISTED)]),
        };
        frames.truncate(MAX_FRAMES_LISTED);
        Finding {
            kind,
            severity,
            hop: None,
            address: None,
            summary,
            frames,
            frames_total,
            filter,
        }
    }

    pub fn at(mut self, hop: Option<u8>, address: Option<IpAddr>) -> Finding {
        self.hop = hop;
        self.address = address;
        self
    }
}

/// `frame.number in {1 5 9}`: Wireshark's set syntax.
pub fn frame_filter(frames: &[u64]) -> String {
    let list: Vec<String> = frames.iter().map(u64::to_string).collect();
    format!("frame.number in {{{}}}", list.join(" "))
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
