//! The TLS rules on connections built packet by packet: a server's fatal
//! alert (its own refusal, or a device's answer in its name), the TLS 1.3
//! downgrade sentinel, and TLS inside an HTTP CONNECT tunnel through an
//! explicit proxy (and the proxy's refusals). Each test asserts the verdict
//! class, its hop (or none) and the counts.

use super::tls::tests::{message, record};
use crate::analysis::rules::issuer::tests::{intermediate, leaf_by, root};
use crate::analysis::{Analysis, AnalysisOptions, Analyzer, FindingKind, VerdictClass};
use crate::packet::testing::{packet, tcp_info};
use crate::packet::{TcpFlags, Transport};
use crate::vocab::Severity;
use std::net::IpAddr;

/// Late 2026, inside rcgen's default validity.
const T0_MS: i64 = 1_790_000_000_000;
const CLIENT: &str = "10.0.0.2:40000";
const BROKER: &str = "198.18.4.2:443";
const PROXY: &str = "10.0.0.1:3128";
const ACK: u8 = TcpFlags::ACK;
const PSH: u8 = TcpFlags::PSH | TcpFlags::ACK;
const FIN: u8 = TcpFlags::FIN | TcpFlags::ACK;

fn extension(kind: u16, data: &[u8]) -> Vec<u8> {
    let mut e = kind.to_be_bytes().to_vec();
    e.extend_from_slice(&u16::try_from(data.len()).unwrap().to_be_bytes());
    e.extend_from_slice(data);
    e
}

/// A ClientHello record: `sni` (server_name) and `versions`
/// (supported_versions) when given.
fn client_hello(sni: Option<&str>, versions: Option<&[u16]>) -> Vec<u8> {
    let mut b = vec![3, 3];
    b.extend_from_slice(&[7; 32]);
    b.push(0);
    b.extend_from_slice(&[0, 2, 0xc0, 0x2f, 1, 0]);
    let mut ext = Vec::new();
    if let Some(name) = sni {
        let mut entry = vec![0];
        entry.extend_from_slice(&u16::try_from(name.len()).unwrap().to_be_bytes());
        entry.extend_from_slice(name.as_bytes());
        let mut list = u16::try_from(entry.len()).unwrap().to_be_bytes().to_vec();
        list.extend(entry);
        ext.extend(extension(0, &list));
    }
    if let Some(v) = versions {
        let mut list = vec![u8::try_from(v.len() * 2).unwrap()];
        for x in v {
            list.extend_from_slice(&x.to_be_bytes());
        }
        ext.extend(extension(43, &list));
    }
    if !ext.is_empty() {
        b.extend_from_slice(&u16::try_from(ext.len()).unwrap().to_be_bytes());
        b.extend(ext);
    }
    record(22, &message(1, &b))
}

/// A TLS 1.2 ServerHello whose random ends with `tail` (the downgrade
/// sentinel, or not).
fn server_hello(tail: &[u8; 8]) -> Vec<u8> {
    let mut b = vec![3, 3];
    b.extend_from_slice(&[9; 24]);
    b.extend_from_slice(tail);
    b.extend_from_slice(&[0, 0xc0, 0x2f, 0]);
    message(2, &b)
}

/// ServerHello, Certificate (`chain`, leaf first), ServerHelloDone.
fn server_flight(chain: &[&[u8]]) -> Vec<u8> {
    let u24 = |n: usize| [(n >> 16) as u8, (n >> 8) as u8, n as u8];
    let mut list = Vec::new();
    for c in chain {
        list.extend_from_slice(&u24(c.len()));
        list.extend_from_slice(c);
    }
    let mut cert = u24(list.len()).to_vec();
    cert.extend(list);
    let mut hs = server_hello(&[0; 8]);
    hs.extend(message(11, &cert));
    hs.extend(message(14, &[]));
    record(22, &hs)
}

