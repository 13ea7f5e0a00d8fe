//! Integration tests of `pathproof::capture`: captures built with our writers
//! and with hand-assembled bytes (so the reader is not only checked against
//! its own writer), good and bad.

use flate2::Compression;
use flate2::write::GzEncoder;
use pathproof::capture::{
    CaptureError, CaptureFormat, CaptureReader, CaptureWarning, LinkType, PcapWriter, PcapngWriter,
    TsPrecision,
};
use std::io::{self, Cursor, Read, Write};
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------- helpers

/// An owned copy of a `FrameRef`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Frame {
    number: u64,
    ts_ns: i64,
    link_type: LinkType,
    interface: u32,
    orig_len: u32,
    data: Vec<u8>,
}

/// Everything a reader produced: frames until the end or an error.
struct Outcome {
    frames: Vec<Frame>,
    warnings: Vec<CaptureWarning>,
    error: Option<CaptureError>,
    bytes_read: u64,
    format: Option<CaptureFormat>,
}

fn drain(opened: Result<CaptureReader, CaptureError>) -> Outcome {
    let mut r = match opened {
        Ok(r) => r,
        Err(e) => {
            return Outcome {
                frames: vec![],
                warnings: vec![],
                error: Some(e),
                bytes_read: 0,
                format: None,
            };
        }
    };
    let mut frames = Vec::new();
    let error = loop {
        match r.next_frame() {
            Ok(Some(f)) => frames.push(Frame {
                number: f.number,
                ts_ns: f.ts_ns,
                link_type: f.link_type,
                interface: f.interface,
                orig_len: f.orig_len,
                data: f.data.to_vec(),
            }),
            Ok(None) => break None,
            Err(e) => break Some(e),
        }
    };
    if error.is_some() {
        // The reader is finished after an error.
        assert!(matches!(r.next_frame(), Ok(None)));
    }
    Outcome {
        frames,
        warnings: r.warnings().to_vec(),
        error,
        bytes_read: r.bytes_read(),
        format: Some(r.format()),
    }
}

fn read_bytes(bytes: &[u8]) -> Outcome {
    drain(CaptureReader::from_reader(Box::new(Cursor::new(
        bytes.to_vec(),
    ))))
}

/// Reads expecting no error and no warning.
fn read_ok(bytes: &[u8]) -> Vec<Frame> {
    let out = read_bytes(bytes);
    if let Some(e) = out.error {
        panic!("unexpected error: {e}");
    }
    assert!(out.warnings.is_empty(), "warnings: {:?}", out.warnings);
    assert_eq!(out.bytes_read, bytes.len() as u64);
    out.frames
}

fn read_err(bytes: &[u8]) -> (Vec<Frame>, CaptureError) {
    let out = read_bytes(bytes);
    match out.error {
        Some(e) => (out.frames, e),
        None => panic!("expected an error, got {} frames", out.frames.len()),
    }
}

/// A pipe-like reader: one byte per `read`, and an `Interrupted` first.
struct Trickle {
    data: Vec<u8>,
    pos: usize,
    interrupted: bool,
}

impl Trickle {
    fn new(data: Vec<u8>) -> Trickle {
        Trickle {
            data,
            pos: 0,
            interrupted: false,
        }
    }
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.interrupted {
            self.interrupted = true;
            return Err(io::ErrorKind::Interrupted.into());
        }
        if self.pos >= self.data.len() || buf.is_empty() {
            return Ok(0);
        }
        buf[0] = self.data[self.pos];
        self.pos += 1;
        Ok(1)
    }
}

/// Returns its data, then fails.
struct Failing(Cursor<Vec<u8>>);

impl Read for Failing {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.0.read(buf)? {
            0 => Err(io::Error::other("disk on fire")),
            n => Ok(n),
        }
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("pathproof-{}-{name}", std::process::id()))
}

/// A recognisable frame payload of `len` bytes.
fn payload(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| seed.wrapping_add(i as u8)).collect()
}

// ------------------------------------------------- hand-assembled captures

fn u16b(be: bool, x: u16) -> [u8; 2] {
    if be { x.to_be_bytes() } else { x.to_le_bytes() }
}

fn u32b(be: bool, x: u32) -> [u8; 4] {
    if be { x.to_be_bytes() } else { x.to_le_bytes() }
}

const PCAP_US: u32 = 0xa1b2_c3d4;
const PCAP_NS: u32 = 0xa1b2_3c4d;

fn pcap_header(be: bool, magic: u32, snaplen: u32, linktype: u32) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend(u32b(be, magic));
    v.extend(u16b(be, 2));
    v.extend(u16b(be, 4));
    v.extend(u32b(be, 0));
    v.extend(u32b(be, 0));
    v.extend(u32b(be, snaplen));
    v.extend(u32b(be, linktype));
    v
}

fn pcap_record(be: bool, sec: u32, frac: u32, caplen: u32, orig: u32, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend(u32b(be, sec));
    v.extend(u32b(be, frac));
    v.extend(u32b(be, caplen));
    v.extend(u32b(be, orig));
    v.extend(data);
    v
}

/// A pcapng block: type, length, body padded to 4, length.
fn ng_block(be: bool, block_type: u32, body: &[u8]) -> Vec<u8> {
    let padded = body.len().next_multiple_of(4);
    let len = (12 + padded) as u32;
    let mut v = Vec::new();
    v.extend(u32b(be, block_type));
    v.extend(u32b(be, len));
    v.extend(body);
    v.resize(8 + padded, 0);
    v.extend(u32b(be, len));
    v
}

fn options(be: bool, opts: &[(u16, &[u8])]) -> Vec<u8> {
    let mut v = Vec::new();
    for (code, value) in opts {
        v.extend(u16b(be, *code));
        v.extend(u16b(be, value.len() as u16));
        v.extend(*value);
        v.resize(v.len().next_multiple_of(4), 0);
    }
    if !opts.is_empty() {
        v.extend([0, 0, 0, 0]);
    }
    v
}

