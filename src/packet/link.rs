//! Link layers: what comes before the IP header, and which way the frame went.
//!
//! Linux cooked headers (SLL v1 and v2) and BSD null/loop headers are peeled by
//! hand: etherparse has no SLL2 and no null/loop, and the headers are a few
//! fixed fields. Ethernet (with 802.1Q / QinQ) is left to etherparse.

use super::{DecodeError, Direction};
use crate::capture::LinkType;

/// Where the network layer starts and how to read it.
pub(super) enum NetStart<'a> {
    /// An Ethernet frame, VLAN tags and all: etherparse takes it from here.
    Ethernet(&'a [u8]),
    /// Bytes after a link header that named this EtherType.
    EtherType(u16, &'a [u8]),
    /// Bytes that start with an IPv4 or IPv6 header.
    Ip(&'a [u8]),
}

/// SLL packet types (`PACKET_*` in linux/if_packet.h).
const PACKET_HOST: u8 = 0;
const PACKET_BROADCAST: u8 = 1;
const PACKET_MULTICAST: u8 = 2;
const PACKET_OUTGOING: u8 = 4;
/// ARPHRD_LOOPBACK: `tcpdump -i any` sees each loopback packet twice.
const ARPHRD_LOOPBACK: u16 = 772;

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn direction_of(pkttype: u8) -> Direction {
    match pkttype {
        PACKET_HOST | PACKET_BROADCAST | PACKET_MULTICAST => Direction::In,
        PACKET_OUTGOING => Direction::Out,
        _ => Direction::Unknown,
    }
}

/// What the link header says: where the network layer starts, which way
/// the frame went, and the link-layer address of its sender (a MAC).
pub(super) struct Peeled<'a> {
    pub net: NetStart<'a>,
    pub direction: Direction,
    pub src_mac: Option<[u8; 6]>,
}

fn mac(bytes: Option<&[u8]>) -> Option<[u8; 6]> {
    bytes.and_then(|b| b.try_into().ok())
}

/// Peels the link header of `data` captured with `link`.
pub(super) fn peel(link: LinkType, data: &[u8]) -> Result<Peeled<'_>, DecodeError> {
    let plain = |net| Peeled {
        net,
        direction: Direction::Unknown,
        src_mac: None,
    };
    match link {
        LinkType::Ethernet => Ok(Peeled {
            net: NetStart::Ethernet(data),
            direction: Direction::Unknown,
            src_mac: mac(data.get(6..12)),
        }),
        LinkType::RawIp | LinkType::Ipv4 | LinkType::Ipv6 => Ok(plain(NetStart::Ip(data))),
        LinkType::LinuxSll => {
            // pkttype(2) hatype(2) halen(2) addr(8) protocol(2)
            if data.len() < 16 {
                return Err(DecodeError::Truncated("Linux SLL header"));
            }
            let pkttype = u8::try_from(be16(data, 0)).unwrap_or(u8::MAX);
            let hatype = be16(data, 2);
            let addr = (be16(data, 4) == 6).then(|| &data[6..12]);
            cooked(pkttype, hatype, be16(data, 14), mac(addr), &data[16..])
        }
        LinkType::LinuxSll2 => {
            // protocol(2) reserved(2) ifindex(4) hatype(2) pkttype(1) halen(1) addr(8)
            if data.len() < 20 {
                return Err(DecodeError::Truncated("Linux SLL2 header"));
            }
            let addr = (data[11] == 6).then(|| &data[12..18]);
            cooked(
                data[10],
                be16(data, 8),
                be16(data, 0),
                mac(addr),
                &data[20..],
            )
        }
        LinkType::Null | LinkType::Loop => {
            // A 4-byte address family whose byte order depends on the writer
            // (host order for NULL, network order for LOOP, and both exist in
            // the wild): the IP version nibble is the reliable part.
            if data.len() < 5 {
                return Err(DecodeError::Truncated("null/loopback header"));
            }
            Ok(plain(NetStart::Ip(&data[4..])))
        }
        LinkType::Other(n) => Err(DecodeError::UnsupportedLinkType(n)),
    }
}

fn cooked(
    pkttype: u8,
    hatype: u16,
    protocol: u16,
    src_mac: Option<[u8; 6]>,
    rest: &[u8],
) -> Result<Peeled<'_>, DecodeError> {
    if hatype == ARPHRD_LOOPBACK && pkttype == PACKET_OUTGOING {
        return Err(DecodeError::LoopbackDuplicate);
    }
    Ok(Peeled {
        net: NetStart::EtherType(protocol, rest),
        direction: direction_of(pkttype),
        src_mac,
    })
}
