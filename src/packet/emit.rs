//! Probe packets as IP bytes, and the probe identity they carry.
//!
//! [`emit`] builds a traceroute probe (ICMP echo, TCP SYN or UDP, IPv4 or
//! IPv6) as a complete IP packet for a raw socket that takes the IP header
//! (`IP_HDRINCL`, or an IPv6 `IPPROTO_RAW` socket). Every checksum is
//! computed here: IPv4 header, and TCP/UDP/ICMP with the IPv6 pseudo-header
//! where one applies.
//!
//! # Paris-style flow identity
//!
//! Load balancers (ECMP) hash the addresses, the protocol and the first four
//! bytes of the transport header (ports; for ICMP: type, code, checksum).
//! Classic traceroute varies exactly those bytes and sees false diamonds and
//! loops (Augustin et al., IMC 2006). Here every probe of one trace has the
//! same flow identity:
//!
//! | protocol | constant (hashed)                       | varies per probe (quoted back)            |
//! |----------|-----------------------------------------|-------------------------------------------|
//! | ICMP     | type, code, **checksum**, echo id       | echo seq (+ IPv4 ID); a payload word keeps the checksum at [`FLOW_CHECKSUM`] |
//! | TCP      | ports                                   | sequence number `ident << 16 \| seq` (+ IPv4 ID) |
//! | UDP      | ports, **checksum** ([`FLOW_CHECKSUM`])  | UDP length `14 + (seq & 0xff)`, payload `ident, seq` (+ IPv4 ID); a payload word keeps the checksum constant |
//!
//! IPv6 probes carry a constant flow label (the trace `ident`) and IPv4
//! probes set DF. The IPv4 ID is `seq`, never 0 (Linux fills in its own ID
//! for a raw packet whose ID is 0), so any IPv4 ICMP error that quotes the
//! probe names it. IPv6 has no ID: an ICMPv6 error names the probe through
//! the quoted echo seq, TCP sequence number, or UDP payload (ICMPv6 errors
//! quote as much of the probe as fits in 1280 bytes, RFC 4443) and, when
//! the quote is cut short, the UDP length (the sequence's low byte).
//!
//! # Reading the identity back
//!
//! [`QuotedHeader`](super::QuotedHeader) carries the quoted IP ID, ports and
//! TCP sequence number but not the quoted ICMP echo id/seq nor the quoted UDP
//! length and payload. [`quoted_packet`] supplies those: it decodes the
//! quoted probe with the same decoder ([`decode_ip`]), and
//! [`udp_probe_id`] reads the identity from a UDP payload, so the trace
//! engine reads no bytes itself.

use super::{Decoded, Direction, decode_ip};
use etherparse::{
    IpHeaders, IpNumber, Ipv4Header, Ipv6FlowLabel, Ipv6Header, LaxSlicedPacket, PacketBuilder,
    TcpOptionElement, TransportSlice,
};
use std::net::IpAddr;

/// ICMP and UDP probes of every trace carry this checksum: constant, so that
/// an ECMP hash over the first transport bytes puts every probe on one path.
pub const FLOW_CHECKSUM: u16 = 0x7070;

/// ICMP echo payload length: the compensation word, a marker, padding.
pub const ICMP_PAYLOAD_LEN: usize = 32;

/// Marker after the compensation word of ICMP and UDP probes, so that a
/// probe is recognisable in a capture.
const MARKER: &[u8] = b"pathproof";

/// Offset of the checksum in the ICMP (v4 and v6) and UDP headers.
const ICMP_CHECKSUM_AT: usize = 2;
const UDP_CHECKSUM_AT: usize = 6;

/// The transport of a probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeKind {
    /// ICMP (or ICMPv6) echo request with id = the trace `ident`.
    IcmpEcho,
    /// TCP SYN with a maximum-segment-size option.
    TcpSyn {
        src_port: u16,
        dst_port: u16,
        mss: u16,
    },
    /// UDP datagram.
    Udp { src_port: u16, dst_port: u16 },
}

