//! DNS hijack: a resolver answers a broker name with an address no broker
//! can have (private, loopback, link-local, shared CGNAT space,
//! documentation, multicast, unspecified or reserved; for IPv6 unique-local,
//! link-local, loopback, documentation, discard-only, multicast or
//! unspecified). The resolver (or a device rewriting DNS on the way: an RPZ
//! zone, a split-horizon zone, a sinkhole, a captive portal) sends the
//! connector somewhere that is not the cloud: `dns-failure`, whatever the
//! connections to that address then show (they are explained by it, see
//! [`crate::analysis::picker`]).
//!
//! The names judged are those the DNS tracker keeps: broker names (its
//! matcher, [`crate::analysis::dns::is_broker_name`], with `--broker-name`)
//! and the CNAME targets their answers lead to. The answer judged is the
//! first response of each exchange, the one a stub resolver accepts.
//!
//! Two decisions, for what an engineer in the field needs:
//!
//! - **198.18.0.0/15 (RFC 2544 benchmarking) is not in the set.** It is
//!   reserved for test networks, and labs put whole simulated clouds there
//!   (pathproof's own namespace lab and the bundled captures use it for the
//!   broker, its routers and resolver: every failing lab scenario would
//!   turn into `dns-failure`). In the field the range shows up in DNS
//!   answers from fake-IP proxies (Clash, Surge, sing-box), which relay each
//!   connection to the real name: not a sinkhole. When such a proxy breaks
//!   the TLS, the issuer rule sees it on the packets.
//! - **An answer the connector then completes a TLS handshake with is not
//!   a hijack.** The connector pins the broker's chain: a clean, complete
//!   handshake at that address means a genuine broker answers there (a
//!   private path to the cloud published by a split-horizon zone), so the
//!   rewrite does no harm.

use crate::analysis::dns::DnsSummary;
use crate::analysis::flows::FlowTable;
use crate::analysis::picker::{Basis, Candidate};
use crate::vocab::{Confidence, Finding, FindingKind, Severity, Verdict, VerdictClass};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Hijacked answers reported (distinct name, address and resolver).
const MAX_REPORTED: usize = 8;

/// The special range `addr` is in, when no broker can have it: its name.
pub fn sinkhole_range(addr: IpAddr) -> Option<&'static str> {
    match addr {
        IpAddr::V4(v4) => v4_range(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4_range(v4),
            None => v6_range(v6),
        },
    }
}

fn v4_range(a: Ipv4Addr) -> Option<&'static str> {
    let [o1, o2, o3, _] = a.octets();
    Some(match (o1, o2, o3) {
        (0, ..) => "unspecified, 0.0.0.0/8",
        (10, ..) => "private, 10.0.0.0/8",
        (172, 16..=31, _) => "private, 172.16.0.0/12",
        (192, 168, _) => "private, 192.168.0.0/16",
        (127, ..) => "loopback, 127.0.0.0/8",
        (169, 254, _) => "link-local, 169.254.0.0/16",
        (100, 64..=127, _) => "shared CGNAT space, 100.64.0.0/10",
        (192, 0, 0) => "IETF protocol assignments, 192.0.0.0/24",
        (192, 0, 2) => "documentation, 192.0.2.0/24",
        (198, 51, 100) => "documentation, 198.51.100.0/24",
        (203, 0, 113) => "documentation, 203.0.113.0/24",
        (224..=239, ..) => "multicast, 224.0.0.0/4",
        (240..=255, ..) => "reserved, 240.0.0.0/4",
        // 198.18.0.0/15 (benchmarking) is left out on purpose: module docs.
        _ => return None,
    })
}

fn v6_range(a: Ipv6Addr) -> Option<&'static str> {
    let s = a.segments();
    Some(if a.is_unspecified() {
        "unspecified, ::"
    } else if a.is_loopback() {
        "loopback, ::1"
    } else if s[0] & 0xfe00 == 0xfc00 {
        "unique local, fc00::/7"
    } else if s[0] & 0xffc0 == 0xfe80 {
        "link-local, fe80::/10"
    } else if s[0] == 0x2001 && s[1] == 0x0db8 {
        "documentation, 2001:db8::/32"
    } else if s[0] == 0x0100 && s[1..4] == [0, 0, 0] {
        "discard-only, 100::/64"
    } else if s[0] & 0xff00 == 0xff00 {
        "multicast, ff00::/8"
    } else {
        return None;
    })
}

/// One hijacked answer.
struct Hijack {
    /// The name as shown: the broker name, and the CNAME target asked.
    name: String,
    /// The name asked (the filter's).
    qname: String,
    answer: IpAddr,
    range: &'static str,
    resolver: IpAddr,
    response_frame: u64,
    frames: Vec<u64>,
}

