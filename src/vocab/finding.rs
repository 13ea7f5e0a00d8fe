//! A finding: one observation with its evidence (frames and a filter).

use super::FindingKind;
use serde::Serialize;
use std::net::IpAddr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    Low,
    Medium,
    High,
}

/// Frames listed per finding; beyond this the filter matches them by content.
pub const MAX_FRAMES_LISTED: usize = 64;

/// One observation with its evidence.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    /// What was found; serialised as a stable kebab-case name.
    pub kind: FindingKind,
    pub severity: Severity,
    pub hop: Option<u8>,
    pub address: Option<IpAddr>,
    pub summary: String,
    /// Frame numbers that prove it (as Wireshark numbers them), at most
    /// [`MAX_FRAMES_LISTED`]; `frames_total` counts them all.
    pub frames: Vec<u64>,
    pub frames_total: usize,
    /// A Wireshark display filter that shows the evidence.
    pub filter: String,
}

impl Finding {
    /// A finding whose filter lists its frames, or, when there are too many,
    /// uses `content_filter` (a filter that matches them by content).
    pub fn new(
        kind: FindingKind,
        severity: Severity,
        summary: String,
        mut frames: Vec<u64>,
        content_filter: Option<String>,
    ) -> Finding {
        frames.sort_unstable();
        frames.dedup();
        let frames_total = frames.len();
        let filter = match content_filter {
            Some(f) if frames_total > MAX_FRAMES_LISTED => f,
            _ if frames.is_empty() => String::new(),
            _ => frame_filter(&frames[..frames_total.min(MAX_FRAMES_LISTED)]),
        };
        frames.truncate(MAX_FRAMES_LISTED);
        Finding {
            kind,
            severity,
            hop: None,
            address: None,
            summary,
            frames,
            frames_total,
            filter,
        }
    }

    pub fn at(mut self, hop: Option<u8>, address: Option<IpAddr>) -> Finding {
        self.hop = hop;
        self.address = address;
        self
    }
}

/// `frame.number in {1, 5, 9}`: Wireshark 4's set syntax (the elements
/// separated by commas; 3.x's space-separated form is refused by 4.x).
pub fn frame_filter(frames: &[u64]) -> String {
    let list: Vec<String> = frames.iter().map(u64::to_string).collect();
    format!("frame.number in {{{}}}", list.join(", "))
}
