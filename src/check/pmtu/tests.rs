//! [`discover`] on a simulated path: routers with TTL checks, link MTUs and
//! fragmentation-needed sent or suppressed, answering with real packet
//! bytes (etherparse) on a manual clock.

use super::*;
use crate::packet::IcmpKind;
use crate::trace::{ManualClock, RecvPacket};
use etherparse::{Icmpv4Type, Icmpv6Type, PacketBuilder, icmpv4, icmpv6};
use std::collections::HashSet;
use std::rc::Rc;

#[derive(Clone, Debug)]
struct Hop {
    addr: IpAddr,
    /// Answers TTL expiry with time exceeded.
    answers: bool,
    /// MTU of the link from this router toward the next hop.
    mtu_after: u16,
    /// Sends fragmentation-needed / packet-too-big for what does not fit.
    ptb: bool,
    /// Initial TTL of its ICMP messages.
    init_ttl: u8,
}

fn hop(addr: &str) -> Hop {
    Hop {
        addr: addr.parse().unwrap(),
        answers: true,
        mtu_after: 1500,
        ptb: true,
        init_ttl: 255,
    }
}

struct FakeNet {
    clock: Rc<ManualClock>,
    source: IpAddr,
    target: IpAddr,
    hops: Vec<Hop>,
    /// MTU of this host's interface: larger sends fail with EMSGSIZE.
    iface_mtu: u16,
    /// MTU of the link between this host and hop 1: larger is dropped.
    first_link_mtu: u16,
    target_up: bool,
    /// TCP port open (SYN-ACK) or closed (RST).
    tcp_open: bool,
    /// Probes (by send order, 0-based) lost on the first link.
    lose: HashSet<usize>,
    /// A foreign echo reply and garbage after every probe.
    noise: bool,
    sent: usize,
    queue: Vec<(Instant, Vec<u8>)>,
}

impl FakeNet {
    fn new(clock: Rc<ManualClock>, v6: bool, hops: usize) -> FakeNet {
        let (source, target, prefix) = if v6 {
            ("fd00::2", "fd00:9::2", "fd00:")
        } else {
            ("198.18.200.2", "198.18.201.2", "198.18.")
        };
        let hops = (1..=hops)
            .map(|i| {
                if v6 {
                    hop(&format!("{prefix}{i}::1"))
                } else {
                    hop(&format!("{prefix}{}.1", 210 + i))
                }
            })
            .collect();
        FakeNet {
            clock,
            source: source.parse().unwrap(),
            target: target.parse().unwrap(),
            hops,
            iface_mtu: 1500,
            first_link_mtu: 1500,
            target_up: true,
            tcp_open: true,
            lose: HashSet::new(),
            noise: false,
            sent: 0,
            queue: Vec::new(),
        }
    }

    fn deliver(&mut self, after_ms: u64, bytes: Vec<u8>) {
        let at = self.clock.now() + Duration::from_millis(after_ms);
        self.queue.push((at, bytes));
    }

