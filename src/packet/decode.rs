//! Frame bytes → [`Packet`] (plus the captured transport payload).

use super::link::{NetStart, peel};
use super::{Direction, IcmpInfo, IcmpKind, Packet, QuotedHeader, TcpFlags, TcpInfo, Transport};
use crate::capture::LinkType;
use etherparse::{
    EtherType, Icmpv4Slice, Icmpv6Slice, IpNumber, LaxIpSlice, LaxNetSlice, LaxSlicedPacket,
    TcpOptionElement, TransportSlice,
};
use serde::Serialize;
use std::net::IpAddr;

/// Why a frame gave no [`Packet`]. Most are not errors of the capture: a
/// capture holds ARP, LLDP and more, which the analysis does not need.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("not an IP packet")]
    NotIp,
    #[error("second copy of a loopback packet (tcpdump -i any shows both directions)")]
    LoopbackDuplicate,
    #[error(
        "link type {0} is not supported (supported: Ethernet, Linux SLL/SLL2, raw IP, BSD null/loopback)"
    )]
    UnsupportedLinkType(u32),
    #[error("truncated {0}")]
    Truncated(&'static str),
    #[error("malformed {0}")]
    Malformed(&'static str),
}

/// A decoded packet and the transport payload bytes that were captured
/// (possibly fewer than `TcpInfo::payload_len` when the snapshot cut them).
#[derive(Clone, Copy, Debug)]
pub struct Decoded<'a> {
    pub packet: Packet,
    pub payload: &'a [u8],
}

/// Decodes one captured frame.
#[inline]
pub fn decode(
    link: LinkType,
    frame: u64,
    ts_ns: i64,
    data: &[u8],
) -> Result<Decoded<'_>, DecodeError> {
    let mut packet = Packet::PLACEHOLDER;
    let payload = decode_into(link, frame, ts_ns, data, &mut packet)?;
    Ok(Decoded { packet, payload })
}

/// Decodes one captured frame into `out` and returns its captured
/// transport payload; on an error `out` holds nothing useful.
///
/// For a caller that keeps packets in a buffer: the common IPv4/TCP
/// packet is then written once, in place. Returning a [`Decoded`] by
/// value made the compiler build it on the stack field by field and copy
/// it out with wide loads that stall on those narrow stores (store
/// forwarding), a fifth of the decoding time on large captures.
#[inline(always)]
pub fn decode_into<'a>(
    link: LinkType,
    frame: u64,
    ts_ns: i64,
    data: &'a [u8],
    out: &mut Packet,
) -> Result<&'a [u8], DecodeError> {
    let peeled = peel(link, data)?;
    let ipv4 = match peeled.net {
        NetStart::Ethernet(d) => super::fast::ethernet_ipv4(d),
        NetStart::EtherType(t, d) if t == EtherType::IPV4.0 => Some(d),
        NetStart::Ip(d) => Some(d),
        NetStart::EtherType(..) => None,
    };
    if let Some(payload) = ipv4.and_then(|ip| {
        super::fast::ipv4_tcp(ip, frame, ts_ns, peeled.direction, peeled.src_mac, out)
    }) {
        return Ok(payload);
    }
    let decoded = decode_peeled(peeled, frame, ts_ns)?;
    *out = decoded.packet;
    Ok(decoded.payload)
}

/// The general path (etherparse) for everything the fast path leaves.
#[cfg(test)]
pub(super) fn decode_general(
    link: LinkType,
    frame: u64,
    ts_ns: i64,
    data: &[u8],
) -> Result<Decoded<'_>, DecodeError> {
    decode_peeled(peel(link, data)?, frame, ts_ns)
}

fn decode_peeled(
    peeled: super::link::Peeled<'_>,
    frame: u64,
    ts_ns: i64,
) -> Result<Decoded<'_>, DecodeError> {
    let sliced = match peeled.net {
        NetStart::Ethernet(d) => LaxSlicedPacket::from_ethernet(d)
            .map_err(|_| DecodeError::Truncated("Ethernet header"))?,
        NetStart::EtherType(t, d) => {
            if t != EtherType::IPV4.0 && t != EtherType::IPV6.0 {
                return Err(DecodeError::NotIp);
            }
            LaxSlicedPacket::from_ether_type(EtherType(t), d)
        }
        NetStart::Ip(d) => {
            LaxSlicedPacket::from_ip(d).map_err(|_| DecodeError::Malformed("IP header"))?
        }
    };
    let mut decoded = from_sliced(&sliced, frame, ts_ns, peeled.direction)?;
    decoded.packet.link_src = peeled.src_mac;
    Ok(decoded)
}

