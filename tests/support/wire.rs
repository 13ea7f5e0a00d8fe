//! A deliberately small, std-only reader of classic pcap files with Ethernet,
//! Linux cooked v1 or v2 frames carrying IPv4 (TCP, UDP, ICMP), plus a
//! minimal DNS message decoder. The lab's self-tests use it to check the
//! captures independently of pathproof's own decoder; it is no model for
//! that decoder (no pcapng, no IPv6, no VLANs, no validation beyond bounds
//! checks).

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
pub struct Udp {
    pub sport: u16,
    pub dport: u16,
    pub payload: Vec<u8>,
}

#[derive(Clone, Debug)]
pub struct Ipv4Packet {
    /// 1-based record number in the file (Wireshark's frame number).
    pub frame: usize,
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
    pub udp: Option<Udp>,
    /// ICMP (type, code).
    pub icmp: Option<(u8, u8)>,
    /// ICMP message after type, code and checksum (rest of header + data).
    pub icmp_body: Vec<u8>,
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
        if let Some(p) = parse_ipv4(frames, ts, l3) {
            packets.push(p);
        }
    }
    Ok(Pcap {
        linktype,
        frames,
        packets,
    })
}

fn parse_ipv4(frame: usize, ts: f64, b: &[u8]) -> Option<Ipv4Packet> {
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
    let udp = (proto == 17 && first_fragment && body.len() >= 8).then(|| Udp {
        sport: u16be(body, 0),
        dport: u16be(body, 2),
        payload: body[8..].to_vec(),
    });
    let icmp = (proto == 1 && first_fragment && body.len() >= 2).then(|| (body[0], body[1]));
    let icmp_body = if icmp.is_some() && body.len() >= 4 {
        body[4..].to_vec()
    } else {
        Vec::new()
    };
    Some(Ipv4Packet {
        frame,
        ts,
        src: Ipv4Addr::new(b[12], b[13], b[14], b[15]),
        dst: Ipv4Addr::new(b[16], b[17], b[18], b[19]),
        ttl: b[8],
        id: u16be(b, 4),
        df: frag & 0x4000 != 0,
        proto,
        total_len,
        tcp,
        udp,
        icmp,
        icmp_body,
    })
}

/// An ICMP destination-unreachable / fragmentation-needed (type 3 code 4):
/// the next-hop MTU it reports and the header of the packet it quotes.
#[derive(Clone, Debug)]
pub struct FragNeeded {
    pub mtu: u16,
    /// The quoted packet's source, destination and total length.
    pub quoted_src: Ipv4Addr,
    pub quoted_dst: Ipv4Addr,
    pub quoted_len: u16,
}

impl Ipv4Packet {
    /// The ICMP fragmentation-needed details, if this is one.
    pub fn frag_needed(&self) -> Option<FragNeeded> {
        if self.icmp != Some((3, 4)) || self.icmp_body.len() < 4 + 20 {
            return None;
        }
        let b = &self.icmp_body;
        let q = &b[4..];
        Some(FragNeeded {
            mtu: u16be(b, 2),
            quoted_src: Ipv4Addr::new(q[12], q[13], q[14], q[15]),
            quoted_dst: Ipv4Addr::new(q[16], q[17], q[18], q[19]),
            quoted_len: u16be(q, 2),
        })
    }
}

/// A DNS message, decoded as far as the lab needs: header, first question,
/// and the answer records' names, types and data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dns {
    pub id: u16,
    pub response: bool,
    /// RCODE: 0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, 5 REFUSED.
    pub rcode: u8,
    /// The first question's name (no trailing dot) and type.
    pub qname: String,
    pub qtype: u16,
    pub answers: Vec<DnsRecord>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DnsData {
    A(Ipv4Addr),
    Cname(String),
    Other(u16),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsRecord {
    pub name: String,
    pub ttl: u32,
    pub data: DnsData,
}

/// Reads a (possibly compressed) name at `at`; returns it and the offset
/// after it in the original position.
fn dns_name(msg: &[u8], mut at: usize) -> Option<(String, usize)> {
    let mut labels: Vec<String> = Vec::new();
    let mut end = None;
    for _ in 0..64 {
        let len = *msg.get(at)?;
        if len & 0xc0 == 0xc0 {
            let ptr = usize::from(u16be(msg.get(at..at + 2)?, 0) & 0x3fff);
            end.get_or_insert(at + 2);
            at = ptr;
        } else if len == 0 {
            return Some((labels.join("."), end.unwrap_or(at + 1)));
        } else {
            let l = msg.get(at + 1..at + 1 + usize::from(len))?;
            labels.push(String::from_utf8_lossy(l).into_owned());
            at += 1 + usize::from(len);
        }
    }
    None
}

/// Decodes a DNS message (UDP payload); None when it is not one.
pub fn parse_dns(msg: &[u8]) -> Option<Dns> {
    if msg.len() < 12 {
        return None;
    }
    let flags = u16be(msg, 2);
    let (qd, an) = (u16be(msg, 4), u16be(msg, 6));
    if qd == 0 {
        return None;
    }
    let (qname, mut at) = dns_name(msg, 12)?;
    let qtype = u16be(msg.get(at..at + 4)?, 0);
    at += 4;
    for _ in 1..qd {
        at = dns_name(msg, at)?.1 + 4;
    }
    let mut answers = Vec::new();
    for _ in 0..an {
        let (name, after) = dns_name(msg, at)?;
        let fixed = msg.get(after..after + 10)?;
        let rtype = u16be(fixed, 0);
        let ttl = u32be(fixed, 4);
        let rdlen = usize::from(u16be(fixed, 8));
        let rdata = msg.get(after + 10..after + 10 + rdlen)?;
        let data = match rtype {
            1 if rdlen == 4 => DnsData::A(Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3])),
            5 => DnsData::Cname(dns_name(msg, after + 10)?.0),
            t => DnsData::Other(t),
        };
        answers.push(DnsRecord { name, ttl, data });
        at = after + 10 + rdlen;
    }
    Some(Dns {
        id: u16be(msg, 0),
        response: flags & 0x8000 != 0,
        rcode: (flags & 0x000f) as u8,
        qname,
        qtype,
        answers,
    })
}

/// True if `haystack` contains `needle`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}
