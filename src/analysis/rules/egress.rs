//! What only `egress` observes: a DTLS ClientHello to UDP 443 and its
//! answer, an SNTP exchange that got no answer, the explicit proxy's answer
//! to CONNECT, and an ICMP echo. TCP, TLS, DNS, resolv.conf and the clock's
//! offset are judged by the rules `check` uses ([`super::probe`],
//! [`super::host`]); a failure's hop by the path rules over a trace.

use super::proxy::{beyond_the_proxy, refusal_step};
use crate::vocab::{Confidence, Verdict, VerdictClass};
use std::net::IpAddr;
use std::time::Duration;

/// What came back to a datagram probe (DTLS on 443, SNTP on 123).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatagramAnswer {
    /// The service answered (`what`: "HelloVerifyRequest", "offset +0.2 s").
    Answered(String),
    /// Something answered that is not the service (a DTLS alert, another
    /// protocol): the path carries the datagram.
    Other(String),
    /// ICMP port unreachable: the host is reached, nothing listens there.
    PortUnreachable,
    /// Nothing within the deadline, after `tries`.
    Silence { tries: u32, waited: Duration },
    /// The probe could not be sent (no route, socket error).
    Error(String),
}

/// A datagram probe of `service` ("DTLS", "SNTP") to `address:port`/udp.
pub fn datagram(service: &str, address: IpAddr, port: u16, answer: &DatagramAnswer) -> Verdict {
    let verdict = |class, confidence, summary: String, next_steps: Vec<String>| Verdict {
        class,
        hop: None,
        address: Some(address),
        confidence,
        summary,
        next_steps,
    };
    match answer {
        DatagramAnswer::Answered(what) => verdict(
            VerdictClass::Healthy,
            Confidence::High,
            format!("{service} on {address} udp/{port} answers: {what}."),
            vec![],
        ),
        DatagramAnswer::Other(what) => verdict(
            VerdictClass::Inconclusive,
            Confidence::Low,
            format!(
                "{address} udp/{port} answers, but not as {service} does: {what}. UDP reaches it; what answers is not the expected service."
            ),
            vec![format!(
                "Check that {address} is the right {service} server, and what answers on udp/{port}."
            )],
        ),
        DatagramAnswer::PortUnreachable => verdict(
            VerdictClass::Inconclusive,
            Confidence::Medium,
            format!(
                "{address} answers udp/{port} with ICMP port unreachable: UDP reaches the host (or a device answering for it), but no {service} server listens there."
            ),
            vec![format!(
                "Check that {address} runs {service} on udp/{port}; a firewall that rejects with port unreachable shows as this too (the trace names its hop)."
            )],
        ),
        DatagramAnswer::Silence { tries, waited } => verdict(
            VerdictClass::UdpBlocked,
            Confidence::Medium,
            format!(
                "No answer from {address} udp/{port} to {tries} {service} request{} in {:.1} s: UDP to it is dropped on the way, or the server is down.",
                if *tries == 1 { "" } else { "s" },
                waited.as_secs_f64()
            ),
            vec![format!(
                "Allow udp/{port} from this host to {address} (and the answers back) on the firewalls on the way."
            )],
        ),
        DatagramAnswer::Error(e) => verdict(
            VerdictClass::Inconclusive,
            Confidence::Low,
            format!("The {service} probe to {address} udp/{port} could not be sent: {e}."),
            vec!["Check this host's routes and firewall (output chain).".into()],
        ),
    }
}

/// The explicit proxy's answer to `CONNECT target:port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProxyAnswer {
    /// A status line (`status` and the line as sent).
    Status { status: u16, line: String },
    /// The proxy itself did not accept the TCP connection.
    Unreachable(String),
    /// It answered something that is not HTTP, or closed.
    NotHttp(String),
    /// No answer in time.
    Silence(Duration),
}