/// An ARP message's sender: this MAC has this IPv4 address. It names the
/// gateway (hop 1) of a capture: the MAC that routed packets come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpSighting {
    pub frame: u64,
    pub mac: [u8; 6],
    pub ip: std::net::Ipv4Addr,
}

/// Reads the sender of an ARP request or reply, if the frame is one.
pub fn arp_sighting(link: LinkType, frame: u64, data: &[u8]) -> Option<ArpSighting> {
    let peeled = peel(link, data).ok()?;
    let arp = match peeled.net {
        NetStart::Ethernet(d) => match LaxSlicedPacket::from_ethernet(d).ok()?.net? {
            LaxNetSlice::Arp(a) => a,
            _ => return None,
        },
        NetStart::EtherType(t, d) if t == EtherType::ARP.0 => {
            etherparse::ArpPacketSlice::from_slice(d).ok()?
        }
        _ => return None,
    };
    let mac: [u8; 6] = arp.sender_hw_addr().try_into().ok()?;
    let ip: [u8; 4] = arp.sender_protocol_addr().try_into().ok()?;
    Some(ArpSighting {
        frame,
        mac,
        ip: ip.into(),
    })
}

/// What a frame that carries no IP is, as far as it is cheap to tell: the
/// capture's statistics count them by kind, so that a capture of ARP or
/// PPPoE discovery alone says so instead of "no TCP".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NonIpKind {
    Arp,
    /// PPPoE discovery (PADI, PADO, PADR, PADS, PADT; EtherType 0x8863).
    PppoeDiscovery,
    /// A PPPoE session frame whose PPP protocol is not IP: LCP, IPCP,
    /// IPv6CP, PAP, CHAP...
    PppControl,
    Lldp,
    /// Spanning tree (802.3 frame, LLC DSAP 0x42).
    Stp,
    /// Anything else: another EtherType, another 802.3 LLC protocol, a
    /// raw-IP link frame that is not IPv4 or IPv6.
    Other,
}

const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_LLDP: u16 = 0x88cc;
/// Linux cooked captures name 802.2 LLC frames with this protocol (ETH_P_802_2).
const SLL_PROTOCOL_LLC: u16 = 0x0004;

/// Says what a frame that [`decode`] found not to be IP
/// ([`DecodeError::NotIp`]) is. Only called for such frames: the link
/// header is peeled again, a few bytes read.
pub fn non_ip_kind(link: LinkType, data: &[u8]) -> NonIpKind {
    use super::link::{ETHERTYPE_PPPOE_DISCOVERY, ETHERTYPE_PPPOE_SESSION, skip_vlans};
    let (ether_type, rest) = match link {
        LinkType::Ethernet => match skip_vlans(data, 12) {
            Some(found) => found,
            None => return NonIpKind::Other,
        },
        LinkType::LinuxSll if data.len() >= 16 => {
            (u16::from_be_bytes([data[14], data[15]]), &data[16..])
        }
        LinkType::LinuxSll2 if data.len() >= 20 => {
            (u16::from_be_bytes([data[0], data[1]]), &data[20..])
        }
        _ => return NonIpKind::Other,
    };
    let llc_stp = rest.len() >= 2 && rest[0] == 0x42 && rest[1] == 0x42;
    match ether_type {
        ETHERTYPE_ARP => NonIpKind::Arp,
        ETHERTYPE_PPPOE_DISCOVERY => NonIpKind::PppoeDiscovery,
        ETHERTYPE_PPPOE_SESSION => NonIpKind::PppControl,
        ETHERTYPE_LLDP => NonIpKind::Lldp,
        // An 802.3 length (Ethernet) or the cooked LLC protocol.
        t if (t < 0x0600 && link == LinkType::Ethernet || t == SLL_PROTOCOL_LLC) && llc_stp => {
            NonIpKind::Stp
        }
        _ => NonIpKind::Other,
    }
}