fn shb(be: bool) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(u32b(be, 0x1a2b_3c4d));
    b.extend(u16b(be, 1));
    b.extend(u16b(be, 0));
    b.extend(if be {
        (-1i64).to_be_bytes()
    } else {
        (-1i64).to_le_bytes()
    });
    b.extend(options(be, &[(4, b"hand-made")]));
    ng_block(be, 0x0A0D_0D0A, &b)
}

fn idb(
    be: bool,
    linktype: u16,
    snaplen: u32,
    tsresol: Option<u8>,
    tsoffset: Option<i64>,
) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(u16b(be, linktype));
    b.extend(u16b(be, 0));
    b.extend(u32b(be, snaplen));
    let resol = tsresol.map(|r| [r]);
    let offset = tsoffset.map(|o| if be { o.to_be_bytes() } else { o.to_le_bytes() });
    let mut opts: Vec<(u16, &[u8])> = vec![(2, b"eth0")];
    if let Some(r) = &resol {
        opts.push((9, r));
    }
    if let Some(o) = &offset {
        opts.push((14, o));
    }
    b.extend(options(be, &opts));
    ng_block(be, 1, &b)
}

fn epb(be: bool, if_id: u32, ts: u64, orig: u32, data: &[u8], comment: Option<&[u8]>) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(u32b(be, if_id));
    b.extend(u32b(be, (ts >> 32) as u32));
    b.extend(u32b(be, ts as u32));
    b.extend(u32b(be, data.len() as u32));
    b.extend(u32b(be, orig));
    b.extend(data);
    b.resize(b.len().next_multiple_of(4), 0);
    if let Some(c) = comment {
        b.extend(options(be, &[(1, c)]));
    }
    ng_block(be, 6, &b)
}

fn spb(be: bool, orig: u32, stored: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(u32b(be, orig));
    b.extend(stored);
    ng_block(be, 3, &b)
}

/// Obsolete Packet Block (type 2).
fn opb(be: bool, if_id: u16, ts: u64, orig: u32, data: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(u16b(be, if_id));
    b.extend(u16b(be, 7)); // drops count
    b.extend(u32b(be, (ts >> 32) as u32));
    b.extend(u32b(be, ts as u32));
    b.extend(u32b(be, data.len() as u32));
    b.extend(u32b(be, orig));
    b.extend(data);
    ng_block(be, 2, &b)
}

/// Blocks the reader must skip: NRB, ISB, DSB, custom, unknown.
fn noise(be: bool) -> Vec<u8> {
    let mut v = Vec::new();
    let mut nrb = Vec::new();
    nrb.extend(u16b(be, 1)); // nrb_record_ipv4
    nrb.extend(u16b(be, 13));
    nrb.extend([10, 0, 0, 1]);
    nrb.extend(b"host.lan\0");
    nrb.resize(nrb.len().next_multiple_of(4), 0);
    nrb.extend([0, 0, 0, 0]); // nrb_record_end
    v.extend(ng_block(be, 4, &nrb));
    let mut isb = Vec::new();
    isb.extend(u32b(be, 0));
    isb.extend(u32b(be, 1));
    isb.extend(u32b(be, 2));
    v.extend(ng_block(be, 5, &isb));
    let mut dsb = Vec::new();
    dsb.extend(u32b(be, 0x544c_534b)); // TLS key log
    dsb.extend(u32b(be, 4));
    dsb.extend(b"key\n");
    v.extend(ng_block(be, 0x0A, &dsb));
    v.extend(ng_block(be, 0x0BAD, &[0, 0, 0x7e, 0xd3, 1, 2, 3]));
    v.extend(ng_block(be, 0x4000_0BAD, &[0, 0, 0x7e, 0xd3]));
    v.extend(ng_block(be, 0x1234_5678, &[9; 10]));
    v
}

// ------------------------------------------------------------------ pcap

#[test]
fn pcap_all_magics_and_byte_orders() {
    for (be, magic, frac_ns) in [
        (false, PCAP_US, 1000),
        (true, PCAP_US, 1000),
        (false, PCAP_NS, 1),
        (true, PCAP_NS, 1),
    ] {
        let mut b = pcap_header(be, magic, 65535, 1);
        let frames = [
            (1_700_000_000u32, 123_456u32, payload(1, 60), 60u32),
            (1_700_000_001, 999_999, Vec::new(), 0),
            (4_000_000_000, 1, payload(7, 1), 1514), // after 2038: ts_sec is unsigned
        ];
        for (sec, frac, data, orig) in &frames {
            b.extend(pcap_record(be, *sec, *frac, data.len() as u32, *orig, data));
        }
        let got = read_ok(&b);
        assert_eq!(got.len(), 3, "be={be} magic={magic:x}");
        for (i, (f, (sec, frac, data, orig))) in got.iter().zip(&frames).enumerate() {
            assert_eq!(f.number, i as u64 + 1);
            assert_eq!(
                f.ts_ns,
                i64::from(*sec) * 1_000_000_000 + i64::from(*frac) * frac_ns
            );
            assert_eq!(&f.data, data);
            assert_eq!(f.orig_len, *orig);
            assert_eq!(f.link_type, LinkType::Ethernet);
            assert_eq!(f.interface, 0);
        }
    }
}

#[test]
fn pcap_linktype_ignores_fcs_bits_and_snaplen_zero_is_allowed() {
    // LT_FCS_LENGTH_PRESENT | 4-byte FCS | LINKTYPE_LINUX_SLL2
    let mut b = pcap_header(false, PCAP_US, 0, 0x4400_0000 | 276);
    b.extend(pcap_record(false, 1, 2, 100, 100, &payload(0, 100)));
    let got = read_ok(&b);
    assert_eq!(got[0].link_type, LinkType::LinuxSll2);
}

