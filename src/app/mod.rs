//! The jobs, wiring the edges (files, sockets) to the pure analysis: the
//! binary parses the command line into a job, runs it here, prints.

pub mod evidence;
mod handoff;
pub mod journal;
pub mod many;
pub mod trace;

use crate::analysis::flows::port_listed;
use crate::analysis::{Analysis, AnalysisOptions, Analyzer, FlowKey};
use crate::capture::{CaptureError, CaptureFormat, CaptureReader, CaptureWarning, LinkType};
use crate::packet::{
    ArpSighting, DecodeError, NonIpCounts, Packet, Transport, arp_sighting, decode_into,
    non_ip_kind,
};
use crate::path::{Path, mtr};
use serde::Serialize;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::{Duration, Instant};

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
    #[error("cannot write the evidence file {path}: {source}")]
    Evidence {
        path: String,
        source: std::io::Error,
    },
    #[error("journal {path}: {source}")]
    Journal {
        path: String,
        source: crate::journal::JournalError,
    },
}

/// What `pathproof pcap` was asked to do.
#[derive(Clone, Debug)]
pub struct PcapJob {
    /// Capture file, `-` for stdin.
    pub input: PathBuf,
    pub path: Option<Path>,
    pub options: AnalysisOptions,
    /// The connector's journal to judge beside the capture (`--journal`).
    pub journal: Option<JournalInput>,
    /// `--evidence FILE.pcapng`: write the packets that prove the verdict.
    pub evidence: Option<PathBuf>,
}

/// A journal dump for `pcap --journal`, and how to read its timestamps.
#[derive(Clone, Debug)]
pub struct JournalInput {
    pub file: PathBuf,
    /// `--year`; else the capture's first packet's year.
    pub year: Option<i32>,
    /// `--utc-offset`; else zone-less timestamps are read as UTC.
    pub utc_offset_secs: Option<i32>,
}

/// The journal beside the capture (`pcap --journal`).
#[derive(Clone, Debug, Serialize)]
pub struct PcapJournal {
    pub file: String,
    pub counts: crate::journal::JournalCounts,
    pub year_rule: crate::journal::YearRule,
    pub utc_offset_secs: i32,
    pub utc_offset_assumed: bool,
    #[serde(flatten)]
    pub timeline: crate::analysis::journal_pairing::JournalTimeline,
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
    /// The frames that carry no IP (loopback duplicates aside), by kind.
    pub non_ip_kinds: NonIpCounts,
    /// Frames whose headers are cut or malformed.
    pub undecodable_frames: u64,
    /// Frames of interfaces with a link type pathproof cannot decode.
    pub unsupported_link_frames: u64,
    /// The first frame that could not be read when the capture is damaged
    /// part-way (the analysis covers the frames before it); absent when the
    /// whole capture was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub damaged_from_frame: Option<u64>,
}

/// The result of `pathproof pcap`.
pub struct PcapReport {
    pub input: InputSummary,
    pub analysis: Analysis,
    pub path: Option<Path>,
    pub warnings: Vec<CaptureWarning>,
    pub journal: Option<PcapJournal>,
    /// `--evidence`: what was written.
    pub evidence: Option<evidence::EvidenceSummary>,
}

/// The path the user gave: an mtr report or `trace --json` file (`--mtr`),
/// else the broker's hop count (`--hops`), else none.
pub fn user_path(
    mtr: Option<&std::path::Path>,
    hops: Option<u8>,
) -> Result<Option<Path>, JobError> {
    match (mtr, hops) {
        (Some(file), _) => load_mtr(file).map(Some),
        (None, Some(n)) => Ok(Some(Path::from_hop_count(n))),
        (None, None) => Ok(None),
    }
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
    run_pcap_watched(job, Watch::default())
}

