//! Self-tests of the namespace lab (`tests/support/lab.rs`), independent of
//! pathproof: each scenario is built, its workload captured, and the capture
//! checked with the small decoder in `tests/support/wire.rs` (the DNS lookup,
//! TTLs of the answers, who answers, SYN and segment retransmissions, ICMP
//! fragmentation-needed, certificate issuer and validity). Needs root; skips
//! loudly otherwise.
//!
//! `regenerate_bundled_captures` (ignored) rewrites `captures/`; run it with
//! `tests/lab/regen-captures.sh`.

mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Instant;
use support::lab::{self, CaptureSet, DnsBehaviour, Lab, LabOptions, Node, Scenario, TlsVersion};
use support::wire::{self, ACK, DnsData, FragNeeded, Ipv4Packet, RST, SYN};

/// A TCP packet from broker:443 to conn: what answered a SYN.
#[derive(Debug)]
struct Answer {
    port: u16,
    frame: usize,
    flags: u8,
    ttl: u8,
    id: u16,
    df: bool,
    /// Seconds since the last SYN conn sent from `port`.
    delay: f64,
}

/// An RST from broker:443 to conn.
#[derive(Debug)]
struct Reset {
    port: u16,
    frame: usize,
    flags: u8,
    ttl: u8,
    id: u16,
    /// Whether conn had sent payload (the ClientHello) on that connection.
    after_client_data: bool,
}

/// One connection conn opened to broker:443, by source port.
#[derive(Debug, Default)]
struct Conn {
    isn: u32,
    /// Highest acknowledgment the server sent, relative to conn's ISN.
    server_acked: u32,
    client_bytes: usize,
    server_bytes: usize,
    /// Times each 1448-byte segment (by sequence number) left conn.
    full_segments: BTreeMap<u32, usize>,
}

/// A UDP datagram to or from the resolver's port 53.
#[derive(Debug)]
struct DnsPacket {
    frame: usize,
    src: Ipv4Addr,
    ttl: u8,
    id: u16,
    msg: wire::Dns,
}

#[derive(Debug, Default)]
struct Facts {
    linktypes: [u32; 3],
    frames: [usize; 3],
    ipv4: [usize; 3],
    dns: Vec<DnsPacket>,
    /// (frame, ttl, ip id) of ICMP echo replies from the broker.
    echo_replies: Vec<(usize, u8, u16)>,
    /// Times of each SYN conn sent, per source port, in order.
    syns: BTreeMap<u16, Vec<f64>>,
    /// The first SYN-ACK or RST from broker:443 per connection.
    answers: Vec<Answer>,
    /// Every RST from broker:443.
    resets: Vec<Reset>,
    conns: BTreeMap<u16, Conn>,
    /// TCP payload bytes conn received from broker:443, all connections.
    server_payload: Vec<u8>,
    /// Time of the first server packet carrying payload.
    first_server_data: Option<f64>,
    /// TTLs of every packet from the broker's address.
    ttls_from_broker: BTreeMap<u8, usize>,
    /// ICMP fragmentation-needed to conn: (frame, src, ttl, ip id, details).
    frag_needed: Vec<(usize, Ipv4Addr, u8, u16, FragNeeded)>,
    /// Largest IP total length conn sent to the broker before / after the
    /// first fragmentation-needed (all of it "before" when there is none).
    max_len_before_icmp: u16,
    max_len_after_icmp: u16,
    /// ICMP messages other than echo and fragmentation-needed.
    other_icmp: Vec<(usize, u8, u8)>,
    /// TCP packets of any kind.
    tcp_packets: usize,
}

const FULL_SEGMENT: usize = 1448;