#[test]
fn pcap_modified_kuznetzov_format() {
    let mut b = pcap_header(false, 0xa1b2_cd34, 65535, 1);
    for i in 0..2u32 {
        let data = payload(i as u8, 42);
        let mut rec = pcap_record(false, 10 + i, 500, 42, 42, &[]);
        rec.extend(3u32.to_le_bytes()); // ifindex
        rec.extend(0x0800u16.to_le_bytes()); // protocol
        rec.extend([0, 0]); // pkt_type, pad
        rec.extend(&data);
        b.extend(rec);
    }
    let got = read_ok(&b);
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].ts_ns, 11_000_500_000);
    assert_eq!(got[1].data, payload(1, 42));
}

#[test]
fn pcap_writer_round_trip() {
    for precision in [TsPrecision::Micro, TsPrecision::Nano] {
        let mut w = PcapWriter::new(Vec::new(), 101, 0, precision).unwrap();
        let ts = 1_700_000_000_123_456_789i64;
        w.write_frame(ts, 1500, &payload(3, 40)).unwrap();
        w.write_frame(ts + 1, 0, &[]).unwrap();
        let bytes = w.into_inner();
        let got = read_ok(&bytes);
        assert_eq!(got.len(), 2);
        let expect = match precision {
            TsPrecision::Micro => ts / 1000 * 1000,
            TsPrecision::Nano => ts,
        };
        assert_eq!(got[0].ts_ns, expect);
        assert_eq!(got[0].link_type, LinkType::RawIp);
        assert_eq!(got[0].orig_len, 1500);
        assert_eq!(got[0].data, payload(3, 40));
        assert_eq!(got[1].data, Vec::<u8>::new());
    }
}

#[test]
fn pcap_writer_cuts_frames_to_snaplen() {
    let mut w = PcapWriter::new(Vec::new(), 1, 64, TsPrecision::Micro).unwrap();
    w.write_frame(0, 100, &payload(0, 100)).unwrap();
    assert!(w.write_frame(-1, 0, &[]).is_err());
    let got = read_ok(&w.into_inner());
    assert_eq!(got[0].data, payload(0, 64));
    assert_eq!(got[0].orig_len, 100);
}

// ---------------------------------------------------------------- pcapng

#[test]
fn pcapng_writer_interfaces_with_different_linktypes_and_resolutions() {
    let mut w = PcapngWriter::new(Vec::new()).unwrap();
    assert_eq!(w.add_interface(1, 6).unwrap(), 0); // Ethernet, µs
    assert_eq!(w.add_interface(101, 9).unwrap(), 1); // raw IP, ns
    assert_eq!(w.add_interface(113, 0x8a).unwrap(), 2); // SLL, 2^-10 s
    assert!(w.add_interface(70000, 6).is_err());
    assert!(w.add_interface(1, 30).is_err());
    let ts = 1_700_000_000_123_456_789i64;
    for i in 0..9u32 {
        let iface = i % 3;
        w.write_frame(
            iface,
            ts + i64::from(i),
            60 + i,
            &payload(i as u8, 5 + i as usize),
        )
        .unwrap();
    }
    let got = read_ok(&w.into_inner());
    assert_eq!(got.len(), 9);
    for (i, f) in got.iter().enumerate() {
        let ts_i = ts + i as i64;
        let iface = i as u32 % 3;
        assert_eq!(f.number, i as u64 + 1);
        assert_eq!(f.interface, iface);
        assert_eq!(f.orig_len, 60 + i as u32);
        assert_eq!(f.data, payload(i as u8, 5 + i));
        let (link, ts_expect) = match iface {
            0 => (LinkType::Ethernet, ts_i / 1000 * 1000),
            1 => (LinkType::RawIp, ts_i),
            _ => {
                let units = (ts_i as i128 * 1024) / 1_000_000_000;
                (LinkType::LinuxSll, (units * 1_000_000_000 / 1024) as i64)
            }
        };
        assert_eq!(f.link_type, link);
        assert_eq!(f.ts_ns, ts_expect, "frame {}", f.number);
    }
}

/// Two sections of opposite byte orders, every packet block kind, options,
/// tsoffset, and blocks that must be skipped.
fn mixed_pcapng(first_be: bool) -> Vec<u8> {
    let (a, b) = (first_be, !first_be);
    let mut v = Vec::new();
    // Section 1: Ethernet in ns with +100 s offset.
    v.extend(shb(a));
    v.extend(idb(a, 1, 0, Some(9), Some(100)));
    v.extend(noise(a));
    v.extend(epb(
        a,
        0,
        1_700_000_000_123_456_789,
        60,
        &payload(1, 60),
        Some(b"hi"),
    ));
    v.extend(opb(a, 0, 5_000_000_000, 1000, &payload(2, 13)));
    // Section 2: interfaces reset; raw IP in µs (default), SLL2 at 2^-10 s, -5 s.
    v.extend(shb(b));
    v.extend(noise(b));
    v.extend(idb(b, 101, 0, None, None));
    v.extend(idb(b, 276, 0, Some(0x8a), Some(-5)));
    v.extend(epb(b, 1, 1536, 33, &payload(3, 33), None));
    v.extend(spb(b, 7, &payload(4, 7)));
    v.extend(opb(b, 1, 1024, 4, &payload(5, 4)));
    v.extend(epb(
        b,
        0,
        1_700_000_000_000_001,
        3,
        &payload(6, 3),
        Some(b"x"),
    ));
    v
}

/// Frame numbers of `mixed_pcapng`'s packets: as in Wireshark, the two
/// custom blocks of each `noise` take a number too.
const MIXED_NUMBERS: [u64; 6] = [3, 4, 7, 8, 9, 10];

