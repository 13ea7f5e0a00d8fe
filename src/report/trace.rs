//! Rendering of `pathproof trace`: the mtr-like table (text), the live
//! display, and the JSON document (schema in README.md).

use crate::analysis::TraceJudgement;
use crate::trace::live::LiveTrace;
use crate::trace::socket::Access;
use crate::trace::{HopStats, Trace, TraceProtocol};
use crate::vocab::FindingKind;
use crate::vocab::{Confidence, Finding, Severity, VerdictClass};
use serde::Serialize;
use std::fmt::Write;
use std::net::IpAddr;

/// Reverse DNS names of hop addresses (empty with `-n`).
pub type Names = crate::check::rdns::Names;

/// The trace's verdict as the report shows it: the analysis's verdict
/// (class, hop, address, confidence, summary, next steps) with the deciding
/// finding's kind, the older `status` word and the exit code.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TraceVerdict {
    pub class: VerdictClass,
    /// `failure`, `no-failure` or `inconclusive`, from the class.
    pub status: &'static str,
    /// Kind of the deciding finding (`tcp-blocked`, `rst-injected`,
    /// `path-loss`, ...; `target-reached`, `target-not-reached`).
    pub kind: Option<FindingKind>,
    pub hop: Option<u8>,
    pub address: Option<IpAddr>,
    pub confidence: Confidence,
    pub summary: String,
    pub next_steps: Vec<String>,
    /// 0 no failure found, 1 failure found, 3 inconclusive.
    pub exit_code: u8,
}

/// The report's view of the analysis's verdict.
pub fn verdict(j: &TraceJudgement) -> TraceVerdict {
    let v = &j.verdict;
    TraceVerdict {
        class: v.class,
        status: v.class.status(),
        kind: j.deciding,
        hop: v.hop,
        address: v.address,
        confidence: v.confidence,
        summary: v.summary.clone(),
        next_steps: v.next_steps.clone(),
        exit_code: v.exit_code(),
    }
}

// ------------------------------------------------------------------ JSON

#[derive(Serialize)]
struct JsonTrace<'a> {
    schema_version: u32,
    tool: super::json::Tool,
    command: &'static str,
    target: IpAddr,
    source: IpAddr,
    /// `icmp`, `tcp` or `udp`.
    protocol: &'static str,
    port: Option<u16>,
    access: Access,
    limitations: &'a [&'static str],
    rounds: usize,
    timeout_ms: f64,
    started: String,
    duration_ms: f64,
    target_hop: Option<u8>,
    hops: Vec<JsonHop>,
    control: Option<JsonControl>,
    findings: Vec<&'a Finding>,
    verdict: TraceVerdict,
    counters: JsonCounters,
    saved: Vec<String>,
    warnings: &'a [String],
}

#[derive(Serialize)]
struct JsonControl {
    protocol: &'static str,
    target_hop: Option<u8>,
    hops: Vec<JsonHop>,
}

#[derive(Serialize)]
struct JsonHop {
    ttl: u8,
    /// Addresses that answered, most frequent first.
    addresses: Vec<IpAddr>,
    /// Reverse DNS names, parallel to `addresses` (null when unknown or `-n`).
    names: Vec<Option<String>>,
    loss_pct: f64,
    sent: u32,
    received: u32,
    late: u32,
    duplicates: u32,
    rtt_ms: Option<JsonRtt>,
    reply_ttls: Vec<JsonReplyTtl>,
    replies: Vec<JsonKind>,
    /// The target's address answered at this hop.
    target: bool,
}

#[derive(Serialize)]
struct JsonRtt {
    last: f64,
    avg: f64,
    best: f64,
    worst: f64,
    stdev: f64,
}

#[derive(Serialize)]
struct JsonReplyTtl {
    ttl: u8,
    /// The hop the TTL implies (initial TTL − TTL + 1).
    hop: u8,
    initial_ttl: u8,
    count: u32,
}

#[derive(Serialize)]
struct JsonKind {
    kind: &'static str,
    count: u32,
}

#[derive(Serialize)]
struct JsonCounters {
    sent: u32,
    answered: u32,
    late: u32,
    duplicates: u32,
    send_failures: u32,
    foreign: u64,
    undecodable: u64,
}