fn gather(set: &CaptureSet) -> Facts {
    let files = [&set.sll_pcap, &set.sll1_pcap, &set.eth_pcap];
    let pcaps: Vec<_> = files.iter().map(|f| wire::read_pcap(f)).collect();
    let mut facts = Facts::default();
    for (i, p) in pcaps.iter().enumerate() {
        facts.linktypes[i] = p.linktype;
        facts.frames[i] = p.frames;
        facts.ipv4[i] = p.packets.len();
    }
    let broker = lab::broker_addr();
    let conn = lab::conn_addr();
    let resolver = lab::resolver_addr();
    // The Ethernet capture is the reference: it sees conn's only interface.
    let pkts: &[Ipv4Packet] = &pcaps[2].packets;
    for p in pkts {
        if p.src == broker {
            *facts.ttls_from_broker.entry(p.ttl).or_default() += 1;
        }
        if let Some(u) = &p.udp
            && ((p.dst == resolver && u.dport == 53) || (p.src == resolver && u.sport == 53))
            && let Some(msg) = wire::parse_dns(&u.payload)
        {
            facts.dns.push(DnsPacket {
                frame: p.frame,
                src: p.src,
                ttl: p.ttl,
                id: p.id,
                msg,
            });
        }
        match p.icmp {
            Some((0, 0)) if p.src == broker && p.dst == conn => {
                facts.echo_replies.push((p.frame, p.ttl, p.id));
            }
            Some((8, 0)) | Some((0, 0)) => {}
            Some((3, 4)) if p.dst == conn => {
                if let Some(fnd) = p.frag_needed() {
                    facts.frag_needed.push((p.frame, p.src, p.ttl, p.id, fnd));
                }
            }
            Some((t, c)) => facts.other_icmp.push((p.frame, t, c)),
            None => {}
        }
        let Some(t) = &p.tcp else { continue };
        facts.tcp_packets += 1;
        if p.src == conn && t.dport == lab::BROKER_PORT {
            if facts.frag_needed.is_empty() {
                facts.max_len_before_icmp = facts.max_len_before_icmp.max(p.total_len);
            } else {
                facts.max_len_after_icmp = facts.max_len_after_icmp.max(p.total_len);
            }
            let c = facts.conns.entry(t.sport).or_default();
            if t.flags & (SYN | ACK) == SYN {
                facts.syns.entry(t.sport).or_default().push(p.ts);
                c.isn = t.seq;
            }
            c.client_bytes += t.payload.len();
            if t.payload.len() == FULL_SEGMENT {
                *c.full_segments.entry(t.seq).or_default() += 1;
            }
        }
        if p.src == broker && t.sport == lab::BROKER_PORT {
            let c = facts.conns.entry(t.dport).or_default();
            if t.flags & ACK != 0 {
                c.server_acked = c.server_acked.max(t.ack.wrapping_sub(c.isn));
            }
            c.server_bytes += t.payload.len();
            if t.flags & RST != 0 {
                facts.resets.push(Reset {
                    port: t.dport,
                    frame: p.frame,
                    flags: t.flags,
                    ttl: p.ttl,
                    id: p.id,
                    after_client_data: c.client_bytes > 0,
                });
            }
            if !t.payload.is_empty() && facts.first_server_data.is_none() {
                facts.first_server_data = Some(p.ts);
            }
            facts.server_payload.extend_from_slice(&t.payload);
            let answer = t.flags & RST != 0 || t.flags & (SYN | ACK) == SYN | ACK;
            if answer && !facts.answers.iter().any(|a| a.port == t.dport) {
                let last_syn = facts
                    .syns
                    .get(&t.dport)
                    .and_then(|v| v.iter().rev().find(|&&s| s <= p.ts))
                    .copied()
                    .unwrap_or(f64::NAN);
                facts.answers.push(Answer {
                    port: t.dport,
                    frame: p.frame,
                    flags: t.flags,
                    ttl: p.ttl,
                    id: p.id,
                    df: p.df,
                    delay: p.ts - last_syn,
                });
            }
        }
    }
    facts
}

/// The first DER UTCTime (`YYMMDDHHMMSSZ`) in `der`, as seconds since the
/// epoch: in a TLS 1.2 Certificate message, the leaf's notBefore.
fn first_utc_time(der: &[u8]) -> Option<i64> {
    let pos = der.windows(15).position(|w| {
        w[0] == 0x17 && w[1] == 0x0d && w[2..14].iter().all(u8::is_ascii_digit) && w[14] == b'Z'
    })?;
    let d = &der[pos + 2..pos + 14];
    let n = |i: usize| i64::from(d[i] - b'0') * 10 + i64::from(d[i + 1] - b'0');
    let (y, m, day) = (2000 + n(0), n(2), n(4));
    // Days from the civil date (Howard Hinnant's algorithm).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + n(6) * 3600 + n(8) * 60 + n(10))
}

