//! `--evidence FILE.pcapng`: the few packets that prove the verdict, copied
//! byte for byte from the capture, each with a packet comment saying why it
//! is there and which frame of the original it was; and the check that the
//! file alone leads `pathproof pcap` to the same verdict and hop.
//!
//! The analysis chooses the frames ([`crate::analysis::evidence::plan`]);
//! this job reads the capture a second time for their bytes (memory stays
//! bounded: only the chosen frames and at most [`MAX_FLOW_PACKETS`] per
//! connection of the proof are kept), writes candidate files in memory,
//! re-analyses each, and keeps the smallest that reaches the same verdict.

use super::{JobError, analyse_capture};
use crate::analysis::evidence::{EvidencePlan, Tier, plan, shorten};
use crate::analysis::{AnalysisOptions, Finding, Verdict, VerdictClass};
use crate::capture::{CaptureError, CaptureReader, LinkType, PcapngWriter};
use crate::packet::{Transport, decode};
use crate::path::Path;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// Packets an evidence file holds at most: a firewall owner reads them one
/// by one.
pub const MAX_EVIDENCE_PACKETS: usize = 48;
/// Packets kept per connection of the proof in the second pass, offered as
/// context when the chosen frames alone do not reach the verdict.
const MAX_FLOW_PACKETS: usize = 64;

/// Where the capture's bytes are read again.
pub enum EvidenceSource<'a> {
    File(&'a std::path::Path),
    /// A recording held in memory (`check`).
    Bytes(&'a [u8]),
}

/// What was written (JSON `evidence`).
#[derive(Clone, Debug, Serialize)]
pub struct EvidenceSummary {
    pub file: String,
    /// Packets in the file.
    pub packets: usize,
    /// Frames of the original, in the file's order.
    pub frames: Vec<u64>,
    /// Evidence frames left out to keep the file at most
    /// [`MAX_EVIDENCE_PACKETS`] packets.
    pub left_out: usize,
    /// The file alone gives the same verdict class and hop.
    pub same_verdict: bool,
    /// What the analysis of the file alone gives.
    pub reread_class: VerdictClass,
    pub reread_hop: Option<u8>,
}

/// One frame of the original, copied.
struct Stored {
    ts_ns: i64,
    link: LinkType,
    orig_len: u32,
    data: Vec<u8>,
    /// For a frame kept only as a packet of a connection of the proof:
    /// why.
    flow_note: Option<String>,
    /// What the packet is, from its headers.
    what: String,
}

/// What the evidence is to reproduce, and how the original was read.
pub struct EvidenceRequest<'a> {
    /// The evidence file to write.
    pub out: &'a std::path::Path,
    /// The original's name, in the comments.
    pub original: &'a str,
    pub verdict: &'a Verdict,
    pub findings: &'a [Finding],
    pub path: Option<&'a Path>,
    pub options: &'a AnalysisOptions,
}

