//! One-line descriptions of the probe's results for the check's report and
//! findings.

use super::{
    ConnectOutcome, HandshakeOutcome, ServerProgress, SniReplay, SniReplayConclusion, TlsProbe,
};
use crate::analysis::rules::issuer::IssuerJudgement;
use std::fmt;

impl HandshakeOutcome {
    /// TCP completed and the server side said nothing after the ClientHello:
    /// what an SNI filter (or a dropping middlebox) looks like.
    pub fn blocked_after_client_hello(&self) -> bool {
        matches!(
            self,
            HandshakeOutcome::ResetAfterClientHello
                | HandshakeOutcome::ClosedAfterClientHello
                | HandshakeOutcome::SilenceAfterClientHello
        )
    }
}

fn progress(p: &ServerProgress) -> String {
    match &p.last_step {
        Some(step) => format!(
            "after {:?}{} ({} server bytes)",
            step,
            if p.last_step_complete {
                ""
            } else {
                ", incomplete"
            },
            p.bytes
        ),
        None => format!("after {} server bytes", p.bytes),
    }
}

impl fmt::Display for HandshakeOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeOutcome::Completed => f.write_str("a completed handshake"),
            HandshakeOutcome::ResetAfterClientHello => f.write_str("a reset"),
            HandshakeOutcome::ClosedAfterClientHello => f.write_str("a FIN (connection closed)"),
            HandshakeOutcome::SilenceAfterClientHello => f.write_str("silence"),
            HandshakeOutcome::ResetDuringHandshake { server } => {
                write!(f, "a reset {}", progress(server))
            }
            HandshakeOutcome::ClosedDuringHandshake { server } => {
                write!(f, "a close {}", progress(server))
            }
            HandshakeOutcome::TimeoutDuringHandshake { server } => {
                write!(f, "silence {}", progress(server))
            }
            HandshakeOutcome::AlertReceived { description, code } => {
                write!(f, "a fatal alert {description} ({code})")
            }
            HandshakeOutcome::Failed { reason, server } => {
                write!(f, "a TLS error: {reason} ({})", progress(server))
            }
        }
    }
}

impl TlsProbe {
    /// `198.18.4.2:443 connected in 0.4 ms`, `refused (RST)`, ...
    pub fn connect_summary(&self) -> String {
        let what = match &self.connect {
            ConnectOutcome::Connected => format!(
                "connected in {}",
                self.connect_ms.map_or("?".into(), |m| format!("{m:.1} ms"))
            ),
            ConnectOutcome::Refused => "refused: a reset answered the SYN".into(),
            ConnectOutcome::Timeout => "no answer to the SYNs (timeout)".into(),
            ConnectOutcome::Unreachable { reason } => format!("unreachable: {reason}"),
            ConnectOutcome::Error { reason } => format!("error: {reason}"),
            ConnectOutcome::NotAttempted { reason } => format!("not attempted: {reason}"),
        };
        format!("{} {what}", self.addr)
    }

    /// The handshake in one line: version, cipher, issuer, client certificate.
    pub fn summary(&self) -> String {
        let sni = self
            .sni
            .as_ref()
            .map_or_else(|| "no SNI".to_string(), |s| format!("SNI {s}"));
        let Some(outcome) = &self.outcome else {
            return format!("{sni}: no TLS (TCP did not connect)");
        };
        if !matches!(outcome, HandshakeOutcome::Completed) {
            return format!("{sni}: the ClientHello was answered by {outcome}");
        }
        let issuer = match &self.issuer_class {
            Some(IssuerJudgement::Genuine { org, by }) => {
                format!("issuer {org} (expected, {})", by.label())
            }
            Some(IssuerJudgement::Foreign {
                issuer_named, by, ..
            }) => format!(
                "issuer {issuer_named} (NOT the expected CA, {})",
                by.label()
            ),
            Some(IssuerJudgement::SelfSignedClaim { org, .. }) => format!(
                "self-signed certificate claiming {org} (not verified: a name check cannot tell)"
            ),
            Some(IssuerJudgement::Unverifiable { by, .. }) => {
                format!("issuer not verified ({})", by.label())
            }
            None if self.chain.is_empty() => "no certificate".into(),
            None => "issuer not judged".into(),
        };
        let cert_req = match self.client_cert_requested {
            Some(true) => "client certificate requested",
            Some(false) => "no client certificate requested",
            None => "client certificate request unknown",
        };
        format!(
            "{sni}: {} {}, {issuer}, {} certificates, {cert_req}{}",
            self.version.as_deref().unwrap_or("?"),
            self.cipher.as_deref().unwrap_or("?"),
            self.chain.len(),
            self.handshake_ms
                .map(|m| format!(", {m:.1} ms"))
                .unwrap_or_default()
        )
    }
}

impl SniReplay {
    /// The hop of the name filter, when the replay placed one.
    pub fn filter_hop(&self) -> Option<u8> {
        match &self.conclusion {
            SniReplayConclusion::SniFilter { filter_hop, .. } if *filter_hop > 0 => {
                Some(*filter_hop)
            }
            _ => None,
        }
    }

    pub fn summary(&self) -> String {
        match &self.conclusion {
            SniReplayConclusion::SniFilter {
                first_reset_ttl,
                filter_hop,
            } => format!(
                "ClientHello replay: the broker name draws a reset from TTL {first_reset_ttl} on, a control name never: a filter on the SNI at hop {filter_hop}."
            ),
            SniReplayConclusion::NotSniSpecific {
                first_reset_ttl,
                control_first_reset_ttl,
                filter_hop,
            } => format!(
                "ClientHello replay: the broker name is reset from TTL {first_reset_ttl}, the control name too (from TTL {control_first_reset_ttl}): a filter at hop {filter_hop} resets TLS to this address whatever the name (or blocks it for a while after a first reset)."
            ),
            SniReplayConclusion::SniDropped { ttl, .. } => format!(
                "ClientHello replay: at TTL {ttl} the control name is answered and the broker name is not: the name is filtered (dropped, not reset)."
            ),
            SniReplayConclusion::NoDifference => {
                "ClientHello replay: the broker name and a control name fare the same.".into()
            }
            SniReplayConclusion::Inconclusive { reason } => {
                format!("ClientHello replay inconclusive: {reason}")
            }
        }
    }
}
