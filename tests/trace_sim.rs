//! The tracer on a simulated network: a path of routers and a target that
//! answer with real packet bytes (built with etherparse), decoded by the
//! engine through `decode_ip`, on a manual clock.

use etherparse::{
    Icmpv4Type, Icmpv6Type, IpHeaders, IpNumber, Ipv4Header, Ipv6FlowLabel, Ipv6Header, NetSlice,
    PacketBuilder, SlicedPacket, TcpOptionElement, TransportSlice, icmpv4, icmpv6,
};
use pathproof::analysis::Severity;
use pathproof::analysis::rules::path::{Detail, interpret};
use pathproof::packet::{Direction, decode_ip};
use pathproof::trace::{
    Clock, Instant, ManualClock, Network, ProbeRequest, ProbeStatus, RecvPacket, ReplyKind, Trace,
    TraceConfig, TraceError, TraceProtocol, Tracer,
};
use pathproof::vocab::{FindingKind, VerdictClass};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

// ---------------------------------------------------------------- the path

/// SplitMix64: a seeded PRNG, so every run sees the same losses.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
/// A firewall on a router, acting on TCP to one port.
enum Firewall {
    /// Answers TCP SYNs to `port` with RST,ACK in the target's name, TTL 64
    /// (Linux `REJECT --reject-with tcp-reset`). `before_ttl`: acts before
    /// the TTL check (PREROUTING / transparent proxy), so even a probe that
    /// expires here gets the RST.
    Rst { port: u16, before_ttl: bool },
    /// Drops TCP to `port` (after the TTL check: TTL-expiring probes still get
    /// time-exceeded); ICMP and UDP pass.
    Drop { port: u16 },
    /// Answers TCP to `port` with ICMP administratively prohibited.
    Prohibit { port: u16 },
}

/// How a load-balanced hop picks a branch.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Ecmp {
    /// Hash of addresses, protocol and the first 4 transport bytes (ports;
    /// ICMP type, code, checksum): what routers do.
    Flow,
    /// Also the next 4 bytes (ICMP id/seq, TCP seq): the bytes our probes
    /// vary. Negative control: a hash that reads them splits the probes.
    EightBytes,
    /// Every packet to the next branch (per-packet balancing).
    RoundRobin,
}

#[derive(Clone, Debug)]
struct Hop {
    /// Several: a load-balanced hop.
    addrs: Vec<IpAddr>,
    ecmp: Ecmp,
    /// Forward loss on the link into this hop.
    link_loss: f64,
    /// One-way delay of the link into this hop.
    link_ms: f64,
    silent: bool,
    /// ICMP answers limited by a token bucket: (tokens per second, burst).
    icmp_rate: Option<(f64, f64)>,
    /// Slow-path ICMP: with this probability the answer takes `slow_ms` more.
    slow: Option<(f64, f64)>,
    icmp_init_ttl: u8,
    firewall: Option<Firewall>,
}

fn router(addr: &str) -> Hop {
    Hop {
        addrs: vec![addr.parse().unwrap()],
        ecmp: Ecmp::Flow,
        link_loss: 0.0,
        link_ms: 1.0,
        silent: false,
        icmp_rate: None,
        slow: None,
        icmp_init_ttl: 255,
        firewall: None,
    }
}

#[derive(Clone, Debug)]
struct Target {
    addr: IpAddr,
    link_loss: f64,
    link_ms: f64,
    init_ttl: u8,
    tcp_open: bool,
    /// Probability that its answer is lost on the way back; a lost SYN-ACK
    /// is resent 1 s later (Linux's initial SYN-ACK retransmission timer).
    return_loss: f64,
    /// Resend every SYN-ACK after 1 s (we never complete the handshake).
    synack_retransmit: bool,
}

fn target(addr: &str) -> Target {
    Target {
        addr: addr.parse().unwrap(),
        link_loss: 0.0,
        link_ms: 1.0,
        init_ttl: 64,
        tcp_open: true,
        return_loss: 0.0,
        synack_retransmit: false,
    }
}

const SRC4: &str = "10.0.0.2";
const SRC6: &str = "fd00::2";

fn path4() -> (Vec<Hop>, Target) {
    (
        vec![router("10.0.1.1"), router("10.0.2.1"), router("10.0.3.1")],
        target("198.18.4.2"),
    )
}

fn path6() -> (Vec<Hop>, Target) {
    (
        vec![
            router("fd00:1::1"),
            router("fd00:2::1"),
            router("fd00:3::1"),
        ],
        target("fd00:4::2"),
    )
}

/// What the fake saw of each probe.
#[derive(Clone, Debug)]
struct SentProbe {
    at: Instant,
    ttl: u8,
    bytes: Vec<u8>,
}

struct FakeNetwork {
    clock: Arc<ManualClock>,
    source: IpAddr,
    hops: Vec<Hop>,
    target: Target,
    rng: Rng,
    /// (tokens, last refill) per hop.
    buckets: Vec<(f64, Instant)>,
    /// Delivery queue: (time, order, bytes).
    queue: BinaryHeap<Reverse<(Instant, u64, Vec<u8>)>>,
    order: u64,
    sent: Vec<SentProbe>,
    /// Add foreign packets and garbage after every probe.
    noise: bool,
    round_robin: usize,
    /// IPv6 routers quote only the IP header + 8 bytes (as IPv4 ones here).
    short_v6_quotes: bool,
}

fn ms(x: f64) -> Duration {
    Duration::from_nanos((x * 1e6).round() as u64)
}

impl FakeNetwork {
    fn new(clock: Arc<ManualClock>, source: &str, hops: Vec<Hop>, target: Target) -> FakeNetwork {
        let buckets = hops
            .iter()
            .map(|h| (h.icmp_rate.map_or(0.0, |r| r.1), Instant::ZERO))
            .collect();
        FakeNetwork {
            clock,
            source: source.parse().unwrap(),
            hops,
            target,
            rng: Rng(0x5eed),
            buckets,
            queue: BinaryHeap::new(),
            order: 0,
            sent: Vec::new(),
            noise: false,
            round_robin: 0,
            short_v6_quotes: false,
        }
    }

    fn deliver(&mut self, at: Instant, bytes: Vec<u8>) {
        self.order += 1;
        self.queue.push(Reverse((at, self.order, bytes)));
    }