/// As [`run_pcap`], stoppable and watched (see [`Watch`]). A live watch
/// (`Watch::live`) reads the input as it arrives: stdin, or a file still
/// being written (`--follow`).
pub fn run_pcap_watched(job: PcapJob, watch: Watch<'_>) -> Result<PcapReport, JobError> {
    let shown = job.input.display().to_string();
    let capture_err = |source| JobError::Capture {
        path: shown.clone(),
        source,
    };
    // Standard input cannot be read twice: with --evidence it is copied to
    // a temporary file as it is read (removed at the end), which the second
    // pass reads for the evidence frames' bytes.
    let spool = match (&job.evidence, job.input == std::path::Path::new("-")) {
        (Some(_), true) => Some(Spool::new().map_err(|source| JobError::Evidence {
            path: "a temporary copy of standard input".into(),
            source,
        })?),
        _ => None,
    };
    let reader = match (&spool, &watch.live, watch.stop) {
        (Some(s), _, _) => s.reader(),
        (None, Some(live), Some(stop)) => {
            CaptureReader::open_live(&job.input, live.follow, std::sync::Arc::clone(stop))
        }
        _ => CaptureReader::open(&job.input),
    }
    .map_err(capture_err)?;
    let mut report =
        analyse_capture_watched(reader, shown.clone(), job.path.clone(), &job.options, watch)?;
    if let Some(input) = &job.journal {
        let journal = read_journal_beside(input, report.analysis.first_ts_ns)?;
        let timeline =
            crate::analysis::journal_beside::judge_beside(&mut report.analysis, &journal);
        report.journal = Some(PcapJournal {
            file: input.file.display().to_string(),
            counts: journal.counts,
            year_rule: journal.year_rule,
            utc_offset_secs: journal.utc_offset_secs,
            utc_offset_assumed: journal.utc_offset_assumed,
            timeline,
        });
    }
    if let Some(out) = &job.evidence {
        let source = match &spool {
            Some(s) => evidence::EvidenceSource::File(&s.path),
            None => evidence::EvidenceSource::File(&job.input),
        };
        let req = evidence::EvidenceRequest {
            out,
            original: &shown,
            verdict: &report.analysis.verdict,
            findings: &report.analysis.findings,
            path: job.path.as_ref(),
            options: &job.options,
        };
        report.evidence = Some(evidence::write_evidence(source, &report.analysis, &req)?);
    }
    Ok(report)
}

/// Standard input copied to a temporary file as it is read.
struct Spool {
    path: PathBuf,
}

impl Spool {
    fn new() -> std::io::Result<Spool> {
        let path = std::env::temp_dir().join(format!(
            "pathproof-stdin-{}-{}.capture",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok(Spool { path })
    }

    fn reader(&self) -> Result<CaptureReader, CaptureError> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.path)
            .map_err(|source| CaptureError::Open {
                path: self.path.clone(),
                source,
            })?;
        CaptureReader::from_reader(Box::new(Tee {
            input: std::io::stdin(),
            copy: std::io::BufWriter::new(file),
        }))
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Reads `input` and writes what it read to `copy`.
struct Tee<R, W: std::io::Write> {
    input: R,
    copy: W,
}

impl<R: std::io::Read, W: std::io::Write> std::io::Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.input.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        if n == 0 {
            self.copy.flush()?;
        }
        Ok(n)
    }
}

/// Reads the journal for `pcap --journal`: year-less timestamps take the
/// capture's year unless `--year` says otherwise.
fn read_journal_beside(
    input: &JournalInput,
    capture_start_ns: Option<i64>,
) -> Result<crate::journal::Journal, JobError> {
    let shown = input.file.display().to_string();
    let err = |source| JobError::Journal {
        path: shown.clone(),
        source,
    };
    let capture_year = capture_start_ns.map(|ns| {
        crate::vocab::time::rfc3339_secs(ns.div_euclid(1_000_000_000))[..4]
            .parse::<i32>()
            .unwrap_or(1970)
    });
    let options = crate::journal::JournalOptions {
        year: input.year.or(capture_year),
        utc_offset_secs: input.utc_offset_secs,
        current_year: None,
    };
    let f =
        std::fs::File::open(&input.file).map_err(|e| err(crate::journal::JournalError::Io(e)))?;
    crate::journal::read_journal(std::io::BufReader::with_capacity(1 << 16, f), &options)
        .map_err(err)
}

