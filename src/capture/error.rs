use std::path::PathBuf;

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
    #[error("{0}")]
    Format(String),
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
