//! Writes a large, realistic, deterministic capture for benchmarks.
//!
//! ```sh
//! cargo run --release --example gen_capture -- --out big.pcap --size-mb 2000 \
//!     --link ethernet|sll2 --format pcap|pcapng [--seed N] [--rate FLOWS_PER_S]
//! ```
//!
//! The capture is what a connector-like host sees (captured on the host, so
//! its own packets carry TTL 64 and the others arrive decremented):
//! - thousands of client addresses (198.18.16.0/20) dialling a few hundred
//!   servers (198.19.0.0/16) at 4–12 hops with initial TTL 64 or 128, mostly
//!   on 443 (TLS 1.3 and 1.2 with a real ClientHello/SNI and, for 1.2, a
//!   clear-text certificate), some on 80, 8443, 5222 and 22;
//! - each TCP flow: SYN / SYN-ACK / ACK, request/response exchanges
//!   (lognormal sizes, MSS 1448 with timestamps so full-size frames are 1514
//!   bytes, slow-start rounds, an ACK every second segment), FIN or RST
//!   teardown; ~10 % of flows are long-lived with idle gaps of seconds;
//! - on 443: ~7 % of flows get a reset injected from hop 2 (TTL 63, IP ID 0,
//!   window 0, no options; after the ClientHello or answering the SYN),
//!   ~5 % a genuine reset (server TTL: refused SYN or mid-stream abort),
//!   ~2 % SYNs unanswered with retransmissions (1, 2, 4 s backoff), some
//!   client aborts; a few TCP traceroutes answered by ICMP time exceeded and
//!   a few uploads answered by ICMP fragmentation needed (MTU 1400), both
//!   quoting the flow's packet;
//! - DNS over UDP to a resolver at hop 2 (A answers, ~10 % NXDOMAIN), ICMP
//!   echo sessions to servers, ARP with the gateway.
//!
//! Timestamps increase; pcap is written in microseconds, pcapng in
//! nanoseconds. IPv4 and TCP/UDP/ICMP checksums are correct (etherparse
//! computes them). Incoming frames shorter than 60 bytes are padded like
//! Ethernet does. The same seed gives the same file. Generation stops as soon
//! as the file reaches `--size-mb` (10^6 bytes), in the middle of whatever is
//! in flight, like a capture that was stopped.
//!
//! A JSON summary of what was written goes to stdout; counts are taken at
//! the moment each frame is written, so they describe the file exactly.

use etherparse::icmpv4::{DestUnreachableHeader, TimeExceededCode};
use etherparse::{
    Icmpv4Type, IpHeaders, IpNumber, Ipv4Extensions, Ipv4Header, PacketBuilder, TcpHeader,
    TcpOptionElement,
};
use pathproof::capture::{PcapWriter, PcapngWriter, TsPrecision};
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::time::Instant;

// ---------------------------------------------------------------- randomness

/// SplitMix64: small, fast, deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn u32(&mut self) -> u32 {
        (self.next() >> 32) as u32
    }
    /// Uniform in [0, 1).
    fn f64(&mut self) -> f64 {
        (self.next() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    /// Uniform in [0, n).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
    /// Uniform in [lo, hi].
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }
    /// Exponential with the given mean.
    fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.f64()).ln()
    }
    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.f64();
        let u2 = self.f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
    /// Lognormal with the given median, clamped to [lo, hi].
    fn lognormal(&mut self, median: f64, sigma: f64, lo: f64, hi: f64) -> f64 {
        (median * (sigma * self.normal()).exp()).clamp(lo, hi)
    }
}

// ---------------------------------------------------------------- arguments

#[derive(Clone, Copy, PartialEq, Eq)]
enum Link {
    Ethernet,
    Sll2,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Pcap,
    Pcapng,
}

struct Args {
    out: String,
    size_mb: f64,
    link: Link,
    format: Format,
    seed: u64,
    /// New flows (and other conversations) per second of capture time.
    rate: f64,
    /// Capture start, seconds since the epoch.
    start: u64,
}

const USAGE: &str = "usage: gen_capture --out FILE --size-mb N [--link ethernet|sll2] \
[--format pcap|pcapng] [--seed N] [--rate CONVERSATIONS_PER_S] [--start EPOCH_S]";

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        out: String::new(),
        size_mb: 0.0,
        link: Link::Ethernet,
        format: Format::Pcap,
        seed: 1,
        rate: 800.0,
        // 2027-01-04T08:00:00Z: inside the bundled certificate's validity.
        start: 1_799_049_600,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let v = it.next().ok_or(format!("{flag} needs a value"))?;
        let num = |v: &str| v.parse::<f64>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--out" => a.out = v,
            "--size-mb" => a.size_mb = num(&v)?,
            "--seed" => a.seed = num(&v)? as u64,
            "--rate" => a.rate = num(&v)?,
            "--start" => a.start = num(&v)? as u64,
            "--link" => {
                a.link = match v.as_str() {
                    "ethernet" | "eth" => Link::Ethernet,
                    "sll2" => Link::Sll2,
                    _ => return Err(format!("--link {v}: ethernet or sll2")),
                }
            }
            "--format" => {
                a.format = match v.as_str() {
                    "pcap" => Format::Pcap,
                    "pcapng" => Format::Pcapng,
                    _ => return Err(format!("--format {v}: pcap or pcapng")),
                }
            }
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if a.out.is_empty() || a.size_mb <= 0.0 || a.rate <= 0.0 {
        return Err("--out and a positive --size-mb are required".into());
    }
    Ok(a)
}

// ---------------------------------------------------------------- the world

const CLIENTS: u32 = 4_000;
const SERVERS: u32 = 300;
const CLIENT_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x01];
const GATEWAY_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0x00, 0xfe];
const GATEWAY_IP: [u8; 4] = [198, 18, 16, 1];
const RESOLVER_IP: [u8; 4] = [198, 18, 0, 53];
/// The resolver is at hop 2.
const RESOLVER_TTL: u8 = 63;
/// Resets forged by the device at hop 2 (initial TTL 64).
const INJECTED_TTL: u8 = 63;
const MSS_PLAIN: u32 = 1460;
/// Server certificate (self-signed, `*.pathproof.test`), shown in clear in TLS 1.2.
const CERT: &[u8] = include_bytes!("../bench/data/server-cert.der");

struct Server {
    ip: [u8; 4],
    hops: u8,
    init_ttl: u8,
    rtt_ns: u64,
    /// Serialisation time of one full-size segment at the bottleneck.
    seg_ns: u64,
    ipid_zero: bool,
    timestamps: bool,
    mss: u16,
}

impl Server {
    fn ttl(&self) -> u8 {
        self.init_ttl - self.hops + 1
    }
}

struct World {
    servers: Vec<Server>,
    /// Next ephemeral port of each client address.
    ports: Vec<u16>,
}

fn client_ip(i: u32) -> [u8; 4] {
    [198, 18, 16 + (i / 250) as u8, 2 + (i % 250) as u8]
}

/// Router at `hop` on the way to server `s`: shared near the host, per path further out.
fn router_ip(s: u32, hop: u8) -> [u8; 4] {
    if hop <= 3 {
        [198, 18, 200, hop]
    } else {
        [198, 18, 201 + (s % 16) as u8, hop]
    }
}

/// Routers near the host are Linux boxes (initial TTL 64), further ones 255.
fn router_ttl(hop: u8) -> u8 {
    let init: u8 = if hop <= 3 { 64 } else { 255 };
    init - hop + 1
}