/// How a run of the analysis may be cut short and watched while it runs.
#[derive(Default)]
pub struct Watch<'a> {
    /// Set from outside (SIGINT, SIGTERM): reading ends after the frames
    /// read so far and the report covers them (it says so in a warning).
    pub stop: Option<&'a std::sync::Arc<AtomicBool>>,
    /// A live input, whose verdict is shown as it changes.
    pub live: Option<Live<'a>>,
    /// Bytes of capture read so far (after decompression), for a progress bar.
    pub bytes_read: Option<&'a AtomicU64>,
}

/// A live input: a pipe or a growing file.
pub struct Live<'a> {
    /// The file is still being written: read on at its end until stopped.
    pub follow: bool,
    /// Sees the verdict of the packets analysed so far, at most once per
    /// [`SNAPSHOT_EVERY`] while packets arrive (the caller shows it when it
    /// changed).
    pub on_verdict: &'a mut dyn FnMut(&crate::vocab::Verdict),
}

/// How often a live input's verdict is worked out while packets arrive: a
/// snapshot copies the analysis state and applies every rule to it.
pub const SNAPSHOT_EVERY: Duration = Duration::from_secs(1);
/// A live input's decoded packets reach the analysis at least this often
/// (else a trickle would wait for a batch of 1024 frames).
const LIVE_HAND_OVER: Duration = Duration::from_millis(100);

/// Frames decoded per batch handed from the decoding thread to the analysis.
const BATCH_PACKETS: usize = 1024;
/// A batch is also handed over once its copied payloads reach this size
/// (bounds memory whatever the snapshot length).
const BATCH_PAYLOAD_BYTES: usize = 128 << 10;
/// Batches in flight between the two threads. Deep on purpose: real
/// traffic alternates stretches that load the analysis (handshakes: flows
/// created, TLS parsed, flows retired) with stretches that load the
/// decoding (bulk data: payloads copied), each tens of thousands of frames
/// long. With 3 batches in flight each thread waited for the other through
/// the other's heavy stretch (2 GB real capture: 1.02 s; with 64 batches
/// and payloads handed over every 128 KB, 0.80 s). Bounded: at most this
/// many batches plus two exist, each of 1024 packets (192 bytes each with
/// the flow key: 197 KB) and 128 KB of payloads plus one frame's (256 KiB
/// at most), 39 MB in the worst case; 10 to 15 MB more peak RSS than 3
/// batches on the benchmark captures (`bench/`).
const BATCHES_IN_FLIGHT: usize = 64;

/// An IP packet for the analysis thread, and where its payload was copied
/// in `Batch::payloads` (empty when no rule reads it).
struct IpItem {
    packet: Packet,
    payload: Range<u32>,
    /// The packet's flow key, hashed here so that the analysis thread,
    /// which bounds the wall time, does not.
    flow: Option<FlowKey>,
}

/// Decoded frames in frame order: the IP packets, and the ARP sightings
/// with the number of IP packets that came before each.
#[derive(Default)]
struct Batch {
    ips: Vec<IpItem>,
    arps: Vec<(usize, ArpSighting)>,
    payloads: Vec<u8>,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.ips.is_empty() && self.arps.is_empty()
    }

    fn frames(&self) -> usize {
        self.ips.len() + self.arps.len()
    }
}

/// What the decoding thread counted, for the input summary.
#[derive(Default)]
struct Decoding {
    link_types: Vec<LinkType>,
    frames: u64,
    non_ip: u64,
    non_ip_kinds: NonIpCounts,
    undecodable: u64,
    unsupported: u64,
    first_unsupported: Option<(u64, LinkType, u32)>,
    /// The error that stopped the reading after some frames were read.
    damage: Option<CaptureError>,
}