fn check_mixed(got: &[Frame]) {
    let expect = [
        (
            1_700_000_100_123_456_789i64,
            LinkType::Ethernet,
            0u32,
            60u32,
            payload(1, 60),
        ),
        (
            5_000_000_000 + 100_000_000_000,
            LinkType::Ethernet,
            0,
            1000,
            payload(2, 13),
        ),
        (
            1_500_000_000 - 5_000_000_000,
            LinkType::LinuxSll2,
            1,
            33,
            payload(3, 33),
        ),
        (0, LinkType::RawIp, 0, 7, payload(4, 7)),
        (-4_000_000_000, LinkType::LinuxSll2, 1, 4, payload(5, 4)),
        (
            1_700_000_000_000_001_000,
            LinkType::RawIp,
            0,
            3,
            payload(6, 3),
        ),
    ];
    assert_eq!(got.len(), expect.len());
    for (i, (f, (ts, link, iface, orig, data))) in got.iter().zip(expect).enumerate() {
        assert_eq!(f.number, MIXED_NUMBERS[i], "Wireshark's frame numbers");
        assert_eq!(f.ts_ns, ts, "frame {}", f.number);
        assert_eq!(f.link_type, link, "frame {}", f.number);
        assert_eq!(f.interface, iface, "frame {}", f.number);
        assert_eq!(f.orig_len, orig, "frame {}", f.number);
        assert_eq!(f.data, data, "frame {}", f.number);
    }
}

#[test]
fn pcapng_sections_byte_orders_block_kinds() {
    for first_be in [false, true] {
        let bytes = mixed_pcapng(first_be);
        let out = read_bytes(&bytes);
        assert!(out.error.is_none(), "{:?}", out.error);
        assert_eq!(out.format, Some(CaptureFormat::Pcapng));
        assert_eq!(out.bytes_read, bytes.len() as u64);
        check_mixed(&out.frames);
        // The SPB (frame 8) is noted once.
        assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
        assert_eq!(out.warnings[0].frame, Some(8));
        assert!(out.warnings[0].message.contains("no timestamp"));
    }
}

#[test]
fn pcapng_spb_caplen_is_limited_by_snaplen_of_interface_0() {
    let mut v = shb(false);
    v.extend(idb(false, 1, 4, None, None));
    v.extend(spb(false, 10, &payload(0, 4))); // cut to the 4-byte snaplen
    v.extend(spb(false, 3, &payload(1, 3))); // padded to 4 in the block
    let out = read_bytes(&v);
    assert!(out.error.is_none());
    assert_eq!(out.frames[0].data, payload(0, 4));
    assert_eq!(out.frames[0].orig_len, 10);
    assert_eq!(out.frames[1].data, payload(1, 3));
}

#[test]
fn pcapng_without_packets_and_big_frame_growing_the_buffer() {
    let mut w = PcapngWriter::new(Vec::new()).unwrap();
    w.add_interface(1, 9).unwrap();
    assert!(read_ok(w.get_ref()).is_empty());
    // 3 MiB frame: more than the 1 MiB initial buffer.
    let big = payload(9, 3 << 20);
    w.write_frame(0, 5, big.len() as u32, &big).unwrap();
    w.write_frame(0, 6, 1, &[1]).unwrap();
    let got = read_ok(&w.into_inner());
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].data, big);
    assert_eq!(got[1].ts_ns, 6);
}

// ------------------------------------------------------ inputs and streams

#[test]
fn trickling_reader_one_byte_at_a_time() {
    let mut pcap = pcap_header(true, PCAP_NS, 65535, 1);
    for i in 0..50u32 {
        pcap.extend(pcap_record(true, i, i, 20, 20, &payload(i as u8, 20)));
    }
    let ng = mixed_pcapng(false);
    for (bytes, n) in [
        (pcap.clone(), 50),
        (ng.clone(), 6),
        (gzip(&ng), 6),
        (gzip(&pcap), 50),
    ] {
        let out = drain(CaptureReader::from_reader(Box::new(Trickle::new(bytes))));
        assert!(out.error.is_none(), "{:?}", out.error);
        assert_eq!(out.frames.len(), n);
        if n == 6 {
            check_mixed(&out.frames);
        } else {
            assert_eq!(out.frames[49].data, payload(49, 20));
            assert_eq!(out.bytes_read, pcap.len() as u64);
        }
    }
}

#[test]
fn gzip_files_and_streams() {
    let plain = mixed_pcapng(true);
    let gz = gzip(&plain);
    let path = temp_path("mixed.pcapng.gz");
    std::fs::write(&path, &gz).unwrap();
    let r = CaptureReader::open(&path).unwrap();
    assert!(r.is_gzip());
    let out = drain(Ok(r));
    std::fs::remove_file(&path).unwrap();
    assert!(out.error.is_none());
    // Offsets are in the decompressed stream.
    assert_eq!(out.bytes_read, plain.len() as u64);
    check_mixed(&out.frames);

    // Multi-member gzip, cut in the middle of a block.
    let (x, y) = plain.split_at(101);
    let mut two = gzip(x);
    two.extend(gzip(y));
    let out = read_bytes(&two);
    assert!(out.error.is_none());
    check_mixed(&out.frames);
}

#[test]
fn plain_file_by_path() {
    let mut w = PcapWriter::new(Vec::new(), 1, 65535, TsPrecision::Nano).unwrap();
    w.write_frame(42, 1, &[0xff]).unwrap();
    let path = temp_path("one.pcap");
    std::fs::write(&path, w.into_inner()).unwrap();
    let r = CaptureReader::open(&path).unwrap();
    assert!(!r.is_gzip());
    assert_eq!(r.format(), CaptureFormat::Pcap);
    let out = drain(Ok(r));
    std::fs::remove_file(&path).unwrap();
    assert_eq!(out.frames.len(), 1);
    assert_eq!(out.frames[0].ts_ns, 42);
}

#[test]
fn open_errors_name_the_path() {
    let missing = temp_path("does-not-exist.pcap");
    let e = CaptureReader::open(&missing).err().unwrap();
    assert!(matches!(e, CaptureError::Open { .. }));
    assert!(e.to_string().contains("does-not-exist.pcap"), "{e}");
    let e = CaptureReader::open(&std::env::temp_dir()).err().unwrap();
    assert!(e.to_string().contains("directory"), "{e}");
}

