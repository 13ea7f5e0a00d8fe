use std::fmt;
use std::path::PathBuf;

/// Where in the capture something is: byte offset in the decompressed stream
/// and, for packet records/blocks, the 1-based frame number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Location {
    pub offset: u64,
    pub frame: Option<u64>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.frame {
            Some(n) => write!(f, "frame {n} at byte offset {}", self.offset),
            None => write!(f, "byte offset {}", self.offset),
        }
    }
}

/// A capture that cannot be read. Every variant says what went wrong and where
/// (byte offset in the decompressed stream, and frame number when known).
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("read error at byte offset {offset}: {source}")]
    Io { offset: u64, source: std::io::Error },
    #[error("the capture is empty (0 bytes): expected a pcap or pcapng header")]
    Empty,
    /// The stream ends inside the file header (pcap header or first pcapng SHB).
    #[error(
        "the capture is too short: its {what} needs {needed} bytes but the input ends at byte offset {found}"
    )]
    TooShort {
        what: &'static str,
        needed: u64,
        found: u64,
    },
    #[error(
        "not a pcap or pcapng capture: the first bytes at byte offset 0 are {}; expected a pcap magic number (a1b2c3d4 or a1b23c4d, in either byte order) or a pcapng Section Header Block (0a0d0d0a)",
        describe_bytes(.found)
    )]
    BadMagic { found: Vec<u8> },
    #[error(
        "pcapng capture does not start with a Section Header Block: the first block at byte offset 0 has type {block_type:#010x} ({})",
        block_name(*.block_type)
    )]
    NotShb { block_type: u32 },
    #[error("unsupported capture at byte offset {offset}: {what}")]
    Unsupported { offset: u64, what: String },
    /// A pcap record whose captured length is impossible (pcap has no other
    /// framing, so everything after it would be garbage).
    #[error(
        "{at}: corrupt pcap record: its captured length of {caplen} bytes is larger than {limit} ({why})"
    )]
    CaplenTooLarge {
        at: Location,
        caplen: u32,
        limit: u32,
        why: &'static str,
    },
    #[error(
        "{at}: corrupt pcapng block: the {} (type {block_type:#010x}) has an invalid block length of {length}: {why}",
        block_name(*.block_type)
    )]
    BadBlockLength {
        at: Location,
        block_type: u32,
        length: u32,
        why: String,
    },
    #[error(
        "{at}: corrupt pcapng block: the {} (type {block_type:#010x}) says its length is {length} at its start but {trailing} at its end",
        block_name(*.block_type)
    )]
    BlockLengthMismatch {
        at: Location,
        block_type: u32,
        length: u32,
        trailing: u32,
    },
    #[error(
        "{at}: corrupt pcapng {} (type {block_type:#010x}): {why}",
        block_name(*.block_type)
    )]
    BadBlock {
        at: Location,
        block_type: u32,
        why: String,
    },
    #[error(
        "{at}: the packet refers to pcapng interface {interface}, but its section has only {known} Interface Description Block(s) before it"
    )]
    UnknownInterface {
        at: Location,
        interface: u32,
        known: usize,
    },
    /// Anything else the container parser rejected.
    #[error("{at}: malformed capture: {why}")]
    Malformed { at: Location, why: String },
}

impl CaptureError {
    /// Where in the stream the error is, for errors met while reading records.
    pub fn location(&self) -> Option<Location> {
        match self {
            CaptureError::CaplenTooLarge { at, .. }
            | CaptureError::BadBlockLength { at, .. }
            | CaptureError::BlockLengthMismatch { at, .. }
            | CaptureError::BadBlock { at, .. }
            | CaptureError::UnknownInterface { at, .. }
            | CaptureError::Malformed { at, .. } => Some(*at),
            CaptureError::Io { offset, .. } | CaptureError::Unsupported { offset, .. } => {
                Some(Location {
                    offset: *offset,
                    frame: None,
                })
            }
            _ => None,
        }
    }
}

/// Something odd that does not stop the analysis (e.g. a truncated last frame).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CaptureWarning {
    /// Byte offset in the (decompressed) capture where the problem starts.
    pub offset: u64,
    /// Frame number concerned, if any.
    pub frame: Option<u64>,
    pub message: String,
}

impl fmt::Display for CaptureWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Human name of a pcapng block type, for messages.
pub(crate) fn block_name(block_type: u32) -> &'static str {
    match block_type {
        0x0A0D_0D0A => "Section Header Block",
        1 => "Interface Description Block",
        2 => "obsolete Packet Block",
        3 => "Simple Packet Block",
        4 => "Name Resolution Block",
        5 => "Interface Statistics Block",
        6 => "Enhanced Packet Block",
        9 => "systemd Journal Export Block",
        0x0A => "Decryption Secrets Block",
        0x0BAD | 0x4000_0BAD => "Custom Block",
        _ => "block",
    }
}

/// `d4 c3 b2 a1` plus the ASCII reading when it is printable (helps spot text/HTML files).
fn describe_bytes(bytes: &[u8]) -> String {
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let hex = hex.join(" ");
    if !bytes.is_empty() && bytes.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        format!("{hex} (text \"{}\")", String::from_utf8_lossy(bytes))
    } else {
        hex
    }
}
