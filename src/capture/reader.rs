use super::error::block_name;
use super::{CaptureError, CaptureWarning, LinkType, Location};
use flate2::read::MultiGzDecoder;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{Block, LegacyPcapReader, PcapBlockOwned, PcapError, PcapNGReader};
use std::io::{self, Cursor, Read};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Read buffer: large reads keep syscalls and buffer shifts rare.
const INITIAL_BUFFER: usize = 1 << 20;
/// The buffer grows for a single huge block up to this, then we give up.
/// Keeps memory bounded whatever the input claims.
pub const MAX_BLOCK_LEN: usize = 16 << 20;
/// libpcap's MAXIMUM_SNAPLEN: the largest caplen libpcap/Wireshark accept.
const MAX_SNAPLEN: u32 = 262_144;
/// A pcapng section may not declare more interfaces than this (bounds memory).
const MAX_INTERFACES: usize = 1 << 16;

const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 1;
const OPB: u32 = 2;
const SPB: u32 = 3;
const EPB: u32 = 6;

/// Container format of the capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CaptureFormat {
    Pcap,
    Pcapng,
}

/// One captured frame, borrowed from the reader's buffer until the next call.
#[derive(Clone, Copy, Debug)]
pub struct FrameRef<'a> {
    /// 1-based frame number, as Wireshark counts them (packet blocks/records only).
    pub number: u64,
    /// Timestamp in nanoseconds since the Unix epoch.
    pub ts_ns: i64,
    pub link_type: LinkType,
    /// pcapng interface id (0 for pcap).
    pub interface: u32,
    /// Length on the wire (may exceed `data.len()` when the snapshot cut it).
    pub orig_len: u32,
    /// Captured bytes, starting at the link-layer header.
    pub data: &'a [u8],
}

/// Streaming reader of pcap/pcapng from a file, stdin (`-`) or a gzip stream.
///
/// Memory is bounded: one buffer of 1 MiB, grown only for a single block
/// larger than that, up to 16 MiB. Frames are returned without copying.
pub struct CaptureReader {
    inner: Box<dyn PcapReaderIterator + Send>,
    status: Arc<Mutex<SourceStatus>>,
    format: CaptureFormat,
    gzip: bool,
    pcap: PcapState,
    ng: NgState,
    /// Stream offset of the first byte of `inner.data()`.
    offset: u64,
    /// Length of the record returned last; consumed at the start of the next
    /// call so the returned `FrameRef` can borrow the buffer meanwhile.
    pending: usize,
    frames: u64,
    capacity: usize,
    warnings: Vec<CaptureWarning>,
    /// Set at the end or after an error: later calls return `Ok(None)`.
    done: bool,
}

#[derive(Clone, Copy)]
struct PcapState {
    big_endian: bool,
    nanos: bool,
    /// 16, or 24 for the "modified" (Kuznetzov) format.
    record_header: usize,
    link_type: LinkType,
    snaplen: u32,
}

#[derive(Default)]
struct NgState {
    big_endian: bool,
    /// Interfaces of the current section, indexed by interface id.
    interfaces: Vec<Interface>,
    spb_warned: bool,
}

#[derive(Clone, Copy, Debug)]
struct Interface {
    link_type: LinkType,
    snaplen: u32,
    scale: TsScale,
    /// `if_tsoffset` in nanoseconds.
    offset_ns: i128,
}

/// How to turn a pcapng timestamp (units of `if_tsresol`) into nanoseconds;
/// decided once per interface so the per-frame cost is a multiply or a shift.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TsScale {
    /// Resolution 10^-n with n <= 9.
    Mul(i128),
    /// Resolution 10^-n with n > 9.
    Div(u64),
    /// Resolution 2^-n.
    Pow2(u32),
}

impl TsScale {
    /// From the raw `if_tsresol` byte (bit 7: power of 2, else power of 10).
    fn from_tsresol(tsresol: u8) -> Option<TsScale> {
        let n = u32::from(tsresol & 0x7f);
        if tsresol & 0x80 != 0 {
            // 2^-63 is already finer than anything real; Wireshark has the same limit.
            (n <= 63).then_some(TsScale::Pow2(n))
        } else if n <= 9 {
            Some(TsScale::Mul(10i128.pow(9 - n)))
        } else if n <= 19 {
            Some(TsScale::Div(10u64.pow(n - 9)))
        } else {
            None
        }
    }