impl World {
    fn new(rng: &mut Rng) -> World {
        let servers = (0..SERVERS)
            .map(|i| {
                let hops = rng.range(4, 12) as u8;
                Server {
                    ip: [198, 19, (i / 200) as u8, 10 + (i % 200) as u8],
                    hops,
                    init_ttl: if rng.chance(0.8) { 64 } else { 128 },
                    rtt_ns: (rng.lognormal(25.0, 0.7, 3.0, 300.0) * 1e6) as u64
                        + u64::from(hops) * 500_000,
                    seg_ns: match rng.below(10) {
                        0..=5 => 12_000,
                        6..=8 => 120_000,
                        _ => 1_200_000,
                    },
                    ipid_zero: rng.chance(0.3),
                    timestamps: rng.chance(0.9),
                    mss: if rng.chance(0.9) { 1460 } else { 1400 },
                }
            })
            .collect();
        let ports = (0..CLIENTS)
            .map(|_| rng.range(32768, 50000) as u16)
            .collect();
        World { servers, ports }
    }

    /// Popular servers get most flows.
    fn pick_server(&self, rng: &mut Rng) -> u32 {
        let u = rng.f64();
        ((u * u * u) * f64::from(SERVERS)) as u32
    }

    fn next_port(&mut self, client: u32, n: u16) -> u16 {
        let p = &mut self.ports[client as usize];
        let port = *p;
        *p = if *p >= 60999 - n { 32768 } else { *p + n };
        port
    }
}

// ---------------------------------------------------------------- scripts

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

/// What a packet counts as in the summary.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tag {
    None,
    /// First SYN of a connection.
    FlowStart,
    SynRetransmission,
    RstInjected,
    RstGenuine,
    RstClient,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Opts {
    None,
    Syn,
    SynAck,
    Timestamps,
}

/// One TCP segment of a flow.
#[derive(Clone, Copy)]
struct Seg {
    c2s: bool,
    flags: u8,
    seq: u32,
    ack: u32,
    /// Offset of the payload in the sender's byte stream.
    off: u32,
    len: u16,
    win: u16,
    opts: Opts,
    /// TTL when not the sender's usual one (0: usual).
    ttl: u8,
    /// IP ID 0 (forged resets, some stacks' resets).
    id0: bool,
    /// IP ID, assigned when the segment is planned (so an ICMP error can
    /// quote it exactly).
    ipid: u16,
    /// Client port when not the script's (traceroute probes).
    sport: u16,
    tag: Tag,
}

#[derive(Clone, Copy)]
enum What {
    Tcp(Seg),
    /// ICMP error from the router at `hop` quoting `quoted` (a client segment
    /// that had TTL `quoted_ttl` at the router). `mtu` 0: time exceeded.
    IcmpError {
        hop: u8,
        mtu: u16,
        quoted: Seg,
        quoted_ttl: u8,
    },
    Echo {
        reply: bool,
        id: u16,
        seq: u16,
    },
    Dns {
        reply: bool,
        nx: bool,
        id: u16,
        port: u16,
        name: u32,
    },
    Arp {
        reply: bool,
    },
}

#[derive(Clone, Copy)]
struct Pkt {
    t: u64,
    what: What,
}

/// What a flow's payload looks like.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    /// TLS records after the handshake prefix.
    Tls,
    /// Prefix then opaque bytes (HTTP, SSH).
    Plain,
}

/// How a 443 flow is planned to go (counted at its first SYN).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Plan {
    Normal,
    InjectedAfterHello,
    InjectedAnswersSyn,
    GenuineRefused,
    GenuineMidStream,
    SynUnanswered,
    ClientAbort,
    Traceroute,
    FragNeeded,
}

/// A conversation: a TCP flow, a DNS lookup, a ping session, an ARP exchange.
struct Script {
    id: u32,
    client: [u8; 4],
    cport: u16,
    server: u32,
    sport: u16,
    style: Style,
    plan: Plan,
    c_prefix: Vec<u8>,
    s_prefix: Vec<u8>,
    c_total: u32,
    s_total: u32,
    c_ipid: u16,
    s_ipid: u16,
    c_ts0: u32,
    s_ts0: u32,
    pkts: Vec<Pkt>,
    next: usize,
}

// ---------------------------------------------------------------- TLS bytes

fn push_u16(v: &mut Vec<u8>, x: usize) {
    v.extend_from_slice(&(x as u16).to_be_bytes());
}
fn push_u24(v: &mut Vec<u8>, x: usize) {
    v.extend_from_slice(&(x as u32).to_be_bytes()[1..]);
}
fn random_bytes(v: &mut Vec<u8>, rng: &mut Rng, n: usize) {
    v.extend((0..n).map(|_| rng.next() as u8));
}

/// A TLS record around `body`.
fn record(out: &mut Vec<u8>, content_type: u8, version: u16, body: &[u8]) {
    out.push(content_type);
    out.extend_from_slice(&version.to_be_bytes());
    push_u16(out, body.len());
    out.extend_from_slice(body);
}

/// A handshake message header + body.
fn handshake(out: &mut Vec<u8>, msg_type: u8, body: &[u8]) {
    out.push(msg_type);
    push_u24(out, body.len());
    out.extend_from_slice(body);
}

fn extension(out: &mut Vec<u8>, ext_type: u16, body: &[u8]) {
    out.extend_from_slice(&ext_type.to_be_bytes());
    push_u16(out, body.len());
    out.extend_from_slice(body);
}

/// A browser-like ClientHello (SNI, groups, signature algorithms, key share,
/// supported versions, padded to 512 bytes like Chrome).
fn client_hello(rng: &mut Rng, sni: &str) -> Vec<u8> {
    let mut b = vec![0x03, 0x03];
    random_bytes(&mut b, rng, 32);
    b.push(32);
    random_bytes(&mut b, rng, 32);
    let suites: [u16; 9] = [
        0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8,
    ];
    push_u16(&mut b, suites.len() * 2);
    for s in suites {
        b.extend_from_slice(&s.to_be_bytes());
    }
    b.extend_from_slice(&[1, 0]);
    let mut ext = Vec::with_capacity(400);
    let mut sn = Vec::new();
    push_u16(&mut sn, sni.len() + 3);
    sn.push(0);
    push_u16(&mut sn, sni.len());
    sn.extend_from_slice(sni.as_bytes());
    extension(&mut ext, 0x0000, &sn);
    extension(&mut ext, 0x0017, &[]); // extended master secret
    extension(&mut ext, 0xff01, &[0]); // renegotiation info
    extension(
        &mut ext,
        0x000a,
        &[0, 6, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x18],
    );
    extension(&mut ext, 0x000b, &[1, 0]);
    extension(&mut ext, 0x0023, &[]); // session ticket
    extension(
        &mut ext,
        0x0010,
        &[
            0, 12, 2, b'h', b'2', 8, b'h', b't', b't', b'p', b'/', b'1', b'.', b'1',
        ],
    );
    extension(
        &mut ext,
        0x000d,
        &[
            0, 16, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01, 0x05, 0x03, 0x08, 0x05, 0x05, 0x01, 0x08,
            0x06, 0x06, 0x01,
        ],
    );
    let mut ks = vec![0, 36, 0x00, 0x1d, 0, 32];
    random_bytes(&mut ks, rng, 32);
    extension(&mut ext, 0x0033, &ks);
    extension(&mut ext, 0x002d, &[1, 1]); // psk key exchange modes
    extension(&mut ext, 0x002b, &[4, 0x03, 0x04, 0x03, 0x03]);
    // Padding (RFC 7685) to a 512-byte handshake message.
    let so_far = 4 + b.len() + 2 + ext.len() + 4;
    if so_far < 512 {
        extension(&mut ext, 0x0015, &vec![0; 512 - so_far]);
    }
    push_u16(&mut b, ext.len());
    b.extend_from_slice(&ext);
    let mut hs = Vec::new();
    handshake(&mut hs, 1, &b);
    let mut out = Vec::new();
    record(&mut out, 0x16, 0x0301, &hs);
    out
}