/// Chooses, copies, checks and writes the evidence.
pub fn write_evidence(
    source: EvidenceSource<'_>,
    analysis: &crate::analysis::Analysis,
    req: &EvidenceRequest<'_>,
) -> Result<EvidenceSummary, JobError> {
    let chosen = plan(analysis, req.verdict, req.findings);
    let capture_err = |source| JobError::Capture {
        path: req.original.to_string(),
        source,
    };
    let reader = match source {
        EvidenceSource::File(p) => CaptureReader::open(p),
        EvidenceSource::Bytes(b) => {
            CaptureReader::from_reader_inline(Box::new(std::io::Cursor::new(b.to_vec())))
        }
    }
    .map_err(capture_err)?;
    let stored = collect(reader, &chosen).map_err(capture_err)?;

    // Widening levels: the proof and its context; plus the other packets
    // of the proof's connections; plus the other findings' frames.
    let rank = |frame: u64| -> Option<u8> {
        match chosen.frames.get(&frame).map(|p| p.tier) {
            Some(Tier::Proof) => Some(0),
            Some(Tier::Context) => Some(1),
            Some(Tier::Other) => Some(3),
            None => stored
                .get(&frame)
                .and_then(|s| s.flow_note.as_ref())
                .map(|_| 2),
        }
    };
    let mut best: Option<(Vec<u64>, usize, Verdict)> = None;
    let mut tried: Vec<Vec<u64>> = Vec::new();
    for level in 1..=3u8 {
        let mut wanted: Vec<(u8, u64)> = stored
            .keys()
            .filter_map(|&f| rank(f).filter(|r| *r <= level).map(|r| (r, f)))
            .collect();
        wanted.sort_unstable();
        let left_out = wanted
            .iter()
            .skip(MAX_EVIDENCE_PACKETS)
            .filter(|(r, _)| *r <= 1)
            .count();
        let mut frames: Vec<u64> = wanted
            .iter()
            .take(MAX_EVIDENCE_PACKETS)
            .map(|(_, f)| *f)
            .collect();
        frames.sort_unstable();
        if frames.is_empty() || tried.contains(&frames) {
            continue;
        }
        tried.push(frames.clone());
        let bytes = render(&frames, &stored, &chosen, req, left_out, None)
            .map_err(|e| evidence_err(req, e))?;
        let reread = reanalyse(&bytes, req)?;
        let same = reread.class == req.verdict.class && reread.hop == req.verdict.hop;
        best = Some((frames, left_out, reread));
        if same {
            break;
        }
    }
    let Some((frames, left_out, reread)) = best else {
        return Err(JobError::Evidence {
            path: req.out.display().to_string(),
            source: std::io::Error::other("no frame of the capture supports the verdict"),
        });
    };
    let same_verdict = reread.class == req.verdict.class && reread.hop == req.verdict.hop;
    let bytes = render(&frames, &stored, &chosen, req, left_out, Some(&reread))
        .map_err(|e| evidence_err(req, e))?;
    std::fs::write(req.out, &bytes).map_err(|e| evidence_err(req, e))?;
    Ok(EvidenceSummary {
        file: req.out.display().to_string(),
        packets: frames.len(),
        frames,
        left_out,
        same_verdict,
        reread_class: reread.class,
        reread_hop: reread.hop,
    })
}

fn evidence_err(req: &EvidenceRequest<'_>, source: std::io::Error) -> JobError {
    JobError::Evidence {
        path: req.out.display().to_string(),
        source,
    }
}

/// The second pass: the chosen frames and the packets of the proof's
/// connections (bounded per connection), byte for byte.
fn collect(
    mut reader: CaptureReader,
    chosen: &EvidencePlan,
) -> Result<BTreeMap<u64, Stored>, CaptureError> {
    let mut out = BTreeMap::new();
    let mut per_flow = vec![0usize; chosen.flows.len()];
    loop {
        let frame = match reader.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) => break,
            // Damaged part-way: the analysis stopped there too.
            Err(_) if !out.is_empty() => break,
            Err(e) => return Err(e),
        };
        let planned = chosen.frames.contains_key(&frame.number);
        let mut flow_note = None;
        let decoded = decode(frame.link_type, frame.number, frame.ts_ns, frame.data).ok();
        if !planned
            && !chosen.flows.is_empty()
            && let Some(d) = &decoded
            && let Transport::Tcp(t) = &d.packet.transport
        {
            let src = SocketAddr::new(d.packet.src, t.src_port);
            let dst = SocketAddr::new(d.packet.dst, t.dst_port);
            if let Some(i) = chosen
                .flows
                .iter()
                .position(|&(c, s)| (c, s) == (src, dst) || (c, s) == (dst, src))
                && per_flow[i] < MAX_FLOW_PACKETS
            {
                per_flow[i] += 1;
                let (client, server) = chosen.flows[i];
                let who = if src == client {
                    "the connector's"
                } else {
                    "the server side's"
                };
                flow_note = Some(format!(
                    "{who} segment of the connection {client} → {server}: context the rules weigh with the proof (acknowledgments, retransmissions)"
                ));
            }
        }
        if planned || flow_note.is_some() {
            out.insert(
                frame.number,
                Stored {
                    ts_ns: frame.ts_ns,
                    link: frame.link_type,
                    orig_len: frame.orig_len,
                    data: frame.data.to_vec(),
                    flow_note,
                    what: decoded
                        .as_ref()
                        .map_or_else(|| "a frame without IP".to_string(), |d| what(&d.packet)),
                },
            );
        }
    }
    Ok(out)
}