fn summary(name: &str, set: &CaptureSet, f: &Facts) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "[{name}] linktypes sll/sll1/eth {:?}; frames {:?}; ipv4 {:?}; tcpdump counts {:?}",
        f.linktypes, f.frames, f.ipv4, set.packets
    );
    let d = &set.workload.dns;
    let _ = writeln!(
        s,
        "[{name}] dig: exit {:?}, status {:?}, addresses {:?}, {:.3} s",
        d.exit_code,
        d.status,
        d.addresses,
        d.elapsed.as_secs_f64()
    );
    for p in &f.dns {
        let _ = writeln!(
            s,
            "[{name}] frame {}: DNS {} from {} ttl {} ip.id 0x{:04x}: id 0x{:04x} {} type {} rcode {} answers {:?}",
            p.frame,
            if p.msg.response { "response" } else { "query" },
            p.src,
            p.ttl,
            p.id,
            p.msg.id,
            p.msg.qname,
            p.msg.qtype,
            p.msg.rcode,
            p.msg.answers
        );
    }
    let _ = writeln!(
        s,
        "[{name}] echo replies (frame, ttl, ip id): {:?}; ttls from broker address: {:?}",
        f.echo_replies, f.ttls_from_broker
    );
    for (port, times) in &f.syns {
        let t0 = times[0];
        let rel: Vec<String> = times.iter().map(|t| format!("{:.3}", t - t0)).collect();
        let c = &f.conns[port];
        let resent: Vec<usize> = c.full_segments.values().copied().collect();
        let _ = writeln!(
            s,
            "[{name}] port {port}: {} SYN(s) at +[{}] s; client bytes {}, server bytes {}, \
             server acked {}; 1448-byte segments sent {:?} times",
            times.len(),
            rel.join(", "),
            c.client_bytes,
            c.server_bytes,
            c.server_acked,
            resent
        );
    }
    for a in &f.answers {
        let _ = writeln!(
            s,
            "[{name}] port {}: frame {} answer {} ttl {} ip.id {} (0x{:04x}) DF {} after {:.1} us",
            a.port,
            a.frame,
            wire::flag_str(a.flags),
            a.ttl,
            a.id,
            a.id,
            a.df,
            a.delay * 1e6
        );
    }
    for r in &f.resets {
        let _ = writeln!(
            s,
            "[{name}] port {}: frame {} {} ttl {} ip.id {} after client data {}",
            r.port,
            r.frame,
            wire::flag_str(r.flags),
            r.ttl,
            r.id,
            r.after_client_data
        );
    }
    for (frame, src, ttl, id, fnd) in &f.frag_needed {
        let _ = writeln!(
            s,
            "[{name}] frame {frame}: ICMP frag-needed from {src} ttl {ttl} ip.id 0x{id:04x} \
             mtu {} quoting {} -> {} len {}",
            fnd.mtu, fnd.quoted_src, fnd.quoted_dst, fnd.quoted_len
        );
    }
    let _ = writeln!(
        s,
        "[{name}] conn->broker largest IP packet: {} before the first frag-needed, {} after; \
         other ICMP {:?}",
        f.max_len_before_icmp, f.max_len_after_icmp, f.other_icmp
    );
    for (i, a) in set.workload.attempts.iter().enumerate() {
        let err: Vec<&str> = a.stderr.lines().map(str::trim).take(3).collect();
        let _ = writeln!(
            s,
            "[{name}] attempt {}: exit {:?} after {:.3} s; {}",
            i + 1,
            a.exit_code,
            a.elapsed.as_secs_f64(),
            err.join(" | ")
        );
    }
    s
}

/// What the TLS client concluded about the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verify {
    Ok,
    /// `verify error:num=N` and the handshake aborted.
    Error(u32),
}