/// One probe to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeSpec {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// Identity of the whole trace: ICMP echo id, high half of the TCP
    /// sequence number, IPv6 flow label.
    pub ident: u16,
    /// Identity of this probe inside the trace; must not be 0.
    pub seq: u16,
    pub kind: ProbeKind,
}

/// A built probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Emitted {
    /// The whole IP packet.
    pub bytes: Vec<u8>,
    /// Length of the IP header (20 or 40): a socket that sets the TTL / hop
    /// limit itself sends `bytes[ip_header_len..]`.
    pub ip_header_len: usize,
}

/// Why a probe could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EmitError {
    #[error("source {src} and destination {dst} are not of the same IP version")]
    MixedFamilies { src: IpAddr, dst: IpAddr },
    #[error("TTL 0 would not leave the host")]
    ZeroTtl,
    #[error("probe sequence 0 is reserved (the kernel replaces an IPv4 ID of 0)")]
    ZeroSeq,
    #[error("a {kind} probe cannot be {size} bytes long (from {min} to {max})")]
    SizeOutOfRange {
        kind: &'static str,
        size: u32,
        min: u32,
        max: u32,
    },
    #[error("UDP probes have no sized form (their length carries the probe identity)")]
    SizeUnsupported,
}

/// The TCP sequence number of a probe: trace identity in the high half.
pub fn tcp_seq(ident: u16, seq: u16) -> u32 {
    (u32::from(ident) << 16) | u32::from(seq)
}

/// The probe sequence a TCP sequence number carries, if it has our identity.
pub fn seq_from_tcp_seq(ident: u16, tcp_seq: u32) -> Option<u16> {
    ((tcp_seq >> 16) as u16 == ident).then_some(tcp_seq as u16)
}

/// UDP payload bytes before the padding: compensation word, ident, seq.
const UDP_FIXED: u16 = 6;

/// UDP length (header included) of the probe with this sequence.
pub fn udp_len(seq: u16) -> u16 {
    8 + UDP_FIXED + (seq & 0xff)
}

/// The low byte of the probe sequence that a quoted UDP length carries.
pub fn seq_low_from_udp_len(len: u16) -> Option<u8> {
    len.checked_sub(8 + UDP_FIXED)
        .filter(|&l| l <= 0xff)
        .map(|l| l as u8)
}

/// `(ident, seq)` written in a UDP probe's payload, if the payload holds them.
pub fn udp_probe_id(payload: &[u8]) -> Option<(u16, u16)> {
    let b = payload.get(2..6)?;
    Some((
        u16::from_be_bytes([b[0], b[1]]),
        u16::from_be_bytes([b[2], b[3]]),
    ))
}

/// Builds a probe.
pub fn emit(spec: &ProbeSpec) -> Result<Emitted, EmitError> {
    build(spec, None)
}

/// Builds an ICMP echo or TCP SYN probe whose IP packet is exactly
/// `total_len` bytes long, for path-MTU probing: the padding is zeros after
/// the usual payload start (ICMP: compensation word and marker; TCP: the
/// marker, as SYN data the receiver ignores). Everything else, checksum
/// pinning and flow identity included, is as [`emit`] builds it. UDP probes
/// are refused: their length carries the probe identity.
pub fn emit_sized(spec: &ProbeSpec, total_len: u16) -> Result<Emitted, EmitError> {
    let v6 = spec.dst.is_ipv6();
    let ip = if v6 {
        Ipv6Header::LEN
    } else {
        Ipv4Header::MIN_LEN
    };
    let (kind, fixed) = match spec.kind {
        // Echo header, then the compensation word and the marker.
        ProbeKind::IcmpEcho => ("ICMP echo", 8 + 2 + MARKER.len()),
        // TCP header with the 4-byte MSS option.
        ProbeKind::TcpSyn { .. } => ("TCP SYN", TCP_SYN_HEADER_LEN),
        ProbeKind::Udp { .. } => return Err(EmitError::SizeUnsupported),
    };
    let min = ip + fixed;
    // IPv4 total length and IPv6 payload length are both 16 bits.
    let max = if v6 {
        usize::from(u16::MAX) + ip
    } else {
        usize::from(u16::MAX)
    };
    let total = usize::from(total_len);
    if total < min {
        return Err(EmitError::SizeOutOfRange {
            kind,
            size: u32::from(total_len),
            min: min as u32,
            max: max as u32,
        });
    }
    let transport_header = match spec.kind {
        ProbeKind::IcmpEcho => 8,
        _ => TCP_SYN_HEADER_LEN,
    };
    build(spec, Some(total - ip - transport_header))
}