    fn take_token(&mut self, hop: usize, now: Instant) -> bool {
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

    /// Walks a probe along the path and schedules the answer, if any.
    fn forward(&mut self, now: Instant, probe: &[u8]) {
        let mut p = Parsed::new(probe);
        p.short_quote = self.short_v6_quotes;
        let mut ttl = p.ttl;
        let mut one_way = 0.0;
        for i in 0..self.hops.len() {
            let hop_no = i as u8 + 1;
            let h = self.hops[i].clone();
            if self.rng.chance(h.link_loss) {
                return;
            }
            one_way += h.link_ms;
            let branch = match h.ecmp {
                Ecmp::RoundRobin => {
                    self.round_robin += 1;
                    self.round_robin % h.addrs.len()
                }
                mode => p.branch(mode, h.addrs.len()),
            };
            let addr = h.addrs[branch];
            let back = self.reply_ttl(h.icmp_init_ttl, hop_no);
            let rtt = ms(2.0 * one_way);
            let tcp_443 = |port: u16| p.tcp_dst == Some(port);
            if let Some(Firewall::Rst {
                port,
                before_ttl: true,
            }) = h.firewall
                && tcp_443(port)
            {
                let rst = p.tcp_answer(self.target.addr, self.reply_ttl(64, hop_no), false);
                self.deliver(now + rtt, rst);
                return;
            }
            if ttl == 1 {
                if !h.silent && self.take_token(i, now + ms(one_way)) {
                    let extra = match h.slow {
                        Some((prob, slow_ms)) if self.rng.chance(prob) => ms(slow_ms),
                        _ => Duration::ZERO,
                    };
                    let te = p.icmp_error(addr, back, IcmpError::TimeExceeded);
                    self.deliver(now + rtt + extra, te);
                }
                return;
            }
            ttl -= 1;
            match h.firewall {
                Some(Firewall::Rst { port, .. }) if tcp_443(port) => {
                    let rst = p.tcp_answer(self.target.addr, self.reply_ttl(64, hop_no), false);
                    self.deliver(now + rtt, rst);
                    return;
                }
                Some(Firewall::Drop { port }) if tcp_443(port) => return,
                Some(Firewall::Prohibit { port }) if tcp_443(port) => {
                    let e = p.icmp_error(addr, back, IcmpError::Prohibited);
                    self.deliver(now + rtt, e);
                    return;
                }
                _ => {}
            }
        }
        let t = self.target.clone();
        if self.rng.chance(t.link_loss) {
            return;
        }
        one_way += t.link_ms;
        let hop_no = self.hops.len() as u8 + 1;
        let back = self.reply_ttl(t.init_ttl, hop_no);
        let rtt = ms(2.0 * one_way);
        let answer = match p.proto {
            1 | 58 => p.echo_reply(back),
            6 => p.tcp_answer(t.addr, back, t.tcp_open),
            17 => p.icmp_error(t.addr, back, IcmpError::PortUnreachable),
            _ => return,
        };
        let synack = p.proto == 6 && t.tcp_open;
        if self.rng.chance(t.return_loss) {
            if synack {
                self.deliver(now + rtt + Duration::from_secs(1), answer);
            }
            return;
        }
        if synack && t.synack_retransmit {
            self.deliver(now + rtt + Duration::from_secs(1), answer.clone());
        }
        self.deliver(now + rtt, answer);
    }

    fn reply_ttl(&self, init: u8, hop: u8) -> u8 {
        init - (hop - 1)
    }

    fn add_noise(&mut self, now: Instant, probe: &[u8]) {
        let p = Parsed::new(probe);
        let me = self.source;
        let other: IpAddr = if me.is_ipv6() {
            "fd00:99::9".parse().unwrap()
        } else {
            "203.0.113.9".parse().unwrap()
        };
        // Another program's ping reply, a stranger's RST, garbage, a
        // time-exceeded for someone else's flow (other source port), and a
        // TCP answer for a sequence number we never sent.
        let mut ping = Vec::new();
        ip_builder(other, me, 50)
            .icmp_echo_reply(0x0bad, 7)
            .write_any(&mut ping, &[0; 8]);
        self.deliver(now + ms(0.5), ping);
        let mut rst = Vec::new();
        ip_builder(other, me, 50)
            .tcp(443, 40000, 1, 0)
            .rst()
            .ack(5)
            .write(&mut rst, &[])
            .unwrap();
        self.deliver(now + ms(0.6), rst);
        self.deliver(now + ms(0.7), vec![0x45, 0, 0, 3]);
        self.deliver(now + ms(0.8), vec![0x60; 30]);
        let mut stranger = probe.to_vec();
        if p.tcp_dst.is_some() || p.proto == 17 {
            let at = p.l4_at;
            stranger[at] ^= 0x55; // other source port
            let te = Parsed::new(&stranger).icmp_error(other, 60, IcmpError::TimeExceeded);
            self.deliver(now + ms(0.9), te);
        }
        if p.proto == 6 {
            let mut bogus = Parsed::new(probe);
            bogus.tcp_seq = bogus.tcp_seq.wrapping_add(0x1_0000); // other trace identity
            let a = bogus.tcp_answer(self.target.addr, 60, true);
            self.deliver(now + ms(1.0), a);
        }
    }
}

impl Network for FakeNetwork {
    fn source_addr(&mut self, _target: IpAddr) -> Result<IpAddr, TraceError> {
        Ok(self.source)
    }

    fn send(&mut self, probe: &ProbeRequest) -> Result<(), TraceError> {
        let now = self.clock.now();
        let p = Parsed::new(&probe.bytes);
        assert_eq!(p.ttl, probe.ttl, "TTL in the bytes");
        self.sent.push(SentProbe {
            at: now,
            ttl: probe.ttl,
            bytes: probe.bytes.clone(),
        });
        self.forward(now, &probe.bytes);
        if self.noise {
            self.add_noise(now, &probe.bytes);
        }
        Ok(())
    }

    fn recv(&mut self, deadline: Instant) -> Result<Option<RecvPacket>, TraceError> {
        match self.queue.peek() {
            Some(Reverse((at, _, _))) if *at <= deadline => {
                let Reverse((at, _, bytes)) = self.queue.pop().unwrap();
                self.clock.set(at);
                Ok(Some(RecvPacket {
                    bytes,
                    received_at: self.clock.now(),
                }))
            }
            _ => {
                self.clock.set(deadline);
                Ok(None)
            }
        }
    }
}

// ------------------------------------------------- probe parsing, replies

/// What the simulated routers read from a probe (test code: the network
/// may parse however it likes; the engine uses `decode_ip`).
#[derive(Clone)]
struct Parsed {
    bytes: Vec<u8>,
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    proto: u8,
    l4_at: usize,
    tcp_dst: Option<u16>,
    tcp_src: u16,
    tcp_seq: u32,
    echo: Option<(u16, u16)>,
    echo_payload: Vec<u8>,
    /// Quote only the IP header + 8 bytes on IPv6 too.
    short_quote: bool,
}

impl Parsed {
    fn new(bytes: &[u8]) -> Parsed {
        let s = SlicedPacket::from_ip(bytes).expect("probe parses");
        let (src, dst, ttl, proto, l4_at) = match &s.net {
            Some(NetSlice::Ipv4(v4)) => {
                let h = v4.header();
                (
                    IpAddr::from(h.source()),
                    IpAddr::from(h.destination()),
                    h.ttl(),
                    h.protocol().0,
                    usize::from(h.ihl()) * 4,
                )
            }
            Some(NetSlice::Ipv6(v6)) => {
                let h = v6.header();
                (
                    IpAddr::from(h.source()),
                    IpAddr::from(h.destination()),
                    h.hop_limit(),
                    h.next_header().0,
                    40,
                )
            }
            _ => panic!("not IP"),
        };
        let mut p = Parsed {
            bytes: bytes.to_vec(),
            src,
            dst,
            ttl,
            proto,
            l4_at,
            tcp_dst: None,
            tcp_src: 0,
            tcp_seq: 0,
            echo: None,
            echo_payload: Vec::new(),
            short_quote: false,
        };
        match &s.transport {
            Some(TransportSlice::Tcp(t)) => {
                p.tcp_dst = Some(t.destination_port());
                p.tcp_src = t.source_port();
                p.tcp_seq = t.sequence_number();
            }
            Some(TransportSlice::Icmpv4(i)) => {
                if let Icmpv4Type::EchoRequest(e) = i.icmp_type() {
                    p.echo = Some((e.id, e.seq));
                    p.echo_payload = i.payload().to_vec();
                }
            }
            Some(TransportSlice::Icmpv6(i)) => {
                if let Icmpv6Type::EchoRequest(e) = i.icmp_type() {
                    p.echo = Some((e.id, e.seq));
                    p.echo_payload = i.payload().to_vec();
                }
            }
            _ => {}
        }
        p
    }