fn alert(level: u8, description: u8) -> Vec<u8> {
    record(21, &[level, description])
}

/// One TCP connection, segment by segment, with sequence numbers kept.
struct Conn {
    a: Analyzer,
    frame: u64,
    ms: i64,
    client: &'static str,
    server: &'static str,
    next: [u32; 2],
    /// TTL of the server's packets.
    server_ttl: u8,
}

impl Conn {
    /// SYN, SYN-ACK (TTL `server_ttl`), ACK: frames 1-3.
    fn open(server: &'static str, server_ttl: u8) -> Conn {
        Conn::open_with(&AnalysisOptions::default(), server, server_ttl)
    }

    fn open_with(options: &AnalysisOptions, server: &'static str, server_ttl: u8) -> Conn {
        let mut c = Conn {
            a: Analyzer::new(options),
            frame: 0,
            ms: 0,
            client: CLIENT,
            server,
            next: [1001, 5001],
            server_ttl,
        };
        c.seg(true, TcpFlags::SYN, 1000, b"", None);
        c.seg(false, TcpFlags::SYN | ACK, 5000, b"", None);
        c.seg(true, ACK, 1001, b"", None);
        c
    }

    /// A second connection from `client` to the same server (frames go on).
    fn reopen(&mut self, client: &'static str) {
        self.client = client;
        self.next = [1001, 5001];
        self.seg(true, TcpFlags::SYN, 1000, b"", None);
        self.seg(false, TcpFlags::SYN | ACK, 5000, b"", None);
        self.seg(true, ACK, 1001, b"", None);
    }

    /// One segment; returns its frame.
    fn seg(&mut self, out: bool, flags: u8, seq: u32, payload: &[u8], ttl: Option<u8>) -> u64 {
        self.frame += 1;
        self.ms += 5;
        let (src, dst) = if out {
            (self.client, self.server)
        } else {
            (self.server, self.client)
        };
        let tcp = tcp_info(src, dst, flags, seq, payload.len() as u32);
        let ttl = ttl.unwrap_or(if out { 64 } else { self.server_ttl });
        let mut p = packet(
            self.frame,
            T0_MS + self.ms,
            src,
            dst,
            ttl,
            Transport::Tcp(tcp),
        );
        p.ip_id = Some(u16::try_from(self.frame).unwrap() * 7);
        self.a.push_with_payload(&p, payload);
        self.frame
    }

    /// The next bytes of one side (TTL `ttl`, else the side's own).
    fn send(&mut self, out: bool, payload: &[u8], ttl: Option<u8>) -> u64 {
        let i = usize::from(!out);
        let seq = self.next[i];
        self.next[i] = seq.wrapping_add(payload.len() as u32);
        self.seg(out, PSH, seq, payload, ttl)
    }

    fn fin(&mut self, out: bool, ttl: Option<u8>) -> u64 {
        let i = usize::from(!out);
        let seq = self.next[i];
        self.next[i] = seq.wrapping_add(1);
        self.seg(out, FIN, seq, b"", ttl)
    }

    fn finish(self) -> Analysis {
        self.a.finish(None)
    }
}

fn findings(a: &Analysis, kind: FindingKind) -> Vec<&crate::vocab::Finding> {
    a.findings.iter().filter(|f| f.kind == kind).collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse::<std::net::SocketAddr>().unwrap().ip()
}

// --- item 3: a server's fatal alert -------------------------------------

/// ClientHello, the server's alert `description` (TTL `alert_ttl`), FINs.
fn alerted(sni: Option<&str>, description: u8, alert_ttl: Option<u8>) -> (Analysis, u64, u64) {
    let mut c = Conn::open(BROKER, 60);
    let ch = c.send(true, &client_hello(sni, Some(&[0x0304, 0x0303])), None);
    let al = c.send(false, &alert(2, description), alert_ttl);
    c.fin(false, alert_ttl);
    c.fin(true, None);
    (c.finish(), ch, al)
}

