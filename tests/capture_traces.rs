//! Differential test: the real tracer runs on a simulated IPv4 path; the
//! packets it recorded are decoded as a capture would be and fed to the
//! capture analysis, which must rebuild the same traces and reach the same
//! findings (kind, severity, hop, address) as `interpret` on the originals.

use etherparse::{
    Icmpv4Type, IpNumber, Ipv4Header, NetSlice, PacketBuilder, SlicedPacket, TcpOptionElement,
    TransportSlice, icmpv4,
};
use pathproof::analysis::rules::path::{TraceFinding, interpret};
use pathproof::analysis::{AnalysisOptions, Analyzer, Severity, VerdictClass};
use pathproof::packet::decode_ip;
use pathproof::trace::{
    Clock, Instant, ManualClock, Network, ProbeRequest, Recorded, RecvPacket, Trace, TraceConfig,
    TraceError, TraceProtocol, Tracer,
};
use pathproof::vocab::FindingKind;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

const SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const ICMP: TraceProtocol = TraceProtocol::Icmp;
const TCP: TraceProtocol = TraceProtocol::Tcp { port: 443 };

/// SplitMix64: seeded, so every run loses the same packets.
struct Rng(u64);

impl Rng {
    fn chance(&mut self, p: f64) -> bool {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        p > 0.0 && ((z >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Firewall {
    /// Drops TCP 443 it would forward (TTL-expiring probes still get time-exceeded).
    Drop443,
    /// Answers TCP 443 it would forward with a RST in the target's name, TTL 64.
    Rst443,
}

#[derive(Clone, Debug)]
struct Hop {
    addr: Ipv4Addr,
    /// Forward loss on the link into this hop.
    link_loss: f64,
    /// Token bucket on its time-exceeded answers: (tokens per second, burst).
    icmp_rate: Option<(f64, f64)>,
    firewall: Option<Firewall>,
}

fn router(n: u8) -> Hop {
    Hop {
        addr: Ipv4Addr::new(10, 0, n, 1),
        link_loss: 0.0,
        icmp_rate: None,
        firewall: None,
    }
}

/// Routers 10.0.1.1 … 10.0.n.1, then the target 198.18.(n+1).2.
fn path(n: u8) -> (Vec<Hop>, Ipv4Addr) {
    (
        (1..=n).map(router).collect(),
        Ipv4Addr::new(198, 18, n + 1, 2),
    )
}

struct SimNet {
    clock: Arc<ManualClock>,
    hops: Vec<Hop>,
    target: Ipv4Addr,
    rng: Rng,
    buckets: Vec<(f64, Instant)>,
    queue: BinaryHeap<Reverse<(Instant, u64, Vec<u8>)>>,
    order: u64,
    /// The target keeps the half-open connection of every SYN it answered
    /// (the connector's reset to its SYN-ACK never arrives) and answers a
    /// later SYN of the same port pair with a reset, as a real stack does.
    half_open: Option<std::collections::HashSet<u16>>,
}

fn ms(x: f64) -> Duration {
    Duration::from_nanos((x * 1e6) as u64)
}

impl SimNet {
    fn deliver(&mut self, at: Instant, bytes: Vec<u8>) {
        self.order += 1;
        self.queue.push(Reverse((at, self.order, bytes)));
    }

    fn token(&mut self, hop: usize, now: Instant) -> bool {
        let Some((rate, burst)) = self.hops[hop].icmp_rate else {
            return true;
        };
        let (tokens, last) = &mut self.buckets[hop];
        *tokens = (*tokens + rate * (now - *last).as_secs_f64()).min(burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn forward(&mut self, now: Instant, probe: &[u8]) {
        let s = SlicedPacket::from_ip(probe).unwrap();
        let Some(NetSlice::Ipv4(v4)) = &s.net else {
            panic!("IPv4 only")
        };
        let (mut ttl, ihl) = (v4.header().ttl(), usize::from(v4.header().ihl()) * 4);
        let tcp = match &s.transport {
            Some(TransportSlice::Tcp(t)) => {
                Some((t.source_port(), t.destination_port(), t.sequence_number()))
            }
            _ => None,
        };
        let echo = match &s.transport {
            Some(TransportSlice::Icmpv4(i)) => match i.icmp_type() {
                Icmpv4Type::EchoRequest(e) => Some((e.id, e.seq, i.payload().to_vec())),
                _ => None,
            },
            _ => None,
        };
        let tcp_answer = |from: Ipv4Addr, ttl: u8, syn_ack: bool| {
            let (sport, dport, seq) = tcp.unwrap();
            let mut h =
                Ipv4Header::new(0, ttl, IpNumber::TCP, from.octets(), SRC.octets()).unwrap();
            h.identification = 0x4000 ^ u16::from(ttl);
            let b = PacketBuilder::ip(etherparse::IpHeaders::Ipv4(h, Default::default()));
            let mut out = Vec::new();
            if syn_ack {
                b.tcp(dport, sport, 0x1234_5678, 65160)
                    .syn()
                    .ack(seq.wrapping_add(1))
                    .options(&[TcpOptionElement::MaximumSegmentSize(1400)])
                    .unwrap()
                    .write(&mut out, &[])
                    .unwrap();
            } else {
                b.tcp(dport, sport, 0, 0)
                    .rst()
                    .ack(seq.wrapping_add(1))
                    .write(&mut out, &[])
                    .unwrap();
            }
            out
        };
        let mut one_way = 0.0;
        for i in 0..self.hops.len() {
            let h = self.hops[i].clone();
            if self.rng.chance(h.link_loss) {
                return;
            }
            one_way += 1.0;
            let rtt = ms(2.0 * one_way);
            if ttl == 1 {
                if self.token(i, now + ms(one_way)) {
                    // The probe as the router quotes it: TTL 1, IP header + 8 bytes.
                    let mut quote = probe[..ihl + 8].to_vec();
                    quote[8] = 1;
                    let mut out = Vec::new();
                    PacketBuilder::ipv4(h.addr.octets(), SRC.octets(), 255 - i as u8)
                        .icmpv4(Icmpv4Type::TimeExceeded(
                            icmpv4::TimeExceededCode::TtlExceededInTransit,
                        ))
                        .write(&mut out, &quote)
                        .unwrap();
                    self.deliver(now + rtt, out);
                }
                return;
            }
            ttl -= 1;
            let is_443 = tcp.is_some_and(|t| t.1 == 443);
            match h.firewall {
                Some(Firewall::Drop443) if is_443 => return,
                Some(Firewall::Rst443) if is_443 => {
                    let rst = tcp_answer(self.target, 64 - i as u8, false);
                    self.deliver(now + rtt, rst);
                    return;
                }
                _ => {}
            }
        }
        one_way += 1.0;
        let back = 64 - self.hops.len() as u8;
        let answer = if let Some((id, seq, payload)) = echo {
            let mut out = Vec::new();
            PacketBuilder::ipv4(self.target.octets(), SRC.octets(), back)
                .icmpv4_echo_reply(id, seq)
                .write(&mut out, &payload)
                .unwrap();
            out
        } else {
            let (sport, ..) = tcp.unwrap();
            let collision = self
                .half_open
                .as_mut()
                .is_some_and(|open| !open.insert(sport));
            tcp_answer(self.target, back, !collision)
        };
        self.deliver(now + ms(2.0 * one_way), answer);
    }
}

impl Network for SimNet {
    fn source_addr(&mut self, _: IpAddr) -> Result<IpAddr, TraceError> {
        Ok(IpAddr::V4(SRC))
    }

    fn send(&mut self, probe: &ProbeRequest) -> Result<(), TraceError> {
        let now = self.clock.now();
        self.forward(now, &probe.bytes);
        Ok(())
    }

    fn recv(&mut self, deadline: Instant) -> Result<Option<RecvPacket>, TraceError> {
        match self.queue.peek() {
            Some(Reverse((at, _, _))) if *at <= deadline => {
                let Reverse((at, _, bytes)) = self.queue.pop().unwrap();
                self.clock.set(at);
                Ok(Some(RecvPacket {
                    bytes,
                    received_at: at,
                }))
            }
            _ => {
                self.clock.set(deadline);
                Ok(None)
            }
        }
    }
}

/// Runs a trace on a fresh simulated path (its own seeded losses).
fn run(hops: &[Hop], target: Ipv4Addr, protocol: TraceProtocol, rounds: u32, ident: u16) -> Trace {
    run_half_open(hops, target, protocol, rounds, ident, false)
}

fn run_half_open(
    hops: &[Hop],
    target: Ipv4Addr,
    protocol: TraceProtocol,
    rounds: u32,
    ident: u16,
    half_open: bool,
) -> Trace {
    let clock = Arc::new(ManualClock::new(Instant::from_nanos(
        1_700_000_000_000_000_000,
    )));
    let mut net = SimNet {
        clock: clock.clone(),
        hops: hops.to_vec(),
        target,
        rng: Rng(0x5eed ^ u64::from(ident)),
        buckets: hops
            .iter()
            .map(|h| (h.icmp_rate.map_or(0.0, |r| r.1), Instant::ZERO))
            .collect(),
        queue: BinaryHeap::new(),
        order: 0,
        half_open: half_open.then(Default::default),
    };
    let mut cfg = TraceConfig::new(IpAddr::V4(target), protocol);
    cfg.rounds = rounds;
    cfg.ident = ident;
    cfg.src_port = 50505;
    Tracer::new(cfg, &mut net, clock).unwrap().run().unwrap()
}

/// The traces' records merged by time into one capture, decoded and analysed.
fn analyse(traces: &[&Trace], hops: Option<u8>) -> pathproof::analysis::Analysis {
    let mut packets: Vec<&Recorded> = traces.iter().flat_map(|t| t.packets.iter()).collect();
    packets.sort_by_key(|r| r.at);
    let mut analyzer = Analyzer::new(&AnalysisOptions::default());
    for (i, r) in packets.iter().enumerate() {
        let ts = r.at.as_nanos() as i64;
        let d = decode_ip(i as u64 + 1, ts, r.direction, &r.bytes).unwrap();
        analyzer.push_with_payload(&d.packet, d.payload);
    }
    let path = hops.map(pathproof::path::Path::from_hop_count);
    analyzer.finish(path.as_ref())
}

type Key = (FindingKind, Severity, Option<u8>, Option<IpAddr>);

fn keys(findings: &[TraceFinding]) -> Vec<Key> {
    findings
        .iter()
        .map(|f| {
            let f = &f.finding;
            (f.kind, f.severity, f.hop, f.address)
        })
        .collect()
}

/// The analysis rebuilt `original` hop for hop, and interpreted it alike.
fn assert_same(
    a: &pathproof::analysis::Analysis,
    original: &Trace,
    control: Option<&Trace>,
) -> Vec<Key> {
    let (i, rebuilt) = a
        .traces
        .traces
        .iter()
        .enumerate()
        .find(|(_, t)| t.protocol == original.protocol && t.target == original.target)
        .expect("trace found in the capture");
    assert_eq!(rebuilt.target_hop, original.target_hop);
    assert_eq!(rebuilt.hops.len(), original.hops.len());
    for (r, o) in rebuilt.hops.iter().zip(&original.hops) {
        assert_eq!(
            (
                r.hop,
                r.sent,
                r.received,
                r.late,
                r.duplicates,
                &r.addrs,
                &r.kinds,
                r.target
            ),
            (
                o.hop,
                o.sent,
                o.received,
                o.late,
                o.duplicates,
                &o.addrs,
                &o.kinds,
                o.target
            ),
            "{} hop {}",
            original.protocol,
            o.hop
        );
        assert_eq!(r.rtt, o.rtt);
    }
    let it = a
        .traces
        .interpreted
        .iter()
        .find(|it| it.trace == i)
        .expect("interpreted");
    let want = keys(&interpret(original, control));
    assert_eq!(keys(&it.findings), want, "{}", original.protocol);
    // Every trace finding is among the analysis findings.
    for k in &want {
        assert!(
            a.findings
                .iter()
                .any(|f| (f.kind, f.severity, f.hop, f.address) == *k),
            "{k:?} missing from {:?}",
            a.findings.iter().map(|f| f.kind).collect::<Vec<_>>()
        );
    }
    want
}

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

#[test]
fn real_loss_from_hop_3_is_path_loss_at_hop_3() {
    for protocol in [ICMP, TCP] {
        let (mut hops, target) = path(4);
        hops[2].link_loss = 0.30;
        let trace = run(&hops, target, protocol, 200, 0x3131);
        let a = analyse(&[&trace], None);
        let got = assert_same(&a, &trace, None);
        assert_eq!(got[0].0, FindingKind::PathLoss, "{protocol}");
        assert_eq!((got[0].2, got[0].3), (Some(3), ip("10.0.3.1")));
        assert_eq!(a.verdict.class, VerdictClass::PathLoss, "{protocol}");
        assert_eq!(a.verdict.hop, Some(3));
        assert_eq!(a.verdict.address, ip("10.0.3.1"));
        // With one trace alone the frames are the trace's own numbers.
        let live = interpret(&trace, None);
        let pl = a
            .findings
            .iter()
            .find(|f| f.kind == FindingKind::PathLoss)
            .unwrap();
        assert_eq!(pl.frames, live[0].finding.frames);
        assert_eq!(pl.frames_total, live[0].finding.frames_total);
        // The SYN probes are not taken for connections.
        assert!(a.flows.is_empty(), "{protocol}: {} flows", a.flows.len());
    }
}

#[test]
fn resets_from_a_half_open_target_are_not_refusals() {
    // The lab's real-loss scenario once ended as "rst-from-target": the
    // trace keeps one port pair, the connector's reset to a SYN-ACK was
    // lost, and the broker answered the next probes with resets.
    let (mut hops, target) = path(4);
    hops[2].link_loss = 0.30;
    let trace = run_half_open(&hops, target, TCP, 60, 0x3131, true);
    let resets = trace
        .packets
        .iter()
        .filter(|r| {
            let d = decode_ip(1, 0, r.direction, &r.bytes).unwrap();
            d.packet.src == IpAddr::V4(target) && d.packet.tcp().is_some_and(|t| t.flags.rst())
        })
        .count();
    assert!(resets > 5, "the target reset the later probes: {resets}");
    let a = analyse(&[&trace], None);
    assert_eq!(a.verdict.class, VerdictClass::PathLoss);
    assert_eq!(a.verdict.hop, Some(3));
    assert!(a.rsts.is_empty() && a.rsts_total == 0, "{:?}", a.rsts);
    assert!(a.flows.is_empty(), "{} flows", a.flows.len());
    assert!(
        !a.findings
            .iter()
            .any(|f| f.kind == FindingKind::RstFromTarget)
    );
}

#[test]
fn icmp_rate_limit_at_hop_2_is_info_and_healthy() {
    let (mut hops, target) = path(3);
    hops[1].icmp_rate = Some((0.5, 1.0));
    let trace = run(&hops, target, ICMP, 20, 0x3131);
    assert_eq!(trace.hop(2).unwrap().loss_pct, 50.0);
    let a = analyse(&[&trace], None);
    let got = assert_same(&a, &trace, None);
    assert_eq!(
        got[0],
        (
            FindingKind::IcmpRateLimit,
            Severity::Info,
            Some(2),
            ip("10.0.2.1")
        )
    );
    assert_eq!(a.verdict.class, VerdictClass::Healthy);
    assert!(a.findings.iter().all(|f| f.severity == Severity::Info));
}

#[test]
fn tcp_dropped_after_hop_2_with_icmp_control_is_tcp_blocked_at_hop_3() {
    let (mut hops, target) = path(3);
    hops[1].firewall = Some(Firewall::Drop443);
    let tcp = run(&hops, target, TCP, 10, 0x3131);
    let icmp = run(&hops, target, ICMP, 10, 0x3132);
    assert_eq!((tcp.target_hop, icmp.target_hop), (None, Some(4)));
    let a = analyse(&[&tcp, &icmp], None);
    let got = assert_same(&a, &tcp, Some(&icmp));
    assert_eq!(
        got[0],
        (
            FindingKind::TcpBlocked,
            Severity::Critical,
            Some(2),
            ip("10.0.2.1")
        )
    );
    // The control trace is not interpreted on its own, as live.
    assert_eq!(a.traces.interpreted.len(), 1);
    assert_eq!(a.verdict.class, VerdictClass::TcpBlocked);
    // The verdict names the last hop that answered TCP, as `trace` does;
    // the summary names the next one too.
    assert_eq!(
        (a.verdict.hop, a.verdict.address),
        (Some(2), ip("10.0.2.1"))
    );
    assert!(
        a.verdict.summary.contains("before hop 3 (10.0.3.1)"),
        "{}",
        a.verdict.summary
    );
    // The ICMP control trace gives the path its addresses.
    let p = a.path.as_ref().expect("path from the capture");
    assert_eq!(p.target_hop, Some(4));
    assert_eq!(p.address_at(3), ip("10.0.3.1"));
}

#[test]
fn healthy_tcp_and_control() {
    let (hops, target) = path(3);
    let tcp = run(&hops, target, TCP, 10, 0x3131);
    let icmp = run(&hops, target, ICMP, 10, 0x3132);
    let a = analyse(&[&tcp, &icmp], Some(4));
    let got = assert_same(&a, &tcp, Some(&icmp));
    assert_eq!(
        got,
        [(
            FindingKind::TargetReached,
            Severity::Info,
            Some(4),
            ip("198.18.4.2")
        )]
    );
    assert_eq!(a.verdict.class, VerdictClass::Healthy);
    // The user's hop count stays; the capture's trace supplies the addresses.
    let p = a.path.as_ref().unwrap();
    assert_eq!(p.target_hop, Some(4));
    assert_eq!(p.address_at(1), ip("10.0.1.1"));
    assert!(a.flows.is_empty());
}

#[test]
fn rst_in_the_targets_name_at_hop_1() {
    let (mut hops, target) = path(3);
    hops[0].firewall = Some(Firewall::Rst443);
    let tcp = run(&hops, target, TCP, 10, 0x3131);
    let icmp = run(&hops, target, ICMP, 10, 0x3132);
    let a = analyse(&[&tcp, &icmp], None);
    let got = assert_same(&a, &tcp, Some(&icmp));
    assert_eq!(got[0].0, FindingKind::RstInjected);
    assert_eq!(a.verdict.class, VerdictClass::RstInjected);
    assert_eq!(
        (a.verdict.hop, a.verdict.address),
        (Some(1), ip("10.0.1.1"))
    );
    // The path comes from the ICMP trace, not the one the RST shortened.
    assert_eq!(a.path.as_ref().unwrap().target_hop, Some(4));
    // The probes the RSTs answered stay flows: the reset rules see them too.
    assert!(!a.rsts.is_empty());
    assert!(a.rsts.iter().all(|r| r.ttl == 64));
}

#[test]
fn two_ttls_are_not_a_trace() {
    let (hops, target) = path(3);
    let mut trace = run(&hops, target, ICMP, 3, 0x3131);
    // Only the probes at TTL 1 and 2 and their answers.
    let near = [ip("10.0.1.1"), ip("10.0.2.1")];
    trace.packets.retain(|r| {
        let d = decode_ip(0, 0, r.direction, &r.bytes).unwrap().packet;
        d.ttl <= 2 || near.contains(&Some(d.src))
    });
    let a = analyse(&[&trace], None);
    assert!(a.traces.traces.is_empty());
    assert!(a.path.is_none());
    assert!(a.findings.iter().all(|f| !f.summary.starts_with("trace ")));
}