    /// ECMP branch of this packet.
    fn branch(&self, mode: Ecmp, n: usize) -> usize {
        if n == 1 {
            return 0;
        }
        let l4 = &self.bytes[self.l4_at..];
        let take = if mode == Ecmp::Flow { 4 } else { 8 };
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |b: u8| {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100_0000_01b3);
        };
        for b in self
            .src
            .to_string()
            .bytes()
            .chain(self.dst.to_string().bytes())
        {
            eat(b);
        }
        eat(self.proto);
        for &b in &l4[..take.min(l4.len())] {
            eat(b);
        }
        (h % n as u64) as usize
    }

    /// The probe as a router quotes it: TTL 1 as it arrived; IPv4 routers
    /// quote the IP header + 8 bytes (RFC 792), IPv6 ones the whole probe.
    fn quote(&self) -> Vec<u8> {
        let mut q = self.bytes.clone();
        if self.src.is_ipv6() {
            q[7] = 1;
        } else {
            q[8] = 1;
        }
        if self.src.is_ipv4() || self.short_quote {
            q.truncate(self.l4_at + 8);
        }
        q
    }

    fn icmp_error(&self, from: IpAddr, ttl: u8, what: IcmpError) -> Vec<u8> {
        let mut out = Vec::new();
        let quote = self.quote();
        let b = ip_builder(from, self.src, ttl);
        match (b, what) {
            (IpB::V4(b), IcmpError::TimeExceeded) => b
                .icmpv4(Icmpv4Type::TimeExceeded(
                    icmpv4::TimeExceededCode::TtlExceededInTransit,
                ))
                .write(&mut out, &quote),
            (IpB::V4(b), IcmpError::Prohibited) => b
                .icmpv4(Icmpv4Type::DestinationUnreachable(
                    icmpv4::DestUnreachableHeader::FilterProhibited,
                ))
                .write(&mut out, &quote),
            (IpB::V4(b), IcmpError::PortUnreachable) => b
                .icmpv4(Icmpv4Type::DestinationUnreachable(
                    icmpv4::DestUnreachableHeader::Port,
                ))
                .write(&mut out, &quote),
            (IpB::V6(b), IcmpError::TimeExceeded) => b
                .icmpv6(Icmpv6Type::TimeExceeded(
                    icmpv6::TimeExceededCode::HopLimitExceeded,
                ))
                .write(&mut out, &quote),
            (IpB::V6(b), IcmpError::Prohibited) => b
                .icmpv6(Icmpv6Type::DestinationUnreachable(
                    icmpv6::DestUnreachableCode::Prohibited,
                ))
                .write(&mut out, &quote),
            (IpB::V6(b), IcmpError::PortUnreachable) => b
                .icmpv6(Icmpv6Type::DestinationUnreachable(
                    icmpv6::DestUnreachableCode::Port,
                ))
                .write(&mut out, &quote),
        }
        .unwrap();
        out
    }

    fn echo_reply(&self, ttl: u8) -> Vec<u8> {
        let (id, seq) = self.echo.expect("echo request");
        let mut out = Vec::new();
        ip_builder(self.dst, self.src, ttl)
            .icmp_echo_reply(id, seq)
            .write_any(&mut out, &self.echo_payload);
        out
    }

    /// SYN-ACK (`open`) or RST,ACK answering this SYN, from `from`.
    fn tcp_answer(&self, from: IpAddr, ttl: u8, open: bool) -> Vec<u8> {
        let port = self.tcp_dst.expect("tcp probe");
        let mut out = Vec::new();
        let b = ip_builder(from, self.src, ttl);
        let ack = self.tcp_seq.wrapping_add(1);
        if open {
            b.tcp(port, self.tcp_src, 0x1234_5678, 65160)
                .syn()
                .ack(ack)
                .options(&[TcpOptionElement::MaximumSegmentSize(1400)])
                .unwrap()
                .write(&mut out, &[])
                .unwrap();
        } else {
            b.tcp(port, self.tcp_src, 0, 0)
                .rst()
                .ack(ack)
                .write(&mut out, &[])
                .unwrap();
        }
        out
    }
}

enum IcmpError {
    TimeExceeded,
    Prohibited,
    PortUnreachable,
}

/// An IP layer of either version, so that callers write one chain.
enum IpB {
    V4(etherparse::PacketBuilderStep<IpHeaders>),
    V6(etherparse::PacketBuilderStep<IpHeaders>),
}

fn ip_builder(src: IpAddr, dst: IpAddr, ttl: u8) -> IpB {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut h = Ipv4Header::new(0, ttl, IpNumber::TCP, s.octets(), d.octets()).unwrap();
            h.identification = 0x4000 ^ u16::from(ttl);
            IpB::V4(PacketBuilder::ip(IpHeaders::Ipv4(h, Default::default())))
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => IpB::V6(PacketBuilder::ip(IpHeaders::Ipv6(
            Ipv6Header {
                traffic_class: 0,
                flow_label: Ipv6FlowLabel::ZERO,
                payload_length: 0,
                next_header: IpNumber::TCP,
                hop_limit: ttl,
                source: s.octets(),
                destination: d.octets(),
            },
            Default::default(),
        ))),
        _ => panic!("mixed families"),
    }
}

impl IpB {
    fn tcp(
        self,
        src_port: u16,
        dst_port: u16,
        seq: u32,
        window: u16,
    ) -> etherparse::PacketBuilderStep<etherparse::TcpHeader> {
        match self {
            IpB::V4(b) | IpB::V6(b) => b.tcp(src_port, dst_port, seq, window),
        }
    }

    fn icmp_echo_reply(self, id: u16, seq: u16) -> EchoReply {
        match self {
            IpB::V4(b) => EchoReply::V4(b.icmpv4_echo_reply(id, seq)),
            IpB::V6(b) => EchoReply::V6(b.icmpv6_echo_reply(id, seq)),
        }
    }
}