/// TCP header of a SYN probe: 20 bytes and the MSS option.
const TCP_SYN_HEADER_LEN: usize = 24;

/// Builds a probe; `payload_len`: the transport payload length of a sized
/// probe (`None`: the usual probe).
fn build(spec: &ProbeSpec, payload_len: Option<usize>) -> Result<Emitted, EmitError> {
    if spec.ttl == 0 {
        return Err(EmitError::ZeroTtl);
    }
    if spec.seq == 0 {
        return Err(EmitError::ZeroSeq);
    }
    let ip = match (spec.src, spec.dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let mut h = Ipv4Header::new(0, spec.ttl, IpNumber::TCP, src.octets(), dst.octets())
                .expect("zero payload length fits");
            h.identification = spec.seq;
            h.dont_fragment = true;
            IpHeaders::Ipv4(h, Default::default())
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => IpHeaders::Ipv6(
            Ipv6Header {
                traffic_class: 0,
                flow_label: Ipv6FlowLabel::try_new(u32::from(spec.ident))
                    .expect("16 bits fit in a 20-bit flow label"),
                payload_length: 0,
                next_header: IpNumber::TCP,
                hop_limit: spec.ttl,
                source: src.octets(),
                destination: dst.octets(),
            },
            Default::default(),
        ),
        (src, dst) => return Err(EmitError::MixedFamilies { src, dst }),
    };
    let v6 = spec.dst.is_ipv6();
    let ip_header_len = if v6 {
        Ipv6Header::LEN
    } else {
        Ipv4Header::MIN_LEN
    };
    let builder = PacketBuilder::ip(ip);
    let mut bytes = Vec::with_capacity(ip_header_len + 300 + payload_len.unwrap_or(0));
    // Writing into a Vec only fails on lengths far beyond what is built here.
    match spec.kind {
        ProbeKind::IcmpEcho => {
            let mut payload = vec![0u8; payload_len.unwrap_or(ICMP_PAYLOAD_LEN)];
            payload[2..2 + MARKER.len()].copy_from_slice(MARKER);
            if v6 {
                builder
                    .icmpv6_echo_request(spec.ident, spec.seq)
                    .write(&mut bytes, &payload)
            } else {
                builder
                    .icmpv4_echo_request(spec.ident, spec.seq)
                    .write(&mut bytes, &payload)
            }
            .expect("ICMP probe within the IP length limit");
            pin_checksum(&mut bytes[ip_header_len..], ICMP_CHECKSUM_AT, 8);
        }
        ProbeKind::TcpSyn {
            src_port,
            dst_port,
            mss,
        } => {
            let mut payload = vec![0u8; payload_len.unwrap_or(0)];
            let marker = MARKER.len().min(payload.len());
            payload[..marker].copy_from_slice(&MARKER[..marker]);
            builder
                .tcp(src_port, dst_port, tcp_seq(spec.ident, spec.seq), 64240)
                .syn()
                .options(&[TcpOptionElement::MaximumSegmentSize(mss)])
                .expect("one MSS option fits")
                .write(&mut bytes, &payload)
                .expect("TCP probe within the IP length limit");
        }
        ProbeKind::Udp { src_port, dst_port } => {
            let mut payload = vec![0u8; usize::from(udp_len(spec.seq)) - 8];
            payload[2..4].copy_from_slice(&spec.ident.to_be_bytes());
            payload[4..6].copy_from_slice(&spec.seq.to_be_bytes());
            let fixed = usize::from(UDP_FIXED);
            let marker = MARKER.len().min(payload.len() - fixed);
            payload[fixed..fixed + marker].copy_from_slice(&MARKER[..marker]);
            builder
                .udp(src_port, dst_port)
                .write(&mut bytes, &payload)
                .expect("small UDP probe");
            pin_checksum(&mut bytes[ip_header_len..], UDP_CHECKSUM_AT, 8);
        }
    }
    Ok(Emitted {
        bytes,
        ip_header_len,
    })
}

