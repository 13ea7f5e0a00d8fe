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

/// Peels the link header of `data` captured with `link`.
pub(super) fn peel(link: LinkType, data: &[u8]) -> Result<(NetStart<'_>, Direction), DecodeError> {
    match link {
        LinkType::Ethernet => Ok((NetStart::Ethernet(data), Direction::Unknown)),
        LinkType::RawIp | LinkType::Ipv4 | LinkType::Ipv6 => {
            Ok((NetStart::Ip(data), Direction::Unknown))
        }
        LinkType::LinuxSll => {
            // pkttype(2) hatype(2) halen(2) addr(8) protocol(2)
            if data.len() < 16 {
                return Err(DecodeError::Truncated("Linux SLL header"));
            }
            let pkttype = be16(data, 0);
            let hatype = be16(data, 2);
            let pkttype = u8::try_from(pkttype).unwrap_or(u8::MAX);
            cooked(pkttype, hatype, be16(data, 14), &data[16..])
        }
        LinkType::LinuxSll2 => {
            // protocol(2) reserved(2) ifindex(4) hatype(2) pkttype(1) halen(1) addr(8)
            if data.len() < 20 {
                return Err(DecodeError::Truncated("Linux SLL2 header"));
            }
            cooked(data[10], be16(data, 8), be16(data, 0), &data[20..])
        }
        LinkType::Null | LinkType::Loop => {
            // A 4-byte address family whose byte order depends on the writer
            // (host order for NULL, network order for LOOP, and both exist in
            // the wild): the IP version nibble is the reliable part.
            if data.len() < 5 {
                return Err(DecodeError::Truncated("null/loopback header"));
            }
            Ok((NetStart::Ip(&data[4..]), Direction::Unknown))
        }
        LinkType::Other(n) => Err(DecodeError::UnsupportedLinkType(n)),
    }
}

fn cooked(
    pkttype: u8,
    hatype: u16,
    protocol: u16,
    rest: &[u8],
) -> Result<(NetStart<'_>, Direction), DecodeError> {
    if hatype == ARPHRD_LOOPBACK && pkttype == PACKET_OUTGOING {
        return Err(DecodeError::LoopbackDuplicate);
    }
    Ok((NetStart::EtherType(protocol, rest), direction_of(pkttype)))
}