/// Checks what every scenario's capture must show, then the scenario's own
/// signature. Panics with the summary on failure.
fn check(scenario: Scenario, name: &str, set: &CaptureSet, f: &Facts, opts: &LabOptions) {
    let ctx = summary(name, set, f);
    let fail = |why: &str| -> ! { panic!("lab self-test {name}: {why}\n{ctx}") };

    if f.linktypes
        != [
            wire::LINKTYPE_LINUX_SLL2,
            wire::LINKTYPE_LINUX_SLL,
            wire::LINKTYPE_ETHERNET,
        ]
    {
        fail("unexpected link types");
    }
    if f.ipv4[0] != f.ipv4[2] || f.ipv4[1] != f.ipv4[2] {
        fail(&format!(
            "the three captures hold different numbers of IPv4 packets; tcpdump said:\n{}",
            set.tcpdump_stderr.join("\n")
        ));
    }
    for png in [&set.sll_pcapng, &set.eth_pcapng] {
        let head = std::fs::read(png).unwrap_or_default();
        if !head.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
            fail(&format!("{} is not pcapng", png.display()));
        }
    }

    // The lookup of the broker locator starts every capture.
    let queries: Vec<&DnsPacket> = f.dns.iter().filter(|p| !p.msg.response).collect();
    let responses: Vec<&DnsPacket> = f.dns.iter().filter(|p| p.msg.response).collect();
    if queries.is_empty()
        || queries.iter().any(|q| {
            q.src != lab::conn_addr() || q.msg.qname != lab::BROKER_LOCATOR || q.msg.qtype != 1
        })
    {
        fail("expected conn's queries for A co2br.lab1.test to the resolver");
    }
    let first_tcp_or_echo = f
        .echo_replies
        .first()
        .map(|e| e.0)
        .into_iter()
        .chain(f.answers.first().map(|a| a.frame))
        .min()
        .unwrap_or(usize::MAX);
    if queries[0].frame > first_tcp_or_echo {
        fail("the DNS query should come before anything else");
    }
    match scenario.dns() {
        DnsBehaviour::Answers => {
            let [r] = responses[..] else {
                fail("expected exactly one DNS response")
            };
            let cname = r.msg.answers.iter().any(|a| {
                a.name == lab::BROKER_LOCATOR
                    && a.data == DnsData::Cname(lab::BROKER_NAME.to_owned())
            });
            let a =
                r.msg.answers.iter().any(|a| {
                    a.name == lab::BROKER_NAME && a.data == DnsData::A(lab::broker_addr())
                });
            if queries.len() != 1 || r.msg.rcode != 0 || !cname || !a || r.ttl != 63 {
                fail("expected one NOERROR answer (CNAME broker1a, A 198.18.4.2) with IP TTL 63");
            }
        }
        DnsBehaviour::NxDomain => {
            let [r] = responses[..] else {
                fail("expected exactly one DNS response")
            };
            if queries.len() != 1 || r.msg.rcode != 3 || !r.msg.answers.is_empty() {
                fail("expected one NXDOMAIN answer without records");
            }
        }
        DnsBehaviour::Silent => {
            if !responses.is_empty() || queries.len() != 2 {
                fail("expected two queries (dig +tries=2) and no response");
            }
        }
    }
    if !scenario.resolves() {
        if f.tcp_packets != 0 || !f.echo_replies.is_empty() || !set.workload.attempts.is_empty() {
            fail("nothing resolved: the workload should stop after the lookup");
        }
        return;
    }

    if f.echo_replies.len() != opts.pings as usize || f.echo_replies.iter().any(|r| r.1 != 61) {
        fail("expected every echo reply from the broker with TTL 61");
    }
    let attempts = opts.attempts as usize;
    // Through the explicit proxy: no SYN goes to the broker's 443 directly
    // (the facts above follow port 443), and every client saw the
    // inspection CA's chain inside the tunnel (lab_pcap judges the rest).
    if scenario == Scenario::ConnectIntercept {
        if !f.syns.is_empty() {
            fail("the connector should reach the broker only through the proxy");
        }
        if set.workload.attempts.len() != attempts
            || set
                .workload
                .attempts
                .iter()
                .any(|a| !a.stderr.contains("Corp Inspection CA"))
        {
            fail("expected every attempt to see the Corp Inspection CA's chain through the proxy");
        }
        return;
    }
    if f.syns.len() != attempts {
        fail("expected one source port per connection attempt");
    }
    let exits: Vec<Option<i32>> = set.workload.attempts.iter().map(|a| a.exit_code).collect();
    let timeout = f64::from(opts.attempt_timeout_secs);
    let tls12 = opts.tls == TlsVersion::Tls12;

    // Scenarios where nothing answers TCP 443.
    if scenario == Scenario::Drop443 {
        if !f.answers.is_empty() || !f.resets.is_empty() {
            fail("nothing should answer TCP 443");
        }
        if f.syns.values().any(|v| v.len() < 3) {
            fail("expected each attempt's SYN retransmitted at least twice");
        }
        if exits.iter().any(|e| *e != Some(124)) {
            fail("expected every attempt to time out (exit 124)");
        }
        return;
    }

    // Everything else answers each SYN once: a SYN-ACK (the handshake
    // completes) or an RST.
    let (first_answer_rst, answer_ttl) = match scenario {
        Scenario::RstHop1 => (true, 64),
        Scenario::RstHop2 => (true, 63),
        Scenario::BrokerRefuses => (true, 61),
        Scenario::InterceptProxy => (false, 64),
        _ => (false, 61),
    };
    if f.answers.len() != attempts || f.answers.iter().any(|a| a.ttl != answer_ttl) {
        fail(&format!(
            "expected one answer per attempt, all with TTL {answer_ttl}"
        ));
    }
    if f.answers
        .iter()
        .any(|a| (a.flags & RST != 0) != first_answer_rst)
    {
        fail("wrong kind of answer (SYN-ACK vs RST)");
    }
    if f.syns.values().any(|v| v.len() != 1) {
        fail("no SYN should be retransmitted when something answers");
    }
    if first_answer_rst {
        if exits.iter().any(|e| *e == Some(0) || *e == Some(124)) {
            fail("every attempt should fail at once");
        }
        return;
    }

    if scenario == Scenario::TlsReset {
        // One RST per connection, forged by r1 (TTL 64) right after the
        // ClientHello; the server never says anything.
        if f.resets.len() != attempts
            || f.resets.iter().any(|r| r.ttl != 64 || !r.after_client_data)
        {
            fail("expected one RST with TTL 64 per connection, after conn's ClientHello");
        }
        if !f.server_payload.is_empty() {
            fail("no TLS record should come from the server");
        }
        if set
            .workload
            .attempts
            .iter()
            .any(|a| a.exit_code != Some(1) || a.elapsed.as_secs_f64() > 1.0)
        {
            fail("every attempt should fail at once (exit 1)");
        }
        return;
    }

    if !f.resets.is_empty() {
        fail("no RST expected from broker:443");
    }
    let want_verify = match scenario {
        Scenario::InterceptProxy | Scenario::InterceptIssuer => Verify::Error(19),
        Scenario::NotYetValid => Verify::Error(9),
        _ => Verify::Ok,
    };
    for a in &set.workload.attempts {
        let ok = match want_verify {
            Verify::Ok => {
                a.exit_code == Some(0)
                    && a.stderr.contains("Verification: OK")
                    && a.stderr
                        .contains(&format!("Verified peername: {}", lab::BROKER_NAME))
            }
            Verify::Error(num) => {
                a.exit_code == Some(1) && a.stderr.contains(&format!("verify error:num={num}:"))
            }
        };
        if !ok {
            fail(&format!(
                "every s_client should end with {want_verify:?} (-verify_return_error)"
            ));
        }
    }
    let zscaler = wire::contains(&f.server_payload, b"Zscaler Test CA");
    let safemarch = wire::contains(&f.server_payload, b"Safemarch Inc CA");
    let foreign = matches!(
        scenario,
        Scenario::InterceptProxy | Scenario::InterceptIssuer
    );
    if tls12 && (zscaler == foreign || safemarch != foreign) {
        fail(if foreign {
            "the certificate should be issued by Safemarch Inc CA, visibly"
        } else {
            "the certificate (issuer O=Zscaler Test CA) should be visible"
        });
    }
    if !tls12 && (zscaler || safemarch) {
        fail("with TLS 1.3 the certificate must not be readable on the wire");
    }
    if tls12 {
        // The leaf's notBefore against the capture's clock: 6 minutes ahead
        // in not-yet-valid, a day behind otherwise.
        let (Some(nb), Some(t)) = (first_utc_time(&f.server_payload), f.first_server_data) else {
            fail("no certificate validity found in the server's data");
        };
        let ahead = nb as f64 - t;
        let want = scenario.leaf_not_before_offset_secs() as f64;
        if !(want - 60.0..=want).contains(&ahead) {
            fail(&format!(
                "the leaf's notBefore should be ~{want} s from the capture, is {ahead:.0} s"
            ));
        }
    }

    let upload = set.workload.upload_bytes;
    if scenario.upload_bytes() > 0 && upload < scenario.upload_bytes() - 200 {
        fail("the workload should have uploaded the scenario's request");
    }
    let full = usize::from(lab::NARROW_MTU) + 100; // 1500
    match scenario {
        Scenario::PmtuIcmp => {
            // The first connection's full-size segments draw
            // fragmentation-needed from r2; later connections use the
            // cached path MTU. Every upload is delivered.
            let from_r2 = f.frag_needed.iter().all(|(_, src, ttl, _, fnd)| {
                *src == lab::router_addr(2)
                    && *ttl == 63
                    && fnd.mtu == lab::NARROW_MTU
                    && fnd.quoted_src == lab::conn_addr()
                    && fnd.quoted_dst == lab::broker_addr()
                    && usize::from(fnd.quoted_len) == full
            });
            if f.frag_needed.is_empty() || !from_r2 {
                fail(
                    "expected ICMP frag-needed (MTU 1400) from r2 (198.18.2.2, TTL 63) quoting conn's 1500-byte packets",
                );
            }
            if usize::from(f.max_len_before_icmp) != full || f.max_len_after_icmp > lab::NARROW_MTU
            {
                fail("conn should send 1500-byte packets until the ICMP, then at most 1400");
            }
            if f.conns.values().any(|c| (c.server_acked as usize) < upload) {
                fail("the broker should acknowledge every upload");
            }
        }
        Scenario::PmtuBlackhole => {
            if !f.frag_needed.is_empty() || !f.other_icmp.is_empty() {
                fail("no ICMP error may reach conn");
            }
            if usize::from(f.max_len_before_icmp) != full {
                fail("conn should send 1500-byte packets");
            }
            for c in f.conns.values() {
                let most = c.full_segments.values().copied().max().unwrap_or(0);
                if most < 4 {
                    fail("each connection should send a 1448-byte segment at least 4 times");
                }
                if c.server_acked as usize > upload / 2 {
                    fail("the broker should never receive the upload");
                }
            }
            for a in &set.workload.attempts {
                // s_client hands its input to the kernel, sends close_notify,
                // waits 0.5 s for the server, and exits; the kernel keeps
                // retransmitting.
                if a.exit_code != Some(0) || a.elapsed.as_secs_f64() > timeout {
                    fail("s_client should give up waiting after its input ends (exit 0, ~0.5 s)");
                }
            }
        }
        _ => {
            if !f.frag_needed.is_empty() || !f.other_icmp.is_empty() {
                fail("no ICMP error expected");
            }
        }
    }
}

