//! The analysis engine on constructed packets: each lab scenario in miniature,
//! built as wire bytes, decoded by the shared decoder and judged.

use etherparse::PacketBuilder;
use pathproof::analysis::{Analysis, AnalysisOptions, Analyzer, RstOrigin, VerdictClass};
use pathproof::packet::{Direction, decode_ip};
use pathproof::path::{Hop, Path, PathSource};
use pathproof::vocab::FindingKind;
use std::net::IpAddr;

const CONN: [u8; 4] = [198, 18, 1, 2];
const BROKER: [u8; 4] = [198, 18, 4, 2];

/// A tiny capture: packets as IP bytes with a time in microseconds.
#[derive(Default)]
struct Capture {
    frames: Vec<(i64, Vec<u8>)>,
}

impl Capture {
    /// A TCP segment between the connector's `port` and the broker's 443; the
    /// sequence number is fixed per port, so a repeated SYN is a retransmission.
    fn tcp(&mut self, us: i64, out: bool, ttl: u8, port: u16, flags: &str, id: u16) {
        let seq = u32::from(port) * 1000 + u32::from(!out);
        let (src, dst, sp, dp) = if out {
            (CONN, BROKER, port, 443)
        } else {
            (BROKER, CONN, 443, port)
        };
        let mut b = PacketBuilder::ipv4(src, dst, ttl).tcp(
            sp,
            dp,
            seq,
            if flags.contains('R') { 0 } else { 64240 },
        );
        if flags.contains('S') {
            b = b.syn();
        }
        if flags.contains('A') {
            b = b.ack(1);
        }
        if flags.contains('R') {
            b = b.rst();
        }
        if flags.contains('F') {
            b = b.fin();
        }
        let mut bytes = Vec::new();
        b.write(
            &mut bytes,
            if flags.contains('P') {
                &[0x16; 100]
            } else {
                &[]
            },
        )
        .unwrap();
        // Set the IP ID (etherparse writes 0).
        bytes[4..6].copy_from_slice(&id.to_be_bytes());
        self.frames.push((us, bytes));
    }

    /// A data segment with an explicit sequence number, ack and payload size.
    fn data(&mut self, us: i64, out: bool, ttl: u8, seq: u32, ack: u32, len: usize) {
        let (src, dst, sp, dp) = if out {
            (CONN, BROKER, 40000, 443)
        } else {
            (BROKER, CONN, 443, 40000)
        };
        let mut bytes = Vec::new();
        PacketBuilder::ipv4(src, dst, ttl)
            .tcp(sp, dp, seq, 64240)
            .ack(ack)
            .write(&mut bytes, &vec![0x17; len])
            .unwrap();
        self.frames.push((us, bytes));
    }

    fn ping(&mut self, us: i64, ttl: u8) {
        let mut bytes = Vec::new();
        PacketBuilder::ipv4(BROKER, CONN, ttl)
            .icmpv4_echo_reply(7, 1)
            .write(&mut bytes, &[0; 16])
            .unwrap();
        self.frames.push((us, bytes));
    }

    fn analyse(&self, path: Option<&Path>) -> Analysis {
        let mut a = Analyzer::new(&AnalysisOptions::default());
        for (i, (us, bytes)) in self.frames.iter().enumerate() {
            let d = decode_ip(i as u64 + 1, us * 1000, Direction::Unknown, bytes).unwrap();
            a.push(&d.packet);
        }
        a.finish(path)
    }
}

/// Three connection attempts whose SYNs get `answer` from TTL `ttl`.
fn refused(ttl: u8, with_ping: bool) -> Capture {
    let mut c = Capture::default();
    if with_ping {
        c.ping(0, 61);
    }
    for k in 0..3u16 {
        let t = 1_000_000 * i64::from(k + 1);
        c.tcp(t, true, 64, 40000 + k, "S", 10);
        c.tcp(t + 300, false, ttl, 40000 + k, "RA", 0);
    }
    c
}