#[test]
fn a_server_alert_from_its_own_hop_is_tls_refused_not_a_filter() {
    // No SNI, handshake_failure from TTL 60 like the SYN-ACK (hop 5).
    let (a, ch, al) = alerted(None, 40, None);
    let v = &a.verdict;
    assert_eq!(v.class, VerdictClass::TlsRefused, "{v:?}");
    assert_eq!(v.class.exit_code(), 1);
    assert_eq!(v.hop, Some(5), "the server's hop (TTL 60)");
    assert_eq!(v.address, Some(ip(BROKER)));
    assert!(
        v.summary.contains("fatal alert handshake_failure"),
        "{}",
        v.summary
    );
    assert!(v.summary.contains("without SNI"), "{}", v.summary);
    assert!(
        v.summary
            .contains("in line with the server's SYN-ACK (TTL 60, hop 5)"),
        "{}",
        v.summary
    );
    let advice = v.next_steps.join(" ");
    assert!(!advice.contains("SNI"), "no SNI filter advice: {advice}");
    assert!(advice.contains("cipher suites"), "{advice}");
    let refused = findings(&a, FindingKind::TlsRefused);
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].severity, Severity::Critical);
    assert_eq!(
        refused[0].frames,
        vec![2, ch, al],
        "SYN-ACK, ClientHello, alert"
    );
    assert!(findings(&a, FindingKind::TlsBlocked).is_empty());
    assert!(a.rsts.is_empty());
}

#[test]
fn each_refusal_says_what_was_refused() {
    for (description, name, advice) in [
        (70, "protocol_version", "TLS versions"),
        (71, "insufficient_security", "cipher suites"),
        (116, "certificate_required", "enrollment"),
        (42, "bad_certificate", "enrollment"),
        (112, "unrecognized_name", "name the connector asks for"),
    ] {
        let (a, _, _) = alerted(Some("co2br.prod.zpath.net"), description, None);
        let v = &a.verdict;
        assert_eq!(v.class, VerdictClass::TlsRefused, "{name}: {v:?}");
        assert_eq!(v.hop, Some(5), "{name}");
        assert!(v.summary.contains(name), "{name}: {}", v.summary);
        assert!(
            v.next_steps[0].contains(advice),
            "{name}: {:?}",
            v.next_steps
        );
        assert_eq!(findings(&a, FindingKind::TlsRefused).len(), 1, "{name}");
    }
    let (a, _, _) = alerted(Some("co2br.prod.zpath.net"), 112, None);
    assert!(
        a.verdict
            .summary
            .contains("does not serve \"co2br.prod.zpath.net\""),
        "{}",
        a.verdict.summary
    );
}

#[test]
fn an_alert_from_a_hop_before_the_server_stays_blocked() {
    // TTL 63 (hop 2) while the server's SYN-ACK has 60 (hop 5).
    for sni in [Some("co2br.prod.zpath.net"), None] {
        let (a, ch, al) = alerted(sni, 40, Some(63));
        let v = &a.verdict;
        assert_eq!(v.class, VerdictClass::TlsBlocked, "{v:?}");
        assert_eq!(v.hop, Some(2));
        assert!(
            v.summary.contains("fatal alert handshake_failure with TTL 63 (hop 2) while the server's own packets come from hop 5"),
            "{}",
            v.summary
        );
        let blocked = findings(&a, FindingKind::TlsBlocked);
        assert_eq!(blocked.len(), 1);
        assert!(blocked[0].frames.contains(&ch) && blocked[0].frames.contains(&al));
        assert!(findings(&a, FindingKind::TlsRefused).is_empty());
        let sni_advice = v.next_steps[0].contains("rejects the broker's name");
        assert_eq!(sni_advice, sni.is_some(), "{:?}", v.next_steps);
        if sni.is_none() {
            assert!(
                !v.next_steps.join(" ").contains("SNI"),
                "{:?}",
                v.next_steps
            );
        }
    }
}