/// Whether the analysis reads this packet's payload: DNS (port 53), TLS
/// (TCP to the judged ports, and HTTP CONNECT tunnels: see
/// [`Tunnels`]) and pathproof's UDP trace probes. Other payloads (bulk
/// data of other services) are not copied between threads.
fn payload_wanted(p: &Packet, payload: &[u8], server_ports: &[u16], tunnels: &mut Tunnels) -> bool {
    match &p.transport {
        Transport::Udp { .. } => true,
        Transport::Tcp(t) => {
            t.src_port == 53
                || t.dst_port == 53
                || port_listed(server_ports, t.src_port)
                || port_listed(server_ports, t.dst_port)
                || tunnels.wanted(p, t, payload)
        }
        Transport::Icmp(_) | Transport::Other { .. } => false,
    }
}

/// TCP connections on ports that are not judged whose data starts with a
/// TLS ClientHello: their payloads are copied to the analysis too, so that
/// a broker named in the SNI is followed whatever the port (the flow table
/// decides from the SNI; this only keeps the bytes coming). Other payloads
/// cost one emptiness check, or a hash lookup per data segment once some
/// connection is followed.
#[derive(Default)]
struct OtherPortTls {
    conns: rustc_hash::FxHashSet<(std::net::IpAddr, u16, std::net::IpAddr, u16)>,
}

/// Connections followed at once by [`OtherPortTls`] (bounded memory; later
/// ones are not followed, their TLS is not read).
const MAX_OTHER_PORT_TLS: usize = 65_536;

impl OtherPortTls {
    fn wants(&mut self, p: &Packet, payload: &[u8]) -> bool {
        let Transport::Tcp(t) = &p.transport else {
            return false;
        };
        if t.payload_len == 0 {
            return false;
        }
        let opens = crate::analysis::flows::first_client_segment_is_tls(payload);
        if self.conns.is_empty() && !opens {
            return false;
        }
        let (a, b) = ((p.src, t.src_port), (p.dst, t.dst_port));
        let key = if a <= b {
            (a.0, a.1, b.0, b.1)
        } else {
            (b.0, b.1, a.0, a.1)
        };
        if self.conns.contains(&key) {
            return true;
        }
        opens && self.conns.len() < MAX_OTHER_PORT_TLS && self.conns.insert(key)
    }
}

/// TCP connections on other ports that started with an HTTP CONNECT
/// request: their payloads (the proxy's answer, then the tunnel's TLS) go
/// to the analysis, which decides whether the tunnel leads to a judged
/// port. A capture without CONNECT pays one prefix comparison per TCP
/// segment with data; the set is bounded (oldest forgotten first).
#[derive(Default)]
struct Tunnels {
    set: std::collections::HashSet<(std::net::SocketAddr, std::net::SocketAddr)>,
    order: std::collections::VecDeque<(std::net::SocketAddr, std::net::SocketAddr)>,
}

/// Tunnels followed at once by the decoding stage.
const MAX_TUNNELS: usize = 1_024;

impl Tunnels {
    fn wanted(&mut self, p: &Packet, t: &crate::packet::TcpInfo, payload: &[u8]) -> bool {
        let connect = crate::packet::http_connect::starts_connect(payload);
        if self.set.is_empty() && !connect {
            return false;
        }
        let src = std::net::SocketAddr::new(p.src, t.src_port);
        let dst = std::net::SocketAddr::new(p.dst, t.dst_port);
        let key = if src <= dst { (src, dst) } else { (dst, src) };
        if self.set.contains(&key) {
            return true;
        }
        if !connect {
            return false;
        }
        if self.set.len() >= MAX_TUNNELS
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        self.set.insert(key);
        self.order.push_back(key);
        true
    }
}

