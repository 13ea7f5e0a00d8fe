//! A live DNS lookup (`pathproof check`'s broker and NTP names): did the
//! name resolve, and if not, why. The client (`check::dns`) only observes
//! (the answer that ended the lookup, every try); the judgement is here,
//! once: [`failure`] names what went wrong, [`findings`] turns it into the
//! findings a check reports.
//!
//! The rule, in order: no server to ask, or a name that is not a DNS name,
//! fail before anything is sent. An answer ends the lookup the way a stub
//! resolver ends it: NXDOMAIN fails; NOERROR fails when no address came for
//! the name (through its CNAME chain, by [`crate::analysis::dns::chain`]'s
//! rule) in any of the answers (A and AAAA); SERVFAIL or another code is
//! the failure only when no server gave a NOERROR or NXDOMAIN. Without any
//! answer, every try failing at the socket (ICMP port unreachable, no
//! route) is `unreachable`; anything else is a timeout.

use crate::analysis::dns::rcode_name;
use crate::vocab::{Finding, FindingKind, Severity};
use serde::Serialize;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

/// Why a lookup gave no address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum DnsFailure {
    NxDomain {
        server: IpAddr,
        name: String,
    },
    ServFail {
        server: IpAddr,
        name: String,
    },
    OtherRcode {
        server: IpAddr,
        name: String,
        rcode: String,
    },
    /// NOERROR, but no A/AAAA record for the name.
    NoAddress {
        server: IpAddr,
        name: String,
    },
    /// No server answered any try.
    Timeout {
        servers: Vec<IpAddr>,
        tries: u32,
        name: String,
    },
    /// Every try failed at the socket (e.g. ICMP port unreachable).
    Unreachable {
        reason: String,
    },
    NoServers,
    InvalidName {
        name: String,
        reason: String,
    },
}

fn join_addrs(servers: &[IpAddr]) -> String {
    servers
        .iter()
        .map(IpAddr::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for DnsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DnsFailure::NxDomain { server, name } => write!(f, "NXDOMAIN from {server} for {name}"),
            DnsFailure::ServFail { server, name } => write!(f, "SERVFAIL from {server} for {name}"),
            DnsFailure::OtherRcode {
                server,
                name,
                rcode,
            } => write!(f, "{rcode} from {server} for {name}"),
            DnsFailure::NoAddress { server, name } => {
                write!(
                    f,
                    "{server} answered NOERROR for {name} but with no A/AAAA record"
                )
            }
            DnsFailure::Timeout {
                servers,
                tries,
                name,
            } => write!(
                f,
                "no answer for {name} from {} ({tries} tries each)",
                join_addrs(servers)
            ),
            DnsFailure::Unreachable { reason } => write!(f, "resolver unreachable: {reason}"),
            DnsFailure::NoServers => f.write_str("no nameserver to ask"),
            DnsFailure::InvalidName { name, reason } => {
                write!(f, "{name:?} is not a valid DNS name: {reason}")
            }
        }
    }
}

/// The answer that ended a lookup: the first NOERROR or NXDOMAIN (a stub
/// resolver stops there), or else the last answer with another code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnswerSeen {
    pub server: IpAddr,
    /// The response code (`crate::analysis::dns::message::Head::rcode`).
    pub rcode: u16,
    /// Some answer to the lookup (A or AAAA, from that server) gave an address.
    pub has_address: bool,
}

/// How one try (one query to one server) ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrySeen<'a> {
    Answered,
    Timeout,
    /// The socket reported an error: `server` at the lookup's port.
    SocketError {
        server: IpAddr,
        error: &'a str,
    },
}

/// What a live lookup observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LookupObservation<'a> {
    /// The name as shown (no trailing dot).
    pub name: &'a str,
    /// The name as given, for a name that is not a DNS name.
    pub given: &'a str,
    /// Why `given` is not a DNS name, when it is not.
    pub name_error: Option<&'a str>,
    /// The servers asked, in order.
    pub servers: &'a [IpAddr],
    /// Rounds over the servers (glibc's `attempts`).
    pub rounds: u32,
    /// The servers' port (53).
    pub port: u16,
    pub answer: Option<AnswerSeen>,
    pub tries: Vec<TrySeen<'a>>,
    /// How long the whole lookup took.
    pub elapsed: Duration,
}

const NOERROR: u16 = 0;
const SERVFAIL: u16 = 2;
const NXDOMAIN: u16 = 3;

/// Why the lookup gave no address, or `None` when it gave one.
pub fn failure(o: &LookupObservation<'_>) -> Option<DnsFailure> {
    if o.servers.is_empty() {
        return Some(DnsFailure::NoServers);
    }
    if let Some(reason) = o.name_error {
        return Some(DnsFailure::InvalidName {
            name: o.given.to_string(),
            reason: reason.to_string(),
        });
    }
    let name = o.name.to_string();
    if let Some(a) = o.answer {
        let server = a.server;
        return match a.rcode {
            NOERROR if a.has_address => None,
            NOERROR => Some(DnsFailure::NoAddress { server, name }),
            NXDOMAIN => Some(DnsFailure::NxDomain { server, name }),
            SERVFAIL => Some(DnsFailure::ServFail { server, name }),
            rcode => Some(DnsFailure::OtherRcode {
                server,
                name,
                rcode: rcode_name(rcode),
            }),
        };
    }
    let all_socket_errors = !o.tries.is_empty()
        && o.tries
            .iter()
            .all(|t| matches!(t, TrySeen::SocketError { .. }));
    if all_socket_errors {
        let mut reasons: Vec<String> = Vec::new();
        for t in &o.tries {
            if let TrySeen::SocketError { server, error } = t {
                let r = format!("{server} port {}: {error}", o.port);
                if !reasons.contains(&r) {
                    reasons.push(r);
                }
            }
        }
        return Some(DnsFailure::Unreachable {
            reason: reasons.join("; "),
        });
    }
    Some(DnsFailure::Timeout {
        servers: o.servers.to_vec(),
        tries: o.rounds.max(1),
        name,
    })
}

