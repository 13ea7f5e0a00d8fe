//! `--html FILE`: the report as one self-contained page for a firewall
//! owner or a support case: the verdict, the path drawn as inline SVG (the
//! failing hop marked by shape and text, not only colour), the evidence
//! with frame numbers and Wireshark filters, the certificate chain depth by
//! depth, the next steps. No script, no font, no image, no fetch: it opens
//! from a file on a machine without network, and prints.
//!
//! Pure: report structures in, a `String` out. Every string that comes from
//! a capture or the network (names, SNI, certificate fields, summaries that
//! quote them) is escaped.

use crate::analysis::evidence::{Culprit, culprit};
use crate::analysis::{Analysis, Finding, RstOrigin, Verdict};
use crate::app::PcapReport;
use crate::check::CheckReport;
use crate::path::Path;
use std::fmt::Write;
use std::net::IpAddr;

/// Reverse names by address (the check's; empty for `pcap`).
pub type Names = crate::check::rdns::Names;

/// Frames listed per finding in the table (the filter has them all).
const MAX_FRAMES_SHOWN: usize = 24;

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// One certificate of a chain, as shown.
struct Cert {
    subject: String,
    issuer: String,
    not_before: String,
    not_after: String,
    key: String,
    san: Vec<String>,
}

/// A chain as one server sent it, leaf first.
struct Chain {
    label: String,
    certs: Vec<Cert>,
}

/// What a page shows, whichever command made it.
struct Page<'a> {
    command: &'static str,
    input: String,
    verdict: &'a Verdict,
    findings: &'a [Finding],
    path: Option<&'a Path>,
    analysis: Option<&'a Analysis>,
    names: &'a Names,
    chains: Vec<Chain>,
    evidence: Option<String>,
}

/// The page of `pathproof pcap`.
pub fn render_pcap(r: &PcapReport) -> String {
    let names = Names::new();
    let path = r.path.as_ref().or(r.analysis.path.as_ref());
    render(&Page {
        command: "pcap",
        input: r.input.file.clone(),
        verdict: &r.analysis.verdict,
        findings: &r.analysis.findings,
        path,
        analysis: Some(&r.analysis),
        names: &names,
        chains: capture_chains(&r.analysis),
        evidence: r.evidence.as_ref().map(|e| e.file.clone()),
    })
}

/// The page of `pathproof check`.
pub fn render_check(r: &CheckReport, names: &Names) -> String {
    let mut chains = Vec::new();
    for b in &r.brokers {
        if let Some(t) = &b.tls
            && !t.chain.is_empty()
        {
            chains.push(Chain {
                label: format!("{} (SNI {})", b.address, t.sni.as_deref().unwrap_or("none")),
                certs: t
                    .chain
                    .iter()
                    .map(|c| Cert {
                        subject: c.subject.clone(),
                        issuer: c.issuer.clone(),
                        not_before: c.not_before.clone(),
                        not_after: c.not_after.clone(),
                        key: c.key.clone(),
                        san: Vec::new(),
                    })
                    .collect(),
            });
        }
    }
    if chains.is_empty()
        && let Some(c) = &r.capture
    {
        chains = capture_chains(&c.analysis);
    }
    render(&Page {
        command: "check",
        input: r.targets.join(", "),
        verdict: &r.verdict,
        findings: &r.findings,
        path: r.path.as_ref(),
        analysis: r.capture.as_ref().map(|c| &c.analysis),
        names,
        chains,
        evidence: r
            .capture
            .as_ref()
            .and_then(|c| c.evidence.as_ref())
            .map(|e| e.file.clone()),
    })
}