/// Findings (`dns-hijack`) and one `dns-failure` candidate per hijacked
/// address, about that address (so that it explains what the connections
/// to it show).
pub fn judge(dns: &DnsSummary, table: &FlowTable, findings: &mut Vec<Finding>) -> Vec<Candidate> {
    let genuine_tls = |addr: IpAddr| {
        table.finished.iter().any(|f| {
            f.server.ip() == addr
                && f.tls_observation
                    .as_ref()
                    .is_some_and(|o| o.completed_cleanly())
        })
    };
    let mut hijacks: Vec<Hijack> = Vec::new();
    for x in &dns.exchanges {
        let Some(first) = x.responses.first() else {
            continue;
        };
        for &answer in &first.addresses {
            let Some(range) = sinkhole_range(answer) else {
                continue;
            };
            let resolver = x.server.ip();
            let seen = hijacks
                .iter()
                .any(|h| h.qname == x.qname && h.answer == answer && h.resolver == resolver);
            if seen || hijacks.len() >= MAX_REPORTED || genuine_tls(answer) {
                continue;
            }
            let mut frames = x.query_frames.clone();
            frames.push(first.frame);
            // A CNAME target followed is named with the broker name it serves.
            let name = match dns
                .names
                .iter()
                .find(|n| n.name == x.qname)
                .and_then(|n| n.cname_of.as_deref())
            {
                Some(broker) => format!("{broker} (CNAME {})", x.qname),
                None => x.qname.clone(),
            };
            hijacks.push(Hijack {
                name,
                qname: x.qname.clone(),
                answer,
                range,
                resolver,
                response_frame: first.frame,
                frames,
            });
        }
    }
    let mut candidates: Vec<Candidate> = Vec::new();
    for h in &hijacks {
        let field = if h.answer.is_ipv4() {
            "dns.a"
        } else {
            "dns.aaaa"
        };
        findings.push(
            Finding::new(
                FindingKind::DnsHijack,
                Severity::Critical,
                format!(
                    "{} answers the broker name {} with {} ({}) in frame {}: an address no broker has, a DNS hijack or sinkhole",
                    h.resolver, h.name, h.answer, h.range, h.response_frame
                ),
                h.frames.clone(),
                Some(format!(
                    "dns.qry.name == \"{}\" && {field} == {}",
                    h.qname, h.answer
                )),
            )
            .at(None, Some(h.resolver)),
        );
        if candidates.iter().any(|c| c.server == Some(h.answer)) {
            continue;
        }
        let verdict = Verdict {
            class: VerdictClass::DnsFailure,
            hop: None,
            address: Some(h.resolver),
            confidence: Confidence::High,
            summary: format!(
                "The resolver {} rewrites the cloud's names: it answers the broker name {} with {} ({}; frame {}), an address no broker has, so the connector is sent there instead of to a broker (a DNS hijack or sinkhole).",
                h.resolver, h.name, h.answer, h.range, h.response_frame
            ),
            next_steps: vec![
                format!(
                    "Point the connector at a resolver that resolves {} publicly, or fix the split-horizon / RPZ / sinkhole zone on {} that rewrites it: the connector must get the cloud's own addresses.",
                    h.qname, h.resolver
                ),
                format!(
                    "Check from the connector: `dig {} @{}` against `dig {} @<a public resolver>`.",
                    h.qname, h.resolver, h.qname
                ),
            ],
        };
        candidates.push(
            Candidate::new(verdict)
                .basis(Basis::DnsHijack)
                .about(Some(h.answer)),
        );
    }
    candidates
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let r = |s: &str| sinkhole_range(s.parse().unwrap());
        for (a, want) in [
            ("10.1.2.3", Some("private, 10.0.0.0/8")),
            ("172.31.0.1", Some("private, 172.16.0.0/12")),
            ("172.32.0.1", None),
            ("192.168.1.1", Some("private, 192.168.0.0/16")),
            ("127.0.0.1", Some("loopback, 127.0.0.0/8")),
            ("0.0.0.0", Some("unspecified, 0.0.0.0/8")),
            ("169.254.169.254", Some("link-local, 169.254.0.0/16")),
            ("100.64.0.1", Some("shared CGNAT space, 100.64.0.0/10")),
            ("100.128.0.1", None),
            ("203.0.113.7", Some("documentation, 203.0.113.0/24")),
            ("239.1.1.1", Some("multicast, 224.0.0.0/4")),
            ("255.255.255.255", Some("reserved, 240.0.0.0/4")),
            // The lab's (and RFC 2544's) benchmarking range: left out.
            ("198.18.4.2", None),
            ("198.19.255.1", None),
            ("165.225.0.1", None),
            ("::", Some("unspecified, ::")),
            ("::1", Some("loopback, ::1")),
            ("fd00::1", Some("unique local, fc00::/7")),
            ("fe80::1", Some("link-local, fe80::/10")),
            ("2001:db8::5", Some("documentation, 2001:db8::/32")),
            ("100::1", Some("discard-only, 100::/64")),
            ("ff02::1", Some("multicast, ff00::/8")),
            ("::ffff:10.0.0.1", Some("private, 10.0.0.0/8")),
            ("64:ff9b::a00:1", None),
            ("2a03:2880::1", None),
        ] {
            assert_eq!(r(a), want, "{a}");
        }
    }
}
