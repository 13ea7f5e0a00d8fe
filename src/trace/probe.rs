//! Probes, their lifecycle, replies, and how a reply is matched to its probe.
//!
//! A probe's sequence number encodes its round and TTL (see [`probe_seq`]),
//! and [`crate::packet::emit`] writes it into fields an ICMP error quotes
//! back. [`Matcher::classify`] reads a decoded packet (from
//! [`crate::packet::decode_ip`]) and says which probe it answers:
//!
//! - ICMP errors (time exceeded, unreachable, packet too big) by the quoted
//!   header: addresses and protocol must be ours, then the quoted TCP
//!   sequence number (TCP), IPv4 ID (all IPv4 probes), ICMP echo id + seq
//!   (ICMPv6), or the UDP payload's ident + seq, else the UDP length (UDP
//!   over IPv6);
//! - echo replies by echo id + seq;
//! - TCP SYN-ACK / RST / ACK from the target by the ack number (= probe
//!   sequence number + 1) and the ports.
//!
//! Anything else is foreign and ignored.

use super::net::Instant;
use crate::packet::emit::{quoted_packet, seq_from_tcp_seq, seq_low_from_udp_len, udp_probe_id};
use crate::packet::{IcmpKind, Packet, QuotedHeader, TcpFlags, TcpInfo, Transport};
use crate::vocab::HopEstimate;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

/// Highest TTL a trace may use: the sequence number has 6 bits for it.
pub const MAX_TTL_LIMIT: u8 = 64;

/// Round slots in a sequence number (10 bits, slot 0 unused so that no
/// sequence number is 0). A reply is attributed to the latest round with
/// its slot, so replies up to 1023 rounds old still match.
const ROUND_SLOTS: u32 = 1023;

/// The probe sequence number of round `round` (0-based) at `ttl` (1..=64):
/// `slot << 6 | (ttl - 1)` with `slot = round % 1023 + 1`. Never 0.
pub fn probe_seq(round: u32, ttl: u8) -> u16 {
    debug_assert!((1..=MAX_TTL_LIMIT).contains(&ttl));
    let slot = (round % ROUND_SLOTS + 1) as u16;
    (slot << 6) | u16::from((ttl - 1) & 0x3f)
}

/// The TTL a probe sequence number carries.
pub fn ttl_of_seq(seq: u16) -> u8 {
    (seq & 0x3f) as u8 + 1
}

/// The latest round ≤ `current` whose probes carry `seq`'s round slot.
pub fn round_of_seq(seq: u16, current: u32) -> Option<u32> {
    let slot = u32::from(seq >> 6);
    if slot == 0 {
        return None;
    }
    let current_slot = current % ROUND_SLOTS + 1;
    let back = (current_slot + ROUND_SLOTS - slot) % ROUND_SLOTS;
    current.checked_sub(back)
}

/// What is traced with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TraceProtocol {
    /// ICMP / ICMPv6 echo requests.
    Icmp,
    /// TCP SYNs to this destination port.
    Tcp { port: u16 },
    /// UDP datagrams to this destination port.
    Udp { port: u16 },
}

impl TraceProtocol {
    /// IP protocol number of the probes on this address family.
    pub fn ip_number(self, v6: bool) -> u8 {
        match self {
            TraceProtocol::Icmp if v6 => 58,
            TraceProtocol::Icmp => 1,
            TraceProtocol::Tcp { .. } => 6,
            TraceProtocol::Udp { .. } => 17,
        }
    }

    pub fn port(self) -> Option<u16> {
        match self {
            TraceProtocol::Icmp => None,
            TraceProtocol::Tcp { port } | TraceProtocol::Udp { port } => Some(port),
        }
    }
}

impl fmt::Display for TraceProtocol {
    /// `icmp`, `tcp/443`, `udp/33434`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceProtocol::Icmp => f.write_str("icmp"),
            TraceProtocol::Tcp { port } => write!(f, "tcp/{port}"),
            TraceProtocol::Udp { port } => write!(f, "udp/{port}"),
        }
    }
}

/// A probe that was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    /// Sequence number: round slot and TTL, see [`probe_seq`].
    pub seq: u16,
    /// Round (0-based).
    pub round: u32,
    pub ttl: u8,
    pub protocol: TraceProtocol,
    pub sent_at: Instant,
    /// Number of the sent packet in the trace's packet record (1-based,
    /// the frame number of a pcap written from it); `None` past the record
    /// limit.
    pub frame: Option<u64>,
}