fn server_hello(rng: &mut Rng, tls13: bool) -> Vec<u8> {
    let mut b = vec![0x03, 0x03];
    random_bytes(&mut b, rng, 32);
    b.push(32);
    random_bytes(&mut b, rng, 32);
    let mut ext = Vec::new();
    if tls13 {
        b.extend_from_slice(&[0x13, 0x01, 0]);
        extension(&mut ext, 0x002b, &[0x03, 0x04]);
        let mut ks = vec![0x00, 0x1d, 0, 32];
        random_bytes(&mut ks, rng, 32);
        extension(&mut ext, 0x0033, &ks);
    } else {
        b.extend_from_slice(&[0xc0, 0x2f, 0]);
        extension(&mut ext, 0xff01, &[0]);
        extension(&mut ext, 0x0017, &[]);
        extension(&mut ext, 0x0010, &[0, 3, 2, b'h', b'2']);
    }
    push_u16(&mut b, ext.len());
    b.extend_from_slice(&ext);
    let mut hs = Vec::new();
    handshake(&mut hs, 2, &b);
    hs
}

/// The server's first flight: TLS 1.3 (ServerHello, CCS, encrypted rest) or
/// TLS 1.2 (ServerHello, Certificate, ServerKeyExchange, ServerHelloDone).
fn server_flight(rng: &mut Rng, tls13: bool) -> Vec<u8> {
    let mut out = Vec::new();
    if tls13 {
        let sh = server_hello(rng, true);
        record(&mut out, 0x16, 0x0303, &sh);
        record(&mut out, 0x14, 0x0303, &[1]);
        let mut enc = Vec::new();
        let n = rng.range(1800, 4200) as usize;
        random_bytes(&mut enc, rng, n);
        record(&mut out, 0x17, 0x0303, &enc);
    } else {
        let mut hs = server_hello(rng, false);
        // Certificate: the leaf twice stands in for leaf + intermediate.
        let mut certs = Vec::new();
        for _ in 0..2 {
            push_u24(&mut certs, CERT.len());
            certs.extend_from_slice(CERT);
        }
        let mut body = Vec::new();
        push_u24(&mut body, certs.len());
        body.extend_from_slice(&certs);
        handshake(&mut hs, 11, &body);
        let mut ske = vec![3, 0x00, 0x1d, 32];
        random_bytes(&mut ske, rng, 32);
        ske.extend_from_slice(&[0x04, 0x03, 0, 72]);
        random_bytes(&mut ske, rng, 72);
        handshake(&mut hs, 12, &ske);
        handshake(&mut hs, 14, &[]);
        record(&mut out, 0x16, 0x0303, &hs);
    }
    out
}

/// Client's second flight: TLS 1.3 CCS + encrypted Finished; TLS 1.2
/// ClientKeyExchange + CCS + encrypted Finished.
fn client_finish(rng: &mut Rng, tls13: bool) -> Vec<u8> {
    let mut out = Vec::new();
    if !tls13 {
        let mut cke = vec![32];
        random_bytes(&mut cke, rng, 32);
        let mut hs = Vec::new();
        handshake(&mut hs, 16, &cke);
        record(&mut out, 0x16, 0x0303, &hs);
    }
    record(&mut out, 0x14, 0x0303, &[1]);
    let mut fin = Vec::new();
    random_bytes(&mut fin, rng, if tls13 { 53 } else { 40 });
    record(&mut out, if tls13 { 0x17 } else { 0x16 }, 0x0303, &fin);
    out
}

/// TLS 1.2 server's CCS + encrypted Finished.
fn server_finish(rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    record(&mut out, 0x14, 0x0303, &[1]);
    let mut fin = Vec::new();
    random_bytes(&mut fin, rng, 40);
    record(&mut out, 0x16, 0x0303, &fin);
    out
}

fn server_name(s: u32) -> String {
    format!("s{s}.pathproof.test")
}

// ---------------------------------------------------------------- flow building

/// Builds the segments of one TCP flow, with absolute times, in logical order.
struct FlowGen<'r> {
    rng: &'r mut Rng,
    pkts: Vec<Pkt>,
    t: u64,
    rtt: u64,
    seg_ns: u64,
    /// Next sequence numbers and stream offsets of each side.
    c_seq: u32,
    s_seq: u32,
    c_off: u32,
    s_off: u32,
    c_mss: u32,
    s_mss: u32,
    ts: bool,
    /// Last IP ID of each side.
    c_id: u16,
    s_id: u16,
}

impl FlowGen<'_> {
    fn seg(&self, c2s: bool, flags: u8, len: u32) -> Seg {
        Seg {
            c2s,
            flags,
            seq: if c2s { self.c_seq } else { self.s_seq },
            ack: if flags & ACK != 0 {
                if c2s { self.s_seq } else { self.c_seq }
            } else {
                0
            },
            off: if c2s { self.c_off } else { self.s_off },
            len: len as u16,
            win: if c2s { 502 } else { 509 },
            opts: if self.ts {
                Opts::Timestamps
            } else {
                Opts::None
            },
            ttl: 0,
            id0: false,
            ipid: 0,
            sport: 0,
            tag: Tag::None,
        }
    }

    /// Plans a segment at `t`, giving it the sender's next IP ID; returns it as planned.
    fn push(&mut self, t: u64, mut s: Seg) -> Seg {
        if !s.id0 {
            let id = if s.c2s {
                &mut self.c_id
            } else {
                &mut self.s_id
            };
            *id = id.wrapping_add(1);
            s.ipid = *id;
        }
        self.pkts.push(Pkt {
            t,
            what: What::Tcp(s),
        });
        s
    }

    /// Sends one segment from a side at time `t` and advances its sequence.
    fn send(&mut self, t: u64, c2s: bool, flags: u8, len: u32) -> Seg {
        let s = self.seg(c2s, flags, len);
        let s = self.push(t, s);
        let adv = len + u32::from(flags & (SYN | FIN) != 0);
        if c2s {
            self.c_seq = self.c_seq.wrapping_add(adv);
            self.c_off += len;
        } else {
            self.s_seq = self.s_seq.wrapping_add(adv);
            self.s_off += len;
        }
        s
    }

    fn jitter(&mut self, ns: u64) -> u64 {
        ns + self.rng.below(ns / 8 + 1)
    }

    fn handshake(&mut self) -> Seg {
        let t0 = self.t;
        let mut syn = self.seg(true, SYN, 0);
        syn.opts = Opts::Syn;
        syn.tag = Tag::FlowStart;
        self.push(t0, syn);
        self.c_seq = self.c_seq.wrapping_add(1);
        let rtt = self.jitter(self.rtt);
        let mut sa = self.seg(false, SYN | ACK, 0);
        sa.opts = Opts::SynAck;
        self.push(t0 + rtt, sa);
        self.s_seq = self.s_seq.wrapping_add(1);
        self.t = t0 + rtt + self.rng.range(15_000, 60_000);
        self.send(self.t, true, ACK, 0);
        syn
    }

    /// Client sends `bytes` (segments back to back); the server ACKs each
    /// second segment one RTT later. Returns the time of the last segment.
    fn client_send(&mut self, bytes: u32) -> u64 {
        let mut left = bytes;
        let mut n = 0u32;
        while left > 0 {
            let len = left.min(self.c_mss);
            left -= len;
            let flags = if left == 0 { PSH | ACK } else { ACK };
            self.send(self.t, true, flags, len);
            n += 1;
            if n.is_multiple_of(2) && left > 0 {
                let s = self.seg(false, ACK, 0);
                let at = self.t + self.rtt;
                self.push(at, s);
            }
            if left > 0 {
                self.t += 12_000;
            }
        }
        self.t
    }

    /// Server sends `bytes` in slow-start rounds starting at `start`; the
    /// client ACKs every second segment. Returns the time of the last segment.
    fn server_send(&mut self, start: u64, bytes: u32) -> u64 {
        let mut left = bytes;
        let mut round_start = start;
        let mut cwnd = 10u32;
        let mut t = start;
        let mut n = 0u32;
        while left > 0 {
            for i in 0..cwnd {
                if left == 0 {
                    break;
                }
                let len = left.min(self.s_mss);
                left -= len;
                t = round_start + u64::from(i) * self.seg_ns;
                let flags = if left == 0 { PSH | ACK } else { ACK };
                self.send(t, false, flags, len);
                n += 1;
                if n.is_multiple_of(2) || left == 0 {
                    let s = self.seg(true, ACK, 0);
                    let at = t + self.rng.range(10_000, 40_000);
                    self.push(at, s);
                }
            }
            round_start = (round_start + self.rtt).max(t + self.seg_ns);
            cwnd = (cwnd * 2).min(400);
        }
        self.t = t + 40_000;
        t
    }
}