    fn to_ns(self, ts: u64) -> i128 {
        match self {
            TsScale::Mul(m) => i128::from(ts) * m,
            TsScale::Div(d) => i128::from(ts / d),
            // ts < 2^64 and 1e9 < 2^30: the product fits in u128.
            TsScale::Pow2(n) => ((u128::from(ts) * 1_000_000_000) >> n) as i128,
        }
    }
}

fn clamp_i64(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// What `advance_*` found: everything about the frame except its bytes, which
/// `next_frame` then borrows from the buffer (this split is what keeps the
/// borrow checker happy with a loop that refills the buffer).
struct FrameMeta {
    ts_ns: i64,
    link_type: LinkType,
    interface: u32,
    orig_len: u32,
    data_start: usize,
    caplen: usize,
    record_len: usize,
}

/// State the input wrapper shares with the reader: pcap-parser maps read
/// errors to a bare `ReadError`, so the real `io::Error` is kept here.
#[derive(Default)]
struct SourceStatus {
    error: Option<io::Error>,
    gzip_truncated: bool,
}

/// The (decompressed) input as pcap-parser sees it.
struct Source {
    inner: Box<dyn Read + Send>,
    status: Arc<Mutex<SourceStatus>>,
    gzip: bool,
}

impl Read for Source {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.inner.read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
                    // A cut .gz (e.g. still being written) ends the data like a
                    // cut pcap: the frames before it are still good.
                    if self.gzip && e.kind() == io::ErrorKind::UnexpectedEof {
                        status.gzip_truncated = true;
                        return Ok(0);
                    }
                    let kind = e.kind();
                    status.error = Some(e);
                    return Err(kind.into());
                }
            }
        }
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn u32_at(d: &[u8], at: usize, big_endian: bool) -> u32 {
    let b = [d[at], d[at + 1], d[at + 2], d[at + 3]];
    if big_endian {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    }
}

fn u16_at(d: &[u8], at: usize, big_endian: bool) -> u16 {
    let b = [d[at], d[at + 1]];
    if big_endian {
        u16::from_be_bytes(b)
    } else {
        u16::from_le_bytes(b)
    }
}

/// pcap-parser's error, without dumping the (possibly 1 MiB) input it carries.
fn parser_error(e: &PcapError<&[u8]>) -> String {
    match e {
        PcapError::NomError(_, kind) | PcapError::OwnedNomError(_, kind) => {
            format!("pcap-parser rejected it ({kind:?})")
        }
        other => format!("pcap-parser: {other}"),
    }
}

fn is_packet_block(t: u32) -> bool {
    matches!(t, EPB | SPB | OPB)
}

/// The first pcapng SHB's byte order from its byte-order magic, if valid.
fn shb_big_endian(bom: &[u8]) -> Option<bool> {
    match bom {
        [0x1a, 0x2b, 0x3c, 0x4d] => Some(true),
        [0x4d, 0x3c, 0x2b, 0x1a] => Some(false),
        _ => None,
    }
}

/// Checks the generic pcapng block length (the only framing pcapng has).
fn check_block_length(at: Location, block_type: u32, length: u32) -> Result<(), CaptureError> {
    let min = match block_type {
        SHB => 28,
        IDB => 20,
        EPB | OPB => 32,
        SPB => 16,
        _ => 12,
    };
    let why = if length < min {
        format!("smaller than the {min}-byte minimum for this block type")
    } else if !length.is_multiple_of(4) {
        "not a multiple of 4".to_string()
    } else if length as usize > MAX_BLOCK_LEN {
        format!("larger than the {MAX_BLOCK_LEN}-byte limit")
    } else {
        return Ok(());
    };
    Err(CaptureError::BadBlockLength {
        at,
        block_type,
        length,
        why,
    })
}