enum EchoReply {
    V4(etherparse::PacketBuilderStep<etherparse::Icmpv4Header>),
    V6(etherparse::PacketBuilderStep<etherparse::Icmpv6Header>),
}

impl EchoReply {
    fn write_any(self, out: &mut Vec<u8>, payload: &[u8]) {
        match self {
            EchoReply::V4(b) => b.write(out, payload).unwrap(),
            EchoReply::V6(b) => b.write(out, payload).unwrap(),
        }
    }
}

// ----------------------------------------------------------------- helpers

const ICMP: TraceProtocol = TraceProtocol::Icmp;
const TCP: TraceProtocol = TraceProtocol::Tcp { port: 443 };
const UDP: TraceProtocol = TraceProtocol::Udp { port: 33434 };

fn config(target: IpAddr, protocol: TraceProtocol, rounds: u32) -> TraceConfig {
    let mut c = TraceConfig::new(target, protocol);
    c.rounds = rounds;
    c.ident = 0x3131;
    c.src_port = 50505;
    c
}

/// Runs a trace on a fresh simulated network; returns it and the network.
fn run_on(
    hops: Vec<Hop>,
    tgt: Target,
    cfg: TraceConfig,
    tweak: impl FnOnce(&mut FakeNetwork),
) -> (Trace, FakeNetwork) {
    let clock = Arc::new(ManualClock::new(Instant::from_nanos(1_000_000_000)));
    let src = if tgt.addr.is_ipv6() { SRC6 } else { SRC4 };
    let mut net = FakeNetwork::new(clock.clone(), src, hops, tgt);
    tweak(&mut net);
    let trace = Tracer::new(cfg, &mut net, clock.clone())
        .unwrap()
        .run()
        .expect("trace runs");
    (trace, net)
}

fn run(hops: Vec<Hop>, tgt: Target, protocol: TraceProtocol, rounds: u32) -> Trace {
    let cfg = config(tgt.addr, protocol, rounds);
    run_on(hops, tgt, cfg, |_| {}).0
}

fn addrs(trace: &Trace) -> Vec<Vec<String>> {
    trace
        .hops
        .iter()
        .map(|h| h.addrs.iter().map(|a| a.addr.to_string()).collect())
        .collect()
}

fn kinds(findings: &[pathproof::analysis::rules::path::TraceFinding]) -> Vec<&'static str> {
    findings.iter().map(|f| f.kind().as_str()).collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Every probe frame points at the probe's bytes, every reply frame at an
/// incoming packet: the record can be written as a pcap and the findings'
/// frame numbers hold.
fn check_record(trace: &Trace) {
    for round in &trace.rounds {
        for status in &round.probes {
            if let Some(p) = status.probe()
                && let Some(f) = p.frame
                && !matches!(status, ProbeStatus::Failed(_))
            {
                let rec = &trace.packets[f as usize - 1];
                assert_eq!(rec.direction, Direction::Out);
                assert_eq!(rec.at, p.sent_at);
                let d = decode_ip(f, 0, Direction::Out, &rec.bytes).unwrap().packet;
                assert_eq!(d.ttl, p.ttl);
            }
            if let Some(r) = status.reply()
                && let Some(f) = r.frame
            {
                let rec = &trace.packets[f as usize - 1];
                assert_eq!(rec.direction, Direction::In);
                assert_eq!(rec.at, r.received_at);
            }
        }
    }
    let c = trace.counters;
    assert_eq!(
        trace.packets.len() as u64,
        u64::from(c.sent + c.answered + c.late + c.duplicates)
    );
}

// ------------------------------------------------------------- scenarios

#[test]
fn healthy_four_hop_path_every_protocol() {
    for protocol in [ICMP, TCP, UDP] {
        let (hops, tgt) = path4();
        let trace = run(hops, tgt, protocol, 10);
        assert_eq!(trace.target_hop, Some(4), "{protocol}");
        assert_eq!(
            addrs(&trace),
            [
                vec!["10.0.1.1"],
                vec!["10.0.2.1"],
                vec!["10.0.3.1"],
                vec!["198.18.4.2"]
            ]
        );
        for h in &trace.hops {
            assert_eq!(
                (h.sent, h.received, h.loss_pct),
                (10, 10, 0.0),
                "{protocol}"
            );
            assert_eq!((h.late, h.duplicates), (0, 0));
            let rtt = h.rtt.unwrap();
            // 1 ms per link each way.
            let want = 2.0 * f64::from(h.hop);
            assert!((rtt.avg_ms - want).abs() < 1e-9, "{} {}", h.hop, rtt.avg_ms);
            assert_eq!((rtt.best_ms, rtt.worst_ms, rtt.last_ms), (want, want, want));
            assert_eq!(rtt.stdev_ms, 0.0);
            // Router TTL 255 and target TTL 64 both point at the right hop.
            assert_eq!(h.reply_ttls.len(), 1);
            assert_eq!(h.reply_ttls[0].estimate.hop, h.hop);
        }
        assert_eq!(trace.hops[0].reply_ttls[0].ttl, 255);
        assert_eq!(trace.hops[3].reply_ttls[0].ttl, 61);
        let want_kind = match protocol {
            TraceProtocol::Icmp => ReplyKind::EchoReply,
            TraceProtocol::Tcp { .. } => ReplyKind::TcpSynAck,
            TraceProtocol::Udp { .. } => ReplyKind::UdpPortUnreachable,
        };
        assert_eq!(trace.hops[3].kinds[0].kind, want_kind);
        assert!(trace.hops[3].target && !trace.hops[2].target);
        assert_eq!(trace.hops[2].kinds[0].kind, ReplyKind::TimeExceeded);
        let f = interpret(&trace, None);
        assert_eq!(kinds(&f), ["target-reached"], "{protocol}");
        assert_eq!(f[0].finding.hop, Some(4));
        check_record(&trace);
        // No grace period: the run ends when the last round's last answer
        // (the target's, 8 ms) arrives.
        assert_eq!(
            trace.duration(),
            Duration::from_secs(9) + Duration::from_millis(8)
        );
    }
}

#[test]
fn drop_443_tcp_stops_after_hop_1_icmp_reaches_target() {
    let (mut hops, tgt) = path4();
    hops[0].firewall = Some(Firewall::Drop { port: 443 });
    let (tcp, net) = run_on(hops.clone(), tgt.clone(), config(tgt.addr, TCP, 10), |_| {});
    let icmp = run(hops, tgt.clone(), ICMP, 10);
    assert_eq!(icmp.target_hop, Some(4));
    assert_eq!(tcp.target_hop, None);
    assert_eq!(addrs(&tcp), [vec!["10.0.1.1"]]);
    assert_eq!(tcp.hops[0].loss_pct, 0.0);
    // After round 0, TTLs up to the last answering hop + 5 (max_unknown) only.
    let later: Vec<u8> = net.sent.iter().skip(30).map(|s| s.ttl).collect();
    assert_eq!(later.len(), 9 * 6);
    assert!(later.iter().all(|&t| t <= 6));

    let f = interpret(&tcp, Some(&icmp));
    assert_eq!(f[0].kind(), FindingKind::TcpBlocked);
    assert_eq!(f[0].finding.severity, Severity::Critical);
    assert_eq!(f[0].finding.hop, Some(1));
    assert_eq!(f[0].finding.address, Some(ip("10.0.1.1")));
    assert_eq!(
        f[0].detail,
        Detail::ProtocolBlocked {
            protocol: TCP,
            last_hop: Some(1),
            control_target_hop: 4,
            next_hop_addr: Some(ip("10.0.2.1")),
        }
    );
    // Without the control trace: only "not reached".
    assert_eq!(kinds(&interpret(&tcp, None)), ["target-not-reached"]);
    check_record(&tcp);
}

