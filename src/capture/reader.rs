//! The capture reader.
//!
//! Division of labour with pcap-parser: its streaming readers
//! (`LegacyPcapReader`, `PcapNGReader`, driven through `PcapReaderIterator`)
//! own the input and the circular buffer (`data`/`consume`/`refill`/`grow`)
//! and parse the blocks that carry options: the pcap file header, pcapng
//! Section Header and Interface Description Blocks. Packet records (pcap
//! records, EPB, SPB, obsolete PB) are decoded here, straight from the
//! buffered bytes, after checking their framing:
//! - per frame this is a bounds check and five integer reads, where
//!   `next()` costs a call and a nom parse, and for an EPB that carries
//!   options (comments, flags, hashes) a `Vec` allocation;
//! - pcap-parser checks neither 32-bit alignment nor the trailing length of
//!   every block type, and answers a length larger than the data with
//!   "Incomplete" forever, so the framing must be checked here anyway;
//! - it has no parser for the obsolete Packet Block (type 2): it returns it
//!   as an `UnknownBlock`.
//!
//! Frames are handed out as slices of the buffer. The buffer is only
//! touched again (consume/refill) at the next `next_frame` call, which is
//! what the `&mut self` borrow of `FrameRef<'_>` guarantees.

use super::error::block_name;
use super::{CaptureError, CaptureWarning, LinkType, Location};
use flate2::read::MultiGzDecoder;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{Block, LegacyPcapReader, PcapBlockOwned, PcapError, PcapNGReader};
use std::io::{self, Chain, Cursor, Read};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Read buffer: large enough that syscalls and buffer shifts stay rare
/// (8,000 reads for 2 GB), small enough that the frames are still in the
/// core's cache when they are decoded after the kernel copied them in,
/// next to the batches being filled (1 MiB was 1–5 % slower on the
/// real-traffic captures of `bench/real.sh`). It grows for a larger block.
const INITIAL_BUFFER: usize = 1 << 18;
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
const SJE: u32 = 9;
const CB: u32 = 0x0BAD;
const DCB: u32 = 0x4000_0BAD;

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
    /// 1-based frame number, as Wireshark numbers them: pcap records; in
    /// pcapng, packet blocks plus the custom and systemd-journal blocks that
    /// Wireshark lists too (so numbers can skip when those are present).
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

/// What pcap-parser reads from: the sniffed header replayed, then the rest.
type Input = Chain<Cursor<Vec<u8>>, Source>;

/// pcap-parser's reader, statically dispatched: `data()` is called for
/// every frame and should inline.
enum Inner {
    Pcap(LegacyPcapReader<Input>),
    Pcapng(PcapNGReader<Input>),
}

impl Inner {
    #[inline]
    fn data(&self) -> &[u8] {
        match self {
            Inner::Pcap(r) => r.data(),
            Inner::Pcapng(r) => r.data(),
        }
    }

    fn it(&mut self) -> &mut dyn PcapReaderIterator {
        match self {
            Inner::Pcap(r) => r,
            Inner::Pcapng(r) => r,
        }
    }
}

/// Streaming reader of pcap/pcapng from a file, stdin (`-`) or a gzip stream.
///
/// Memory is bounded: one buffer of 1 MiB, grown only for a single block
/// larger than that, up to 16 MiB. Frames are returned without copying.
pub struct CaptureReader {
    inner: Inner,
    status: Arc<Mutex<SourceStatus>>,
    format: CaptureFormat,
    gzip: bool,
    pcap: PcapState,
    ng: NgState,
    /// Stream offset of `inner.data()[0]`.
    offset: u64,
    /// Bytes of `inner.data()` already read by us; handed to pcap-parser's
    /// `consume` in batches, only when the buffer must be refilled.
    pos: usize,
    /// Number of the last frame, as Wireshark numbers them (see `numbered_block`).
    frames: u64,
    /// Frames actually returned.
    returned: u64,
    capacity: usize,
    warnings: Vec<CaptureWarning>,
    /// Set at the end or after an error: later calls return `Ok(None)`.
    done: bool,
    /// A live input's read-ahead has handed all it received to the parser
    /// (see [`CaptureReader::input_drained`]).
    drained: Option<Arc<std::sync::atomic::AtomicBool>>,
}