impl CaptureReader {
    /// Opens `path` (`-` means stdin); gzip is detected by its magic.
    pub fn open(path: &Path) -> Result<CaptureReader, CaptureError> {
        if path == Path::new("-") {
            return Self::from_reader(Box::new(io::stdin()));
        }
        let open_err = |source| CaptureError::Open {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(open_err)?;
        // Reading a directory fails later with a less obvious message.
        if file.metadata().map_err(open_err)?.is_dir() {
            return Err(open_err(io::Error::other("is a directory")));
        }
        Self::from_reader(Box::new(file))
    }

    /// Reads from any byte stream (gzip detected by its magic).
    pub fn from_reader(mut input: Box<dyn Read + Send>) -> Result<CaptureReader, CaptureError> {
        let mut magic = [0u8; 2];
        let n = read_full(&mut *input, &mut magic)
            .map_err(|source| CaptureError::Io { offset: 0, source })?;
        let gzip = n == 2 && magic == [0x1f, 0x8b];
        let head = Cursor::new(magic[..n].to_vec()).chain(input);
        let stream: Box<dyn Read + Send> = if gzip {
            // Multi-member: `cat a.pcap.gz b.gz` and pigz output are valid gzip.
            Box::new(MultiGzDecoder::new(head))
        } else {
            Box::new(head)
        };
        let status = Arc::new(Mutex::new(SourceStatus::default()));
        let source = Source {
            inner: stream,
            status: Arc::clone(&status),
            gzip,
        };
        Self::from_source(source, status, gzip)
    }

    /// Sniffs the format from the first bytes, which we read ourselves: it
    /// gives precise errors, and pcap-parser's constructors do a single
    /// `read()` that must return the whole file header, which a pipe (or
    /// gzip) need not do. The sniffed bytes are then replayed in front.
    fn from_source(
        mut source: Source,
        status: Arc<Mutex<SourceStatus>>,
        gzip: bool,
    ) -> Result<CaptureReader, CaptureError> {
        let io_err = |status: &Mutex<SourceStatus>, offset: u64| {
            let source = status
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .error
                .take()
                .unwrap_or_else(|| io::Error::other("read error"));
            CaptureError::Io { offset, source }
        };
        let mut prefix = vec![0u8; 24];
        let n = read_full(&mut source, &mut prefix).map_err(|_| io_err(&status, 0))?;
        prefix.truncate(n);
        if n == 0 {
            return Err(CaptureError::Empty);
        }
        if n < 4 {
            return Err(CaptureError::TooShort {
                what: "pcap or pcapng file header",
                needed: 24,
                found: n as u64,
            });
        }
        let magic = [prefix[0], prefix[1], prefix[2], prefix[3]];
        let format = match magic {
            [0xd4, 0xc3, 0xb2, 0xa1]
            | [0xa1, 0xb2, 0xc3, 0xd4]
            | [0x4d, 0x3c, 0xb2, 0xa1]
            | [0xa1, 0xb2, 0x3c, 0x4d]
            | [0x34, 0xcd, 0xb2, 0xa1] => CaptureFormat::Pcap,
            [0xa1, 0xb2, 0xcd, 0x34] => {
                return Err(CaptureError::Unsupported {
                    offset: 0,
                    what: "big-endian \"modified\" (Kuznetzov) pcap, magic a1b2cd34 in big-endian order".into(),
                });
            }
            [0x0a, 0x0d, 0x0d, 0x0a] => CaptureFormat::Pcapng,
            _ => {
                let le = u32::from_le_bytes(magic);
                let be = u32::from_be_bytes(magic);
                let block_type = if (1..=6).contains(&le) { le } else { be };
                if (1..=6).contains(&block_type) && n >= 8 {
                    return Err(CaptureError::NotShb { block_type });
                }
                return Err(CaptureError::BadMagic {
                    found: magic.to_vec(),
                });
            }
        };
        let mut capacity = INITIAL_BUFFER;
        let chain = |prefix: Vec<u8>, source: Source| Cursor::new(prefix).chain(source);
        let inner: Box<dyn PcapReaderIterator + Send> = match format {
            CaptureFormat::Pcap => {
                if n < 24 {
                    return Err(CaptureError::TooShort {
                        what: "pcap file header",
                        needed: 24,
                        found: n as u64,
                    });
                }
                let r = LegacyPcapReader::new(capacity, chain(prefix, source)).map_err(|e| {
                    CaptureError::Malformed {
                        at: Location {
                            offset: 0,
                            frame: None,
                        },
                        why: parser_error(&e),
                    }
                })?;
                Box::new(r)
            }
            CaptureFormat::Pcapng => {
                let at0 = Location {
                    offset: 0,
                    frame: None,
                };
                if n < 12 {
                    return Err(CaptureError::TooShort {
                        what: "pcapng Section Header Block",
                        needed: 28,
                        found: n as u64,
                    });
                }
                let big_endian =
                    shb_big_endian(&prefix[8..12]).ok_or_else(|| CaptureError::BadBlock {
                        at: at0,
                        block_type: SHB,
                        why: format!(
                            "its byte-order magic is {:02x} {:02x} {:02x} {:02x}, expected 1a2b3c4d in either byte order",
                            prefix[8], prefix[9], prefix[10], prefix[11]
                        ),
                    })?;
                let len = u32_at(&prefix, 4, big_endian);
                check_block_length(at0, SHB, len)?;
                let len = len as usize;
                // The whole SHB must be in the first read (see above).
                prefix.resize(len, 0);
                let got = n + read_full(&mut source, &mut prefix[n..])
                    .map_err(|_| io_err(&status, n as u64))?;
                if got < len {
                    return Err(CaptureError::TooShort {
                        what: "pcapng Section Header Block",
                        needed: len as u64,
                        found: got as u64,
                    });
                }
                capacity = capacity.max(len.next_power_of_two());
                let r = PcapNGReader::new(capacity, chain(prefix, source)).map_err(|e| {
                    CaptureError::Malformed {
                        at: at0,
                        why: parser_error(&e),
                    }
                })?;
                Box::new(r)
            }
        };
        let mut reader = CaptureReader {
            inner,
            status,
            format,
            gzip,
            pcap: PcapState {
                big_endian: false,
                nanos: false,
                record_header: 16,
                link_type: LinkType::Ethernet,
                snaplen: 0,
            },
            ng: NgState::default(),
            offset: 0,
            pending: 0,
            frames: 0,
            capacity,
            warnings: Vec::new(),
            done: false,
        };
        if format == CaptureFormat::Pcap {
            reader.read_pcap_header()?;
        }
        Ok(reader)
    }

    fn read_pcap_header(&mut self) -> Result<(), CaptureError> {
        let at = Location {
            offset: 0,
            frame: None,
        };
        let (len, st) = match self.inner.next() {
            Ok((len, PcapBlockOwned::LegacyHeader(h))) => (
                len,
                PcapState {
                    big_endian: h.is_bigendian(),
                    nanos: h.is_nanosecond_precision(),
                    record_header: if h.is_modified_format() { 24 } else { 16 },
                    // The upper 16 bits hold FCS-length flags (LT_FCS_* in libpcap).
                    link_type: LinkType::from_number(h.network.0 as u32 & 0xffff),
                    snaplen: h.snaplen,
                },
            ),
            Ok(_) => {
                return Err(CaptureError::Malformed {
                    at,
                    why: "pcap-parser did not return a pcap file header".into(),
                });
            }
            Err(e) => {
                return Err(CaptureError::Malformed {
                    at,
                    why: parser_error(&e),
                });
            }
        };
        self.pcap = st;
        self.consume(len);
        Ok(())
    }

    pub fn format(&self) -> CaptureFormat {
        self.format
    }

    /// True if the input was gzip-compressed.
    pub fn is_gzip(&self) -> bool {
        self.gzip
    }

    /// Number of frames returned so far.
    pub fn frames_read(&self) -> u64 {
        self.frames
    }

    /// The next frame, `Ok(None)` at the end.
    ///
    /// A truncated last frame ends the capture with `Ok(None)` and a warning.
    /// After an error the reader is finished and returns `Ok(None)`.
    pub fn next_frame(&mut self) -> Result<Option<FrameRef<'_>>, CaptureError> {
        if self.pending != 0 {
            let n = std::mem::take(&mut self.pending);
            self.consume(n);
        }
        if self.done {
            return Ok(None);
        }
        let found = match self.format {
            CaptureFormat::Pcap => self.advance_pcap(),
            CaptureFormat::Pcapng => self.advance_pcapng(),
        };
        let meta = match found {
            Ok(Some(meta)) => meta,
            Ok(None) => {
                self.done = true;
                return Ok(None);
            }
            Err(e) => {
                self.done = true;
                return Err(e);
            }
        };
        self.frames += 1;
        self.pending = meta.record_len;
        let at = Location {
            offset: self.offset,
            frame: Some(self.frames),
        };
        // In bounds by construction (the whole record is buffered); checked
        // anyway so a logic slip is an error, not a panic.
        let Some(data) = self
            .inner
            .data()
            .get(meta.data_start..meta.data_start + meta.caplen)
        else {
            self.done = true;
            return Err(CaptureError::Malformed {
                at,
                why: "internal error: frame data outside the buffered record".into(),
            });
        };
        Ok(Some(FrameRef {
            number: at.frame.unwrap_or_default(),
            ts_ns: meta.ts_ns,
            link_type: meta.link_type,
            interface: meta.interface,
            orig_len: meta.orig_len,
            data,
        }))
    }

