//! What a finding is about. The kebab-case names are a stable interface
//! (JSON `findings[].kind`, documented in the README); the enum keeps the
//! code from comparing them as strings.

use super::VerdictClass;
use serde::Serialize;
use std::fmt;

/// Every kind of finding any command reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    // Kinds that name a verdict class: a critical one proves that failure.
    RstInjected,
    RstFromTarget,
    TcpBlocked,
    UdpBlocked,
    TlsBlocked,
    TlsIntercepted,
    TlsRefused,
    ClockSkew,
    PmtuBlackhole,
    DnsFailure,
    PathLoss,
    IdentityChanged,
    EnrollmentFailed,

    // The connector's journal.
    /// The control connection comes up and goes down again, repeatedly.
    ControlFlapping,
    /// The control connection fails (errors, closes, backoff, "not yet connected").
    ControlDown,
    /// The control connection is up.
    ControlUp,
    /// The time skew the connector itself reports in its status block.
    ConnectorTimeSkew,
    /// When the connector's own certificate expires.
    ConnectorCertExpiry,
    /// `pcap --journal`: the journal's logged control-connection failures
    /// paired with the packets that ended connections at those moments.
    JournalPaired,

    // The host's own facts (`check`, `egress`).
    /// The service user cannot read resolv.conf: a DNS failure whatever
    /// the network does.
    ResolvConfUnreadable,
    ResolvConfUnchecked,
    ServiceUserUnknown,
    /// The SNTP offset; critical above the threshold (then clock skew).
    ClockOffset,
    /// What the live TLS handshake saw.
    TlsHandshake,
    /// A connect() refused without the reset's TTL (no recording).
    TcpRefused,
    ProbeError,

    // Evidence from packets.
    RstUnattributed,
    SynUnanswered,
    IcmpUnreachable,
    IcmpReachable,
    TcpEstablished,
    ServerReset,
    PathMtu,
    MssClamped,
    Tls13Encrypted,
    TlsDowngrade,
    /// The chain's issuer could not be shown genuine or foreign (a
    /// self-signed leaf claiming the broker's organisation, a chain the
    /// pinned check could not verify).
    TlsIssuerUnverified,
    /// An explicit proxy answered the connector's `CONNECT broker:443`
    /// with a status other than 2xx.
    ProxyRefused,
    DnsLookup,
    /// A resolver answered a broker name with an address no broker has
    /// (private, loopback, link-local, CGNAT, documentation, multicast...):
    /// a DNS hijack or sinkhole. Evidence of a `dns-failure` (the DNS
    /// hijack rule proposes that verdict).
    DnsHijack,
    TtlUnreliable,
    PathMismatch,

    // Evidence from traces.
    TcpProxy,
    MiddleboxAnswer,
    LossUnconfirmed,
    IcmpRateLimit,
    IcmpAdminProhibited,
    SilentHop,
    Ecmp,
    TargetReached,
    TargetNotReached,
}

impl FindingKind {
    /// The verdict class a critical finding of this kind proves, if any.
    /// Evidence kinds (`syn-unanswered`, `ecmp`, ...) prove none on their
    /// own: a rule turns them into a class-naming finding when they do.
    pub fn class(self) -> Option<VerdictClass> {
        use FindingKind as K;
        Some(match self {
            K::RstInjected => VerdictClass::RstInjected,
            K::RstFromTarget => VerdictClass::RstFromTarget,
            K::TcpBlocked => VerdictClass::TcpBlocked,
            K::UdpBlocked => VerdictClass::UdpBlocked,
            K::TlsBlocked => VerdictClass::TlsBlocked,
            K::TlsIntercepted => VerdictClass::TlsIntercepted,
            K::TlsRefused => VerdictClass::TlsRefused,
            K::ClockSkew | K::ClockOffset => VerdictClass::ClockSkew,
            K::PmtuBlackhole => VerdictClass::PmtuBlackhole,
            K::DnsFailure | K::ResolvConfUnreadable => VerdictClass::DnsFailure,
            K::PathLoss => VerdictClass::PathLoss,
            K::IdentityChanged => VerdictClass::IdentityChanged,
            K::EnrollmentFailed => VerdictClass::EnrollmentFailed,
            _ => return None,
        })
    }

    /// A fact about the host itself that outranks every network verdict:
    /// with it, what the network does cannot matter (detection.md §6 puts
    /// clock skew ahead of network verdicts; an unreadable resolv.conf
    /// means the connector cannot even resolve its broker).
    pub fn is_host_fact(self) -> bool {
        matches!(
            self,
            FindingKind::ResolvConfUnreadable | FindingKind::ClockOffset
        )
    }

