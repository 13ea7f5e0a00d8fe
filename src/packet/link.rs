//! Link layers: what comes before the IP header, and which way the frame went.
//!
//! Linux cooked headers (SLL v1 and v2) and BSD null/loop headers are peeled by
//! hand: etherparse has no SLL2 and no null/loop, and the headers are a few
//! fixed fields. Ethernet (with 802.1Q / QinQ) is left to etherparse, except
//! PPPoE sessions (below), which etherparse does not know.
//!
//! PPPoE (RFC 2516) is peeled here, by hand, for every link that can carry
//! it (Ethernet, behind up to two 802.1Q / QinQ tags, and Linux cooked
//! captures of the Ethernet interface under a PPPoE link): a session frame
//! (EtherType 0x8864) whose PPP protocol is IPv4 (0x0021) or IPv6 (0x0057)
//! continues as that IP packet, so the fast path and etherparse both see
//! plain IP and agree. Discovery frames (0x8863) and PPP control protocols
//! (LCP, IPCP, PAP/CHAP...) carry no IP: [`ppp_inner`] says which.

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

pub(super) const ETHERTYPE_IPV4: u16 = 0x0800;
pub(super) const ETHERTYPE_IPV6: u16 = 0x86dd;
pub(super) const ETHERTYPE_VLAN: u16 = 0x8100;
pub(super) const ETHERTYPE_QINQ: u16 = 0x88a8;
pub(super) const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
pub(super) const ETHERTYPE_PPPOE_DISCOVERY: u16 = 0x8863;
pub(super) const ETHERTYPE_PPPOE_SESSION: u16 = 0x8864;
/// VLAN tags walked before giving up: QinQ's two, as etherparse (the
/// fast path and etherparse must agree on what is IP).
const MAX_VLAN_TAGS: usize = 2;

/// What a PPPoE session frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PppInner<'a> {
    /// An IP packet: the EtherType it stands for (IPv4 or IPv6) and its bytes.
    Ip(u16, &'a [u8]),
    /// A PPP control protocol (LCP, IPCP, authentication...) or another
    /// network protocol: no IP.
    Control,
}

/// Reads a PPPoE session header (ver/type 0x11, code 0, session id,
/// length) and the PPP protocol field after it (two bytes, or one when
/// compressed: an odd first byte). `None` when the header is cut or is not
/// a session header (a discovery code in a session frame is not data).
pub(super) fn ppp_inner(b: &[u8]) -> Option<PppInner<'_>> {
    if b.len() < 7 || b[0] != 0x11 || b[1] != 0 {
        return None;
    }
    let declared = usize::from(be16(b, 4));
    // The PPPoE length covers the PPP protocol field and payload: what
    // follows is Ethernet padding. A snapshot may have cut it shorter.
    let ppp = &b[6..b.len().min(6 + declared)];
    let (protocol, rest) = match ppp.first() {
        Some(&p) if p & 1 == 1 => (u16::from(p), &ppp[1..]),
        _ if ppp.len() >= 2 => (be16(ppp, 0), &ppp[2..]),
        _ => return None,
    };
    Some(match protocol {
        0x0021 => PppInner::Ip(ETHERTYPE_IPV4, rest),
        0x0057 => PppInner::Ip(ETHERTYPE_IPV6, rest),
        _ => PppInner::Control,
    })
}

/// The EtherType after any VLAN tags and the bytes it names, starting
/// from an EtherType field at `at` in `frame`.
pub(super) fn skip_vlans(frame: &[u8], mut at: usize) -> Option<(u16, &[u8])> {
    for _ in 0..=MAX_VLAN_TAGS {
        let t = be16(frame.get(..at + 2)?, at);
        match t {
            ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD => at += 4,
            _ => return Some((t, frame.get(at + 2..)?)),
        }
    }
    None
}

/// Where an Ethernet frame's network layer starts: PPPoE sessions are
/// peeled here; everything else goes to etherparse as before (the common
/// untagged IPv4/IPv6 frame costs one comparison).
fn ethernet_net(data: &[u8]) -> Result<NetStart<'_>, DecodeError> {
    match data.get(12..14).map(|t| be16(t, 0)) {
        Some(ETHERTYPE_IPV4 | ETHERTYPE_IPV6) | None => return Ok(NetStart::Ethernet(data)),
        _ => {}
    }
    match skip_vlans(data, 12) {
        Some((ETHERTYPE_PPPOE_SESSION, rest)) => pppoe_net(rest),
        _ => Ok(NetStart::Ethernet(data)),
    }
}

/// The network layer inside a PPPoE session frame's payload `rest`.
fn pppoe_net(rest: &[u8]) -> Result<NetStart<'_>, DecodeError> {
    match ppp_inner(rest) {
        Some(PppInner::Ip(t, ip)) => Ok(NetStart::EtherType(t, ip)),
        Some(PppInner::Control) => Err(DecodeError::NotIp),
        None => Err(DecodeError::Truncated("PPPoE header")),
    }
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
#[inline(always)]
pub(super) fn peel(link: LinkType, data: &[u8]) -> Result<Peeled<'_>, DecodeError> {
    let plain = |net| Peeled {
        net,
        direction: Direction::Unknown,
        src_mac: None,
    };
    match link {
        LinkType::Ethernet => Ok(Peeled {
            net: ethernet_net(data)?,
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
    let net = match protocol {
        ETHERTYPE_PPPOE_SESSION => pppoe_net(rest)?,
        _ => NetStart::EtherType(protocol, rest),
    };
    Ok(Peeled {
        net,
        direction: direction_of(pkttype),
        src_mac,
    })
}