/// Stage 1 of the pipeline: reads, frames and decodes the capture, and hands
/// the packets over in batches. Runs on its own thread so that reading and
/// decoding overlap with the analysis (the machine this was tuned on has two
/// cores: wall time is then about the slower of the two stages).
fn decode_stage(
    reader: &mut CaptureReader,
    server_ports: &[u16],
    batches: handoff::Producer<Batch>,
    spent: Receiver<Batch>,
    watch: &DecodeWatch<'_>,
) -> Result<Decoding, CaptureError> {
    let format = reader.format();
    let mut handed_at = Instant::now();
    let mut d = Decoding::default();
    let mut other_port_tls = OtherPortTls::default();
    let mut tunnels = Tunnels::default();
    let mut batch = Batch::default();
    let hand_over = |batch: &mut Batch| -> bool {
        let next = spent.try_recv().unwrap_or_default();
        batches.send(std::mem::replace(batch, next)).is_ok()
    };
    loop {
        if watch.stopped() {
            break;
        }
        let frame = match reader.next_frame() {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            // Stopped in the middle of a frame: the input was cut by us.
            Err(_) if watch.stopped() => break,
            // Damaged part-way: the frames before it are still evidence, as
            // in tshark and tcpdump, which show them before complaining.
            Err(e) if d.frames > 0 => {
                d.damage = Some(e);
                break;
            }
            Err(e) => return Err(e),
        };
        d.frames = frame.number;
        if !d.link_types.contains(&frame.link_type) {
            d.link_types.push(frame.link_type);
        }
        // Decoded in place, in the batch (see `decode_into`); a frame
        // that gives no packet gives its slot back.
        batch.ips.push(IpItem {
            packet: Packet::PLACEHOLDER,
            payload: 0..0,
            flow: None,
        });
        let slot = batch.ips.last_mut().expect("just pushed");
        match decode_into(
            frame.link_type,
            frame.number,
            frame.ts_ns,
            frame.data,
            &mut slot.packet,
        ) {
            Ok(payload) => {
                slot.flow = FlowKey::of_packet(&slot.packet);
                if payload_wanted(&slot.packet, payload, server_ports, &mut tunnels)
                    || other_port_tls.wants(&slot.packet, payload)
                {
                    let start = batch.payloads.len() as u32;
                    batch.payloads.extend_from_slice(payload);
                    slot.payload = start..batch.payloads.len() as u32;
                }
            }
            Err(e) => {
                batch.ips.pop();
                match e {
                    DecodeError::NotIp => {
                        d.non_ip += 1;
                        d.non_ip_kinds.add(non_ip_kind(frame.link_type, frame.data));
                        if let Some(s) = arp_sighting(frame.link_type, frame.number, frame.data) {
                            batch.arps.push((batch.ips.len(), s));
                        }
                    }
                    DecodeError::LoopbackDuplicate => d.non_ip += 1,
                    DecodeError::UnsupportedLinkType(n) => {
                        d.unsupported += 1;
                        d.first_unsupported
                            .get_or_insert((frame.number, frame.link_type, n));
                        // A pcap has one link type: nothing in it can be decoded.
                        if format == CaptureFormat::Pcap {
                            break;
                        }
                    }
                    DecodeError::Truncated(_) | DecodeError::Malformed(_) => d.undecodable += 1,
                }
            }
        }
        let full = batch.frames() >= BATCH_PACKETS || batch.payloads.len() >= BATCH_PAYLOAD_BYTES;
        // A live input hands its frames over when the input has nothing
        // more at hand (else the last frames before a pause would wait for
        // the next ones), and at least every LIVE_HAND_OVER.
        let due = watch.live
            && !batch.is_empty()
            && (reader.input_drained() || handed_at.elapsed() >= LIVE_HAND_OVER);
        if full || due {
            if let Some(b) = watch.bytes_read {
                b.store(reader.bytes_read(), Ordering::Relaxed);
            }
            handed_at = Instant::now();
            if !hand_over(&mut batch) {
                // The analysis thread is gone (it panicked): the scope reports it.
                return Ok(d);
            }
        }
    }
    if let Some(b) = watch.bytes_read {
        b.store(reader.bytes_read(), Ordering::Relaxed);
    }
    if !batch.is_empty() {
        hand_over(&mut batch);
    }
    Ok(d)
}

/// A live input's verdict callback, and the path the verdict is drawn with.
type LiveVerdict<'a, 'p> = (&'a mut dyn FnMut(&crate::vocab::Verdict), Option<&'p Path>);

/// What the decoding stage needs of a [`Watch`] (it runs on its own thread).
struct DecodeWatch<'a> {
    stop: Option<&'a AtomicBool>,
    live: bool,
    bytes_read: Option<&'a AtomicU64>,
}

