//! Issue 12, items 9, 10 and 12 on constructed captures, through the whole
//! `pcap` pipeline (reader, decoder, analysis, reports): PPPoE sessions,
//! frames that carry no IP, record fractions of a second or more, traffic
//! on other ports than the judged one, and DNS answers that hijack a broker
//! name.

use etherparse::PacketBuilder;
use pathproof::analysis::{AnalysisOptions, VerdictClass};
use pathproof::app::{PcapReport, analyse_capture};
use pathproof::capture::CaptureReader;
use pathproof::path::Path;
use pathproof::vocab::FindingKind;
use std::io::Cursor;

const CONN: [u8; 4] = [10, 0, 0, 2];
const BROKER: [u8; 4] = [203, 0, 113, 9];
const GW_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];
const CONN_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];

const PCAP_US: u32 = 0xa1b2_c3d4;
const PCAP_NS: u32 = 0xa1b2_3c4d;

/// A little-endian pcap of Ethernet frames: (seconds, fraction, bytes).
fn pcap(magic: u32, frames: &[(u32, u32, Vec<u8>)]) -> Vec<u8> {
    let mut v = Vec::new();
    for x in [magic.to_le_bytes(), [2, 0, 4, 0], [0; 4], [0; 4]] {
        v.extend(x);
    }
    v.extend(65535u32.to_le_bytes());
    v.extend(1u32.to_le_bytes());
    for (sec, frac, data) in frames {
        v.extend(sec.to_le_bytes());
        v.extend(frac.to_le_bytes());
        v.extend((data.len() as u32).to_le_bytes());
        v.extend((data.len() as u32).to_le_bytes());
        v.extend(data);
    }
    v
}

fn analyse(bytes: Vec<u8>, path: Option<Path>, options: &AnalysisOptions) -> PcapReport {
    let reader = CaptureReader::from_reader(Box::new(Cursor::new(bytes))).unwrap();
    analyse_capture(reader, "test.pcap".into(), path, options).unwrap()
}

fn json(r: &PcapReport) -> serde_json::Value {
    serde_json::from_str(&pathproof::report::json::render_pcap(r)).unwrap()
}