#[test]
fn read_error_reports_offset() {
    let mut b = pcap_header(false, PCAP_US, 65535, 1);
    b.extend(pcap_record(false, 1, 1, 10, 10, &payload(0, 10)));
    b.extend(&pcap_record(false, 1, 1, 10, 10, &payload(0, 10))[..5]);
    let out = drain(CaptureReader::from_reader(Box::new(Failing(Cursor::new(
        b,
    )))));
    assert_eq!(out.frames.len(), 1);
    let e = out.error.unwrap();
    assert!(matches!(e, CaptureError::Io { .. }));
    let msg = e.to_string();
    assert!(
        msg.contains("disk on fire") && msg.contains("byte offset 55"),
        "{msg}"
    );
}

#[test]
fn many_small_frames() {
    const N: u32 = 200_000;
    let mut w = PcapWriter::new(Vec::new(), 1, 65535, TsPrecision::Micro).unwrap();
    let mut ng = PcapngWriter::new(Vec::new()).unwrap();
    ng.add_interface(1, 6).unwrap();
    for i in 0..N {
        let data = payload(i as u8, 14 + (i % 50) as usize);
        w.write_frame(i64::from(i) * 1000, 64, &data).unwrap();
        ng.write_frame(0, i64::from(i) * 1000, 64, &data).unwrap();
    }
    for bytes in [w.into_inner(), ng.into_inner()] {
        let mut r = CaptureReader::from_reader(Box::new(Cursor::new(bytes.clone()))).unwrap();
        let mut count = 0u64;
        let mut total = 0usize;
        while let Some(f) = r.next_frame().unwrap() {
            count += 1;
            assert_eq!(f.number, count);
            total += f.data.len();
        }
        assert_eq!(count, u64::from(N));
        assert_eq!(r.frames_read(), u64::from(N));
        assert_eq!(total, (0..N).map(|i| 14 + (i % 50) as usize).sum::<usize>());
        assert_eq!(r.bytes_read(), bytes.len() as u64);
        assert!(r.warnings().is_empty());
    }
}

// -------------------------------------------------------------- bad input

fn assert_msg(e: &CaptureError, parts: &[&str]) {
    let msg = e.to_string();
    for p in parts {
        assert!(msg.contains(p), "{p:?} not in: {msg}");
    }
}

#[test]
fn empty_input() {
    let (_, e) = read_err(&[]);
    assert!(matches!(e, CaptureError::Empty), "{e}");
    let (_, e) = read_err(&gzip(&[]));
    assert!(matches!(e, CaptureError::Empty), "{e}");
}

#[test]
fn input_shorter_than_the_header() {
    let (_, e) = read_err(&pcap_header(false, PCAP_US, 65535, 1)[..10]);
    assert!(matches!(e, CaptureError::TooShort { .. }));
    assert_msg(&e, &["pcap file header", "24 bytes", "byte offset 10"]);
    let (_, e) = read_err(&[0xd4, 0xc3]);
    assert_msg(&e, &["byte offset 2"]);
    let (_, e) = read_err(&shb(true)[..20]);
    assert_msg(&e, &["Section Header Block", "byte offset 20"]);
    let (_, e) = read_err(&shb(false)[..11]);
    assert_msg(&e, &["Section Header Block", "byte offset 11"]);
}

#[test]
fn wrong_magic_shows_the_bytes() {
    let (_, e) = read_err(b"GET / HTTP/1.1\r\nHost: example\r\n\r\n");
    assert!(matches!(e, CaptureError::BadMagic { .. }));
    assert_msg(&e, &["47 45 54 20", "\"GET \"", "byte offset 0"]);
    let (_, e) = read_err(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    assert_msg(&e, &["00 01 02 03"]);
    // Big-endian "modified" pcap is not supported: say so.
    let (_, e) = read_err(&pcap_header(true, 0xa1b2_cd34, 65535, 1));
    assert!(matches!(e, CaptureError::Unsupported { .. }), "{e}");
}

/// libpcap reads a record longer than the header's snapshot length (some
/// writers put a wrong value there; tcpdump's own test captures have
/// dozens): so does pathproof, with one warning.
#[test]
fn caplen_larger_than_snaplen_is_read_with_a_warning() {
    let mut b = pcap_header(false, PCAP_US, 100, 1);
    b.extend(pcap_record(false, 1, 1, 100, 100, &payload(0, 100)));
    b.extend(pcap_record(false, 1, 1, 101, 101, &payload(0, 101)));
    b.extend(pcap_record(false, 1, 1, 150, 150, &payload(0, 150)));
    let out = read_bytes(&b);
    assert!(out.error.is_none(), "{:?}", out.error);
    assert_eq!(out.frames.len(), 3);
    assert_eq!(out.frames[1].data.len(), 101);
    assert_eq!(out.frames[2].data, payload(0, 150));
    assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
    let w = &out.warnings[0].message;
    assert!(w.contains("frame 2 at byte offset 140"), "{w}");
    assert!(
        w.contains("snapshot length in the file header (100)"),
        "{w}"
    );
}

/// Above libpcap's own bound (262144) a caplen is corrupt: pcap has no other
/// framing, so nothing after it can be trusted.
#[test]
fn caplen_larger_than_libpcap_accepts() {
    let mut b = pcap_header(false, PCAP_US, 65535, 1);
    b.extend(pcap_record(false, 1, 1, 100, 100, &payload(0, 100)));
    b.extend(pcap_record(false, 1, 1, 262_145, 262_145, &payload(0, 10)));
    let (frames, e) = read_err(&b);
    assert_eq!(frames.len(), 1);
    assert!(matches!(e, CaptureError::CaplenTooLarge { .. }));
    assert_msg(
        &e,
        &["frame 2 at byte offset 140", "262145", "262144", "libpcap"],
    );
}

#[test]
fn caplen_larger_than_max_when_snaplen_is_zero_or_huge() {
    for snaplen in [0, u32::MAX] {
        let mut b = pcap_header(true, PCAP_NS, snaplen, 1);
        b.extend(pcap_record(true, 1, 1, 262_145, 262_145, &[]));
        let (frames, e) = read_err(&b);
        assert!(frames.is_empty());
        assert_msg(&e, &["frame 1 at byte offset 24", "262145", "262144"]);
    }
}

/// A one-interface pcapng with one good EPB, then `tail`.
fn ng_then(tail: &[u8]) -> Vec<u8> {
    let mut v = shb(false);
    v.extend(idb(false, 1, 0, None, None));
    v.extend(epb(false, 0, 1, 4, &[1, 2, 3, 4], None));
    v.extend(tail);
    v
}

#[test]
fn pcapng_corrupt_block_lengths() {
    let good = epb(false, 0, 2, 4, &[1, 2, 3, 4], None);
    let off = ng_then(&[]).len().to_string();
    let at = format!("frame 2 at byte offset {off}");
    let set_len = |len: u32| {
        let mut b = good.clone();
        b[4..8].copy_from_slice(&len.to_le_bytes());
        b
    };
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (set_len(20), "minimum"),
        (set_len(38), "multiple of 4"),
        (set_len(0x7fff_fff0), "limit"),
        (
            {
                let mut b = good.clone();
                let n = b.len();
                b[n - 4..].copy_from_slice(&40u32.to_le_bytes());
                b
            },
            "at its end",
        ),
        (
            {
                // Length 0xc0000000 for a non-packet block: no frame number.
                let mut b = ng_block(false, 4, &[0; 4]);
                b[4..8].copy_from_slice(&0xc000_0000u32.to_le_bytes());
                b
            },
            "Name Resolution Block",
        ),
    ];
    for (tail, what) in cases {
        let (frames, e) = read_err(&ng_then(&tail));
        assert_eq!(frames.len(), 1, "{what}");
        let where_ = if what == "Name Resolution Block" {
            format!("byte offset {off}: ")
        } else {
            at.clone()
        };
        assert_msg(&e, &[what, &where_]);
    }
}

