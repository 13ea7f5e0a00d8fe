//! Enlarges a real capture by repeating it with its client renumbered, for
//! the real-traffic benchmark (`bench/real-capture.sh`, issue 17).
//!
//! ```sh
//! cargo run --release --example renumber_capture -- --in lab-eth.pcap --out real.pcap \
//!     (--copies N | --size-mb MB) [--pcapng] [--client 198.18.1.1] [--gap-ms 1000]
//! ```
//!
//! Reads the whole capture (pcap or pcapng, one link type: Ethernet or
//! LINUX_SLL2) into memory, then writes it again and again:
//! - copy 0 is the input unchanged; in copy `k` ≥ 1 every occurrence of the
//!   client address (`--client`, default the lab's conn 198.18.1.1) as IPv4
//!   source or destination, in ARP sender/target fields, and in the IPv4
//!   header quoted by an ICMP error, becomes `10.a.b.c` (a distinct address
//!   per copy, `c` in 1..=254), so each copy's TCP flows are new flows;
//! - the IPv4 header checksum, the TCP and UDP checksums (pseudo-header) and
//!   the ICMP checksum are updated incrementally (RFC 1624), so a checksum
//!   that was right stays right (a UDP checksum of 0, "none", stays 0);
//! - timestamps are shifted so copy `k` starts `--gap-ms` (1000) after copy
//!   `k - 1` ended.
//!
//! Output: classic pcap in microseconds (as tcpdump writes), or pcapng
//! (`--pcapng`, one interface, microseconds), same link type. With
//! `--size-mb` it stops before the record that would pass `MB` × 10^6 bytes
//! (a prefix of the same file with a larger size). A JSON summary goes to
//! stdout: frames, bytes, copies, distinct TCP 4-tuples and SYNs written.

use pathproof::capture::{CaptureReader, LinkType, PcapWriter, PcapngWriter, TsPrecision};
use rustc_hash::FxHashSet;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::Ipv4Addr;
use std::path::PathBuf;

const USAGE: &str = "usage: renumber_capture --in FILE --out FILE (--copies N | --size-mb MB) \
[--pcapng] [--client IPV4] [--gap-ms MS]";