#[test]
fn rst_at_hop_1_in_tcp_mode_is_a_middlebox_with_ttl_64() {
    let (mut hops, tgt) = path4();
    hops[0].firewall = Some(Firewall::Rst {
        port: 443,
        before_ttl: false,
    });
    let (tcp, net) = run_on(hops.clone(), tgt.clone(), config(tgt.addr, TCP, 10), |_| {});
    let icmp = run(hops, tgt.clone(), ICMP, 10);
    // The TCP trace sees hop 1's time-exceeded, then "the target" at TTL 2.
    assert_eq!(tcp.target_hop, Some(2));
    assert_eq!(addrs(&tcp), [vec!["10.0.1.1"], vec!["198.18.4.2"]]);
    assert_eq!(tcp.hops[1].kinds[0].kind, ReplyKind::TcpRst);
    assert_eq!(tcp.hops[1].reply_ttls[0].ttl, 64);
    // Never probes past the hop where "the target" answered.
    assert!(net.sent.iter().skip(30).all(|s| s.ttl <= 2));

    let f = interpret(&tcp, Some(&icmp));
    assert_eq!(f[0].kind(), FindingKind::RstInjected);
    assert_eq!(f[0].finding.severity, Severity::Critical);
    assert_eq!(f[0].finding.hop, Some(1));
    assert_eq!(
        f[0].detail,
        Detail::MiddleboxAnswer {
            hop: 1,
            kind: ReplyKind::TcpRst,
            probe_ttl: 2,
            reply_ttl: 64,
            implied_hop: 1,
            control_target_hop: Some(4),
            router: Some(ip("10.0.1.1")),
        }
    );
    assert!(
        f[0].finding.summary.contains("TTL 64"),
        "{}",
        f[0].finding.summary
    );
    assert_eq!(f[0].finding.frames_total, 10);
    assert!(!kinds(&f).contains(&"target-reached"));

    // The TTL alone (no control trace) still flags it, as a warning: one hop
    // short could also be a shorter return path.
    let alone = interpret(&tcp, None);
    assert_eq!(alone[0].kind(), FindingKind::RstInjected);
    assert_eq!(alone[0].finding.severity, Severity::Warning);
    assert_eq!(alone[0].finding.hop, Some(1));
}

#[test]
fn rst_before_the_ttl_check_needs_the_control_trace() {
    let (mut hops, tgt) = path4();
    hops[0].firewall = Some(Firewall::Rst {
        port: 443,
        before_ttl: true,
    });
    let tcp = run(hops.clone(), tgt.clone(), TCP, 5);
    let icmp = run(hops, tgt, ICMP, 5);
    // "The target" answers at TTL 1 with TTL 64: consistent on its own.
    assert_eq!(tcp.target_hop, Some(1));
    // Alone it looks like a target at hop 1 that refuses the port: said,
    // but only as a warning (no control trace confirms the target's hop).
    let alone = interpret(&tcp, None);
    assert_eq!(kinds(&alone), ["rst-from-target", "target-reached"]);
    assert_eq!(alone[0].finding.severity, Severity::Warning);
    let judged = pathproof::analysis::judge_trace(&tcp, None);
    assert_eq!(judged.verdict.class, VerdictClass::Inconclusive);
    // The ICMP trace reaches the real target at hop 4: hop 1 answered for it.
    let f = interpret(&tcp, Some(&icmp));
    assert_eq!(f[0].kind(), FindingKind::RstInjected);
    assert_eq!(f[0].finding.severity, Severity::Critical);
    match &f[0].detail {
        Detail::MiddleboxAnswer {
            hop,
            probe_ttl,
            reply_ttl,
            control_target_hop,
            ..
        } => assert_eq!(
            (*hop, *probe_ttl, *reply_ttl, *control_target_hop),
            (1, 1, 64, Some(4))
        ),
        d => panic!("{d:?}"),
    }
}

#[test]
fn genuine_target_rst_is_not_a_middlebox() {
    // Closed port: the target itself resets (TTL 61 = hop 4); and the same
    // with a return path one hop longer (TTL 60 implies hop 5 > 4).
    for extra_return_hop in [false, true] {
        let (hops, mut tgt) = path4();
        tgt.tcp_open = false;
        if extra_return_hop {
            tgt.init_ttl = 63;
        }
        let tcp = run(hops.clone(), tgt.clone(), TCP, 5);
        let icmp = run(hops, tgt, ICMP, 5);
        assert_eq!(tcp.target_hop, Some(4));
        assert_eq!(tcp.hop(4).unwrap().kinds[0].kind, ReplyKind::TcpRst);
        let f = interpret(&tcp, Some(&icmp));
        assert_eq!(kinds(&f), ["rst-from-target", "target-reached"]);
        assert_eq!(f[0].finding.severity, Severity::Critical);
        assert_eq!(f[0].finding.hop, Some(4));
        assert_eq!(
            kinds(&interpret(&tcp, None)),
            ["rst-from-target", "target-reached"]
        );
        // The refused port is a failure, at the target's hop, as `pcap`
        // judges the same packets.
        let v = pathproof::analysis::judge_trace(&tcp, Some(&icmp)).verdict;
        assert_eq!(
            (v.class, v.hop, v.address),
            (VerdictClass::RstFromTarget, Some(4), Some(tcp.target))
        );
        assert_eq!(v.exit_code(), 1);
    }
}

#[test]
fn icmp_rate_limit_at_hop_2_is_not_loss() {
    let (mut hops, tgt) = path4();
    // Half a token per second, burst 1: answers every other probe at 1/s.
    hops[1].icmp_rate = Some((0.5, 1.0));
    let trace = run(hops.clone(), tgt.clone(), ICMP, 20);
    let h2 = trace.hop(2).unwrap();
    assert_eq!((h2.sent, h2.received), (20, 10));
    assert_eq!(h2.loss_pct, 50.0);
    for hop in [1, 3, 4] {
        assert_eq!(trace.hop(hop).unwrap().loss_pct, 0.0, "hop {hop}");
    }
    let f = interpret(&trace, None);
    assert_eq!(kinds(&f), ["icmp-rate-limit", "target-reached"]);
    assert_eq!(f[0].finding.hop, Some(2));
    assert_eq!(f[0].finding.address, Some(ip("10.0.2.1")));
    assert_eq!(
        f[0].detail,
        Detail::RateLimited {
            hop: 2,
            sent: 20,
            received: 10,
            end_hop: 4,
            end_loss_pct: 0.0
        }
    );
    // Probing slower makes the "loss" go away (the confirmation the
    // detection notes prescribe).
    let mut slow = config(tgt.addr, ICMP, 20);
    slow.interval = Duration::from_secs(2);
    let (slow, _) = run_on(hops, tgt, slow, |_| {});
    assert_eq!(slow.hop(2).unwrap().loss_pct, 0.0);
    assert_eq!(kinds(&interpret(&slow, None)), ["target-reached"]);
}