/// The proxy `proxy` (as configured) asked to open a tunnel to
/// `target:port`; `proxy_address` is where it was reached.
pub fn proxy_connect(
    proxy: &str,
    proxy_address: Option<IpAddr>,
    target: &str,
    port: u16,
    answer: &ProxyAnswer,
) -> Verdict {
    let verdict = |class, confidence, summary: String, next_steps: Vec<String>| Verdict {
        class,
        hop: None,
        address: proxy_address,
        confidence,
        summary,
        next_steps,
    };
    match answer {
        ProxyAnswer::Status { status, line } if (200..300).contains(status) => verdict(
            VerdictClass::Healthy,
            Confidence::High,
            format!("The proxy {proxy} opens the tunnel to {target}:{port} (\"{line}\")."),
            vec![],
        ),
        ProxyAnswer::Status { status, line } if beyond_the_proxy(*status) => verdict(
            VerdictClass::Inconclusive,
            Confidence::Low,
            format!(
                "The proxy {proxy} answered CONNECT {target}:{port} with \"{line}\": it could not reach the destination; what fails lies beyond the proxy."
            ),
            vec![format!(
                "Diagnose from the proxy ({proxy}): its log for CONNECT {target}:{port} says why; run `pathproof egress` on the proxy host."
            )],
        ),
        ProxyAnswer::Status { status, line } => verdict(
            VerdictClass::TcpBlocked,
            Confidence::High,
            format!(
                "The proxy {proxy} answered CONNECT {target}:{port} with \"{line}\": it refuses to open the tunnel."
            ),
            vec![refusal_step(*status, port)],
        ),
        ProxyAnswer::Unreachable(e) => verdict(
            VerdictClass::TcpBlocked,
            Confidence::Medium,
            format!("The proxy {proxy} cannot be reached: {e}."),
            vec![format!(
                "Allow TCP from this host to the proxy {proxy}, and check that the proxy runs."
            )],
        ),
        ProxyAnswer::NotHttp(e) => verdict(
            VerdictClass::Inconclusive,
            Confidence::Low,
            format!("{proxy} does not answer CONNECT as an HTTP proxy: {e}."),
            vec![format!(
                "Check the proxy address ({proxy}): the connector expects an HTTP proxy that supports CONNECT."
            )],
        ),
        ProxyAnswer::Silence(waited) => verdict(
            VerdictClass::Inconclusive,
            Confidence::Low,
            format!(
                "The proxy {proxy} accepted the connection but did not answer CONNECT {target}:{port} in {:.1} s.",
                waited.as_secs_f64()
            ),
            vec![format!(
                "Check the proxy's log for CONNECT {target}:{port}; it may be waiting on a slow upstream or DNS."
            )],
        ),
    }
}