/// The page of `pathproof egress`: the verdict, every check as a table row
/// (status in words, so it reads without colour), the firewall changes and
/// the next steps.
pub fn render_egress(r: &crate::egress::EgressReport) -> String {
    use crate::vocab::CheckStatus;
    let v = &r.verdict;
    let mut out = String::with_capacity(32 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>pathproof: egress — {}</title><style>{STYLE}</style></head><body>\n",
        esc(v.class.as_str())
    );
    let proxy = r
        .proxy
        .as_ref()
        .map_or("direct (no proxy)".to_string(), |p| {
            format!("through the proxy {p}")
        });
    let resolvers: Vec<String> = r.resolvers.iter().map(IpAddr::to_string).collect();
    let _ = writeln!(
        out,
        "<h1>pathproof egress: cloud {}</h1><p class=\"meta\">Resolvers {} ({}) · NTP from {} · {} · pathproof {} · {:.1} s</p>",
        esc(&r.cloud),
        esc(&resolvers.join(", ")),
        esc(&r.resolvers_source),
        esc(r.ntp_source),
        esc(&proxy),
        env!("CARGO_PKG_VERSION"),
        r.duration.as_secs_f64()
    );
    let failure = if v.class.is_failure() { " failure" } else { "" };
    let place = match (v.hop, v.address) {
        (Some(h), Some(a)) => format!(" at hop {h} ({a})"),
        (Some(h), None) => format!(" at hop {h}"),
        _ => String::new(),
    };
    let s = &r.summary;
    let _ = writeln!(
        out,
        "<section class=\"verdict{failure}\" id=\"verdict\"><div class=\"class\">VERDICT: <span data-class=\"{}\">{}</span>{}</div>\
<div>{} pass, {} fail, {} warn, {} skip</div><p>{}</p></section>",
        esc(v.class.as_str()),
        esc(v.class.as_str()),
        esc(&place),
        s.pass,
        s.fail,
        s.warn,
        s.skip,
        esc(&v.summary)
    );
    if !v.next_steps.is_empty() {
        out.push_str("<h2>Next steps</h2>\n<ol>");
        for step in &v.next_steps {
            let _ = write!(out, "<li>{}</li>", esc(step));
        }
        out.push_str("</ol>\n");
    }
    if !r.firewall_rules.is_empty() {
        out.push_str("<h2>Firewall changes</h2>\n<table id=\"rules\"><thead><tr><th>change</th><th>protocol/port</th><th>destination</th><th>where</th><th>needed</th></tr></thead><tbody>\n");
        for f in &r.firewall_rules {
            let at = match (f.hop, f.hop_address) {
                (Some(h), Some(a)) => format!("hop {h} ({a})"),
                (Some(h), None) => format!("hop {h}"),
                _ => "not placed".into(),
            };
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td class=\"mono\">{}/{}</td><td class=\"mono\">{}</td><td>{}</td><td>{}</td></tr>",
                esc(f.action.as_str()),
                esc(f.protocol),
                f.port,
                esc(&f.destination),
                esc(&at),
                if f.required { "required" } else { "optional" }
            );
        }
        out.push_str("</tbody></table>\n");
    }
    out.push_str("<h2>Checks</h2>\n<table id=\"checks\"><thead><tr><th>status</th><th>check</th><th>target</th><th>address</th><th>port</th><th>hop</th><th>detail</th></tr></thead><tbody>\n");
    for row in &r.rows {
        let status = row.status.label();
        let sev = match row.status {
            CheckStatus::Fail => "critical",
            CheckStatus::Warn => "warning",
            _ => "info",
        };
        let mut check = row.check.to_string();
        if let Some(q) = row.query {
            check = format!("{check} {q}");
        }
        if row.via == crate::vocab::Via::Proxy {
            check.push_str(" (through the proxy)");
        }
        let port = match (row.protocol, row.port) {
            (Some(p), Some(n)) => format!("{p}/{n}"),
            (Some(p), None) => p.to_string(),
            _ => "–".into(),
        };
        let hop = match (row.hop, row.hop_address) {
            (Some(h), Some(a)) => format!("{h} ({a})"),
            (Some(h), None) => h.to_string(),
            _ => "–".into(),
        };
        let class = row
            .class
            .map(|c| format!("<b>{}</b>: ", esc(c)))
            .unwrap_or_default();
        let fix = row
            .fix
            .as_ref()
            .map(|f| format!("<br><span class=\"meta\">fix: {}</span>", esc(f)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "<tr class=\"sev-{sev}\" data-status=\"{}\"><td><b>{status}</b></td><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td>{}</td><td>{class}{}{fix}</td></tr>",
            row.status.as_str(),
            esc(&check),
            esc(&row.target),
            esc(&row.address.map_or("–".into(), |a| a.to_string())),
            esc(&port),
            esc(&hop),
            esc(&row.detail)
        );
    }
    out.push_str("</tbody></table>\n");
    if let Some(e) = &r.evidence {
        let _ = writeln!(
            out,
            "<p>Evidence capture: <span class=\"mono\">{}</span> ({} packets, each commented with why it is there).</p>",
            esc(&e.file),
            e.packets
        );
    }
    for n in &r.notes {
        let _ = writeln!(out, "<p class=\"meta\">Note: {}</p>", esc(n));
    }
    out.push_str("<p class=\"meta\">This page is self-contained: no script, no font, no image and nothing fetched. Status is written out (PASS, FAIL, WARN, SKIP), not only coloured.</p>\n</body></html>\n");
    out
}