#[test]
fn real_loss_30_percent_from_hop_3() {
    for protocol in [ICMP, TCP] {
        let hops = vec![
            router("10.0.1.1"),
            router("10.0.2.1"),
            Hop {
                link_loss: 0.30,
                ..router("10.0.3.1")
            },
            router("10.0.4.1"),
        ];
        let trace = run(hops, target("198.18.5.2"), protocol, 200);
        assert_eq!(trace.target_hop, Some(5));
        for hop in [1, 2] {
            assert_eq!(trace.hop(hop).unwrap().loss_pct, 0.0);
        }
        for hop in [3, 4, 5] {
            let l = trace.hop(hop).unwrap().loss_pct;
            assert!((22.0..=38.0).contains(&l), "{protocol} hop {hop}: {l}%");
        }
        let f = interpret(&trace, None);
        assert_eq!(
            f[0].kind(),
            FindingKind::PathLoss,
            "{protocol}: {:?}",
            kinds(&f)
        );
        assert_eq!(f[0].finding.severity, Severity::Critical);
        assert_eq!(f[0].finding.hop, Some(3));
        assert_eq!(f[0].finding.address, Some(ip("10.0.3.1")));
        match f[0].detail {
            Detail::RealLoss {
                from_hop,
                end_hop,
                to_target,
                loss_pct,
                ci_low_pct,
                ci_high_pct,
                ..
            } => {
                assert_eq!((from_hop, end_hop, to_target), (3, 5, true));
                assert!(ci_low_pct > 15.0 && ci_high_pct < 45.0);
                assert!(ci_low_pct < loss_pct && loss_pct < ci_high_pct);
            }
            ref d => panic!("{d:?}"),
        }
        assert!(!kinds(&f).contains(&"icmp-rate-limit"), "{:?}", kinds(&f));
        // Lost SYNs are loss, not "latency" (mtr --tcp's trap).
        let t = trace.hop(5).unwrap();
        assert!(t.rtt.unwrap().worst_ms < 11.0);
        assert_eq!(t.late, 0);
    }
}

#[test]
fn ecmp_paris_flow_keeps_one_address_per_hop() {
    for protocol in [ICMP, TCP, UDP] {
        let (mut hops, tgt) = path4();
        hops[1].addrs = vec![ip("10.0.2.1"), ip("10.0.2.2")];
        let cfg = config(tgt.addr, protocol, 20);
        let (trace, net) = run_on(hops.clone(), tgt.clone(), cfg, |_| {});
        assert_eq!(trace.hop(2).unwrap().addrs.len(), 1, "{protocol}");
        // What a flow hash reads is the same in every probe.
        let key = |b: &[u8]| {
            let p = Parsed::new(b);
            (p.src, p.dst, p.proto, b[p.l4_at..p.l4_at + 4].to_vec())
        };
        let first = key(&net.sent[0].bytes);
        assert!(net.sent.iter().all(|s| key(&s.bytes) == first));
        assert_eq!(trace.hop(2).unwrap().received, 20);
        assert!(!kinds(&interpret(&trace, None)).contains(&"ecmp"));
        // Negative controls, so the test above can fail: a balancer that
        // hashes the bytes ICMP and TCP probes vary, and per-packet balancing.
        let controls: &[Ecmp] = if protocol == UDP {
            &[Ecmp::RoundRobin]
        } else {
            &[Ecmp::EightBytes, Ecmp::RoundRobin]
        };
        for &mode in controls {
            hops[1].ecmp = mode;
            let trace = run(hops.clone(), tgt.clone(), protocol, 20);
            let h2 = trace.hop(2).unwrap();
            assert_eq!(h2.addrs.len(), 2, "{protocol} {mode:?}");
            assert_eq!(h2.addrs.iter().map(|a| a.replies).sum::<u32>(), 20);
            let f = interpret(&trace, None);
            let e = f.iter().find(|f| f.kind() == FindingKind::Ecmp).unwrap();
            assert_eq!(e.finding.hop, Some(2));
        }
    }
}

#[test]
fn silent_hop_shows_as_unknown_and_is_not_loss() {
    let (mut hops, tgt) = path4();
    hops[1].silent = true;
    let trace = run(hops, tgt, UDP, 10);
    assert_eq!(trace.target_hop, Some(4));
    let h2 = trace.hop(2).unwrap();
    assert!(h2.is_silent() && h2.addrs.is_empty() && h2.rtt.is_none());
    assert_eq!((h2.sent, h2.received, h2.loss_pct), (10, 0, 100.0));
    assert_eq!(
        addrs(&trace),
        [
            vec!["10.0.1.1"],
            vec![],
            vec!["10.0.3.1"],
            vec!["198.18.4.2"]
        ]
    );
    let f = interpret(&trace, None);
    assert_eq!(kinds(&f), ["silent-hop", "target-reached"]);
    assert_eq!(f[0].finding.hop, Some(2));
    // The last round waits the full timeout for the silent hop.
    assert_eq!(trace.duration(), Duration::from_secs(9) + trace.timeout);
}

#[test]
fn ipv6_path_every_protocol() {
    for protocol in [ICMP, TCP, UDP] {
        let (hops, tgt) = path6();
        let trace = run(hops, tgt, protocol, 10);
        assert_eq!(trace.target_hop, Some(4), "{protocol}");
        assert_eq!(
            addrs(&trace),
            [
                vec!["fd00:1::1"],
                vec!["fd00:2::1"],
                vec!["fd00:3::1"],
                vec!["fd00:4::2"]
            ]
        );
        for h in &trace.hops {
            assert_eq!((h.sent, h.received), (10, 10), "{protocol} hop {}", h.hop);
            assert_eq!(h.reply_ttls[0].estimate.hop, h.hop);
        }
        assert_eq!(kinds(&interpret(&trace, None)), ["target-reached"]);
        check_record(&trace);
    }
}

