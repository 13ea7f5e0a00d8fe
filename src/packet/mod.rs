//! Wire decoding shared by capture files and live probes: bytes → [`Packet`].
//!
//! This is the only module that reads protocol bytes. Link layers are peeled
//! in [`link`], IP and transport headers are sliced by etherparse (lax mode,
//! so that snapshot-cut packets and ICMP-quoted headers still yield what they
//! hold) and turned into the small owned [`Packet`] the analysis works on.

mod decode;
pub mod dtls;
pub mod emit;
mod fast;
pub mod http_connect;
mod link;
#[cfg(test)]
pub(crate) mod testing;

pub use decode::{
    ArpSighting, DecodeError, Decoded, NonIpCounts, NonIpKind, arp_sighting, decode, decode_into,
    decode_ip, non_ip_kind,
};

use serde::Serialize;
use std::fmt;
use std::net::IpAddr;

/// Which way a packet travelled, seen from the capturing host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Sent by the capturing host (the connector).
    Out,
    /// Received by the capturing host.
    In,
    /// The link layer does not say (Ethernet, raw IP): inferred later from flows.
    Unknown,
}

/// TCP flags as on the wire (CWR ECE URG ACK PSH RST SYN FIN).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;

    pub fn fin(self) -> bool {
        self.0 & Self::FIN != 0
    }
    pub fn syn(self) -> bool {
        self.0 & Self::SYN != 0
    }
    pub fn rst(self) -> bool {
        self.0 & Self::RST != 0
    }
    pub fn ack(self) -> bool {
        self.0 & Self::ACK != 0
    }
}

impl fmt::Display for TcpFlags {
    /// Wireshark-like short form: `SYN`, `SYN,ACK`, `RST,ACK`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(u8, &str); 8] = [
            (0x02, "SYN"),
            (0x01, "FIN"),
            (0x04, "RST"),
            (0x08, "PSH"),
            (0x10, "ACK"),
            (0x20, "URG"),
            (0x40, "ECE"),
            (0x80, "CWR"),
        ];
        let mut first = true;
        for (bit, name) in NAMES {
            if self.0 & bit != 0 {
                if !first {
                    f.write_str(",")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if first {
            f.write_str("none")?;
        }
        Ok(())
    }
}

/// The TCP header fields the analysis uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpInfo {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    pub window: u16,
    /// MSS option, when present (SYN and SYN-ACK).
    pub mss: Option<u16>,
    /// Number of TCP options bytes (a forged RST usually has none).
    pub options_len: u8,
    /// TCP payload length from the IP lengths (not limited by the snapshot).
    pub payload_len: u32,
    /// The reserved bits and AE (the low nibble of the data-offset byte):
    /// zero from real stacks, set by some injectors.
    pub reserved: u8,
}

/// The header an ICMP error quotes: the packet that triggered it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotedHeader {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IP protocol number of the quoted packet.
    pub protocol: u8,
    /// TTL of the quoted packet when the router saw it (usually 1 for time exceeded).
    pub ttl: u8,
    /// IPv4 identification of the quoted packet.
    pub ip_id: Option<u16>,
    pub src_port: Option<u16>,
    pub dst_port: Option<u16>,
    /// TCP sequence number, when the quote carries it (first 8 bytes are enough).
    pub tcp_seq: Option<u32>,
}

/// What an ICMP or ICMPv6 message says, in one vocabulary for both versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcmpKind {
    EchoRequest {
        id: u16,
        seq: u16,
    },
    EchoReply {
        id: u16,
        seq: u16,
    },
    /// TTL / hop limit exceeded in transit (code 0) or reassembly (code 1).
    TimeExceeded,
    /// Destination unreachable; `admin_prohibited` for v4 codes 9, 10, 13 and v6 code 1.
    Unreachable {
        admin_prohibited: bool,
    },
    /// IPv4 fragmentation needed (type 3 code 4) or ICMPv6 packet too big.
    PacketTooBig {
        mtu: u32,
    },
    Other,
}

/// An ICMP or ICMPv6 message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpInfo {
    pub v6: bool,
    pub icmp_type: u8,
    pub code: u8,
    pub kind: IcmpKind,
    /// For error messages: the header of the packet that caused it.
    pub quoted: Option<QuotedHeader>,
}

impl IcmpInfo {
    /// A short name such as `time-exceeded` or `unreachable(admin-prohibited)`.
    pub fn describe(&self) -> String {
        match self.kind {
            IcmpKind::EchoRequest { .. } => "echo-request".into(),
            IcmpKind::EchoReply { .. } => "echo-reply".into(),
            IcmpKind::TimeExceeded => "time-exceeded".into(),
            IcmpKind::Unreachable {
                admin_prohibited: true,
            } => format!(
                "unreachable code {} (administratively prohibited)",
                self.code
            ),
            IcmpKind::Unreachable { .. } => format!("unreachable code {}", self.code),
            IcmpKind::PacketTooBig { mtu } => format!("packet-too-big mtu {mtu}"),
            IcmpKind::Other => format!("type {} code {}", self.icmp_type, self.code),
        }
    }
}

/// Transport layer of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Tcp(TcpInfo),
    Udp {
        src_port: u16,
        dst_port: u16,
        len: u16,
    },
    Icmp(IcmpInfo),
    /// Another protocol, or a transport header cut by the snapshot / fragmentation.
    Other {
        protocol: u8,
    },
}

/// One decoded packet: owned, small, what every analysis rule works on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet {
    /// Frame number in the capture (1-based, as Wireshark), or probe number.
    pub frame: u64,
    /// Nanoseconds since the Unix epoch.
    pub ts_ns: i64,
    pub direction: Direction,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// TTL (IPv4) or hop limit (IPv6) as received.
    pub ttl: u8,
    /// IPv4 identification; `None` for IPv6.
    pub ip_id: Option<u16>,
    /// IPv4 don't-fragment bit (always true for IPv6, which never fragments in transit).
    pub df: bool,
    /// Length of the IP packet on the wire (header included).
    pub ip_len: u32,
    /// Link-layer address (MAC) of the frame's sender, when the link has one:
    /// for a routed packet, the gateway that delivered it.
    pub link_src: Option<[u8; 6]>,
    pub transport: Transport,
}

impl Packet {
    /// A slot to decode into ([`decode_into`]); no packet looks like it
    /// (frame 0, no transport).
    pub const PLACEHOLDER: Packet = Packet {
        frame: 0,
        ts_ns: 0,
        direction: Direction::Unknown,
        src: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        dst: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        ttl: 0,
        ip_id: None,
        df: false,
        ip_len: 0,
        link_src: None,
        transport: Transport::Other { protocol: 0 },
    };

    pub fn tcp(&self) -> Option<&TcpInfo> {
        match &self.transport {
            Transport::Tcp(t) => Some(t),
            _ => None,
        }
    }

    pub fn icmp(&self) -> Option<&IcmpInfo> {
        match &self.transport {
            Transport::Icmp(i) => Some(i),
            _ => None,
        }
    }

    pub fn is_v6(&self) -> bool {
        self.src.is_ipv6()
    }
}