fn arp_request() -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend(CONN_MAC);
    f.extend([0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend(CONN_MAC);
    f.extend(CONN);
    f.extend([0; 6]);
    f.extend([10, 0, 0, 1]);
    f.resize(60, 0);
    f
}

/// An Ethernet frame of `ether_type` with `body`, padded to 60 bytes.
fn eth(ether_type: u16, body: &[u8]) -> Vec<u8> {
    let mut f = vec![0x01, 0x80, 0xc2, 0, 0, 0x0e];
    f.extend(CONN_MAC);
    f.extend(ether_type.to_be_bytes());
    f.extend(body);
    f.resize(60, 0);
    f
}

/// A PPPoE session frame (behind `tags`) carrying `ppp_protocol`.
fn pppoe(src_mac: [u8; 6], tags: &[u16], ppp_protocol: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = if src_mac == GW_MAC {
        CONN_MAC.to_vec()
    } else {
        GW_MAC.to_vec()
    };
    f.extend(src_mac);
    for (i, tpid) in tags.iter().enumerate() {
        f.extend(tpid.to_be_bytes());
        f.extend((100 + i as u16).to_be_bytes());
    }
    f.extend(0x8864u16.to_be_bytes());
    f.extend([0x11, 0, 0x00, 0x2a]);
    f.extend(((payload.len() + 2) as u16).to_be_bytes());
    f.extend(ppp_protocol.to_be_bytes());
    f.extend(payload);
    f.resize(f.len().max(60), 0);
    f
}

/// An IPv4 TCP segment between the connector's `port` and the broker's 443.
fn tcp(out: bool, ttl: u8, port: u16, flags: &str) -> Vec<u8> {
    let (src, dst, sp, dp) = if out {
        (CONN, BROKER, port, 443)
    } else {
        (BROKER, CONN, 443, port)
    };
    let seq = u32::from(port) * 1000 + u32::from(!out);
    let mut b = PacketBuilder::ipv4(src, dst, ttl).tcp(sp, dp, seq, 64240);
    if flags.contains('S') {
        b = b.syn();
    }
    if flags.contains('A') {
        b = b.ack(u32::from(port) * 1000 + 1);
    }
    if flags.contains('R') {
        b = b.rst();
    }
    let mut v = Vec::new();
    b.write(&mut v, &[]).unwrap();
    v
}

// ------------------------------------------------------------ item 9: PPPoE

/// Resets forged at hop 2 inside a PPPoE session behind QinQ: the same
/// verdict as on plain Ethernet (LCP echoes and discovery beside them are
/// counted as frames without IP).
#[test]
fn pppoe_over_qinq_resets_are_placed() {
    let tags = [0x88a8, 0x8100];
    let mut frames = vec![
        (1, 0, eth(0x8863, &[0x11, 0x09, 0, 0, 0, 0])),
        (
            1,
            10,
            pppoe(CONN_MAC, &tags, 0xc021, &[9, 1, 0, 8, 0, 0, 0, 0]),
        ),
    ];
    for k in 0..3u16 {
        let sec = 2 + u32::from(k);
        frames.push((
            sec,
            0,
            pppoe(CONN_MAC, &tags, 0x0021, &tcp(true, 64, 40000 + k, "S")),
        ));
        frames.push((
            sec,
            900,
            pppoe(GW_MAC, &tags, 0x0021, &tcp(false, 63, 40000 + k, "RA")),
        ));
    }
    let r = analyse(
        pcap(PCAP_US, &frames),
        Some(Path::from_hop_count(4)),
        &AnalysisOptions::default(),
    );
    let v = &r.analysis.verdict;
    assert_eq!(v.class, VerdictClass::RstInjected, "{}", v.summary);
    assert_eq!(v.hop, Some(2));
    assert_eq!(r.analysis.rsts.len(), 3);
    assert_eq!(r.input.ip_packets, 6);
    assert_eq!(r.input.non_ip_frames, 2);
    assert_eq!(
        (
            r.input.non_ip_kinds.pppoe_discovery,
            r.input.non_ip_kinds.ppp_control
        ),
        (1, 1)
    );
    let text = pathproof::report::text::render_pcap(&r);
    assert!(
        text.contains("(2 frames carry no IP: 1 PPPoE discovery, 1 PPP control (LCP, IPCP...))"),
        "{text}"
    );
}

// --------------------------------------------------- item 9: no IP at all

#[test]
fn a_capture_without_ip_says_so() {
    let frames: Vec<_> = (0..86u32).map(|i| (100 + i, 0, arp_request())).collect();
    let r = analyse(pcap(PCAP_US, &frames), None, &AnalysisOptions::default());
    let v = &r.analysis.verdict;
    assert_eq!(v.class, VerdictClass::Inconclusive);
    assert_eq!(v.hop, None);
    assert_eq!(
        v.summary,
        "86 of 86 frames carry no IP (86 ARP): nothing here can show the path to the broker."
    );
    assert_eq!((r.input.frames, r.input.ip_packets), (86, 0));
    let j = json(&r);
    assert_eq!(j["input"]["non_ip_frames"], 86);
    assert_eq!(j["input"]["non_ip_kinds"]["arp"], 86);
    assert_eq!(j["input"]["non_ip_kinds"]["lldp"], 0);
    assert_eq!(j["verdict"]["class"], "inconclusive");
}

#[test]
fn non_ip_kinds_are_counted_beside_ip() {
    let stp = {
        let mut f = vec![0x01, 0x80, 0xc2, 0, 0, 0];
        f.extend(CONN_MAC);
        f.extend(39u16.to_be_bytes());
        f.extend([0x42, 0x42, 0x03, 0, 0]);
        f.resize(60, 0);
        f
    };
    let mut dns = vec![0; 14];
    dns[12..14].copy_from_slice(&[0x08, 0x00]);
    PacketBuilder::ipv4(CONN, [10, 0, 0, 53], 64)
        .udp(5000, 5353)
        .write(&mut dns, &[0; 12])
        .unwrap();
    let frames = vec![
        (1, 0, arp_request()),
        (1, 1, eth(0x88cc, &[2, 7, 4, 0, 0, 0, 0, 0, 1])),
        (1, 2, stp),
        (1, 3, eth(0x88b5, &[0; 4])),
        (1, 4, dns),
    ];
    let r = analyse(pcap(PCAP_US, &frames), None, &AnalysisOptions::default());
    let k = r.input.non_ip_kinds;
    assert_eq!((k.arp, k.lldp, k.stp, k.other, k.total()), (1, 1, 1, 1, 4));
    let v = &r.analysis.verdict;
    assert_eq!(v.class, VerdictClass::Inconclusive);
    assert_eq!(v.hop, None);
    assert!(
        v.summary
            .starts_with("No TCP connection to the broker port")
            && v.summary.ends_with(
                " 4 of 5 frames carry no IP (1 ARP, 1 LLDP, 1 spanning tree, 1 other non-IP)."
            ),
        "{}",
        v.summary
    );
}

// ------------------------------------- item 12: fraction of a second ≥ 1 s

#[test]
fn microsecond_field_of_a_second_or_more_is_warned_and_clamped() {
    let frames = vec![
        (100, 0, arp_request()),
        (100, 2_147_483_647, arp_request()),
        (101, 5, arp_request()),
        (101, 1_000_000, arp_request()),
    ];
    let r = analyse(pcap(PCAP_US, &frames), None, &AnalysisOptions::default());
    let w: Vec<_> = r
        .warnings
        .iter()
        .filter(|w| w.message.contains("a second or more"))
        .collect();
    assert_eq!(w.len(), 1, "{:?}", r.warnings);
    assert_eq!(w[0].frame, Some(2));
    assert_eq!(w[0].offset, 24 + 16 + 60);
    assert!(
        w[0].message.starts_with(
            "frame 2: the record header's microsecond field is 2147483647, a second or more (2 records are like this, the largest 2147483647)"
        ) && w[0].message.contains("up to 2147 s more"),
        "{}",
        w[0].message
    );
    // Clamped to the last microsecond of its own second (not 2147 s on).
    let mut reader =
        CaptureReader::from_reader(Box::new(Cursor::new(pcap(PCAP_US, &frames)))).unwrap();
    let mut ts = Vec::new();
    while let Some(f) = reader.next_frame().unwrap() {
        ts.push(f.ts_ns);
    }
    assert_eq!(ts[1] - ts[0], 999_999_000);
    assert_eq!(ts[3], 101_999_999_000);
    assert_eq!(
        (r.analysis.first_ts_ns, r.analysis.last_ts_ns),
        (None, None),
        "ARP only: no IP time span"
    );
    let j = json(&r);
    assert_eq!(j["warnings"][0]["frame"], 2);

    // Nanosecond pcaps: the limit is 1e9, and 999,999,999 is fine.
    let frames = vec![
        (100, 999_999_999, arp_request()),
        (100, 1_000_000_000, arp_request()),
    ];
    let r = analyse(pcap(PCAP_NS, &frames), None, &AnalysisOptions::default());
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert!(r.warnings[0].message.starts_with(
        "frame 2: the record header's nanosecond field is 1000000000, a second or more:"
    ));
    let mut reader =
        CaptureReader::from_reader(Box::new(Cursor::new(pcap(PCAP_NS, &frames)))).unwrap();
    reader.next_frame().unwrap();
    assert_eq!(reader.next_frame().unwrap().unwrap().ts_ns, 100_999_999_999);
    // With IP packets: the capture spans under a second, not 2147 s.
    let q = || dns("co2br.prod.zpath.net", None);
    let frames = vec![(100, 10, q()), (100, 2_147_483_647, q()), (100, 20, q())];
    let r = analyse(pcap(PCAP_US, &frames), None, &AnalysisOptions::default());
    let (first, last) = (
        r.analysis.first_ts_ns.unwrap(),
        r.analysis.last_ts_ns.unwrap(),
    );
    assert_eq!(last - first, 999_999_000 - 10_000);
    assert_eq!(r.warnings.len(), 1);
    // A clean capture has no such warning.
    let frames = vec![(100, 999_999, arp_request())];
    let r = analyse(pcap(PCAP_US, &frames), None, &AnalysisOptions::default());
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
}

// ------------------------------------------------------- item 10: the port

/// A TLS 1.2 ClientHello record naming `sni`.
fn client_hello(sni: &str) -> Vec<u8> {
    let name = sni.as_bytes();
    let mut ext = vec![0, 0];
    ext.extend(((name.len() + 5) as u16).to_be_bytes());
    ext.extend(((name.len() + 3) as u16).to_be_bytes());
    ext.push(0);
    ext.extend((name.len() as u16).to_be_bytes());
    ext.extend(name);
    let mut body = vec![3, 3];
    body.extend([7; 32]);
    body.extend([0, 0, 2, 0xc0, 0x2f, 1, 0]);
    body.extend((ext.len() as u16).to_be_bytes());
    body.extend(ext);
    let mut hs = vec![1, 0];
    hs.extend((body.len() as u16).to_be_bytes());
    hs.extend(body);
    let mut rec = vec![0x16, 3, 1];
    rec.extend((hs.len() as u16).to_be_bytes());
    rec.extend(hs);
    rec
}

/// A segment between the connector's `cport` and the server's `sport`,
/// in an Ethernet frame.
#[allow(clippy::too_many_arguments)]
fn seg(
    out: bool,
    ttl: u8,
    cport: u16,
    sport: u16,
    flags: &str,
    seq: u32,
    ack: u32,
    data: &[u8],
) -> Vec<u8> {
    let (src, dst, sp, dp) = if out {
        (CONN, BROKER, cport, sport)
    } else {
        (BROKER, CONN, sport, cport)
    };
    let (smac, dmac) = if out {
        (CONN_MAC, GW_MAC)
    } else {
        (GW_MAC, CONN_MAC)
    };
    let mut b = PacketBuilder::ethernet2(smac, dmac)
        .ipv4(src, dst, ttl)
        .tcp(sp, dp, seq, 64240);
    if flags.contains('S') {
        b = b.syn();
    }
    if flags.contains('A') {
        b = b.ack(ack);
    }
    if flags.contains('R') {
        b = b.rst();
    }
    let mut v = Vec::new();
    b.write(&mut v, data).unwrap();
    v
}

/// A connection to `sport` whose ClientHello (SNI `sni`) is answered by a
/// reset with TTL `rst_ttl`, the server's own packets arriving with 61.
fn hello_reset(
    frames: &mut Vec<(u32, u32, Vec<u8>)>,
    sec: u32,
    cport: u16,
    sport: u16,
    sni: &str,
    rst_ttl: u8,
) {
    let (c, s) = (u32::from(cport) * 1000, 7_000_000);
    let hello = client_hello(sni);
    frames.push((sec, 0, seg(true, 64, cport, sport, "S", c, 0, &[])));
    frames.push((
        sec,
        20_000,
        seg(false, 61, cport, sport, "SA", s, c + 1, &[]),
    ));
    frames.push((
        sec,
        20_100,
        seg(true, 64, cport, sport, "A", c + 1, s + 1, &[]),
    ));
    frames.push((
        sec,
        20_200,
        seg(true, 64, cport, sport, "A", c + 1, s + 1, &hello),
    ));
    let after = c + 1 + hello.len() as u32;
    frames.push((
        sec,
        21_000,
        seg(false, rst_ttl, cport, sport, "RA", s + 1, after, &[]),
    ));
}

#[test]
fn no_flow_to_the_port_names_the_ports_with_tls_and_resets() {
    let mut frames = Vec::new();
    hello_reset(&mut frames, 1, 40001, 8443, "app.example.com", 61);
    hello_reset(&mut frames, 2, 40002, 8443, "app.example.com", 61);
    for k in 0..3u16 {
        let cport = 41000 + k;
        frames.push((
            3 + u32::from(k),
            0,
            seg(true, 64, cport, 80, "S", 5, 0, &[]),
        ));
        frames.push((
            3 + u32::from(k),
            500,
            seg(false, 61, cport, 80, "RA", 0, 6, &[]),
        ));
    }
    let r = analyse(pcap(PCAP_US, &frames), None, &AnalysisOptions::default());
    let v = &r.analysis.verdict;
    assert_eq!(v.class, VerdictClass::Inconclusive);
    assert_eq!(v.hop, None);
    assert_eq!(
        v.summary,
        "No TCP to port 443 in the capture; TLS seen on 8443 (2 flows), resets on 80 (3), 8443 (2): run with --port 8443."
    );
    assert!(r.analysis.rsts.is_empty());
    let j = json(&r);
    assert_eq!(
        j["other_ports"],
        serde_json::json!([
            {"port": 80, "tls_flows": 0, "resets": 3},
            {"port": 8443, "tls_flows": 2, "resets": 2}
        ])
    );
    let text = pathproof::report::text::render_pcap(&r);
    assert!(
        text.contains("Other ports: 80 (3 resets), 8443 (2 TLS flows, 2 resets)"),
        "{text}"
    );

    // Resets alone: the reset port is suggested.
    let frames: Vec<_> = frames.into_iter().skip(10).collect();
    let r = analyse(pcap(PCAP_US, &frames), None, &AnalysisOptions::default());
    assert_eq!(
        r.analysis.verdict.summary,
        "No TCP to port 443 in the capture; resets on 80 (3): run with --port 80."
    );
}

/// A ClientHello naming a broker on port 8443 is judged as it would be on
/// 443 (tls-blocked at hop 2): the reset forged at hop 2 (TTL 63 while the server's packets come
/// with 61) answers it.
#[test]
fn broker_sni_on_another_port_is_judged_like_443() {
    let judge = |sport: u16, sni: &str| {
        let mut frames = Vec::new();
        for k in 0..3u16 {
            hello_reset(&mut frames, 1 + u32::from(k), 40000 + k, sport, sni, 63);
        }
        analyse(
            pcap(PCAP_US, &frames),
            Some(Path::from_hop_count(4)),
            &AnalysisOptions::default(),
        )
    };
    let on_443 = judge(443, "co2br.prod.zpath.net");
    let v = &on_443.analysis.verdict;
    assert_eq!(v.class, VerdictClass::TlsBlocked, "{}", v.summary);
    assert_eq!(v.hop, Some(2));
    assert_eq!(on_443.analysis.rsts.len(), 3);

    let on_8443 = judge(8443, "co2br.prod.zpath.net");
    let w = &on_8443.analysis.verdict;
    assert_eq!((w.class, w.hop), (v.class, v.hop), "{}", w.summary);
    assert_eq!(on_8443.analysis.rsts.len(), 3);
    assert_eq!(on_8443.analysis.rsts_total, 3);
    assert!(on_8443.analysis.flows.iter().all(|f| f.broker_sni));
    assert!(on_8443.analysis.other_ports.is_empty());
    let j = json(&on_8443);
    assert_eq!(j["flows"][0]["broker_sni"], true);
    assert_eq!(
        j["flows"][0]["tls"]["client_hello"]["sni"],
        "co2br.prod.zpath.net"
    );

    // A name the user gave (--broker-name) counts too; any other name is
    // only counted for its port.
    let options = AnalysisOptions {
        broker_names: vec!["edge.corp.example".into()],
        ..AnalysisOptions::default()
    };
    let mut frames = Vec::new();
    hello_reset(&mut frames, 1, 40000, 9443, "edge.corp.example", 63);
    let r = analyse(
        pcap(PCAP_US, &frames),
        Some(Path::from_hop_count(4)),
        &options,
    );
    assert_eq!(r.analysis.rsts.len(), 1);
    assert_ne!(r.analysis.verdict.class, VerdictClass::Inconclusive);
    let other = judge(8443, "www.example.org");
    assert_eq!(other.analysis.verdict.class, VerdictClass::Inconclusive);
    assert_eq!(other.analysis.verdict.hop, None);
    assert!(other.analysis.rsts.is_empty());
    assert_eq!(other.analysis.other_ports[0].tls_flows, 3);
}

// ---------------------------------------------------- item 12: DNS hijack

const RESOLVER: [u8; 4] = [192, 168, 1, 1];

/// A DNS query (or its response with `answer`) for `name`, type A.
fn dns(name: &str, response: Option<[u8; 4]>) -> Vec<u8> {
    let mut m = vec![0x12, 0x34];
    m.extend(if response.is_some() {
        [0x81, 0x80]
    } else {
        [0x01, 0x00]
    });
    m.extend([0, 1, 0, u8::from(response.is_some()), 0, 0, 0, 0]);
    for label in name.split('.') {
        m.push(label.len() as u8);
        m.extend(label.as_bytes());
    }
    m.extend([0, 0, 1, 0, 1]);
    if let Some(a) = response {
        m.extend([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        m.extend(a);
    }
    let (src, dst, sp, dp) = if response.is_some() {
        (RESOLVER, CONN, 53, 5353)
    } else {
        (CONN, RESOLVER, 5353, 53)
    };
    let mut v = Vec::new();
    PacketBuilder::ethernet2(CONN_MAC, GW_MAC)
        .ipv4(src, dst, 64)
        .udp(sp, dp)
        .write(&mut v, &m)
        .unwrap();
    v
}

/// A SYN from the connector to `server`:443, sent `count` times.
fn syns(frames: &mut Vec<(u32, u32, Vec<u8>)>, sec: u32, server: [u8; 4], count: u32) {
    for i in 0..count {
        let mut v = Vec::new();
        PacketBuilder::ethernet2(CONN_MAC, GW_MAC)
            .ipv4(CONN, server, 64)
            .tcp(40500, 443, 99, 64240)
            .syn()
            .write(&mut v, &[])
            .unwrap();
        frames.push((sec + i, 0, v));
    }
}

/// co2br answered with 10.66.0.1 by the site resolver; the connector's
/// SYNs to it go unanswered. The hijack is the verdict (it explains the
/// silence), not tcp-blocked.
#[test]
fn broker_name_answered_with_a_private_address_is_a_dns_hijack() {
    let name = "co2br.prod.zpath.net";
    let capture = |answer: [u8; 4]| {
        let mut frames = vec![(1, 0, dns(name, None)), (1, 3000, dns(name, Some(answer)))];
        syns(&mut frames, 2, answer, 3);
        analyse(pcap(PCAP_US, &frames), None, &AnalysisOptions::default())
    };
    let r = capture([10, 66, 0, 1]);
    let v = &r.analysis.verdict;
    assert_eq!(v.class, VerdictClass::DnsFailure, "{}", v.summary);
    assert_eq!(v.hop, None);
    assert_eq!(v.address, Some(RESOLVER.into()));
    assert!(
        v.summary.starts_with(
            "The resolver 192.168.1.1 rewrites the cloud's names: it answers the broker name co2br.prod.zpath.net with 10.66.0.1 (private, 10.0.0.0/8; frame 2)"
        ) && v.summary.contains("It explains what the connections to that address show: "),
        "{}",
        v.summary
    );
    let hijacks: Vec<_> = r
        .analysis
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::DnsHijack)
        .collect();
    assert_eq!(hijacks.len(), 1);
    assert_eq!(hijacks[0].frames, vec![1, 2]);
    assert_eq!(hijacks[0].address, Some(RESOLVER.into()));
    let j = json(&r);
    let kinds: Vec<&str> = j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"dns-hijack"), "{kinds:?}");
    assert_eq!(j["verdict"]["class"], "dns-failure");

    // A public answer (and the lab's 198.18/15) is no hijack: the silence
    // is tcp-blocked as before.
    for public in [[165, 225, 0, 1], [198, 18, 4, 2]] {
        let r = capture(public);
        assert_eq!(
            r.analysis.verdict.class,
            VerdictClass::TcpBlocked,
            "{public:?}"
        );
        assert!(
            r.analysis
                .findings
                .iter()
                .all(|f| f.kind != FindingKind::DnsHijack)
        );
    }
}