// ---------------------------------------------------------------- the generator

#[derive(Default, Serialize)]
struct Summary {
    file: String,
    format: &'static str,
    link_type: &'static str,
    seed: u64,
    frames: u64,
    bytes: u64,
    /// Frames by what they carry.
    tcp_segments: u64,
    udp_datagrams: u64,
    icmp_messages: u64,
    arp_frames: u64,
    /// TCP connections (first SYNs written), by server port.
    tcp_flows: u64,
    tcp_flows_by_port: BTreeMap<u16, u64>,
    /// 443 flows by planned outcome (counted at their first SYN; a flow cut
    /// by the end of the capture may not show all of it).
    flows_443_by_plan: BTreeMap<String, u64>,
    syn_retransmissions: u64,
    /// Reset segments written.
    rst_injected: u64,
    rst_genuine: u64,
    rst_client: u64,
    /// Resets sent toward the client on 443 (what pathproof judges by
    /// default), and of those the injected and the genuine ones.
    rst_toward_client_443: u64,
    rst_injected_443: u64,
    rst_genuine_443: u64,
    /// TTL of every reset in the file (both directions), as tcpdump/tshark see them.
    rst_ttl: BTreeMap<u8, u64>,
    icmp_echo_requests: u64,
    icmp_echo_replies: u64,
    icmp_time_exceeded: u64,
    icmp_frag_needed: u64,
    dns_queries: u64,
    dns_answers: u64,
    dns_nxdomain: u64,
    /// Capture span and generation speed.
    first_ts_ns: i64,
    last_ts_ns: i64,
    span_s: f64,
    max_concurrent_conversations: usize,
    elapsed_s: f64,
    mb_per_s: f64,
}

struct Counting<W> {
    inner: W,
    n: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let k = self.inner.write(buf)?;
        self.n += k as u64;
        Ok(k)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.inner.write_all(buf)?;
        self.n += buf.len() as u64;
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

type Sink = Counting<BufWriter<File>>;

enum Writer {
    Pcap(PcapWriter<Sink>),
    Pcapng(PcapngWriter<Sink>),
}

impl Writer {
    fn bytes(&self) -> u64 {
        match self {
            Writer::Pcap(w) => w.get_ref().n,
            Writer::Pcapng(w) => w.get_ref().n,
        }
    }
}

/// Emits frames: link header + IP packet built with etherparse.
struct Out {
    w: Writer,
    link: Link,
    buf: Vec<u8>,
    payload: Vec<u8>,
    quote: Vec<u8>,
    pool: Vec<u8>,
    sum: Summary,
}

const POOL: usize = 1 << 20;

fn ipv4(src: [u8; 4], dst: [u8; 4], ttl: u8, id: u16, df: bool) -> IpHeaders {
    let mut h = Ipv4Header::new(0, ttl, IpNumber::TCP, src, dst).expect("empty payload");
    h.identification = id;
    h.dont_fragment = df;
    IpHeaders::Ipv4(h, Ipv4Extensions::default())
}

/// Bytes of a side's stream: the handshake prefix, then TLS application data
/// records (or opaque bytes), cut at the stream's planned total.
fn fill(out: &mut Vec<u8>, pool: &[u8], s: &Script, c2s: bool, off: u32, len: u32) {
    let (prefix, total) = if c2s {
        (&s.c_prefix, s.c_total)
    } else {
        (&s.s_prefix, s.s_total)
    };
    let salt = (s.id.wrapping_mul(2_654_435_761) ^ u32::from(c2s)) as usize;
    let mut o = off as usize;
    let end = (off + len) as usize;
    let plen = prefix.len();
    while o < end {
        if o < plen {
            let k = end.min(plen);
            out.extend_from_slice(&prefix[o..k]);
            o = k;
            continue;
        }
        let r = o - plen;
        const REC: usize = 16_384 + 5;
        let pos = r % REC;
        let take = if s.style == Style::Tls && pos < 5 {
            let rec_start = r - pos;
            let rec_len = (total as usize)
                .saturating_sub(plen + rec_start + 5)
                .min(16_384);
            let hdr = [0x17, 0x03, 0x03, (rec_len >> 8) as u8, rec_len as u8];
            let k = (5 - pos).min(end - o);
            out.extend_from_slice(&hdr[pos..pos + k]);
            k
        } else {
            let k = (end - o).min(REC - pos);
            let at = (salt.wrapping_add(r)) & (POOL - 1);
            out.extend_from_slice(&pool[at..at + k]);
            k
        };
        o += take;
    }
}

impl Out {
    /// Writes the link header for a frame of `ethertype`.
    fn link_header(&mut self, inbound: bool, ethertype: u16, broadcast: bool) {
        self.buf.clear();
        let (src, dst) = if inbound {
            (GATEWAY_MAC, CLIENT_MAC)
        } else if broadcast {
            (CLIENT_MAC, [0xff; 6])
        } else {
            (CLIENT_MAC, GATEWAY_MAC)
        };
        match self.link {
            Link::Ethernet => {
                self.buf.extend_from_slice(&dst);
                self.buf.extend_from_slice(&src);
                self.buf.extend_from_slice(&ethertype.to_be_bytes());
            }
            Link::Sll2 => {
                self.buf.extend_from_slice(&ethertype.to_be_bytes());
                self.buf.extend_from_slice(&[0, 0]);
                self.buf.extend_from_slice(&2u32.to_be_bytes()); // ifindex
                self.buf.extend_from_slice(&1u16.to_be_bytes()); // ARPHRD_ETHER
                self.buf.push(if inbound { 0 } else { 4 }); // HOST / OUTGOING
                self.buf.push(6);
                self.buf.extend_from_slice(&src);
                self.buf.extend_from_slice(&[0, 0]);
            }
        }
    }

    fn link_len(&self) -> usize {
        match self.link {
            Link::Ethernet => 14,
            Link::Sll2 => 20,
        }
    }

    fn finish_frame(&mut self, t: u64, inbound: bool) -> io::Result<()> {
        // Ethernet pads short frames to 60 bytes; the host sees the padding
        // on what it receives, not on what it sends.
        let min = self.link_len() + 46;
        if inbound && self.buf.len() < min {
            self.buf.resize(min, 0);
        }
        let ts = t as i64;
        let len = self.buf.len() as u32;
        match &mut self.w {
            Writer::Pcap(w) => w.write_frame(ts, len, &self.buf)?,
            Writer::Pcapng(w) => w.write_frame(0, ts, len, &self.buf)?,
        }
        self.sum.frames += 1;
        if self.sum.frames == 1 {
            self.sum.first_ts_ns = ts;
        }
        self.sum.last_ts_ns = ts;
        Ok(())
    }

