//! Capture files: pcap and pcapng containers, read as a stream of frames.
//!
//! This module only knows containers (blocks, records, timestamps, link
//! types). What is inside a frame is decoded by [`crate::packet`].

mod error;
mod reader;

pub use error::{CaptureError, CaptureWarning};
pub use reader::{CaptureFormat, CaptureReader, FrameRef};

/// Link-layer type of a frame, from the pcap header or the pcapng interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// DLT_NULL (0): BSD loopback, 4-byte address family in host byte order.
    Null,
    /// DLT_EN10MB (1).
    Ethernet,
    /// DLT_RAW (12 or 14 on some systems, LINKTYPE_RAW 101): raw IPv4 or IPv6.
    RawIp,
    /// LINKTYPE_LOOP (108): OpenBSD loopback, address family in network byte order.
    Loop,
    /// LINKTYPE_LINUX_SLL (113): Linux cooked capture v1 (old `tcpdump -i any`).
    LinuxSll,
    /// LINKTYPE_IPV4 (228).
    Ipv4,
    /// LINKTYPE_IPV6 (229).
    Ipv6,
    /// LINKTYPE_LINUX_SLL2 (276): Linux cooked capture v2 (`tcpdump -i any` since 4.99).
    LinuxSll2,
    /// Anything else, with its number.
    Other(u32),
}

impl LinkType {
    pub fn from_number(n: u32) -> LinkType {
        match n {
            0 => LinkType::Null,
            1 => LinkType::Ethernet,
            12 | 14 | 101 => LinkType::RawIp,
            108 => LinkType::Loop,
            113 => LinkType::LinuxSll,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            276 => LinkType::LinuxSll2,
            n => LinkType::Other(n),
        }
    }

    /// The name Wireshark and libpcap use (`LINKTYPE_` without the prefix).
    pub fn name(self) -> String {
        match self {
            LinkType::Null => "NULL".into(),
            LinkType::Ethernet => "ETHERNET".into(),
            LinkType::RawIp => "RAW".into(),
            LinkType::Loop => "LOOP".into(),
            LinkType::LinuxSll => "LINUX_SLL".into(),
            LinkType::Ipv4 => "IPV4".into(),
            LinkType::Ipv6 => "IPV6".into(),
            LinkType::LinuxSll2 => "LINUX_SLL2".into(),
            LinkType::Other(n) => format!("LINKTYPE_{n}"),
        }
    }
}