/// One's complement addition (RFC 1071).
fn ones_add(a: u16, b: u16) -> u16 {
    let s = u32::from(a) + u32::from(b);
    ((s & 0xffff) + (s >> 16)) as u16
}

/// Rewrites a transport segment whose checksum etherparse computed with a
/// zero word at `comp_at` so that the checksum becomes [`FLOW_CHECKSUM`]
/// while the segment still verifies: the word at `comp_at` absorbs the
/// difference (Paris traceroute's trick, RFC 1624 arithmetic).
fn pin_checksum(segment: &mut [u8], checksum_at: usize, comp_at: usize) {
    let current = u16::from_be_bytes([segment[checksum_at], segment[checksum_at + 1]]);
    // Sum of the covered words (pseudo-header included) is !current; we want
    // it to become !FLOW_CHECKSUM: add the difference in the free word.
    let comp = ones_add(!FLOW_CHECKSUM, current);
    segment[comp_at..comp_at + 2].copy_from_slice(&comp.to_be_bytes());
    segment[checksum_at..checksum_at + 2].copy_from_slice(&FLOW_CHECKSUM.to_be_bytes());
}

/// Decodes the packet quoted by an ICMP or ICMPv6 error (`icmp_error` starts
/// with the error's IP header), with the crate's one decoder.
///
/// The result is what the quote holds: the IP header and at least the first
/// 8 transport bytes of our probe (enough for ports, UDP length, ICMP echo
/// id/seq), often the whole probe (then `payload` holds the UDP payload).
/// Its `frame` and `ts_ns` are 0. `None` when `icmp_error` is not an ICMP
/// error carrying an IP packet.
pub fn quoted_packet(icmp_error: &[u8]) -> Option<Decoded<'_>> {
    let sliced = LaxSlicedPacket::from_ip(icmp_error).ok()?;
    let quote = match &sliced.transport {
        Some(TransportSlice::Icmpv4(i)) if matches!(i.type_u8(), 3 | 4 | 5 | 11 | 12) => {
            i.payload()
        }
        Some(TransportSlice::Icmpv6(i)) if i.type_u8() < 128 => i.payload(),
        _ => return None,
    };
    decode_ip(0, 0, Direction::Unknown, quote).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{IcmpKind, Transport};
    use etherparse::{Icmpv4Type, Icmpv6Type, SlicedPacket};

    const V4_SRC: [u8; 4] = [10, 0, 0, 2];
    const V4_DST: [u8; 4] = [198, 18, 4, 2];
    const V6_SRC: &str = "fd00::2";
    const V6_DST: &str = "fd00:4::2";

    fn spec(v6: bool, ttl: u8, seq: u16, kind: ProbeKind) -> ProbeSpec {
        let (src, dst) = if v6 {
            (V6_SRC.parse().unwrap(), V6_DST.parse().unwrap())
        } else {
            (IpAddr::from(V4_SRC), IpAddr::from(V4_DST))
        };
        ProbeSpec {
            src,
            dst,
            ttl,
            ident: 0x4242,
            seq,
            kind,
        }
    }

    const TCP: ProbeKind = ProbeKind::TcpSyn {
        src_port: 40123,
        dst_port: 443,
        mss: 1460,
    };
    const UDP: ProbeKind = ProbeKind::Udp {
        src_port: 40123,
        dst_port: 33434,
    };

    /// Independent RFC 1071 sum over a pseudo-header and a segment.
    fn verifies(src: IpAddr, dst: IpAddr, proto: u8, segment: &[u8], pseudo: bool) -> bool {
        let mut words: Vec<u8> = Vec::new();
        if pseudo {
            match (src, dst) {
                (IpAddr::V4(s), IpAddr::V4(d)) => {
                    words.extend_from_slice(&s.octets());
                    words.extend_from_slice(&d.octets());
                    words.extend_from_slice(&[0, proto]);
                    words.extend_from_slice(&(segment.len() as u16).to_be_bytes());
                }
                (IpAddr::V6(s), IpAddr::V6(d)) => {
                    words.extend_from_slice(&s.octets());
                    words.extend_from_slice(&d.octets());
                    words.extend_from_slice(&(segment.len() as u32).to_be_bytes());
                    words.extend_from_slice(&[0, 0, 0, proto]);
                }
                _ => unreachable!(),
            }
        }
        words.extend_from_slice(segment);
        if words.len() % 2 == 1 {
            words.push(0);
        }
        let sum = words.chunks(2).fold(0u16, |acc, w| {
            ones_add(acc, u16::from_be_bytes([w[0], w[1]]))
        });
        sum == 0xffff
    }

    fn segment(e: &Emitted) -> &[u8] {
        &e.bytes[e.ip_header_len..]
    }

    #[test]
    fn icmp_v4_echo_every_field() {
        let s = spec(false, 7, 0x01c6, ProbeKind::IcmpEcho);
        let e = emit(&s).unwrap();
        assert_eq!(e.ip_header_len, 20);
        assert_eq!(e.bytes.len(), 20 + 8 + ICMP_PAYLOAD_LEN);
        let p = decode_ip(3, 99, Direction::Out, &e.bytes).unwrap().packet;
        assert_eq!((p.frame, p.ts_ns, p.direction), (3, 99, Direction::Out));
        assert_eq!((p.src, p.dst), (s.src, s.dst));
        assert_eq!((p.ttl, p.ip_id, p.df), (7, Some(0x01c6), true));
        assert_eq!(p.ip_len as usize, e.bytes.len());
        let icmp = p.icmp().unwrap();
        assert!(!icmp.v6);
        assert_eq!((icmp.icmp_type, icmp.code), (8, 0));
        assert_eq!(
            icmp.kind,
            IcmpKind::EchoRequest {
                id: 0x4242,
                seq: 0x01c6
            }
        );
        let seg = segment(&e);
        assert_eq!(u16::from_be_bytes([seg[2], seg[3]]), FLOW_CHECKSUM);
        assert!(verifies(s.src, s.dst, 1, seg, false));
        // etherparse agrees on both checksums.
        let sliced = SlicedPacket::from_ip(&e.bytes).unwrap();
        let Some(etherparse::NetSlice::Ipv4(v4)) = &sliced.net else {
            panic!("not v4")
        };
        let h = v4.header().to_header();
        assert_eq!(h.header_checksum, h.calc_header_checksum());
        let Some(TransportSlice::Icmpv4(i)) = &sliced.transport else {
            panic!("not icmp")
        };
        assert_eq!(
            i.icmp_type().calc_checksum(i.payload()),
            i.checksum(),
            "etherparse checksum"
        );
        assert_eq!(&i.payload()[2..2 + MARKER.len()], MARKER);
    }

    #[test]
    fn icmp_v6_echo_every_field() {
        let s = spec(true, 12, 0x0fff, ProbeKind::IcmpEcho);
        let e = emit(&s).unwrap();
        assert_eq!(e.ip_header_len, 40);
        let p = decode_ip(1, 0, Direction::Out, &e.bytes).unwrap().packet;
        assert_eq!((p.src, p.dst, p.ttl, p.ip_id), (s.src, s.dst, 12, None));
        assert_eq!(p.ip_len as usize, e.bytes.len());
        let icmp = p.icmp().unwrap();
        assert!(icmp.v6);
        assert_eq!((icmp.icmp_type, icmp.code), (128, 0));
        assert_eq!(
            icmp.kind,
            IcmpKind::EchoRequest {
                id: 0x4242,
                seq: 0x0fff
            }
        );
        let seg = segment(&e);
        assert_eq!(u16::from_be_bytes([seg[2], seg[3]]), FLOW_CHECKSUM);
        assert!(verifies(s.src, s.dst, 58, seg, true));
        let sliced = SlicedPacket::from_ip(&e.bytes).unwrap();
        let Some(etherparse::NetSlice::Ipv6(v6)) = &sliced.net else {
            panic!("not v6")
        };
        let h = v6.header().to_header();
        assert_eq!(h.flow_label.value(), 0x4242);
        let Some(TransportSlice::Icmpv6(i)) = &sliced.transport else {
            panic!("not icmpv6")
        };
        assert_eq!(
            i.icmp_type()
                .calc_checksum(h.source, h.destination, i.payload())
                .unwrap(),
            i.checksum()
        );
        assert!(matches!(i.icmp_type(), Icmpv6Type::EchoRequest(_)));
    }

    #[test]
    fn tcp_syn_v4_and_v6_every_field() {
        for v6 in [false, true] {
            let s = spec(v6, 3, 0x0203, TCP);
            let e = emit(&s).unwrap();
            let d = decode_ip(1, 0, Direction::Out, &e.bytes).unwrap();
            let p = d.packet;
            assert_eq!((p.src, p.dst, p.ttl), (s.src, s.dst, 3));
            assert_eq!(p.ip_id, (!v6).then_some(0x0203));
            let t = p.tcp().unwrap();
            assert_eq!((t.src_port, t.dst_port), (40123, 443));
            assert_eq!(t.seq, 0x4242_0203);
            assert_eq!(seq_from_tcp_seq(0x4242, t.seq), Some(0x0203));
            assert_eq!(seq_from_tcp_seq(0x4243, t.seq), None);
            assert_eq!(t.ack, 0);
            assert!(t.flags.syn() && !t.flags.ack() && !t.flags.rst());
            assert_eq!(t.flags.to_string(), "SYN");
            assert_eq!((t.mss, t.options_len, t.window), (Some(1460), 4, 64240));
            assert_eq!((t.payload_len, d.payload.len()), (0, 0));
            assert!(verifies(s.src, s.dst, 6, segment(&e), true), "v6={v6}");
        }
    }

    #[test]
    fn udp_v4_and_v6_every_field() {
        for v6 in [false, true] {
            for seq in [1u16, 0x0140, 0x7fff, 0xffff] {
                let s = spec(v6, 9, seq, UDP);
                let e = emit(&s).unwrap();
                let d = decode_ip(1, 0, Direction::Out, &e.bytes).unwrap();
                let p = d.packet;
                assert_eq!((p.src, p.dst, p.ttl), (s.src, s.dst, 9));
                assert_eq!(p.ip_id, (!v6).then_some(seq));
                let Transport::Udp {
                    src_port,
                    dst_port,
                    len,
                } = p.transport
                else {
                    panic!("not udp")
                };
                assert_eq!((src_port, dst_port), (40123, 33434));
                assert_eq!(len, udp_len(seq));
                assert_eq!(seq_low_from_udp_len(len), Some(seq as u8));
                assert_eq!(d.payload.len(), usize::from(len) - 8);
                assert_eq!(udp_probe_id(d.payload), Some((0x4242, seq)));
                let seg = segment(&e);
                assert_eq!(u16::from_be_bytes([seg[6], seg[7]]), FLOW_CHECKSUM);
                assert!(verifies(s.src, s.dst, 17, seg, true), "v6={v6} seq={seq}");
            }
        }
    }

    #[test]
    fn flow_identity_is_constant_across_ttls_and_seqs() {
        // The bytes an ECMP hash reads: addresses, protocol, first 4 transport bytes.
        for kind in [ProbeKind::IcmpEcho, TCP, UDP] {
            for v6 in [false, true] {
                let key = |ttl: u8, seq: u16| {
                    let e = emit(&spec(v6, ttl, seq, kind)).unwrap();
                    let seg = segment(&e).to_vec();
                    let p = decode_ip(1, 0, Direction::Out, &e.bytes).unwrap().packet;
                    (p.src, p.dst, seg[..4].to_vec())
                };
                let first = key(1, 1);
                for (ttl, seq) in [(2u8, 2u16), (30, 0x3fff), (64, 0xfffe), (5, 0x8001)] {
                    assert_eq!(key(ttl, seq), first, "{kind:?} v6={v6}");
                }
            }
        }
    }

    #[test]
    fn icmp_checksum_constant_and_valid_for_every_seq() {
        for v6 in [false, true] {
            let proto = if v6 { 58 } else { 1 };
            for seq in (1..=u16::MAX).step_by(97).chain([u16::MAX, 0x00ff, 0xff00]) {
                let s = spec(v6, 4, seq, ProbeKind::IcmpEcho);
                let e = emit(&s).unwrap();
                let seg = segment(&e);
                assert_eq!(u16::from_be_bytes([seg[2], seg[3]]), FLOW_CHECKSUM);
                assert!(verifies(s.src, s.dst, proto, seg, v6), "seq {seq}");
            }
        }
    }

    #[test]
    fn whole_quoted_udp_probe_gives_its_full_identity() {
        let s = spec(true, 6, 0x7345, UDP);
        let probe = emit(&s).unwrap();
        let mut err = Vec::new();
        PacketBuilder::ipv6([0xfd; 16], [0xfe; 16], 64)
            .icmpv6(Icmpv6Type::TimeExceeded(
                etherparse::icmpv6::TimeExceededCode::HopLimitExceeded,
            ))
            .write(&mut err, &probe.bytes)
            .unwrap();
        let d = quoted_packet(&err).unwrap();
        assert_eq!(udp_probe_id(d.payload), Some((0x4242, 0x7345)));
    }

    #[test]
    fn sized_probes_have_the_exact_length_and_keep_their_identity() {
        for v6 in [false, true] {
            for kind in [ProbeKind::IcmpEcho, TCP] {
                let proto = match (kind, v6) {
                    (ProbeKind::IcmpEcho, false) => 1,
                    (ProbeKind::IcmpEcho, true) => 58,
                    _ => 6,
                };
                let s = spec(v6, 9, 0x0123, kind);
                let usual = emit(&s).unwrap();
                for size in [576u16, 1280, 1399, 1400, 1500, 9000] {
                    let e = emit_sized(&s, size).unwrap();
                    assert_eq!(e.bytes.len(), usize::from(size), "{kind:?} v6={v6}");
                    let d = decode_ip(1, 0, Direction::Out, &e.bytes).unwrap();
                    let p = d.packet;
                    assert_eq!((p.ip_len, p.ttl, p.df), (u32::from(size), 9, true));
                    assert_eq!(p.ip_id, (!v6).then_some(0x0123));
                    let seg = segment(&e);
                    assert!(verifies(s.src, s.dst, proto, seg, v6 || proto == 6));
                    // Same flow bytes (ECMP hash) as the usual probe.
                    assert_eq!(seg[..4], segment(&usual)[..4]);
                    match p.transport {
                        Transport::Icmp(i) => assert_eq!(
                            i.kind,
                            IcmpKind::EchoRequest {
                                id: 0x4242,
                                seq: 0x0123
                            }
                        ),
                        Transport::Tcp(t) => {
                            assert_eq!(t.seq, 0x4242_0123);
                            assert!(t.flags.syn());
                            assert_eq!(t.mss, Some(1460));
                            assert_eq!(
                                t.payload_len as usize,
                                usize::from(size) - e.ip_header_len - 24
                            );
                            assert_eq!(&d.payload[..MARKER.len()], MARKER);
                        }
                        t => panic!("{t:?}"),
                    }
                }
                let min = emit_sized(&s, 1).unwrap_err();
                assert!(matches!(min, EmitError::SizeOutOfRange { size: 1, .. }));
            }
        }
        // Smallest sizes: IP + echo header + word + marker; IP + 24.
        assert_eq!(
            emit_sized(&spec(false, 1, 1, ProbeKind::IcmpEcho), 39)
                .unwrap()
                .bytes
                .len(),
            39
        );
        assert!(emit_sized(&spec(false, 1, 1, ProbeKind::IcmpEcho), 38).is_err());
        assert_eq!(
            emit_sized(&spec(true, 1, 1, TCP), 64).unwrap().bytes.len(),
            64
        );
        assert_eq!(
            emit_sized(&spec(false, 1, 1, UDP), 1500),
            Err(EmitError::SizeUnsupported)
        );
        // The largest IPv4 packet.
        assert_eq!(
            emit_sized(&spec(false, 1, 1, TCP), u16::MAX)
                .unwrap()
                .bytes
                .len(),
            65_535
        );
    }

    #[test]
    fn rejects_bad_specs() {
        let mut s = spec(false, 0, 1, TCP);
        assert_eq!(emit(&s), Err(EmitError::ZeroTtl));
        s.ttl = 1;
        s.seq = 0;
        assert_eq!(emit(&s), Err(EmitError::ZeroSeq));
        s.seq = 1;
        s.dst = V6_DST.parse().unwrap();
        assert!(matches!(emit(&s), Err(EmitError::MixedFamilies { .. })));
        assert_eq!(seq_low_from_udp_len(13), None);
        assert_eq!(seq_low_from_udp_len(14), Some(0));
        assert_eq!(seq_low_from_udp_len(270), None);
        assert_eq!(udp_probe_id(&[0; 5]), None);
    }

    #[test]
    fn quoted_packet_reads_what_quoted_header_lacks() {
        // A router's time-exceeded quoting the IP header + 8 bytes of each probe.
        for kind in [ProbeKind::IcmpEcho, TCP, UDP] {
            for v6 in [false, true] {
                let s = spec(v6, 6, 0x0345, kind);
                let probe = emit(&s).unwrap();
                let mut quote = probe.bytes[..probe.ip_header_len + 8].to_vec();
                quote[if v6 { 7 } else { 8 }] = 1; // TTL as the router saw it
                let mut err = Vec::new();
                if v6 {
                    PacketBuilder::ipv6(
                        "fd00:1::1".parse::<std::net::Ipv6Addr>().unwrap().octets(),
                        s.src
                            .to_string()
                            .parse::<std::net::Ipv6Addr>()
                            .unwrap()
                            .octets(),
                        64,
                    )
                    .icmpv6(Icmpv6Type::TimeExceeded(
                        etherparse::icmpv6::TimeExceededCode::HopLimitExceeded,
                    ))
                    .write(&mut err, &quote)
                    .unwrap();
                } else {
                    PacketBuilder::ipv4([198, 18, 1, 1], V4_SRC, 255)
                        .icmpv4(Icmpv4Type::TimeExceeded(
                            etherparse::icmpv4::TimeExceededCode::TtlExceededInTransit,
                        ))
                        .write(&mut err, &quote)
                        .unwrap();
                }
                let d = quoted_packet(&err).expect("quote decodes");
                let q = d.packet;
                assert_eq!((q.src, q.dst, q.ttl), (s.src, s.dst, 1));
                match (kind, q.transport) {
                    (ProbeKind::IcmpEcho, Transport::Icmp(i)) => assert_eq!(
                        i.kind,
                        IcmpKind::EchoRequest {
                            id: 0x4242,
                            seq: 0x0345
                        }
                    ),
                    (ProbeKind::Udp { .. }, Transport::Udp { len, .. }) => {
                        assert_eq!(seq_low_from_udp_len(len), Some(0x45));
                        // 8 bytes quoted: no payload.
                        assert_eq!(udp_probe_id(d.payload), None);
                    }
                    // 8 TCP bytes are too few for a TCP header: QuotedHeader reads those.
                    (ProbeKind::TcpSyn { .. }, Transport::Other { protocol }) => {
                        assert_eq!(protocol, 6)
                    }
                    (k, t) => panic!("{k:?}: {t:?}"),
                }
                // Not an error: no quote.
                assert!(quoted_packet(&probe.bytes).is_none());
            }
        }
    }
}
