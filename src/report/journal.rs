//! `pathproof journal`: the text and JSON reports.

use crate::analysis::rules::journal::Flapping;
use crate::analysis::{Finding, Verdict};
use crate::app::journal::JournalReport;
use crate::journal::{JournalCounts, JournalEvent, JournalFormat, YearRule};
use crate::vocab::time::rfc3339_secs;
use serde::Serialize;
use std::fmt::Write;

/// Events listed in the JSON; `events_total` counts all kept.
const MAX_EVENTS_LISTED: usize = 1000;
/// Timeline entries shown in the text.
const MAX_TIMELINE_ROWS: usize = 40;

fn when(ns: Option<i64>) -> String {
    ns.map_or_else(
        || "-".to_string(),
        |n| rfc3339_secs(n.div_euclid(1_000_000_000)),
    )
}

fn offset_words(secs: i32) -> String {
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.unsigned_abs();
    format!("{sign}{:02}:{:02}", a / 3600, a % 3600 / 60)
}

fn format_name(f: JournalFormat) -> &'static str {
    match f {
        JournalFormat::Short => "short",
        JournalFormat::ShortPrecise => "short-precise",
        JournalFormat::ShortIso => "short-iso",
        JournalFormat::ShortIsoPrecise => "short-iso-precise",
        JournalFormat::Json => "json",
    }
}

fn lower(v: &impl Serialize) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

pub fn render_text(r: &JournalReport) -> String {
    let j = &r.journal;
    let g = &r.judgement;
    let v = &g.verdict;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "VERDICT: {} [confidence {}]",
        lower(&v.class),
        lower(&v.confidence)
    );
    let _ = writeln!(out, "{}", v.summary);

    if !g.timeline.is_empty() {
        let _ = writeln!(out, "\nTimeline (UTC; state changes, repeats counted):");
        for t in g.timeline.iter().take(MAX_TIMELINE_ROWS) {
            let span = if t.first_line == t.last_line {
                format!("{:<20}   {:<20}", when(t.first_ts_ns), "")
            } else {
                format!("{:<20} → {:<20}", when(t.first_ts_ns), when(t.last_ts_ns))
            };
            let times = if t.count > 1 {
                format!(" ×{}", t.count)
            } else {
                String::new()
            };
            let lines = if t.first_line == t.last_line {
                format!("line {}", t.first_line)
            } else {
                format!("lines {}–{}", t.first_line, t.last_line)
            };
            let _ = writeln!(
                out,
                "  {span}  {} {}{times}  ({lines})",
                t.subject,
                t.states.join("/")
            );
        }
        if g.timeline.len() > MAX_TIMELINE_ROWS {
            let _ = writeln!(
                out,
                "  … {} more in --json",
                g.timeline.len() - MAX_TIMELINE_ROWS
            );
        }
    }
    if let Some(f) = &g.flapping {
        let _ = writeln!(
            out,
            "\nFlapping: {} up→down cycles{} (lines {}–{})",
            f.cycles,
            f.period_secs
                .map_or(String::new(), |p| format!(", every {p:.0} s on average")),
            f.first_line,
            f.last_line
        );
    }
    if !g.findings.is_empty() {
        let _ = writeln!(out, "\nFindings:");
        for f in &g.findings {
            let _ = writeln!(out, "  [{}] {}: {}", lower(&f.severity), f.kind, f.summary);
        }
    }
    if !v.next_steps.is_empty() {
        let _ = writeln!(out, "\nNext steps:");
        for (i, s) in v.next_steps.iter().enumerate() {
            let _ = writeln!(out, "  {}. {s}", i + 1);
        }
    }
    let c = &j.counts;
    let formats: Vec<&str> = j.formats.iter().map(|f| format_name(*f)).collect();
    let _ = writeln!(
        out,
        "\nJournal: {} ({}): {} lines, {} journal lines: {} recognised, {} unknown; {} markers, {} other lines{}{}",
        r.file,
        if formats.is_empty() {
            "no entries".to_string()
        } else {
            formats.join(", ")
        },
        c.lines,
        c.journal_lines,
        c.recognised,
        c.unknown,
        c.markers,
        c.other,
        if c.long_lines > 0 {
            format!(", {} long lines cut", c.long_lines)
        } else {
            String::new()
        },
        if c.events_dropped > 0 {
            format!(
                ", {} events beyond the first {} not judged",
                c.events_dropped,
                crate::journal::MAX_EVENTS
            )
        } else {
            String::new()
        },
    );
    match j.year_rule {
        YearRule::NotNeeded => {}
        YearRule::Given(y) => {
            let _ = writeln!(
                out,
                "Year of the year-less timestamps: {y} (--year){}",
                rollovers(j.year_rollovers)
            );
        }
        YearRule::FromContext(y) => {
            let _ = writeln!(
                out,
                "Year of the year-less timestamps: {y} (from the file's own dated lines){}",
                rollovers(j.year_rollovers)
            );
        }
        YearRule::CurrentYear(y) => {
            let _ = writeln!(
                out,
                "Year of the year-less timestamps: {y} (the current year; --year sets it){}",
                rollovers(j.year_rollovers)
            );
        }
    }
    if j.utc_offset_assumed {
        let _ = writeln!(
            out,
            "Times without a zone were read as UTC (--utc-offset +HH:MM gives the connector's local offset)."
        );
    } else if j.year_rule != YearRule::NotNeeded {
        let _ = writeln!(
            out,
            "Times without a zone were read at UTC{}.",
            offset_words(j.utc_offset_secs)
        );
    }
    out
}

