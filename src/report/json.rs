//! `--json`: the documented machine-readable report (schema in README.md).
//!
//! `schema_version` changes only when a field is removed or changes meaning;
//! new fields may appear at any time.

use crate::analysis::flows::FlowRecord;
use crate::analysis::{Finding, RstEvidence, Verdict};
use crate::app::{InputSummary, PcapReport};
use crate::capture::CaptureWarning;
use crate::path::Path;
use serde::Serialize;

pub const SCHEMA_VERSION: u32 = 1;

/// Flow records listed in the JSON; `flows_total` counts all.
const MAX_FLOWS_LISTED: usize = 1_000;

#[derive(Serialize)]
pub struct JsonReport<'a> {
    pub schema_version: u32,
    pub tool: Tool,
    pub command: &'static str,
    pub input: &'a InputSummary,
    pub capture_start: Option<String>,
    pub capture_end: Option<String>,
    pub path: Option<&'a Path>,
    pub verdict: &'a Verdict,
    pub findings: &'a [Finding],
    pub rsts: &'a [RstEvidence],
    /// Resets toward the connector on the judged ports in all flows; more
    /// than `rsts` lists when the capture had more flows than are kept.
    pub rsts_total: u64,
    /// DNS lookups of the broker names: `names[]` per name, `exchanges[]`, `counters`.
    pub dns: &'a crate::analysis::dns::DnsSummary,
    pub flows: Vec<JsonFlow<'a>>,
    pub flows_total: u64,
    pub flows_listed: usize,
    /// TLS (flows opened by a ClientHello) and resets toward the client on
    /// server ports that are not judged, by port.
    pub other_ports: &'a [crate::analysis::flows::PortActivity],
    pub warnings: &'a [CaptureWarning],
    /// `--journal`: the journal beside the capture (absent without it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal: Option<&'a crate::app::PcapJournal>,
    /// `--evidence`: the evidence file written (absent without it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<&'a crate::app::evidence::EvidenceSummary>,
}

#[derive(Serialize)]
pub struct Tool {
    pub name: &'static str,
    pub version: &'static str,
}

/// One TCP connection.
#[derive(Serialize)]
pub struct JsonFlow<'a> {
    pub client: String,
    pub server: String,
    pub state: crate::analysis::FlowState,
    pub first_frame: u64,
    pub start: String,
    pub duration_ms: f64,
    pub syn_frame: Option<u64>,
    pub syn_count: u32,
    pub syn_retransmissions: u32,
    pub syn_mss: Option<u16>,
    pub syn_ack_frame: Option<u64>,
    pub syn_ack_mss: Option<u16>,
    /// Genuine TTL of the server's packets (mode), and the hop it implies.
    pub server_ttl: Option<u8>,
    pub server_hop: Option<u8>,
    pub handshake_rtt_ms: Option<f64>,
    pub established: bool,
    pub client_bytes: u64,
    pub server_bytes: u64,
    pub client_fin_frame: Option<u64>,
    pub server_fin_frame: Option<u64>,
    pub rst_frames: Vec<u64>,
    /// `server`, `client` for each reset, parallel to `rst_frames`.
    pub rst_senders: Vec<&'static str>,
    pub icmp_error_frames: Vec<u64>,
    /// On a port that is not judged, the ClientHello named a broker: the
    /// flow is judged like one to the broker port.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub broker_sni: bool,
    /// The TLS handshake as the capture shows it (broker ports only).
    pub tls: Option<&'a crate::analysis::tls::TlsObservation>,
}