    /// Non-fatal problems seen so far (truncated last frame, ...).
    pub fn warnings(&self) -> &[CaptureWarning] {
        &self.warnings
    }

    /// Bytes of (decompressed) capture consumed so far: the offset just past
    /// the last frame returned (or the header, before the first frame).
    pub fn bytes_read(&self) -> u64 {
        self.offset + self.pending as u64
    }

    fn consume(&mut self, n: usize) {
        self.inner.consume(n);
        self.offset += n as u64;
    }

    /// Makes sure `need` bytes are buffered; `Ok(false)` if the input ends first.
    /// `need` never exceeds `MAX_BLOCK_LEN` (callers check lengths first).
    fn fill(&mut self, need: usize) -> Result<bool, CaptureError> {
        while self.inner.data().len() < need {
            if self.inner.reader_exhausted() {
                return Ok(false);
            }
            if need > self.capacity {
                let new = need.next_power_of_two().min(MAX_BLOCK_LEN).max(need);
                self.inner.grow(new);
                self.capacity = new;
            }
            if self.inner.refill().is_err() {
                let offset = self.offset + self.inner.data().len() as u64;
                let source = self
                    .status
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .error
                    .take()
                    .unwrap_or_else(|| io::Error::other("read error"));
                return Err(CaptureError::Io { offset, source });
            }
        }
        Ok(true)
    }

