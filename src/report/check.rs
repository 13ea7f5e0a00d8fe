//! Rendering of `pathproof check`: a short human report (verdict, then one
//! section per step) and the JSON document (the `pcap` schema, whose
//! verdict and findings are the check's, plus a `check` section).

use super::json::{SCHEMA_VERSION, pcap_report};
use super::trace::Names;
use crate::analysis::Severity;
use crate::check::{BrokerCheck, CheckReport, target_hop_of};
use crate::vocab::FindingKind;
use serde_json::{Value, json};
use std::fmt::Write;

/// The JSON document.
pub fn render_json(r: &CheckReport, names: &Names) -> String {
    let mut doc = match &r.capture {
        Some(c) => serde_json::to_value(pcap_report(c)).unwrap_or(Value::Null),
        None => json!({
            "schema_version": SCHEMA_VERSION,
            "tool": {"name": "pathproof", "version": env!("CARGO_PKG_VERSION")},
            "input": null, "capture_start": null, "capture_end": null,
            "rsts": [], "rsts_total": 0, "dns": null, "flows": [], "flows_total": 0, "flows_listed": 0,
            "warnings": [],
        }),
    };
    let brokers: Vec<Value> = r.brokers.iter().map(|b| broker_json(b, names)).collect();
    if let Value::Object(m) = &mut doc {
        m.insert("command".into(), json!("check"));
        m.insert("verdict".into(), json!(r.verdict));
        m.insert("findings".into(), json!(r.findings));
        m.insert("path".into(), json!(r.path));
        m.insert(
            "check".into(),
            json!({
                "targets": r.targets,
                "port": r.port,
                "duration_ms": r.duration.as_secs_f64() * 1e3,
                "resolv_conf": r.resolv,
                "dns_lookups": r.lookups,
                "brokers": brokers,
                "clock": r.clock,
                "recording": r.recording,
                "warnings": r.warnings,
                "not_done": not_done(r),
            }),
        );
    }
    serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".into())
}

fn broker_json(b: &BrokerCheck, names: &Names) -> Value {
    let trace = b
        .trace
        .as_ref()
        .zip(b.trace_judgement.as_ref())
        .and_then(|(t, j)| {
            serde_json::from_str::<Value>(&super::trace::render_json(t, j, names)).ok()
        });
    json!({
        "address": b.address,
        "name": b.name,
        "target_hop": b.trace.as_ref().and_then(target_hop_of),
        "trace": trace,
        "tls": b.tls,
        "sni_replay": b.sni_replay,
        "pmtu": b.pmtu,
        "errors": b.errors,
        "not_done": b.not_done,
    })
}

