//! Capture files: pcap and pcapng containers, read as a stream of frames.
//!
//! This module only knows containers (blocks, records, timestamps, link
//! types). What is inside a frame is decoded by [`crate::packet`].
//!
//! [`CaptureReader`] streams pcap (µs/ns, both byte orders, "modified"
//! little-endian) and pcapng (sections, interfaces, EPB/SPB/obsolete PB),
//! plain or gzip, from a file, stdin or any `Read`, in bounded memory.
//! [`PcapWriter`] and [`PcapngWriter`] write captures (`--save`, tests).

mod error;
mod readahead;
mod reader;
mod writer;

pub use error::{CaptureError, CaptureWarning, Location};
pub use reader::{CaptureFormat, CaptureReader, FrameRef, MAX_BLOCK_LEN};
pub use writer::{PcapWriter, PcapngWriter, TsPrecision};

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

    /// The LINKTYPE_ number to write in a capture (raw IP is written as 101,
    /// whatever number it was read from).
    pub fn number(self) -> u32 {
        match self {
            LinkType::Null => 0,
            LinkType::Ethernet => 1,
            LinkType::RawIp => 101,
            LinkType::Loop => 108,
            LinkType::LinuxSll => 113,
            LinkType::Ipv4 => 228,
            LinkType::Ipv6 => 229,
            LinkType::LinuxSll2 => 276,
            LinkType::Other(n) => n,
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