/// Writes the constructed captures of this file to $PATHPROOF_DUMP (a
/// directory) for a manual check with tshark:
/// `tshark -r pppoe-qinq.pcap -Y 'pppoes && ip.ttl == 63'`,
/// `tshark -r hijack.pcap -Y 'dns.qry.name == "co2br.prod.zpath.net" && dns.a == 10.66.0.1'`.
#[test]
#[ignore = "writes constructed captures for a manual check with tshark"]
fn dump_for_tshark() {
    let dir = std::path::PathBuf::from(std::env::var("PATHPROOF_DUMP").unwrap());
    let tags = [0x88a8, 0x8100];
    let mut frames = vec![
        (1, 0, eth(0x8863, &[0x11, 0x09, 0, 0, 0, 0])),
        (
            1,
            10,
            pppoe(CONN_MAC, &tags, 0xc021, &[9, 1, 0, 8, 0, 0, 0, 0]),
        ),
    ];
    frames.push((
        2,
        0,
        pppoe(CONN_MAC, &tags, 0x0021, &tcp(true, 64, 40000, "S")),
    ));
    frames.push((
        2,
        900,
        pppoe(GW_MAC, &tags, 0x0021, &tcp(false, 63, 40000, "RA")),
    ));
    std::fs::write(dir.join("pppoe-qinq.pcap"), pcap(PCAP_US, &frames)).unwrap();
    let name = "co2br.prod.zpath.net";
    let mut frames = vec![
        (1, 0, dns(name, None)),
        (1, 3000, dns(name, Some([10, 66, 0, 1]))),
    ];
    syns(&mut frames, 2, [10, 66, 0, 1], 3);
    std::fs::write(dir.join("hijack.pcap"), pcap(PCAP_US, &frames)).unwrap();
    let frames = vec![(100, 0, arp_request()), (100, 2_147_483_647, arp_request())];
    std::fs::write(dir.join("usec.pcap"), pcap(PCAP_US, &frames)).unwrap();
}