    /// The input ended while `what` needed `need` bytes: clean end if nothing
    /// is left, else a truncated last record (a warning, not an error).
    fn end_of_input(&mut self, what: &str, frame: Option<u64>, need: usize) -> Option<FrameMeta> {
        let have = self.inner.data().len();
        if have > 0 {
            self.warnings.push(CaptureWarning {
                offset: self.offset,
                frame,
                message: format!(
                    "capture truncated: {what} at byte offset {} needs {need} bytes, only {have} present",
                    self.offset
                ),
            });
        }
        let gzip_cut = self
            .status
            .lock()
            .map(|s| s.gzip_truncated)
            .unwrap_or(false);
        if gzip_cut {
            let end = self.offset + have as u64;
            self.warnings.push(CaptureWarning {
                offset: end,
                frame: None,
                message: format!(
                    "gzip stream truncated: the compressed input ends early, decompressed data stops at byte offset {end}"
                ),
            });
        }
        None
    }

    fn advance_pcap(&mut self) -> Result<Option<FrameMeta>, CaptureError> {
        let st = self.pcap;
        let frame = self.frames + 1;
        let at = Location {
            offset: self.offset,
            frame: Some(frame),
        };
        let hdr = st.record_header;
        if !self.fill(hdr)? {
            return Ok(self.end_of_input(&format!("frame {frame}"), Some(frame), hdr));
        }
        // pcap has no framing besides caplen, so it is checked before trusting
        // it (a garbage caplen would otherwise make us buffer up to 4 GiB).
        let caplen = u32_at(self.inner.data(), 8, st.big_endian);
        let (limit, why) = if st.snaplen > 0 && st.snaplen <= MAX_SNAPLEN {
            (st.snaplen, "the snapshot length in the file header")
        } else {
            (MAX_SNAPLEN, "the largest snapshot length libpcap accepts")
        };
        if caplen > limit {
            return Err(CaptureError::CaplenTooLarge {
                at,
                caplen,
                limit,
                why,
            });
        }
        let need = hdr + caplen as usize;
        if !self.fill(need)? {
            return Ok(self.end_of_input(&format!("frame {frame}"), Some(frame), need));
        }
        let nanos = st.nanos;
        match self.inner.next() {
            Ok((len, PcapBlockOwned::Legacy(b))) => {
                let frac = if nanos {
                    i64::from(b.ts_usec)
                } else {
                    i64::from(b.ts_usec) * 1000
                };
                Ok(Some(FrameMeta {
                    ts_ns: i64::from(b.ts_sec) * 1_000_000_000 + frac,
                    link_type: st.link_type,
                    interface: 0,
                    orig_len: b.origlen,
                    data_start: hdr,
                    caplen: b.data.len(),
                    record_len: len,
                }))
            }
            Ok(_) => Err(CaptureError::Malformed {
                at,
                why: "pcap-parser returned a non-record block".into(),
            }),
            Err(e) => Err(CaptureError::Malformed {
                at,
                why: parser_error(&e),
            }),
        }
    }