impl<'a> JsonFlow<'a> {
    pub fn of(f: &'a FlowRecord) -> JsonFlow<'a> {
        let ttl = f.server_ttls.mode();
        JsonFlow {
            client: f.client.to_string(),
            server: f.server.to_string(),
            state: f.state(),
            first_frame: f.first_frame,
            start: crate::vocab::time::rfc3339_ns(f.first_ts_ns),
            duration_ms: (f.last_ts_ns - f.first_ts_ns) as f64 / 1e6,
            syn_frame: f.syn.map(|s| s.frame),
            syn_count: f.syn_count,
            syn_retransmissions: f.syn_retransmissions(),
            syn_mss: f.syn_mss,
            syn_ack_frame: f.syn_ack.map(|s| s.frame),
            syn_ack_mss: f.syn_ack_mss,
            server_ttl: ttl,
            server_hop: ttl.map(|t| crate::analysis::HopEstimate::from_ttl(t).hop),
            handshake_rtt_ms: match (f.syn, f.syn_ack) {
                (Some(s), Some(a)) if f.syn_count == 1 => Some((a.ts_ns - s.ts_ns) as f64 / 1e6),
                _ => None,
            },
            established: f.established,
            client_bytes: f.client_payload,
            server_bytes: f.server_payload,
            client_fin_frame: f.client_fin,
            server_fin_frame: f.server_fin,
            rst_frames: f.rsts.iter().map(|r| r.packet.frame).collect(),
            rst_senders: f
                .rsts
                .iter()
                .map(|r| if r.from_server { "server" } else { "client" })
                .collect(),
            icmp_error_frames: f.icmp_errors.iter().map(|i| i.packet.frame).collect(),
            broker_sni: f.broker_sni,
            tls: f.tls_observation.as_deref(),
        }
    }
}

/// Builds the JSON document of a `pcap` run.
pub fn pcap_report(r: &PcapReport) -> JsonReport<'_> {
    let a = &r.analysis;
    let flows: Vec<JsonFlow<'_>> = a
        .flows
        .iter()
        .take(MAX_FLOWS_LISTED)
        .map(JsonFlow::of)
        .collect();
    JsonReport {
        schema_version: SCHEMA_VERSION,
        tool: Tool {
            name: "pathproof",
            version: env!("CARGO_PKG_VERSION"),
        },
        command: "pcap",
        input: &r.input,
        capture_start: a.first_ts_ns.map(crate::vocab::time::rfc3339_ns),
        capture_end: a.last_ts_ns.map(crate::vocab::time::rfc3339_ns),
        path: r.path.as_ref(),
        verdict: &a.verdict,
        findings: &a.findings,
        rsts: &a.rsts,
        rsts_total: a.rsts_total.max(a.rsts.len() as u64),
        dns: &a.dns,
        flows_listed: flows.len(),
        flows,
        flows_total: a.flows_total,
        other_ports: &a.other_ports,
        warnings: &r.warnings,
        journal: r.journal.as_ref(),
        evidence: r.evidence.as_ref(),
    }
}

/// Pretty JSON text of a `pcap` run.
pub fn render_pcap(r: &PcapReport) -> String {
    serde_json::to_string_pretty(&pcap_report(r)).expect("report types serialize")
}

/// Writes the JSON report to `out` while it is serialised, and a final
/// newline: a report of tens of megabytes (every reset of a long capture)
/// is not built in memory first.
/// The report on one line (`pcap FILE... --json`: one object per file; the
/// file is `input.file`).
pub fn pcap_line(r: &PcapReport) -> String {
    serde_json::to_string(&pcap_report(r)).unwrap_or_else(|e| {
        serde_json::json!({"input": {"file": r.input.file}, "error": format!("cannot render: {e}")})
            .to_string()
    })
}

/// A file of `pcap FILE... --json` that could not be analysed, on one line:
/// `{"input": {"file": ...}, "error": ..., "exit_code": 2}`.
pub fn pcap_error_line(file: &str, error: &str) -> String {
    serde_json::json!({
        "schema_version": SCHEMA_VERSION,
        "command": "pcap",
        "input": {"file": file},
        "error": error,
        "exit_code": crate::vocab::EXIT_BAD_INPUT,
    })
    .to_string()
}

pub fn write_pcap(r: &PcapReport, mut out: impl std::io::Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut out, &pcap_report(r))?;
    out.write_all(b"\n")?;
    out.flush()
}