impl Probe {
    /// The last moment a reply counts as in time.
    pub fn deadline(&self, timeout: Duration) -> Instant {
        self.sent_at + timeout
    }

    /// Awaited → Complete.
    pub fn complete(self, reply: Reply) -> ProbeComplete {
        ProbeComplete {
            probe: self,
            reply,
            duplicates: 0,
        }
    }

    /// Awaited → Lost (no reply within the timeout).
    pub fn lost(self) -> ProbeLost {
        ProbeLost {
            probe: self,
            late: None,
            duplicates: 0,
        }
    }
}

/// A probe answered within the timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeComplete {
    pub probe: Probe,
    /// The first matching reply.
    pub reply: Reply,
    /// Further replies to the same probe (duplicated packets, SYN-ACK
    /// retransmissions): not counted again.
    pub duplicates: u32,
}

impl ProbeComplete {
    pub fn rtt(&self) -> Duration {
        self.reply.received_at - self.probe.sent_at
    }
}

/// A probe with no reply within the timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeLost {
    pub probe: Probe,
    /// A reply that came after the timeout: evidence of who is at the hop,
    /// but the probe stays lost (see the `stats` module).
    pub late: Option<Reply>,
    pub duplicates: u32,
}

/// A probe slot's lifecycle (one per round and TTL).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ProbeStatus {
    /// Not sent (yet).
    #[default]
    NotSent,
    /// Sent, waiting for a reply until its deadline.
    Awaited(Probe),
    /// Answered in time.
    Complete(ProbeComplete),
    /// Not answered in time.
    Lost(ProbeLost),
    /// Deliberately not sent: beyond the target's hop, or beyond the last
    /// answering hop + `max_unknown`.
    Skipped,
    /// The network refused to send it; not counted as sent.
    Failed(Probe),
}

impl ProbeStatus {
    /// The probe, for every state where one was sent (or tried).
    pub fn probe(&self) -> Option<&Probe> {
        match self {
            ProbeStatus::Awaited(p) | ProbeStatus::Failed(p) => Some(p),
            ProbeStatus::Complete(c) => Some(&c.probe),
            ProbeStatus::Lost(l) => Some(&l.probe),
            ProbeStatus::NotSent | ProbeStatus::Skipped => None,
        }
    }

    /// The reply: in time, or late.
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            ProbeStatus::Complete(c) => Some(&c.reply),
            ProbeStatus::Lost(l) => l.late.as_ref(),
            _ => None,
        }
    }
}

/// What a reply says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReplyKind {
    /// ICMP time exceeded: a router at the probe's TTL.
    TimeExceeded,
    /// ICMP destination unreachable other than "port unreachable from the target".
    DestUnreachable { code: u8, admin_prohibited: bool },
    /// ICMP fragmentation needed / ICMPv6 packet too big.
    PacketTooBig { mtu: u32 },
    /// ICMP echo reply.
    EchoReply,
    /// TCP SYN-ACK.
    TcpSynAck,
    /// TCP RST (with ACK, as an answer to a SYN is).
    TcpRst,
    /// Another TCP segment acknowledging the probe (e.g. a challenge ACK).
    TcpOther { flags: TcpFlags },
    /// ICMP port unreachable from the target: the UDP probe arrived.
    UdpPortUnreachable,
}

impl ReplyKind {
    /// Stable kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            ReplyKind::TimeExceeded => "time-exceeded",
            ReplyKind::DestUnreachable {
                admin_prohibited: true,
                ..
            } => "admin-prohibited",
            ReplyKind::DestUnreachable { .. } => "unreachable",
            ReplyKind::PacketTooBig { .. } => "packet-too-big",
            ReplyKind::EchoReply => "echo-reply",
            ReplyKind::TcpSynAck => "syn-ack",
            ReplyKind::TcpRst => "rst",
            ReplyKind::TcpOther { .. } => "tcp-other",
            ReplyKind::UdpPortUnreachable => "port-unreachable",
        }
    }
}

impl fmt::Display for ReplyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplyKind::DestUnreachable { code, .. } => write!(f, "{} (code {code})", self.name()),
            ReplyKind::PacketTooBig { mtu } => write!(f, "packet-too-big (mtu {mtu})"),
            _ => f.write_str(self.name()),
        }
    }
}