/// A packet in one line, from its headers: `TCP 198.18.1.1:40000 →
/// 198.18.4.2:443 [ACK] 1448 bytes, TTL 64 (hop 1)`.
fn what(p: &crate::packet::Packet) -> String {
    let est = crate::vocab::HopEstimate::from_ttl(p.ttl);
    // A packet the capturing host sent has its initial TTL: no hop.
    let sent_here = p.direction == crate::packet::Direction::Out
        || (p.direction == crate::packet::Direction::Unknown && est.hop == 1);
    let ip = if sent_here {
        format!("TTL {}", p.ttl)
    } else {
        format!("TTL {} (hop {})", p.ttl, est.hop)
    };
    match &p.transport {
        Transport::Tcp(t) => format!(
            "TCP {}:{} → {}:{} [{}] {} bytes of data, {ip}",
            p.src, t.src_port, p.dst, t.dst_port, t.flags, t.payload_len
        ),
        Transport::Udp {
            src_port, dst_port, ..
        } => format!("UDP {}:{src_port} → {}:{dst_port}, {ip}", p.src, p.dst),
        Transport::Icmp(i) => {
            let quoted = i.quoted.map_or(String::new(), |q| {
                format!(
                    ", quoting the packet {}{} → {}{} (TTL {} when it got there)",
                    q.src,
                    q.src_port.map_or(String::new(), |p| format!(":{p}")),
                    q.dst,
                    q.dst_port.map_or(String::new(), |p| format!(":{p}")),
                    q.ttl
                )
            });
            format!("ICMP {} {} → {}, {ip}{quoted}", i.describe(), p.src, p.dst)
        }
        Transport::Other { protocol } => {
            format!("IP protocol {protocol} {} → {}, {ip}", p.src, p.dst)
        }
    }
}

/// No control characters in a comment (names from the capture are
/// hostile input).
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The evidence file: a section header saying what it is, one interface
/// per link type, the frames with their comments.
fn render(
    frames: &[u64],
    stored: &BTreeMap<u64, Stored>,
    chosen: &EvidencePlan,
    req: &EvidenceRequest<'_>,
    left_out: usize,
    reread: Option<&Verdict>,
) -> std::io::Result<Vec<u8>> {
    let v = req.verdict;
    let hop = v.hop.map_or(String::new(), |h| format!(" at hop {h}"));
    let mut header = format!(
        "pathproof evidence from {}: verdict {}{hop}: {} {} packet(s) of the original, each commented with why it is here and its frame number there.",
        req.original,
        v.class,
        shorten(&v.summary, 400),
        frames.len()
    );
    if left_out > 0 {
        header.push_str(&format!(
            " {left_out} more evidence frame(s) were left out to keep the file at {MAX_EVIDENCE_PACKETS} packets; the original has them."
        ));
    }
    if let Some(r) = reread {
        let rhop = r.hop.map_or(String::new(), |h| format!(" at hop {h}"));
        if r.class == v.class && r.hop == v.hop {
            header.push_str(&format!(
                " Read alone by pathproof pcap (same path options), this file gives the same verdict: {}{rhop}.",
                r.class
            ));
        } else {
            header.push_str(&format!(
                " Read alone by pathproof pcap, this file gives {}{rhop}: the verdict also rests on what is not in it (see the original).",
                r.class
            ));
        }
    }
    let mut w = PcapngWriter::with_comment(Vec::new(), Some(&clean(&header)))?;
    let mut interfaces: Vec<(LinkType, u32)> = Vec::new();
    for n in frames {
        let Some(s) = stored.get(n) else { continue };
        let iface = match interfaces.iter().find(|(l, _)| *l == s.link) {
            Some((_, i)) => *i,
            None => {
                let i = w.add_interface(s.link.number(), 9)?;
                interfaces.push((s.link, i));
                i
            }
        };
        let why = match chosen.frames.get(n) {
            Some(p) if p.described => p.reasons.join("; "),
            Some(p) => format!("{}: {}", s.what, p.reasons.join("; ")),
            None => format!(
                "{}: {}",
                s.what,
                s.flow_note.as_deref().unwrap_or("context of the proof")
            ),
        };
        let comment = clean(&format!("frame {n} of {}: {why}", req.original));
        w.write_frame_with_comment(iface, s.ts_ns, s.orig_len, &s.data, Some(&comment))?;
    }
    w.flush()?;
    Ok(w.into_inner())
}

/// The verdict of the evidence file alone, with the same path and options.
fn reanalyse(bytes: &[u8], req: &EvidenceRequest<'_>) -> Result<Verdict, JobError> {
    let reader = CaptureReader::from_reader_inline(Box::new(std::io::Cursor::new(bytes.to_vec())))
        .map_err(|source| JobError::Capture {
            path: req.out.display().to_string(),
            source,
        })?;
    let report = analyse_capture(
        reader,
        req.out.display().to_string(),
        req.path.cloned(),
        req.options,
    )?;
    Ok(report.analysis.verdict)
}