struct Args {
    input: PathBuf,
    out: PathBuf,
    copies: Option<u64>,
    size_mb: Option<f64>,
    pcapng: bool,
    client: Ipv4Addr,
    gap_ms: i64,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        input: PathBuf::new(),
        out: PathBuf::new(),
        copies: None,
        size_mb: None,
        pcapng: false,
        client: Ipv4Addr::new(198, 18, 1, 1),
        gap_ms: 1000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "--pcapng" => {
                a.pcapng = true;
                continue;
            }
            _ => {}
        }
        let v = it.next().ok_or(format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {v}: {e}");
        match flag.as_str() {
            "--in" => a.input = v.into(),
            "--out" => a.out = v.into(),
            "--copies" => a.copies = Some(v.parse().map_err(|e| bad(&e))?),
            "--size-mb" => a.size_mb = Some(v.parse().map_err(|e| bad(&e))?),
            "--client" => a.client = v.parse().map_err(|e| bad(&e))?,
            "--gap-ms" => a.gap_ms = v.parse().map_err(|e| bad(&e))?,
            _ => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    if a.input.as_os_str().is_empty() || a.out.as_os_str().is_empty() {
        return Err(USAGE.into());
    }
    if a.copies.is_none() && a.size_mb.is_none() {
        return Err(format!("give --copies or --size-mb\n{USAGE}"));
    }
    Ok(a)
}

// ---------------------------------------------------------------- checksums

/// RFC 1624 eqn. 3: the checksum at `off` after the 16-bit words `old`
/// became `new` in the data it covers. `udp`: 0 means "no checksum" and
/// stays 0; a result of 0 is written 0xffff.
fn adjust(buf: &mut [u8], off: usize, old: &[u16], new: &[u16], udp: bool) {
    let Some(field) = buf.get_mut(off..off + 2) else {
        return; // cut by the snapshot length
    };
    let hc = u16::from_be_bytes([field[0], field[1]]);
    if udp && hc == 0 {
        return;
    }
    let mut sum = u32::from(!hc);
    for (&o, &n) in old.iter().zip(new) {
        sum += u32::from(!o) + u32::from(n);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let mut c = !(sum as u16);
    if udp && c == 0 {
        c = 0xffff;
    }
    field.copy_from_slice(&c.to_be_bytes());
}

fn words(a: [u8; 4]) -> [u16; 2] {
    [
        u16::from_be_bytes([a[0], a[1]]),
        u16::from_be_bytes([a[2], a[3]]),
    ]
}

/// Replaces `from` by `to` at `off` if it is there; true if it was.
fn swap_addr(buf: &mut [u8], off: usize, from: [u8; 4], to: [u8; 4]) -> bool {
    match buf.get_mut(off..off + 4) {
        Some(f) if *f == from => {
            f.copy_from_slice(&to);
            true
        }
        _ => false,
    }
}

/// Renumbers the IPv4 packet at `ip` (header and, for TCP/UDP/ICMP, the
/// transport checksum). `quoted`: inside an ICMP error, where the
/// transport header is cut and its checksum left alone. Returns how many
/// address fields changed.
fn renumber_ipv4(buf: &mut [u8], ip: usize, from: [u8; 4], to: [u8; 4], quoted: bool) -> usize {
    if buf.len() < ip + 20 || buf[ip] >> 4 != 4 {
        return 0;
    }
    let ihl = usize::from(buf[ip] & 0x0f) * 4;
    let proto = buf[ip + 9];
    let first_fragment = u16::from_be_bytes([buf[ip + 6], buf[ip + 7]]) & 0x1fff == 0;
    let l4 = ip + ihl;
    let mut changed = 0;
    for off in [ip + 12, ip + 16] {
        if swap_addr(buf, off, from, to) {
            changed += 1;
            adjust(buf, ip + 10, &words(from), &words(to), false);
            if first_fragment && !quoted {
                match proto {
                    6 => adjust(buf, l4 + 16, &words(from), &words(to), false),
                    17 => adjust(buf, l4 + 6, &words(from), &words(to), true),
                    _ => {}
                }
            }
        }
    }
    // An ICMP error quotes the packet it answers: renumber the quote too,
    // and fix the ICMP checksum, which covers it.
    if proto == 1 && first_fragment && !quoted && buf.len() >= l4 + 8 + 20 {
        let icmp_type = buf[l4];
        if matches!(icmp_type, 3 | 4 | 5 | 11 | 12) {
            let inner = l4 + 8;
            let before: Vec<u16> = buf[inner..inner + 20]
                .chunks(2)
                .map(|w| u16::from_be_bytes([w[0], w[1]]))
                .collect();
            let n = renumber_ipv4(buf, inner, from, to, true);
            if n > 0 {
                let after: Vec<u16> = buf[inner..inner + 20]
                    .chunks(2)
                    .map(|w| u16::from_be_bytes([w[0], w[1]]))
                    .collect();
                adjust(buf, l4 + 2, &before, &after, false);
                changed += n;
            }
        }
    }
    changed
}

/// Offset of the network header and its EtherType.
fn network(link: LinkType, frame: &[u8]) -> Option<(usize, u16)> {
    let be16 = |o: usize| {
        frame
            .get(o..o + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    match link {
        LinkType::Ethernet => {
            let mut off = 12;
            let mut et = be16(off)?;
            while et == 0x8100 || et == 0x88a8 {
                off += 4;
                et = be16(off)?;
            }
            Some((off + 2, et))
        }
        LinkType::LinuxSll2 => Some((20, be16(0)?)),
        _ => None,
    }
}

/// Renumbers one frame in place; returns how many address fields changed.
fn renumber(link: LinkType, frame: &mut [u8], from: [u8; 4], to: [u8; 4]) -> usize {
    match network(link, frame) {
        Some((ip, 0x0800)) => renumber_ipv4(frame, ip, from, to, false),
        Some((arp, 0x0806)) => {
            usize::from(swap_addr(frame, arp + 14, from, to))
                + usize::from(swap_addr(frame, arp + 24, from, to))
        }
        _ => 0,
    }
}

/// The TCP 4-tuple (smaller endpoint first) and whether it is a SYN
/// without ACK.
fn tcp_key(link: LinkType, frame: &[u8]) -> Option<([u8; 12], bool)> {
    let (ip, et) = network(link, frame)?;
    if et != 0x0800 || frame.len() < ip + 20 || frame[ip + 9] != 6 {
        return None;
    }
    let l4 = ip + usize::from(frame[ip] & 0x0f) * 4;
    let ports = frame.get(l4..l4 + 14)?;
    let a: [u8; 6] = [&frame[ip + 12..ip + 16], &ports[0..2]]
        .concat()
        .try_into()
        .ok()?;
    let b: [u8; 6] = [&frame[ip + 16..ip + 20], &ports[2..4]]
        .concat()
        .try_into()
        .ok()?;
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut key = [0u8; 12];
    key[..6].copy_from_slice(&lo);
    key[6..].copy_from_slice(&hi);
    Some((key, ports[13] & 0x12 == 0x02))
}

/// The client's address in copy `k` (k ≥ 1): 10.a.b.c with c in 1..=254.
fn copy_addr(k: u64) -> [u8; 4] {
    let host = (k - 1) % 254 + 1;
    let net = (k - 1) / 254;
    [10, (net >> 8) as u8, net as u8, host as u8]
}

// ---------------------------------------------------------------- output

struct Counting<W: Write> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

enum Out {
    Pcap(PcapWriter<Counting<BufWriter<File>>>),
    Pcapng(PcapngWriter<Counting<BufWriter<File>>>),
}

impl Out {
    fn write(&mut self, ts_ns: i64, orig_len: u32, data: &[u8]) -> io::Result<()> {
        match self {
            Out::Pcap(w) => w.write_frame(ts_ns, orig_len, data),
            Out::Pcapng(w) => w.write_frame(0, ts_ns, orig_len, data),
        }
    }
    fn bytes(&self) -> u64 {
        match self {
            Out::Pcap(w) => w.get_ref().bytes,
            Out::Pcapng(w) => w.get_ref().bytes,
        }
    }
    /// Bytes the record of a `len`-byte frame takes.
    fn record_len(&self, len: usize) -> u64 {
        match self {
            Out::Pcap(_) => 16 + len as u64,
            Out::Pcapng(_) => 32 + len.next_multiple_of(4) as u64,
        }
    }
    fn finish(self) -> io::Result<()> {
        let mut inner = match self {
            Out::Pcap(w) => w.into_inner(),
            Out::Pcapng(w) => w.into_inner(),
        };
        inner.flush()
    }
}

fn run(a: &Args) -> Result<(), String> {
    let mut reader =
        CaptureReader::open(&a.input).map_err(|e| format!("{}: {e}", a.input.display()))?;
    // All frames, back to back, and (ts, orig_len, start, end) per frame.
    let mut data = Vec::new();
    let mut frames: Vec<(i64, u32, usize, usize)> = Vec::new();
    let mut link = None;
    while let Some(f) = reader
        .next_frame()
        .map_err(|e| format!("{}: {e}", a.input.display()))?
    {
        match link {
            None => link = Some(f.link_type),
            Some(l) if l != f.link_type => {
                return Err(format!("{}: more than one link type", a.input.display()));
            }
            _ => {}
        }
        let start = data.len();
        data.extend_from_slice(f.data);
        frames.push((f.ts_ns, f.orig_len, start, data.len()));
    }
    let link = link.ok_or("the input has no frames")?;
    if !matches!(link, LinkType::Ethernet | LinkType::LinuxSll2) {
        return Err(format!(
            "link type {} (only EN10MB and LINUX_SLL2)",
            link.name()
        ));
    }
    let first = frames.first().map(|f| f.0).unwrap_or(0);
    let last = frames.iter().map(|f| f.0).max().unwrap_or(first);
    let period = last - first + a.gap_ms * 1_000_000;

    let file = File::create(&a.out).map_err(|e| format!("{}: {e}", a.out.display()))?;
    let counting = Counting {
        inner: BufWriter::with_capacity(1 << 20, file),
        bytes: 0,
    };
    let io_err = |e: io::Error| format!("{}: {e}", a.out.display());
    let mut out = if a.pcapng {
        let comment = format!(
            "pathproof benchmark: {} repeated with client {} renumbered (examples/renumber_capture.rs)",
            a.input.display(),
            a.client
        );
        let mut w = PcapngWriter::with_comment(counting, Some(&comment)).map_err(io_err)?;
        w.add_interface(link.number(), 6).map_err(io_err)?;
        Out::Pcapng(w)
    } else {
        Out::Pcap(PcapWriter::new(counting, link.number(), 0, TsPrecision::Micro).map_err(io_err)?)
    };
    let limit = a.size_mb.map(|mb| (mb * 1e6) as u64).unwrap_or(u64::MAX);
    let copies = a.copies.unwrap_or(u64::MAX);
    let from = a.client.octets();
    let mut buf = Vec::with_capacity(65536);
    let (mut written, mut renumbered_fields, mut syns) = (0u64, 0u64, 0u64);
    let mut flows: FxHashSet<[u8; 12]> = FxHashSet::default();
    let mut full_copies = 0u64;
    let mut last_client = a.client;
    'copies: for k in 0..copies {
        let to = if k == 0 { from } else { copy_addr(k) };
        last_client = Ipv4Addr::from(to);
        let shift = k as i64 * period;
        for &(ts, orig_len, s, e) in &frames {
            if out.bytes() + out.record_len(e - s) > limit {
                break 'copies;
            }
            buf.clear();
            buf.extend_from_slice(&data[s..e]);
            if k > 0 {
                renumbered_fields += renumber(link, &mut buf, from, to) as u64;
            }
            if let Some((key, syn)) = tcp_key(link, &buf) {
                flows.insert(key);
                syns += u64::from(syn);
            }
            out.write(ts + shift, orig_len, &buf).map_err(io_err)?;
            written += 1;
        }
        full_copies = k + 1;
    }
    let bytes = out.bytes();
    out.finish().map_err(io_err)?;
    let summary = serde_json::json!({
        "input": a.input.display().to_string(),
        "output": a.out.display().to_string(),
        "format": if a.pcapng { "pcapng" } else { "pcap" },
        "link_type": link.name(),
        "size_mb": a.size_mb,
        "bytes": bytes,
        "input_frames": frames.len(),
        "frames": written,
        "full_copies": full_copies,
        "partial_copy": written > full_copies * frames.len() as u64,
        "client": a.client.to_string(),
        "last_client": last_client.to_string(),
        "renumbered_address_fields": renumbered_fields,
        "copy_period_s": period as f64 / 1e9,
        "tcp_4tuples": flows.len(),
        "tcp_syns": syns,
    });
    println!("{}", serde_json::to_string_pretty(&summary).expect("json"));
    Ok(())
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("renumber_capture: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&args) {
        eprintln!("renumber_capture: {e}");
        std::process::exit(1);
    }
}