/// A packet that answers one of our probes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    /// Source address of the reply.
    pub from: IpAddr,
    pub kind: ReplyKind,
    /// TTL / hop limit of the reply as received.
    pub ttl: u8,
    /// IPv4 ID of the reply (`None` on IPv6).
    pub ip_id: Option<u16>,
    pub received_at: Instant,
    /// Number of the reply in the trace's packet record (1-based), `None`
    /// past the record limit.
    pub frame: Option<u64>,
    /// Sequence number of the probe it answers.
    pub probe_seq: u16,
    /// For ICMP errors: the TTL of our probe when the replier saw it.
    pub quoted_ttl: Option<u8>,
    /// For TCP answers: the segment (flags, window, MSS, options length).
    pub tcp: Option<TcpInfo>,
}

impl Reply {
    /// The hop the reply's sender is at, judged from the reply's TTL.
    pub fn hop_estimate(&self) -> HopEstimate {
        HopEstimate::from_ttl(self.ttl)
    }

    /// An answer from the target itself (or from something using its
    /// address): it marks the target's hop.
    pub fn is_target_answer(&self, target: IpAddr) -> bool {
        self.from == target
            && !matches!(
                self.kind,
                ReplyKind::TimeExceeded | ReplyKind::PacketTooBig { .. }
            )
    }
}

/// The probe a reply names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeRef {
    /// The full sequence number.
    Seq(u16),
    /// Only its low byte (TTL and the round slot's two low bits), from the
    /// UDP length quoted in an ICMPv6 error.
    SeqLow(u8),
}

/// What identifies our probes and their answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Matcher {
    pub source: IpAddr,
    pub target: IpAddr,
    pub protocol: TraceProtocol,
    pub ident: u16,
    /// TCP/UDP source port of the probes.
    pub src_port: u16,
}

impl Matcher {
    /// Which probe `packet` (decoded from `raw`) answers, and how; `None`
    /// for packets that are not answers to this trace.
    pub fn classify(&self, packet: &Packet, raw: &[u8]) -> Option<(ProbeRef, ReplyKind)> {
        if packet.dst != self.source {
            return None;
        }
        match &packet.transport {
            Transport::Icmp(icmp) => match icmp.kind {
                IcmpKind::EchoReply { id, seq } => (self.protocol == TraceProtocol::Icmp
                    && id == self.ident
                    && packet.src == self.target)
                    .then_some((ProbeRef::Seq(seq), ReplyKind::EchoReply)),
                IcmpKind::TimeExceeded
                | IcmpKind::Unreachable { .. }
                | IcmpKind::PacketTooBig { .. } => {
                    let quoted = icmp.quoted.as_ref()?;
                    let probe = self.quoted_probe(quoted, raw)?;
                    let kind = match icmp.kind {
                        IcmpKind::TimeExceeded => ReplyKind::TimeExceeded,
                        IcmpKind::PacketTooBig { mtu } => ReplyKind::PacketTooBig { mtu },
                        _ => {
                            // Port unreachable: v4 code 3, v6 code 4.
                            let port_code = if icmp.v6 { 4 } else { 3 };
                            if matches!(self.protocol, TraceProtocol::Udp { .. })
                                && icmp.code == port_code
                                && packet.src == self.target
                            {
                                ReplyKind::UdpPortUnreachable
                            } else {
                                ReplyKind::DestUnreachable {
                                    code: icmp.code,
                                    admin_prohibited: matches!(
                                        icmp.kind,
                                        IcmpKind::Unreachable {
                                            admin_prohibited: true
                                        }
                                    ),
                                }
                            }
                        }
                    };
                    Some((probe, kind))
                }
                _ => None,
            },
            Transport::Tcp(t) => {
                let TraceProtocol::Tcp { port } = self.protocol else {
                    return None;
                };
                if packet.src != self.target
                    || t.src_port != port
                    || t.dst_port != self.src_port
                    || !t.flags.ack()
                {
                    return None;
                }
                let seq = seq_from_tcp_seq(self.ident, t.ack.wrapping_sub(1))?;
                let kind = if t.flags.rst() {
                    ReplyKind::TcpRst
                } else if t.flags.syn() {
                    ReplyKind::TcpSynAck
                } else {
                    ReplyKind::TcpOther { flags: t.flags }
                };
                Some((ProbeRef::Seq(seq), kind))
            }
            _ => None,
        }
    }