#[test]
fn ipv6_rst_middlebox_and_udp_across_many_rounds() {
    // UDP over IPv6 has no IP ID: it is matched by the quoted payload or,
    // in a quote cut after 8 bytes, the UDP length (8 bits of the sequence).
    // Many rounds and a hop whose answers come 1.5 s late (past the next
    // round) must not be mismatched.
    for short_quotes in [false, true] {
        let (mut hops, tgt) = path6();
        hops[1].slow = Some((0.5, 1500.0));
        let cfg = config(tgt.addr, UDP, 40);
        let (trace, _) = run_on(hops, tgt, cfg, |n| n.short_v6_quotes = short_quotes);
        let h2 = trace.hop(2).unwrap();
        assert_eq!(h2.sent, 40);
        // The last round's slow answer would come after the run.
        let unanswered = count_lost_without_reply(&trace, 2);
        assert!(unanswered <= 1);
        assert_eq!(h2.received + h2.late + unanswered, 40);
        assert!(h2.late > 10 && h2.received > 10, "{h2:?}");
        assert!(h2.rtt.unwrap().worst_ms < 1000.0);
        // Each late answer was matched to its own probe (1.5 s after it),
        // not to a later round's.
        for round in &trace.rounds {
            if let Some(ProbeStatus::Lost(l)) = round.status(2)
                && let Some(late) = l.late
            {
                assert_eq!(
                    late.received_at - l.probe.sent_at,
                    Duration::from_millis(1504)
                );
            }
        }
        for hop in [1, 3, 4] {
            assert_eq!(trace.hop(hop).unwrap().received, 40);
        }
        assert_eq!(trace.counters.foreign, 0);
    }

    let (mut hops, tgt) = path6();
    hops[1].firewall = Some(Firewall::Rst {
        port: 443,
        before_ttl: false,
    });
    let tcp = run(hops.clone(), tgt.clone(), TCP, 5);
    let icmp = run(hops, tgt, ICMP, 5);
    let f = interpret(&tcp, Some(&icmp));
    assert_eq!(f[0].kind(), FindingKind::RstInjected);
    assert_eq!(f[0].finding.hop, Some(2));
    assert_eq!(f[0].finding.address, Some(ip("fd00:4::2")));
    match f[0].detail {
        Detail::MiddleboxAnswer {
            reply_ttl, router, ..
        } => assert_eq!((reply_ttl, router), (63, Some(ip("fd00:2::1")))),
        ref d => panic!("{d:?}"),
    }
}

#[test]
fn no_hops_past_the_target() {
    let (hops, tgt) = path4();
    let (trace, net) = run_on(hops, tgt.clone(), config(tgt.addr, ICMP, 10), |_| {});
    // Round 0 probes every TTL (the path is unknown) ...
    let first: Vec<u8> = net.sent.iter().take(30).map(|s| s.ttl).collect();
    assert_eq!(first, (1..=30).collect::<Vec<u8>>());
    // ... then only up to the target's hop.
    assert_eq!(net.sent.len(), 30 + 9 * 4);
    assert!(net.sent.iter().skip(30).all(|s| s.ttl <= 4));
    assert_eq!(trace.hops.len(), 4);
    for round in &trace.rounds[1..] {
        assert_eq!(round.probes.len(), 4);
        assert_eq!(round.status(5), None);
    }
    // Round 0 skipped nothing: the target was unknown when it was sent.
    assert_eq!(trace.rounds[0].probes.len(), 30);
    // Round 0's probes past the target were answered by the target: not hops.
    assert!(trace.hop(5).is_none());
}

#[test]
fn bounded_runtime() {
    let second = Duration::from_secs(1);
    // Silent hop + loss + an unreachable target: every round waits the full
    // timeout; N rounds end at (N − 1) × interval + timeout ≤ N × interval + timeout.
    for (rounds, timeout) in [
        (5u32, second),
        (7, Duration::from_millis(300)),
        (4, 3 * second),
    ] {
        let (mut hops, mut tgt) = path4();
        hops[1].silent = true;
        hops[2].link_loss = 0.2;
        tgt.link_loss = 1.0;
        let mut cfg = config(tgt.addr, TCP, rounds);
        cfg.timeout = timeout;
        // Rounds overlap when timeout > interval: room for all their probes.
        let overlap = timeout.as_nanos().div_ceil(cfg.interval.as_nanos()) as usize;
        cfg.max_inflight = 30 * overlap;
        let (trace, net) = run_on(hops, tgt, cfg.clone(), |_| {});
        let bound = cfg.interval * rounds + timeout;
        assert!(
            trace.duration() <= bound,
            "{:?} > {bound:?}",
            trace.duration()
        );
        assert_eq!(trace.duration(), cfg.max_duration());
        assert_eq!(trace.rounds.len(), rounds as usize);
        // Each round started on time, even when probes overlap (timeout > interval).
        for (r, round) in trace.rounds.iter().enumerate() {
            assert_eq!(round.started_at, trace.started_at + cfg.interval * r as u32);
        }
        assert!(net.sent.iter().all(|s| s.at < trace.finished_at));
        assert!(net.sent.iter().all(|s| {
            let r = (s.at - trace.started_at).as_nanos() / cfg.interval.as_nanos();
            s.at == trace.started_at + cfg.interval * r as u32
        }));
    }
    // A small max_inflight serializes a round: each batch waits for answers.
    let (hops, tgt) = path4();
    let mut cfg = config(tgt.addr, ICMP, 3);
    cfg.max_inflight = 2;
    let (trace, _) = run_on(hops, tgt, cfg, |_| {});
    assert_eq!(trace.target_hop, Some(4));
    assert!(trace.hops.iter().all(|h| h.received == 3));

    // With too few slots for overlapping rounds, rounds start late but
    // never closer than `interval` to each other (no catch-up burst).
    let (mut hops, mut tgt) = path4();
    hops[1].silent = true;
    tgt.link_loss = 1.0;
    let mut cfg = config(tgt.addr, TCP, 6);
    cfg.timeout = 3 * second;
    cfg.max_inflight = 30;
    let (trace, _) = run_on(hops, tgt, cfg.clone(), |_| {});
    let sends = |r: &pathproof::trace::Round| {
        let t: Vec<Instant> = r
            .probes
            .iter()
            .filter_map(|s| Some(s.probe()?.sent_at))
            .collect();
        (*t.iter().min().unwrap(), *t.iter().max().unwrap())
    };
    // Round 1 waited for round 0's probes to time out before it could send.
    assert!(sends(&trace.rounds[1]).1 > trace.started_at + cfg.interval);
    for pair in trace.rounds.windows(2) {
        assert!(sends(&pair[1]).0 - sends(&pair[0]).1 >= cfg.interval);
    }
}

#[test]
fn late_and_duplicate_answers_are_counted_once() {
    // The target resends every SYN-ACK after 1 s: duplicates, not answers.
    let (hops, mut tgt) = path4();
    tgt.synack_retransmit = true;
    let trace = run(hops, tgt, TCP, 10);
    let t = trace.hop(4).unwrap();
    assert_eq!((t.sent, t.received, t.loss_pct), (10, 10, 0.0));
    // Rounds 0–8 see their retransmission before the run ends; round 0's
    // probes past the target (TTL 5–30) get theirs too.
    assert_eq!(t.duplicates, 9);
    assert!(trace.counters.duplicates >= 9);
    check_record(&trace);

    // SYN-ACKs lost on the way back come again 1 s later: after the
    // timeout, so the probe is lost (return-path loss stays loss) and its
    // timer-made "RTT" is not used.
    let (hops, mut tgt) = path4();
    tgt.return_loss = 0.3;
    let trace = run(hops, tgt, TCP, 100);
    let t = trace.hop(4).unwrap();
    assert!(t.late > 15, "{t:?}");
    assert_eq!(
        t.sent - t.received,
        t.late + count_lost_without_reply(&trace, 4)
    );
    assert!((15.0..=45.0).contains(&t.loss_pct), "{}", t.loss_pct);
    assert!(t.rtt.unwrap().worst_ms < 10.0);
    // Late answers still name who is there.
    assert_eq!(t.addrs[0].addr, ip("198.18.4.2"));
    let f = interpret(&trace, None);
    assert_eq!(f[0].kind(), FindingKind::PathLoss);
    assert_eq!(f[0].finding.hop, Some(4));
}