fn protocol_name(p: TraceProtocol) -> &'static str {
    match p {
        TraceProtocol::Icmp => "icmp",
        TraceProtocol::Tcp { .. } => "tcp",
        TraceProtocol::Udp { .. } => "udp",
    }
}

fn json_hops(t: &Trace, names: &Names) -> Vec<JsonHop> {
    t.hops
        .iter()
        .map(|h| JsonHop {
            ttl: h.hop,
            addresses: h.addrs.iter().map(|a| a.addr).collect(),
            names: h
                .addrs
                .iter()
                .map(|a| names.get(&a.addr).cloned())
                .collect(),
            loss_pct: h.loss_pct,
            sent: h.sent,
            received: h.received,
            late: h.late,
            duplicates: h.duplicates,
            rtt_ms: h.rtt.map(|r| JsonRtt {
                last: r.last_ms,
                avg: r.avg_ms,
                best: r.best_ms,
                worst: r.worst_ms,
                stdev: r.stdev_ms,
            }),
            reply_ttls: h
                .reply_ttls
                .iter()
                .map(|t| JsonReplyTtl {
                    ttl: t.ttl,
                    hop: t.estimate.hop,
                    initial_ttl: t.estimate.initial_ttl,
                    count: t.replies,
                })
                .collect(),
            replies: h
                .kinds
                .iter()
                .map(|k| JsonKind {
                    kind: k.kind.name(),
                    count: k.replies,
                })
                .collect(),
            target: h.target,
        })
        .collect()
}

/// Pretty JSON of a trace run.
pub fn render_json(t: &LiveTrace, j: &TraceJudgement, names: &Names) -> String {
    let tr = &t.trace;
    let c = tr.counters;
    let doc = JsonTrace {
        schema_version: super::json::SCHEMA_VERSION,
        tool: super::json::Tool {
            name: "pathproof",
            version: env!("CARGO_PKG_VERSION"),
        },
        command: "trace",
        target: tr.target,
        source: tr.source,
        protocol: protocol_name(tr.protocol),
        port: tr.protocol.port(),
        access: t.access,
        limitations: &t.limitations,
        rounds: tr.rounds.len(),
        timeout_ms: tr.timeout.as_secs_f64() * 1e3,
        started: crate::vocab::time::rfc3339_ns(
            i64::try_from(tr.started_at.as_nanos()).unwrap_or(0),
        ),
        duration_ms: tr.duration().as_secs_f64() * 1e3,
        target_hop: tr.target_hop,
        hops: json_hops(tr, names),
        control: t.control.as_ref().map(|c| JsonControl {
            protocol: protocol_name(c.protocol),
            target_hop: c.target_hop,
            hops: json_hops(c, names),
        }),
        findings: j.findings.iter().map(|f| &f.finding).collect(),
        verdict: verdict(j),
        counters: JsonCounters {
            sent: c.sent,
            answered: c.answered,
            late: c.late,
            duplicates: c.duplicates,
            send_failures: c.send_failures,
            foreign: c.foreign,
            undecodable: c.undecodable,
        },
        saved: t.saved.iter().map(|p| p.display().to_string()).collect(),
        warnings: &t.warnings,
    };
    let mut s = serde_json::to_string_pretty(&doc).expect("report types serialize");
    s.push('\n');
    s
}

// ------------------------------------------------------------------ text

fn host(addr: IpAddr, names: &Names) -> String {
    match names.get(&addr) {
        Some(n) => format!("{n} ({addr})"),
        None => addr.to_string(),
    }
}

fn ms(x: f64) -> String {
    if x < 10.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.1}")
    }
}