fn out_dir(scenario: Scenario) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("lab-selftest")
        .join(scenario.name())
}

fn run_scenario(scenario: Scenario, dir: &Path, mtr: bool) -> (CaptureSet, Facts) {
    run_scenario_with(scenario, dir, scenario.name(), mtr, LabOptions::default())
}

fn run_scenario_with(
    scenario: Scenario,
    dir: &Path,
    stem: &str,
    mtr: bool,
    opts: LabOptions,
) -> (CaptureSet, Facts) {
    let t0 = Instant::now();
    let lab = Lab::up(scenario, opts.clone());
    let up = t0.elapsed();
    let t1 = Instant::now();
    let set = lab.capture_workload_as(dir, stem);
    let capture = t1.elapsed();
    let t2 = Instant::now();
    if mtr {
        let report = lab.mtr_report(dir);
        let txt = std::fs::read_to_string(&report.txt).unwrap_or_default();
        for hop in 1..=lab::BROKER_HOP {
            let addr = lab::hop_addr(hop).to_string();
            assert!(
                txt.lines()
                    .any(|l| l.trim_start().starts_with(&format!("{hop}.|-- {addr}"))),
                "mtr report should show {addr} at hop {hop}:\n{txt}"
            );
        }
    }
    let mtr_time = t2.elapsed();
    let down = lab.down();
    let facts = gather(&set);
    eprint!("{}", summary(stem, &set, &facts));
    eprintln!(
        "[{stem}] timing: up {:.2} s, capture {:.2} s, mtr {:.2} s, down {:.2} s, total {:.2} s",
        up.as_secs_f64(),
        capture.as_secs_f64(),
        mtr_time.as_secs_f64(),
        down.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
    check(scenario, stem, &set, &facts, &opts);
    (set, facts)
}

fn tls13() -> LabOptions {
    LabOptions {
        tls: TlsVersion::Tls13,
        ..LabOptions::default()
    }
}

#[test]
fn selftest_healthy() {
    require_root!();
    run_scenario(Scenario::Healthy, &out_dir(Scenario::Healthy), true);
}

#[test]
fn selftest_healthy_tls13() {
    require_root!();
    let dir = out_dir(Scenario::Healthy).with_file_name("healthy-tls13");
    run_scenario_with(Scenario::Healthy, &dir, "healthy", false, tls13());
}

#[test]
fn selftest_rst_hop1() {
    require_root!();
    run_scenario(Scenario::RstHop1, &out_dir(Scenario::RstHop1), false);
}

#[test]
fn selftest_rst_hop2() {
    require_root!();
    run_scenario(Scenario::RstHop2, &out_dir(Scenario::RstHop2), true);
}

#[test]
fn selftest_broker_refuses() {
    require_root!();
    run_scenario(
        Scenario::BrokerRefuses,
        &out_dir(Scenario::BrokerRefuses),
        false,
    );
}

#[test]
fn selftest_drop_443() {
    require_root!();
    run_scenario(Scenario::Drop443, &out_dir(Scenario::Drop443), false);
}

#[test]
fn selftest_tls_reset() {
    require_root!();
    run_scenario(Scenario::TlsReset, &out_dir(Scenario::TlsReset), false);
}

#[test]
fn selftest_intercept_proxy() {
    require_root!();
    run_scenario(
        Scenario::InterceptProxy,
        &out_dir(Scenario::InterceptProxy),
        false,
    );
}

#[test]
fn selftest_intercept_proxy_tls13() {
    require_root!();
    let dir = out_dir(Scenario::InterceptProxy).with_file_name("intercept-proxy-tls13");
    run_scenario_with(
        Scenario::InterceptProxy,
        &dir,
        "intercept-proxy-tls13",
        false,
        tls13(),
    );
}

#[test]
fn selftest_intercept_issuer() {
    require_root!();
    run_scenario(
        Scenario::InterceptIssuer,
        &out_dir(Scenario::InterceptIssuer),
        false,
    );
}

#[test]
fn selftest_not_yet_valid() {
    require_root!();
    run_scenario(
        Scenario::NotYetValid,
        &out_dir(Scenario::NotYetValid),
        false,
    );
}

#[test]
fn selftest_pmtu_icmp() {
    require_root!();
    run_scenario(Scenario::PmtuIcmp, &out_dir(Scenario::PmtuIcmp), false);
}

#[test]
fn selftest_pmtu_blackhole() {
    require_root!();
    run_scenario(
        Scenario::PmtuBlackhole,
        &out_dir(Scenario::PmtuBlackhole),
        false,
    );
}

#[test]
fn selftest_dns_nxdomain() {
    require_root!();
    run_scenario(
        Scenario::DnsNxdomain,
        &out_dir(Scenario::DnsNxdomain),
        false,
    );
}

#[test]
fn selftest_dns_timeout() {
    require_root!();
    run_scenario(Scenario::DnsTimeout, &out_dir(Scenario::DnsTimeout), false);
}

fn our_namespaces(lab_id: &str) -> Vec<String> {
    lab::netns_list()
        .into_iter()
        .filter(|n| n.starts_with(&format!("{lab_id}-")))
        .collect()
}

#[test]
fn lab_is_torn_down_even_when_the_test_panics() {
    require_root!();
    let id = std::sync::Mutex::new(String::new());
    let result = std::panic::catch_unwind(|| {
        let lab = Lab::up(Scenario::Healthy, LabOptions::default());
        *id.lock().unwrap() = lab.id().to_owned();
        assert_eq!(our_namespaces(lab.id()).len(), Node::ALL.len());
        // Processes the teardown must kill: the broker's s_server, the
        // resolver's dnsmasq and one started by hand.
        lab.spawn_logged(Node::R3, "sleeper", &["sleep", "600"]);
        panic!("deliberate panic with the lab up");
    });
    assert!(result.is_err());
    let id = id.into_inner().unwrap();
    assert!(!id.is_empty());
    assert_eq!(our_namespaces(&id), Vec::<String>::new());
    // Nothing was added to the root namespace, and conn's resolv.conf is gone.
    let links = std::process::Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .expect("ip link");
    let links = String::from_utf8_lossy(&links.stdout);
    assert!(
        !links.contains(&id),
        "root namespace has lab links:\n{links}"
    );
    assert!(!Path::new("/etc/netns").join(format!("{id}-conn")).exists());
}

#[test]
fn addresses_follow_the_traceroute_plan() {
    assert_eq!(lab::conn_addr(), Ipv4Addr::new(198, 18, 1, 1));
    assert_eq!(lab::router_addr(1), Ipv4Addr::new(198, 18, 1, 2));
    assert_eq!(lab::router_addr(2), Ipv4Addr::new(198, 18, 2, 2));
    assert_eq!(lab::router_addr(3), Ipv4Addr::new(198, 18, 3, 2));
    assert_eq!(lab::broker_addr(), Ipv4Addr::new(198, 18, 4, 2));
    assert_eq!(lab::hop_addr(4), lab::broker_addr());
    assert_eq!(lab::resolver_addr(), Ipv4Addr::new(198, 18, 10, 2));
    for s in Scenario::all() {
        assert_eq!(Scenario::from_name(s.name()), Some(*s));
    }
    for (i, n) in Node::ALL.iter().enumerate() {
        assert_eq!(usize::from(n.index()), i);
    }
    for (hop, n) in Node::PATH.iter().enumerate() {
        assert_eq!(usize::from(n.index()), hop);
    }
}

#[test]
fn der_utc_time_is_read_as_epoch_seconds() {
    // 2026-11-21 15:56:46 UTC.
    let mut der = vec![0x30, 0x1e, 0x17, 0x0d];
    der.extend_from_slice(b"261121155646Z");
    assert_eq!(first_utc_time(&der), Some(1_795_276_606));
    der[6] = b'x';
    assert_eq!(first_utc_time(&der), None);
}

/// An extra capture beside the scenarios' own: the scenario under other
/// lab options, written as `<stem>.*`.
struct Extra {
    scenario: Scenario,
    stem: &'static str,
    opts: fn() -> LabOptions,
}

/// TLS 1.3 intercept-proxy: the certificate is encrypted, so only the
/// TTLs (the TLS peer answers from hop 1) show the interception.
const EXTRAS: &[Extra] = &[Extra {
    scenario: Scenario::InterceptProxy,
    stem: "intercept-proxy-tls13",
    opts: tls13,
}];

/// Rewrites the bundled captures in `captures/` (run as root:
/// `tests/lab/regen-captures.sh`). Each scenario is captured into a scratch
/// dir, checked like the self-tests, then copied. `ONLY=name,name` limits
/// it to some scenarios / extras.
#[test]
#[ignore = "rewrites captures/; run tests/lab/regen-captures.sh"]
fn regenerate_bundled_captures() {
    require_root!();
    let dest = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
    std::fs::create_dir_all(&dest).expect("create captures/");
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR")).join("lab-regen");
    let _ = std::fs::remove_dir_all(&scratch);
    let only = std::env::var("ONLY").unwrap_or_default();
    let wanted = |stem: &str| only.is_empty() || only.split(',').any(|o| o == stem);
    let mut runs: Vec<(Scenario, &str, LabOptions)> = Scenario::all()
        .iter()
        .chain(Scenario::PCAP_ONLY.iter())
        .map(|&s| (s, s.name(), LabOptions::default()))
        .collect();
    runs.extend(EXTRAS.iter().map(|e| (e.scenario, e.stem, (e.opts)())));
    for (scenario, stem, opts) in runs {
        if !wanted(stem) {
            continue;
        }
        let mtr =
            stem == scenario.name() && matches!(scenario, Scenario::Healthy | Scenario::RstHop2);
        let (set, _) = run_scenario_with(scenario, &scratch, stem, mtr, opts);
        let mut files = vec![
            set.sll_pcap,
            set.sll1_pcap,
            set.eth_pcap,
            set.sll_pcapng,
            set.eth_pcapng,
        ];
        if mtr {
            for ext in ["mtr.txt", "mtr.json"] {
                files.push(scratch.join(format!("{stem}.{ext}")));
            }
        }
        for f in files {
            let to = dest.join(f.file_name().expect("file name"));
            std::fs::copy(&f, &to)
                .unwrap_or_else(|e| panic!("copy {} to {}: {e}", f.display(), to.display()));
            eprintln!("wrote {}", to.display());
        }
    }
}