    /// Walks pcapng blocks until a packet block. Block framing (lengths) is
    /// checked here before pcap-parser sees the block: pcap-parser does not
    /// check alignment nor the trailing length of every block type, and asks
    /// for more data forever when an inner length exceeds the block.
    fn advance_pcapng(&mut self) -> Result<Option<FrameMeta>, CaptureError> {
        loop {
            let frame = self.frames + 1;
            let offset = self.offset;
            if !self.fill(8)? {
                let d = self.inner.data();
                let packet = d.len() >= 4 && is_packet_block(u32_at(d, 0, self.ng.big_endian));
                let what = if packet {
                    format!("frame {frame}")
                } else {
                    "pcapng block".to_string()
                };
                return Ok(self.end_of_input(&what, packet.then_some(frame), 8));
            }
            let raw_type = u32_at(self.inner.data(), 0, self.ng.big_endian);
            // The SHB type reads the same in both orders; its length is in
            // the byte order given by its own byte-order magic.
            let (block_type, big_endian) = if raw_type == SHB {
                if !self.fill(12)? {
                    return Ok(self.end_of_input("Section Header Block", None, 12));
                }
                let bom = &self.inner.data()[8..12];
                match shb_big_endian(bom) {
                    Some(be) => (SHB, be),
                    None => {
                        return Err(CaptureError::BadBlock {
                            at: Location {
                                offset,
                                frame: None,
                            },
                            block_type: SHB,
                            why: format!(
                                "its byte-order magic is {:02x} {:02x} {:02x} {:02x}, expected 1a2b3c4d in either byte order",
                                bom[0], bom[1], bom[2], bom[3]
                            ),
                        });
                    }
                }
            } else {
                (raw_type, self.ng.big_endian)
            };
            let packet = is_packet_block(block_type);
            let at = Location {
                offset,
                frame: packet.then_some(frame),
            };
            let what = || {
                if packet {
                    format!("frame {frame}")
                } else {
                    format!("{} (type {block_type:#010x})", block_name(block_type))
                }
            };
            let length = u32_at(self.inner.data(), 4, big_endian);
            check_block_length(at, block_type, length)?;
            let len = length as usize;
            if !self.fill(len)? {
                return Ok(self.end_of_input(&what(), at.frame, len));
            }
            let d = self.inner.data();
            let trailing = u32_at(d, len - 4, big_endian);
            if trailing != length {
                return Err(CaptureError::BlockLengthMismatch {
                    at,
                    block_type,
                    length,
                    trailing,
                });
            }
            match block_type {
                SHB => self.section_header(at, big_endian)?,
                IDB => self.interface_description(at)?,
                EPB | OPB => return self.enhanced_or_old_packet(at, block_type).map(Some),
                SPB => return self.simple_packet(at).map(Some),
                // NRB, ISB, DSB, custom, unknown: nothing the analysis needs.
                _ => {}
            }
            self.consume(len);
        }
    }

    fn section_header(&mut self, at: Location, big_endian: bool) -> Result<(), CaptureError> {
        let major = u16_at(self.inner.data(), 12, big_endian);
        if major != 1 {
            return Err(CaptureError::Unsupported {
                offset: at.offset,
                what: format!("pcapng section version {major} (only version 1 exists)"),
            });
        }
        // Through pcap-parser too: it switches its own byte order on SHBs.
        match self.inner.next() {
            Ok((_, PcapBlockOwned::NG(Block::SectionHeader(_)))) => {}
            Ok(_) => {
                return Err(CaptureError::Malformed {
                    at,
                    why: "pcap-parser did not see a Section Header Block".into(),
                });
            }
            Err(e) => {
                return Err(CaptureError::BadBlock {
                    at,
                    block_type: SHB,
                    why: parser_error(&e),
                });
            }
        }
        self.ng.big_endian = big_endian;
        self.ng.interfaces.clear();
        Ok(())
    }