    /// Walks a probe along the path.
    fn forward(&mut self, probe: &[u8]) {
        let p = decode_ip(0, 0, Direction::Out, probe).unwrap().packet;
        let size = probe.len();
        let mut ttl = p.ttl;
        if size > usize::from(self.first_link_mtu) {
            return;
        }
        for i in 0..self.hops.len() {
            let h = self.hops[i].clone();
            let n = i as u8 + 1;
            let back = h.init_ttl - (n - 1);
            if ttl == 1 {
                if h.answers {
                    let e = icmp_error(h.addr, p.src, back, Err::Te, probe);
                    self.deliver(2 * u64::from(n), e);
                }
                return;
            }
            ttl -= 1;
            if size > usize::from(h.mtu_after) {
                if h.ptb {
                    let e = icmp_error(h.addr, p.src, back, Err::Ptb(h.mtu_after), probe);
                    self.deliver(2 * u64::from(n), e);
                }
                return;
            }
        }
        if !self.target_up {
            return;
        }
        let back = 64 - self.hops.len() as u8;
        let rtt = 2 * (self.hops.len() as u64 + 1);
        let answer = match p.transport {
            Transport::Icmp(i) => {
                let IcmpKind::EchoRequest { id, seq } = i.kind else {
                    return;
                };
                let payload = &probe[probe.len() - (size - header_len(&p) - 8)..];
                let mut out = Vec::new();
                match (p.dst, p.src) {
                    (IpAddr::V4(d), IpAddr::V4(s)) => {
                        PacketBuilder::ipv4(d.octets(), s.octets(), back)
                            .icmpv4_echo_reply(id, seq)
                            .write(&mut out, payload)
                    }
                    (IpAddr::V6(d), IpAddr::V6(s)) => {
                        PacketBuilder::ipv6(d.octets(), s.octets(), back)
                            .icmpv6_echo_reply(id, seq)
                            .write(&mut out, payload)
                    }
                    _ => unreachable!(),
                }
                .unwrap();
                out
            }
            Transport::Tcp(t) => {
                let mut out = Vec::new();
                let ack = t.seq.wrapping_add(1);
                macro_rules! answer {
                    ($b:expr) => {{
                        let b = $b.tcp(t.dst_port, t.src_port, 0x1234_5678, 64240);
                        if self.tcp_open {
                            b.syn().ack(ack).write(&mut out, &[])
                        } else {
                            // Linux acknowledges the SYN's data in a RST.
                            b.rst().ack(ack + t.payload_len).write(&mut out, &[])
                        }
                    }};
                }
                match (p.dst, p.src) {
                    (IpAddr::V4(d), IpAddr::V4(s)) => {
                        answer!(PacketBuilder::ipv4(d.octets(), s.octets(), back))
                    }
                    (IpAddr::V6(d), IpAddr::V6(s)) => {
                        answer!(PacketBuilder::ipv6(d.octets(), s.octets(), back))
                    }
                    _ => unreachable!(),
                }
                .unwrap();
                out
            }
            _ => return,
        };
        self.deliver(rtt, answer);
    }
}

fn header_len(p: &crate::packet::Packet) -> usize {
    if p.is_v6() { 40 } else { 20 }
}

enum Err {
    Te,
    Ptb(u16),
}

/// An ICMP error from `from` quoting `probe` as routers do: IPv4 the IP
/// header and 8 bytes (the least RFC 792 asks), IPv6 as much as fits in
/// 1280 bytes (RFC 4443).
fn icmp_error(from: IpAddr, to: IpAddr, ttl: u8, kind: Err, probe: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match (from, to) {
        (IpAddr::V4(f), IpAddr::V4(t)) => {
            let mut quote = probe[..28].to_vec();
            quote[8] = 1; // TTL as the router saw it
            let ty = match kind {
                Err::Te => Icmpv4Type::TimeExceeded(icmpv4::TimeExceededCode::TtlExceededInTransit),
                Err::Ptb(mtu) => Icmpv4Type::DestinationUnreachable(
                    icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: mtu },
                ),
            };
            PacketBuilder::ipv4(f.octets(), t.octets(), ttl)
                .icmpv4(ty)
                .write(&mut out, &quote)
                .unwrap();
        }
        (IpAddr::V6(f), IpAddr::V6(t)) => {
            let quote = &probe[..probe.len().min(1280 - 48)];
            let ty = match kind {
                Err::Te => Icmpv6Type::TimeExceeded(icmpv6::TimeExceededCode::HopLimitExceeded),
                Err::Ptb(mtu) => Icmpv6Type::PacketTooBig {
                    mtu: u32::from(mtu),
                },
            };
            PacketBuilder::ipv6(f.octets(), t.octets(), ttl)
                .icmpv6(ty)
                .write(&mut out, quote)
                .unwrap();
        }
        _ => unreachable!(),
    }
    out
}

impl Network for FakeNet {
    fn source_addr(&mut self, _target: IpAddr) -> Result<IpAddr, TraceError> {
        Ok(self.source)
    }

    fn send(&mut self, probe: &ProbeRequest) -> Result<(), TraceError> {
        if probe.bytes.len() > usize::from(self.iface_mtu) {
            // Linux also sends itself a fragmentation-needed.
            let e = icmp_error(
                self.source,
                self.source,
                64,
                Err::Ptb(self.iface_mtu),
                &probe.bytes,
            );
            self.deliver(0, e);
            return Err(TraceError::Io {
                op: crate::trace::IoOp::Send {
                    dst: probe.dst,
                    ttl: probe.ttl,
                },
                source: std::io::Error::from_raw_os_error(EMSGSIZE),
            });
        }
        let n = self.sent;
        self.sent += 1;
        if self.noise {
            let mut ping = Vec::new();
            match (self.target, self.source) {
                (IpAddr::V4(t), IpAddr::V4(s)) => PacketBuilder::ipv4(t.octets(), s.octets(), 60)
                    .icmpv4_echo_reply(0x0bad, 1)
                    .write(&mut ping, &[0; 8])
                    .unwrap(),
                (IpAddr::V6(t), IpAddr::V6(s)) => PacketBuilder::ipv6(t.octets(), s.octets(), 60)
                    .icmpv6_echo_reply(0x0bad, 1)
                    .write(&mut ping, &[0; 8])
                    .unwrap(),
                _ => unreachable!(),
            }
            self.deliver(0, ping);
            self.deliver(0, vec![0x45, 0, 1]);
        }
        if !self.lose.contains(&n) {
            self.forward(&probe.bytes);
        }
        Ok(())
    }