/// When the input is read on a thread of its own.
#[derive(Clone, Copy)]
enum ReadAheadUse {
    Always,
    GzipOnly,
    Never,
}

#[derive(Clone, Copy)]
struct PcapState {
    big_endian: bool,
    /// Multiplier from the record's fraction to nanoseconds: 1000 or 1.
    frac_ns: i64,
    /// 16, or 24 for the "modified" (Kuznetzov) format.
    record_header: usize,
    link_type: LinkType,
    /// caplen above this is corrupt, with the reason for the message.
    caplen_limit: u32,
    caplen_why: &'static str,
    /// The file header's snapshot length (0: none given). A record longer
    /// than it is read in full with one warning, as libpcap and Wireshark
    /// do: some writers put a wrong value there.
    snaplen: u32,
    /// Whether that warning was given.
    warned_over_snaplen: bool,
    /// Records whose fraction of a second is a second or more (see
    /// [`OverlongFraction`]).
    overlong_fraction: OverlongFraction,
}

/// Records whose fraction field is 1,000,000 µs (1e9 ns) or more: a writer
/// bug (nanoseconds written under the microsecond magic, or a fraction not
/// reduced). What matters most is saying so: one warning counts such
/// records and names the first. The time is then **clamped** to the last
/// instant of the record's own second, not carried into later seconds:
///
/// - there is no tool's time to agree with: Wireshark 4.0 neither carries
///   nor clamps, it prints the seconds and the raw field side by side
///   (1,500,000 µs after second 100 shows as `100.1500000000`, which reads
///   as 100.15) and its nanosecond arithmetic overflows past 2^31 ns
///   (2,147,483,647 µs shows as −0.000001 s);
/// - the seconds field is the one writers get right; clamping keeps each
///   such frame within less than a second of its true time, where carrying
///   moves it up to 71 minutes on (the 2147-second capture), which
///   would stretch the capture and retire every open flow and DNS exchange
///   of the analysis as idle.
#[derive(Clone, Copy, Default)]
struct OverlongFraction {
    records: u64,
    first_frame: u64,
    first_value: u32,
    max_value: u32,
    /// Index of the warning in `CaptureReader::warnings`, once pushed; its
    /// message is rewritten with the final count when the reading ends.
    warning: Option<usize>,
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

    #[inline]
    fn to_ns(self, ts: u64) -> i128 {
        match self {
            TsScale::Mul(m) => i128::from(ts) * m,
            TsScale::Div(d) => i128::from(ts / d),
            // ts < 2^64 and 1e9 < 2^30: the product fits in u128.
            TsScale::Pow2(n) => ((u128::from(ts) * 1_000_000_000) >> n) as i128,
        }
    }
}