/// The distinct chains the capture's TLS handshakes showed.
fn capture_chains(a: &Analysis) -> Vec<Chain> {
    let mut out: Vec<Chain> = Vec::new();
    let mut seen: Vec<Vec<String>> = Vec::new();
    for f in &a.flows {
        let Some(t) = &f.tls_observation else {
            continue;
        };
        if t.certificates.is_empty() {
            continue;
        }
        let key: Vec<String> = t
            .certificates
            .iter()
            .map(|c| format!("{}|{}|{}", c.subject, c.issuer, c.serial))
            .collect();
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let frame = t
            .certificate
            .map_or(String::new(), |c| format!(", frame {}", c.frame));
        let sni = t
            .client_hello
            .as_ref()
            .and_then(|c| c.sni.as_deref())
            .map_or(String::new(), |s| format!(", SNI {s}"));
        out.push(Chain {
            label: format!("sent by {}{sni}{frame}", f.server),
            certs: t
                .certificates
                .iter()
                .map(|c| Cert {
                    subject: c.subject.clone(),
                    issuer: c.issuer.clone(),
                    not_before: crate::vocab::time::rfc3339_secs(c.not_before),
                    not_after: crate::vocab::time::rfc3339_secs(c.not_after),
                    key: c.key.clone(),
                    san: c.san_dns.clone(),
                })
                .collect(),
        });
        if out.len() >= 4 {
            break;
        }
    }
    out
}