    fn recv(&mut self, deadline: Instant) -> Result<Option<RecvPacket>, TraceError> {
        let next = self
            .queue
            .iter()
            .enumerate()
            .filter(|(_, (at, _))| *at <= deadline)
            .min_by_key(|(i, (at, _))| (*at, *i))
            .map(|(i, _)| i);
        match next {
            Some(i) => {
                let (at, bytes) = self.queue.remove(i);
                self.clock.set(at);
                Ok(Some(RecvPacket {
                    bytes,
                    received_at: self.clock.now(),
                }))
            }
            None => {
                self.clock.set(deadline);
                Ok(None)
            }
        }
    }
}

fn setup(v6: bool, hops: usize) -> (Rc<ManualClock>, FakeNet) {
    let clock = Rc::new(ManualClock::new(Instant::from_nanos(1_000_000_000)));
    let net = FakeNet::new(clock.clone(), v6, hops);
    (clock, net)
}

fn config(net: &FakeNet, protocol: PmtuProtocol) -> PmtuConfig {
    PmtuConfig {
        protocol,
        ident: 0x5150,
        ..PmtuConfig::new(net.target, net.source)
    }
}

const TCP: PmtuProtocol = PmtuProtocol::Tcp { port: 443 };

#[test]
fn everything_passes_in_one_probe() {
    for v6 in [false, true] {
        for proto in [PmtuProtocol::Icmp, TCP] {
            let (clock, mut net) = setup(v6, 3);
            net.noise = true;
            let cfg = config(&net, proto);
            let r = discover(&mut net, &*clock, &cfg).unwrap();
            assert_eq!(r.outcome, PmtuOutcome::FullSizePasses, "{r:#?}");
            assert_eq!((r.largest_passing, r.smallest_failing), (Some(1500), None));
            assert_eq!(r.probes_sent, 1);
            assert!(!r.blackhole);
            assert_eq!(r.steps[0].outcome, "passed");
            assert_eq!(r.steps[0].rtt_ms, Some(8.0));
            assert!(
                r.summary().contains("1500-byte packets pass"),
                "{}",
                r.summary()
            );
        }
    }
}

#[test]
fn frag_needed_from_hop_2_is_reported_and_its_mtu_passes() {
    for proto in [PmtuProtocol::Icmp, TCP] {
        let (clock, mut net) = setup(false, 4);
        net.hops[1].mtu_after = 1400;
        let cfg = config(&net, proto);
        let r = discover(&mut net, &*clock, &cfg).unwrap();
        assert_eq!(r.outcome, PmtuOutcome::Reported, "{r:#?}");
        assert_eq!(r.reported_mtu, Some(1400));
        assert_eq!(r.reported_by, Some(net.hops[1].addr));
        assert_eq!((r.reported_hop, r.reported_ttl), (Some(2), Some(254)));
        assert_eq!(
            (r.largest_passing, r.smallest_failing),
            (Some(1400), Some(1401))
        );
        assert!(!r.blackhole && r.blackhole_after_hop.is_none());
        // 1500 (frag-needed), then exactly 1400.
        assert_eq!(r.probes_sent, 2);
        assert_eq!(r.steps[0].outcome, "frag-needed 1400 from 198.18.212.1");
        assert_eq!(r.steps[1].size, 1400);
        assert!(
            r.summary()
                .contains("198.18.212.1 (hop 2) reports fragmentation-needed with MTU 1400"),
            "{}",
            r.summary()
        );
    }
}