fn count_lost_without_reply(trace: &Trace, ttl: u8) -> u32 {
    trace
        .rounds
        .iter()
        .filter(|r| matches!(r.status(ttl), Some(ProbeStatus::Lost(l)) if l.late.is_none()))
        .count() as u32
}

#[test]
fn foreign_packets_are_ignored() {
    for protocol in [ICMP, TCP, UDP] {
        let (hops, tgt) = path4();
        let clean = run(hops.clone(), tgt.clone(), protocol, 5);
        let cfg = config(tgt.addr, protocol, 5);
        let (noisy, _) = run_on(hops, tgt, cfg, |n| n.noise = true);
        assert_eq!(addrs(&noisy), addrs(&clean), "{protocol}");
        for (a, b) in noisy.hops.iter().zip(&clean.hops) {
            assert_eq!(
                (a.sent, a.received, a.late, a.duplicates),
                (b.sent, b.received, b.late, b.duplicates)
            );
            assert_eq!(a.rtt, b.rtt);
        }
        assert!(
            noisy.counters.foreign >= 5 * 2,
            "{protocol}: {:?}",
            noisy.counters
        );
        assert!(noisy.counters.undecodable >= 5, "{:?}", noisy.counters);
        assert_eq!(noisy.packets.len(), clean.packets.len());
    }
}

#[test]
fn admin_prohibited_names_the_rejecting_hop() {
    let (mut hops, tgt) = path4();
    hops[1].firewall = Some(Firewall::Prohibit { port: 443 });
    let tcp = run(hops.clone(), tgt.clone(), TCP, 5);
    let icmp = run(hops, tgt, ICMP, 5);
    assert_eq!(tcp.target_hop, None);
    let f = interpret(&tcp, Some(&icmp));
    let k = kinds(&f);
    assert!(k.contains(&"icmp-admin-prohibited"), "{k:?}");
    let a = f
        .iter()
        .find(|f| f.kind() == FindingKind::IcmpAdminProhibited)
        .unwrap();
    assert_eq!(a.finding.severity, Severity::Critical);
    assert_eq!(a.finding.hop, Some(2));
    assert_eq!(a.finding.address, Some(ip("10.0.2.1")));
    assert_eq!(
        a.detail,
        Detail::Unreachable {
            hop: 2,
            code: 13,
            admin_prohibited: true
        }
    );
    let b = f
        .iter()
        .find(|f| f.kind() == FindingKind::TcpBlocked)
        .unwrap();
    assert_eq!(b.finding.hop, Some(2));
}

// ------------------------------------------------------ network failures

struct Refusing;

impl Network for Refusing {
    fn source_addr(&mut self, _: IpAddr) -> Result<IpAddr, TraceError> {
        Ok(ip(SRC4))
    }
    fn send(&mut self, p: &ProbeRequest) -> Result<(), TraceError> {
        Err(TraceError::Io {
            op: pathproof::trace::IoOp::Send {
                dst: p.dst,
                ttl: p.ttl,
            },
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        })
    }
    fn recv(&mut self, _: Instant) -> Result<Option<RecvPacket>, TraceError> {
        Ok(None)
    }
}

/// Returns at once without a packet and without time passing.
struct Stalling;

impl Network for Stalling {
    fn source_addr(&mut self, _: IpAddr) -> Result<IpAddr, TraceError> {
        Ok(ip(SRC4))
    }
    fn send(&mut self, _: &ProbeRequest) -> Result<(), TraceError> {
        Ok(())
    }
    fn recv(&mut self, _: Instant) -> Result<Option<RecvPacket>, TraceError> {
        Ok(None)
    }
}

#[test]
fn network_failures_end_the_trace_with_an_error() {
    let clock = ManualClock::new(Instant::ZERO);
    let cfg = config(ip("198.18.4.2"), TCP, 3);
    let err = Tracer::new(cfg.clone(), Refusing, &clock)
        .unwrap()
        .run()
        .unwrap_err();
    assert!(
        matches!(err, TraceError::SendFailed { round: 0, .. }),
        "{err}"
    );
    assert!(
        std::error::Error::source(&err)
            .unwrap()
            .to_string()
            .contains("sending a probe to 198.18.4.2 with TTL 1")
    );
    let err = Tracer::new(cfg, Stalling, &clock)
        .unwrap()
        .run()
        .unwrap_err();
    assert!(matches!(err, TraceError::Stalled { .. }), "{err}");
}

#[test]
fn config_is_validated() {
    let mut cfg = config(ip("198.18.4.2"), ICMP, 3);
    cfg.interval = Duration::from_millis(10);
    assert!(matches!(
        Tracer::new(cfg.clone(), Stalling, ManualClock::default()),
        Err(TraceError::Config {
            field: "interval",
            ..
        })
    ));
    cfg.interval = Duration::from_secs(1);
    cfg.max_ttl = 65;
    assert!(cfg.validate().is_err());
    cfg.max_ttl = 30;
    cfg.source = Some(ip(SRC6));
    assert!(cfg.validate().is_err());
    cfg.source = None;
    assert!(cfg.validate().is_ok());
    assert_eq!(cfg.max_duration(), Duration::from_secs(3));
}

#[test]
fn loss_at_every_router_but_not_at_the_target_is_unconfirmed() {
    // Every router rations its answers (half a token per second): hops 1–3
    // each answer half the probes, the target all. Rate limiting at three
    // routers, or real loss the target's probes happened to miss: the
    // finding asks for more probes instead of guessing.
    let (mut hops, tgt) = path4();
    for h in &mut hops {
        h.icmp_rate = Some((0.5, 1.0));
    }
    let trace = run(hops, tgt, ICMP, 20);
    for hop in 1..=3 {
        assert_eq!(trace.hop(hop).unwrap().loss_pct, 50.0, "hop {hop}");
    }
    assert_eq!(trace.hop(4).unwrap().loss_pct, 0.0);
    let f = interpret(&trace, None);
    assert_eq!(kinds(&f), ["loss-unconfirmed", "target-reached"]);
    assert_eq!(f[0].finding.severity, Severity::Warning);
    assert_eq!(f[0].finding.hop, Some(1));
    assert_eq!(
        f[0].detail,
        Detail::LossUnconfirmed {
            from_hop: 1,
            to_hop: 3,
            lost: 30,
            sent: 60,
            end_hop: 4,
            end_lost: 0,
        }
    );
}