/// One connection refused by the server, another answered by an alert
/// from hop 2: the device's block is the verdict, the refusal stays as a
/// warning.
#[test]
fn a_block_outranks_a_refusal_which_stays_as_evidence() {
    let mut c = Conn::open(BROKER, 60);
    c.send(true, &client_hello(None, None), None);
    let refusal = c.send(false, &alert(2, 70), None);
    c.fin(false, None);
    c.reopen("10.0.0.2:40001");
    c.send(true, &client_hello(None, None), None);
    let forged = c.send(false, &alert(2, 40), Some(63));
    c.fin(false, Some(63));
    let a = c.finish();
    assert_eq!(a.verdict.class, VerdictClass::TlsBlocked, "{:?}", a.verdict);
    assert_eq!(a.verdict.hop, Some(2));
    let b = findings(&a, FindingKind::TlsBlocked);
    assert_eq!(b.len(), 1);
    assert!(b[0].frames.contains(&forged));
    let r = findings(&a, FindingKind::TlsRefused);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].severity, Severity::Warning);
    assert!(r[0].frames.contains(&refusal) && !r[0].frames.contains(&forged));
    assert!(
        r[0].summary.contains("protocol_version"),
        "{}",
        r[0].summary
    );
}

/// An alert with the TLS peer's own TTL, but the peer (its SYN-ACK) is at
/// hop 1 while the path puts the broker at hop 5: a device that terminates
/// TCP refuses in the broker's name.
#[test]
fn an_alert_from_a_tcp_peer_before_the_broker_is_blocked_there() {
    let mut c = Conn::open(BROKER, 64);
    let ch = c.send(
        true,
        &client_hello(Some("co2br.prod.zpath.net"), None),
        None,
    );
    let al = c.send(false, &alert(2, 40), None);
    c.fin(false, None);
    let path = crate::path::Path::from_hop_count(5);
    let a = c.a.finish(Some(&path));
    let v = &a.verdict;
    assert_eq!(v.class, VerdictClass::TlsBlocked, "{v:?}");
    assert_eq!(v.hop, Some(1));
    assert!(
        v.summary.contains(
            "with TTL 64 (hop 1) as the TLS peer's SYN-ACK (TTL 64), while the broker is at hop 5"
        ),
        "{}",
        v.summary
    );
    let b = findings(&a, FindingKind::TlsBlocked);
    assert_eq!(b.len(), 1);
    assert!(b[0].frames.contains(&ch) && b[0].frames.contains(&al));
    assert!(findings(&a, FindingKind::TlsRefused).is_empty());
}

#[test]
fn a_warning_alert_or_close_notify_is_no_refusal() {
    // close_notify (level 1) after the ClientHello, then FIN: no refusal,
    // the old reading (answered by a FIN) stands.
    let (a, _, _) = alerted(None, 0, None);
    assert_eq!(a.verdict.class, VerdictClass::TlsBlocked, "{:?}", a.verdict);
    assert_eq!(a.verdict.hop, None);
    assert!(findings(&a, FindingKind::TlsRefused).is_empty());
}

// --- item 7: the downgrade sentinel --------------------------------------

fn with_sentinel(versions: Option<&[u16]>) -> (Analysis, u64, u64) {
    let mut c = Conn::open(BROKER, 60);
    let ch = c.send(
        true,
        &client_hello(Some("co2br.prod.zpath.net"), versions),
        None,
    );
    let sh = c.send(false, &record(22, &server_hello(b"DOWNGRD\x01")), None);
    c.fin(true, None);
    c.fin(false, None);
    (c.finish(), ch, sh)
}