/// The human report.
pub fn render_text(r: &CheckReport, names: &Names) -> String {
    let v = &r.verdict;
    let mut out = String::new();
    let place = match (v.hop, v.address) {
        (Some(h), Some(a)) => format!(" at hop {h} ({a})"),
        (Some(h), None) => format!(" at hop {h}"),
        (None, Some(a)) => format!(" ({a})"),
        (None, None) => String::new(),
    };
    let confidence = serde_json::to_value(v.confidence)
        .ok()
        .and_then(|c| c.as_str().map(str::to_owned))
        .unwrap_or_default();
    let _ = writeln!(out, "VERDICT: {}{place} [confidence {confidence}]", v.class);
    let _ = writeln!(out, "{}", v.summary);
    for s in &v.next_steps {
        let _ = writeln!(out, "  next: {s}");
    }
    let _ = writeln!(out);

    // DNS
    let rc = &r.resolv;
    let readable = match &rc.readable {
        crate::check::resolv::Readability::Readable => {
            format!("readable by {}", rc.service_user)
        }
        crate::check::resolv::Readability::Unreadable { reason } => {
            format!("NOT readable by {}: {reason}", rc.service_user)
        }
        crate::check::resolv::Readability::NoSuchUser { .. } => {
            format!("no user {} here (not checked)", rc.service_user)
        }
        crate::check::resolv::Readability::Unknown { reason } => format!("unknown: {reason}"),
    };
    let _ = writeln!(out, "{:<6} {} {}", "DNS", rc.path, readable);
    for l in &r.lookups {
        let _ = writeln!(out, "       {}", l.summary());
    }
    // Per broker: path, TCP, TLS, MTU
    for b in &r.brokers {
        let hop = b.trace.as_ref().and_then(target_hop_of);
        let _ = writeln!(
            out,
            "{:<6} {}{}: {}",
            "PATH",
            b.address,
            b.name
                .as_ref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default(),
            match (&b.trace, hop) {
                (Some(t), Some(h)) if t.trace.protocol == crate::trace::TraceProtocol::Icmp =>
                    format!(
                        "{h} hops by ICMP echo (no raw sockets: TCP/{} not traced)",
                        r.port
                    ),
                (Some(t), None) if t.trace.protocol == crate::trace::TraceProtocol::Icmp =>
                    "the broker never answered ICMP echo (no raw sockets: TCP not traced)".into(),
                (Some(t), Some(h)) if t.trace.reached() =>
                    format!("{h} hops, TCP/{} reached the broker", r.port),
                (Some(_), Some(h)) =>
                    format!("{h} hops by ICMP; TCP/{} did not reach the broker", r.port),
                (Some(_), None) => "the broker never answered the traces".into(),
                (None, _) => "not traced".into(),
            }
        );
        if let Some(t) = &b.trace {
            let shown = crate::check::broker_trace(t);
            for line in super::trace::table(&shown.hops, b.address, names).lines() {
                let _ = writeln!(out, "       {line}");
            }
        }
        if let Some(t) = &b.tls {
            let _ = writeln!(out, "{:<6} {}", "TCP", t.connect_summary());
            let _ = writeln!(out, "{:<6} {}", "TLS", t.summary());
            if let Some(rp) = &b.sni_replay {
                let _ = writeln!(out, "       {}", rp.summary());
            }
        }
        if let Some(p) = &b.pmtu {
            let _ = writeln!(out, "{:<6} {}", "MTU", p.summary());
        }
        for e in &b.errors {
            let _ = writeln!(out, "       error: {e}");
        }
    }
    // Clock
    let clock = r
        .clock
        .ntp
        .iter()
        .map(|a| match (&a.sample, &a.error) {
            (Some(s), _) => format!(
                "{}: offset {:+.3} s, delay {:.1} ms",
                a.server,
                s.offset_secs,
                s.delay_secs * 1e3
            ),
            (None, Some(e)) => format!("{}: {e}", a.server),
            (None, None) => format!("{}: no answer", a.server),
        })
        .collect::<Vec<_>>();
    let _ = writeln!(
        out,
        "{:<6} local {}; {}",
        "CLOCK",
        r.clock.local_time,
        if clock.is_empty() {
            "no NTP server configured (--ntp)".to_string()
        } else {
            clock.join("; ")
        }
    );
    for b in &r.brokers {
        if let Some(t) = &b.tls
            && let Some(leaf) = t.chain.first()
        {
            let _ = writeln!(
                out,
                "       certificate of {}: valid {} to {}",
                b.address, leaf.not_before, leaf.not_after
            );
        }
    }

    let shown: Vec<_> = r
        .findings
        .iter()
        .filter(|f| {
            f.severity > Severity::Info
                || matches!(f.kind, FindingKind::PathMtu | FindingKind::IcmpRateLimit)
        })
        .collect();
    if !shown.is_empty() {
        let _ = writeln!(out, "\nFindings:");
        for f in shown {
            let place = match (f.hop, f.address) {
                (Some(h), Some(a)) => format!(" hop {h} ({a})"),
                (Some(h), None) => format!(" hop {h}"),
                (None, Some(a)) => format!(" ({a})"),
                (None, None) => String::new(),
            };
            let sev = match f.severity {
                Severity::Critical => "critical",
                Severity::Warning => "warning",
                Severity::Info => "info",
            };
            let _ = writeln!(out, "  [{sev}] {}{place}: {}", f.kind, f.summary);
            if !f.filter.is_empty() {
                let _ = writeln!(out, "      Wireshark: {}", f.filter);
            }
        }
    }
    let rec = &r.recording;
    let _ = writeln!(
        out,
        "\n{} in {:.1} s{}",
        if rec.recorded {
            format!("{} packets recorded", rec.frames)
        } else {
            format!(
                "no packets recorded ({})",
                rec.error.as_deref().unwrap_or("no privilege")
            )
        },
        r.duration.as_secs_f64(),
        rec.saved
            .as_ref()
            .map(|s| format!("; saved to {s} (pathproof pcap {s})"))
            .unwrap_or_default()
    );
    for w in &r.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    let skipped = not_done(r);
    if !skipped.is_empty() {
        let _ = writeln!(out, "\nNot done ({}):", skipped.len());
        for n in skipped {
            let _ = writeln!(out, "  - {}: {}", n.part, n.reason);
            let _ = writeln!(out, "    to enable: {}", n.enable);
        }
    }
    out
}

/// Every part of the check that could not be done: the run's, then each
/// broker's.
fn not_done(r: &CheckReport) -> Vec<&crate::check::NotDone> {
    r.not_done
        .iter()
        .chain(r.brokers.iter().flat_map(|b| &b.not_done))
        .collect()
}