fn rollovers(n: u32) -> String {
    match n {
        0 => String::new(),
        1 => ", one year later after the month went back (New Year)".into(),
        n => format!(", {n} year changes after the month went back"),
    }
}

#[derive(Serialize)]
struct JsonInput<'a> {
    file: &'a str,
    formats: Vec<&'static str>,
    counts: &'a JournalCounts,
    year_rule: &'a YearRule,
    year_rollovers: u32,
    utc_offset: String,
    utc_offset_assumed: bool,
    first: Option<String>,
    last: Option<String>,
}

#[derive(Serialize)]
struct JsonTimeline<'a> {
    first_line: u64,
    last_line: u64,
    start: Option<String>,
    end: Option<String>,
    topic: &'static str,
    subject: &'a str,
    states: &'a [String],
    count: u64,
}

#[derive(Serialize)]
struct JsonEvent<'a> {
    line: u64,
    time: Option<String>,
    pid: Option<u32>,
    #[serde(flatten)]
    kind: &'a crate::journal::JournalEventKind,
    broker: Option<&'a str>,
    address: Option<String>,
    text: &'a str,
}

#[derive(Serialize)]
struct JsonJournal<'a> {
    schema_version: u32,
    tool: super::json::Tool,
    command: &'static str,
    input: JsonInput<'a>,
    verdict: &'a Verdict,
    findings: &'a [Finding],
    flapping: Option<&'a Flapping>,
    timeline: Vec<JsonTimeline<'a>>,
    events_total: usize,
    events: Vec<JsonEvent<'a>>,
}

fn rfc(ns: Option<i64>) -> Option<String> {
    ns.map(crate::vocab::time::rfc3339_ns)
}

fn event(e: &JournalEvent) -> JsonEvent<'_> {
    JsonEvent {
        line: e.line,
        time: rfc(e.ts_ns),
        pid: e.pid,
        kind: &e.kind,
        broker: e.broker.as_deref(),
        address: e.address.map(|a| a.to_string()),
        text: &e.text,
    }
}

pub fn render_json(r: &JournalReport) -> String {
    let j = &r.journal;
    let g = &r.judgement;
    let doc = JsonJournal {
        schema_version: super::json::SCHEMA_VERSION,
        tool: super::json::Tool {
            name: "pathproof",
            version: env!("CARGO_PKG_VERSION"),
        },
        command: "journal",
        input: JsonInput {
            file: &r.file,
            formats: j.formats.iter().map(|f| format_name(*f)).collect(),
            counts: &j.counts,
            year_rule: &j.year_rule,
            year_rollovers: j.year_rollovers,
            utc_offset: offset_words(j.utc_offset_secs),
            utc_offset_assumed: j.utc_offset_assumed,
            first: rfc(j.first_ts_ns),
            last: rfc(j.last_ts_ns),
        },
        verdict: &g.verdict,
        findings: &g.findings,
        flapping: g.flapping.as_ref(),
        timeline: g
            .timeline
            .iter()
            .map(|t| JsonTimeline {
                first_line: t.first_line,
                last_line: t.last_line,
                start: rfc(t.first_ts_ns),
                end: rfc(t.last_ts_ns),
                topic: t.topic,
                subject: &t.subject,
                states: &t.states,
                count: t.count,
            })
            .collect(),
        events_total: j.events.len(),
        events: j.events.iter().take(MAX_EVENTS_LISTED).map(event).collect(),
    };
    serde_json::to_string_pretty(&doc).expect("report types serialize")
}