/// The mtr-like table of `hops` (header line included).
pub fn table(hops: &[HopStats], target: IpAddr, names: &Names) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        " {:>3}  {:<32} {:>6} {:>4} {:>7} {:>7} {:>7} {:>7} {:>6}  Reply TTL (hop)",
        "Hop", "Host", "Loss%", "Snt", "Last", "Avg", "Best", "Wrst", "StDev"
    );
    for h in hops {
        let first = h
            .addr()
            .map_or_else(|| "???".to_string(), |a| host(a, names));
        let mark = if h.target && h.addr() == Some(target) {
            " *"
        } else {
            ""
        };
        let rtt = match h.rtt {
            Some(r) => format!(
                "{:>7} {:>7} {:>7} {:>7} {:>6}",
                ms(r.last_ms),
                ms(r.avg_ms),
                ms(r.best_ms),
                ms(r.worst_ms),
                ms(r.stdev_ms)
            ),
            None => format!("{:>7} {:>7} {:>7} {:>7} {:>6}", "-", "-", "-", "-", "-"),
        };
        let ttls: Vec<String> = h
            .reply_ttls
            .iter()
            .map(|t| {
                if h.reply_ttls.len() > 1 {
                    format!("{} ({})×{}", t.ttl, t.estimate.hop, t.replies)
                } else {
                    format!("{} ({})", t.ttl, t.estimate.hop)
                }
            })
            .collect();
        let late = if h.late > 0 {
            format!("  +{} late", h.late)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            " {:>3}. {:<32} {:>5.1}% {:>4} {rtt}  {}{late}",
            h.hop,
            format!("{first}{mark}"),
            h.loss_pct,
            h.sent,
            ttls.join(" ")
        );
        for a in h.addrs.iter().skip(1) {
            let _ = writeln!(
                out,
                "      {:<32} ({} answers)",
                host(a.addr, names),
                a.replies
            );
        }
    }
    out
}

fn describe(p: TraceProtocol) -> String {
    match p {
        TraceProtocol::Icmp => "ICMP echo".into(),
        TraceProtocol::Tcp { port } => format!("TCP SYN to port {port}"),
        TraceProtocol::Udp { port } => format!("UDP to port {port}"),
    }
}

/// The human report: verdict first, then the table(s) and the findings.
pub fn render_text(t: &LiveTrace, j: &TraceJudgement, names: &Names) -> String {
    let tr = &t.trace;
    let v = verdict(j);
    let mut out = String::new();
    let place = match (v.hop, v.address) {
        (Some(h), Some(a)) => format!(" at hop {h} ({a})"),
        (Some(h), None) => format!(" at hop {h}"),
        _ => String::new(),
    };
    let _ = writeln!(out, "VERDICT: {}{place} [{}]", v.class, v.status);
    let _ = writeln!(out, "{}", v.summary);
    for step in &v.next_steps {
        let _ = writeln!(out, "  next: {step}");
    }
    let access = match t.access {
        Access::Raw => "raw sockets",
        Access::UnprivilegedIcmp => "unprivileged ICMP sockets",
    };
    let _ = writeln!(
        out,
        "\n{} → {}: {}, {} rounds, {:.1} s ({access})",
        tr.source,
        tr.target,
        describe(tr.protocol),
        tr.rounds.len(),
        tr.duration().as_secs_f64()
    );
    out.push_str(&table(&tr.hops, tr.target, names));
    match tr.target_hop {
        Some(h) => {
            let _ = writeln!(out, "  * the target's address answered at hop {h}");
        }
        None => {
            let _ = writeln!(out, "  the target never answered");
        }
    }
    if let Some(c) = &t.control {
        let _ = writeln!(
            out,
            "\nControl trace ({}, same target, in parallel):",
            describe(c.protocol)
        );
        out.push_str(&table(&c.hops, c.target, names));
    }
    if !j.findings.is_empty() {
        let _ = writeln!(out, "\nFindings:");
        for f in j.findings.iter().map(|f| &f.finding) {
            let sev = match f.severity {
                Severity::Critical => "CRITICAL",
                Severity::Warning => "warning ",
                Severity::Info => "info    ",
            };
            let _ = writeln!(out, "  {sev} {:<21} {}", f.kind, f.summary);
        }
    }
    if !t.limitations.is_empty() {
        let _ = writeln!(out, "\nUnprivileged mode (no raw sockets) cannot see:");
        for l in &t.limitations {
            let _ = writeln!(out, "  - {l}");
        }
    }
    for p in &t.saved {
        let _ = writeln!(out, "\nSaved every probe and answer to {}", p.display());
    }
    for w in &t.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    out
}

/// The live display's text for one redraw.
pub fn live_frame(
    hops: &[HopStats],
    target: IpAddr,
    protocol: TraceProtocol,
    round: u32,
    rounds: u32,
) -> String {
    let mut out = format!(
        "pathproof trace {target} ({}): round {round}/{rounds}\n",
        describe(protocol)
    );
    out.push_str(&table(hops, target, &Names::new()));
    out
}
