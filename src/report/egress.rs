//! `pathproof egress`: the table, the summary, the firewall rules; and the
//! JSON document (schema in README.md).

use super::json::SCHEMA_VERSION;
use crate::egress::{EgressReport, EgressRow, FirewallRule};
use crate::vocab::Via;
use serde_json::json;
use std::fmt::Write;

/// Width of the detail column before it wraps onto its own line.
const DETAIL_WIDTH: usize = 100;

fn place(hop: Option<u8>, addr: Option<std::net::IpAddr>) -> String {
    match (hop, addr) {
        (Some(h), Some(a)) => format!("hop {h} ({a})"),
        (Some(h), None) => format!("hop {h}"),
        _ => "-".into(),
    }
}

fn port_of(r: &EgressRow) -> String {
    match (r.protocol, r.port) {
        (Some(p), Some(n)) => format!("{p}/{n}"),
        (Some(p), None) => p.to_string(),
        _ => "-".into(),
    }
}

pub fn render_text(r: &EgressReport) -> String {
    let mut out = String::new();
    let proxy = match &r.proxy {
        Some(p) => format!("through the proxy {p} (from {})", p.from),
        None => "direct (no proxy)".into(),
    };
    let resolvers: Vec<String> = r.resolvers.iter().map(|a| a.to_string()).collect();
    let _ = writeln!(
        out,
        "pathproof egress: cloud {}, resolvers {} ({}), NTP from {}, {proxy}",
        r.cloud,
        resolvers.join(", "),
        r.resolvers_source,
        r.ntp_source
    );
    let _ = writeln!(out);
    let target_w = r
        .rows
        .iter()
        .map(|x| x.target.len())
        .max()
        .unwrap_or(6)
        .clamp(6, 32);
    let _ = writeln!(
        out,
        "{:<6} {:<8} {:<target_w$} {:<15} {:<8} {:<20} DETAIL",
        "STATUS", "CHECK", "TARGET", "ADDRESS", "PORT", "HOP"
    );
    for row in &r.rows {
        let mut check = row.check.to_string();
        if let Some(q) = row.query {
            check = format!("{check} {q}");
        }
        if row.via == Via::Proxy && row.check != crate::vocab::EgressCheck::Proxy {
            check.push('*');
        }
        let addr = row.address.map_or_else(|| "-".into(), |a| a.to_string());
        let mut target = row.target.clone();
        if target.len() > target_w {
            target.truncate(target_w - 1);
            target.push('…');
        }
        let head = format!(
            "{:<6} {:<8} {:<target_w$} {:<15} {:<8} {:<20}",
            row.status.label(),
            check,
            target,
            addr,
            port_of(row),
            place(row.hop, row.hop_address),
        );
        let class = row.class.map(|c| format!("{c}: ")).unwrap_or_default();
        let detail = format!("{class}{}", row.detail);
        if detail.len() <= DETAIL_WIDTH {
            let _ = writeln!(out, "{head} {detail}");
        } else {
            let _ = writeln!(out, "{head}");
            let _ = writeln!(out, "       {detail}");
        }
        if let Some(fix) = &row.fix {
            let _ = writeln!(out, "       fix: {fix}");
        }
    }
    if r.rows.iter().any(|x| x.via == Via::Proxy) {
        let _ = writeln!(out, "(* inside the tunnel through the proxy)");
    }
    let _ = writeln!(out);
    let s = &r.summary;
    let outcome = match r.exit_code {
        0 => "every required check passes",
        1 => "a required check fails",
        _ => "nothing could be checked",
    };
    let _ = writeln!(
        out,
        "SUMMARY: {} pass, {} fail, {} warn, {} skip in {:.1} s: {outcome}.",
        s.pass,
        s.fail,
        s.warn,
        s.skip,
        r.duration.as_secs_f64()
    );
    if r.verdict.class.is_failure() {
        let v = &r.verdict;
        let _ = writeln!(
            out,
            "VERDICT: {}{}: {}",
            v.class,
            v.hop.map(|h| format!(" at hop {h}")).unwrap_or_default(),
            v.summary
        );
    }
    for n in &r.notes {
        let _ = writeln!(out, "note: {n}");
    }
    if !r.firewall_rules.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "Firewall changes that would fix the failures:");
        for f in &r.firewall_rules {
            let _ = writeln!(out, "  {}", rule_line(f));
        }
    }
    out
}

fn rule_line(f: &FirewallRule) -> String {
    let at = match (f.hop, f.hop_address) {
        (Some(h), Some(a)) => format!(", on the device at hop {h} ({a})"),
        (Some(h), None) => format!(", on the device at hop {h}"),
        _ => String::new(),
    };
    let optional = if f.required { "" } else { " (optional)" };
    match f.action {
        crate::analysis::egress::FixAction::Allow => format!(
            "allow {}/{} from this host to {}{at}{optional}",
            f.protocol, f.port, f.destination
        ),
        crate::analysis::egress::FixAction::ExemptFromInspection => format!(
            "exempt {}/{} to {} from TLS inspection{at}{optional}",
            f.protocol, f.port, f.destination
        ),
    }
}

pub fn render_json(r: &EgressReport) -> String {
    let doc = json!({
        "command": "egress",
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "pathproof", "version": env!("CARGO_PKG_VERSION")},
        "cloud": r.cloud,
        "resolvers": r.resolvers,
        "resolvers_source": r.resolvers_source,
        "proxy": r.proxy.as_ref().map(|p| json!({"host": p.host, "port": p.port, "from": p.from})),
        "ntp_source": r.ntp_source,
        "checks": r.rows,
        "summary": r.summary,
        "firewall_rules": r.firewall_rules,
        "verdict": r.verdict,
        "evidence": r.evidence.as_ref().map(|e| json!({
            "file": e.file, "packets": e.packets, "frames": e.frames, "left_out": e.left_out,
            "same_verdict": e.same_verdict, "reread_class": e.reread_class, "reread_hop": e.reread_hop,
        })),
        "exit_code": r.exit_code,
        "notes": r.notes,
        "duration_ms": r.duration.as_secs_f64() * 1e3,
    });
    serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".into())
}
