//! A deliberately small, std-only reader of classic pcap files with Ethernet,
//! Linux cooked v1 or v2 frames carrying IPv4. The lab's self-tests use it to
//! check the captures independently of pathproof's own decoder; it is no
//! model for that decoder (no pcapng, no IPv6, no VLANs, no validation
//! beyond bounds checks).

use std::net::Ipv4Addr;
use std::path::Path;

pub const LINKTYPE_ETHERNET: u32 = 1;
pub const LINKTYPE_LINUX_SLL: u32 = 113;
pub const LINKTYPE_LINUX_SLL2: u32 = 276;

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;

#[derive(Clone, Debug)]
pub struct Tcp {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub payload: Vec<u8>,
}

#[derive(Clone, Debug)]
pub struct Ipv4Packet {
    /// Seconds since the epoch.
    pub ts: f64,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    pub id: u16,
    pub df: bool,
    pub proto: u8,
    pub total_len: u16,
    pub tcp: Option<Tcp>,
    /// ICMP (type, code).
    pub icmp: Option<(u8, u8)>,
}

impl Ipv4Packet {
    pub fn has(&self, flags: u8) -> bool {
        self.tcp.as_ref().is_some_and(|t| t.flags & flags == flags)
    }
}

/// Renders TCP flags like tcpdump (`S`, `S.`, `R.`, `P.`, ...).
pub fn flag_str(flags: u8) -> String {
    let mut s = String::new();
    for (bit, c) in [(SYN, 'S'), (FIN, 'F'), (PSH, 'P'), (RST, 'R')] {
        if flags & bit != 0 {
            s.push(c);
        }
    }
    if flags & ACK != 0 {
        s.push('.');
    }
    if s.is_empty() {
        s.push_str("none");
    }
    s
}

#[derive(Clone, Debug)]
pub struct Pcap {
    pub linktype: u32,
    /// Every record (frame), including non-IPv4 ones.
    pub frames: usize,
    /// The IPv4 packets among them, in file order.
    pub packets: Vec<Ipv4Packet>,
}

fn u16be(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn u32be(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Reads a classic pcap file; panics with the reason when it cannot.
pub fn read_pcap(path: &Path) -> Pcap {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    parse_pcap(&data).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn parse_pcap(data: &[u8]) -> Result<Pcap, String> {
    if data.len() < 24 {
        return Err("shorter than a pcap header".into());
    }
    let magic = [data[0], data[1], data[2], data[3]];
    let (le, nano) = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] => (true, false),
        [0x4d, 0x3c, 0xb2, 0xa1] => (true, true),
        [0xa1, 0xb2, 0xc3, 0xd4] => (false, false),
        [0xa1, 0xb2, 0x3c, 0x4d] => (false, true),
        _ => return Err(format!("not a classic pcap (magic {magic:02x?})")),
    };
    let rd = |at: usize| -> u32 {
        let b = [data[at], data[at + 1], data[at + 2], data[at + 3]];
        if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    let linktype = rd(20) & 0x0fff_ffff;
    let mut pos = 24;
    let mut frames = 0;
    let mut packets = Vec::new();
    while pos + 16 <= data.len() {
        let (sec, frac, incl) = (rd(pos), rd(pos + 4), rd(pos + 8) as usize);
        pos += 16;
        if pos + incl > data.len() {
            return Err(format!("record {frames} truncated"));
        }
        let frame = &data[pos..pos + incl];
        pos += incl;
        frames += 1;
        let ts = f64::from(sec) + f64::from(frac) / if nano { 1e9 } else { 1e6 };
        let l3 = match linktype {
            LINKTYPE_ETHERNET if frame.len() >= 14 && u16be(frame, 12) == 0x0800 => &frame[14..],
            LINKTYPE_LINUX_SLL if frame.len() >= 16 && u16be(frame, 14) == 0x0800 => &frame[16..],
            LINKTYPE_LINUX_SLL2 if frame.len() >= 20 && u16be(frame, 0) == 0x0800 => &frame[20..],
            _ => continue,
        };
        if let Some(p) = parse_ipv4(ts, l3) {
            packets.push(p);
        }
    }
    Ok(Pcap {
        linktype,
        frames,
        packets,
    })
}

fn parse_ipv4(ts: f64, b: &[u8]) -> Option<Ipv4Packet> {
    if b.len() < 20 || b[0] >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(b[0] & 0x0f) * 4;
    let total_len = u16be(b, 2);
    let end = usize::from(total_len).min(b.len());
    if ihl < 20 || end < ihl {
        return None;
    }
    let frag = u16be(b, 6);
    let proto = b[9];
    let body = &b[ihl..end];
    let first_fragment = frag & 0x1fff == 0;
    let tcp = (proto == 6 && first_fragment && body.len() >= 20).then(|| {
        let off = (usize::from(body[12] >> 4) * 4).clamp(20, body.len());
        Tcp {
            sport: u16be(body, 0),
            dport: u16be(body, 2),
            seq: u32be(body, 4),
            ack: u32be(body, 8),
            flags: body[13],
            window: u16be(body, 14),
            payload: body[off..].to_vec(),
        }
    });
    let icmp = (proto == 1 && first_fragment && body.len() >= 2).then(|| (body[0], body[1]));
    Some(Ipv4Packet {
        ts,
        src: Ipv4Addr::new(b[12], b[13], b[14], b[15]),
        dst: Ipv4Addr::new(b[16], b[17], b[18], b[19]),
        ttl: b[8],
        id: u16be(b, 4),
        df: frag & 0x4000 != 0,
        proto,
        total_len,
        tcp,
        icmp,
    })
}

/// True if `haystack` contains `needle`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}