impl DecodeWatch<'_> {
    fn stopped(&self) -> bool {
        self.stop.is_some_and(|s| s.load(Ordering::Relaxed))
    }
}

/// Stage 2: the analysis, batch by batch, in frame order; a live input's
/// verdict is worked out on a copy of the state every [`SNAPSHOT_EVERY`].
fn analysis_stage(
    analyzer: &mut Analyzer,
    batches: handoff::Consumer<Batch>,
    spent: SyncSender<Batch>,
    mut live: Option<LiveVerdict<'_, '_>>,
) {
    // A live verdict is worked out when packets arrived since the last one
    // and SNAPSHOT_EVERY has passed since it, also while the input pauses
    // (the batches' wait is cut at the next due snapshot).
    let mut snapshot_at: Option<Instant> = None;
    let mut fresh = false;
    loop {
        let batch = match &live {
            None => batches.recv(),
            Some(_) => {
                let wait = snapshot_at.map_or(Duration::ZERO, |t| {
                    SNAPSHOT_EVERY.saturating_sub(t.elapsed())
                });
                match batches.recv_timeout(if fresh { wait } else { SNAPSHOT_EVERY }) {
                    Ok(b) => Some(b),
                    Err(handoff::RecvTimeout::Timeout) => {
                        if fresh && let Some((on_verdict, path)) = &mut live {
                            snapshot_at = Some(Instant::now());
                            fresh = false;
                            on_verdict(&analyzer.clone().finish(*path).verdict);
                        }
                        continue;
                    }
                    Err(handoff::RecvTimeout::Disconnected) => None,
                }
            }
        };
        let Some(mut batch) = batch else { break };
        // By reference: moving each packet out would copy it once more.
        let mut arps = batch.arps.iter().peekable();
        for (i, ip) in batch.ips.iter().enumerate() {
            while let Some((_, s)) = arps.next_if(|(before, _)| *before <= i) {
                analyzer.note_arp(s);
            }
            let bytes = batch
                .payloads
                .get(ip.payload.start as usize..ip.payload.end as usize)
                .unwrap_or_default();
            analyzer.push_keyed(&ip.packet, bytes, ip.flow);
        }
        for (_, s) in arps {
            analyzer.note_arp(s);
        }
        fresh = true;
        batch.ips.clear();
        batch.arps.clear();
        batch.payloads.clear();
        // Recycled so the steady state allocates nothing.
        let _ = spent.try_send(batch);
    }
}

/// Runs the analysis over an open capture (`shown` names it in errors and
/// the report): a file for `pcap`, the recording of a live `check`.
pub fn analyse_capture(
    reader: CaptureReader,
    shown: String,
    path: Option<Path>,
    options: &AnalysisOptions,
) -> Result<PcapReport, JobError> {
    analyse_capture_watched(reader, shown, path, options, Watch::default())
}