    /// The probe an ICMP error's quote names.
    fn quoted_probe(&self, q: &QuotedHeader, raw: &[u8]) -> Option<ProbeRef> {
        let v6 = self.target.is_ipv6();
        if q.src != self.source || q.dst != self.target || q.protocol != self.protocol.ip_number(v6)
        {
            return None;
        }
        let ports_ok = |dst_port: u16| {
            q.src_port.is_none_or(|p| p == self.src_port)
                && q.dst_port.is_none_or(|p| p == dst_port)
        };
        let ip_id = q.ip_id.filter(|&id| id != 0).map(ProbeRef::Seq);
        match self.protocol {
            TraceProtocol::Tcp { port } => {
                if !ports_ok(port) {
                    return None;
                }
                // A firewall that rewrites sequence numbers beyond itself
                // still leaves the IPv4 ID.
                q.tcp_seq
                    .and_then(|s| seq_from_tcp_seq(self.ident, s))
                    .map(ProbeRef::Seq)
                    .or(ip_id)
            }
            TraceProtocol::Udp { port } => {
                if !ports_ok(port) {
                    return None;
                }
                ip_id.or_else(|| {
                    let quote = quoted_packet(raw)?;
                    let Transport::Udp { len, .. } = quote.packet.transport else {
                        return None;
                    };
                    match udp_probe_id(quote.payload) {
                        Some((ident, seq)) if ident == self.ident => Some(ProbeRef::Seq(seq)),
                        Some(_) => None,
                        // Quote cut after the UDP header.
                        None => seq_low_from_udp_len(len).map(ProbeRef::SeqLow),
                    }
                })
            }
            TraceProtocol::Icmp => {
                // The quoted echo id tells our trace from another one to the
                // same target; an IPv4 quote too short to hold it still has the ID.
                match quoted_packet(raw).map(|d| d.packet.transport) {
                    Some(Transport::Icmp(i)) => match i.kind {
                        IcmpKind::EchoRequest { id, seq } if id == self.ident => {
                            Some(ProbeRef::Seq(seq))
                        }
                        _ => None,
                    },
                    _ => ip_id,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_roundtrip_and_never_zero() {
        for round in [0u32, 1, 2, 1021, 1022, 1023, 5000] {
            for ttl in [1u8, 2, 30, 64] {
                let s = probe_seq(round, ttl);
                assert_ne!(s, 0);
                assert_eq!(ttl_of_seq(s), ttl);
                assert_eq!(round_of_seq(s, round), Some(round));
                // Still found a few rounds later.
                assert_eq!(round_of_seq(s, round + 3), Some(round));
            }
        }
        // A seq from a round that has not happened yet is not ours.
        assert_eq!(round_of_seq(probe_seq(5, 1), 3), None);
        assert_eq!(round_of_seq(0x003f, 10), None);
    }

    #[test]
    fn lifecycle_transitions() {
        let p = Probe {
            seq: probe_seq(0, 3),
            round: 0,
            ttl: 3,
            protocol: TraceProtocol::Tcp { port: 443 },
            sent_at: Instant(1_000),
            frame: Some(1),
        };
        assert_eq!(p.deadline(Duration::from_nanos(500)), Instant(1_500));
        let r = Reply {
            from: "10.0.0.1".parse().unwrap(),
            kind: ReplyKind::TcpRst,
            ttl: 64,
            ip_id: Some(0),
            received_at: Instant(1_200),
            frame: Some(2),
            probe_seq: p.seq,
            quoted_ttl: None,
            tcp: None,
        };
        let c = p.complete(r);
        assert_eq!(c.rtt(), Duration::from_nanos(200));
        assert_eq!(ProbeStatus::Complete(c).reply(), Some(&r));
        assert_eq!(ProbeStatus::Lost(p.lost()).reply(), None);
        assert_eq!(r.hop_estimate().hop, 1);
        assert!(r.is_target_answer("10.0.0.1".parse().unwrap()));
        assert_eq!(TraceProtocol::Tcp { port: 443 }.to_string(), "tcp/443");
        assert_eq!(
            ReplyKind::DestUnreachable {
                code: 13,
                admin_prohibited: true
            }
            .to_string(),
            "admin-prohibited (code 13)"
        );
    }

    use crate::packet::emit::{ProbeKind, ProbeSpec, emit};
    use crate::packet::{Direction, decode_ip};
    use etherparse::{Icmpv4Type, PacketBuilder, icmpv4};

    const SRC: [u8; 4] = [10, 0, 0, 2];
    const DST: [u8; 4] = [198, 18, 4, 2];

    fn matcher(protocol: TraceProtocol) -> Matcher {
        Matcher {
            source: IpAddr::from(SRC),
            target: IpAddr::from(DST),
            protocol,
            ident: 0x3131,
            src_port: 50505,
        }
    }

    fn probe(kind: ProbeKind, ident: u16, seq: u16) -> Vec<u8> {
        emit(&ProbeSpec {
            src: IpAddr::from(SRC),
            dst: IpAddr::from(DST),
            ttl: 3,
            ident,
            seq,
            kind,
        })
        .unwrap()
        .bytes
    }

    fn time_exceeded(quote: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ipv4([10, 0, 3, 1], SRC, 253)
            .icmpv4(Icmpv4Type::TimeExceeded(
                icmpv4::TimeExceededCode::TtlExceededInTransit,
            ))
            .write(&mut out, &quote[..28])
            .unwrap();
        out
    }

    fn classify(m: &Matcher, raw: &[u8]) -> Option<(ProbeRef, ReplyKind)> {
        let p = decode_ip(1, 0, Direction::In, raw).unwrap().packet;
        m.classify(&p, raw)
    }

    const SYN: ProbeKind = ProbeKind::TcpSyn {
        src_port: 50505,
        dst_port: 443,
        mss: 1460,
    };

    #[test]
    fn quoted_tcp_sequence_or_ip_id_when_a_firewall_rewrote_the_sequence() {
        let m = matcher(TraceProtocol::Tcp { port: 443 });
        let seq = probe_seq(4, 3);
        let syn = probe(SYN, 0x3131, seq);
        assert_eq!(
            classify(&m, &time_exceeded(&syn)),
            Some((ProbeRef::Seq(seq), ReplyKind::TimeExceeded))
        );
        // Sequence number randomised by a firewall (TCP seq at bytes 24..28).
        let mut rewritten = syn.clone();
        rewritten[24..28].copy_from_slice(&0xdead_beef_u32.to_be_bytes());
        assert_eq!(
            classify(&m, &time_exceeded(&rewritten)),
            Some((ProbeRef::Seq(seq), ReplyKind::TimeExceeded))
        );
        // Another flow (source port) is not ours.
        let other = probe(
            ProbeKind::TcpSyn {
                src_port: 50506,
                dst_port: 443,
                mss: 1460,
            },
            0x3131,
            seq,
        );
        assert_eq!(classify(&m, &time_exceeded(&other)), None);
    }

    #[test]
    fn icmp_echo_of_another_trace_is_foreign() {
        let m = matcher(TraceProtocol::Icmp);
        let seq = probe_seq(0, 3);
        let ours = probe(ProbeKind::IcmpEcho, 0x3131, seq);
        let theirs = probe(ProbeKind::IcmpEcho, 0x3132, seq);
        assert_eq!(
            classify(&m, &time_exceeded(&ours)),
            Some((ProbeRef::Seq(seq), ReplyKind::TimeExceeded))
        );
        // Same IP ID, other echo id: another pathproof tracing the same target.
        assert_eq!(classify(&m, &time_exceeded(&theirs)), None);
        // Our echo reply, and one for another id.
        for (id, want) in [(0x3131, true), (0x3132, false)] {
            let mut out = Vec::new();
            PacketBuilder::ipv4(DST, SRC, 61)
                .icmpv4_echo_reply(id, seq)
                .write(&mut out, &[0; 8])
                .unwrap();
            assert_eq!(classify(&m, &out).is_some(), want);
        }
    }

    #[test]
    fn tcp_answers_by_ack_number() {
        let m = matcher(TraceProtocol::Tcp { port: 443 });
        let seq = probe_seq(2, 7);
        let ack = crate::packet::emit::tcp_seq(0x3131, seq).wrapping_add(1);
        let answer = |from: [u8; 4], sport: u16, ack: u32, rst: bool| {
            let mut out = Vec::new();
            let b = PacketBuilder::ipv4(from, SRC, 64).tcp(sport, 50505, 0, 0);
            let b = if rst { b.rst() } else { b.syn() };
            b.ack(ack).write(&mut out, &[]).unwrap();
            out
        };
        assert_eq!(
            classify(&m, &answer(DST, 443, ack, true)),
            Some((ProbeRef::Seq(seq), ReplyKind::TcpRst))
        );
        assert_eq!(
            classify(&m, &answer(DST, 443, ack, false)),
            Some((ProbeRef::Seq(seq), ReplyKind::TcpSynAck))
        );
        assert_eq!(classify(&m, &answer([1, 2, 3, 4], 443, ack, true)), None);
        assert_eq!(classify(&m, &answer(DST, 444, ack, true)), None);
        assert_eq!(classify(&m, &answer(DST, 443, ack + 0x1_0000, true)), None);
    }
}