#[test]
fn blackhole_after_hop_2_lands_on_the_byte_and_is_localised() {
    for proto in [PmtuProtocol::Icmp, TCP] {
        for target_hop in [Some(5), None] {
            let (clock, mut net) = setup(false, 4);
            net.hops[1].mtu_after = 1400;
            net.hops[1].ptb = false;
            net.tcp_open = false; // RSTs acknowledge the SYN data too
            let cfg = PmtuConfig {
                target_hop,
                ..config(&net, proto)
            };
            let r = discover(&mut net, &*clock, &cfg).unwrap();
            assert_eq!(r.outcome, PmtuOutcome::Blackhole, "{r:#?}");
            assert!(r.blackhole);
            assert_eq!(
                (r.largest_passing, r.smallest_failing),
                (Some(1400), Some(1401))
            );
            assert_eq!(r.reported_mtu, None);
            assert_eq!(r.blackhole_after_hop, Some(2));
            assert_eq!(r.blackhole_after_address, Some(net.hops[1].addr));
            assert!(r.blackhole_confirmed, "{:#?}", r.notes);
            // TTL 3: the big probe silent twice, then the small one answered.
            let at3: Vec<&str> = r
                .steps
                .iter()
                .filter(|s| s.ttl == 3)
                .map(|s| s.outcome.as_str())
                .collect();
            assert_eq!(at3, ["silent", "silent", "time-exceeded from 198.18.213.1"]);
            assert!(r.probes_sent < 50, "{}", r.probes_sent);
            assert!(r.elapsed_ms < 30_000.0, "{}", r.elapsed_ms);
            let s = r.summary();
            assert!(
                s.contains("1401-byte packets vanish") && s.contains("after hop 2 (198.18.212.1)"),
                "{s}"
            );
        }
    }
}

#[test]
fn blackhole_with_a_silent_next_hop_is_unconfirmed() {
    let (clock, mut net) = setup(false, 6);
    net.hops[1].mtu_after = 1400;
    net.hops[1].ptb = false;
    for h in &mut net.hops[2..] {
        h.answers = false;
    }
    let cfg = config(&net, PmtuProtocol::Icmp);
    let r = discover(&mut net, &*clock, &cfg).unwrap();
    assert_eq!(r.outcome, PmtuOutcome::Blackhole);
    assert_eq!(r.blackhole_after_hop, Some(2));
    assert!(!r.blackhole_confirmed);
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("after hop 2 at the earliest"))
    );
    // Stopped after a run of silent TTLs, not at 16.
    assert!(r.steps.iter().all(|s| s.ttl <= 5 || s.ttl == SEARCH_TTL));
    assert!(r.summary().contains("or further on"));
}

#[test]
fn blackhole_on_the_first_link() {
    let (clock, mut net) = setup(false, 3);
    // A link (an L2 tunnel, a mis-set switch) right after this host drops
    // what its interface MTU allows.
    net.first_link_mtu = 1400;
    let cfg = config(&net, PmtuProtocol::Icmp);
    let r = discover(&mut net, &*clock, &cfg).unwrap();
    assert_eq!(r.outcome, PmtuOutcome::Blackhole, "{r:#?}");
    assert_eq!(r.largest_passing, Some(1400));
    assert_eq!(
        (
            r.blackhole_after_hop,
            r.blackhole_after_address,
            r.blackhole_confirmed
        ),
        (Some(0), None, true)
    );
    assert!(r.summary().contains("first link"), "{}", r.summary());
}

#[test]
fn losses_do_not_move_the_answer() {
    let (clock, mut net) = setup(false, 4);
    net.hops[1].mtu_after = 1400;
    net.hops[1].ptb = false;
    // The first tries of 1200 and 1350 (4th and 6th probes) lost.
    net.lose = [3, 4].into_iter().collect();
    let cfg = config(&net, PmtuProtocol::Icmp);
    let r = discover(&mut net, &*clock, &cfg).unwrap();
    assert_eq!(r.outcome, PmtuOutcome::Blackhole, "{r:#?}");
    assert_eq!(
        (r.largest_passing, r.smallest_failing),
        (Some(1400), Some(1401))
    );
    assert_eq!(r.blackhole_after_hop, Some(2));
    let lost_passing = r
        .steps
        .iter()
        .filter(|s| s.size <= 1400 && s.outcome == "silent" && s.ttl == SEARCH_TTL)
        .count();
    assert_eq!(lost_passing, 2);
}