    /// Builds the IP packet of a TCP segment of `s` into `dst` (after what is there).
    fn build_tcp(
        dst: &mut Vec<u8>,
        payload: &mut Vec<u8>,
        pool: &[u8],
        s: &mut Script,
        srv: &Server,
        g: &Seg,
        t: u64,
    ) {
        let (src_ip, dst_ip, sp, dp) = if g.c2s {
            let sp = if g.sport != 0 { g.sport } else { s.cport };
            (s.client, srv.ip, sp, s.sport)
        } else {
            (srv.ip, s.client, s.sport, s.cport)
        };
        let ttl = if g.ttl != 0 {
            g.ttl
        } else if g.c2s {
            64
        } else {
            srv.ttl()
        };
        let id = if g.id0 || (!g.c2s && srv.ipid_zero) {
            0
        } else {
            g.ipid
        };
        let mut tcp = TcpHeader::new(sp, dp, g.seq, g.win);
        tcp.fin = g.flags & FIN != 0;
        tcp.syn = g.flags & SYN != 0;
        tcp.rst = g.flags & RST != 0;
        tcp.psh = g.flags & PSH != 0;
        tcp.ack = g.flags & ACK != 0;
        tcp.acknowledgment_number = g.ack;
        let ms = (t / 1_000_000) as u32;
        let half_rtt = (srv.rtt_ns / 2_000_000) as u32;
        let (tsval, tsecr) = if g.c2s {
            (
                s.c_ts0.wrapping_add(ms),
                s.s_ts0.wrapping_add(ms - half_rtt),
            )
        } else {
            (
                s.s_ts0.wrapping_add(ms),
                s.c_ts0.wrapping_add(ms - half_rtt),
            )
        };
        let opts_ok = match g.opts {
            Opts::None => Ok(()),
            Opts::Syn => tcp.set_options(&[
                TcpOptionElement::MaximumSegmentSize(1460),
                TcpOptionElement::SelectiveAcknowledgementPermitted,
                TcpOptionElement::Timestamp(tsval, 0),
                TcpOptionElement::Noop,
                TcpOptionElement::WindowScale(7),
            ]),
            Opts::SynAck if srv.timestamps => tcp.set_options(&[
                TcpOptionElement::MaximumSegmentSize(srv.mss),
                TcpOptionElement::SelectiveAcknowledgementPermitted,
                TcpOptionElement::Timestamp(tsval, tsecr),
                TcpOptionElement::Noop,
                TcpOptionElement::WindowScale(9),
            ]),
            Opts::SynAck => tcp.set_options(&[
                TcpOptionElement::MaximumSegmentSize(srv.mss),
                TcpOptionElement::Noop,
                TcpOptionElement::Noop,
                TcpOptionElement::SelectiveAcknowledgementPermitted,
            ]),
            Opts::Timestamps => tcp.set_options(&[
                TcpOptionElement::Noop,
                TcpOptionElement::Noop,
                TcpOptionElement::Timestamp(tsval, tsecr),
            ]),
        };
        opts_ok.expect("TCP options fit");
        payload.clear();
        if g.len > 0 {
            fill(payload, pool, s, g.c2s, g.off, u32::from(g.len));
        }
        let df = g.flags & RST == 0 || g.id0;
        PacketBuilder::ip(ipv4(src_ip, dst_ip, ttl, id, df))
            .tcp_header(tcp)
            .write(dst, payload)
            .expect("write to a Vec");
    }

    fn emit(&mut self, s: &mut Script, world: &World, p: &Pkt) -> io::Result<()> {
        let srv = &world.servers[s.server as usize];
        match p.what {
            What::Tcp(g) => {
                let inbound = !g.c2s;
                self.link_header(inbound, 0x0800, false);
                Self::build_tcp(
                    &mut self.buf,
                    &mut self.payload,
                    &self.pool,
                    s,
                    srv,
                    &g,
                    p.t,
                );
                self.count_tcp(s, srv, &g);
                self.finish_frame(p.t, inbound)
            }
            What::IcmpError {
                hop,
                mtu,
                quoted,
                quoted_ttl,
            } => {
                // The quoted packet: the client's segment as the router got it.
                let mut q = std::mem::take(&mut self.quote);
                q.clear();
                let mut g = quoted;
                g.ttl = quoted_ttl;
                Self::build_tcp(&mut q, &mut self.payload, &self.pool, s, srv, &g, p.t);
                // Linux routers quote up to 576 bytes in all, others 28.
                let keep = if hop <= 3 { 548 } else { 28 };
                q.truncate(keep);
                self.link_header(true, 0x0800, false);
                let icmp = if mtu == 0 {
                    self.sum.icmp_time_exceeded += 1;
                    Icmpv4Type::TimeExceeded(TimeExceededCode::TtlExceededInTransit)
                } else {
                    self.sum.icmp_frag_needed += 1;
                    Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::FragmentationNeeded {
                        next_hop_mtu: mtu,
                    })
                };
                let router = router_ip(s.server, hop);
                let id = (p.t >> 10) as u16;
                PacketBuilder::ip(ipv4(router, s.client, router_ttl(hop), id, false))
                    .icmpv4(icmp)
                    .write(&mut self.buf, &q)
                    .expect("write to a Vec");
                self.quote = q;
                self.sum.icmp_messages += 1;
                self.finish_frame(p.t, true)
            }
            What::Echo { reply, id, seq } => {
                self.link_header(reply, 0x0800, false);
                let mut data = [0u8; 56];
                data[..8].copy_from_slice(&p.t.to_le_bytes());
                for (i, b) in data[8..].iter_mut().enumerate() {
                    *b = 0x10 + i as u8;
                }
                let b = if reply {
                    self.sum.icmp_echo_replies += 1;
                    s.s_ipid = s.s_ipid.wrapping_add(1);
                    PacketBuilder::ip(ipv4(srv.ip, s.client, srv.ttl(), s.s_ipid, false))
                        .icmpv4_echo_reply(id, seq)
                } else {
                    self.sum.icmp_echo_requests += 1;
                    s.c_ipid = s.c_ipid.wrapping_add(1);
                    PacketBuilder::ip(ipv4(s.client, srv.ip, 64, s.c_ipid, true))
                        .icmpv4_echo_request(id, seq)
                };
                b.write(&mut self.buf, &data).expect("write to a Vec");
                self.sum.icmp_messages += 1;
                self.finish_frame(p.t, reply)
            }
            What::Dns {
                reply,
                nx,
                id,
                port,
                name,
            } => {
                self.link_header(reply, 0x0800, false);
                let msg = dns_message(reply, nx, id, name, srv.ip);
                let b = if reply {
                    self.sum.dns_answers += 1;
                    if nx {
                        self.sum.dns_nxdomain += 1;
                    }
                    PacketBuilder::ip(ipv4(RESOLVER_IP, s.client, RESOLVER_TTL, id ^ 0x5a5a, true))
                        .udp(53, port)
                } else {
                    self.sum.dns_queries += 1;
                    PacketBuilder::ip(ipv4(s.client, RESOLVER_IP, 64, id, false)).udp(port, 53)
                };
                b.write(&mut self.buf, &msg).expect("write to a Vec");
                self.sum.udp_datagrams += 1;
                self.finish_frame(p.t, reply)
            }
            What::Arp { reply } => {
                self.link_header(reply, 0x0806, !reply);
                let (op, sha, spa, tha, tpa) = if reply {
                    (2u16, GATEWAY_MAC, GATEWAY_IP, CLIENT_MAC, s.client)
                } else {
                    (1u16, CLIENT_MAC, s.client, [0; 6], GATEWAY_IP)
                };
                self.buf
                    .extend_from_slice(&[0, 1, 0x08, 0x00, 6, 4, (op >> 8) as u8, op as u8]);
                self.buf.extend_from_slice(&sha);
                self.buf.extend_from_slice(&spa);
                self.buf.extend_from_slice(&tha);
                self.buf.extend_from_slice(&tpa);
                self.sum.arp_frames += 1;
                self.finish_frame(p.t, reply)
            }
        }
    }