/// As [`analyse_capture`], stoppable and watched (see [`Watch`]).
pub fn analyse_capture_watched(
    mut reader: CaptureReader,
    shown: String,
    path: Option<Path>,
    options: &AnalysisOptions,
    watch: Watch<'_>,
) -> Result<PcapReport, JobError> {
    let capture_err = |source| JobError::Capture {
        path: shown.clone(),
        source,
    };
    let format = reader.format();
    let mut analyzer = Analyzer::new(options);
    // A live input's batches reach the analysis as they come; a file's
    // wake a waiting analysis a few at a time (see `handoff`).
    let wake_at = if watch.live.is_some() { 1 } else { 8 };
    let (batch_tx, batch_rx) = handoff::bounded::<Batch>(BATCHES_IN_FLIGHT, wake_at);
    let (spent_tx, spent_rx) = sync_channel::<Batch>(BATCHES_IN_FLIGHT + 2);
    let decode_watch = DecodeWatch {
        stop: watch.stop.map(|s| &**s),
        live: watch.live.is_some(),
        bytes_read: watch.bytes_read,
    };
    let live = watch.live.map(|l| (l.on_verdict, path.as_ref()));
    let decoding = std::thread::scope(|scope| {
        let stage1 = scope.spawn(|| {
            decode_stage(
                &mut reader,
                &options.server_ports,
                batch_tx,
                spent_rx,
                &decode_watch,
            )
        });
        analysis_stage(&mut analyzer, batch_rx, spent_tx, live);
        stage1.join()
    });
    let decoding = match decoding {
        Ok(d) => d.map_err(capture_err)?,
        Err(panic) => std::panic::resume_unwind(panic),
    };
    let Decoding {
        link_types,
        frames,
        non_ip,
        non_ip_kinds,
        undecodable,
        unsupported,
        first_unsupported,
        damage,
    } = decoding;
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
    if decode_watch.stopped() {
        warnings.push(CaptureWarning {
            offset: reader.bytes_read(),
            frame: None,
            message: format!(
                "interrupted (SIGINT or SIGTERM) after frame {frames}: the report covers the frames read until then"
            ),
        });
    }
    let damaged_from_frame = damage.as_ref().map(|_| frames + 1);
    if let Some(e) = &damage {
        warnings.push(CaptureWarning {
            offset: e.location().map_or(reader.bytes_read(), |l| l.offset),
            frame: damaged_from_frame,
            message: format!("the capture is damaged and was read only up to frame {frames}: {e}"),
        });
    }
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
        non_ip_kinds,
        undecodable_frames: undecodable,
        unsupported_link_frames: unsupported,
        damaged_from_frame,
    };
    analyzer.note_frames(crate::analysis::FrameCounts {
        frames,
        non_ip: non_ip_kinds,
    });
    let mut analysis = analyzer.finish(path.as_ref());
    if let Some(from) = damaged_from_frame {
        analysis.verdict.note_damage(frames, from);
    }
    Ok(PcapReport {
        input,
        analysis,
        path,
        warnings,
        journal: None,
        evidence: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::TcpFlags;
    use crate::packet::testing::{packet, tcp_info};

    /// The bound on batches in flight (`BATCHES_IN_FLIGHT`, README's
    /// memory section) is worked out from this size: change both with it.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_batch_item_is_192_bytes() {
        assert_eq!(std::mem::size_of::<IpItem>(), 192);
    }

    fn seg(src: &str, dst: &str, len: u32) -> Packet {
        let t = tcp_info(src, dst, TcpFlags::ACK, 1, len);
        packet(1, 0, src, dst, 64, Transport::Tcp(t))
    }

    /// Payloads of other ports cross to the analysis only for connections
    /// that began with CONNECT (both ways), and the set stays bounded.
    #[test]
    fn tunnel_payloads_are_wanted_both_ways_and_bounded() {
        let (c, p) = ("10.0.0.2:40000", "10.0.0.1:3128");
        let mut t = Tunnels::default();
        let ports = [443];
        assert!(!payload_wanted(&seg(c, p, 4), b"GET ", &ports, &mut t));
        assert!(t.set.is_empty());
        assert!(payload_wanted(&seg(c, p, 8), b"CONNECT ", &ports, &mut t));
        assert!(payload_wanted(&seg(p, c, 4), b"HTTP", &ports, &mut t));
        assert!(payload_wanted(
            &seg(c, p, 3),
            b"\x16\x03\x01",
            &ports,
            &mut t
        ));
        assert!(!payload_wanted(
            &seg("10.0.0.3:1", p, 3),
            b"abc",
            &ports,
            &mut t
        ));
        for i in 0..(MAX_TUNNELS as u16 + 10) {
            let src = format!("10.1.0.1:{}", 1000 + i);
            assert!(payload_wanted(
                &seg(&src, p, 8),
                b"CONNECT ",
                &ports,
                &mut t
            ));
        }
        assert_eq!(t.set.len(), MAX_TUNNELS);
        assert_eq!(t.order.len(), MAX_TUNNELS);
        assert!(
            !payload_wanted(&seg(p, c, 4), b"HTTP", &ports, &mut t),
            "oldest forgotten"
        );
    }
}