/// The finding of a failed lookup (`dns-failure`, critical: the name the
/// connector needs does not resolve from this host).
pub fn failure_finding(f: &DnsFailure, elapsed: Duration) -> Finding {
    Finding::new(
        FindingKind::DnsFailure,
        Severity::Critical,
        format!("DNS: {f} (after {:.0} ms).", elapsed.as_secs_f64() * 1e3),
        Vec::new(),
        None,
    )
}

/// The findings of one live lookup: one `dns-failure` when it gave no
/// address, none when it resolved.
pub fn findings(o: &LookupObservation<'_>) -> Vec<Finding> {
    failure(o)
        .map(|f| failure_finding(&f, o.elapsed))
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const S1: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 18, 10, 2));
    const S2: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 18, 10, 3));

    fn obs<'a>(answer: Option<AnswerSeen>, tries: Vec<TrySeen<'a>>) -> LookupObservation<'a> {
        LookupObservation {
            name: "co2br.lab1.test",
            given: "co2br.lab1.test.",
            name_error: None,
            servers: &[S1, S2],
            rounds: 2,
            port: 53,
            answer,
            tries,
            elapsed: Duration::from_millis(12),
        }
    }

    fn answer(server: IpAddr, rcode: u16, has_address: bool) -> Option<AnswerSeen> {
        Some(AnswerSeen {
            server,
            rcode,
            has_address,
        })
    }

    #[test]
    fn an_address_is_no_failure() {
        let o = obs(answer(S1, 0, true), vec![TrySeen::Answered]);
        assert_eq!(failure(&o), None);
        assert!(findings(&o).is_empty());
    }

    #[test]
    fn answers_that_fail() {
        let name = "co2br.lab1.test".to_string();
        let cases = [
            (
                0,
                DnsFailure::NoAddress {
                    server: S1,
                    name: name.clone(),
                },
            ),
            (
                3,
                DnsFailure::NxDomain {
                    server: S1,
                    name: name.clone(),
                },
            ),
            (
                2,
                DnsFailure::ServFail {
                    server: S1,
                    name: name.clone(),
                },
            ),
            (
                5,
                DnsFailure::OtherRcode {
                    server: S1,
                    name: name.clone(),
                    rcode: "REFUSED".into(),
                },
            ),
        ];
        for (rcode, want) in cases {
            let o = obs(answer(S1, rcode, false), vec![TrySeen::Answered]);
            assert_eq!(failure(&o), Some(want));
        }
        // NXDOMAIN for A fails even when the AAAA answer had an address:
        // the counted answer decides.
        let o = obs(answer(S2, 3, true), vec![TrySeen::Answered]);
        assert!(matches!(failure(&o), Some(DnsFailure::NxDomain { server, .. }) if server == S2));
    }

    #[test]
    fn silence_and_socket_errors() {
        let o = obs(None, vec![TrySeen::Timeout, TrySeen::Answered]);
        assert_eq!(
            failure(&o),
            Some(DnsFailure::Timeout {
                servers: vec![S1, S2],
                tries: 2,
                name: "co2br.lab1.test".into()
            })
        );
        // One timeout among socket errors: the resolver may be there.
        let refused = "port unreachable (Connection refused)";
        let o = obs(
            None,
            vec![
                TrySeen::SocketError {
                    server: S1,
                    error: refused,
                },
                TrySeen::Timeout,
            ],
        );
        assert!(matches!(failure(&o), Some(DnsFailure::Timeout { .. })));
        let o = obs(
            None,
            vec![
                TrySeen::SocketError {
                    server: S1,
                    error: refused,
                },
                TrySeen::SocketError {
                    server: S1,
                    error: refused,
                },
                TrySeen::SocketError {
                    server: S2,
                    error: "no route to host",
                },
            ],
        );
        assert_eq!(
            failure(&o),
            Some(DnsFailure::Unreachable {
                reason: format!(
                    "198.18.10.2 port 53: {refused}; 198.18.10.3 port 53: no route to host"
                )
            })
        );
        // Nothing tried at all is no proof of unreachability.
        let o = obs(None, vec![]);
        assert!(matches!(failure(&o), Some(DnsFailure::Timeout { .. })));
    }

    #[test]
    fn input_errors_come_first() {
        let mut o = obs(None, vec![]);
        o.servers = &[];
        o.name_error = Some("empty");
        assert_eq!(failure(&o), Some(DnsFailure::NoServers));
        o.servers = &[S1];
        assert_eq!(
            failure(&o),
            Some(DnsFailure::InvalidName {
                name: "co2br.lab1.test.".into(),
                reason: "empty".into()
            })
        );
    }

    #[test]
    fn the_finding_reads_like_a_ticket() {
        let o = obs(answer(S1, 3, false), vec![TrySeen::Answered]);
        let f = findings(&o);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].kind, FindingKind::DnsFailure);
        assert_eq!(f[0].severity, Severity::Critical);
        assert_eq!(
            f[0].summary,
            "DNS: NXDOMAIN from 198.18.10.2 for co2br.lab1.test (after 12 ms)."
        );
        assert!(f[0].frames.is_empty());
        let j = serde_json::to_value(failure(&o)).unwrap();
        assert_eq!(j["kind"], "nx-domain");
        assert_eq!(j["server"], "198.18.10.2");
    }
}