    fn count_tcp(&mut self, s: &Script, srv: &Server, g: &Seg) {
        let sum = &mut self.sum;
        sum.tcp_segments += 1;
        match g.tag {
            Tag::None => {}
            Tag::FlowStart => {
                sum.tcp_flows += 1;
                *sum.tcp_flows_by_port.entry(s.sport).or_default() += 1;
                if s.sport == 443 {
                    *sum.flows_443_by_plan
                        .entry(format!("{:?}", s.plan))
                        .or_default() += 1;
                }
            }
            Tag::SynRetransmission => sum.syn_retransmissions += 1,
            Tag::RstInjected => sum.rst_injected += 1,
            Tag::RstGenuine => sum.rst_genuine += 1,
            Tag::RstClient => sum.rst_client += 1,
        }
        if g.flags & RST != 0 {
            let ttl = if g.ttl != 0 {
                g.ttl
            } else if g.c2s {
                64
            } else {
                srv.ttl()
            };
            *sum.rst_ttl.entry(ttl).or_default() += 1;
            if !g.c2s && s.sport == 443 {
                sum.rst_toward_client_443 += 1;
                match g.tag {
                    Tag::RstInjected => sum.rst_injected_443 += 1,
                    Tag::RstGenuine => sum.rst_genuine_443 += 1,
                    _ => {}
                }
            }
        }
    }
}

/// A DNS query or answer for `s{name}.pathproof.test` (name < 1000) or a
/// name that does not exist.
fn dns_message(reply: bool, nx: bool, id: u16, name: u32, answer: [u8; 4]) -> Vec<u8> {
    let mut m = Vec::with_capacity(80);
    m.extend_from_slice(&id.to_be_bytes());
    let flags: u16 = match (reply, nx) {
        (false, _) => 0x0100,
        (true, false) => 0x8180,
        (true, true) => 0x8183,
    };
    m.extend_from_slice(&flags.to_be_bytes());
    let answers = u16::from(reply && !nx);
    for v in [1u16, answers, 0, 0] {
        m.extend_from_slice(&v.to_be_bytes());
    }
    let label = if nx {
        format!("x{name:x}")
    } else {
        format!("s{name}")
    };
    for l in [label.as_str(), "pathproof", "test"] {
        m.push(l.len() as u8);
        m.extend_from_slice(l.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&[0, 1, 0, 1]);
    if answers == 1 {
        m.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x01, 0x2c, 0, 4]);
        m.extend_from_slice(&answer);
    }
    m
}

/// Plans a conversation starting at `t`.
fn make_script(world: &mut World, rng: &mut Rng, id: u32, t: u64) -> Script {
    let client_idx = rng.below(u64::from(CLIENTS)) as u32;
    let server = world.pick_server(rng);
    let mut s = Script {
        id,
        client: client_ip(client_idx),
        cport: 0,
        server,
        sport: 0,
        style: Style::Plain,
        plan: Plan::Normal,
        c_prefix: Vec::new(),
        s_prefix: Vec::new(),
        c_total: 0,
        s_total: 0,
        c_ipid: rng.u32() as u16,
        s_ipid: rng.u32() as u16,
        c_ts0: rng.u32(),
        s_ts0: rng.u32(),
        pkts: Vec::new(),
        next: 0,
    };
    let srv_rtt = world.servers[server as usize].rtt_ns;
    let kind = rng.below(1000);
    if kind < 70 {
        // DNS lookup: ~10 % NXDOMAIN, ~1 % lost and retried after 5 s.
        let nx = rng.chance(0.10);
        let qid = rng.u32() as u16;
        let port = world.next_port(client_idx, 1);
        let name = if nx { rng.u32() } else { server };
        let d = |reply| What::Dns {
            reply,
            nx,
            id: qid,
            port,
            name,
        };
        let mut tq = t;
        if rng.chance(0.01) {
            s.pkts.push(Pkt { t, what: d(false) });
            tq += 5_000_000_000;
        }
        s.pkts.push(Pkt {
            t: tq,
            what: d(false),
        });
        let dt = (rng.lognormal(3.0, 1.2, 0.3, 400.0) * 1e6) as u64;
        s.pkts.push(Pkt {
            t: tq + dt,
            what: d(true),
        });
        return s;
    }
    if kind < 80 {
        // Ping session: 4–20 echoes, 1 s or 200 ms apart, ~3 % lost.
        let n = rng.range(4, 20) as u16;
        let gap = if rng.chance(0.7) {
            1_000_000_000
        } else {
            200_000_000
        };
        let pid = rng.u32() as u16;
        for seq in 1..=n {
            let ts = t + u64::from(seq - 1) * gap + rng.below(200_000);
            s.pkts.push(Pkt {
                t: ts,
                what: What::Echo {
                    reply: false,
                    id: pid,
                    seq,
                },
            });
            if !rng.chance(0.03) {
                s.pkts.push(Pkt {
                    t: ts + srv_rtt + rng.below(srv_rtt / 10 + 1),
                    what: What::Echo {
                        reply: true,
                        id: pid,
                        seq,
                    },
                });
            }
        }
        s.pkts.sort_by_key(|p| p.t);
        return s;
    }
    if kind < 82 {
        // ARP for the gateway.
        s.pkts.push(Pkt {
            t,
            what: What::Arp { reply: false },
        });
        s.pkts.push(Pkt {
            t: t + rng.range(50_000, 400_000),
            what: What::Arp { reply: true },
        });
        return s;
    }
    // A TCP flow.
    let port_pick = rng.below(100);
    s.sport = match port_pick {
        0..=84 => 443,
        85..=91 => 80,
        92..=95 => 8443,
        96..=97 => 5222,
        _ => 22,
    };
    s.style = if matches!(s.sport, 443 | 8443 | 5222) {
        Style::Tls
    } else {
        Style::Plain
    };
    let p = rng.below(1000);
    s.plan = if s.sport == 443 {
        match p {
            0..=69 => {
                if rng.chance(0.6) {
                    Plan::InjectedAfterHello
                } else {
                    Plan::InjectedAnswersSyn
                }
            }
            70..=119 => {
                if rng.chance(0.5) {
                    Plan::GenuineRefused
                } else {
                    Plan::GenuineMidStream
                }
            }
            120..=139 => Plan::SynUnanswered,
            140..=169 => Plan::ClientAbort,
            170..=172 => Plan::Traceroute,
            173..=175 => Plan::FragNeeded,
            _ => Plan::Normal,
        }
    } else {
        match p {
            0..=19 => Plan::SynUnanswered,
            20..=49 => Plan::GenuineRefused,
            _ => Plan::Normal,
        }
    };
    let ports_needed = if s.plan == Plan::Traceroute { 16 } else { 1 };
    s.cport = world.next_port(client_idx, ports_needed);
    build_tcp_flow(&mut s, &world.servers[server as usize], rng, t);
    s
}