#[test]
fn pcapng_caplen_not_fitting_in_its_block() {
    let mut b = epb(false, 0, 2, 4, &[1, 2, 3, 4], None);
    b[20..24].copy_from_slice(&64u32.to_le_bytes());
    let (frames, e) = read_err(&ng_then(&b));
    assert_eq!(frames.len(), 1);
    assert!(matches!(e, CaptureError::BadBlock { .. }));
    assert_msg(&e, &["frame 2", "captured length 64", "block length 36"]);
}

#[test]
fn pcapng_first_block_not_shb() {
    let mut v = idb(false, 1, 0, None, None);
    v.extend(epb(false, 0, 1, 1, &[1], None));
    let (_, e) = read_err(&v);
    assert!(matches!(e, CaptureError::NotShb { .. }), "{e}");
    assert_msg(&e, &["Interface Description Block", "byte offset 0"]);
    let (_, e) = read_err(&epb(true, 0, 1, 1, &[1], None));
    assert_msg(&e, &["Enhanced Packet Block"]);
}

#[test]
fn pcapng_bad_section_headers() {
    let mut bad_bom = shb(false);
    bad_bom[8..12].copy_from_slice(&[1, 2, 3, 4]);
    let (_, e) = read_err(&bad_bom);
    assert_msg(&e, &["byte-order magic", "01 02 03 04", "byte offset 0"]);
    // The same in a second section.
    let (frames, e) = read_err(&ng_then(&bad_bom));
    assert_eq!(frames.len(), 1);
    assert_msg(&e, &["byte-order magic", "byte offset"]);
    let mut mismatch = shb(true);
    let n = mismatch.len();
    mismatch[n - 1] ^= 4;
    let (_, e) = read_err(&mismatch);
    assert!(matches!(e, CaptureError::BlockLengthMismatch { .. }), "{e}");
    assert_msg(&e, &["byte offset 0", "Section Header Block"]);
    let mut v2 = shb(false);
    v2[12..14].copy_from_slice(&2u16.to_le_bytes());
    let (_, e) = read_err(&v2);
    assert!(matches!(e, CaptureError::Unsupported { .. }), "{e}");
}

#[test]
fn pcapng_packet_for_undeclared_interface() {
    let tail = epb(false, 3, 2, 4, &[1, 2, 3, 4], None);
    let off = ng_then(&[]).len();
    let (frames, e) = read_err(&ng_then(&tail));
    assert_eq!(frames.len(), 1);
    assert!(matches!(e, CaptureError::UnknownInterface { .. }));
    assert_msg(
        &e,
        &[
            &format!("frame 2 at byte offset {off}"),
            "interface 3",
            "only 1",
        ],
    );
    // SPB before any IDB.
    let mut v = shb(true);
    v.extend(spb(true, 4, &[1, 2, 3, 4]));
    let (_, e) = read_err(&v);
    assert_msg(&e, &["frame 1", "interface 0", "only 0"]);
    // Interfaces do not survive a new section.
    let mut v = ng_then(&shb(false));
    v.extend(epb(false, 0, 2, 4, &[1, 2, 3, 4], None));
    let (frames, e) = read_err(&v);
    assert_eq!(frames.len(), 1);
    assert_msg(&e, &["frame 2", "interface 0"]);
}

#[test]
fn pcapng_invalid_tsresol() {
    let mut v = shb(false);
    v.extend(idb(false, 1, 0, Some(20), None));
    let (_, e) = read_err(&v);
    let at = format!("byte offset {}", shb(false).len());
    assert_msg(&e, &["if_tsresol 0x14", "Interface Description Block", &at]);
}

fn truncation_message(frame: u64, offset: usize, need: usize, have: usize) -> String {
    format!(
        "capture truncated: frame {frame} at byte offset {offset} needs {need} bytes, only {have} present"
    )
}