    pub fn as_str(self) -> &'static str {
        use FindingKind as K;
        match self {
            K::RstInjected => "rst-injected",
            K::RstFromTarget => "rst-from-target",
            K::TcpBlocked => "tcp-blocked",
            K::UdpBlocked => "udp-blocked",
            K::TlsBlocked => "tls-blocked",
            K::TlsIntercepted => "tls-intercepted",
            K::TlsRefused => "tls-refused",
            K::ClockSkew => "clock-skew",
            K::PmtuBlackhole => "pmtu-blackhole",
            K::DnsFailure => "dns-failure",
            K::PathLoss => "path-loss",
            K::IdentityChanged => "identity-changed",
            K::EnrollmentFailed => "enrollment-failed",
            K::ControlFlapping => "control-flapping",
            K::ControlDown => "control-down",
            K::ControlUp => "control-up",
            K::ConnectorTimeSkew => "connector-time-skew",
            K::ConnectorCertExpiry => "connector-cert-expiry",
            K::JournalPaired => "journal-paired",
            K::ResolvConfUnreadable => "resolv-conf-unreadable",
            K::ResolvConfUnchecked => "resolv-conf-unchecked",
            K::ServiceUserUnknown => "service-user-unknown",
            K::ClockOffset => "clock-offset",
            K::TlsHandshake => "tls-handshake",
            K::TcpRefused => "tcp-refused",
            K::ProbeError => "probe-error",
            K::RstUnattributed => "rst-unattributed",
            K::SynUnanswered => "syn-unanswered",
            K::IcmpUnreachable => "icmp-unreachable",
            K::IcmpReachable => "icmp-reachable",
            K::TcpEstablished => "tcp-established",
            K::ServerReset => "server-reset",
            K::PathMtu => "path-mtu",
            K::MssClamped => "mss-clamped",
            K::Tls13Encrypted => "tls13-encrypted",
            K::TlsDowngrade => "tls-downgrade",
            K::TlsIssuerUnverified => "tls-issuer-unverified",
            K::ProxyRefused => "proxy-refused",
            K::DnsLookup => "dns-lookup",
            K::DnsHijack => "dns-hijack",
            K::TtlUnreliable => "ttl-unreliable",
            K::PathMismatch => "path-mismatch",
            K::TcpProxy => "tcp-proxy",
            K::MiddleboxAnswer => "middlebox-answer",
            K::LossUnconfirmed => "loss-unconfirmed",
            K::IcmpRateLimit => "icmp-rate-limit",
            K::IcmpAdminProhibited => "icmp-admin-prohibited",
            K::SilentHop => "silent-hop",
            K::Ecmp => "ecmp",
            K::TargetReached => "target-reached",
            K::TargetNotReached => "target-not-reached",
        }
    }

    /// Every kind, for tests and documentation.
    pub const ALL: [FindingKind; 51] = {
        use FindingKind as K;
        [
            K::RstInjected,
            K::RstFromTarget,
            K::TcpBlocked,
            K::UdpBlocked,
            K::TlsBlocked,
            K::TlsIntercepted,
            K::TlsRefused,
            K::ClockSkew,
            K::PmtuBlackhole,
            K::DnsFailure,
            K::PathLoss,
            K::IdentityChanged,
            K::EnrollmentFailed,
            K::ControlFlapping,
            K::ControlDown,
            K::ControlUp,
            K::ConnectorTimeSkew,
            K::ConnectorCertExpiry,
            K::JournalPaired,
            K::ResolvConfUnreadable,
            K::ResolvConfUnchecked,
            K::ServiceUserUnknown,
            K::ClockOffset,
            K::TlsHandshake,
            K::TcpRefused,
            K::ProbeError,
            K::RstUnattributed,
            K::SynUnanswered,
            K::IcmpUnreachable,
            K::IcmpReachable,
            K::TcpEstablished,
            K::ServerReset,
            K::PathMtu,
            K::MssClamped,
            K::Tls13Encrypted,
            K::TlsDowngrade,
            K::TlsIssuerUnverified,
            K::ProxyRefused,
            K::DnsLookup,
            K::DnsHijack,
            K::TtlUnreliable,
            K::PathMismatch,
            K::TcpProxy,
            K::MiddleboxAnswer,
            K::LossUnconfirmed,
            K::IcmpRateLimit,
            K::IcmpAdminProhibited,
            K::SilentHop,
            K::Ecmp,
            K::TargetReached,
            K::TargetNotReached,
        ]
    };
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialised_names_are_the_documented_strings() {
        for k in FindingKind::ALL {
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.as_str()), "{k:?}");
        }
    }

    #[test]
    fn class_naming_kinds_serialise_as_their_class() {
        for k in FindingKind::ALL {
            if let Some(c) = k.class()
                && !k.is_host_fact()
            {
                assert_eq!(k.as_str(), c.as_str(), "{k:?}");
            }
        }
    }

    #[test]
    fn names_are_distinct() {
        let mut names: Vec<&str> = FindingKind::ALL.iter().map(|k| k.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), FindingKind::ALL.len());
    }
}