fn build_tcp_flow(s: &mut Script, srv: &Server, rng: &mut Rng, t: u64) {
    let tls13 = rng.chance(0.7);
    // Payload per segment: the peer's MSS less 12 bytes of timestamps
    // (1448 for 1460), so full-size Ethernet frames are 1514 bytes.
    let ts = srv.timestamps;
    let opt = if ts { 12 } else { 0 };
    let s_mss = MSS_PLAIN - opt;
    let c_mss = u32::from(srv.mss).min(MSS_PLAIN) - opt;
    let mut g = FlowGen {
        rng,
        pkts: Vec::with_capacity(32),
        t,
        rtt: srv.rtt_ns,
        seg_ns: srv.seg_ns,
        c_seq: 0,
        s_seq: 0,
        c_off: 0,
        s_off: 0,
        c_mss,
        s_mss,
        ts,
        c_id: 0,
        s_id: 0,
    };
    g.c_id = g.rng.u32() as u16;
    g.s_id = g.rng.u32() as u16;
    g.c_seq = g.rng.u32();
    g.s_seq = g.rng.u32();

    // Exchanges: (request bytes, response bytes, idle gap before the next).
    let long_lived = g.rng.chance(0.10);
    let n_ex = if long_lived {
        g.rng.range(3, 30)
    } else {
        let mut n = 1;
        while n < 20 && g.rng.chance(0.45) {
            n += 1;
        }
        n
    };
    let mut ex = Vec::with_capacity(n_ex as usize);
    for _ in 0..n_ex {
        let req = if g.rng.chance(0.01) {
            g.rng.lognormal(20_000.0, 1.2, 2_000.0, 500_000.0)
        } else {
            g.rng.lognormal(350.0, 0.8, 40.0, 65_000.0)
        } as u32;
        let resp = g.rng.lognormal(900.0, 1.3, 30.0, 1_000_000.0) as u32;
        let gap = if long_lived {
            g.rng.lognormal(3.0, 1.0, 0.2, 60.0) * 1e9
        } else {
            g.rng.lognormal(30.0, 1.2, 1.0, 3_000.0) * 1e6
        } as u64;
        ex.push((req, resp, gap));
    }

    // Stream prefixes.
    let sni = server_name(s.server);
    let (c_hs_end, s_hs_end);
    match (s.style, s.sport) {
        (Style::Tls, _) => {
            s.c_prefix = client_hello(g.rng, &sni);
            c_hs_end = s.c_prefix.len();
            let fin = client_finish(g.rng, tls13);
            s.c_prefix.extend_from_slice(&fin);
            s.s_prefix = server_flight(g.rng, tls13);
            s_hs_end = s.s_prefix.len();
            if !tls13 {
                let f = server_finish(g.rng);
                s.s_prefix.extend_from_slice(&f);
            }
        }
        (_, 80) => {
            s.c_prefix = format!(
                "GET /api/v{}/items/{} HTTP/1.1\r\nHost: {sni}\r\nUser-Agent: connector/24.1\r\nAccept: */*\r\n\r\n",
                g.rng.range(1, 3),
                g.rng.u32()
            )
            .into_bytes();
            // One GET and its answer, so that every byte parses as HTTP.
            ex.truncate(1);
            let body = ex[0].1;
            s.s_prefix = format!(
                "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: application/octet-stream\r\nContent-Length: {body}\r\n\r\n"
            )
            .into_bytes();
            ex[0].0 = s.c_prefix.len() as u32;
            ex[0].1 = s.s_prefix.len() as u32 + body;
            c_hs_end = 0;
            s_hs_end = 0;
        }
        _ => {
            s.c_prefix = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n".to_vec();
            s.s_prefix = b"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.10\r\n".to_vec();
            c_hs_end = 0;
            s_hs_end = 0;
        }
    }
    s.c_total = (s.c_prefix.len() as u64 + ex.iter().map(|e| u64::from(e.0)).sum::<u64>())
        .min(u64::from(u32::MAX / 2)) as u32;
    s.s_total = (s.s_prefix.len() as u64 + ex.iter().map(|e| u64::from(e.1)).sum::<u64>())
        .min(u64::from(u32::MAX / 2)) as u32;

    match s.plan {
        Plan::SynUnanswered => {
            let mut syn = g.seg(true, SYN, 0);
            syn.opts = Opts::Syn;
            let n = g.rng.range(2, 5);
            let mut at = t;
            for i in 0..n {
                syn.tag = if i == 0 {
                    Tag::FlowStart
                } else {
                    Tag::SynRetransmission
                };
                g.push(at, syn);
                at += (1_000_000_000u64 << i) + g.rng.below(2_000_000);
            }
        }
        Plan::InjectedAnswersSyn | Plan::GenuineRefused => {
            let syn = g.handshake_syn_only();
            let injected = s.plan == Plan::InjectedAnswersSyn;
            let delay = if injected {
                g.rng.range(100_000, 800_000)
            } else {
                g.jitter(srv.rtt_ns)
            };
            let mut r = g.seg(false, RST | ACK, 0);
            r.seq = 0;
            r.ack = syn.seq.wrapping_add(1);
            r.win = 0;
            r.opts = Opts::None;
            r.id0 = true;
            if injected {
                r.ttl = INJECTED_TTL;
                r.tag = Tag::RstInjected;
            } else {
                r.tag = Tag::RstGenuine;
            }
            g.push(t + delay, r);
        }
        Plan::Traceroute => {
            // traceroute -T: one SYN per TTL, each from its own port; routers
            // answer with time exceeded, the server with a SYN-ACK, which the
            // client resets. The last probe uses the script's port (the one
            // server segments are addressed to).
            let first_port = s.cport;
            s.cport = first_port + u16::from(srv.hops) - 1;
            let mut at = t;
            for ttl in 1..=srv.hops {
                let mut syn = g.seg(true, SYN, 0);
                syn.seq = g.rng.u32();
                syn.opts = Opts::Syn;
                syn.ttl = ttl;
                syn.tag = Tag::FlowStart;
                let hop_rtt = srv.rtt_ns * u64::from(ttl) / u64::from(srv.hops);
                if ttl < srv.hops {
                    syn.sport = first_port + u16::from(ttl) - 1;
                    let syn = g.push(at, syn);
                    g.pkts.push(Pkt {
                        t: at + hop_rtt + 50_000,
                        what: What::IcmpError {
                            hop: ttl,
                            mtu: 0,
                            quoted: syn,
                            quoted_ttl: 1,
                        },
                    });
                } else {
                    g.push(at, syn);
                    let mut sa = g.seg(false, SYN | ACK, 0);
                    sa.opts = Opts::SynAck;
                    sa.ack = syn.seq.wrapping_add(1);
                    let sa_t = at + hop_rtt;
                    g.push(sa_t, sa);
                    let mut r = g.seg(true, RST, 0);
                    r.seq = syn.seq.wrapping_add(1);
                    r.opts = Opts::None;
                    r.id0 = true;
                    r.tag = Tag::RstClient;
                    g.push(sa_t + 30_000, r);
                }
                at += 2_000_000 + g.rng.below(1_000_000);
            }
        }
        _ => {
            g.handshake();
            if s.plan == Plan::InjectedAfterHello {
                // The ClientHello, answered by a reset from hop 2.
                let t_ch = g.t;
                g.send(t_ch, true, PSH | ACK, c_hs_end as u32);
                let mut r = g.seg(false, RST | ACK, 0);
                r.win = 0;
                r.opts = Opts::None;
                r.id0 = true;
                r.ttl = INJECTED_TTL;
                r.tag = Tag::RstInjected;
                let at = t_ch + g.rng.range(100_000, 800_000);
                g.push(at, r);
                if g.rng.chance(0.2) {
                    // Some devices send a second reset with another sequence.
                    r.seq = r.seq.wrapping_add(u32::from(r.win) + 1460);
                    g.push(at + 15_000, r);
                }
            } else {
                run_exchanges(&mut g, s, srv, &ex, c_hs_end as u32, s_hs_end as u32);
            }
        }
    }
    s.pkts = std::mem::take(&mut g.pkts);
    s.pkts.sort_by_key(|p| p.t);
}

impl FlowGen<'_> {
    /// A lone SYN (for flows answered by a reset).
    fn handshake_syn_only(&mut self) -> Seg {
        let mut syn = self.seg(true, SYN, 0);
        syn.opts = Opts::Syn;
        syn.tag = Tag::FlowStart;
        let syn = self.push(self.t, syn);
        self.c_seq = self.c_seq.wrapping_add(1);
        syn
    }
}