fn mtr_path() -> Path {
    let hops = (1..=4u8)
        .map(|h| Hop {
            hop: h,
            addresses: vec![IpAddr::from([198, 18, h, if h == 4 { 2 } else { 1 }])],
            names: Vec::new(),
            asn: None,
            stats: None,
        })
        .collect();
    Path {
        source: PathSource::MtrReport,
        target: Some(IpAddr::from(BROKER)),
        target_hop: Some(4),
        hops,
    }
}

#[test]
fn healthy_handshakes() {
    let mut c = Capture::default();
    for k in 0..3u16 {
        let t = 1_000_000 * i64::from(k + 1);
        c.tcp(t, true, 64, 40000 + k, "S", 1);
        c.tcp(t + 900, false, 61, 40000 + k, "SA", 0);
        c.tcp(t + 950, true, 64, 40000 + k, "AP", 2);
        c.tcp(t + 1900, false, 61, 40000 + k, "AP", 77);
        c.tcp(t + 2900, true, 64, 40000 + k, "AF", 3);
        c.tcp(t + 3900, false, 61, 40000 + k, "AF", 78);
    }
    let a = c.analyse(Some(&Path::from_hop_count(4)));
    assert_eq!(a.verdict.class, VerdictClass::Healthy);
    assert_eq!(a.verdict.hop, None);
    assert!(
        a.findings
            .iter()
            .all(|f| f.severity == pathproof::analysis::Severity::Info)
    );
}

#[test]
fn rst_at_hop1_with_hop_count() {
    let a = refused(64, false).analyse(Some(&Path::from_hop_count(4)));
    assert_eq!(a.verdict.class, VerdictClass::RstInjected);
    assert_eq!(a.verdict.hop, Some(1));
    assert_eq!(a.verdict.address, None);
    assert_eq!(a.rsts.len(), 3);
    assert!(
        a.rsts
            .iter()
            .all(|r| r.origin == RstOrigin::Injected && r.hop == 1)
    );
    let f = &a.findings[0];
    assert_eq!(f.kind, FindingKind::RstInjected);
    // Each reset and the SYN it answers.
    assert_eq!(f.frames, vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(f.filter, "frame.number in {1, 2, 3, 4, 5, 6}");
}

#[test]
fn rst_at_hop2_named_by_the_mtr_path() {
    let a = refused(63, false).analyse(Some(&mtr_path()));
    assert_eq!(a.verdict.class, VerdictClass::RstInjected);
    assert_eq!(a.verdict.hop, Some(2));
    assert_eq!(a.verdict.address, Some(IpAddr::from([198, 18, 2, 1])));
}

#[test]
fn ping_replies_prove_injection_without_a_path() {
    let a = refused(64, true).analyse(None);
    assert_eq!(a.verdict.class, VerdictClass::RstInjected);
    assert_eq!(a.verdict.hop, Some(1));
    assert_eq!(a.rsts[0].genuine_hop, Some(4));
}

#[test]
fn without_path_or_baseline_it_says_it_cannot_tell() {
    let a = refused(64, false).analyse(None);
    assert_eq!(a.verdict.class, VerdictClass::Inconclusive);
    assert!(a.verdict.summary.contains("hop 1"), "{}", a.verdict.summary);
}

#[test]
fn broker_refuses() {
    let a = refused(61, false).analyse(Some(&Path::from_hop_count(4)));
    assert_eq!(a.verdict.class, VerdictClass::RstFromTarget);
    assert_eq!(a.verdict.hop, Some(4));
    assert_eq!(a.verdict.address, Some(IpAddr::from(BROKER)));
}

#[test]
fn silent_drop_is_tcp_blocked_without_a_hop() {
    let mut c = Capture::default();
    c.ping(0, 61);
    for k in 0..2u16 {
        let t = 5_000_000 * i64::from(k);
        c.tcp(t, true, 64, 40000 + k, "S", 1);
        c.tcp(t + 1_000_000, true, 64, 40000 + k, "S", 2);
        c.tcp(t + 3_000_000, true, 64, 40000 + k, "S", 3);
    }
    let a = c.analyse(Some(&Path::from_hop_count(4)));
    assert_eq!(a.verdict.class, VerdictClass::TcpBlocked);
    assert_eq!(a.verdict.hop, None);
    let f = a
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::TcpBlocked)
        .unwrap();
    assert!(
        f.summary.contains("6 SYNs (4 retransmissions)"),
        "{}",
        f.summary
    );
}