const STYLE: &str = r#"
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;margin:1.5em auto;max-width:1150px;padding:0 1em;color:#111;line-height:1.4}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #999}
.verdict{border:3px solid #111;padding:.6em 1em;margin:.8em 0}
.verdict .class{font-weight:bold;font-size:1.25em}
.verdict.failure{border-style:double;border-width:6px;border-color:#b00}
.meta{color:#444;font-size:.9em}
table{border-collapse:collapse;width:100%;font-size:.9em}
th,td{border:1px solid #999;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#eee}
code,.mono{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:.9em}
code.filter{display:block;user-select:all;-webkit-user-select:all;background:#f4f4f4;border:1px dashed #777;padding:.2em .4em;word-break:break-all}
svg{width:100%;height:auto;border:1px solid #ccc}
svg text{font-family:system-ui,Arial,sans-serif;font-size:13px;fill:#111}
svg .node{fill:#fff;stroke:#111;stroke-width:2}
svg .failing .node{fill:#fee;stroke:#b00;stroke-width:5;stroke-dasharray:10 4}
svg .failing text.tag{font-weight:bold;fill:#b00;font-size:14px}
svg .link{stroke:#111;stroke-width:2}
svg .forged{stroke:#b00;stroke-width:3;fill:none;stroke-dasharray:8 5}
svg .unplaced rect{fill:none;stroke:#b00;stroke-width:3;stroke-dasharray:4 4}
svg .hole{fill:#111}
.sev-critical{font-weight:bold}
@media print{
 body{max-width:none;margin:0;color:#000}
 .verdict,.verdict.failure{border-color:#000}
 svg .failing .node{fill:#fff;stroke:#000}
 svg .failing text.tag,svg .forged{fill:#000;stroke:#000}
 svg .forged{fill:none}
 code.filter{background:none}
 tr,svg,.verdict{page-break-inside:avoid;break-inside:avoid}
 a{color:#000;text-decoration:none}
}
"#;

fn render(p: &Page<'_>) -> String {
    let v = p.verdict;
    let mut out = String::with_capacity(32 * 1024);
    let place = match (v.hop, v.address) {
        (Some(h), Some(a)) => format!(" at hop {h} ({a})"),
        (Some(h), None) => format!(" at hop {h}"),
        (None, Some(a)) => format!(" ({a})"),
        (None, None) => String::new(),
    };
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>pathproof: {} — {}</title><style>{STYLE}</style></head><body>\n",
        esc(v.class.as_str()),
        esc(&p.input)
    );
    let _ = writeln!(
        out,
        "<h1>pathproof {}: {}</h1><p class=\"meta\">Input: <span class=\"mono\">{}</span> · pathproof {}{}</p>",
        p.command,
        esc(&p.input),
        esc(&p.input),
        env!("CARGO_PKG_VERSION"),
        p.evidence.as_ref().map_or(String::new(), |e| format!(
            " · evidence capture: <span class=\"mono\">{}</span>",
            esc(e)
        ))
    );
    let failure = if v.class.is_failure() { " failure" } else { "" };
    let _ = writeln!(
        out,
        "<section class=\"verdict{failure}\" id=\"verdict\"><div class=\"class\">VERDICT: <span data-class=\"{}\">{}</span>{}</div>\
<div>confidence {}</div><p>{}</p></section>",
        esc(v.class.as_str()),
        esc(v.class.as_str()),
        esc(&place),
        esc(&format!("{:?}", v.confidence).to_lowercase()),
        esc(&v.summary)
    );

    out.push_str("<h2>The path</h2>\n");
    out.push_str(&diagram(p));

    if !v.next_steps.is_empty() {
        out.push_str("<h2>Next steps</h2>\n<ol>");
        for s in &v.next_steps {
            let _ = write!(out, "<li>{}</li>", esc(s));
        }
        out.push_str("</ol>\n");
    }

    out.push_str("<h2>Evidence</h2>\n");
    if p.findings.is_empty() {
        out.push_str("<p>No finding.</p>\n");
    } else {
        out.push_str("<p>Frame numbers are Wireshark's in the input. Each filter can be selected with one click and pasted into Wireshark's display filter.</p>\n");
        out.push_str("<table id=\"evidence\"><thead><tr><th>severity</th><th>finding</th><th>hop</th><th>what it shows</th><th>frames</th><th>Wireshark filter</th></tr></thead><tbody>\n");
        for f in p.findings {
            let sev = format!("{:?}", f.severity).to_lowercase();
            let mut frames: Vec<String> = f
                .frames
                .iter()
                .take(MAX_FRAMES_SHOWN)
                .map(u64::to_string)
                .collect();
            if f.frames_total > frames.len() {
                frames.push(format!("… ({} in all)", f.frames_total));
            }
            let hop = match (f.hop, f.address) {
                (Some(h), Some(a)) => format!("{h} ({a})"),
                (Some(h), None) => h.to_string(),
                (None, Some(a)) => a.to_string(),
                (None, None) => "–".into(),
            };
            let filter = if f.filter.is_empty() {
                "–".to_string()
            } else {
                format!("<code class=\"filter\">{}</code>", esc(&f.filter))
            };
            let _ = writeln!(
                out,
                "<tr class=\"sev-{sev}\"><td>{sev}</td><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td><td>{filter}</td></tr>",
                esc(&f.kind.to_string()),
                esc(&hop),
                esc(&f.summary),
                esc(&frames.join(", "))
            );
        }
        out.push_str("</tbody></table>\n");
    }

    if let Some(a) = p.analysis
        && !a.rsts.is_empty()
    {
        out.push_str("<h2>Resets toward the connector</h2>\n<table id=\"resets\"><thead><tr><th>frame</th><th>flags</th><th>TTL</th><th>hop</th><th>server's hop</th><th>origin</th></tr></thead><tbody>\n");
        for e in a.rsts.iter().take(40) {
            let origin = match e.origin {
                RstOrigin::Injected => "forged on the way",
                RstOrigin::Target => "the server's own",
                RstOrigin::Unclear => "unclear",
            };
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{origin}</td></tr>",
                e.frame,
                esc(&e.flags),
                e.ttl,
                e.placed_hop.unwrap_or(e.hop),
                e.genuine_hop
                    .or(e.target_hop)
                    .map_or("–".into(), |h| h.to_string())
            );
        }
        out.push_str("</tbody></table>\n");
    }

    out.push_str("<h2>Certificate chain</h2>\n");
    if p.chains.is_empty() {
        out.push_str("<p>No certificate was seen in clear (no TLS handshake, or TLS 1.3 whose certificates are encrypted).</p>\n");
    }
    for c in &p.chains {
        let _ = writeln!(
            out,
            "<p>Chain {}, as sent, leaf first:</p><table class=\"chain\"><thead><tr><th>depth</th><th>subject (s:)</th><th>issuer (i:)</th><th>valid from</th><th>valid until</th><th>key</th></tr></thead><tbody>",
            esc(&c.label)
        );
        for (depth, cert) in c.certs.iter().enumerate() {
            let san = if cert.san.is_empty() {
                String::new()
            } else {
                format!(
                    "<br><span class=\"meta\">DNS: {}</span>",
                    esc(&cert.san.join(", "))
                )
            };
            let _ = writeln!(
                out,
                "<tr><td>{depth}</td><td class=\"mono\">{}{san}</td><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&cert.subject),
                esc(&cert.issuer),
                esc(&cert.not_before),
                esc(&cert.not_after),
                esc(&cert.key)
            );
        }
        out.push_str("</tbody></table>\n");
    }
    out.push_str("<p class=\"meta\">This page is self-contained: no script, no font, no image and nothing fetched. The failing hop is marked by its shape (an octagon with a double dashed border) and the word FAILING, not only by colour.</p>\n</body></html>\n");
    out
}

/// One node of the diagram.
struct Node {
    tag: String,
    address: Option<String>,
    name: Option<String>,
    stats: Option<String>,
    hop: Option<u8>,
    failing: bool,
}

const STEP: usize = 170;
const X0: usize = 90;
const Y: usize = 150;

/// The path as inline SVG: the connector, each hop, the broker; the
/// failing hop marked, the forged reset drawn from the hop that sent it.
fn diagram(p: &Page<'_>) -> String {
    let v = p.verdict;
    let what = culprit(v.class);
    let path = p.path;
    let target_hop = path.and_then(|x| x.target_hop);
    let last_known = path
        .and_then(|x| x.hops.iter().map(|h| h.hop).max())
        .unwrap_or(0);
    let n = target_hop
        .unwrap_or(0)
        .max(last_known)
        .max(v.hop.unwrap_or(0));
    let broker_addr: Option<IpAddr> = path
        .and_then(|x| x.target)
        .or_else(|| {
            p.analysis
                .and_then(|a| {
                    a.flows
                        .iter()
                        .find(|f| f.syn_ack.is_some() || !f.rsts.is_empty())
                })
                .map(|f| f.server.ip())
        })
        .or_else(|| {
            p.analysis
                .and_then(|a| a.flows.first())
                .map(|f| f.server.ip())
        });

    let mut nodes = vec![Node {
        tag: "connector".into(),
        address: p
            .analysis
            .and_then(|a| a.flows.first())
            .map(|f| f.client.ip().to_string()),
        name: None,
        stats: None,
        hop: Some(0),
        failing: what == Culprit::Host,
    }];
    for k in 1..=n {
        let hop = path.and_then(|x| x.hops.iter().find(|h| h.hop == k));
        let address = hop.and_then(|h| h.addresses.first().copied());
        let is_target = target_hop == Some(k);
        let name = hop
            .and_then(|h| h.names.first().cloned())
            .or_else(|| address.and_then(|a| p.names.get(&a).cloned()));
        let stats = hop
            .and_then(|h| h.stats.as_ref())
            .map(|s| format!("loss {:.1}% · RTT {:.2} ms", s.loss_pct, s.avg_ms));
        let failing = match what {
            Culprit::Server => is_target,
            Culprit::BlackHole | Culprit::Host | Culprit::Resolver | Culprit::Nothing => false,
            _ => v.hop == Some(k),
        };
        nodes.push(Node {
            tag: if is_target {
                format!("hop {k}: broker")
            } else {
                format!("hop {k}")
            },
            address: address
                .or(if is_target { broker_addr } else { None })
                .map(|a| a.to_string())
                .or_else(|| {
                    (v.hop == Some(k))
                        .then(|| v.address.map(|a| a.to_string()))
                        .flatten()
                }),
            name,
            stats,
            hop: Some(k),
            failing,
        });
    }
    if target_hop.is_none() || n == 0 {
        nodes.push(Node {
            tag: "broker (hop unknown)".into(),
            address: broker_addr.map(|a| a.to_string()),
            name: None,
            stats: None,
            hop: None,
            failing: what == Culprit::Server,
        });
    }
    let resolver = (what == Culprit::Resolver).then(|| v.address.map(|a| a.to_string()));
    let width = X0 * 2 + STEP * (nodes.len() - 1);
    let height = 340;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg id=\"path\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-labelledby=\"path-title\">\
<title id=\"path-title\">The path from the connector to the broker; {}</title>\
<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"8\" markerHeight=\"8\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#b00\"/></marker></defs>",
        esc(&format!(
            "verdict {}{}",
            v.class,
            v.hop.map_or(String::new(), |h| format!(" at hop {h}"))
        ))
    );
    let x = |i: usize| X0 + STEP * i;
    for i in 1..nodes.len() {
        let _ = write!(
            s,
            "<line class=\"link\" x1=\"{}\" y1=\"{Y}\" x2=\"{}\" y2=\"{Y}\"/>",
            x(i - 1) + 34,
            x(i) - 34
        );
    }
    for (i, node) in nodes.iter().enumerate() {
        let cx = x(i);
        let hop_attr = node
            .hop
            .map_or(String::new(), |h| format!(" data-hop=\"{h}\""));
        let _ = write!(
            s,
            "<g class=\"hop{}\"{hop_attr} data-failing=\"{}\">",
            if node.failing { " failing" } else { "" },
            node.failing
        );
        if node.failing {
            // An octagon, not a circle: the mark survives without colour.
            let r = 36.0f64;
            let pts: Vec<String> = (0..8)
                .map(|j| {
                    let a = std::f64::consts::PI / 8.0 + j as f64 * std::f64::consts::PI / 4.0;
                    format!(
                        "{:.1},{:.1}",
                        cx as f64 + r * a.cos(),
                        Y as f64 + r * a.sin()
                    )
                })
                .collect();
            let _ = write!(s, "<polygon class=\"node\" points=\"{}\"/>", pts.join(" "));
            let _ = write!(
                s,
                "<text class=\"tag\" x=\"{cx}\" y=\"{}\" text-anchor=\"middle\">✖ FAILING</text>",
                Y - 48
            );
            let _ = write!(
                s,
                "<text x=\"{cx}\" y=\"{}\" text-anchor=\"middle\" font-size=\"20\">✖</text>",
                Y + 7
            );
        } else if i == 0 || node.tag.contains("broker") {
            let _ = write!(
                s,
                "<rect class=\"node\" x=\"{}\" y=\"{}\" width=\"68\" height=\"48\" rx=\"4\"/>",
                cx - 34,
                Y - 24
            );
        } else {
            let _ = write!(
                s,
                "<circle class=\"node\" cx=\"{cx}\" cy=\"{Y}\" r=\"28\"/>"
            );
        }
        let mut lines = vec![node.tag.clone()];
        lines.extend(node.address.clone());
        lines.extend(node.name.clone());
        lines.extend(node.stats.clone());
        for (j, l) in lines.iter().enumerate() {
            let weight = if j == 0 { " font-weight=\"bold\"" } else { "" };
            let _ = write!(
                s,
                "<text x=\"{cx}\" y=\"{}\" text-anchor=\"middle\"{weight}>{}</text>",
                Y + 56 + j * 16,
                esc(&crate::analysis::evidence::shorten(l, 26))
            );
        }
        s.push_str("</g>\n");
    }
    // What failed, placed where it is.
    let failing_index = nodes.iter().position(|n| n.failing);
    let label = |text: &str, cx: usize| {
        format!(
            "<text class=\"tag\" x=\"{cx}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            Y - 68,
            esc(text)
        )
    };
    match (what, failing_index) {
        (Culprit::ForgedReset, Some(i)) if i > 0 => {
            let ttl = p.analysis.and_then(|a| {
                a.rsts
                    .iter()
                    .find(|e| e.origin == RstOrigin::Injected)
                    .map(|e| e.ttl)
            });
            let from = broker_addr.map_or("the broker".to_string(), |a| a.to_string());
            let _ = writeln!(
                s,
                "<g class=\"failing\" data-failing=\"true\" data-what=\"forged-reset\"><path class=\"forged\" d=\"M{} {} C {} {}, {} {}, {} {}\" marker-end=\"url(#arrow)\"/>\
<text class=\"tag\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">forged reset sent by hop {} in the name of {}{}</text>{}</g>",
                x(i) - 36,
                Y + 8,
                x(i) - 70,
                Y + 160,
                x(0) + 60,
                Y + 160,
                x(0),
                Y + 26,
                (x(0) + x(i)) / 2,
                Y + 140,
                nodes[i].hop.unwrap_or(0),
                esc(&from),
                ttl.map_or(String::new(), |t| format!(" (TTL {t})")),
                label("sends the resets", x(i))
            );
        }
        (Culprit::Interceptor, Some(i)) => {
            s.push_str(&label("interceptor: its own certificate chain", x(i)));
        }
        (Culprit::Filter, Some(i)) => {
            s.push_str(&label("filter: drops, refuses or resets", x(i)));
        }
        (Culprit::Loss, Some(i)) => {
            s.push_str(&label("loss from here on", x(i)));
        }
        (Culprit::Server, Some(i)) => {
            s.push_str(&label("the server refuses", x(i)));
        }
        (Culprit::Host, Some(_)) => {
            s.push_str(&label("the connector host", x(0)));
        }
        (Culprit::BlackHole, _) if v.hop.is_some_and(|h| usize::from(h) + 1 < nodes.len()) => {
            let h = usize::from(v.hop.unwrap_or(0));
            let mid = (x(h) + x(h + 1)) / 2;
            let _ = writeln!(
                s,
                "<g class=\"failing\" data-failing=\"true\" data-what=\"black-hole\"><circle class=\"hole\" cx=\"{mid}\" cy=\"{Y}\" r=\"12\"/>{}</g>",
                label(
                    &format!("✖ FAILING: black hole after hop {h}: large packets vanish"),
                    mid
                )
            );
        }
        (Culprit::Resolver, _) => {
            let addr = resolver.flatten().unwrap_or_else(|| "the resolver".into());
            let _ = writeln!(
                s,
                "<g class=\"hop failing\" data-failing=\"true\" data-what=\"resolver\"><rect class=\"node\" x=\"{}\" y=\"20\" width=\"150\" height=\"40\"/>\
<text class=\"tag\" x=\"{}\" y=\"45\" text-anchor=\"middle\">✖ FAILING resolver</text><text x=\"{}\" y=\"78\" text-anchor=\"middle\">{}</text>\
<line class=\"link\" x1=\"{}\" y1=\"60\" x2=\"{}\" y2=\"{}\"/></g>",
                x(0) + 60,
                x(0) + 135,
                x(0) + 135,
                esc(&addr),
                x(0) + 80,
                x(0) + 20,
                Y - 26
            );
        }
        (Culprit::Nothing, _) => {}
        _ => {
            // A failure the evidence does not place: said, and drawn over
            // the whole way rather than at a guessed hop.
            let what_text = match what {
                Culprit::ForgedReset => "forged resets",
                Culprit::Interceptor => "interceptor",
                Culprit::BlackHole => "black hole: large packets vanish",
                Culprit::Filter => "filter: drops, refuses or resets",
                Culprit::Loss => "loss",
                _ => "failure",
            };
            let right = x(nodes.len() - 1);
            let mid = (x(0) + right) / 2;
            let _ = writeln!(
                s,
                "<g class=\"unplaced failing\" data-failing=\"true\" data-what=\"not-placed\"><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"110\"/>\
<text class=\"tag\" x=\"{mid}\" y=\"{}\" text-anchor=\"middle\">✖ FAILING: {}</text>\
<text x=\"{mid}\" y=\"{}\" text-anchor=\"middle\">somewhere between the connector and the broker: not placed by the evidence</text></g>",
                x(0) + 40,
                Y - 80,
                right.saturating_sub(x(0) + 80),
                Y - 106,
                esc(what_text),
                Y - 88,
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_hostile_text() {
        assert_eq!(
            esc("<script>alert('x')</script>&\"\u{7}"),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;\u{fffd}"
        );
    }
}