/// A name's AAAA answer at one resolver: informational (a connector goes
/// over IPv4 when the name has no AAAA). `answer`: the rcode of the last
/// AAAA answer, `None` when no AAAA query was answered.
pub fn aaaa(name: &str, resolver: IpAddr, answer: Option<&str>, addresses: &[IpAddr]) -> Verdict {
    let (class, summary) = match answer {
        Some(rcode) if addresses.is_empty() => (
            VerdictClass::Healthy,
            format!("{name} has no AAAA at {resolver} ({rcode}): IPv4 only."),
        ),
        Some(rcode) => (
            VerdictClass::Healthy,
            format!(
                "{name} AAAA → {} ({rcode}).",
                addresses
                    .iter()
                    .map(IpAddr::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        None => (
            VerdictClass::Inconclusive,
            format!(
                "{resolver} did not answer the AAAA query for {name} (an IPv4-only connector does not need it; a resolver that drops AAAA queries slows every lookup)."
            ),
        ),
    };
    Verdict {
        class,
        hop: None,
        address: Some(resolver),
        confidence: Confidence::Medium,
        summary,
        next_steps: vec![],
    }
}

/// How a DNS query over TCP 53 went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TcpDnsAnswer {
    /// An answer, whatever its rcode (the name's fate is the UDP row's).
    Answered {
        rcode: String,
    },
    Timeout,
    /// Connection refused, reset or another socket error.
    Error(String),
}

/// The resolver must answer over TCP too: answers longer than a datagram
/// (many broker addresses, DNSSEC) are retried over TCP 53.
pub fn dns_over_tcp(resolver: IpAddr, answer: &TcpDnsAnswer) -> Verdict {
    let (class, confidence, summary) = match answer {
        TcpDnsAnswer::Answered { rcode } => (
            VerdictClass::Healthy,
            Confidence::High,
            format!("{resolver} answers DNS over TCP 53 ({rcode})."),
        ),
        TcpDnsAnswer::Timeout => (
            VerdictClass::TcpBlocked,
            Confidence::Medium,
            format!(
                "{resolver} does not answer DNS over TCP 53: answers too long for UDP (many broker addresses) will fail."
            ),
        ),
        TcpDnsAnswer::Error(e) => (
            VerdictClass::TcpBlocked,
            Confidence::Medium,
            format!(
                "DNS over TCP 53 to {resolver} fails ({e}): answers too long for UDP (many broker addresses) will fail."
            ),
        ),
    };
    Verdict {
        class,
        hop: None,
        address: Some(resolver),
        confidence,
        summary,
        next_steps: if class.is_failure() {
            vec![format!(
                "Allow tcp/53 from this host to {resolver}, and let the resolver serve TCP."
            )]
        } else {
            vec![]
        },
    }
}

/// An ICMP echo: informational (many sites filter ICMP; the connector does
/// not need it).
pub fn echo(address: IpAddr, answered: Option<(u8, f64)>, error: Option<&str>) -> Verdict {
    let (class, summary) = match (answered, error) {
        (Some((hop, ms)), _) => (
            VerdictClass::Healthy,
            format!("{address} answers ICMP echo at hop {hop} in {ms:.1} ms."),
        ),
        (None, Some(e)) => (
            VerdictClass::Inconclusive,
            format!("ICMP echo to {address} not sent: {e}."),
        ),
        (None, None) => (
            VerdictClass::Inconclusive,
            format!(
                "{address} does not answer ICMP echo (often filtered; the connector does not need it)."
            ),
        ),
    };
    Verdict {
        class,
        hop: answered.map(|a| a.0),
        address: Some(address),
        confidence: Confidence::Low,
        summary,
        next_steps: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 18, 4, 2));

    #[test]
    fn datagram_answers() {
        let silence = DatagramAnswer::Silence {
            tries: 2,
            waited: Duration::from_secs(3),
        };
        for (answer, class) in [
            (
                DatagramAnswer::Answered("HelloVerifyRequest".into()),
                VerdictClass::Healthy,
            ),
            (
                DatagramAnswer::Other("alert".into()),
                VerdictClass::Inconclusive,
            ),
            (DatagramAnswer::PortUnreachable, VerdictClass::Inconclusive),
            (silence, VerdictClass::UdpBlocked),
            (
                DatagramAnswer::Error("no route".into()),
                VerdictClass::Inconclusive,
            ),
        ] {
            let v = datagram("DTLS", A, 443, &answer);
            assert_eq!(v.class, class, "{answer:?}");
            assert_eq!(v.hop, None, "a datagram alone places no hop");
            assert!(v.summary.contains("198.18.4.2"), "{}", v.summary);
        }
    }

    #[test]
    fn proxy_answers_use_the_capture_rules_split() {
        let status = |s: u16| ProxyAnswer::Status {
            status: s,
            line: format!("HTTP/1.1 {s} X"),
        };
        let class = |a: &ProxyAnswer| proxy_connect("p:3128", Some(A), "b", 443, a).class;
        assert_eq!(class(&status(200)), VerdictClass::Healthy);
        assert_eq!(class(&status(403)), VerdictClass::TcpBlocked);
        assert_eq!(class(&status(407)), VerdictClass::TcpBlocked);
        assert_eq!(class(&status(302)), VerdictClass::TcpBlocked);
        assert_eq!(class(&status(502)), VerdictClass::Inconclusive);
        assert_eq!(
            class(&ProxyAnswer::Unreachable("refused".into())),
            VerdictClass::TcpBlocked
        );
        assert_eq!(
            class(&ProxyAnswer::Silence(Duration::from_secs(3))),
            VerdictClass::Inconclusive
        );
        let v = proxy_connect("p:3128", Some(A), "b", 443, &status(407));
        assert!(v.next_steps[0].contains("authenticate"));
    }

    #[test]
    fn echo_is_never_a_failure() {
        assert_eq!(echo(A, Some((4, 0.3)), None).hop, Some(4));
        assert!(!echo(A, None, None).class.is_failure());
        assert!(!echo(A, None, Some("no privilege")).class.is_failure());
    }
}