/// After the handshake: TLS handshake, request/response exchanges, teardown.
fn run_exchanges(
    g: &mut FlowGen<'_>,
    s: &Script,
    srv: &Server,
    ex: &[(u32, u32, u64)],
    c_hs: u32,
    s_hs: u32,
) {
    let think = |g: &mut FlowGen<'_>| g.rng.range(200_000, 3_000_000);
    let frag_needed = s.plan == Plan::FragNeeded;
    if c_hs > 0 {
        // ClientHello, server flight, client finish (+ TLS 1.2 server finish).
        g.client_send(c_hs);
        let start = g.t + g.rtt + think(g);
        g.server_send(start, s_hs);
        let c_fin = s.c_prefix.len() as u32 - c_hs;
        g.client_send(c_fin);
        let s_fin = s.s_prefix.len() as u32 - s_hs;
        if s_fin > 0 {
            let start = g.t + g.rtt;
            g.server_send(start, s_fin);
        }
    }
    let last = ex.len() - 1;
    for (i, &(req, resp, gap)) in ex.iter().enumerate() {
        if frag_needed && i == 0 {
            // An upload of full-size segments: the router at hop 2–5 has MTU
            // 1400 and answers the first with "fragmentation needed".
            let up = req.max(6 * g.c_mss);
            let (seq0, off0, t0) = (g.c_seq, g.c_off, g.t);
            let burst = up.div_ceil(g.c_mss).min(10);
            let mut first = None;
            for k in 0..burst {
                let len = g.c_mss.min(up - k * g.c_mss);
                let sg = g.send(t0 + u64::from(k) * 12_000, true, ACK, len);
                first.get_or_insert(sg);
            }
            let hop = g.rng.range(2, u64::from(srv.hops.min(6)) - 1) as u8;
            let at = t0 + g.rtt * u64::from(hop) / u64::from(srv.hops) + 30_000;
            g.pkts.push(Pkt {
                t: at,
                what: What::IcmpError {
                    hop,
                    mtu: 1400,
                    quoted: first.expect("burst of at least one"),
                    quoted_ttl: 64 - (hop - 1),
                },
            });
            // Resend everything with the smaller MSS.
            g.c_seq = seq0;
            g.c_off = off0;
            g.t = at + 20_000;
            let saved = g.c_mss;
            g.c_mss = 1400 - 40 - if g.ts { 12 } else { 0 };
            g.client_send(up);
            g.c_mss = saved;
        } else {
            g.client_send(req);
        }
        let start = g.t + g.rtt + think(g);
        if s.plan == Plan::GenuineMidStream && i == last.min(1) {
            // The server sends part of its answer, then aborts.
            let part = (resp / 2).max(1);
            let end = g.server_send(start, part);
            let mut r = g.seg(false, RST | ACK, 0);
            r.opts = Opts::None;
            r.win = 0;
            r.tag = Tag::RstGenuine;
            let at = end + g.rng.range(1_000_000, 50_000_000);
            g.push(at, r);
            return;
        }
        g.server_send(start, resp);
        if i < last {
            g.t += gap;
        }
    }
    // Teardown.
    g.t += g.rng.range(1_000_000, 200_000_000);
    match s.plan {
        Plan::ClientAbort => {
            let mut r = g.seg(true, RST | ACK, 0);
            r.opts = Opts::None;
            r.win = 0;
            r.tag = Tag::RstClient;
            g.push(g.t, r);
        }
        _ if g.rng.chance(0.7) => {
            let t = g.t;
            g.send(t, true, FIN | ACK, 0);
            let t = t + g.rtt;
            g.send(t, false, FIN | ACK, 0);
            g.send(t + 20_000, true, ACK, 0);
        }
        _ => {
            let t = g.t;
            g.send(t, false, FIN | ACK, 0);
            g.send(t + 30_000, true, FIN | ACK, 0);
            let t = t + 30_000 + g.rtt;
            g.send(t, false, ACK, 0);
        }
    }
}

fn run(args: &Args) -> io::Result<Summary> {
    let started = Instant::now();
    let mut rng = Rng(args.seed ^ 0x005e_ed0f_9a7e);
    let mut world = World::new(&mut rng);
    let file = File::create(&args.out)?;
    let sink = Counting {
        inner: BufWriter::with_capacity(1 << 20, file),
        n: 0,
    };
    let link_number = match args.link {
        Link::Ethernet => 1,
        Link::Sll2 => 276,
    };
    let w = match args.format {
        Format::Pcap => Writer::Pcap(PcapWriter::new(sink, link_number, 0, TsPrecision::Micro)?),
        Format::Pcapng => {
            let mut w = PcapngWriter::new(sink)?;
            w.add_interface(link_number, 9)?;
            Writer::Pcapng(w)
        }
    };
    let mut pool = vec![0u8; POOL + 65_536];
    let mut prng = Rng(args.seed ^ 0x9001);
    for chunk in pool.chunks_mut(8) {
        let v = prng.next().to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
    let mut out = Out {
        w,
        link: args.link,
        buf: Vec::with_capacity(2048),
        payload: Vec::with_capacity(2048),
        quote: Vec::with_capacity(2048),
        pool,
        sum: Summary::default(),
    };
    let target = (args.size_mb * 1e6) as u64;
    let mean_gap = 1e9 / args.rate;
    let mut t_arrival = args.start * 1_000_000_000;
    let mut heap: BinaryHeap<Reverse<(u64, u32)>> = BinaryHeap::new();
    let mut slots: Vec<Option<Script>> = Vec::new();
    let mut free: Vec<u32> = Vec::new();
    let mut next_id = 0u32;
    let mut live = 0usize;
    // ARP for the gateway every ~60 s is part of the arrival mix; a first one
    // starts the capture.
    while out.w.bytes() < target {
        let next_t = heap.peek().map_or(u64::MAX, |r| r.0.0);
        if t_arrival <= next_t {
            let s = make_script(&mut world, &mut rng, next_id, t_arrival);
            next_id = next_id.wrapping_add(1);
            t_arrival += rng.exp(mean_gap) as u64 + 1;
            if s.pkts.is_empty() {
                continue;
            }
            let t0 = s.pkts[0].t;
            let slot = match free.pop() {
                Some(i) => {
                    slots[i as usize] = Some(s);
                    i
                }
                None => {
                    slots.push(Some(s));
                    (slots.len() - 1) as u32
                }
            };
            live += 1;
            out.sum.max_concurrent_conversations = out.sum.max_concurrent_conversations.max(live);
            heap.push(Reverse((t0, slot)));
            continue;
        }
        let Reverse((_, slot)) = heap.pop().expect("peeked");
        let s = slots[slot as usize].as_mut().expect("live slot");
        let p = s.pkts[s.next];
        out.emit(s, &world, &p)?;
        s.next += 1;
        if s.next < s.pkts.len() {
            heap.push(Reverse((s.pkts[s.next].t, slot)));
        } else {
            slots[slot as usize] = None;
            free.push(slot);
            live -= 1;
        }
    }
    match &mut out.w {
        Writer::Pcap(w) => w.flush()?,
        Writer::Pcapng(w) => w.flush()?,
    }
    let mut sum = out.sum;
    sum.bytes = out.w.bytes();
    sum.file = args.out.clone();
    sum.seed = args.seed;
    sum.format = match args.format {
        Format::Pcap => "pcap",
        Format::Pcapng => "pcapng",
    };
    sum.link_type = match args.link {
        Link::Ethernet => "ETHERNET",
        Link::Sll2 => "LINUX_SLL2",
    };
    sum.span_s = (sum.last_ts_ns - sum.first_ts_ns) as f64 / 1e9;
    sum.elapsed_s = started.elapsed().as_secs_f64();
    sum.mb_per_s = sum.bytes as f64 / 1e6 / sum.elapsed_s;
    Ok(sum)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("gen_capture: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    match run(&args) {
        Ok(sum) => println!(
            "{}",
            serde_json::to_string_pretty(&sum).expect("summary serialises")
        ),
        Err(e) => {
            eprintln!("gen_capture: {}: {e}", args.out);
            std::process::exit(1);
        }
    }
}
