//! `pcap --journal`: the connector's journal judged beside its capture.
//! The journal's events are observations like the packets: its rules
//! ([`super::rules::journal`]) propose candidates that the one picker
//! weighs with the capture's, and each logged close, error or backoff of
//! the control connection is put next to the packet that ended a
//! connection at that moment ([`super::journal_pairing`]).

use super::Analysis;
use super::journal_pairing::{self, JournalTimeline, LoggedEvent, MomentKind};
use super::picker::{self, NoEvidence};
use super::rules::journal::judge_journal;
use crate::journal::{Journal, JournalEventKind};
use crate::vocab::{Finding, FindingKind, Severity, VerdictClass};

/// The journal events that end or fail a control connection, with a time.
pub fn logged_closes(j: &Journal) -> Vec<LoggedEvent> {
    j.events
        .iter()
        .filter_map(|e| {
            let event = match e.kind {
                JournalEventKind::ControlClosed { .. } => "control-closed",
                JournalEventKind::ConnectionError => "connection-error",
                JournalEventKind::Backoff => "backoff",
                JournalEventKind::CertUntrusted { .. } => "cert-untrusted",
                JournalEventKind::CertNotYetValid | JournalEventKind::CertExpired => {
                    "cert-time-invalid"
                }
                _ => return None,
            };
            Some(LoggedEvent {
                line: e.line,
                ts_ns: e.ts_ns?,
                event,
                address: e.address.map(|a| a.ip()),
                broker: e.broker.clone(),
            })
        })
        .collect()
}

/// Judges the journal beside the capture: adds its findings, a finding
/// that pairs logged closes with packets, and picks the verdict again over
/// the capture's and the journal's candidates. Returns the timeline.
pub fn judge_beside(a: &mut Analysis, j: &Journal) -> JournalTimeline {
    let events = logged_closes(j);
    let moments = journal_pairing::moments(&a.flows, &a.rsts);
    let mut t = journal_pairing::pair(&events, &moments);
    // Every broker the journal names with an address (path context).
    t.brokers = {
        let mut b: Vec<_> = j
            .events
            .iter()
            .filter_map(|e| Some((e.broker.clone()?, e.address?.ip())))
            .collect();
        b.sort();
        b.dedup();
        b
    };

    let judged = judge_journal(j);
    a.findings.extend(judged.findings);
    if !t.pairs.is_empty() {
        a.findings.push(pairing_finding(&t));
    }
    a.findings.sort_by_key(|f| std::cmp::Reverse(f.severity));

    // The capture's candidates first: at equal rank the picker keeps them
    // (they carry frames), unless the journal's places a hop they cannot.
    a.candidates.extend(judged.candidates);
    let before = a.verdict.clone();
    a.verdict = picker::pick(a.candidates.clone(), || NoEvidence {
        summary: before.summary.clone(),
        next_steps: before.next_steps.clone(),
    });
    let injected: Vec<&journal_pairing::JournalPair> = t
        .pairs
        .iter()
        .filter(|p| p.packet == Some(MomentKind::InjectedReset))
        .collect();
    if a.verdict.class == VerdictClass::RstInjected && !injected.is_empty() {
        let lines: Vec<String> = injected.iter().map(|p| p.line.to_string()).collect();
        a.verdict.summary = format!(
            "{} The connector's journal logs these resets as failed or closed control connections (lines {}).",
            a.verdict.summary,
            lines.join(", ")
        );
    }
    t
}

/// One finding: which logged events line up with which packets, and the
/// clock offset that lines them up.
fn pairing_finding(t: &JournalTimeline) -> Finding {
    let mut by_kind: std::collections::BTreeMap<&'static str, usize> = Default::default();
    for p in &t.pairs {
        let name = match p.packet {
            Some(MomentKind::InjectedReset) => "an injected reset",
            Some(MomentKind::ServerReset) => "the server's reset",
            Some(MomentKind::UnplacedReset) => "a reset the capture cannot place",
            Some(MomentKind::ServerFin) => "the server's FIN",
            Some(MomentKind::SynUnanswered) => "an unanswered SYN",
            None => "no packet",
        };
        *by_kind.entry(name).or_default() += 1;
    }
    let parts: Vec<String> = by_kind
        .iter()
        .map(|(k, n)| format!("{n} with {k}"))
        .collect();
    let offset = match t.clock_offset_ms {
        Some(ms) => format!(
            "; journal time = capture time {} {:.1} ms (clock offset plus logging delay, from {} pairs)",
            if ms < 0.0 { "−" } else { "+" },
            ms.abs(),
            t.offset_from_pairs
        ),
        None => {
            "; nothing in the capture lines up with them (another time, or another host's capture?)"
                .into()
        }
    };
    let first = t.pairs.iter().find(|p| p.frame.is_some());
    let example = first
        .map(|p| {
            format!(
                " — e.g. line {} (`{}`) {:.1} ms after frame {}",
                p.line,
                p.event,
                p.delta_ms.unwrap_or(0.0),
                p.frame.unwrap_or(0)
            )
        })
        .unwrap_or_default();
    Finding::new(
        FindingKind::JournalPaired,
        if t.paired > 0 {
            Severity::Info
        } else {
            Severity::Warning
        },
        format!(
            "{} logged control-connection failures beside the capture: {}{offset}{example}",
            t.pairs.len(),
            parts.join(", ")
        ),
        t.pairs.iter().filter_map(|p| p.frame).collect(),
        None,
    )
}