    fn interface_description(&mut self, at: Location) -> Result<(), CaptureError> {
        let big_endian = self.ng.big_endian;
        let id = self.ng.interfaces.len();
        let bad = |why: String| CaptureError::BadBlock {
            at,
            block_type: IDB,
            why,
        };
        // if_tsresol/if_tsoffset are read from the raw options: pcap-parser's
        // `if_tsoffset` field is decoded little-endian even in big-endian
        // sections, and its `ts_resolution()` rejects every 2^-n value.
        let (link_type, snaplen, tsresol, tsoffset) = match self.inner.next() {
            Ok((_, PcapBlockOwned::NG(Block::InterfaceDescription(idb)))) => {
                let mut tsresol = 6u8;
                let mut tsoffset = 0i64;
                let (mut seen_resol, mut seen_offset) = (false, false);
                for opt in &idb.options {
                    let v = opt.value();
                    match opt.code.0 {
                        9 if !seen_resol && opt.len == 1 && !v.is_empty() => {
                            tsresol = v[0];
                            seen_resol = true;
                        }
                        14 if !seen_offset && opt.len == 8 && v.len() >= 8 => {
                            let b: [u8; 8] = [v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]];
                            tsoffset = if big_endian {
                                i64::from_be_bytes(b)
                            } else {
                                i64::from_le_bytes(b)
                            };
                            seen_offset = true;
                        }
                        _ => {}
                    }
                }
                (idb.linktype.0 as u32, idb.snaplen, tsresol, tsoffset)
            }
            Ok(_) => {
                return Err(bad(
                    "pcap-parser did not see an interface description".into()
                ));
            }
            Err(e) => return Err(bad(parser_error(&e))),
        };
        let scale = TsScale::from_tsresol(tsresol).ok_or_else(|| {
            bad(format!(
                "interface {id} has an invalid if_tsresol {tsresol:#04x} (finer than 10^-19 or 2^-63 s)"
            ))
        })?;
        if id >= MAX_INTERFACES {
            return Err(bad(format!(
                "more than {MAX_INTERFACES} interfaces in one section"
            )));
        }
        self.ng.interfaces.push(Interface {
            link_type: LinkType::from_number(link_type),
            snaplen,
            scale,
            offset_ns: i128::from(tsoffset) * 1_000_000_000,
        });
        Ok(())
    }

    fn interface(&self, at: Location, id: u32) -> Result<Interface, CaptureError> {
        self.ng
            .interfaces
            .get(id as usize)
            .copied()
            .ok_or(CaptureError::UnknownInterface {
                at,
                interface: id,
                known: self.ng.interfaces.len(),
            })
    }

    /// EPB, or the obsolete Packet Block (type 2) which shares its layout
    /// except for a 16-bit interface id followed by a 16-bit drop count.
    fn enhanced_or_old_packet(
        &mut self,
        at: Location,
        block_type: u32,
    ) -> Result<FrameMeta, CaptureError> {
        let big_endian = self.ng.big_endian;
        let d = self.inner.data();
        let len = u32_at(d, 4, big_endian);
        let caplen = u32_at(d, 20, big_endian);
        // Checked here: pcap-parser would wait for more input forever.
        if 32 + u64::from(caplen).next_multiple_of(4) > u64::from(len) {
            return Err(CaptureError::BadBlock {
                at,
                block_type,
                why: format!("its captured length {caplen} does not fit in its block length {len}"),
            });
        }
        let (if_id, ts_high, ts_low, orig_len) = if block_type == OPB {
            // pcap-parser 0.17 has no parser for the obsolete Packet Block
            // (it returns it as an UnknownBlock), so we decode its fixed header.
            (
                u32::from(u16_at(d, 8, big_endian)),
                u32_at(d, 12, big_endian),
                u32_at(d, 16, big_endian),
                u32_at(d, 24, big_endian),
            )
        } else {
            match self.inner.next() {
                Ok((_, PcapBlockOwned::NG(Block::EnhancedPacket(epb)))) => {
                    (epb.if_id, epb.ts_high, epb.ts_low, epb.origlen)
                }
                Ok(_) => {
                    return Err(CaptureError::Malformed {
                        at,
                        why: "pcap-parser did not see an Enhanced Packet Block".into(),
                    });
                }
                Err(e) => {
                    return Err(CaptureError::BadBlock {
                        at,
                        block_type,
                        why: parser_error(&e),
                    });
                }
            }
        };
        let iface = self.interface(at, if_id)?;
        let ts = (u64::from(ts_high) << 32) | u64::from(ts_low);
        Ok(FrameMeta {
            ts_ns: clamp_i64(iface.scale.to_ns(ts) + iface.offset_ns),
            link_type: iface.link_type,
            interface: if_id,
            orig_len,
            data_start: 28,
            caplen: caplen as usize,
            record_len: len as usize,
        })
    }

    fn simple_packet(&mut self, at: Location) -> Result<FrameMeta, CaptureError> {
        let iface = self.interface(at, 0)?;
        let (len, orig_len) = match self.inner.next() {
            Ok((len, PcapBlockOwned::NG(Block::SimplePacket(spb)))) => (len, spb.origlen),
            Ok(_) => {
                return Err(CaptureError::Malformed {
                    at,
                    why: "pcap-parser did not see a Simple Packet Block".into(),
                });
            }
            Err(e) => {
                return Err(CaptureError::BadBlock {
                    at,
                    block_type: SPB,
                    why: parser_error(&e),
                });
            }
        };
        // SPB has no caplen: the spec says min(original length, snaplen of
        // interface 0); the rest of the block is padding.
        let mut caplen = (orig_len as usize).min(len - 16);
        if iface.snaplen > 0 {
            caplen = caplen.min(iface.snaplen as usize);
        }
        if !self.ng.spb_warned {
            self.ng.spb_warned = true;
            self.warnings.push(CaptureWarning {
                offset: at.offset,
                frame: at.frame,
                message: format!(
                    "{at} is a Simple Packet Block, which has no timestamp: using 0 (1970-01-01) for it and any later Simple Packet Blocks"
                ),
            });
        }
        Ok(FrameMeta {
            ts_ns: 0,
            link_type: iface.link_type,
            interface: 0,
            orig_len,
            data_start: 12,
            caplen,
            record_len: len,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsresol_scales() {
        assert_eq!(TsScale::from_tsresol(6), Some(TsScale::Mul(1000)));
        assert_eq!(TsScale::from_tsresol(9), Some(TsScale::Mul(1)));
        assert_eq!(TsScale::from_tsresol(0), Some(TsScale::Mul(1_000_000_000)));
        assert_eq!(TsScale::from_tsresol(12), Some(TsScale::Div(1000)));
        assert_eq!(TsScale::from_tsresol(0x8a), Some(TsScale::Pow2(10)));
        assert_eq!(TsScale::from_tsresol(20), None);
        assert_eq!(TsScale::from_tsresol(0x80 | 64), None);
        assert_eq!(TsScale::Mul(1000).to_ns(1_500_000), 1_500_000_000);
        assert_eq!(TsScale::Div(1000).to_ns(1_500_000_000_000), 1_500_000_000);
        // 1.5 s in 2^-10 units.
        assert_eq!(TsScale::Pow2(10).to_ns(1536), 1_500_000_000);
        assert_eq!(TsScale::Pow2(0).to_ns(3), 3_000_000_000);
        assert_eq!(clamp_i64(i128::MAX), i64::MAX);
        assert_eq!(clamp_i64(i128::MIN), i64::MIN);
    }

    #[test]
    fn block_length_rules() {
        let at = Location {
            offset: 40,
            frame: Some(1),
        };
        assert!(check_block_length(at, EPB, 32).is_ok());
        let e = check_block_length(at, EPB, 28).unwrap_err().to_string();
        assert!(e.contains("minimum") && e.contains("byte offset 40"), "{e}");
        let e = check_block_length(at, EPB, 34).unwrap_err().to_string();
        assert!(e.contains("multiple of 4"), "{e}");
        let e = check_block_length(at, 4, (MAX_BLOCK_LEN + 4) as u32)
            .unwrap_err()
            .to_string();
        assert!(e.contains("limit"), "{e}");
    }
}