#[test]
fn truncated_last_pcap_frame_is_a_warning() {
    let mut b = pcap_header(false, PCAP_US, 65535, 1);
    for i in 0..3 {
        b.extend(pcap_record(false, i, 0, 60, 60, &payload(0, 60)));
    }
    let full = b.len();
    b.extend(&pcap_record(false, 9, 0, 60, 60, &payload(0, 60))[..36]);
    let out = read_bytes(&b);
    assert!(out.error.is_none(), "{:?}", out.error);
    assert_eq!(out.frames.len(), 3);
    assert_eq!(out.bytes_read, full as u64);
    assert_eq!(out.warnings.len(), 1);
    assert_eq!(out.warnings[0].message, truncation_message(4, full, 76, 36));
    assert_eq!(out.warnings[0].frame, Some(4));
    assert_eq!(out.warnings[0].offset, full as u64);
    // Cut inside the record header.
    let out = read_bytes(&b[..full + 5]);
    assert_eq!(out.frames.len(), 3);
    assert_eq!(out.warnings[0].message, truncation_message(4, full, 16, 5));
}

#[test]
fn truncated_last_pcapng_block_is_a_warning() {
    let whole = ng_then(&epb(false, 0, 2, 10, &payload(0, 10), None));
    let cut = whole.len() - 3;
    let start = ng_then(&[]).len();
    let out = read_bytes(&whole[..cut]);
    assert!(out.error.is_none());
    assert_eq!(out.frames.len(), 1);
    assert_eq!(
        out.warnings[0].message,
        truncation_message(2, start, 44, 41)
    );
    // Cut inside the 8-byte block header of a packet block.
    let out = read_bytes(&whole[..start + 6]);
    assert_eq!(out.warnings[0].message, truncation_message(2, start, 8, 6));
    // A cut non-packet block is named as such.
    let out = read_bytes(&ng_then(&noise(false)[..30]));
    assert_eq!(out.frames.len(), 1);
    assert!(
        out.warnings[0].message.contains("Name Resolution Block"),
        "{:?}",
        out.warnings
    );
}

#[test]
fn truncated_gzip_keeps_the_frames_before() {
    let mut w = PcapWriter::new(Vec::new(), 1, 65535, TsPrecision::Micro).unwrap();
    for i in 0..2000 {
        w.write_frame(i, 100, &payload(i as u8, 100)).unwrap();
    }
    let gz = gzip(&w.into_inner());
    let out = read_bytes(&gz[..gz.len() / 2]);
    assert!(out.error.is_none(), "{:?}", out.error);
    assert!(out.frames.len() > 100 && out.frames.len() < 2000);
    assert!(
        out.warnings
            .iter()
            .any(|w| w.message.contains("gzip stream truncated")),
        "{:?}",
        out.warnings
    );
}

#[test]
fn corrupt_gzip_is_an_error() {
    let mut gz = gzip(&mixed_pcapng(false));
    let n = gz.len();
    gz[n / 2] ^= 0xff;
    gz[n / 2 + 1] ^= 0xff;
    let out = read_bytes(&gz);
    // Either the deflate/CRC check or the garbage it produced is reported.
    assert!(out.error.is_some(), "corrupt deflate data must fail");
}

#[test]
#[ignore = "writes hand-made captures for a manual check with tshark"]
fn write_cross_check_files() {
    // PATHPROOF_XCHECK_DIR=/tmp/x cargo test --test capture_reader -- --ignored write_cross
    let dir = std::env::var_os("PATHPROOF_XCHECK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| temp_path("xcheck"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("mixed-le.pcapng"), mixed_pcapng(false)).unwrap();
    std::fs::write(dir.join("mixed-be.pcapng"), mixed_pcapng(true)).unwrap();
    let mut w = PcapngWriter::new(Vec::new()).unwrap();
    for (link, resol) in [(1, 6), (101, 9), (113, 0x8a), (276, 3)] {
        w.add_interface(link, resol).unwrap();
    }
    for i in 0..1000u32 {
        let ts = 1_700_000_000_000_000_000 + i64::from(i) * 1_234_567;
        w.write_frame(i % 4, ts, 100 + i, &payload(i as u8, (i % 300) as usize))
            .unwrap();
    }
    std::fs::write(dir.join("writer.pcapng"), w.into_inner()).unwrap();
    for (name, precision) in [
        ("writer-us.pcap", TsPrecision::Micro),
        ("writer-ns.pcap", TsPrecision::Nano),
    ] {
        let mut w = PcapWriter::new(Vec::new(), 1, 0, precision).unwrap();
        for i in 0..1000u32 {
            let ts = 1_700_000_000_000_000_000 + i64::from(i) * 1_234_567;
            w.write_frame(ts, 100 + i, &payload(i as u8, (i % 300) as usize))
                .unwrap();
        }
        std::fs::write(dir.join(name), w.into_inner()).unwrap();
    }
    let mut be = pcap_header(true, PCAP_NS, 65535, 1);
    for i in 0..100u32 {
        be.extend(pcap_record(
            true,
            1_700_000_000 + i,
            i * 7,
            60,
            80,
            &tcp_rst_frame(i as u8),
        ));
    }
    std::fs::write(dir.join("be-ns.pcap"), be).unwrap();
}

#[test]
fn stdin_dash() {
    // Runs this test binary again as a child reading `-`, fed a gzip pcap.
    let mut w = PcapWriter::new(Vec::new(), 1, 65535, TsPrecision::Nano).unwrap();
    for i in 0..1234 {
        w.write_frame(i, 60, &payload(i as u8, 60)).unwrap();
    }
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "stdin_child", "--ignored", "--test-threads=1"])
        .env("PATHPROOF_STDIN_FRAMES", "1234")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let gz = gzip(&w.into_inner());
    let mut stdin = child.stdin.take().unwrap();
    // Written in small pieces from another thread, as a pipe would deliver it.
    let feeder = std::thread::spawn(move || {
        for chunk in gz.chunks(100) {
            stdin.write_all(chunk).unwrap();
        }
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "{text}");
}

#[test]
#[ignore = "child process of stdin_dash"]
fn stdin_child() {
    let Ok(expect) = std::env::var("PATHPROOF_STDIN_FRAMES") else {
        return;
    };
    let out = drain(CaptureReader::open(Path::new("-")));
    assert!(out.error.is_none(), "{:?}", out.error);
    assert_eq!(out.frames.len().to_string(), expect);
}

