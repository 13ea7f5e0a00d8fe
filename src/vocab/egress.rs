//! The words of `pathproof egress`: which check a row is, how it went, and
//! which way it went (directly or through the explicit proxy).

use serde::Serialize;
use std::fmt;

/// What one egress row checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EgressCheck {
    /// `/etc/resolv.conf` readable by the service user, with a resolver.
    Resolv,
    /// One name at one resolver (A and AAAA over UDP, or one query over TCP).
    Dns,
    /// ICMP echo to an address: informational, never required.
    Icmp,
    /// TCP connect to the port.
    Tcp,
    /// TLS handshake with SNI, and the issuer rule on the chain.
    Tls,
    /// A DTLS ClientHello to UDP 443, answered by HelloVerifyRequest or
    /// ServerHello.
    Udp,
    /// An SNTP exchange on UDP 123, with the clock's offset.
    Ntp,
    /// `CONNECT host:port` through the explicit proxy.
    Proxy,
}

impl EgressCheck {
    pub fn as_str(self) -> &'static str {
        match self {
            EgressCheck::Resolv => "resolv",
            EgressCheck::Dns => "dns",
            EgressCheck::Icmp => "icmp",
            EgressCheck::Tcp => "tcp",
            EgressCheck::Tls => "tls",
            EgressCheck::Udp => "udp",
            EgressCheck::Ntp => "ntp",
            EgressCheck::Proxy => "proxy",
        }
    }
}

impl fmt::Display for EgressCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a row went. Only `Fail` of a required row fails the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckStatus {
    Pass,
    /// Not as it should be, but the connector works without it (UDP 443
    /// without `--require-udp`, the direct path when a proxy is used, ICMP).
    Warn,
    Fail,
    /// Not attempted: what it needs failed first (no address, no TCP).
    Skip,
}

impl CheckStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Pass => "pass",
            CheckStatus::Warn => "warn",
            CheckStatus::Fail => "fail",
            CheckStatus::Skip => "skip",
        }
    }

    /// As the text table shows it.
    pub fn label(self) -> &'static str {
        match self {
            CheckStatus::Pass => "PASS",
            CheckStatus::Warn => "WARN",
            CheckStatus::Fail => "FAIL",
            CheckStatus::Skip => "SKIP",
        }
    }
}

/// Which way a row's packets went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Via {
    Direct,
    Proxy,
}