#[test]
fn loss_that_mimics_a_boundary_is_not_a_black_hole() {
    // No constriction at all: the three tries of 1500 bytes are lost (as on
    // a path losing half the round trips, seen in the lab's real-loss
    // scenario), and the search homes in on 1499/1500. The verification
    // probes 1500 again: it is answered, so the silence was loss.
    let (clock, mut net) = setup(false, 4);
    net.lose = [0, 1, 2].into_iter().collect();
    let cfg = config(&net, PmtuProtocol::Icmp);
    let r = discover(&mut net, &*clock, &cfg).unwrap();
    assert_eq!(r.smallest_failing, Some(1500), "{r:#?}");
    assert_eq!(r.outcome, PmtuOutcome::Inconclusive, "{r:#?}");
    assert!(!r.blackhole);
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("1500 bytes") && n.contains("loss")),
        "{:?}",
        r.notes
    );
}

#[test]
fn target_down_is_no_answer_not_a_blackhole() {
    for proto in [PmtuProtocol::Icmp, TCP] {
        let (clock, mut net) = setup(false, 3);
        net.target_up = false;
        let cfg = config(&net, proto);
        let r = discover(&mut net, &*clock, &cfg).unwrap();
        assert_eq!(r.outcome, PmtuOutcome::NoAnswer);
        assert!(!r.blackhole && r.blackhole_after_hop.is_none());
        assert_eq!((r.largest_passing, r.smallest_failing), (None, Some(576)));
        // 1500, 1200, 576, three tries each; no localisation.
        assert_eq!(r.probes_sent, 9);
        assert!(r.steps.iter().all(|s| s.outcome == "silent"));
        assert!((r.elapsed_ms - 9000.0).abs() < 1.0, "{}", r.elapsed_ms);
        assert!(r.summary().contains("down to 576 bytes"), "{}", r.summary());
    }
}

#[test]
fn ipv6_packet_too_big() {
    for proto in [PmtuProtocol::Icmp, TCP] {
        let (clock, mut net) = setup(true, 3);
        net.hops[0].mtu_after = 1420;
        net.hops[0].init_ttl = 64;
        let cfg = config(&net, proto);
        let r = discover(&mut net, &*clock, &cfg).unwrap();
        assert_eq!(r.outcome, PmtuOutcome::Reported, "{r:#?}");
        assert_eq!(r.reported_mtu, Some(1420));
        assert_eq!(r.reported_by, Some("fd00:1::1".parse().unwrap()));
        assert_eq!((r.reported_hop, r.reported_ttl), (Some(1), Some(64)));
        assert_eq!(r.largest_passing, Some(1420));
    }
    // And an IPv6 black hole.
    let (clock, mut net) = setup(true, 3);
    net.hops[1].mtu_after = 1280;
    net.hops[1].ptb = false;
    let cfg = config(&net, PmtuProtocol::Icmp);
    let r = discover(&mut net, &*clock, &cfg).unwrap();
    assert_eq!(r.outcome, PmtuOutcome::Blackhole);
    assert_eq!(
        (r.largest_passing, r.blackhole_after_hop),
        (Some(1280), Some(2))
    );
}

#[test]
fn a_second_silent_constriction_after_a_reported_one() {
    let (clock, mut net) = setup(false, 4);
    net.hops[0].mtu_after = 1450;
    net.hops[2].mtu_after = 1300;
    net.hops[2].ptb = false;
    let cfg = config(&net, PmtuProtocol::Icmp);
    let r = discover(&mut net, &*clock, &cfg).unwrap();
    assert_eq!(r.outcome, PmtuOutcome::Blackhole, "{r:#?}");
    assert_eq!(
        (r.largest_passing, r.smallest_failing),
        (Some(1300), Some(1301))
    );
    assert_eq!(r.blackhole_after_hop, Some(3));
    assert_eq!(r.reported_mtu, Some(1450));
}

#[test]
fn interface_smaller_than_high_is_not_a_path_problem() {
    let (clock, mut net) = setup(false, 2);
    net.iface_mtu = 1450;
    let cfg = config(&net, PmtuProtocol::Icmp);
    let r = discover(&mut net, &*clock, &cfg).unwrap();
    assert_eq!(r.outcome, PmtuOutcome::HostLimited, "{r:#?}");
    assert_eq!(
        (r.largest_passing, r.smallest_failing),
        (Some(1450), Some(1451))
    );
    assert!(r.notes[0].contains("refuses to send 1451 bytes"));
    assert_eq!(r.host_mtu, Some(1450));
    assert!(
        r.summary().contains("refuses to send 1451 bytes"),
        "{}",
        r.summary()
    );
}