// ------------------------------------------------------ captures/bad files

fn bad_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/bad")
}

/// Internet checksum (RFC 1071).
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A valid 60-byte Ethernet/IPv4/TCP RST|ACK frame, 10.0.0.2:443 → 10.0.0.1,
/// so the fixtures also make sense to the packet decoder and to Wireshark.
fn tcp_rst_frame(i: u8) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
    let mut ip = vec![
        0x45, 0, 0, 40, 0, i, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1,
    ];
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut tcp = Vec::new();
    tcp.extend(443u16.to_be_bytes());
    tcp.extend((40_000 + u16::from(i)).to_be_bytes());
    tcp.extend((1_000_000 + u32::from(i)).to_be_bytes()); // seq
    tcp.extend(2_000_000u32.to_be_bytes()); // ack
    tcp.extend([0x50, 0x14, 0, 0, 0, 0, 0, 0]); // RST|ACK, window 0
    let mut pseudo = vec![10, 0, 0, 2, 10, 0, 0, 1, 0, 6, 0, 20];
    pseudo.extend(&tcp);
    let c = checksum(&pseudo);
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
    f.extend(ip);
    f.extend(tcp);
    f.resize(60, 0); // Ethernet minimum frame (without FCS)
    f
}

/// The fixtures of `captures/bad/`, built here so they can be regenerated.
fn bad_fixtures() -> Vec<(&'static str, Vec<u8>)> {
    let eth_frame = tcp_rst_frame;
    let record = |i: u8| {
        pcap_record(
            false,
            1_700_000_000 + u32::from(i),
            0,
            60,
            60,
            &eth_frame(i),
        )
    };

    let mut truncated = pcap_header(false, PCAP_US, 262_144, 1);
    for i in 0..3 {
        truncated.extend(record(i));
    }
    truncated.extend(&record(3)[..16 + 20]);

    let mut caplen = pcap_header(false, PCAP_US, 65535, 1);
    caplen.extend(record(0));
    caplen.extend(pcap_record(
        false,
        1_700_000_001,
        0,
        0x0010_0000,
        60,
        &eth_frame(1),
    ));

    let mut block = shb(false);
    block.extend(idb(false, 1, 0, Some(6), None));
    block.extend(epb(
        false,
        0,
        1_700_000_000_000_000,
        60,
        &eth_frame(0),
        None,
    ));
    let mut cut = epb(false, 0, 1_700_000_001_000_000, 60, &eth_frame(1), None);
    cut[4..8].copy_from_slice(&90u32.to_le_bytes());
    block.extend(cut);

    let mut unknown = pcap_header(false, PCAP_US, 65535, 147);
    unknown.extend(pcap_record(false, 1_700_000_000, 0, 5, 5, b"hello"));

    vec![
        ("empty.pcap", Vec::new()),
        (
            "short-header.pcap",
            pcap_header(false, PCAP_US, 65535, 1)[..10].to_vec(),
        ),
        (
            "bad-magic.pcap",
            b"<!DOCTYPE html>\n<html><body>Download failed</body></html>\n".to_vec(),
        ),
        ("truncated-last-frame.pcap", truncated),
        ("caplen-too-big.pcap", caplen),
        ("bad-block-length.pcapng", block),
        ("unknown-linktype.pcap", unknown),
    ]
}

#[test]
#[ignore = "writes captures/bad/; run with --ignored to regenerate"]
fn generate_bad_fixtures() {
    std::fs::create_dir_all(bad_dir()).unwrap();
    for (name, bytes) in bad_fixtures() {
        std::fs::write(bad_dir().join(name), bytes).unwrap();
    }
}

#[test]
fn bad_fixtures_behave_as_documented() {
    for (name, bytes) in bad_fixtures() {
        let path = bad_dir().join(name);
        let on_disk = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (regenerate with --ignored)", path.display()));
        assert_eq!(on_disk, bytes, "{name} differs from its generator");
        let out = drain(CaptureReader::open(&path));
        let err = out
            .error
            .as_ref()
            .map(|e| e.to_string())
            .unwrap_or_default();
        match name {
            "empty.pcap" => assert!(matches!(out.error, Some(CaptureError::Empty))),
            "short-header.pcap" => {
                assert!(matches!(out.error, Some(CaptureError::TooShort { .. })));
                assert!(err.contains("byte offset 10"), "{err}");
            }
            "bad-magic.pcap" => {
                assert!(matches!(out.error, Some(CaptureError::BadMagic { .. })));
                assert!(err.contains("3c 21 44 4f"), "{err}");
            }
            "truncated-last-frame.pcap" => {
                assert!(out.error.is_none());
                assert_eq!(out.frames.len(), 3);
                assert_eq!(out.warnings.len(), 1);
                assert_eq!(out.warnings[0].message, truncation_message(4, 252, 76, 36));
            }
            "caplen-too-big.pcap" => {
                assert_eq!(out.frames.len(), 1);
                assert!(matches!(
                    out.error,
                    Some(CaptureError::CaplenTooLarge { .. })
                ));
                assert!(err.contains("frame 2 at byte offset 100"), "{err}");
                assert!(err.contains("1048576"), "{err}");
            }
            "bad-block-length.pcapng" => {
                assert_eq!(out.frames.len(), 1);
                assert!(matches!(
                    out.error,
                    Some(CaptureError::BadBlockLength { .. })
                ));
                assert!(err.contains("frame 2 at byte offset"), "{err}");
                assert!(err.contains("multiple of 4"), "{err}");
            }
            "unknown-linktype.pcap" => {
                assert!(out.error.is_none());
                assert_eq!(out.frames.len(), 1);
                assert_eq!(out.frames[0].link_type, LinkType::Other(147));
                assert_eq!(out.frames[0].data, b"hello");
            }
            other => panic!("no expectation for {other}"),
        }
    }
}