#[test]
fn admin_prohibited_names_the_hop() {
    let mut c = Capture::default();
    c.tcp(0, true, 64, 40000, "S", 1);
    // r2 (198.18.2.2, initial TTL 64, one router away → TTL 63) answers
    // with ICMP type 3 code 13 quoting the SYN.
    let syn = c.frames[0].1.clone();
    let mut icmp = Vec::new();
    PacketBuilder::ipv4([198, 18, 2, 2], CONN, 63)
        .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
            etherparse::icmpv4::DestUnreachableHeader::FilterProhibited,
        ))
        .write(&mut icmp, &syn)
        .unwrap();
    c.frames.push((200, icmp));
    c.tcp(1_000_000, true, 64, 40000, "S", 2);
    let a = c.analyse(None);
    assert_eq!(a.verdict.class, VerdictClass::TcpBlocked);
    assert_eq!(a.verdict.hop, Some(2));
    assert_eq!(a.verdict.address, Some(IpAddr::from([198, 18, 2, 2])));
}

#[test]
fn no_broker_traffic_is_inconclusive() {
    let c = Capture::default();
    let a = c.analyse(None);
    assert_eq!(a.verdict.class, VerdictClass::Inconclusive);
}

/// Handshake, a small segment that is acknowledged, then a full-size one.
fn upload(c: &mut Capture) {
    let isn = 40000 * 1000;
    c.tcp(0, true, 64, 40000, "S", 1);
    c.tcp(500, false, 61, 40000, "SA", 0);
    c.data(600, true, 64, isn + 1, 1, 0);
    c.data(700, true, 64, isn + 1, 1, 300);
    c.data(1_200, false, 61, 1, isn + 301, 0);
    c.data(1_300, true, 64, isn + 301, 1, 1448);
}

#[test]
fn full_size_segment_resent_without_icmp_is_a_pmtu_black_hole() {
    let mut c = Capture::default();
    upload(&mut c);
    for k in 1..=4 {
        c.data(1_300 + k * 200_000, true, 64, 40000 * 1000 + 301, 1, 1448);
    }
    let a = c.analyse(Some(&Path::from_hop_count(4)));
    assert_eq!(
        a.verdict.class,
        VerdictClass::PmtuBlackhole,
        "{}",
        a.verdict.summary
    );
    assert_eq!(a.verdict.hop, None);
    let f = a
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::PmtuBlackhole)
        .unwrap();
    assert_eq!(f.frames, vec![6, 7, 8, 9, 10]);
}

#[test]
fn fragmentation_needed_from_hop_2_is_information() {
    let mut c = Capture::default();
    upload(&mut c);
    let big = c.frames.last().unwrap().1.clone();
    let mut icmp = Vec::new();
    PacketBuilder::ipv4([198, 18, 2, 2], CONN, 63)
        .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
            etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1400 },
        ))
        .write(&mut icmp, &big[..28])
        .unwrap();
    c.frames.push((1_400, icmp));
    // The segment resent smaller, and acknowledged.
    c.data(1_500, true, 64, 40000 * 1000 + 301, 1, 1348);
    c.data(1_900, false, 61, 1, 40000 * 1000 + 301 + 1348, 0);
    let a = c.analyse(Some(&Path::from_hop_count(4)));
    assert_eq!(
        a.verdict.class,
        VerdictClass::Healthy,
        "{}",
        a.verdict.summary
    );
    let f = a
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::PathMtu)
        .unwrap();
    assert_eq!(f.hop, Some(2));
    assert!(f.summary.contains("1400"), "{}", f.summary);
}