/// Frames that carry no IP, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NonIpCounts {
    pub arp: u64,
    pub pppoe_discovery: u64,
    pub ppp_control: u64,
    pub lldp: u64,
    pub stp: u64,
    pub other: u64,
}

impl NonIpCounts {
    pub fn add(&mut self, kind: NonIpKind) {
        let n = match kind {
            NonIpKind::Arp => &mut self.arp,
            NonIpKind::PppoeDiscovery => &mut self.pppoe_discovery,
            NonIpKind::PppControl => &mut self.ppp_control,
            NonIpKind::Lldp => &mut self.lldp,
            NonIpKind::Stp => &mut self.stp,
            NonIpKind::Other => &mut self.other,
        };
        *n += 1;
    }

    pub fn total(&self) -> u64 {
        self.arp + self.pppoe_discovery + self.ppp_control + self.lldp + self.stp + self.other
    }

    /// The kinds in words, largest first: `86 ARP, 2 LLDP`.
    pub fn describe(&self) -> String {
        let mut kinds = [
            (self.arp, "ARP"),
            (self.pppoe_discovery, "PPPoE discovery"),
            (self.ppp_control, "PPP control (LCP, IPCP...)"),
            (self.lldp, "LLDP"),
            (self.stp, "spanning tree"),
            (self.other, "other non-IP"),
        ];
        kinds.sort_by_key(|k| std::cmp::Reverse(k.0));
        kinds
            .iter()
            .filter(|k| k.0 > 0)
            .map(|(n, what)| format!("{n} {what}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Decodes bytes that start with an IP header (live probes, raw sockets).
pub fn decode_ip(
    frame: u64,
    ts_ns: i64,
    direction: Direction,
    data: &[u8],
) -> Result<Decoded<'_>, DecodeError> {
    let sliced = LaxSlicedPacket::from_ip(data).map_err(|_| DecodeError::Malformed("IP header"))?;
    from_sliced(&sliced, frame, ts_ns, direction)
}

/// Fields of the IP header that end up in a [`Packet`].
struct IpFields {
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    ip_id: Option<u16>,
    df: bool,
    ip_len: u32,
    /// Transport length (header + payload) as the IP header declares it.
    transport_len: u32,
    protocol: u8,
}

fn ip_fields(net: &LaxNetSlice<'_>) -> Option<IpFields> {
    match net {
        LaxNetSlice::Ipv4(v4) => {
            let h = v4.header();
            let header_len = u32::from(h.ihl()) * 4;
            let total = u32::from(h.total_len());
            // total_len 0 happens on captures of TSO-offloaded sends: use what is there.
            let ip_len = if total == 0 {
                header_len + v4.payload().payload.len() as u32
            } else {
                total
            };
            Some(IpFields {
                src: IpAddr::from(h.source()),
                dst: IpAddr::from(h.destination()),
                ttl: h.ttl(),
                ip_id: Some(h.identification()),
                df: h.dont_fragment(),
                ip_len,
                transport_len: ip_len.saturating_sub(header_len),
                protocol: v4.payload().ip_number.0,
            })
        }
        LaxNetSlice::Ipv6(v6) => {
            let h = v6.header();
            let ext_len = v6.extensions().slice().len() as u32;
            let declared = u32::from(h.payload_length());
            let payload_len = if declared == 0 {
                ext_len + v6.payload().payload.len() as u32
            } else {
                declared
            };
            Some(IpFields {
                src: IpAddr::from(h.source()),
                dst: IpAddr::from(h.destination()),
                ttl: h.hop_limit(),
                ip_id: None,
                df: true,
                ip_len: 40 + payload_len,
                transport_len: payload_len.saturating_sub(ext_len),
                protocol: v6.payload().ip_number.0,
            })
        }
        LaxNetSlice::Arp(_) => None,
    }
}

fn from_sliced<'a>(
    sliced: &LaxSlicedPacket<'a>,
    frame: u64,
    ts_ns: i64,
    direction: Direction,
) -> Result<Decoded<'a>, DecodeError> {
    let net = match &sliced.net {
        Some(net) => net,
        None if sliced.stop_err.is_some() => return Err(DecodeError::Malformed("IP header")),
        None => return Err(DecodeError::NotIp),
    };
    let ip = ip_fields(net).ok_or(DecodeError::NotIp)?;
    let mut payload: &'a [u8] = &[];
    let transport = match &sliced.transport {
        Some(TransportSlice::Tcp(t)) => {
            payload = t.payload();
            let header_len = u32::from(t.data_offset()) * 4;
            // MSS is only meaningful (and only looked at) on SYNs: skip the
            // option walk on every other segment.
            let mss = if t.syn() {
                t.options_iterator().find_map(|o| match o {
                    Ok(TcpOptionElement::MaximumSegmentSize(m)) => Some(m),
                    _ => None,
                })
            } else {
                None
            };
            Transport::Tcp(TcpInfo {
                src_port: t.source_port(),
                dst_port: t.destination_port(),
                seq: t.sequence_number(),
                ack: t.acknowledgment_number(),
                flags: TcpFlags(t.header_slice()[13]),
                window: t.window_size(),
                mss,
                options_len: u8::try_from(t.options().len()).unwrap_or(u8::MAX),
                payload_len: ip.transport_len.saturating_sub(header_len),
                reserved: t.header_slice()[12] & 0x0f,
            })
        }
        Some(TransportSlice::Udp(u)) => {
            payload = u.payload();
            Transport::Udp {
                src_port: u.source_port(),
                dst_port: u.destination_port(),
                len: u.length(),
            }
        }
        Some(TransportSlice::Icmpv4(i)) => Transport::Icmp(icmpv4(i)),
        Some(TransportSlice::Icmpv6(i)) => Transport::Icmp(icmpv6(i)),
        _ => Transport::Other {
            protocol: ip.protocol,
        },
    };
    Ok(Decoded {
        packet: Packet {
            frame,
            ts_ns,
            direction,
            src: ip.src,
            dst: ip.dst,
            ttl: ip.ttl,
            ip_id: ip.ip_id,
            df: ip.df,
            ip_len: ip.ip_len,
            link_src: None,
            transport,
        },
        payload,
    })
}

fn echo_ids(b: [u8; 4]) -> (u16, u16) {
    (
        u16::from_be_bytes([b[0], b[1]]),
        u16::from_be_bytes([b[2], b[3]]),
    )
}

fn icmpv4(i: &Icmpv4Slice<'_>) -> IcmpInfo {
    let (t, code, rest) = (i.type_u8(), i.code_u8(), i.bytes5to8());
    let kind = match (t, code) {
        (0, _) => {
            let (id, seq) = echo_ids(rest);
            IcmpKind::EchoReply { id, seq }
        }
        (8, _) => {
            let (id, seq) = echo_ids(rest);
            IcmpKind::EchoRequest { id, seq }
        }
        (11, _) => IcmpKind::TimeExceeded,
        // RFC 1191: next-hop MTU in the low 16 bits of the second word.
        (3, 4) => IcmpKind::PacketTooBig {
            mtu: u32::from(u16::from_be_bytes([rest[2], rest[3]])),
        },
        (3, c) => IcmpKind::Unreachable {
            admin_prohibited: matches!(c, 9 | 10 | 13),
        },
        _ => IcmpKind::Other,
    };
    let is_error = matches!(t, 3 | 4 | 5 | 11 | 12);
    IcmpInfo {
        v6: false,
        icmp_type: t,
        code,
        kind,
        quoted: if is_error { quoted(i.payload()) } else { None },
    }
}

fn icmpv6(i: &Icmpv6Slice<'_>) -> IcmpInfo {
    let (t, code, rest) = (i.type_u8(), i.code_u8(), i.bytes5to8());
    let kind = match t {
        128 => {
            let (id, seq) = echo_ids(rest);
            IcmpKind::EchoRequest { id, seq }
        }
        129 => {
            let (id, seq) = echo_ids(rest);
            IcmpKind::EchoReply { id, seq }
        }
        3 => IcmpKind::TimeExceeded,
        2 => IcmpKind::PacketTooBig {
            mtu: u32::from_be_bytes(rest),
        },
        // Code 1: administratively prohibited; 5: source address failed
        // ingress/egress policy; 6: reject route to destination (RFC 4443).
        1 => IcmpKind::Unreachable {
            admin_prohibited: matches!(code, 1 | 5 | 6),
        },
        _ => IcmpKind::Other,
    };
    IcmpInfo {
        v6: true,
        icmp_type: t,
        code,
        kind,
        quoted: if t < 128 { quoted(i.payload()) } else { None },
    }
}

/// Reads the packet an ICMP error quotes: an IP header and at least 8 bytes
/// of its transport header (RFC 792), often no more.
fn quoted(bytes: &[u8]) -> Option<QuotedHeader> {
    let (ip, _) = LaxIpSlice::from_slice(bytes).ok()?;
    let (src, dst, ttl, ip_id) = match &ip {
        LaxIpSlice::Ipv4(v4) => {
            let h = v4.header();
            (
                IpAddr::from(h.source()),
                IpAddr::from(h.destination()),
                h.ttl(),
                Some(h.identification()),
            )
        }
        LaxIpSlice::Ipv6(v6) => {
            let h = v6.header();
            (
                IpAddr::from(h.source()),
                IpAddr::from(h.destination()),
                h.hop_limit(),
                None,
            )
        }
    };
    let payload = ip.payload();
    let protocol = payload.ip_number;
    let l4 = payload.payload;
    let ports = (l4.len() >= 4
        && !payload.fragmented
        && (protocol == IpNumber::TCP || protocol == IpNumber::UDP))
        .then(|| {
            (
                u16::from_be_bytes([l4[0], l4[1]]),
                u16::from_be_bytes([l4[2], l4[3]]),
            )
        });
    let tcp_seq = (protocol == IpNumber::TCP && l4.len() >= 8 && !payload.fragmented)
        .then(|| u32::from_be_bytes([l4[4], l4[5], l4[6], l4[7]]));
    Some(QuotedHeader {
        src,
        dst,
        protocol: protocol.0,
        ttl,
        ip_id,
        src_port: ports.map(|p| p.0),
        dst_port: ports.map(|p| p.1),
        tcp_seq,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn tcp_v4(ttl: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut b =
            PacketBuilder::ipv4([10, 0, 0, 2], [198, 18, 4, 2], ttl).tcp(40000, 443, 1000, 64240);
        if flags & TcpFlags::SYN != 0 {
            b = b.syn();
        }
        if flags & TcpFlags::RST != 0 {
            b = b.rst();
        }
        if flags & TcpFlags::ACK != 0 {
            b = b.ack(5);
        }
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap();
        out
    }

    /// Wraps IP bytes in a Linux SLL2 header with the given packet type.
    fn sll2(pkttype: u8, ip: &[u8]) -> Vec<u8> {
        let mut f = vec![0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, pkttype, 6];
        f.extend_from_slice(&[0; 8]);
        f.extend_from_slice(ip);
        f
    }

    #[test]
    fn sll2_rst_keeps_ttl_direction_and_flags() {
        let ip = tcp_v4(63, TcpFlags::RST | TcpFlags::ACK, &[]);
        let frame = sll2(0, &ip);
        let d = decode(LinkType::LinuxSll2, 7, 42, &frame).unwrap();
        let p = d.packet;
        assert_eq!((p.frame, p.ts_ns, p.ttl), (7, 42, 63));
        assert_eq!(p.direction, Direction::In);
        let t = p.tcp().unwrap();
        assert!(t.flags.rst() && t.flags.ack() && !t.flags.syn());
        assert_eq!(t.flags.to_string(), "RST,ACK");
        assert_eq!((t.src_port, t.dst_port, t.seq), (40000, 443, 1000));
    }

    #[test]
    fn sll_v1_outgoing_and_payload_length() {
        let ip = tcp_v4(64, TcpFlags::ACK, b"hello");
        let mut f = vec![0, 4, 0, 1, 0, 6];
        f.extend_from_slice(&[0; 8]);
        f.extend_from_slice(&[0x08, 0x00]);
        f.extend_from_slice(&ip);
        let d = decode(LinkType::LinuxSll, 1, 0, &f).unwrap();
        assert_eq!(d.packet.direction, Direction::Out);
        assert_eq!(d.packet.tcp().unwrap().payload_len, 5);
        assert_eq!(d.payload, b"hello");
    }

    #[test]
    fn payload_length_survives_snapshot_cut() {
        let ip = tcp_v4(64, TcpFlags::ACK, &[0u8; 1000]);
        let cut = &ip[..60];
        let d = decode(LinkType::RawIp, 1, 0, cut).unwrap();
        assert_eq!(d.packet.tcp().unwrap().payload_len, 1000);
        assert_eq!(d.payload.len(), 20);
    }

    #[test]
    fn ethernet_with_two_vlan_tags() {
        let mut out = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .double_vlan(
                etherparse::VlanId::try_new(10).unwrap(),
                etherparse::VlanId::try_new(20).unwrap(),
            )
            .ipv4([10, 0, 0, 2], [198, 18, 4, 2], 61)
            .tcp(443, 40000, 1, 100)
            .syn()
            .ack(1001)
            .write(&mut out, &[])
            .unwrap();
        let d = decode(LinkType::Ethernet, 1, 0, &out).unwrap();
        assert_eq!(d.packet.ttl, 61);
        assert!(d.packet.tcp().unwrap().flags.syn());
    }

    #[test]
    fn syn_mss_option() {
        let mut out = Vec::new();
        let builder = PacketBuilder::ipv6([0xfd; 16], [0xfe; 16], 60)
            .tcp(40000, 443, 1, 100)
            .syn()
            .options(&[TcpOptionElement::MaximumSegmentSize(1360)])
            .unwrap();
        builder.write(&mut out, &[]).unwrap();
        let d = decode(LinkType::RawIp, 1, 0, &out).unwrap();
        assert_eq!(d.packet.tcp().unwrap().mss, Some(1360));
        assert_eq!(d.packet.ttl, 60);
        assert_eq!(d.packet.ip_id, None);
    }

    #[test]
    fn null_loopback_both_byte_orders() {
        let ip = tcp_v4(64, TcpFlags::SYN, &[]);
        for hdr in [[2u8, 0, 0, 0], [0, 0, 0, 2]] {
            let mut f = hdr.to_vec();
            f.extend_from_slice(&ip);
            assert!(
                decode(LinkType::Null, 1, 0, &f)
                    .unwrap()
                    .packet
                    .tcp()
                    .is_some()
            );
        }
    }

    #[test]
    fn icmp_time_exceeded_quotes_the_syn() {
        let syn = tcp_v4(1, TcpFlags::SYN, &[]);
        let mut out = Vec::new();
        PacketBuilder::ipv4([198, 18, 2, 1], [10, 0, 0, 2], 254)
            .icmpv4(etherparse::Icmpv4Type::TimeExceeded(
                etherparse::icmpv4::TimeExceededCode::TtlExceededInTransit,
            ))
            .write(&mut out, &syn[..28])
            .unwrap();
        let d = decode(LinkType::RawIp, 1, 0, &out).unwrap();
        let icmp = d.packet.icmp().unwrap();
        assert_eq!(icmp.kind, IcmpKind::TimeExceeded);
        let q = icmp.quoted.unwrap();
        assert_eq!(
            (q.src_port, q.dst_port, q.tcp_seq),
            (Some(40000), Some(443), Some(1000))
        );
        assert_eq!(q.ttl, 1);
        assert_eq!(q.dst, "198.18.4.2".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn icmp_frag_needed_and_admin_prohibited() {
        let syn = tcp_v4(5, TcpFlags::SYN, &[]);
        let mut out = Vec::new();
        PacketBuilder::ipv4([198, 18, 2, 1], [10, 0, 0, 2], 254)
            .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
                etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded {
                    next_hop_mtu: 1400,
                },
            ))
            .write(&mut out, &syn)
            .unwrap();
        let d = decode(LinkType::RawIp, 1, 0, &out).unwrap();
        assert_eq!(
            d.packet.icmp().unwrap().kind,
            IcmpKind::PacketTooBig { mtu: 1400 }
        );

        let mut out = Vec::new();
        PacketBuilder::ipv4([198, 18, 2, 1], [10, 0, 0, 2], 254)
            .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
                etherparse::icmpv4::DestUnreachableHeader::FilterProhibited,
            ))
            .write(&mut out, &syn)
            .unwrap();
        let d = decode(LinkType::RawIp, 1, 0, &out).unwrap();
        assert_eq!(
            d.packet.icmp().unwrap().kind,
            IcmpKind::Unreachable {
                admin_prohibited: true
            }
        );
    }

    #[test]
    fn garbage_never_panics() {
        let links = [
            LinkType::Ethernet,
            LinkType::LinuxSll,
            LinkType::LinuxSll2,
            LinkType::RawIp,
            LinkType::Null,
            LinkType::Other(147),
        ];
        let mut seed = 0x1234_5678u32;
        for len in 0..200usize {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    seed as u8
                })
                .collect();
            for link in links {
                let _ = decode(link, 1, 0, &bytes);
            }
        }
        assert_eq!(
            decode(LinkType::Other(147), 1, 0, &[0; 40]).unwrap_err(),
            DecodeError::UnsupportedLinkType(147)
        );
    }

    #[test]
    fn arp_is_not_ip() {
        let mut f = vec![0xff; 12];
        f.extend_from_slice(&[0x08, 0x06]);
        f.extend_from_slice(&[0; 28]);
        assert_eq!(
            decode(LinkType::Ethernet, 1, 0, &f).unwrap_err(),
            DecodeError::NotIp
        );
    }

    /// An Ethernet frame with the given VLAN tags (TPID) carrying a PPPoE
    /// session frame with `ppp_protocol` and `ppp_payload`, padded to 60.
    pub(crate) fn pppoe_frame(tags: &[u16], ppp_protocol: u16, ppp_payload: &[u8]) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
        for (i, tpid) in tags.iter().enumerate() {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&(10 + i as u16).to_be_bytes());
        }
        f.extend_from_slice(&0x8864u16.to_be_bytes());
        let len = (ppp_payload.len() + 2) as u16;
        f.extend_from_slice(&[0x11, 0x00, 0x12, 0x34]);
        f.extend_from_slice(&len.to_be_bytes());
        f.extend_from_slice(&ppp_protocol.to_be_bytes());
        f.extend_from_slice(ppp_payload);
        f.resize(f.len().max(60), 0);
        f
    }

    /// PPPoE sessions, untagged, behind 802.1Q and behind QinQ (every TPID
    /// pathproof knows), IPv4 and IPv6: the IP packet inside is decoded,
    /// the same as without PPPoE; LCP and discovery frames are not IP.
    #[test]
    fn pppoe_sessions_carry_ip_behind_any_tags() {
        let rst = tcp_v4(59, TcpFlags::RST | TcpFlags::ACK, &[]);
        let plain = decode(LinkType::RawIp, 3, 9, &rst).unwrap().packet;
        let mut v6 = Vec::new();
        PacketBuilder::ipv6([0xfd; 16], [0xfe; 16], 57)
            .tcp(443, 40000, 1, 100)
            .syn()
            .ack(9)
            .write(&mut v6, &[])
            .unwrap();
        let mut decoded = 0;
        for tags in [&[][..], &[0x8100], &[0x88a8, 0x8100], &[0x9100, 0x8100]] {
            let f = pppoe_frame(tags, 0x0021, &rst);
            let d = decode(LinkType::Ethernet, 3, 9, &f).unwrap();
            let mut want = plain;
            want.link_src = Some([2, 0, 0, 0, 0, 2]);
            assert_eq!(d.packet, want, "tags {tags:x?}");
            let f = pppoe_frame(tags, 0x0057, &v6);
            let p = decode(LinkType::Ethernet, 4, 9, &f).unwrap().packet;
            assert_eq!((p.ttl, p.is_v6()), (57, true));
            assert!(p.tcp().unwrap().flags.syn());
            // LCP echo request: a PPP control frame, not IP.
            let f = pppoe_frame(tags, 0xc021, &[9, 1, 0, 8, 0, 0, 0, 0]);
            assert_eq!(
                decode(LinkType::Ethernet, 5, 9, &f).unwrap_err(),
                DecodeError::NotIp
            );
            assert_eq!(non_ip_kind(LinkType::Ethernet, &f), NonIpKind::PppControl);
            decoded += 2;
        }
        assert_eq!(decoded, 8);
        // A compressed (one-byte) PPP protocol field.
        let mut f = pppoe_frame(&[], 0x0021, &rst);
        f.remove(20);
        f[18..20].copy_from_slice(&((rst.len() + 1) as u16).to_be_bytes());
        assert_eq!(decode(LinkType::Ethernet, 3, 9, &f).unwrap().packet.ttl, 59);
        // The same session in a Linux cooked capture (SLL2, protocol 0x8864).
        let eth = pppoe_frame(&[], 0x0021, &rst);
        let mut cooked = sll2(0, &eth[14..]);
        cooked[0..2].copy_from_slice(&0x8864u16.to_be_bytes());
        let d = decode(LinkType::LinuxSll2, 3, 9, &cooked).unwrap();
        assert_eq!((d.packet.ttl, d.packet.direction), (59, Direction::In));
        // A cut PPPoE header is truncated, not "not IP".
        let cut = &pppoe_frame(&[0x8100], 0x0021, &rst)[..21];
        assert_eq!(
            decode(LinkType::Ethernet, 1, 0, cut).unwrap_err(),
            DecodeError::Truncated("PPPoE header")
        );
    }

    #[test]
    fn non_ip_frames_by_kind() {
        let eth = |t: u16, body: &[u8]| {
            let mut f = vec![0xff; 12];
            f.extend_from_slice(&t.to_be_bytes());
            f.extend_from_slice(body);
            f.resize(60, 0);
            f
        };
        let stp = {
            let mut f = vec![0x01, 0x80, 0xc2, 0, 0, 0, 2, 0, 0, 0, 0, 1];
            f.extend_from_slice(&39u16.to_be_bytes());
            f.extend_from_slice(&[0x42, 0x42, 0x03, 0, 0]);
            f.resize(60, 0);
            f
        };
        let mut padi = eth(0x8863, &[0x11, 0x09, 0, 0, 0, 4, 1, 1, 0, 0]);
        let tagged_arp = {
            let mut f = vec![0xff; 12];
            f.extend_from_slice(&[0x81, 0x00, 0, 5, 0x08, 0x06]);
            f.resize(60, 0);
            f
        };
        let mut counts = NonIpCounts::default();
        for (frame, kind) in [
            (eth(0x0806, &[0; 28]), NonIpKind::Arp),
            (tagged_arp, NonIpKind::Arp),
            (padi.clone(), NonIpKind::PppoeDiscovery),
            (eth(0x88cc, &[2, 7, 4]), NonIpKind::Lldp),
            (stp, NonIpKind::Stp),
            (eth(0x88b5, &[1, 2, 3]), NonIpKind::Other),
        ] {
            assert_eq!(
                decode(LinkType::Ethernet, 1, 0, &frame).unwrap_err(),
                DecodeError::NotIp,
                "{kind:?}"
            );
            assert_eq!(non_ip_kind(LinkType::Ethernet, &frame), kind);
            counts.add(kind);
        }
        padi.truncate(3);
        assert_eq!(non_ip_kind(LinkType::Ethernet, &padi), NonIpKind::Other);
        assert_eq!(counts.total(), 6);
        assert_eq!(
            counts.describe(),
            "2 ARP, 1 PPPoE discovery, 1 LLDP, 1 spanning tree, 1 other non-IP"
        );
        // Cooked captures name the protocol in their header.
        let mut cooked = sll2(4, &[0; 28]);
        cooked[0..2].copy_from_slice(&0x0806u16.to_be_bytes());
        assert_eq!(non_ip_kind(LinkType::LinuxSll2, &cooked), NonIpKind::Arp);
    }
}
