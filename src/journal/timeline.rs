//! The journal's state changes, with repeats counted: consecutive events
//! about the same thing (the control connection to one broker, one DNS
//! name, the clock, the identity, the enrollment) become one entry, e.g.
//! `control connection to broker2... (56.109.210.189:2010) up/error ×23`.
//! A summary of observations, no judgement.

use super::{Journal, JournalEvent, JournalEventKind};
use serde::Serialize;

/// Entries kept; the rest are counted by the caller from the events.
pub const MAX_ENTRIES: usize = 1000;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimelineEntry {
    pub first_line: u64,
    pub last_line: u64,
    pub first_ts_ns: Option<i64>,
    pub last_ts_ns: Option<i64>,
    /// `control`, `dns`, `certificate`, `identity`, `enrollment`, `clock`, `data`.
    pub topic: &'static str,
    /// What the entry is about, e.g. `control connection to NAME (ADDR)`.
    pub subject: String,
    /// The states seen, in order of first appearance (`up`, `error`, `closed`, ...).
    pub states: Vec<String>,
    /// Events merged into this entry.
    pub count: u64,
}

/// The topic, subject and state of an event shown on the timeline.
fn place(e: &JournalEvent) -> Option<(&'static str, String, String)> {
    use JournalEventKind as K;
    let conn = || match (&e.broker, e.address) {
        (Some(b), Some(a)) => format!("control connection to {b} ({a})"),
        (Some(b), None) => format!("control connection to {b}"),
        (None, Some(a)) => format!("control connection to {a}"),
        (None, None) => "control connection".to_string(),
    };
    Some(match &e.kind {
        K::NameResolved { name, .. } => ("dns", name.clone(), "resolved".into()),
        K::DnsFailed { name } => ("dns", name.clone(), "failed".into()),
        K::CertNotYetValid => ("certificate", conn(), "not-yet-valid".into()),
        K::CertExpired => ("certificate", conn(), "expired".into()),
        K::CertUntrusted { issuer } => (
            "certificate",
            conn(),
            match issuer {
                Some(i) => format!("untrusted (issuer {i})"),
                None => "untrusted".into(),
            },
        ),
        K::IdentityChanged => (
            "identity",
            "instance identity".into(),
            "cannot-decrypt".into(),
        ),
        K::EnrollmentFailed { reason } => (
            "enrollment",
            "enrollment".into(),
            serde_json::to_value(reason)
                .ok()
                .and_then(|v| v.get("reason")?.as_str().map(str::to_string))
                .unwrap_or_else(|| "failed".into()),
        ),
        K::ControlConnected => ("control", conn(), "up".into()),
        K::ControlState {
            connected: true, ..
        } => ("control", conn(), "up".into()),
        K::ControlState { state, .. } => ("control", conn(), state.clone()),
        K::ConnectionError => ("control", conn(), "error".into()),
        K::ControlClosed { reason } => (
            "control",
            conn(),
            match reason.as_deref() {
                Some(r) => format!(
                    "closed ({})",
                    r.trim_start_matches("FOHH_CLOSE_REASON_")
                        .to_ascii_lowercase()
                ),
                None => "closed".into(),
            },
        ),
        K::Backoff => ("control", conn(), "backoff".into()),
        K::Redirect => ("control", conn(), "redirect".into()),
        K::NotConnected => (
            "control",
            "control connection".into(),
            "not-connected".into(),
        ),
        K::TimeSkew { secs } if secs.abs() >= 1.0 => {
            ("clock", "time skew".into(), format!("{secs:+.0} s"))
        }
        K::DataConnections { backed_off, .. } if *backed_off > 0 => {
            ("data", "data connections".into(), "backed-off".into())
        }
        _ => return None,
    })
}

/// The timeline of a journal, in line order.
pub fn timeline(j: &Journal) -> Vec<TimelineEntry> {
    let mut out: Vec<TimelineEntry> = Vec::new();
    // Per topic, the index of its open entry.
    let mut open: Vec<(&'static str, usize)> = Vec::new();
    let mut last_control_subject: Option<String> = None;
    for e in &j.events {
        let Some((topic, mut subject, state)) = place(e) else {
            continue;
        };
        // A line about the control connection that names no broker
        // ("not yet connected") belongs to the connection last named.
        if topic == "control" {
            if e.broker.is_none() && e.address.is_none() {
                if let Some(s) = &last_control_subject {
                    subject = s.clone();
                }
            } else {
                last_control_subject = Some(subject.clone());
            }
        }
        let slot = open.iter().position(|(t, _)| *t == topic);
        if let Some(p) = slot {
            let idx = open[p].1;
            let entry = &mut out[idx];
            // A pure repeat, a cycle repeating (up/error/up/error), or
            // the second state of a cycle beginning: merged; a new state
            // after a long run starts a new entry.
            let merge = entry.subject == subject
                && if entry.states.contains(&state) {
                    entry.states.len() > 1 || entry.states.last() == Some(&state)
                } else {
                    entry.count == 1 || entry.states.len() > 1
                };
            if merge {
                entry.last_line = e.line;
                entry.last_ts_ns = e.ts_ns.or(entry.last_ts_ns);
                entry.count += 1;
                if !entry.states.contains(&state) && entry.states.len() < 8 {
                    entry.states.push(state);
                }
                continue;
            }
        }
        if out.len() >= MAX_ENTRIES {
            continue;
        }
        out.push(TimelineEntry {
            first_line: e.line,
            last_line: e.line,
            first_ts_ns: e.ts_ns,
            last_ts_ns: e.ts_ns,
            topic,
            subject,
            states: vec![state],
            count: 1,
        });
        let idx = out.len() - 1;
        match slot {
            Some(p) => open[p].1 = idx,
            None => open.push((topic, idx)),
        }
    }
    out
}
