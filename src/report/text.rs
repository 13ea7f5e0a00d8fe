//! The human report: the verdict in one sentence first, then the evidence.

use crate::analysis::flows::TcpStage;
use crate::analysis::{RstOrigin, Severity};
use crate::app::PcapReport;
use std::fmt::Write;

/// Resets shown in the table; the JSON has them all.
const MAX_RST_ROWS: usize = 20;

/// `VERDICT: class at hop N (address) [confidence c]`: the report's first
/// line, also the live verdict line of `pcap -`.
pub fn verdict_line(v: &crate::vocab::Verdict) -> String {
    let place = match (v.hop, v.address) {
        (Some(h), Some(addr)) => format!(" at hop {h} ({addr})"),
        (Some(h), None) => format!(" at hop {h}"),
        (None, Some(addr)) => format!(" ({addr})"),
        (None, None) => String::new(),
    };
    format!(
        "VERDICT: {}{place} [confidence {}]",
        v.class,
        serde_plain(&v.confidence)
    )
}

pub fn render_pcap(r: &PcapReport) -> String {
    let a = &r.analysis;
    let v = &a.verdict;
    let mut out = String::new();
    let _ = writeln!(out, "{}", verdict_line(v));
    let _ = writeln!(out, "{}", v.summary);

    if !a.rsts.is_empty() {
        if a.rsts_total > a.rsts.len() as u64 {
            let _ = writeln!(
                out,
                "\nResets sent toward the connector ({} in the kept flows of {} in all):",
                a.rsts.len(),
                a.rsts_total
            );
        } else {
            let _ = writeln!(out, "\nResets sent toward the connector:");
        }
        let _ = writeln!(
            out,
            "  {:>7} {:<7}  {:>3} {:>4} {:>3} {:>9} {:>6} {:<12} {:>6}  origin",
            "frame", "flags", "TTL", "init", "hop", "delay ms", "IP ID", "answers", "server"
        );
        for e in a.rsts.iter().take(MAX_RST_ROWS) {
            let answers = match (e.answers, e.answers_frame, e.answers_probe_ttl) {
                (_, Some(f), Some(t)) => format!("ttl-{t} copy #{f}"),
                (Some(k), Some(f), None) => format!("{} #{f}", serde_plain(&k)),
                _ => "-".into(),
            };
            let server_hop = e
                .genuine_hop
                .or(e.target_hop)
                .map_or("-".into(), |h| format!("hop {h}"));
            let origin = match e.origin {
                RstOrigin::Injected => {
                    let at = match e.placed_hop {
                        Some(h) if h == e.hop => String::new(),
                        Some(h) => format!(" at hop {h}"),
                        None => ", no hop".to_string(),
                    };
                    format!("injected ({:?}){at}", e.confidence).to_lowercase()
                }
                RstOrigin::Target if e.stage == TcpStage::Closed => {
                    "from target (after close)".into()
                }
                RstOrigin::Target => "from target".into(),
                RstOrigin::Unclear => "unclear".into(),
            };
            let _ = writeln!(
                out,
                "  {:>7} {:<7}  {:>3} {:>4} {:>3} {:>9} {:>6} {:<12} {:>6}  {}",
                e.frame,
                e.flags,
                e.ttl,
                e.initial_ttl,
                e.hop,
                e.delay_ms.map_or("-".into(), |d| format!("{d:.3}")),
                e.ip_id.map_or("-".into(), |i| i.to_string()),
                answers,
                server_hop,
                origin
            );
        }
        if a.rsts.len() > MAX_RST_ROWS {
            let _ = writeln!(out, "  … {} more in --json", a.rsts.len() - MAX_RST_ROWS);
        }
        if let Some(e) = a.rsts.first() {
            for reason in &e.reasons {
                let _ = writeln!(out, "  · {reason}");
            }
        }
    }

    // One line per broker-name lookup and per TLS handshake seen.
    let names = a.dns.broker_name_outcomes();
    if !names.is_empty() {
        let _ = writeln!(out, "\nDNS:");
        for n in names
            .iter()
            .filter(|n| n.search_expansion_of.is_none())
            .take(8)
        {
            let _ = writeln!(out, "  {:<40} {}", n.name, serde_plain_outcome(&n.outcome));
        }
    }
    let tls: Vec<_> = a
        .flows
        .iter()
        .filter_map(|f| Some((f, f.tls_observation.as_deref()?)))
        .filter(|(_, o)| o.client_hello.is_some() || o.connect.is_some())
        .take(5)
        .collect();
    if !tls.is_empty() {
        let _ = writeln!(out, "\nTLS:");
        // Each distinct chain is shown once, depth by depth.
        let mut chains_shown: Vec<*const crate::analysis::tls::CertSummary> = Vec::new();
        for (f, o) in tls {
            let sni = o
                .client_hello
                .as_ref()
                .and_then(|c| c.sni.clone())
                .unwrap_or_else(|| "-".into());
            let version = o
                .server_hello
                .as_ref()
                .map_or("no ServerHello".to_string(), |s| s.version.to_string());
            let issuer = o.certificates.first().map_or_else(
                || {
                    if o.certificates_encrypted {
                        "certificate encrypted (TLS 1.3)".to_string()
                    } else {
                        "no certificate seen".to_string()
                    }
                },
                |c| format!("issuer {}", c.issuer),
            );
            let alert = o
                .alerts
                .first()
                .and_then(|a| a.description_name.clone())
                .map(|n| format!(", alert {n}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {} → {} SNI {sni}: {version}, {issuer}{alert}",
                f.client, f.server
            );
            if let Some(t) = &o.connect {
                let answer = t.answer.as_ref().map_or("no answer seen".to_string(), |a| {
                    format!("\"{}\" (frame {})", a.status_line, a.frame)
                });
                let _ = writeln!(
                    out,
                    "    via proxy {}: CONNECT {} (frame {}) → {answer}",
                    f.server, t.target, t.request_frame
                );
            }
            write_chain(&mut out, o, &mut chains_shown);
        }
    }

    if !a.findings.is_empty() {
        let _ = writeln!(out, "\nFindings:");
        for f in &a.findings {
            let sev = match f.severity {
                Severity::Critical => "CRITICAL",
                Severity::Warning => "warning ",
                Severity::Info => "info    ",
            };
            let _ = writeln!(out, "  {sev} {:<17} {}", f.kind, f.summary);
            if !f.frames.is_empty() {
                let more = if f.frames_total > f.frames.len() {
                    format!(" (+{} more)", f.frames_total - f.frames.len())
                } else {
                    String::new()
                };
                let list: Vec<String> = f.frames.iter().take(12).map(u64::to_string).collect();
                let ellipsis = if f.frames.len() > 12 { " …" } else { "" };
                let _ = writeln!(out, "           frames {}{ellipsis}{more}", list.join(" "));
            }
            if !f.filter.is_empty() {
                let _ = writeln!(out, "           wireshark: {}", f.filter);
            }
        }
    }

    if let Some(j) = &r.journal {
        journal_beside(&mut out, j);
    }

    if !v.next_steps.is_empty() {
        let _ = writeln!(out, "\nNext steps:");
        for s in &v.next_steps {
            let _ = writeln!(out, "  - {s}");
        }
    }

    let i = &r.input;
    let span = match (a.first_ts_ns, a.last_ts_ns) {
        (Some(s), Some(e)) => format!(
            ", {:.3} s from {}",
            (e - s) as f64 / 1e9,
            crate::vocab::time::rfc3339_ns(s)
        ),
        _ => String::new(),
    };
    let path = match &r.path {
        Some(p) => format!(
            "\nPath: {} hops from {}, target hop {}",
            p.hops.len(),
            serde_plain(&p.source),
            p.target_hop.map_or("unknown".into(), |h| h.to_string())
        ),
        None => "\nPath: none given (--hops N or --mtr FILE place resets against the broker's hop)"
            .into(),
    };
    let non_ip = match i.non_ip_kinds.total() {
        0 => String::new(),
        n => format!(" ({n} frames carry no IP: {})", i.non_ip_kinds.describe()),
    };
    let _ = writeln!(
        out,
        "\nCapture: {} ({}, {}), {} frames, {} IP packets{non_ip}, {} TCP flows{span}{path}",
        i.file,
        serde_plain(&i.format),
        i.link_types.join("+"),
        i.frames,
        i.ip_packets,
        a.flows_total
    );
    if !a.other_ports.is_empty() {
        let ports: Vec<String> = a
            .other_ports
            .iter()
            .take(8)
            .map(|p| match (p.tls_flows, p.resets) {
                (0, r) => format!("{} ({r} resets)", p.port),
                (t, 0) => format!("{} ({t} TLS flows)", p.port),
                (t, r) => format!("{} ({t} TLS flows, {r} resets)", p.port),
            })
            .collect();
        let more = a.other_ports.len().saturating_sub(8);
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        let _ = writeln!(out, "Other ports: {}{more}", ports.join(", "));
    }
    for w in &r.warnings {
        let _ = writeln!(out, "warning: {}", w.message);
    }
    out
}

/// Distinct chains shown in full; later ones are only named.
const MAX_CHAINS_SHOWN: usize = 3;

/// The chain as sent, depth by depth, as `openssl s_client -showcerts`
/// prints it (`depth s:subject` / `i:issuer`), with each certificate's
/// validity; a chain already shown is referred to, not repeated.
fn write_chain(
    out: &mut String,
    o: &crate::analysis::tls::TlsObservation,
    shown: &mut Vec<*const crate::analysis::tls::CertSummary>,
) {
    if o.certificates.is_empty() && o.undecodable_certificates.is_empty() {
        return;
    }
    let key = o.certificates.as_ptr();
    if !o.certificates.is_empty() && shown.contains(&key) {
        let _ = writeln!(out, "    chain: as above");
        return;
    }
    if shown.len() >= MAX_CHAINS_SHOWN {
        let _ = writeln!(
            out,
            "    chain: {} certificates (see --json)",
            o.certificates_total
        );
        return;
    }
    shown.push(key);
    let _ = writeln!(
        out,
        "    chain as sent ({} certificate{}):",
        o.certificates_total,
        if o.certificates_total == 1 { "" } else { "s" }
    );
    let mut rows: Vec<(usize, String)> = o
        .certificates
        .iter()
        .map(|c| {
            (
                c.index,
                format!(
                    "    {:>2} s:{}  [valid {} to {}]\n       i:{}",
                    c.index,
                    c.subject,
                    crate::vocab::time::rfc3339_secs(c.not_before),
                    crate::vocab::time::rfc3339_secs(c.not_after),
                    c.issuer,
                ),
            )
        })
        .collect();
    rows.extend(o.undecodable_certificates.iter().map(|u| {
        (
            u.index,
            format!(
                "    {:>2} ({} bytes, not decoded: {})",
                u.index, u.der_len, u.error
            ),
        )
    }));
    rows.sort_by_key(|r| r.0);
    for (_, r) in &rows {
        let _ = writeln!(out, "{r}");
    }
    if o.certificates_total > rows.len() {
        let _ = writeln!(
            out,
            "       … {} more not decoded",
            o.certificates_total - rows.len()
        );
    }
}

/// A DNS outcome in a few words.
fn serde_plain_outcome(o: &crate::analysis::dns::Outcome) -> String {
    use crate::analysis::dns::Outcome;
    match o {
        Outcome::Resolved { addresses, .. } => {
            let a: Vec<String> = addresses.iter().map(|a| a.to_string()).collect();
            format!("resolved: {}", a.join(", "))
        }
        Outcome::NxDomain => "NXDOMAIN".into(),
        Outcome::ServFail => "SERVFAIL".into(),
        Outcome::Refused => "REFUSED".into(),
        Outcome::Truncated => "truncated, no TCP answer".into(),
        Outcome::Unanswered => "no answer".into(),
        Outcome::NoAddress => "no address".into(),
        Outcome::OtherRcode { rcode } => rcode.clone(),
        Outcome::Inconclusive => "inconclusive".into(),
    }
}

/// The serde name of a unit enum value (`syn-ack`, `pcapng`).
fn serde_plain<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// `pcap --journal`: each logged failure of the control connection next
/// to the packet paired with it.
fn journal_beside(out: &mut String, j: &crate::app::PcapJournal) {
    let t = &j.timeline;
    let _ = writeln!(
        out,
        "\nJournal {} beside the capture: {} lines, {} events; {} of {} logged failures paired with packets{}",
        j.file,
        j.counts.lines,
        j.counts.recognised,
        t.paired,
        t.events,
        match t.clock_offset_ms {
            Some(ms) => format!(", journal time = capture time {ms:+.1} ms"),
            None => String::new(),
        }
    );
    if j.utc_offset_assumed {
        let _ = writeln!(
            out,
            "  (timestamps without a zone read as UTC: give --utc-offset if the connector logs local time)"
        );
    }
    for p in t.pairs.iter().take(12) {
        let packet = match (p.frame, p.packet, p.delta_ms) {
            (Some(f), Some(k), Some(d)) => {
                format!("frame {f} ({}) {d:.1} ms before", serde_plain(&k))
            }
            _ => "no packet at that moment".to_string(),
        };
        let _ = writeln!(out, "  line {:>6} {:<18} ← {packet}", p.line, p.event);
    }
    if t.pairs.len() > 12 {
        let _ = writeln!(out, "  … {} more in --json", t.pairs.len() - 12);
    }
    for (name, addr) in t.brokers.iter().take(4) {
        let _ = writeln!(out, "  the journal names broker {name} ({addr})");
    }
}