#[test]
fn budget_bounds_the_run() {
    let (clock, mut net) = setup(false, 4);
    net.hops[1].mtu_after = 1400;
    net.hops[1].ptb = false;
    let cfg = PmtuConfig {
        max_probes: 5,
        ..config(&net, PmtuProtocol::Icmp)
    };
    let r = discover(&mut net, &*clock, &cfg).unwrap();
    assert_eq!(r.outcome, PmtuOutcome::Inconclusive);
    assert_eq!(r.probes_sent, 5);
    assert!(r.summary().contains("inconclusive"), "{}", r.summary());
    let (clock, mut net) = setup(false, 4);
    net.target_up = false;
    let cfg = PmtuConfig {
        max_duration: Duration::from_millis(2500),
        ..config(&net, PmtuProtocol::Icmp)
    };
    let r = discover(&mut net, &*clock, &cfg).unwrap();
    assert_eq!((r.outcome, r.probes_sent), (PmtuOutcome::Inconclusive, 3));
}

#[test]
fn json_fields_are_snake_case() {
    let (clock, mut net) = setup(false, 2);
    net.hops[0].mtu_after = 1400;
    let cfg = config(&net, TCP);
    let r = discover(&mut net, &*clock, &cfg).unwrap();
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["protocol"], "tcp/443");
    assert_eq!(v["outcome"], "reported");
    assert_eq!(v["largest_passing"], 1400);
    assert_eq!(v["reported_hop"], 1);
    assert_eq!(v["steps"][0]["rtt_ms"], 2.0);
    assert_eq!(v["blackhole_after_hop"], serde_json::Value::Null);
}

#[test]
fn bad_configs_are_refused() {
    let (clock, mut net) = setup(false, 2);
    let base = config(&net, PmtuProtocol::Icmp);
    for cfg in [
        PmtuConfig {
            low: 1600,
            ..base.clone()
        },
        PmtuConfig {
            tries_per_size: 0,
            ..base.clone()
        },
        PmtuConfig {
            source: "::1".parse().unwrap(),
            ..base.clone()
        },
        PmtuConfig {
            protocol: PmtuProtocol::Tcp { port: 0 },
            ..base.clone()
        },
        PmtuConfig {
            target_hop: Some(0),
            ..base.clone()
        },
    ] {
        assert!(matches!(
            discover(&mut net, &*clock, &cfg),
            Err(TraceError::Config { .. })
        ));
    }
    assert_eq!(net.sent, 0);
}

/// Live run on raw sockets, for a lab of network namespaces only:
/// `PMTU_LIVE_TARGET=198.18.201.2 PMTU_LIVE_SOURCE=198.18.200.2
/// [PMTU_LIVE_PROTO=tcp] [PMTU_LIVE_HOP=3] ip netns exec <ns> <test binary>
/// check::pmtu::tests::live --ignored --nocapture`. Refuses any target
/// outside 198.18.200.0/23 (the lab's addresses).
#[test]
#[ignore = "needs root and a namespace lab (see the doc comment)"]
fn live() {
    use crate::trace::SystemClock;
    use crate::trace::socket::RawNetwork;
    let var = |k: &str| std::env::var(k).ok();
    let target: IpAddr = var("PMTU_LIVE_TARGET")
        .expect("PMTU_LIVE_TARGET")
        .parse()
        .unwrap();
    let source: IpAddr = var("PMTU_LIVE_SOURCE")
        .expect("PMTU_LIVE_SOURCE")
        .parse()
        .unwrap();
    let lab = |a: IpAddr| matches!(a, IpAddr::V4(v) if v.octets()[..2] == [198, 18] && (v.octets()[2] & 0xfe) == 200);
    assert!(
        lab(target) && lab(source),
        "lab addresses only (198.18.200.0/23)"
    );
    let protocol = match var("PMTU_LIVE_PROTO").as_deref() {
        Some("tcp") => TCP,
        _ => PmtuProtocol::Icmp,
    };
    let clock = SystemClock::new();
    let cfg = PmtuConfig {
        protocol,
        target_hop: var("PMTU_LIVE_HOP").map(|h| h.parse().unwrap()),
        ..PmtuConfig::new(target, source)
    };
    let mut net = RawNetwork::open(target, source, protocol.trace_protocol(), clock).unwrap();
    let r = discover(&mut net, &clock, &cfg).unwrap();
    println!("{}", serde_json::to_string_pretty(&r).unwrap());
    println!("SUMMARY: {}", r.summary());
}
