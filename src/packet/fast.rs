//! A fast path for the packets that make up almost every capture: IPv4 + TCP,
//! unfragmented, with complete headers. It reads the fixed fields directly;
//! everything else (IPv6, UDP, ICMP, fragments, odd lengths) goes to
//! etherparse in `decode.rs`.
//!
//! Written by hand because etherparse's lax slicing builds and copies a large
//! value per packet (VLAN, extension and error slots), which was a quarter of
//! the analysis time on multi-gigabyte captures. The differential test below
//! checks that both paths give the same `Packet` on the same bytes.

use super::{Direction, Packet, TcpFlags, TcpInfo, Transport};
use std::net::{IpAddr, Ipv4Addr};

use super::link::{ETHERTYPE_IPV4, skip_vlans};

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The IPv4 bytes of an Ethernet frame (up to two VLAN tags), if IPv4.
/// (PPPoE sessions never get here: [`super::link`] peels them into IP.)
pub(super) fn ethernet_ipv4(frame: &[u8]) -> Option<&[u8]> {
    match skip_vlans(frame, 12)? {
        (ETHERTYPE_IPV4, ip) => Some(ip),
        _ => None,
    }
}

/// Decodes an IPv4 + TCP packet into `out`, or `None` (and `out`
/// untouched) to let the general path decide.
#[inline(always)]
pub(super) fn ipv4_tcp<'a>(
    ip: &'a [u8],
    frame: u64,
    ts_ns: i64,
    direction: Direction,
    link_src: Option<[u8; 6]>,
    out: &mut Packet,
) -> Option<&'a [u8]> {
    if ip.len() < 20 || ip[0] >> 4 != 4 || ip[9] != 6 {
        return None;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(be16(ip, 2));
    let flags_frag = be16(ip, 6);
    // Fragments (MF or an offset) and lengths that do not add up go to the
    // general path, which knows what to say about them.
    if ihl < 20 || flags_frag & 0x3fff != 0 || total < ihl + 20 {
        return None;
    }
    let tcp = ip.get(ihl..)?;
    if tcp.len() < 20 {
        return None;
    }
    let doff = usize::from(tcp[12] >> 4) * 4;
    if doff < 20 || tcp.len() < doff || total < ihl + doff {
        return None;
    }
    let flags = TcpFlags(tcp[13]);
    let mss = if flags.syn() {
        mss_option(&tcp[20..doff])
    } else {
        None
    };
    let captured_end = total.min(ip.len());
    let payload = &ip[(ihl + doff).min(captured_end)..captured_end];
    *out = Packet {
        frame,
        ts_ns,
        direction,
        src: IpAddr::V4(Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15])),
        dst: IpAddr::V4(Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19])),
        ttl: ip[8],
        ip_id: Some(be16(ip, 4)),
        df: flags_frag & 0x4000 != 0,
        ip_len: total as u32,
        link_src,
        transport: Transport::Tcp(TcpInfo {
            src_port: be16(tcp, 0),
            dst_port: be16(tcp, 2),
            seq: be32(tcp, 4),
            ack: be32(tcp, 8),
            flags,
            window: be16(tcp, 14),
            mss,
            options_len: (doff - 20) as u8,
            payload_len: (total - ihl - doff) as u32,
            reserved: tcp[12] & 0x0f,
        }),
    };
    Some(payload)
}

/// The MSS option (kind 2, length 4) among TCP options.
fn mss_option(mut opts: &[u8]) -> Option<u16> {
    while let Some(&kind) = opts.first() {
        match kind {
            0 => return None,
            1 => opts = &opts[1..],
            _ => {
                let len = usize::from(*opts.get(1)?);
                if len < 2 || len > opts.len() {
                    return None;
                }
                if kind == 2 && len == 4 {
                    return Some(be16(opts, 2));
                }
                opts = &opts[len..];
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::LinkType;
    use crate::packet::decode;
    use etherparse::{PacketBuilder, TcpOptionElement};

    /// The fast path and etherparse agree on every field, on every kind of
    /// IPv4/TCP segment and on cut and odd variants of them.
    #[test]
    fn fast_path_matches_the_general_decoder() {
        let mut cases: Vec<Vec<u8>> = Vec::new();
        for (syn, ack, rst, payload) in [
            (true, false, false, 0usize),
            (true, true, false, 0),
            (false, true, false, 100),
            (false, true, true, 0),
            (false, false, true, 0),
            (false, true, false, 1448),
        ] {
            let mut b = PacketBuilder::ethernet2([1; 6], [2; 6])
                .ipv4([10, 0, 0, 2], [198, 18, 4, 2], 61)
                .tcp(40000, 443, 7, 500);
            if syn {
                b = b.syn();
            }
            if ack {
                b = b.ack(99);
            }
            if rst {
                b = b.rst();
            }
            let b = b
                .options(&[
                    TcpOptionElement::MaximumSegmentSize(1360),
                    TcpOptionElement::SelectiveAcknowledgementPermitted,
                ])
                .unwrap();
            let mut out = Vec::new();
            b.write(&mut out, &vec![0x16; payload]).unwrap();
            cases.push(out.clone());
            // Ethernet padding, a cut snapshot, a cut TCP header.
            let mut padded = out.clone();
            padded.extend_from_slice(&[0; 6]);
            cases.push(padded);
            cases.push(out[..out.len().min(80)].to_vec());
            cases.push(out[..out.len().min(40)].to_vec());
        }
        // The same segments inside PPPoE sessions, plain and behind QinQ:
        // the link layer peels PPPoE for both paths.
        let pppoe: Vec<Vec<u8>> = cases
            .iter()
            .step_by(4)
            .flat_map(|eth| {
                [&[][..], &[0x88a8, 0x8100][..]]
                    .map(|tags| crate::packet::decode::tests::pppoe_frame(tags, 0x0021, &eth[14..]))
            })
            .collect();
        cases.extend(pppoe);
        let mut decoded = 0;
        for bytes in cases {
            let general = {
                // Force the general path: a raw-IP view of the same packet
                // goes through etherparse when the fast path is skipped.
                let slow = crate::packet::decode::decode_general(LinkType::Ethernet, 1, 5, &bytes);
                slow.map(|d| (d.packet, d.payload.to_vec())).ok()
            };
            let fast = decode(LinkType::Ethernet, 1, 5, &bytes)
                .map(|d| (d.packet, d.payload.to_vec()))
                .ok();
            assert_eq!(fast, general, "{} bytes", bytes.len());
            decoded += usize::from(fast.is_some());
        }
        assert!(decoded >= 30, "only {decoded} cases decoded");
    }

    #[test]
    fn options_walk_is_bounded() {
        assert_eq!(mss_option(&[1, 1, 2, 4, 5, 0xb4]), Some(1460));
        assert_eq!(mss_option(&[3, 0]), None);
        assert_eq!(mss_option(&[8, 200, 1]), None);
        assert_eq!(mss_option(&[]), None);
    }
}