/// The bundled lab captures with the broker moved from 198.18.4.2 (the
/// benchmarking range, left out of the hijack set) to 10.18.4.2: the
/// resolver's answer is then private. Where the connector completes its
/// TLS handshakes there (healthy), a genuine broker answers at that
/// address: no hijack. Where nothing answers (drop-443), the hijack is the
/// verdict and explains the silence.
#[test]
fn lab_captures_with_a_private_broker_address() {
    let moved = |scenario: &str| {
        let file = format!(
            "{}/captures/{scenario}.sll.pcap",
            env!("CARGO_MANIFEST_DIR")
        );
        let bytes = std::fs::read(file).unwrap();
        let from = [198, 18, 4, 2];
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i..].starts_with(&from) {
                out.extend([10, 18, 4, 2]);
                i += 4;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        analyse(out, None, &AnalysisOptions::default())
    };
    let healthy = moved("healthy");
    assert_eq!(healthy.analysis.verdict.class, VerdictClass::Healthy);
    assert!(
        healthy
            .analysis
            .findings
            .iter()
            .all(|f| f.kind != FindingKind::DnsHijack)
    );

    let dropped = moved("drop-443");
    let v = &dropped.analysis.verdict;
    assert_eq!(v.class, VerdictClass::DnsFailure, "{}", v.summary);
    assert_eq!((v.hop, v.address), (None, Some([198, 18, 10, 2].into())));
    assert!(
        v.summary
            .contains("with 10.18.4.2 (private, 10.0.0.0/8; frame 4)"),
        "{}",
        v.summary
    );
    assert!(
        v.summary
            .contains("TCP 443 to 10.18.4.2 is silently dropped"),
        "{}",
        v.summary
    );
    let hijacks = dropped
        .analysis
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::DnsHijack)
        .count();
    assert_eq!(hijacks, 1);
}