#[test]
fn the_downgrade_sentinel_is_normal_when_tls13_was_not_offered() {
    for versions in [None, Some(&[0x0303u16, 0x0302][..])] {
        let (a, _, _) = with_sentinel(versions);
        assert!(
            findings(&a, FindingKind::TlsDowngrade).is_empty(),
            "{versions:?}: {:?}",
            a.findings
        );
        assert_eq!(a.verdict.class, VerdictClass::Healthy, "{:?}", a.verdict);
        assert_eq!(a.verdict.hop, None);
    }
}

/// Hundreds of downgraded handshakes to one server are one finding, with
/// the count and every frame (listed up to the cap).
#[test]
fn downgraded_handshakes_to_one_server_are_one_finding() {
    let mut frames = Vec::new();
    let mut c = Conn::open(BROKER, 60);
    for i in 0..40u32 {
        if i > 0 {
            let client: &'static str =
                Box::leak(format!("10.0.0.2:{}", 50_000 + i).into_boxed_str());
            c.reopen(client);
        }
        frames.push(c.send(
            true,
            &client_hello(Some("co2br.prod.zpath.net"), Some(&[0x0304, 0x0303])),
            None,
        ));
        frames.push(c.send(false, &record(22, &server_hello(b"DOWNGRD\x01")), None));
        c.fin(true, None);
        c.fin(false, None);
    }
    let a = c.finish();
    let d = findings(&a, FindingKind::TlsDowngrade);
    assert_eq!(d.len(), 1, "{d:#?}");
    assert!(
        d[0].summary.contains("(40 connections, the first shown)"),
        "{}",
        d[0].summary
    );
    assert_eq!(d[0].frames_total, 80);
    assert_eq!(d[0].frames.len(), 64);
    assert_eq!(d[0].frames[..4], frames[..4]);
    assert_eq!(
        d[0].filter,
        "tls.handshake.type == 2 && tls.handshake.random contains \"DOWNGRD\""
    );
}

#[test]
fn the_downgrade_sentinel_is_flagged_when_tls13_was_offered() {
    let (a, ch, sh) = with_sentinel(Some(&[0x0a0a, 0x0304, 0x0303]));
    let d = findings(&a, FindingKind::TlsDowngrade);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].severity, Severity::Warning);
    assert_eq!(d[0].frames, vec![ch, sh]);
    assert!(d[0].summary.contains("offered TLS 1.3"), "{}", d[0].summary);
    // A warning: the verdict is the TCP one (the handshake completed).
    assert_eq!(a.verdict.class, VerdictClass::Healthy, "{:?}", a.verdict);
    assert_eq!(a.verdict.hop, None);
}

// --- item 9: TLS inside an HTTP CONNECT tunnel ---------------------------

const CONNECT: &[u8] =
    b"CONNECT co2br.prod.zpath.net:443 HTTP/1.1\r\nHost: co2br.prod.zpath.net:443\r\n\r\n";
const ESTABLISHED: &[u8] = b"HTTP/1.1 200 Connection established\r\nVia: proxy\r\n\r\n";

/// Through the proxy (TTL 64: hop 1): CONNECT, the proxy's `answer`,
/// then (2xx) ClientHello and the server's flight with `chain`, and the
/// connector's unknown_ca. `pipelined`: the request and the ClientHello
/// share a segment, so do the answer and the server's flight.
fn tunnel(answer: &[u8], chain: &[&[u8]], pipelined: bool) -> Analysis {
    let mut c = Conn::open(PROXY, 64);
    let ch = client_hello(Some("co2br.prod.zpath.net"), None);
    let flight = server_flight(chain);
    if pipelined {
        c.send(true, &[CONNECT, &ch].concat(), None);
        c.send(false, &[answer, &flight].concat(), None);
    } else {
        c.send(true, CONNECT, None);
        c.send(false, answer, None);
        if answer.starts_with(b"HTTP/1.1 2") {
            c.send(true, &ch, None);
            c.send(false, &flight, None);
        }
    }
    if answer.starts_with(b"HTTP/1.1 2") {
        c.send(true, &alert(2, 48), None);
    }
    c.fin(true, None);
    c.fin(false, None);
    c.finish()
}

