use super::{CaptureError, CaptureWarning, LinkType};
use std::io::Read;
use std::path::Path;

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
pub struct CaptureReader {
    _private: (),
}

impl CaptureReader {
    /// Opens `path` (`-` means stdin); gzip is detected by its magic.
    pub fn open(_path: &Path) -> Result<CaptureReader, CaptureError> {
        todo!("capture reader")
    }

    /// Reads from any byte stream (gzip detected by its magic).
    pub fn from_reader(_input: Box<dyn Read + Send>) -> Result<CaptureReader, CaptureError> {
        todo!("capture reader")
    }

    pub fn format(&self) -> CaptureFormat {
        todo!()
    }

    /// The next frame, `Ok(None)` at the end.
    pub fn next_frame(&mut self) -> Result<Option<FrameRef<'_>>, CaptureError> {
        todo!()
    }

    /// Non-fatal problems seen so far (truncated last frame, ...).
    pub fn warnings(&self) -> &[CaptureWarning] {
        todo!()
    }

    /// Bytes of (decompressed) capture consumed so far.
    pub fn bytes_read(&self) -> u64 {
        todo!()
    }
}