#[inline]
fn clamp_i64(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// What `advance_*` found: everything about the frame except its bytes, which
/// `next_frame` then borrows from the buffer. Returning owned values and
/// borrowing afterwards is what lets the refill loop pass the borrow checker
/// without unsafe (returning a borrow from inside the loop is NLL problem #3).
struct FrameMeta {
    ts_ns: i64,
    link_type: LinkType,
    // u64, not u32: rustc packed the two u32 into one 64-bit load right
    // after two 32-bit stores, a store-forwarding stall that cost ~15% of
    // the read time on small frames.
    interface: u64,
    orig_len: u64,
    /// Index of the frame's first byte in `inner.data()`.
    data_start: usize,
    caplen: usize,
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

#[inline]
fn u32_at(d: &[u8], at: usize, big_endian: bool) -> u32 {
    let b = [d[at], d[at + 1], d[at + 2], d[at + 3]];
    if big_endian {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    }
}

#[inline]
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

/// Blocks that take a frame number. Wireshark (checked with 4.0) lists
/// custom blocks and systemd journal entries as records in the packet list,
/// numbered like packets; we skip them but count them so that our frame
/// numbers stay those the user sees in Wireshark.
fn numbered_block(t: u32) -> bool {
    matches!(t, EPB | SPB | OPB | CB | DCB | SJE)
}

/// The SHB's byte order from its byte-order magic, if valid.
fn shb_big_endian(bom: &[u8]) -> Option<bool> {
    match bom {
        [0x1a, 0x2b, 0x3c, 0x4d] => Some(true),
        [0x4d, 0x3c, 0x2b, 0x1a] => Some(false),
        _ => None,
    }
}

fn bad_bom(at: Location, bom: &[u8]) -> CaptureError {
    CaptureError::BadBlock {
        at,
        block_type: SHB,
        why: format!(
            "its byte-order magic is {:02x} {:02x} {:02x} {:02x}, expected 1a2b3c4d in either byte order",
            bom[0], bom[1], bom[2], bom[3]
        ),
    }
}

/// Checks the generic pcapng block length (the only framing pcapng has).
fn check_block_length(at: Location, block_type: u32, length: u32) -> Result<(), CaptureError> {
    let min = match block_type {
        SHB => 28,
        IDB => 20,
        EPB | OPB => 32,
        SPB => 16,
        CB | DCB => 16, // the Private Enterprise Number is mandatory
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
        // A plain file is read straight into the parser's buffer: the
        // analysis already runs on another thread than the reading
        // (`app::analyse_capture`), and a read-ahead thread would add one
        // more copy of every byte.
        Self::from_input(Box::new(file), ReadAheadUse::GzipOnly)
    }

    /// Opens a live input: stdin (`-`) or, with `follow`, a file still being
    /// written (read on at its end as `tail -f` does). Each read reaches the
    /// parser as it arrives, and once `stop` is set the input ends after the
    /// bytes already read (a frame cut there is a truncated last frame).
    pub fn open_live(
        path: &Path,
        follow: bool,
        stop: Arc<std::sync::atomic::AtomicBool>,
    ) -> Result<CaptureReader, CaptureError> {
        use super::readahead::{Follow, ReadAhead};
        let input: Box<dyn Read + Send> = if path == Path::new("-") {
            Box::new(io::stdin())
        } else {
            let open_err = |source| CaptureError::Open {
                path: path.to_path_buf(),
                source,
            };
            let file = std::fs::File::open(path).map_err(open_err)?;
            if file.metadata().map_err(open_err)?.is_dir() {
                return Err(open_err(io::Error::other("is a directory")));
            }
            if follow {
                Box::new(Follow {
                    file,
                    stop: Arc::clone(&stop),
                })
            } else {
                Box::new(file)
            }
        };
        // The read-ahead sits under the format sniffing, so that even a
        // stop before the first bytes ends the wait.
        let ahead = ReadAhead::live(input, stop);
        let drained = ahead.drained_flag();
        let mut reader = Self::from_input(Box::new(ahead), ReadAheadUse::Never)?;
        reader.drained = Some(drained);
        Ok(reader)
    }

    /// A live input ([`CaptureReader::open_live`]) has nothing more at hand
    /// beyond what the parser holds: the next read may wait for the sender.
    /// Always false for other inputs.
    pub fn input_drained(&self) -> bool {
        self.drained
            .as_ref()
            .is_some_and(|d| d.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Reads from any byte stream (gzip detected by its magic), a few
    /// chunks ahead on a second thread.
    pub fn from_reader(input: Box<dyn Read + Send>) -> Result<CaptureReader, CaptureError> {
        Self::from_input(input, ReadAheadUse::Always)
    }

    /// Like [`CaptureReader::from_reader`], but every read happens on the
    /// calling thread: for small in-memory inputs and the fuzz targets, where
    /// a thread per input costs more than it saves (and outlives the input).
    pub fn from_reader_inline(input: Box<dyn Read + Send>) -> Result<CaptureReader, CaptureError> {
        Self::from_input(input, ReadAheadUse::Never)
    }

    fn from_input(
        mut input: Box<dyn Read + Send>,
        read_ahead: ReadAheadUse,
    ) -> Result<CaptureReader, CaptureError> {
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
        let ahead = match read_ahead {
            ReadAheadUse::Always => true,
            // Inflating costs more than parsing: worth its own thread.
            ReadAheadUse::GzipOnly => gzip,
            ReadAheadUse::Never => false,
        };
        let stream: Box<dyn Read + Send> = if ahead {
            Box::new(super::readahead::ReadAhead::new(stream))
        } else {
            stream
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
    /// gives precise errors, and pcap-parser's constructors (and
    /// `create_reader`) do a single `read()` that must return the whole file
    /// header, which a pipe or a gzip stream need not do. The sniffed bytes
    /// are then replayed in front of the rest.
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
        let at0 = Location {
            offset: 0,
            frame: None,
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
        let parser_err = |e: PcapError<&[u8]>| CaptureError::Malformed {
            at: at0,
            why: parser_error(&e),
        };
        let mut shb = None;
        let inner = match format {
            CaptureFormat::Pcap => {
                if n < 24 {
                    return Err(CaptureError::TooShort {
                        what: "pcap file header",
                        needed: 24,
                        found: n as u64,
                    });
                }
                let input = Cursor::new(prefix).chain(source);
                Inner::Pcap(LegacyPcapReader::new(capacity, input).map_err(parser_err)?)
            }
            CaptureFormat::Pcapng => {
                if n < 12 {
                    return Err(CaptureError::TooShort {
                        what: "pcapng Section Header Block",
                        needed: 28,
                        found: n as u64,
                    });
                }
                let big_endian =
                    shb_big_endian(&prefix[8..12]).ok_or_else(|| bad_bom(at0, &prefix[8..12]))?;
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
                let trailing = u32_at(&prefix, len - 4, big_endian);
                if trailing as usize != len {
                    return Err(CaptureError::BlockLengthMismatch {
                        at: at0,
                        block_type: SHB,
                        length: len as u32,
                        trailing,
                    });
                }
                capacity = capacity.max(len.next_power_of_two());
                shb = Some((big_endian, len));
                let input = Cursor::new(prefix).chain(source);
                Inner::Pcapng(PcapNGReader::new(capacity, input).map_err(parser_err)?)
            }
        };
        let mut reader = CaptureReader {
            inner,
            status,
            format,
            gzip,
            pcap: PcapState {
                big_endian: false,
                frac_ns: 1000,
                record_header: 16,
                link_type: LinkType::Ethernet,
                caplen_limit: MAX_SNAPLEN,
                caplen_why: "",
                snaplen: 0,
                warned_over_snaplen: false,
                overlong_fraction: OverlongFraction::default(),
            },
            ng: NgState::default(),
            offset: 0,
            pos: 0,
            frames: 0,
            returned: 0,
            capacity,
            warnings: Vec::new(),
            done: false,
            drained: None,
        };
        match shb {
            // The first SHB is handled here so a bad section is an error
            // from `open`, like a bad pcap header.
            Some((big_endian, len)) => {
                reader.section_header(at0, big_endian)?;
                reader.pos = len;
            }
            None => reader.read_pcap_header()?,
        }
        Ok(reader)
    }

    fn read_pcap_header(&mut self) -> Result<(), CaptureError> {
        let at = Location {
            offset: 0,
            frame: None,
        };
        let (len, h) = match self.inner.it().next() {
            Ok((len, PcapBlockOwned::LegacyHeader(h))) => (len, h),
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
        // pcap has no framing besides caplen, so it is bounded before being
        // trusted (a garbage caplen would otherwise make us buffer up to 4 GiB).
        // The bound is libpcap's, not the header's snapshot length: libpcap
        // reads longer records (tcpdump's own test captures have dozens).
        let (caplen_limit, caplen_why) = (
            MAX_SNAPLEN,
            "the largest captured length libpcap and Wireshark accept",
        );
        self.pcap = PcapState {
            big_endian: h.is_bigendian(),
            frac_ns: if h.is_nanosecond_precision() { 1 } else { 1000 },
            record_header: if h.is_modified_format() { 24 } else { 16 },
            // The upper 16 bits hold FCS-length flags (LT_FCS_* in libpcap).
            link_type: LinkType::from_number(h.network.0 as u32 & 0xffff),
            caplen_limit,
            caplen_why,
            snaplen: h.snaplen,
            warned_over_snaplen: false,
            overlong_fraction: OverlongFraction::default(),
        };
        self.inner.it().consume(len);
        self.offset = len as u64;
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
        self.returned
    }

    /// The next frame, `Ok(None)` at the end.
    ///
    /// A truncated last frame ends the capture with `Ok(None)` and a warning.
    /// After an error the reader is finished and returns `Ok(None)`.
    pub fn next_frame(&mut self) -> Result<Option<FrameRef<'_>>, CaptureError> {
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
                self.word_overlong_fraction();
                return Ok(None);
            }
            Err(e) => {
                self.done = true;
                self.word_overlong_fraction();
                return Err(e);
            }
        };
        self.frames += 1;
        self.returned += 1;
        // In bounds by construction (the whole record is buffered); checked
        // anyway so a logic slip is an error, not a panic.
        let Some(data) = self
            .inner
            .data()
            .get(meta.data_start..meta.data_start + meta.caplen)
        else {
            self.done = true;
            return Err(CaptureError::Malformed {
                at: Location {
                    offset: self.offset + meta.data_start as u64,
                    frame: Some(self.frames),
                },
                why: "internal error: frame data outside the buffered record".into(),
            });
        };
        Ok(Some(FrameRef {
            number: self.frames,
            ts_ns: meta.ts_ns,
            link_type: meta.link_type,
            interface: meta.interface as u32,
            orig_len: meta.orig_len as u32,
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
        self.offset + self.pos as u64
    }

    /// Where the next record starts.
    fn here(&self, frame: Option<u64>) -> Location {
        Location {
            offset: self.bytes_read(),
            frame,
        }
    }

    /// Hands the bytes read so far back to pcap-parser, so the next record
    /// starts at `inner.data()[0]`.
    fn sync(&mut self) {
        if self.pos != 0 {
            self.inner.it().consume(self.pos);
            self.offset += self.pos as u64;
            self.pos = 0;
        }
    }

    /// Makes sure the next `need` bytes are buffered; `Ok(false)` if the
    /// input ends first. Leaves the record at `inner.data()[0]` (`pos` 0).
    /// `need` never exceeds `MAX_BLOCK_LEN` (callers check lengths first).
    fn fill(&mut self, need: usize) -> Result<bool, CaptureError> {
        self.sync();
        while self.inner.data().len() < need {
            if self.inner.it().reader_exhausted() {
                return Ok(false);
            }
            if need > self.capacity {
                let new = need.next_power_of_two().min(MAX_BLOCK_LEN).max(need);
                self.inner.it().grow(new);
                self.capacity = new;
            }
            if self.inner.it().refill().is_err() {
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

    /// The input ended while `what` needed `need` bytes (after `fill`, so
    /// `pos` is 0): clean end if nothing is left, else a truncated last
    /// record (a warning, not an error).
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
        let hdr = st.record_header;
        loop {
            let rest = &self.inner.data()[self.pos..];
            let need = if rest.len() < hdr {
                hdr
            } else {
                let caplen = u32_at(rest, 8, st.big_endian);
                if caplen > st.caplen_limit {
                    return Err(CaptureError::CaplenTooLarge {
                        at: self.here(Some(self.frames + 1)),
                        caplen,
                        limit: st.caplen_limit,
                        why: st.caplen_why,
                    });
                }
                let len = hdr + caplen as usize;
                if caplen > st.snaplen && st.snaplen > 0 && !self.pcap.warned_over_snaplen {
                    self.pcap.warned_over_snaplen = true;
                    let frame = self.frames + 1;
                    let at = self.here(Some(frame));
                    self.warnings.push(CaptureWarning {
                        offset: at.offset,
                        frame: Some(frame),
                        message: format!(
                            "{at}: captured length of {caplen} bytes is larger than the snapshot length in the file header ({}); read in full, as libpcap and Wireshark do (later such records are not reported)",
                            st.snaplen
                        ),
                    });
                }
                if rest.len() >= len {
                    let sec = i64::from(u32_at(rest, 0, st.big_endian));
                    let frac_raw = u32_at(rest, 4, st.big_endian);
                    // Clamped below one second: see `OverlongFraction`.
                    let frac = i64::from(frac_raw).min(1_000_000_000 / st.frac_ns - 1);
                    let meta = FrameMeta {
                        ts_ns: sec * 1_000_000_000 + frac * st.frac_ns,
                        link_type: st.link_type,
                        interface: 0,
                        orig_len: u32_at(rest, 12, st.big_endian).into(),
                        data_start: self.pos + hdr,
                        caplen: caplen as usize,
                    };
                    if i64::from(frac_raw) * st.frac_ns >= 1_000_000_000 {
                        self.note_overlong_fraction(frac_raw);
                    }
                    self.pos += len;
                    return Ok(Some(meta));
                }
                len
            };
            if !self.fill(need)? {
                let frame = self.frames + 1;
                return Ok(self.end_of_input(&format!("frame {frame}"), Some(frame), need));
            }
        }
    }

    /// A pcap record (frame `self.frames + 1`) whose fraction of a second
    /// is a second or more: counted, one warning for all.
    #[cold]
    fn note_overlong_fraction(&mut self, value: u32) {
        let frame = self.frames + 1;
        let o = &mut self.pcap.overlong_fraction;
        o.records += 1;
        o.max_value = o.max_value.max(value);
        if o.warning.is_none() {
            o.first_frame = frame;
            o.first_value = value;
            o.warning = Some(self.warnings.len());
            let at = self.here(Some(frame));
            self.warnings.push(CaptureWarning {
                offset: at.offset,
                frame: Some(frame),
                message: String::new(),
            });
        }
        self.word_overlong_fraction();
    }

    /// (Re)writes the overlong-fraction warning with the count so far: at
    /// the first such record and when the reading ends.
    fn word_overlong_fraction(&mut self) {
        let o = self.pcap.overlong_fraction;
        let Some(i) = o.warning else { return };
        // Once per record would be a string per frame of a file whose every
        // record has it: the count is reworded at the end (and at the first).
        if o.records > 1 && !self.done {
            return;
        }
        let (unit, per_second) = if self.pcap.frac_ns == 1 {
            ("nanosecond", 1e9)
        } else {
            ("microsecond", 1e6)
        };
        let others = match o.records {
            1 => String::new(),
            n => format!(" ({n} records are like this, the largest {})", o.max_value),
        };
        let message = format!(
            "frame {}: the record header's {unit} field is {}, a second or more{others}: the program that wrote the capture did not keep the fraction below one second. Such times are taken as the last instant of their second (the field says up to {:.0} s more, which would stretch the capture); times and delays around these frames may be off by up to a second, and Wireshark shows them differently",
            o.first_frame,
            o.first_value,
            f64::from(o.max_value) / per_second
        );
        if let Some(w) = self.warnings.get_mut(i) {
            w.message = message;
        }
    }

    /// Walks pcapng blocks until a packet block, checking each block's
    /// framing before anything else looks inside it.
    fn advance_pcapng(&mut self) -> Result<Option<FrameMeta>, CaptureError> {
        loop {
            let frame = self.frames + 1;
            let rest = &self.inner.data()[self.pos..];
            // Block type and length; the SHB type reads the same in both
            // byte orders, its length is in the order of its own byte-order
            // magic.
            let head = if rest.len() < 8 {
                Err(8)
            } else {
                let raw_type = u32_at(rest, 0, self.ng.big_endian);
                if raw_type != SHB {
                    Ok((raw_type, self.ng.big_endian))
                } else if rest.len() < 12 {
                    Err(12)
                } else {
                    match shb_big_endian(&rest[8..12]) {
                        Some(be) => Ok((SHB, be)),
                        None => return Err(bad_bom(self.here(None), &rest[8..12])),
                    }
                }
            };
            let (block_type, big_endian) = match head {
                Ok(h) => h,
                Err(need) => {
                    if !self.fill(need)? {
                        let d = self.inner.data();
                        let numbered =
                            d.len() >= 4 && is_packet_block(u32_at(d, 0, self.ng.big_endian));
                        let what = if numbered {
                            format!("frame {frame}")
                        } else {
                            "pcapng block".to_string()
                        };
                        return Ok(self.end_of_input(&what, numbered.then_some(frame), need));
                    }
                    continue;
                }
            };
            let at = self.here(numbered_block(block_type).then_some(frame));
            let length = u32_at(rest, 4, big_endian);
            check_block_length(at, block_type, length)?;
            let len = length as usize;
            if rest.len() < len {
                if !self.fill(len)? {
                    let what = if is_packet_block(block_type) {
                        format!("frame {frame}")
                    } else {
                        format!("{} (type {block_type:#010x})", block_name(block_type))
                    };
                    return Ok(self.end_of_input(&what, at.frame, len));
                }
                continue;
            }
            let block = &rest[..len];
            let trailing = u32_at(block, len - 4, big_endian);
            if trailing != length {
                return Err(CaptureError::BlockLengthMismatch {
                    at,
                    block_type,
                    length,
                    trailing,
                });
            }
            match block_type {
                EPB | OPB => return self.packet_block(at, block_type).map(Some),
                SPB => return self.simple_packet(at).map(Some),
                SHB => self.section_header(at, big_endian)?,
                IDB => self.interface_description(at)?,
                CB | DCB | SJE => self.frames += 1,
                // NRB, ISB, DSB, unknown: nothing the analysis needs.
                _ => {}
            }
            // SHB/IDB went through `sync`: `pos` is 0 then, and adding `len`
            // is right in both cases.
            self.pos += len;
        }
    }

    /// Runs pcap-parser on the block at `pos` (SHB and IDB: the blocks with
    /// options worth its parser). Leaves `pos` at the block.
    fn parse_block<T>(
        &mut self,
        at: Location,
        block_type: u32,
        f: impl FnOnce(&Block<'_>) -> Option<T>,
    ) -> Result<T, CaptureError> {
        self.sync();
        match self.inner.it().next() {
            Ok((_, PcapBlockOwned::NG(block))) => {
                f(&block).ok_or_else(|| CaptureError::Malformed {
                    at,
                    why: format!("pcap-parser did not see a {}", block_name(block_type)),
                })
            }
            Ok(_) => Err(CaptureError::Malformed {
                at,
                why: "pcap-parser returned a pcap block in a pcapng file".into(),
            }),
            Err(e) => Err(CaptureError::BadBlock {
                at,
                block_type,
                why: parser_error(&e),
            }),
        }
    }

    fn section_header(&mut self, at: Location, big_endian: bool) -> Result<(), CaptureError> {
        let major = u16_at(&self.inner.data()[self.pos..], 12, big_endian);
        if major != 1 {
            return Err(CaptureError::Unsupported {
                offset: at.offset,
                what: format!("pcapng section version {major} (only version 1 exists)"),
            });
        }
        // Through pcap-parser too: it switches its own byte order on SHBs,
        // which its IDB parser then uses.
        self.parse_block(at, SHB, |b| {
            matches!(b, Block::SectionHeader(_)).then_some(())
        })?;
        self.ng.big_endian = big_endian;
        self.ng.interfaces.clear();
        Ok(())
    }

    fn interface_description(&mut self, at: Location) -> Result<(), CaptureError> {
        let big_endian = self.ng.big_endian;
        let id = self.ng.interfaces.len();
        // if_tsresol/if_tsoffset are read from the raw options: pcap-parser's
        // `if_tsoffset` field is decoded little-endian even in big-endian
        // sections, and its `ts_resolution()` rejects every 2^-n value.
        let (link_type, snaplen, tsresol, tsoffset) = self.parse_block(at, IDB, |b| {
            let Block::InterfaceDescription(idb) = b else {
                return None;
            };
            let mut tsresol = None;
            let mut tsoffset = None;
            for opt in &idb.options {
                let v = opt.value();
                match opt.code.0 {
                    9 if opt.len == 1 && !v.is_empty() => {
                        tsresol.get_or_insert(v[0]);
                    }
                    14 if opt.len == 8 && v.len() >= 8 => {
                        let b = [v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]];
                        tsoffset.get_or_insert(if big_endian {
                            i64::from_be_bytes(b)
                        } else {
                            i64::from_le_bytes(b)
                        });
                    }
                    _ => {}
                }
            }
            Some((
                idb.linktype.0 as u32,
                idb.snaplen,
                tsresol.unwrap_or(6),
                tsoffset.unwrap_or(0),
            ))
        })?;
        let bad = |why: String| CaptureError::BadBlock {
            at,
            block_type: IDB,
            why,
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

    /// EPB, or the obsolete Packet Block (type 2) which has the same layout
    /// except for a 16-bit interface id followed by a 16-bit drop count.
    /// Options after the data are ignored.
    fn packet_block(&mut self, at: Location, block_type: u32) -> Result<FrameMeta, CaptureError> {
        let be = self.ng.big_endian;
        let b = &self.inner.data()[self.pos..];
        let len = u32_at(b, 4, be);
        let caplen = u32_at(b, 20, be);
        if 32 + u64::from(caplen).next_multiple_of(4) > u64::from(len) {
            return Err(CaptureError::BadBlock {
                at,
                block_type,
                why: format!("its captured length {caplen} does not fit in its block length {len}"),
            });
        }
        let if_id = if block_type == OPB {
            u32::from(u16_at(b, 8, be))
        } else {
            u32_at(b, 8, be)
        };
        let ts = (u64::from(u32_at(b, 12, be)) << 32) | u64::from(u32_at(b, 16, be));
        let orig_len = u32_at(b, 24, be);
        let iface = self.interface(at, if_id)?;
        let meta = FrameMeta {
            ts_ns: clamp_i64(iface.scale.to_ns(ts) + iface.offset_ns),
            link_type: iface.link_type,
            interface: if_id.into(),
            orig_len: orig_len.into(),
            data_start: self.pos + 28,
            caplen: caplen as usize,
        };
        self.pos += len as usize;
        Ok(meta)
    }

    fn simple_packet(&mut self, at: Location) -> Result<FrameMeta, CaptureError> {
        let iface = self.interface(at, 0)?;
        let be = self.ng.big_endian;
        let b = &self.inner.data()[self.pos..];
        let len = u32_at(b, 4, be) as usize;
        let orig_len = u32_at(b, 8, be);
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
        let meta = FrameMeta {
            ts_ns: 0,
            link_type: iface.link_type,
            interface: 0,
            orig_len: orig_len.into(),
            data_start: self.pos + 12,
            caplen,
        };
        self.pos += len;
        Ok(meta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_is_send() {
        fn send<T: Send>() {}
        send::<CaptureReader>();
    }

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