#[test]
fn a_foreign_ca_inside_a_connect_tunnel_is_interception_at_the_proxy() {
    let corp = root(Some("Corp Inspection"), "Corp Inspection CA");
    let leaf = leaf_by(&corp);
    for pipelined in [false, true] {
        let a = tunnel(ESTABLISHED, &[&leaf, corp.der()], pipelined);
        let v = &a.verdict;
        assert_eq!(
            v.class,
            VerdictClass::TlsIntercepted,
            "pipelined {pipelined}: {v:?}"
        );
        assert_eq!(v.hop, Some(1), "the proxy's hop (its SYN-ACK, TTL 64)");
        assert_eq!(v.address, Some(ip(PROXY)));
        assert!(
            v.summary.contains(
                "TLS via proxy 10.0.0.1:3128, CONNECT co2br.prod.zpath.net:443 is intercepted"
            ),
            "{}",
            v.summary
        );
        assert!(v.summary.contains("\"Corp Inspection\""), "{}", v.summary);
        assert!(v.summary.contains("alert unknown_ca"), "{}", v.summary);
        assert_eq!(findings(&a, FindingKind::TlsIntercepted).len(), 1);
        assert_eq!(a.flows.len(), 1);
        let t = a.flows[0].tunnel().expect("a tunnel");
        assert_eq!((t.host.as_str(), t.port), ("co2br.prod.zpath.net", 443));
        let answer = t.answer.as_ref().expect("the proxy's answer");
        assert_eq!((answer.status, answer.frame), (200, 5));
        let obs = a.flows[0].tls_observation.as_deref().unwrap();
        assert_eq!(obs.certificates_total, 2);
        let ch_frame = if pipelined { 4 } else { 6 };
        assert_eq!(obs.client_hello.as_ref().unwrap().frame, ch_frame);
        assert!(obs.parse_errors.is_empty(), "{:?}", obs.parse_errors);
    }
}

#[test]
fn a_genuine_chain_inside_a_tunnel_is_healthy_and_named() {
    let z = root(Some("Zscaler Inc."), "Zscaler Root CA");
    let zi = intermediate(Some("Zscaler Inc."), "Zscaler Intermediate", &z);
    let leaf = leaf_by(&zi);
    let a = tunnel(ESTABLISHED, &[&leaf, zi.der()], false);
    assert_eq!(a.verdict.class, VerdictClass::Healthy, "{:?}", a.verdict);
    assert_eq!(a.verdict.hop, None);
    let h = findings(&a, FindingKind::TlsHandshake);
    assert_eq!(h.len(), 1);
    assert!(
        h[0].summary
            .starts_with("TLS via proxy 10.0.0.1:3128, CONNECT co2br.prod.zpath.net:443: "),
        "{}",
        h[0].summary
    );
}

#[test]
fn a_refusal_inside_a_tunnel_is_the_far_ends_without_a_hop() {
    let mut c = Conn::open(PROXY, 64);
    c.send(true, CONNECT, None);
    c.send(false, ESTABLISHED, None);
    c.send(
        true,
        &client_hello(Some("co2br.prod.zpath.net"), None),
        None,
    );
    let al = c.send(false, &alert(2, 116), None);
    c.fin(false, None);
    let a = c.finish();
    let v = &a.verdict;
    assert_eq!(v.class, VerdictClass::TlsRefused, "{v:?}");
    assert_eq!(
        (v.hop, v.address),
        (None, None),
        "the proxy's TTLs cannot place the far end"
    );
    assert!(
        v.summary.contains("through the proxy's tunnel"),
        "{}",
        v.summary
    );
    assert!(v.summary.contains("certificate_required"), "{}", v.summary);
    assert!(v.next_steps[0].contains("enrollment"), "{:?}", v.next_steps);
    let r = findings(&a, FindingKind::TlsRefused);
    assert_eq!(r.len(), 1);
    assert!(r[0].frames.contains(&al));
}

