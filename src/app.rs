//! The jobs, wiring the edges (files) to the pure analysis.

use crate::analysis::{Analysis, AnalysisOptions, Analyzer};
use crate::capture::{CaptureError, CaptureFormat, CaptureReader, CaptureWarning, LinkType};
use crate::packet::{DecodeError, arp_sighting, decode};
use crate::path::{Path, mtr};
use serde::Serialize;
use std::path::PathBuf;

/// Errors of a job: bad input or usage (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{path}: {source}")]
    Capture { path: String, source: CaptureError },
    #[error("{path}: frame {frame} has link type {} ({link_number}), which pathproof cannot decode (supported: Ethernet, Linux cooked SLL/SLL2, raw IP, BSD null/loopback)", link.name())]
    UnsupportedLinkType {
        path: String,
        frame: u64,
        link: LinkType,
        link_number: u32,
    },
    #[error("cannot read mtr report {path}: {source}")]
    MtrRead {
        path: String,
        source: std::io::Error,
    },
    #[error("mtr report {path}: {source}")]
    Mtr {
        path: String,
        source: mtr::MtrParseError,
    },
}

/// What `pathproof pcap` was asked to do.
#[derive(Clone, Debug)]
pub struct PcapJob {
    /// Capture file, `-` for stdin.
    pub input: PathBuf,
    pub path: Option<Path>,
    pub options: AnalysisOptions,
}

/// Facts about the capture itself.
#[derive(Clone, Debug, Serialize)]
pub struct InputSummary {
    pub file: String,
    pub format: CaptureFormat,
    pub link_types: Vec<String>,
    /// Frames in the capture (Wireshark's count).
    pub frames: u64,
    /// Bytes of capture read (after decompression).
    pub bytes: u64,
    /// Frames decoded as IP packets.
    pub ip_packets: u64,
    /// Frames that are not IP (ARP, LLDP, ...) or are loopback duplicates.
    pub non_ip_frames: u64,
    /// Frames whose headers are cut or malformed.
    pub undecodable_frames: u64,
    /// Frames of interfaces with a link type pathproof cannot decode.
    pub unsupported_link_frames: u64,
}

/// The result of `pathproof pcap`.
pub struct PcapReport {
    pub input: InputSummary,
    pub analysis: Analysis,
    pub path: Option<Path>,
    pub warnings: Vec<CaptureWarning>,
}

/// Reads a path from a file: an mtr report (text or JSON) or `pathproof trace --json`.
pub fn load_mtr(file: &std::path::Path) -> Result<Path, JobError> {
    let shown = file.display().to_string();
    let text = std::fs::read(file).map_err(|source| JobError::MtrRead {
        path: shown.clone(),
        source,
    })?;
    let text = String::from_utf8_lossy(&text);
    if crate::path::trace_json::looks_like_trace(&text) {
        return crate::path::trace_json::parse(&text).map_err(|reason| JobError::Mtr {
            path: shown,
            source: mtr::MtrParseError::Json(reason),
        });
    }
    mtr::parse(&text).map_err(|source| JobError::Mtr {
        path: shown,
        source,
    })
}

/// Runs the offline analysis of a capture.
pub fn run_pcap(job: PcapJob) -> Result<PcapReport, JobError> {
    let shown = job.input.display().to_string();
    let capture_err = |source| JobError::Capture {
        path: shown.clone(),
        source,
    };
    let reader = CaptureReader::open(&job.input).map_err(capture_err)?;
    analyse_capture(reader, shown, job.path, &job.options)
}

/// Runs the analysis over an open capture (`shown` names it in errors and
/// the report): a file for `pcap`, the recording of a live `check`.
pub fn analyse_capture(
    mut reader: CaptureReader,
    shown: String,
    path: Option<Path>,
    options: &AnalysisOptions,
) -> Result<PcapReport, JobError> {
    let capture_err = |source| JobError::Capture {
        path: shown.clone(),
        source,
    };
    let format = reader.format();
    let mut analyzer = Analyzer::new(options);
    let mut link_types: Vec<LinkType> = Vec::new();
    let (mut frames, mut non_ip, mut undecodable, mut unsupported) = (0u64, 0u64, 0u64, 0u64);
    let mut first_unsupported: Option<(u64, LinkType, u32)> = None;

    while let Some(frame) = reader.next_frame().map_err(capture_err)? {
        frames = frame.number;
        if !link_types.contains(&frame.link_type) {
            link_types.push(frame.link_type);
        }
        match decode(frame.link_type, frame.number, frame.ts_ns, frame.data) {
            Ok(d) => analyzer.push_with_payload(&d.packet, d.payload),
            Err(DecodeError::NotIp) => {
                non_ip += 1;
                if let Some(s) = arp_sighting(frame.link_type, frame.number, frame.data) {
                    analyzer.note_arp(&s);
                }
            }
            Err(DecodeError::LoopbackDuplicate) => non_ip += 1,
            Err(DecodeError::UnsupportedLinkType(n)) => {
                unsupported += 1;
                first_unsupported.get_or_insert((frame.number, frame.link_type, n));
                // A pcap has one link type: nothing in it can be decoded.
                if format == CaptureFormat::Pcap {
                    break;
                }
            }
            Err(DecodeError::Truncated(_) | DecodeError::Malformed(_)) => undecodable += 1,
        }
    }
    if let Some((frame, link, link_number)) = first_unsupported
        && analyzer.packets() == 0
    {
        return Err(JobError::UnsupportedLinkType {
            path: shown,
            frame,
            link,
            link_number,
        });
    }
    let mut warnings = reader.warnings().to_vec();
    if unsupported > 0 {
        warnings.push(CaptureWarning {
            offset: 0,
            frame: first_unsupported.map(|f| f.0),
            message: format!(
                "{unsupported} frames on interfaces with an unsupported link type were skipped"
            ),
        });
    }
    let input = InputSummary {
        file: shown,
        format,
        link_types: link_types.iter().map(|l| l.name()).collect(),
        frames,
        bytes: reader.bytes_read(),
        ip_packets: analyzer.packets(),
        non_ip_frames: non_ip,
        undecodable_frames: undecodable,
        unsupported_link_frames: unsupported,
    };
    let analysis = analyzer.finish(path.as_ref());
    Ok(PcapReport {
        input,
        analysis,
        path,
        warnings,
    })
}