#[test]
fn a_proxy_that_refuses_connect_blocks_at_the_proxy() {
    for (answer, step) in [
        (&b"HTTP/1.1 403 Forbidden\r\n\r\n"[..], "policy forbids"),
        (
            b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n",
            "authenticate",
        ),
    ] {
        let a = tunnel(answer, &[], false);
        let v = &a.verdict;
        assert_eq!(v.class, VerdictClass::TcpBlocked, "{v:?}");
        assert_eq!(v.hop, Some(1));
        assert_eq!(v.address, Some(ip(PROXY)));
        let status = std::str::from_utf8(answer).unwrap().lines().next().unwrap();
        assert!(
            v.summary.contains(&format!("\"{status}\" (frame 5)")),
            "{}",
            v.summary
        );
        assert!(v.next_steps[0].contains(step), "{:?}", v.next_steps);
        let blocked = findings(&a, FindingKind::TcpBlocked);
        assert_eq!(blocked.len(), 1);
        assert_eq!(blocked[0].frames, vec![4, 5], "request and answer");
        assert!(findings(&a, FindingKind::TlsBlocked).is_empty());
    }
}

#[test]
fn a_proxy_that_cannot_reach_the_broker_is_inconclusive() {
    let a = tunnel(b"HTTP/1.1 502 Bad Gateway\r\n\r\n", &[], false);
    let v = &a.verdict;
    assert_eq!(v.class, VerdictClass::Inconclusive, "{v:?}");
    assert_eq!(v.hop, None);
    assert!(v.summary.contains("beyond the proxy"), "{}", v.summary);
    let w = findings(&a, FindingKind::ProxyRefused);
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].severity, Severity::Warning);
    assert_eq!(w[0].hop, Some(1));
    assert!(findings(&a, FindingKind::TcpBlocked).is_empty());
}

#[test]
fn connect_to_another_port_or_other_traffic_is_not_judged() {
    for first in [
        &b"CONNECT www.example.com:80 HTTP/1.1\r\n\r\n"[..],
        b"GET http://co2br.prod.zpath.net:443/ HTTP/1.1\r\n\r\n",
    ] {
        let mut c = Conn::open(PROXY, 64);
        c.send(true, first, None);
        c.send(false, ESTABLISHED, None);
        c.send(
            true,
            &client_hello(Some("co2br.prod.zpath.net"), None),
            None,
        );
        let a = c.finish();
        assert_eq!(
            a.verdict.class,
            VerdictClass::Inconclusive,
            "{:?}",
            a.verdict
        );
        assert_eq!(a.verdict.hop, None);
        assert!(
            a.verdict
                .summary
                .contains("No TCP connection to the broker port")
        );
        assert_eq!(a.flows.len(), 1);
        assert!(a.flows[0].tunnel().is_none());
        assert!(a.flows[0].tls_observation.is_none());
    }
}

#[test]
fn a_proxy_answer_that_never_ends_is_given_up_within_bounds() {
    let mut c = Conn::open(PROXY, 64);
    c.send(true, CONNECT, None);
    let mut header = b"HTTP/1.1 200 OK\r\n".to_vec();
    while header.len() < 9_000 {
        header.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    for chunk in header.chunks(1400) {
        c.send(false, chunk, None);
    }
    c.send(true, &client_hello(None, None), None);
    let a = c.finish();
    let obs = a.flows[0].tls_observation.as_deref().expect("observed");
    assert!(obs.not_tls);
    assert!(obs.connect.as_ref().unwrap().answer.is_none());
    assert!(
        obs.client_hello.is_none(),
        "no TLS read past an unfinished head"
    );
    assert_eq!(a.verdict.class, VerdictClass::Healthy, "{:?}", a.verdict);
    assert_eq!(a.verdict.hop, None);
}
